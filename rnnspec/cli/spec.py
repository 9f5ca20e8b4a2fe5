"""``rnnspec validate``, ``summary`` and ``schema``: the spec alone, with no framework imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import Convention, SpecArg
from rnnspec.lang.errors import SpecError

__all__ = ["schema", "summary", "validate"]


@user_errors
def validate(
    specs: Annotated[list[Path], typer.Argument(help="One or more spec files.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Check spec files; print `ok` or every located error per file. Exit 1 if any is invalid."""
    from rnnspec.lang.loader import load_spec

    report: list[dict[str, Any]] = []
    failed = False
    for path in specs:
        try:
            load_spec(path)
        except SpecError as exc:
            failed = True
            report.append({"file": str(path), "ok": False, "errors": [i.to_dict() for i in exc.issues]})
            if not as_json:
                typer.echo(exc.render(), err=True)
            continue
        report.append({"file": str(path), "ok": True, "errors": []})
        if not as_json:
            typer.echo(f"ok {path}")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    if failed:
        raise typer.Exit(1)


@user_errors
def summary(
    spec: SpecArg,
    convention: Convention = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Print a Keras-style table of layers, output shapes and parameter counts (no framework is imported)."""
    from rnnspec.lang.analysis import analyze
    from rnnspec.lang.loader import load_spec
    from rnnspec.lang.summary import render_summary

    result = analyze(load_spec(spec), convention.value if convention else None)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(render_summary(result), nl=False)


@user_errors
def schema(
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the schema to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of the spec (for editor completion and validation)."""
    from rnnspec.lang.schema import spec_schema
    from rnnspec.util import printable, write_text_atomic

    text = json.dumps(spec_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text_atomic(output, text)
        typer.echo(f"wrote {printable(output)}")
