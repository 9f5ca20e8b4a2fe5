"""What more than one command prints: the files a model was written to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

__all__ = ["write_outputs"]


def write_outputs(impl: Any, model: Any, directory: Path, inputs: tuple[Path | None, ...] = ()) -> None:
    """Write the model's native artifact and canonical weights into ``directory`` as one unit (none of them over one
    of the command's ``inputs``), naming each file written."""
    from rnnspec.runtime.runs import write_model_files
    from rnnspec.util import printable, staged_outputs

    with staged_outputs(inputs) as out:
        written = [out.final(p) for p in write_model_files(impl, model, out.stage_folder(directory))]
    for path in written:
        typer.echo(f"wrote {printable(path)}")
