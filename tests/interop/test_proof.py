"""The proof's verdict: two sides judged row by row against the fixed tolerance or their own noise floor.

The chaotic model (Embedding(50, 8) -> LSTM(32) -> Dense(1), every weight drawn from N(0, 1), 60 steps) is the
smallest found where float32 rounding alone grows past 1e-5 (LSTM(24) over 100 steps stays under 3e-6). Its float32
side is an LSTM written out here in NumPy (Keras's gate order i, f, c, o), independent of rnnspec; the other side is
rnnspec's NumPy reference, which computes in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnspec
from rnnspec.core.noise import FLOOR_FACTOR, ulp_perturbed
from rnnspec.interop.proof import TOLERANCE, Outputs, agreement, hard_inputs, row_names, run_side
from rnnspec.lang.loader import spec_from_dict

UNITS, STEPS = 32, 60
SPEC = spec_from_dict(
    {
        "rnnspec": 1,
        "name": "chaotic",
        "input": {"vocab_size": 50, "seq_len": STEPS},
        "embedding": {"output_dim": 8},
        "recurrent": [{"cell": "lstm", "units": UNITS}],
        "head": {"units": 1},
    }
)


def _weights(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {
        "embedding/embeddings": (50, 8),
        "recurrent_0/kernel": (8, 4 * UNITS),
        "recurrent_0/recurrent_kernel": (UNITS, 4 * UNITS),
        "recurrent_0/bias": (4 * UNITS,),
        "head/kernel": (UNITS, 1),
        "head/bias": (1,),
    }
    return {name: rng.normal(0.0, 1.0, size=shape).astype(np.float32) for name, shape in shapes.items()}


def _lstm(w: dict[str, np.ndarray], x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """The model written out: LSTM gates i, f, c, o (Keras), the head on the last state; every op in ``dtype``."""
    w = {k: v.astype(dtype) for k, v in w.items()}
    e = w["embedding/embeddings"][x]
    h = np.zeros((len(x), UNITS), dtype)
    c = np.zeros((len(x), UNITS), dtype)
    one = dtype(1)
    for t in range(x.shape[1]):
        z = e[:, t] @ w["recurrent_0/kernel"] + h @ w["recurrent_0/recurrent_kernel"] + w["recurrent_0/bias"]
        i, f, g, o = np.split(z, 4, axis=1)
        i, f, o = (one / (one + np.exp(-v)) for v in (i, f, o))
        c = f * c + i * np.tanh(g)
        h = o * np.tanh(c)
    return h @ w["head/kernel"] + w["head/bias"]


def _float32_side(w: dict[str, np.ndarray], x: np.ndarray) -> Outputs:
    return run_side(lambda v: _lstm(w, v), x, lambda v: _lstm(ulp_perturbed(w), v))


def _reference_side(w: dict[str, np.ndarray], x: np.ndarray) -> Outputs:
    model, nudged = rnnspec.build(SPEC, "numpy", weights=w), rnnspec.build(SPEC, "numpy", weights=ulp_perturbed(w))
    return run_side(lambda v: rnnspec.predict(model, v), x, lambda v: rnnspec.predict(nudged, v))


@pytest.fixture(scope="module")
def chaotic() -> tuple[dict[str, np.ndarray], np.ndarray, Outputs]:
    w = _weights()
    x = hard_inputs(SPEC)
    return w, x, _reference_side(w, x)


def test_float32_rounding_in_the_chaotic_model_exceeds_the_fixed_tolerance(chaotic) -> None:
    w, x, _ = chaotic
    rounding = np.abs(_lstm(w, x, np.float32) - _lstm(w, x, np.float64)).max()
    assert rounding > 5 * TOLERANCE  # measured 7.2e-5: the fixed tolerance alone would call a correct copy wrong


def test_a_correct_float32_copy_of_a_chaotic_model_passes_within_its_noise_floor(chaotic) -> None:
    w, x, reference = chaotic
    row = agreement("float32 LSTM vs rnnspec numpy", _float32_side(w, x), reference)
    assert row.max_diff > TOLERANCE
    assert row.passed and row.raised
    assert "ok" in row.line() and f"{FLOOR_FACTOR:g} x its noise floor" in row.line()


def test_a_copy_with_one_weight_off_by_1e_3_still_fails(chaotic) -> None:
    w, x, reference = chaotic
    wrong = {k: v.copy() for k, v in w.items()}
    wrong["recurrent_0/kernel"][0, 0] += 1e-3
    row = agreement("float32 LSTM vs rnnspec numpy", _float32_side(wrong, x), reference)
    assert not row.passed
    assert row.line().endswith("DIFFERENT") and f"row {row.worst}:" in row.line()


def test_where_the_floor_is_tiny_the_fixed_tolerance_decides() -> None:
    a = Outputs(np.zeros((3, 2)), np.full(3, 1e-9))
    b = Outputs(np.full((3, 2), 2e-5), np.full(3, 1e-9))
    row = agreement("a vs b", a, b)
    assert not row.passed and not row.raised
    assert "over the tolerance 1e-05" in row.line()
    assert agreement("a vs a", a, Outputs(np.full((3, 2), 5e-6), None)).passed


def test_each_row_has_its_own_allowance() -> None:
    """A large floor on one row (a long chaotic row) does not excuse a difference on another (a short row)."""
    a = Outputs(np.zeros((2, 1)), np.array([1e-3, 1e-9]))
    row = agreement("a vs b", a, Outputs(np.array([[5e-2], [5e-4]]), None))
    assert not row.passed and row.worst == 1
    assert agreement("a vs b", a, Outputs(np.array([[5e-2], [5e-6]]), None)).passed


def test_a_side_cannot_raise_its_own_allowance_by_its_own_floor() -> None:
    """A wrong copy whose own dynamics are chaotic (floor 1e-2: 100 x that would allow any sigmoid output) is judged
    by the smaller floor, the original's (found in review: the larger floor let the side under test excuse itself)."""
    original = Outputs(np.zeros((2, 1)), np.full(2, 1e-8))
    wrong = Outputs(np.full((2, 1), 0.3), np.full(2, 1e-2))
    assert not agreement("original vs copy", original, wrong).passed
    assert not agreement("copy vs original", wrong, original).passed
    alike = Outputs(np.full((2, 1), 2e-4), np.full(2, 3e-6))  # a correct chaotic copy: floors alike
    assert agreement("original vs copy", Outputs(np.zeros((2, 1)), np.full(2, 5e-6)), alike).passed


def test_without_a_measured_floor_the_line_says_so_and_the_tolerance_decides() -> None:
    row = agreement("a vs b", Outputs(np.zeros((2, 1)), None), Outputs(np.full((2, 1), 1e-6), None))
    assert row.passed and "noise floor not measured" in row.line()


def test_non_finite_or_misshaped_outputs_are_different() -> None:
    a = Outputs(np.zeros((2, 1)), np.full(2, 1.0))
    assert not agreement("nan", a, Outputs(np.array([[0.0], [np.nan]]), None)).passed
    both = Outputs(np.array([[np.nan], [np.inf]]), None)
    assert agreement("the same non-finite outputs", both, both).passed
    shapes = agreement("shapes", a, Outputs(np.zeros((2, 3)), None))
    assert not shapes.passed and shapes.line().endswith("DIFFERENT")


def test_hard_inputs_pad_with_the_id_the_spec_masks_and_leave_every_model_a_step() -> None:
    """Found in review: the proof padded with 0 under ``padding_idx: 1`` (its padding patterns were tokens, and
    random 1s made holes), and 12 steps could leave a wide pooling window no output step to compare."""
    import rnnspec
    from rnnspec.interop.proof import hard_inputs

    spec = rnnspec.loads_spec(
        "rnnspec: 1.2\nname: p\ninput: {vocab_size: 20}\nembedding: {output_dim: 4, padding_idx: 1}\n"
        "recurrent: [{cell: gru, units: 3}]\nhead: {units: 1}\n"
    )
    x = hard_inputs(spec)
    assert (x[3] == 1).all()  # the fully padded row: the padding id
    assert (x[0, : x.shape[1] // 2] == 1).all() and not (x[0, x.shape[1] // 2 :] == 1).any()  # pre-padded
    assert not (x[5:] == 1).any()  # the full rows hold no padding id
    pooled = rnnspec.loads_spec(
        "rnnspec: 1.2\nname: q\ninput: {features: 2}\nrecurrent:\n  - {cell: lstm, units: 3, return_sequences: true}\n"
        "  - {max_pool: {pool_size: 40}}\n  - {cell: lstm, units: 2}\nhead: {units: 1}\n"
    )
    steps = hard_inputs(pooled).shape[1]
    assert steps >= 40 and pooled.output_steps(steps) >= 1


def test_a_stateful_models_hard_inputs_put_the_patterns_in_a_later_batch_too() -> None:
    """Two consecutive batches at least, and the padding patterns again in the last one, where the carried states
    reach them (a fully padded row in the first batch starts from zeros and would hide what it does with states)."""
    spec = rnnspec.loads_spec(
        "rnnspec: 1.2\nname: s\ninput: {features: 2, batch_size: 6, mask_value: 0.0}\n"
        "recurrent: [{cell: lstm, units: 3, stateful: true}]\n"
    )
    x = hard_inputs(spec)
    assert len(x) == 12
    assert not x[3].any() and (x[4, :-1] == 0).all() and x[4, -1].any()  # fully padded, length 1
    assert not x[7].any() and (x[6, :-1] == 0).all() and x[6, -1].any()  # the same, in reverse order
    assert x[1, 0].all() and not x[1, -1].any()  # row 7 continues row 1, post-padded: its states are not zeros
    names = row_names(spec, len(x))
    assert names[3] == "row 3 (fully padded)" and names[7] == "row 7 (fully padded)" and names[5] == "row 5 (full)"
    assert names[6] == "row 6 (length 1)" and names[10] == "row 10 (pre-padded)"
