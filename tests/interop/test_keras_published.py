"""rnnspec against the expected outputs published in Keras's own RNN unit tests.

Keras's unit tests pin the outputs of its recurrent layers for fixed weights: constant initializers
(kernel 0.01, recurrent kernel 0.02, bias 0.03 unless stated) on ``np.arange`` inputs. Every case
below copies one such published array verbatim, states the rnnspec spec of the same computation and
the canonical weights the test's initializers produce, and checks that each rnnspec backend
reproduces the array. The numbers come from Keras, never from rnnspec.

Source of every expected array: keras-team/keras at tag v3.15.1 (commit
250b42181ce9f37df68319d8f4753ec89a349a43), files ``keras/src/layers/rnn/*_test.py`` (identical to the
copies installed with Keras 3.15.1). Each case names its file, test and assertion.

Translations (exact, and checked against the installed Keras by ``test_keras_translation_of_mask``):

* An explicit ``mask=`` on float inputs becomes token ids through an embedding whose row ``1 + b*T + t``
  is the input vector of sample ``b`` at step ``t`` and whose row 0 is the padding id (``mask_zero``).
  Keras ignores the input of a masked step (the step keeps the previous state and output), so the
  content of row 0 is irrelevant to Keras; it is set to a conspicuous 9.0 so that a backend that
  does not skip a masked step cannot match by accident.
* ``rnn_test.py``'s ``OneStateRNNCell`` (``h = x·K + h·R``, K and R ones, no bias, no activation) is a
  SimpleRNN with ``activation: linear``, ``use_bias: false`` and ones for both kernels.
* ``[torch-convention]`` variants state the same case with ``convention: torch``: SimpleRNN and LSTM
  get PyTorch's two bias vectors, split as ``bias = keras_bias - 0.01`` and ``recurrent_bias = 0.01``
  (both are added to the same pre-activation, so the sum is the Keras bias); GRU ``reset_after`` keeps
  its ``(2, 3·units)`` bias unchanged.

Published cases that rnnspec's spec language cannot express are listed in ``NOT_EXPRESSIBLE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.core.registry import BackendNotFoundError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

KERAS_TESTS = "keras-team/keras@v3.15.1:keras/src/layers/rnn/"
BACKENDS = ("numpy", "torch", "keras")

# Inputs exactly as the Keras tests build them.
SEQ_2x3x4 = np.arange(24).reshape((2, 3, 4)).astype("float32")
SEQ_3x6x4 = np.arange(72).reshape((3, 6, 4)).astype("float32")
SEQ_2x4x3 = np.arange(24).reshape((2, 4, 3)).astype("float32")
ONES_1x2x3 = np.ones((1, 2, 3))
# Masks exactly as the Keras tests write them.
MASK_MID = np.array([[True, True, False, True], [True, False, False, True]])  # simple_rnn/gru/bidirectional
MASK_POST = np.array([[True, True, True, False], [True, True, False, False]])  # lstm_test, rnn_test
MASK_PRE = np.array([[False, True, True, True], [False, False, True, True]])  # lstm_test `backwards_mask`

CONSTANTS = (0.01, 0.02, 0.03)  # kernel, recurrent kernel, bias: initializers.Constant(...) of the tests
PAD_ROW_VALUE = 9.0  # content of the padding row 0 (ignored by Keras; see the module docstring)
TORCH_RECURRENT_BIAS = 0.01  # the share of the bias moved into `recurrent_bias` by [torch-convention] variants


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    """`file::Class.test`, then which assertion of the test (the tests assert several layers in turn)."""
    layer: dict[str, Any]
    """The rnnspec recurrent layer (one entry of `recurrent`)."""
    x: np.ndarray
    """The float input of the Keras test, (batch, time, features)."""
    expected: np.ndarray
    mask: np.ndarray | None = None
    """The explicit `mask=` of the Keras test; expressed through an embedding with `mask_zero`."""
    constants: tuple[float, float, float | None] = CONSTANTS
    backward_constants: tuple[float, float, float | None] | None = None
    """Constants of a Bidirectional's explicit `backward_layer`; default: the forward layer's."""
    keras_kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments of the Keras test's layer that do not change its outputs (`unroll`, `return_state`)."""
    atol: float = 1e-5
    rtol: float = 0.0
    """Tolerance: |got - expected| <= atol + rtol·|expected|; 1e-5 absolute, or the Keras test's own if larger."""
    torch_variant: bool = False
    """Also run the case with `convention: torch` (see the module docstring)."""


def _rows(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


# Tolerance of tests that pass atol=1e-5, rtol=1e-5 to assertAllClose (LSTM, GRU correctness, Bidirectional,
# rnn_test masking). Tests that use assertAllClose's defaults (atol=rtol=1e-6) get 1e-5 absolute, the larger.
KERAS_1E5 = {"atol": 1e-5, "rtol": 1e-5}

CASES: list[Case] = [
    # -- simple_rnn_test.py -------------------------------------------------------------------
    Case(
        "simple_rnn/correctness",
        "simple_rnn_test.py::SimpleRNNTest.test_correctness, 1st and 2nd assertions (plain and unroll=True)",
        {"cell": "simple_rnn", "units": 4},
        SEQ_2x3x4,
        _rows([0.405432] * 4, [0.73605347] * 4),
        torch_variant=True,
    ),
    Case(
        "simple_rnn/go_backwards",
        "simple_rnn_test.py::SimpleRNNTest.test_correctness, 3rd and 4th assertions (go_backwards=True)",
        {"cell": "simple_rnn", "units": 4, "go_backwards": True},
        SEQ_2x3x4,
        _rows([0.11144729] * 4, [0.5528889] * 4),
        torch_variant=True,
    ),
    Case(
        "simple_rnn/masking/last",
        "simple_rnn_test.py::SimpleRNNTest.test_masking, 1st assertion (SimpleRNN(4, unroll=True))",
        {"cell": "simple_rnn", "units": 4},
        SEQ_2x4x3,
        _rows([0.32951632] * 4, [0.61799484] * 4),
        mask=MASK_MID,
        keras_kwargs={"unroll": True},
        torch_variant=True,
    ),
    Case(
        "simple_rnn/masking/return_sequences",
        "simple_rnn_test.py::SimpleRNNTest.test_masking, 2nd and 3rd assertions (output[0], output[1])",
        {"cell": "simple_rnn", "units": 2, "return_sequences": True},
        SEQ_2x4x3,
        np.array(
            [
                [[0.0599281] * 2, [0.15122814] * 2, [0.15122814] * 2, [0.32394567] * 2],
                [[0.3969304] * 2, [0.3969304] * 2, [0.3969304] * 2, [0.608085] * 2],
            ]
        ),
        mask=MASK_MID,
    ),
    Case(
        "simple_rnn/masking/go_backwards",
        "simple_rnn_test.py::SimpleRNNTest.test_masking, last assertion (go_backwards=True)",
        {"cell": "simple_rnn", "units": 4, "go_backwards": True},
        SEQ_2x4x3,
        _rows([0.07376196] * 4, [0.43645123] * 4),
        mask=MASK_MID,
    ),
    # -- lstm_test.py (test_correctness is parameterized over implementation 1 and 2, same arrays) ---
    Case(
        "lstm/correctness",
        "lstm_test.py::LSTMTest.test_correctness, 1st and 3rd assertions (plain and unroll=True)",
        {"cell": "lstm", "units": 3},
        SEQ_3x6x4,
        _rows([0.6288687] * 3, [0.86899155] * 3, [0.9460773] * 3),
        **KERAS_1E5,
        torch_variant=True,
    ),
    Case(
        "lstm/go_backwards",
        "lstm_test.py::LSTMTest.test_correctness, 2nd assertion (go_backwards=True)",
        {"cell": "lstm", "units": 3, "go_backwards": True},
        SEQ_3x6x4,
        _rows([0.35622165] * 3, [0.74789524] * 3, [0.8872726] * 3),
        **KERAS_1E5,
        torch_variant=True,
    ),
    Case(
        "lstm/no_unit_forget_bias",
        "lstm_test.py::LSTMTest.test_correctness, 4th assertion (unit_forget_bias=False)",
        {"cell": "lstm", "units": 3, "unit_forget_bias": False},
        SEQ_3x6x4,
        _rows([0.57019705] * 3, [0.8661914] * 3, [0.9459622] * 3),
        **KERAS_1E5,
        torch_variant=True,
    ),
    Case(
        "lstm/no_bias",
        "lstm_test.py::LSTMTest.test_correctness, 5th assertion (use_bias=False)",
        {"cell": "lstm", "units": 3, "use_bias": False},
        SEQ_3x6x4,
        _rows([0.54986924] * 3, [0.86226785] * 3, [0.9443936] * 3),
        **KERAS_1E5,
    ),
    Case(
        "lstm/masking/last",
        "lstm_test.py::LSTMTest.test_masking, 1st assertion (LSTM(2, unroll=True))",
        {"cell": "lstm", "units": 2},
        SEQ_2x4x3,
        _rows([0.11755939] * 2, [0.28556206] * 2),
        mask=MASK_POST,
        keras_kwargs={"unroll": True},
        **KERAS_1E5,
    ),
    Case(
        "lstm/masking/return_sequences",
        "lstm_test.py::LSTMTest.test_masking, 2nd and 3rd assertions (output[0], output[1])",
        {"cell": "lstm", "units": 2, "return_sequences": True},
        SEQ_2x4x3,
        np.array(
            [
                [[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2, [0.11755939] * 2],
                [[0.14185596] * 2, [0.28556206] * 2, [0.28556206] * 2, [0.28556206] * 2],
            ]
        ),
        mask=MASK_POST,
        **KERAS_1E5,
        torch_variant=True,
    ),
    Case(
        "lstm/masking/go_backwards",
        "lstm_test.py::LSTMTest.test_masking, last assertion (go_backwards=True, backwards_mask)",
        {"cell": "lstm", "units": 2, "go_backwards": True},
        SEQ_2x4x3,
        _rows([0.15341201] * 2, [0.3844719] * 2),
        mask=MASK_PRE,
        **KERAS_1E5,
    ),
    # -- gru_test.py ------------------------------------------------------------------------------
    Case(
        "gru/correctness",
        "gru_test.py::GRUTest.test_correctness, 1st and 3rd assertions (plain and unroll=True; "
        "also test_legacy_implementation_argument)",
        {"cell": "gru", "units": 3},
        SEQ_3x6x4,
        _rows([0.5217289] * 3, [0.6371659] * 3, [0.39384964, 0.39384964, 0.3938496]),
        **KERAS_1E5,
        torch_variant=True,
    ),
    Case(
        "gru/go_backwards",
        "gru_test.py::GRUTest.test_correctness, 2nd assertion (go_backwards=True)",
        {"cell": "gru", "units": 3, "go_backwards": True},
        SEQ_3x6x4,
        _rows([0.24406259] * 3, [0.611516] * 3, [0.3928808] * 3),
        **KERAS_1E5,
    ),
    Case(
        "gru/reset_after_false",
        "gru_test.py::GRUTest.test_correctness, 4th assertion (reset_after=False)",
        {"cell": "gru", "units": 3, "reset_after": False},
        SEQ_3x6x4,
        _rows([0.51447755] * 3, [0.6426879] * 3, [0.40208298] * 3),
        **KERAS_1E5,
    ),
    Case(
        "gru/no_bias",
        "gru_test.py::GRUTest.test_correctness, 5th assertion (use_bias=False)",
        {"cell": "gru", "units": 3, "use_bias": False},
        SEQ_3x6x4,
        _rows([0.49988455] * 3, [0.64701194] * 3, [0.4103359] * 3),
        **KERAS_1E5,
    ),
    Case(
        "gru/masking/last",
        "gru_test.py::GRUTest.test_masking, 1st assertion (GRU(2, unroll=True))",
        {"cell": "gru", "units": 2},
        SEQ_2x4x3,
        _rows([0.19393763] * 2, [0.30818558] * 2),
        mask=MASK_MID,
        keras_kwargs={"unroll": True},
    ),
    Case(
        "gru/masking/return_sequences",
        "gru_test.py::GRUTest.test_masking, 2nd and 3rd assertions (output[0], output[1])",
        {"cell": "gru", "units": 2, "return_sequences": True},
        SEQ_2x4x3,
        np.array(
            [
                [[0.03606692] * 2, [0.09497581] * 2, [0.09497581] * 2, [0.19393763] * 2],
                [[0.16051409] * 2, [0.16051409] * 2, [0.16051409] * 2, [0.30818558] * 2],
            ]
        ),
        mask=MASK_MID,
    ),
    Case(
        "gru/masking/go_backwards",
        "gru_test.py::GRUTest.test_masking, last assertion (go_backwards=True)",
        {"cell": "gru", "units": 2, "go_backwards": True},
        SEQ_2x4x3,
        _rows([0.11669192] * 2, [0.28380975] * 2),
        mask=MASK_MID,
    ),
    # -- bidirectional_test.py --------------------------------------------------------------------
    Case(
        "bidirectional/simple_rnn/concat",
        "bidirectional_test.py::SimpleRNNTest.test_correctness, 1st assertion (Bidirectional(SimpleRNN(2)))",
        {"cell": "simple_rnn", "units": 2, "bidirectional": True},
        SEQ_2x3x4,
        _rows([0.39687276, 0.39687276, 0.10004295, 0.10004295], [0.7237238, 0.7237238, 0.53391594, 0.53391594]),
        **KERAS_1E5,
        torch_variant=True,
    ),
    Case(
        "bidirectional/simple_rnn/ave",
        "bidirectional_test.py::SimpleRNNTest.test_correctness, 2nd assertion (merge_mode='ave')",
        {"cell": "simple_rnn", "units": 2, "bidirectional": True, "merge_mode": "ave"},
        SEQ_2x3x4,
        _rows([0.24845785] * 2, [0.6288199] * 2),
        **KERAS_1E5,
    ),
    Case(
        "bidirectional/simple_rnn/mul_own_backward_layer",
        "bidirectional_test.py::SimpleRNNTest.test_correctness, 5th assertion (merge_mode='mul', backward_layer "
        "with kernel 0.03, recurrent 0.02, bias 0.01)",
        {"cell": "simple_rnn", "units": 2, "bidirectional": True, "merge_mode": "mul"},
        SEQ_2x3x4,
        _rows([0.08374989] * 2, [0.6740834] * 2),
        backward_constants=(0.03, 0.02, 0.01),
        **KERAS_1E5,
    ),
    Case(
        "bidirectional/gru/sum/return_sequences",
        "bidirectional_test.py::SimpleRNNTest.test_correctness, last assertion (GRU(2, return_sequences=True), "
        "merge_mode='sum')",
        {"cell": "gru", "units": 2, "return_sequences": True, "bidirectional": True, "merge_mode": "sum"},
        SEQ_2x3x4,
        np.array(
            [
                [[0.20937867] * 2, [0.34462988] * 2, [0.40290534] * 2],
                [[0.59829646] * 2, [0.6734641] * 2, [0.6479671] * 2],
            ]
        ),
        **KERAS_1E5,
    ),
    Case(
        "bidirectional/gru/masking",
        "bidirectional_test.py::SimpleRNNTest.test_masking (Bidirectional(GRU(2)), mask)",
        {"cell": "gru", "units": 2, "bidirectional": True},
        SEQ_2x4x3,
        _rows([0.19393763, 0.19393763, 0.11669192, 0.11669192], [0.30818558, 0.30818558, 0.28380975, 0.28380975]),
        mask=MASK_MID,
        **KERAS_1E5,
    ),
    Case(
        "bidirectional/lstm/concat",
        "bidirectional_test.py::SimpleRNNTest.test_return_state, `output` (Bidirectional(LSTM(2, return_state=True)))",
        {"cell": "lstm", "units": 2, "bidirectional": True},
        SEQ_2x4x3,
        _rows([0.1990008, 0.1990008, 0.12659755, 0.12659755], [0.52335435, 0.52335435, 0.44717982, 0.44717982]),
        keras_kwargs={"return_state": True},
        **KERAS_1E5,
        torch_variant=True,
    ),
    # -- rnn_test.py (OneStateRNNCell: a linear SimpleRNN without bias, kernels of ones) -------------
    Case(
        "rnn/one_state/last",
        "rnn_test.py::RNNTest.test_forward_pass_single_state, 1st assertion (return_sequences=False)",
        {"cell": "simple_rnn", "units": 2, "activation": "linear", "use_bias": False},
        ONES_1x2x3,
        _rows([9.0, 9.0]),
        constants=(1.0, 1.0, None),
    ),
    Case(
        "rnn/one_state/return_sequences",
        "rnn_test.py::RNNTest.test_forward_pass_single_state, 2nd assertion (return_sequences=True)",
        {"cell": "simple_rnn", "units": 2, "activation": "linear", "use_bias": False, "return_sequences": True},
        ONES_1x2x3,
        np.array([[[3.0, 3.0], [9.0, 9.0]]]),
        constants=(1.0, 1.0, None),
    ),
    Case(
        "rnn/one_state/go_backwards",
        "rnn_test.py::RNNTest.test_go_backwards, 1st assertion (go_backwards=True)",
        {"cell": "simple_rnn", "units": 2, "activation": "linear", "use_bias": False, "go_backwards": True},
        SEQ_2x3x4,
        _rows([202.0, 202.0], [538.0, 538.0]),
        constants=(1.0, 1.0, None),
    ),
    Case(
        "rnn/one_state/masking/last",
        "rnn_test.py::RNNTest.test_masking, 1st and 2nd assertions (unroll=False and True)",
        {"cell": "simple_rnn", "units": 2, "activation": "linear", "use_bias": False},
        SEQ_2x4x3,
        _rows([57.0, 57.0], [126.0, 126.0]),
        mask=MASK_POST,
        constants=(1.0, 1.0, None),
        **KERAS_1E5,
    ),
    Case(
        "rnn/one_state/masking/return_sequences",
        "rnn_test.py::RNNTest.test_masking, 3rd and 4th assertions (return_sequences=True, unroll=False and True)",
        {"cell": "simple_rnn", "units": 2, "activation": "linear", "use_bias": False, "return_sequences": True},
        SEQ_2x4x3,
        np.array(
            [
                [[3.0, 3.0], [18.0, 18.0], [57.0, 57.0], [57.0, 57.0]],
                [[39.0, 39.0], [126.0, 126.0], [126.0, 126.0], [126.0, 126.0]],
            ]
        ),
        mask=MASK_POST,
        constants=(1.0, 1.0, None),
        **KERAS_1E5,
    ),
]

# Published expected outputs that rnnspec's spec language cannot state, and why.
NOT_EXPRESSIBLE = {
    "simple_rnn_test.py::test_statefulness, lstm_test.py::test_statefulness, gru_test.py::test_statefulness, "
    "bidirectional_test.py::test_statefulness, rnn_test.py::test_statefulness_*, rnn_test.py::test_go_backwards "
    "(2nd part)": "stateful=True (state carried between calls); a spec has no stateful layers",
    "simple_rnn_test.py::test_pass_initial_state, lstm_test.py::test_pass_initial_state, "
    "gru_test.py::test_pass_initial_state, gru_test.py::test_pass_return_state, "
    "bidirectional_test.py::test_pass_initial_state, rnn_test.py::test_passing_initial_state_*": (
        "a non-zero initial_state; rnnspec models always start from zeros"
    ),
    "simple_rnn_test.py / lstm_test.py / gru_test.py ::test_masking, zero_output_for_mask=True assertions": (
        "zero_output_for_mask is not a spec option (rnnspec keeps Keras's default, False, for a plain layer)"
    ),
    "bidirectional_test.py::test_correctness, merge_mode=None assertion": (
        "merge_mode None (two separate outputs) is not a spec option; its two arrays are the halves of the "
        "concat case, which is covered"
    ),
    "bidirectional_test.py::test_return_state, h1/c1/h2/c2 and the `state` of gru_test.py::test_pass_return_state": (
        "return_state is not a spec option (the `output` of test_return_state is covered)"
    ),
    "rnn_test.py::TwoStatesRNNCell cases": "a custom cell with two states; not one of simple_rnn/lstm/gru",
}

# The same computation in the tests' own words (name of the Keras layer class per cell).
KERAS_CLASS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


# -- the rnnspec side ---------------------------------------------------------------------------------


def _table(case: Case) -> np.ndarray:
    """Embedding rows: 0 is padding, 1 + b*T + t is the input vector of sample b at step t."""
    batch, time, features = case.x.shape
    pad = np.full((1, features), PAD_ROW_VALUE)
    return np.concatenate([pad, case.x.reshape(batch * time, features)]).astype(np.float32)


def _ids(case: Case) -> np.ndarray:
    assert case.mask is not None
    batch, time, _ = case.x.shape
    return np.where(case.mask, 1 + np.arange(batch * time).reshape(batch, time), 0).astype(np.int64)


def spec_dict(case: Case, convention: str = "keras") -> dict[str, Any]:
    batch, time, features = case.x.shape
    spec: dict[str, Any] = {"rnnspec": 1, "name": "keras-published", "convention": convention}
    if case.mask is None:
        spec["input"] = {"features": features}
    else:
        spec["input"] = {"vocab_size": 1 + batch * time}
        spec["embedding"] = {"output_dim": features, "mask_zero": True}
    spec["recurrent"] = [case.layer]
    return spec


def canonical_weights(case: Case, convention: str = "keras") -> dict[str, np.ndarray]:
    """The weights the Keras test's initializers produce, in rnnspec's canonical layout."""
    spec = rnnspec.spec_from_dict(spec_dict(case, convention))
    units = case.layer["units"]
    lstm_forget_one = case.layer["cell"] == "lstm" and case.layer.get("unit_forget_bias", True)
    out = {}
    for name, shape in rnnspec.weight_shapes(spec).items():
        leaf = name.rsplit("/", 1)[1]
        kernel, recurrent, bias = (
            case.backward_constants if "/backward/" in name and case.backward_constants else case.constants
        )
        if leaf == "embeddings":
            value = _table(case)
        elif leaf == "kernel":
            value = np.full(shape, kernel)
        elif leaf == "recurrent_kernel":
            value = np.full(shape, recurrent)
        elif leaf == "bias":
            value = np.full(shape, bias)
            if lstm_forget_one:
                # keras/src/layers/rnn/lstm.py, LSTMCell.build: with unit_forget_bias the bias is
                # concat([init(units), ones(units), init(2*units)]): the forget slice is 1.0, not 0.03.
                value[units : 2 * units] = 1.0
            if convention == "torch" and len(shape) == 1:
                value = value - TORCH_RECURRENT_BIAS  # the rest goes into recurrent_bias
        elif leaf == "recurrent_bias":
            value = np.full(shape, TORCH_RECURRENT_BIAS)
        else:  # pragma: no cover - a weight this table does not know
            raise AssertionError(f"unexpected weight {name}")
        out[name] = value.astype(np.float32)
    return out


def model_input(case: Case) -> np.ndarray:
    return case.x.astype(np.float32) if case.mask is None else _ids(case)


def assert_published(got: Any, case: Case) -> None:
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == case.expected.shape, f"shape {got.shape}, published {case.expected.shape}"
    diff = np.abs(got - case.expected)
    bound = case.atol + case.rtol * np.abs(case.expected)
    assert np.all(diff <= bound), (
        f"max abs diff {diff.max():.3g} > tolerance (atol {case.atol}, rtol {case.rtol}); "
        f"source {KERAS_TESTS}{case.source}\ngot:\n{got}\npublished:\n{case.expected}"
    )


def _backend_or_skip(backend: str) -> None:
    if backend in ("torch", "keras"):
        pytest.importorskip(backend)
    try:
        rnnspec.get_backend(backend)
    except BackendNotFoundError as exc:
        pytest.skip(f"the rnnspec {backend} backend is not implemented yet: {exc}")


RNNSPEC_CASES = [pytest.param(c, "keras", id=c.id) for c in CASES] + [
    pytest.param(c, "torch", id=f"{c.id}[torch-convention]") for c in CASES if c.torch_variant
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "convention"), RNNSPEC_CASES)
def test_rnnspec_reproduces_keras_published_output(case: Case, convention: str, backend: str) -> None:
    _backend_or_skip(backend)
    model = rnnspec.build(spec_dict(case, convention), backend, weights=canonical_weights(case, convention))
    assert_published(rnnspec.predict(model, model_input(case)), case)


def test_table_is_sound() -> None:
    """Every case is a valid spec whose weights fit it, and every expected array is finite."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        for convention in ("keras", "torch") if case.torch_variant else ("keras",):
            spec = rnnspec.spec_from_dict(spec_dict(case, convention))
            weights = canonical_weights(case, convention)
            assert set(weights) == set(rnnspec.weight_shapes(spec))
            assert spec.output_per_step == (case.expected.ndim == 3)
        assert np.isfinite(case.expected).all()
        assert case.expected.shape[0] == case.x.shape[0]


def test_torch_convention_bias_split_sums_to_keras_bias() -> None:
    for case in (c for c in CASES if c.torch_variant and c.layer["cell"] != "gru"):
        keras_w, torch_w = canonical_weights(case, "keras"), canonical_weights(case, "torch")
        for name, value in keras_w.items():
            if name.endswith("/bias"):
                recurrent = torch_w[name.removesuffix("bias") + "recurrent_bias"]
                np.testing.assert_allclose(torch_w[name] + recurrent, value, atol=1e-7)


# -- the published numbers, checked against the installed Keras itself (no rnnspec involved) ----------


def _keras_layer(case: Case):
    from keras import initializers, layers

    def make(constants, **extra):
        kernel, recurrent, bias = constants
        kw: dict[str, Any] = {
            "kernel_initializer": initializers.Constant(kernel),
            "recurrent_initializer": initializers.Constant(recurrent),
        }
        if bias is not None:
            kw["bias_initializer"] = initializers.Constant(bias)
        for key in ("return_sequences", "go_backwards", "use_bias", "activation", "unit_forget_bias", "reset_after"):
            if key in case.layer:
                kw[key] = case.layer[key]
        kw.update(case.keras_kwargs)
        kw.update(extra)
        return getattr(layers, KERAS_CLASS[case.layer["cell"]])(case.layer["units"], **kw)

    if not case.layer.get("bidirectional"):
        return make(case.constants)
    backward = None
    if case.backward_constants is not None:
        backward = make(case.backward_constants, go_backwards=True)
    return layers.Bidirectional(
        make(case.constants), merge_mode=case.layer.get("merge_mode", "concat"), backward_layer=backward
    )


def _first(output):
    return output[0] if isinstance(output, (list, tuple)) else output


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_published_output_holds_in_installed_keras(case: Case) -> None:
    """The Keras test's own layer, input and mask, run on the installed Keras: the table is known-good."""
    pytest.importorskip("keras")
    layer = _keras_layer(case)
    kwargs = {} if case.mask is None else {"mask": case.mask}
    assert_published(np.asarray(_first(layer(case.x, **kwargs))), case)


@pytest.mark.parametrize("case", [c for c in CASES if c.mask is not None], ids=lambda c: c.id)
def test_keras_translation_of_mask(case: Case) -> None:
    """The embedding translation of an explicit mask gives the published output in the installed Keras."""
    keras = pytest.importorskip("keras")
    batch, time, features = case.x.shape
    embedding = keras.layers.Embedding(1 + batch * time, features, mask_zero=True)
    model = keras.Sequential([keras.Input((time,), dtype="int32"), embedding, _keras_layer(case)])
    embedding.set_weights([_table(case)])
    assert_published(np.asarray(model(_ids(case).astype("int32"))), case)


def test_one_state_cell_is_a_linear_simple_rnn() -> None:
    """rnn_test.py's OneStateRNNCell, where installed, gives the same published outputs as its translation."""
    pytest.importorskip("keras")
    rnn_test = pytest.importorskip("keras.src.layers.rnn.rnn_test", reason="Keras's test modules are not installed")
    from keras import layers

    for case in (c for c in CASES if c.id.startswith("rnn/one_state/")):
        layer = layers.RNN(
            rnn_test.OneStateRNNCell(2),
            return_sequences=case.layer.get("return_sequences", False),
            go_backwards=case.layer.get("go_backwards", False),
        )
        kwargs = {} if case.mask is None else {"mask": case.mask}
        assert_published(np.asarray(layer(case.x, **kwargs)), case)
