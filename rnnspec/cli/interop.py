"""``rnnspec import``, ``export`` and ``convert``: models in and out of rnnspec, and between frameworks;
what they run and the numbers they print."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import BACKENDS_HELP, AllowNonfinite, SpecArg, backend_name
from rnnspec.cli.output import write_outputs
from rnnspec.core.registry import DEFAULT_BACKEND, EXPORT_FORMATS, format_of_file

if TYPE_CHECKING:
    import numpy as np

    from rnnspec.interop.proof import Agreement
    from rnnspec.lang.spec import ModelSpec

__all__ = ["ExportFormat", "convert", "export", "import_", "run_export", "run_import"]

Echo = Callable[[str], None]


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def _predictor(spec: ModelSpec, weights: dict[str, np.ndarray], backend: str) -> Callable[[np.ndarray], np.ndarray]:
    from rnnspec.runtime.models import build, predict

    model = build(spec, backend, weights=weights)
    return lambda x: predict(model, x)


def _builds(spec: ModelSpec, weights: dict[str, np.ndarray]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """rnnspec's build on the reference and on every built-in backend whose framework is installed."""
    from rnnspec.core.registry import BUILTIN_BACKENDS, compared_backends, reference_backend

    reference = reference_backend()
    out = {reference: _predictor(spec, weights, reference)}
    for name in compared_backends():
        entry = BUILTIN_BACKENDS.get(name)
        if name != reference and entry is not None and all(map(_installed, entry.framework_modules)):
            out[name] = _predictor(spec, weights, name)
    return out


def _original(path: Path) -> Callable[[np.ndarray], np.ndarray] | None:
    """The file opened by its own framework (a .keras/.h5 by Keras: safe_mode, every class checked to be a Keras
    built-in), through the runner of the export format it is; None where that cannot be done."""
    from rnnspec.core.registry import get_runner

    fmt = format_of_file(str(path))
    return get_runner(fmt)([path]) if fmt is not None else None


def run_import(source: Path, output: Path, spec_path: Path | None, name: str | None, overwrite: bool,
               echo: Echo, allow_nonfinite: bool = False) -> bool:  # fmt: skip
    """Import ``source`` into ``output``; print what was read, what was written and the proof. True if it agrees."""
    from rnnspec.interop.proof import agreement, hard_inputs
    from rnnspec.lang.analysis import analyze
    from rnnspec.runtime.importing import import_model, write_import
    from rnnspec.util import printable, quiet_stderr

    notes: list[str] = []  # what the file says that the spec does not keep (frozen layers, compile settings)
    with quiet_stderr():
        spec, weights = import_model(source, spec_path, name=name, allow_nonfinite=allow_nonfinite, notes=notes)
    x = hard_inputs(spec)
    rows: list[Agreement] = []
    with quiet_stderr():
        builds = _builds(spec, weights)
        original = _original(source)
        if original is not None:
            rows = [agreement(f"original Keras model vs rnnspec {b}", original, fn, x) for b, fn in builds.items()]
        else:
            (ref, run_ref), *others = builds.items()
            rows = [agreement(f"rnnspec {ref} vs rnnspec {b}", run_ref, fn, x) for b, fn in others]
    written = write_import(spec, weights, output, str(source.name), overwrite=overwrite, inputs=(source, spec_path))
    layers = analyze(spec).layers
    params = sum(r.params for r in layers)
    echo(f"read {printable(source)}: {len(layers)} layers, {params:,} parameters ({spec.convention} convention)")
    for note in notes:
        echo(note if note.startswith("WARNING") else f"note: {note}")
    for path in written:
        echo(f"wrote {printable(path)}")
    what = "the original model" if original is not None else "each other"
    echo(f"proof: {len(x)} inputs (pre-/post-padded, a hole, fully padded, length 1), compared with {what}:")
    if original is None and format_of_file(str(source)) is not None:
        echo("  (Keras 3 could not open the original file itself: a Keras 2 file or no Keras installed)")
    for row in rows:
        echo(row.line())
    echo(f"next: rnnspec build {printable(written[0])} --backend {DEFAULT_BACKEND} --weights {printable(written[1])}")
    return all(r.passed for r in rows)


def run_export(spec: ModelSpec, weights: dict[str, np.ndarray], fmt: str, output: Path, echo: Echo,
               inputs: tuple[Path | None, ...] = ()) -> bool:  # fmt: skip
    """Export (every file as one unit, none of them over one of ``inputs``); then run the exported file on the hard
    inputs and compare with rnnspec's NumPy reference."""
    from rnnspec.core.registry import get_exporter, get_runner, reference_backend
    from rnnspec.interop.proof import agreement, hard_inputs
    from rnnspec.util import printable, quiet_stderr, staged_outputs

    exporter = get_exporter(fmt)
    with staged_outputs(inputs) as out:
        staged = out.stage(output)
        with quiet_stderr():
            written = [out.final(p) for p in exporter(spec, weights, staged)]
    for path in written:
        echo(f"wrote {printable(path)}")
    x = hard_inputs(spec)
    with quiet_stderr():
        ref = reference_backend()
        reference = _predictor(spec, weights, ref)
        runner = get_runner(fmt)(written)
        row = agreement(f"exported {fmt} vs rnnspec {ref}", reference, runner, x) if runner else None
    if row is None:
        echo(f"proof skipped: the {fmt} runtime is not installed here")
        return True
    echo(f"proof: {len(x)} inputs (pre-/post-padded, a hole, fully padded, length 1):")
    echo(row.line())
    return row.passed


ExportFormat = Enum("ExportFormat", {name: name for name in EXPORT_FORMATS}, type=str)
"""``--format``: the registry's export formats (onnx, torch, keras)."""


@user_errors
def import_(
    source: Annotated[
        Path,
        typer.Argument(
            help="A Keras model (.keras, or a legacy .h5 from tf.keras/Keras 2) or a PyTorch state_dict "
            "(.pt/.pth from torch.save, or .safetensors; needs --spec).",
            show_default=False,
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for spec.yaml and weights.safetensors.")],
    spec: Annotated[
        Optional[Path],
        typer.Option("--spec", help="The architecture: required for a state dict; for a Keras file, its names."),
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="Name of the imported spec (default: the model's name)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace spec.yaml/weights.safetensors in -o.")
    ] = False,
    allow_nonfinite: AllowNonfinite = False,
) -> None:
    """Import a trained Keras model or PyTorch state dict: writes a spec and canonical weights, then proves them.

    Nothing in the file is executed. A state dict needs --spec (it holds no activations or head).

    Proof: hard inputs (pre-/post-padded, holes, length 1) through the original and rnnspec's builds.

    Exit 1 if they differ, or if the model has layers the spec cannot express (all are listed).
    """
    if not run_import(source, output, spec, name, overwrite, typer.echo, allow_nonfinite):
        raise typer.Exit(1)


@user_errors
def export(
    spec: SpecArg,
    weights: Annotated[Path, typer.Option("--weights", help="Canonical weights (.safetensors) of the spec.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="onnx, torch (plain PyTorch) or keras.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The file to write: model.onnx, model.py (+ model.safetensors), m.keras."),
    ],
) -> None:
    """Export a spec and its weights as ONNX, plain PyTorch (source + state dict) or a plain .keras file.

    The exported model needs no rnnspec to run. Proof: it is run on hard inputs and compared with rnnspec.

    Exit 1 if they differ.
    """
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.models import load_weights

    model_spec = load_spec(spec)
    values = load_weights(weights, spec=model_spec)
    if not run_export(model_spec, values, fmt.value, output, typer.echo, inputs=(spec, weights)):
        raise typer.Exit(1)


@user_errors
def convert(
    source: Annotated[
        Path,
        typer.Argument(
            help="Canonical weights (.weights.safetensors), a torch artifact (.torch.safetensors) or a .keras file.",
            show_default=False,
        ),
    ],
    to: Annotated[str, typer.Option("--to", callback=backend_name, help=f"Framework to convert to: {BACKENDS_HELP}.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the converted artifact and weights.")],
    spec: Annotated[
        Optional[Path],
        typer.Option("--spec", help="The spec, when the source file does not carry one."),
    ] = None,
    allow_nonfinite: AllowNonfinite = False,
) -> None:
    """Move trained weights between frameworks (through the canonical layout)."""
    from rnnspec.runtime.backends import load_backend
    from rnnspec.runtime.convert import read_any
    from rnnspec.runtime.models import build as build_model
    from rnnspec.util import printable, quiet_stderr

    model_spec, values = read_any(source, spec, allow_nonfinite=allow_nonfinite)
    impl = load_backend(to)
    with quiet_stderr():
        model = build_model(model_spec, to, weights=values)
    typer.echo(f"read {printable(source)}: spec {model_spec.name!r}, {len(values)} weights")
    write_outputs(impl, model, output, inputs=(source, spec))
