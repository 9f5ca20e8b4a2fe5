"""``rnnspec bench``: a spec's model timed on this machine, per backend, against its GEMM floor."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import SpecArg, backend_name
from rnnspec.core.registry import backends_with

__all__ = ["bench"]


_DEFAULT = backends_with("trains", plugins=False)
"""The backends timed when none is named: the built-ins that train (torch and keras)."""


def _bench_backends(values: Optional[list[str]]) -> Optional[list[str]]:
    for value in values or []:
        backend_name(value)
    return values


@user_errors
def bench(
    spec: SpecArg,
    backends: Annotated[
        Optional[list[str]],
        typer.Option(
            "--backend",
            "-b",
            callback=_bench_backends,
            help=f"A backend to time (repeat it; default: {' and '.join(_DEFAULT)}).",
        ),
    ] = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option(
            "--batch-size", min=1, max=65_536, help="Rows per batch (default: the spec's training batch size)."
        ),
    ] = None,
    seq_len: Annotated[
        Optional[int],
        typer.Option("--seq-len", min=1, max=100_000, help="Steps per row (default: the spec's seq_len, else 100)."),
    ] = None,
    batches: Annotated[int, typer.Option("--batches", min=1, max=10_000, help="Batches per timed epoch.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Time a spec's model on this machine: training and prediction per backend, and the GEMM floor.

    Generated data of the spec's shapes; the second epoch of a fresh model is timed. The floor is the
    time of the training step's matrix products alone, with the framework's own matmul (prediction's: the
    forward products); each backend's time over it is printed as a ratio (step / floor, predict / floor).
    """
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.bench import bench as run_bench
    from rnnspec.util import quiet_stderr

    model_spec = load_spec(spec)
    names = backends or list(_DEFAULT)
    with quiet_stderr():
        report = run_bench(model_spec, names, batch_size=batch_size, steps=seq_len, batches=batches)
    typer.echo(json.dumps(report.to_dict(), allow_nan=False) if as_json else report.render())
