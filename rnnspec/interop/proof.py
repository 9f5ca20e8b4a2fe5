"""The numbers behind an import or export: the same inputs through the original and the copy.

:func:`hard_inputs` makes the inputs that break ports: pre-padded rows (Keras's ``pad_sequences``
default), post-padded rows, a row with holes, a fully padded row, a length-1 row, and full rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnspec.core.noise import FLOOR_FACTOR, allowance
from rnnspec.lang.spec import ModelSpec

__all__ = [
    "ROW_PATTERNS",
    "TOLERANCE",
    "Agreement",
    "Outputs",
    "Predict",
    "agreement",
    "differences",
    "hard_inputs",
    "row_names",
    "run_side",
]

TOLERANCE = 1e-5
"""Max abs difference of float32 outputs accepted as equal."""


ROW_PATTERNS = ("pre-padded", "post-padded", "padding in the middle", "fully padded", "length 1")
"""What :func:`hard_inputs` makes of its first rows when the input can be padded, in order; the other rows are full."""


def hard_inputs(spec: ModelSpec, seed: int = 0, batch: int = 8, time: int = 12) -> np.ndarray:
    """A batch of ``batch`` rows of length ``spec.input.seq_len`` (else ``time``, doubled until every pooling or
    convolution window leaves an output step) with every padding pattern, padded with the id the spec masks
    (``padding_idx`` or 0) or its ``mask_value``. For a stateful model (``input.batch_size``): at least two
    consecutive batches of it, and the patterns in the first rows of the last batch too, where the states the
    batches before left reach them (:func:`row_names` names them)."""
    rng = np.random.default_rng(seed)
    t = spec.input.seq_len or time
    while spec.input.seq_len is None and t < 4096 and not spec.windows_fit(t):
        t *= 2  # a proof on rows a layer reduces to no step would compare nothing
    fixed = spec.input.batch_size
    if fixed is not None:
        batch = max(batch, 2 * fixed)
        batch += -batch % fixed
    if spec.input.vocab_size is not None:
        x = rng.integers(1, max(spec.input.vocab_size, 2), size=(batch, t)).astype(np.int64)
        if spec.input.vocab_size == 1:
            x[:] = 0
        masked = spec.embedding.mask_id if spec.embedding is not None else None
        pad = masked if masked is not None else 0
        if pad != 0:
            x[x == pad] = 0  # the padding id only where a pattern puts it (0 is a token like any other here)
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
    for start, order in _pattern_starts(spec, len(x)):
        for row, k in zip(x[start:], order, strict=False):
            patterns[k](row)
    return x


def _pattern_starts(spec: ModelSpec, count: int) -> list[tuple[int, list[int]]]:
    """Where :func:`hard_inputs`'s padding patterns go: from the first row in :data:`ROW_PATTERNS` order, and for a
    stateful model from the first row of its last batch in reverse order (so that a row there continues a row of
    another pattern: a fully padded row after a fully padded row would carry zero states and prove nothing)."""
    order = list(range(len(ROW_PATTERNS)))
    fixed = spec.input.batch_size
    return [(0, order)] if fixed is None or count <= fixed else [(0, order), (count - fixed, order[::-1])]


def row_names(spec: ModelSpec, count: int) -> list[str]:
    """``row I (PATTERN)`` for the first ``count`` rows of :func:`hard_inputs` (the proofs' and
    :mod:`rnnspec.testing`'s names of them)."""
    padded = spec.input.vocab_size is not None or spec.input.mask_value is not None
    patterns = ROW_PATTERNS if padded else ()
    names = [f"row {i} (full)" for i in range(count)]
    for start, order in _pattern_starts(spec, count) if patterns else []:
        for i, k in enumerate(order[: max(count - start, 0)]):
            names[start + i] = f"row {start + i} ({patterns[k]})"
    return names


Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Outputs:
    """One side of a proof on the hard inputs: its outputs and, per input row, its own noise floor (how far its
    outputs move when every weight moves by one float32 ulp; None where that side's weights cannot be nudged)."""

    values: np.ndarray
    floor: np.ndarray | None


def run_side(run: Predict, x: np.ndarray, nudged: Predict | None = None) -> Outputs:
    """``run`` on ``x``; with ``nudged`` (the same side with every weight moved by one ulp:
    :func:`rnnspec.core.noise.ulp_perturbed`), also its noise floor per row."""
    values = np.asarray(run(x), dtype=np.float64)
    if nudged is None:
        return Outputs(values, None)
    moved = np.asarray(nudged(x), dtype=np.float64)
    return Outputs(values, _per_row(moved, values) if moved.shape == values.shape else None)


def _per_row(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Max abs difference per input row: equal values (NaN where both are NaN, inf of one sign on both sides, as
    weights accepted with ``--allow-nonfinite`` give) differ by 0; any other non-finite difference is inf."""
    with np.errstate(invalid="ignore", over="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        diff = np.where(same, 0.0, np.abs(a - b)).reshape(len(a), -1)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    return diff.max(axis=1) if diff.shape[1] else np.zeros(len(a))


@dataclass(frozen=True)
class Agreement:
    """One comparison: what was compared with what and, per input row, the max abs difference, the noise floor (the
    larger of the two sides' own; None: not measured) and the allowance (:data:`TOLERANCE`, or ``FLOOR_FACTOR x
    floor`` where larger: :func:`rnnspec.core.noise.allowance`, the yardstick ``check`` uses)."""

    label: str
    diffs: tuple[float, ...]
    floors: tuple[float, ...] | None = None
    allowed: tuple[float, ...] = ()

    @property
    def max_diff(self) -> float:
        return max(self.diffs, default=0.0)

    @property
    def worst(self) -> int:
        """The row whose difference comes closest to (or goes furthest over) its allowance."""
        ratios = [d / a if np.isfinite(d) else np.inf for d, a in zip(self.diffs, self._allowed, strict=True)]
        return int(np.argmax(ratios)) if ratios else 0

    @property
    def _allowed(self) -> tuple[float, ...]:
        return self.allowed or (TOLERANCE,) * len(self.diffs)

    @property
    def passed(self) -> bool:
        return all(np.isfinite(d) and d <= a for d, a in zip(self.diffs, self._allowed, strict=True))

    @property
    def raised(self) -> bool:
        """Whether a noise floor, not the fixed tolerance, decided that some row is within its allowance."""
        return any(d > TOLERANCE for d in self.diffs) and self.passed

    def _floor(self, row: int) -> str:
        return "noise floor not measured" if self.floors is None else f"noise floor {self.floors[row]:.1e}"

    def line(self) -> str:
        verdict = "ok" if self.passed else "DIFFERENT"
        if not self.diffs:
            why = "shapes differ" if "shapes" in self.label else "no outputs"
        elif not self.passed:
            row = self.worst
            d, a = self.diffs[row], self._allowed[row]
            if a > TOLERANCE:
                why = f"row {row}: {d:.1e}, over the {a:.1e} allowed = {FLOOR_FACTOR:g} x its {self._floor(row)}"
            else:
                why = f"row {row}: {d:.1e}, over the tolerance {TOLERANCE:.0e}; its {self._floor(row)}"
        elif self.raised:
            row = int(np.argmax(self.diffs))
            why = (
                f"row {row}: over the tolerance {TOLERANCE:.0e}, within the {self._allowed[row]:.1e} allowed = "
                f"{FLOOR_FACTOR:g} x its {self._floor(row)}"
            )
        else:
            top = self._floor(0) if self.floors is None else f"noise floor {max(self.floors, default=0.0):.1e}"
            why = f"tolerance {TOLERANCE:.0e}; {top}"
        return f"  {self.label:<44} max |diff| {self.max_diff:.1e}  ({why})  {verdict}"


def agreement(label: str, a: Outputs, b: Outputs) -> Agreement:
    """Compare two sides, each input row against its own allowance: :data:`TOLERANCE`, or
    :data:`~rnnspec.core.noise.FLOOR_FACTOR` times the **smaller** of the two sides' noise floors on that row (a
    correct copy has the original's dynamics, so both floors are alike; a wrong copy whose own floor is large cannot
    raise its allowance by it). A side whose floor was not measured contributes none; with neither measured, the
    fixed tolerance decides."""
    if a.values.shape != b.values.shape:
        return Agreement(f"{label} (shapes {a.values.shape} vs {b.values.shape})", (float("inf"),))
    diff = _per_row(a.values, b.values) if a.values.size else np.zeros(len(a.values))
    measured = [side.floor for side in (a, b) if side.floor is not None]
    floor = np.minimum.reduce(measured) if measured else np.zeros(len(diff))
    return Agreement(
        label,
        tuple(float(d) for d in diff),
        tuple(float(f) for f in floor) if measured else None,
        tuple(float(v) for v in allowance(TOLERANCE, floor)),
    )


def _spans(indices: list[int]) -> str:
    """``0-5, 9`` for the indices 0, 1, 2, 3, 4, 5, 9."""
    parts: list[tuple[int, int]] = []
    for i in indices:
        if parts and parts[-1][1] == i - 1:
            parts[-1] = (parts[-1][0], i)
        else:
            parts.append((i, i))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def differences(row: Agreement, a: Outputs, b: Outputs, names: list[str], labels: tuple[str, str]) -> list[str]:
    """Where a failed comparison ``row`` of ``a`` and ``b`` (named ``labels``) differs, in words: the input rows
    (``names``: :func:`row_names`) over their allowance and those within it, and the largest difference with its
    position (the output step and unit) and both values. Empty when ``row`` passed or the shapes differ."""
    if row.passed or a.values.shape != b.values.shape or not row.diffs:
        return []
    bad = [i for i, (d, al) in enumerate(zip(row.diffs, row._allowed, strict=True)) if not d <= al]
    good = [i for i in range(len(row.diffs)) if i not in bad]
    lines = [f"    differs on {', '.join(names[i] for i in bad)}"]
    if good:
        lines[0] += f"; agrees on {', '.join(names[i] for i in good)}"
    worst = int(np.argmax(row.diffs))
    va, vb = a.values[worst], b.values[worst]
    with np.errstate(invalid="ignore"):
        gap = np.where((va == vb) | (np.isnan(va) & np.isnan(vb)), 0.0, np.abs(va - vb))
    gap = np.where(np.isnan(gap), np.inf, gap)
    at = np.unravel_index(int(np.argmax(gap)), gap.shape) if gap.size else ()
    where = []
    if va.ndim == 2:  # per-step outputs: (steps, units)
        steps = [int(t) for t in np.flatnonzero(gap.max(axis=1) > row._allowed[worst])]
        where.append(f"step {int(at[0])} (steps {_spans(steps)} of {va.shape[0]} differ)")
    if va.ndim >= 1 and va.shape[-1] > 1:
        where.append(f"output {int(at[-1])}")
    position = f" at {', '.join(where)}" if where else ""
    lines.append(
        f"    largest on {names[worst]}{position}: {labels[0]} {float(va[at]):.6g}, {labels[1]} {float(vb[at]):.6g}"
    )
    return lines
