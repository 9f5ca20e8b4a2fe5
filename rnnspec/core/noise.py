"""The noise floor: how far float32 rounding alone moves a result, the one yardstick of ``check``'s training parity
and of the proofs of ``import`` and ``export``.

Two correct implementations of a float32 model round differently at every operation. Where the model amplifies
rounding (a chaotic recurrent net: large weights, long sequences) their outputs part by far more than a fixed
tolerance, although neither is wrong. Each side's *own* noise floor measures that amplification: the difference
between its result and its result from weights each moved by one float32 ulp (:func:`ulp_perturbed`). A difference
between the two sides passes when it is within :func:`allowance`: the fixed tolerance, or :data:`FLOOR_FACTOR`
times the floor where that is larger.

>>> float(allowance(1e-5, 3e-4))
0.03
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["FLOOR_FACTOR", "NUDGE_SEED", "allowance", "floor_note", "ulp_perturbed"]

FLOOR_FACTOR = 100.0
"""A difference passes within FLOOR_FACTOR x the noise floor. The floor perturbs the weights once by one ulp, while
two frameworks round differently at every op of every step, so their difference is a sum of many such perturbations.
Measured: training parity on imdb_simplernn (10 steps, batch 8), the cross difference reaches 2-8x the floor; forward
passes of Embedding -> LSTM(32) -> Dense with N(0, 1) weights over 60-100 steps (numpy, torch and keras builds,
three weight seeds), up to 3.5x the floor of the same input row. A wrong optimizer formula (RMSprop's epsilon outside
the square root, Adam without bias correction) exceeds it 1,000-100,000-fold; a copy with one weight off by 1e-3
fails the proof (tests/interop/test_proof.py, tests/cli/test_interop_proofs.py)."""

NUDGE_SEED = 1000
"""The seed of the up/down directions of the one-ulp nudge (any seed measures the same floor)."""


def ulp_perturbed(weights: Mapping[str, np.ndarray], seed: int = NUDGE_SEED) -> dict[str, np.ndarray]:
    """Every nonzero weight moved by one float32 ulp, up or down at random (zeros stay zero)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in weights.items():
        value = np.asarray(value, dtype=np.float32)
        direction = np.where(rng.random(value.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
        out[name] = np.where(value != 0, np.nextafter(value, direction), value).astype(np.float32)
    return out


def allowance(tolerance: float, floor: float | np.ndarray) -> np.ndarray:
    """The largest difference float32 rounding explains: ``tolerance``, or ``FLOOR_FACTOR x floor`` where larger
    (elementwise over an array of floors; a non-finite floor allows nothing beyond ``tolerance``)."""
    floor = np.asarray(floor, dtype=np.float64)
    return np.maximum(tolerance, np.where(np.isfinite(floor), FLOOR_FACTOR * floor, 0.0))


def floor_note(where: str) -> str:
    """The sentence a report prints when a noise floor raised its tolerance (``where``: what part, the rows...)."""
    return (
        f"the noise floor is how far each side's own {where} moves when every weight moves by one float32 ulp; "
        f"where a model amplifies float32 rounding (large weights, long sequences) two correct implementations "
        f"differ by more than the fixed tolerance, and up to {FLOOR_FACTOR:g} x that floor is rounding, not a "
        f"wrong copy"
    )
