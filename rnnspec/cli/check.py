"""``rnnspec check``: the conformance report of a spec across backends, or of two given models
(``--model A --model B``), printed, and written as HTML and JUnit pages on request."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rnnspec.cli.errors import fail, user_errors
from rnnspec.cli.options import SpecArg, seed_option
from rnnspec.core.registry import BUILTIN_BACKENDS, BackendNotFoundError, compared_backends

__all__ = ["check"]


@user_errors
def check(
    spec: SpecArg,
    steps: Annotated[
        int,
        typer.Option("--steps", min=0, max=100_000, help="Optimizer steps of the training-parity run (<= 100,000)."),
    ] = 50,
    optimizer: Annotated[
        Optional[str],
        typer.Option("--optimizer", help="Train with this optimizer (sgd, adam, rmsprop) instead of the spec's."),
    ] = None,
    seed: Annotated[int, seed_option("Seed of weights, inputs and targets.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    plot: Annotated[
        Optional[Path],
        typer.Option("--plot", help="Write the keras and torch loss curves, overlaid, to this PNG."),
    ] = None,
    models: Annotated[
        Optional[list[str]],
        typer.Option(
            "--model",
            metavar="A",
            help="Compare two implementations instead (give it twice): a .keras/.h5 model, a PyTorch state dict "
            f"(.pt/.pth/.safetensors), or a backend name ({', '.join(BUILTIN_BACKENDS)}). Outputs on the hard "
            "inputs, the gradient of every weight, and the porting mistake that explains a difference.",
        ),
    ] = None,
    html_out: Annotated[
        Optional[Path],
        typer.Option("--html", metavar="FILE", help="Also write the report as one self-contained HTML page."),
    ] = None,
    junit_out: Annotated[
        Optional[Path],
        typer.Option("--junit", metavar="FILE", help="Also write the report as JUnit XML (one test case per row)."),
    ] = None,
) -> None:
    """Conformance report: counts, forward differences and training parity across keras, torch and numpy.

    With --model A --model B: are A and B the same model (outputs, gradients; the porting mistake that
    explains a difference)? Exit 1 if any row fails its tolerance.
    """
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.backends import load_backend
    from rnnspec.runtime.check import plot_curves, run_check

    if optimizer is not None and optimizer not in ("sgd", "adam", "rmsprop"):
        raise fail(f"error: --optimizer must be sgd, adam or rmsprop, not {optimizer!r}", 2)
    inputs = (spec, *(Path(m) for m in models or ()))
    _check_pages((html_out, junit_out, plot), inputs)
    if models:
        if optimizer is not None or plot is not None:
            raise fail("error: --optimizer and --plot belong to the training-parity check; not with --model", 2)
        _check_models(load_spec(spec), models, seed, steps, as_json, (html_out, junit_out), inputs)
        return
    model_spec = load_spec(spec)
    backends = _loadable_backends(load_backend)
    from rnnspec.util import quiet_stderr

    with quiet_stderr():
        report = run_check(model_spec, steps=steps, seed=seed, optimizer=optimizer, backends=backends)
    from rnnspec.testing.pages import from_check_report

    png = {plot: plot_curves(report)} if plot is not None and report.curves else {}
    _write_pages(from_check_report(report), (html_out, junit_out), inputs, png)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        _print_report(report, plot)
    if not report.passed:
        raise typer.Exit(1)


def _loadable_backends(load_backend: Any) -> tuple[str, ...]:
    """Every backend to compare: a built-in's missing framework is one clear line (exit 1); a plugin that fails
    to load is left out with a note, since the user did not name it."""
    names = []
    for name in compared_backends():
        try:
            load_backend(name)
        except BackendNotFoundError as exc:
            if name in BUILTIN_BACKENDS:
                raise
            typer.echo(f"note: backend {name} is not compared: {exc}", err=True)
            continue
        names.append(name)
    return tuple(names)


def _check_pages(targets: tuple[Path | None, ...], inputs: tuple[Any, ...]) -> None:
    """Before any work: a report target that is a folder (usage), a FIFO or device, or one of the inputs is refused."""
    from rnnspec.util import StagedOutputs, printable

    given = [t for t in targets if t is not None]
    for target in given:
        if target.is_dir():
            raise fail(f"error: {printable(target)} is a folder; give a file name for the report", 2)
        StagedOutputs(inputs).check_target(target)
    if len({os.path.realpath(t) for t in given}) < len(given):
        raise fail(f"error: {printable(given[0])} is named for two outputs; give each its own file", 2)


def _write_pages(
    verdict: Any,
    targets: tuple[Path | None, Path | None],
    inputs: tuple[Any, ...] = (),
    extra: dict[Path, bytes] | None = None,
) -> None:
    """``--html``, ``--junit`` (and ``extra`` files: ``--plot``'s PNG): the report written as one unit (after it
    is computed: a failed check still writes them), never over one of the command's ``inputs``."""
    from rnnspec.testing.pages import html_page, junit_xml
    from rnnspec.util import printable, staged_outputs, write_bytes_atomic, write_text_atomic

    _check_pages((*targets, *(extra or {})), inputs)
    written = []
    with staged_outputs(inputs) as out:
        for target, render in zip(targets, (html_page, junit_xml), strict=True):
            if target is not None:
                write_text_atomic(out.stage(target), render(verdict))
                written.append(target)
        for target, data in (extra or {}).items():
            write_bytes_atomic(out.stage(target), data)
    for target in written:
        typer.echo(f"wrote {printable(target)}", err=True)


def _frameworks_of(models: list[str]) -> set[str]:
    """The backends two ``--model`` values need: a backend name itself, else the backend that builds a model file
    in its weight convention: keras for a Keras file (read without Keras, but built by the keras backend), torch
    for a state dict."""
    from rnnspec.core.registry import available_backends, backend_for_convention

    needed = set()
    for model in models:
        lower = model.lower()
        if model in available_backends():
            needed.add(model)
        elif lower.endswith((".keras", ".h5", ".hdf5")):
            needed.add(backend_for_convention("keras"))
        else:
            needed.add(backend_for_convention("torch"))
    return needed


def _check_models(
    model_spec: Any,
    models: list[str],
    seed: int,
    steps: int,
    as_json: bool,
    pages: tuple[Path | None, Path | None],
    inputs: tuple[Any, ...] = (),
) -> None:
    """``check SPEC --model A --model B``: rnnspec.testing's comparison, printed; exit 1 unless equivalent."""
    if len(models) != 2:
        raise fail(f"error: --model is given twice (the two models to compare), not {len(models)} time(s)", 2)
    from rnnspec.runtime.backends import load_backend
    from rnnspec.testing import compare
    from rnnspec.util import quiet_stderr

    for name in _frameworks_of(models):  # a missing framework is one clear line, before any work
        load_backend(name)
    with quiet_stderr():
        report = compare(models[0], models[1], model_spec, seed=seed, steps=steps)
    from rnnspec.testing.pages import from_equivalence

    _write_pages(from_equivalence(report), pages, inputs)
    typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False) if as_json else report.text())
    if not report.passed:
        raise typer.Exit(1)


def _print_report(report: Any, plot: Path | None) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from rnnspec.util import printable

    table = Table(title=f"rnnspec check: {report.spec}", box=box.SIMPLE_HEAVY)
    for column in ("check", "value", "tolerance", "result"):
        table.add_column(column)
    for row in report.rows:
        table.add_row(row.check, row.value, row.tolerance, "pass" if row.passed else "FAIL")
    console = Console(highlight=False)
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    if plot is not None and report.curves:
        console.print(f"wrote {escape(printable(plot))}")
    console.print("all checks passed" if report.passed else "some checks FAILED")
