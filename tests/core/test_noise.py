"""The noise floor shared by check's training parity and the import/export proofs."""

from __future__ import annotations

import numpy as np

from rnnspec.core.noise import FLOOR_FACTOR, allowance, ulp_perturbed


def test_ulp_perturbation_moves_each_nonzero_weight_by_one_ulp():
    rng = np.random.default_rng(3)
    weights = {"kernel": rng.normal(size=(40, 30)).astype(np.float32), "bias": np.zeros(30, np.float32)}
    weights["kernel"][0, :5] = 0.0
    moved = ulp_perturbed(weights, seed=1)
    kernel, new = weights["kernel"].astype(np.float64), moved["kernel"].astype(np.float64)
    nonzero = kernel != 0
    step = np.abs(new - kernel)[nonzero]
    # one ulp either way: the distance is the spacing at the weight (or at its lower neighbour at a power of two)
    spacing = np.spacing(np.abs(weights["kernel"]))[nonzero].astype(np.float64)
    assert np.all((step == spacing) | (step == spacing / 2))
    assert 0.4 < np.mean(new[nonzero] > kernel[nonzero]) < 0.6  # both directions drawn
    assert np.all(new[~nonzero] == 0) and np.all(moved["bias"] == 0)
    assert moved["kernel"].dtype == np.float32


def test_the_allowance_is_the_tolerance_or_the_factor_times_the_floor_where_larger():
    assert float(allowance(1e-5, 1e-9)) == 1e-5
    assert float(allowance(1e-5, 3e-4)) == FLOOR_FACTOR * 3e-4
    np.testing.assert_array_equal(allowance(1e-4, np.array([0.0, 1e-5, 2e-3])), [1e-4, 1e-3, 0.2])


def test_a_non_finite_floor_allows_nothing_beyond_the_tolerance():
    """A side whose nudged run overflowed measured no floor: it cannot excuse a difference."""
    np.testing.assert_array_equal(allowance(1e-5, np.array([np.inf, np.nan])), [1e-5, 1e-5])
