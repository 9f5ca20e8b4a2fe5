"""``rnnspec build``: a spec compiled to a native model, its parameter counts checked and its summary printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import AllowNonfinite, BackendName, SpecArg, seed_option
from rnnspec.cli.output import write_outputs

__all__ = ["build"]


def _print_model(impl: Any, model: Any, spec: Any, backend: str) -> None:
    from rnnspec.lang.analysis import analyze

    typer.echo(impl.summary(model), nl=False)
    counts = impl.count_params(model)
    total = sum(counts.values())
    typer.echo(
        f"parameter counts: {backend} model {total:,} = analytic {analyze(spec).total_params:,} "
        f"({spec.convention} convention), per layer too"
    )
    for note in impl.notes(model):
        typer.echo(f"note: {note}")


@user_errors
def build(
    spec: SpecArg,
    backend: BackendName,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the native artifact and the canonical weights into this folder."),
    ] = None,
    seed: Annotated[
        Optional[int],
        seed_option("Seed of the initial weights (the same on every backend)."),
    ] = None,
    weights: Annotated[
        Optional[Path],
        typer.Option("--weights", help="Start from these canonical weights (.safetensors) instead of a seed."),
    ] = None,
    allow_nonfinite: AllowNonfinite = False,
) -> None:
    """Compile a spec to a native model, check its parameter counts, print its summary; -o writes it."""
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.backends import load_backend
    from rnnspec.runtime.models import build as build_model
    from rnnspec.util import quiet_stderr

    model_spec = load_spec(spec)
    impl = load_backend(backend)
    with quiet_stderr():
        model = build_model(model_spec, impl, seed=seed, weights=weights, allow_nonfinite=allow_nonfinite)
    _print_model(impl, model, model_spec, backend)
    if output is not None:
        write_outputs(impl, model, output, inputs=(spec, weights))
