"""What more than one command prints: the files a model was written to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

__all__ = ["write_outputs"]


def write_outputs(impl: Any, model: Any, directory: Path) -> None:
    """Write the model's native artifact and canonical weights into ``directory``, naming each file written."""
    from rnnspec.runtime.runs import write_model_files

    for path in write_model_files(impl, model, directory):
        typer.echo(f"wrote {path}")
