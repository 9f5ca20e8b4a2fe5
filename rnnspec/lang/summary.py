"""Rendering an :class:`~rnnspec.lang.analysis.Analysis` as a Keras-style ``model.summary()`` table.

Statistics are computed in :mod:`rnnspec.lang.analysis`; this module only formats them, so a
backend can render the rows it reads off a built model with the same code.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from rnnspec.lang.analysis import BYTES_PER_PARAM, Analysis, LayerRow

__all__ = ["readable_size", "render_summary"]


def readable_size(n_bytes: float) -> str:
    """Memory size the way Keras prints it: ``1.23 MB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes < 1024:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def _counts_line(label: str, n: int) -> str:
    return f" {label}: {n:,} ({readable_size(n * BYTES_PER_PARAM)})"


def render_rows(
    title: str,
    rows: Sequence[LayerRow],
    *,
    trainable: int,
    non_trainable: int,
    width: int = 100,
    note: str | None = None,
) -> str:
    """Plain text of a Keras-style summary table (no colour)."""
    table = Table(box=box.HEAVY_HEAD, show_lines=True, pad_edge=True)
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Output Shape", no_wrap=True)
    table.add_column("Param #", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(f"{row.name} ({row.type})", row.shape_text(), f"{row.params:,}")
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, highlight=False, emoji=False)
    console.print(f'Model: "{title}"' + (f"  [{note}]" if note else ""), markup=False)
    console.print(table)
    lines = [
        _counts_line("Total params", trainable + non_trainable),
        _counts_line("Trainable params", trainable),
        _counts_line("Non-trainable params", non_trainable),
    ]
    return buf.getvalue() + "\n".join(lines) + "\n"


def render_summary(analysis: Analysis, *, width: int = 100) -> str:
    """The ``rnnspec summary`` table for one analysis."""
    return render_rows(
        analysis.name,
        analysis.layers,
        trainable=analysis.trainable_params,
        non_trainable=analysis.non_trainable_params,
        width=width,
        note=f"{analysis.convention} convention",
    )
