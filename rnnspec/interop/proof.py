"""The numbers behind an import or export: the same inputs through the original and the copy.

:func:`hard_inputs` makes the inputs that break ports: pre-padded rows (Keras's ``pad_sequences``
default), post-padded rows, a row with holes, a fully padded row, a length-1 row, and full rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnspec.lang.spec import ModelSpec

__all__ = ["TOLERANCE", "Agreement", "agreement", "hard_inputs"]

TOLERANCE = 1e-5
"""Max abs difference of float32 outputs accepted as equal."""


def hard_inputs(spec: ModelSpec, seed: int = 0, batch: int = 8, time: int = 12) -> np.ndarray:
    """A batch of ``batch`` rows of length ``spec.input.seq_len or time`` with every padding pattern."""
    rng = np.random.default_rng(seed)
    t = spec.input.seq_len or time
    if spec.input.vocab_size is not None:
        x = rng.integers(1, max(spec.input.vocab_size, 2), size=(batch, t)).astype(np.int64)
        if spec.input.vocab_size == 1:
            x[:] = 0
        pad = 0
    else:
        x = rng.normal(size=(batch, t, spec.input.features)).astype(np.float32)
        pad = spec.input.mask_value
    if pad is None:
        return x
    patterns = [
        lambda r: r.__setitem__(slice(0, t // 2), pad),  # pre-padded
        lambda r: r.__setitem__(slice(t - t // 3, t), pad),  # post-padded
        lambda r: r.__setitem__(slice(t // 3, t // 3 + 2), pad),  # a hole
        lambda r: r.__setitem__(slice(0, t), pad),  # fully padded
        lambda r: r.__setitem__(slice(0, t - 1), pad),  # length 1
    ]
    for row, fill in zip(x, patterns, strict=False):
        fill(row)
    return x


@dataclass(frozen=True)
class Agreement:
    """One comparison: what was compared with what, and the max abs difference."""

    label: str
    max_diff: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_diff)) and self.max_diff <= TOLERANCE

    def line(self) -> str:
        verdict = "ok" if self.passed else "DIFFERENT"
        return f"  {self.label:<44} max |diff| {self.max_diff:.1e}  (tolerance {TOLERANCE:.0e})  {verdict}"


def agreement(label: str, a: Callable[[np.ndarray], np.ndarray], b: Callable[[np.ndarray], np.ndarray],
              x: np.ndarray) -> Agreement:  # fmt: skip
    """Run both on ``x`` and compare."""
    ya = np.asarray(a(x), dtype=np.float64)
    yb = np.asarray(b(x), dtype=np.float64)
    if ya.shape != yb.shape:
        return Agreement(f"{label} (shapes {ya.shape} vs {yb.shape})", float("inf"))
    return Agreement(label, float(np.max(np.abs(ya - yb))) if ya.size else 0.0)
