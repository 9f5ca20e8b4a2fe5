"""Shared pieces of the per-kind test files (tests/test_<kind>.py): Keras's layers as a fixture-free helper and the
Keras-style summary table read back into rows, so each kind's file compares its summary with Keras's own."""

from __future__ import annotations

import re
from typing import Any


def summary_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of a Keras-style summary table (wrapped cells joined, whitespace removed)."""
    rows: list[tuple[str, ...]] = []
    cells: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("│"):
            parts = [re.sub(r"\s+", "", p) for p in line.strip().strip("│").split("│")]
            cells = parts if cells is None else [a + b for a, b in zip(cells, parts, strict=True)]
        elif cells is not None:
            rows.append(tuple(cells))
            cells = None
    return rows


def typed_rows(table: str) -> list[tuple[str, ...]]:
    """The rows with each layer's name dropped (Keras numbers its own), its type kept."""
    return [(re.sub(r"^.*\((\w+)\)$", r"\1", name), *rest) for name, *rest in summary_rows(table)]


def keras_summary(model: Any) -> str:
    """What Keras's ``model.summary()`` prints."""
    chunks: list[str] = []
    model.summary(print_fn=lambda text, **_: chunks.append(text))
    return "\n".join(chunks)
