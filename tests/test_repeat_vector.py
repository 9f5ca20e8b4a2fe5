"""The ``repeat_vector`` kind end to end: Keras's ``RepeatVector(n)`` between a sequence encoder and a decoder.

References come from outside the code under test: Keras models written by hand with
``keras.layers.RepeatVector`` (counts, ``model.summary()`` rows, outputs and masks, training) and
PyTorch modules written by hand. Cases: keras.io's addition RNN (one-hot input of 7 steps, 4 output
steps), an LSTM autoencoder on ``Masking`` input (pre- and post-padded rows, a fully padded row,
length 1), a bidirectional encoder on token ids with ``mask_zero`` (Keras drops the mask at
RepeatVector: the decoder sees none).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import SpecError
from rnnspec.lang.layers import RepeatVectorSpec

from .kinds import (
    BACKENDS,
    TOL,
    assert_counts_equal_keras,
    assert_keras_file_imports,
    assert_onnx_export_equals_reference,
    assert_state_dict_imports,
    assert_torch_export_equals_reference,
    hand_built,
    training_gaps,
)
from .parity import backend_or_skip, random_inputs, random_weights


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "repeat-vector", **data})


# -- the spec ------------------------------------------------------------------------------------------


def test_entry_names_shapes_and_output_steps():
    spec = _spec(
        input={"features": 12, "seq_len": 7},
        recurrent=[
            {"cell": "lstm", "units": 8},
            {"repeat_vector": 4},
            {"cell": "lstm", "units": 8, "return_sequences": True},
        ],
        head={"units": 12, "activation": "softmax"},
    )
    assert isinstance(spec.recurrent[1], RepeatVectorSpec)
    assert spec.layer_names() == ["recurrent_0", "repeat_vector_0", "recurrent_1", "head"]
    assert [row.output_shape for row in analyze(spec).layers] == [(None, 8), (None, 4, 8), (None, 4, 8), (None, 4, 12)]
    assert [row.params for row in analyze(spec).layers][1] == 0
    assert spec.output_per_step and spec.output_steps(7) == 4 and spec.output_units == 12
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec


def test_a_mask_stops_at_repeat_vector():
    spec = _spec(
        input={"vocab_size": 20},
        embedding={"output_dim": 4, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 3}, {"repeat_vector": 5}, {"cell": "gru", "units": 3,
                                                                        "return_sequences": True}],
    )  # fmt: skip
    assert spec.masked and not spec.output_masked


BAD = [
    ("after-sequences", [{"cell": "lstm", "units": 2, "return_sequences": True}, {"repeat_vector": 3},
                         {"cell": "lstm", "units": 2}], "recurrent[1].repeat_vector", "its input is a sequence"),
    ("first", [{"repeat_vector": 3}, {"cell": "lstm", "units": 2}], "recurrent[0].repeat_vector",
     "its input is a sequence"),
    ("zero", [{"cell": "lstm", "units": 2}, {"repeat_vector": 0}, {"cell": "lstm", "units": 2}],
     "recurrent[1].repeat_vector", "greater than 0"),
    ("no-repeat", [{"cell": "lstm", "units": 2}, {"cell": "lstm", "units": 2}], "recurrent[0].return_sequences",
     "put `{repeat_vector: N}` between them"),
]  # fmt: skip


@pytest.mark.parametrize(("recurrent", "where", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(recurrent: list, where: str, message: str):
    with pytest.raises(SpecError) as info:
        _spec(input={"features": 3}, recurrent=recurrent)
    assert where in str(info.value) and message in str(info.value)


def test_in_a_head_list_it_is_refused():
    with pytest.raises(SpecError, match=re.escape("cannot be in `head`")):
        _spec(input={"features": 3}, recurrent=[{"cell": "lstm", "units": 2}],
              head=[{"repeat_vector": 2}, {"units": 1}])  # fmt: skip


# -- the cases ----------------------------------------------------------------------------------------------


def addition_rnn(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """keras.io "Sequence to sequence learning for performing number addition": one-hot (7, 12) input →
    LSTM(8) → RepeatVector(4) → LSTM(8, return_sequences) → Dense(12, softmax) on each of the 4 steps."""
    spec = _spec(
        input={"features": 12, "seq_len": 7},
        recurrent=[{"cell": "lstm", "units": 8}, {"repeat_vector": 4},
                   {"cell": "lstm", "units": 8, "return_sequences": True}],
        head={"units": 12, "activation": "softmax"},
    )  # fmt: skip
    return spec, [L.LSTM(8), L.RepeatVector(4), L.LSTM(8, return_sequences=True), L.Dense(12, activation="softmax")]


def masked_autoencoder(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """An LSTM autoencoder: Masking(0) → LSTM(5) → RepeatVector(7) → LSTM(5, sequences) → Dense(3)."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 5}, {"repeat_vector": 7},
                   {"cell": "lstm", "units": 5, "return_sequences": True}],
        head={"units": 3},
    )  # fmt: skip
    return spec, [L.Masking(0.0), L.LSTM(5), L.RepeatVector(7), L.LSTM(5, return_sequences=True), L.Dense(3)]


def bidirectional_tokens(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding(mask_zero) → BiGRU → RepeatVector(5) → GRU(sequences) → SimpleRNN(sequences) → Dense(4)."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[
            {"cell": "gru", "units": 4, "bidirectional": True},
            {"repeat_vector": 5},
            {"cell": "gru", "units": 3, "return_sequences": True},
            {"cell": "simple_rnn", "units": 3, "return_sequences": True},
        ],
        head={"units": 4},
    )
    layers = [L.Embedding(30, 6, mask_zero=True), L.Bidirectional(L.GRU(4)), L.RepeatVector(5),
              L.GRU(3, return_sequences=True), L.SimpleRNN(3, return_sequences=True), L.Dense(4)]  # fmt: skip
    return spec, layers


CASES: dict[str, Callable[[Any], tuple[rnnspec.ModelSpec, list[Any]]]] = {
    f.__name__: f for f in (addition_rnn, masked_autoencoder, bidirectional_tokens)
}


def _inputs(spec: rnnspec.ModelSpec, padding: str) -> np.ndarray:
    """Rows of several lengths, a full row, a fully padded row and a row of length 1, pre- or post-padded."""
    x = random_inputs(spec, 3, batch=6, time=spec.input.seq_len or 7)
    x[2] = 0
    x[2, -1] = x[0, -1]
    if padding == "post":
        x = x[:, ::-1].copy()
    return x


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, seed)
    return spec, model, weights


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    assert_counts_equal_keras(*_hand_built(L, case), kind="RepeatVector")


@pytest.mark.parametrize("case", CASES)
def test_outputs_and_masks_equal_keras(L, case: str):
    """Every backend, pre- and post-padded, every position: the decoder sees no mask (Keras drops it)."""
    spec, hand, weights = _hand_built(L, case)
    models = {backend: rnnspec.build(spec, backend, weights=weights) for backend in BACKENDS}
    for padding in ("pre", "post"):
        x = _inputs(spec, padding)
        out = hand(x, training=False)
        expected = np.asarray(out)
        assert getattr(out, "_keras_mask", None) is None
        for backend, model in models.items():
            got = rnnspec.predict(model, x)
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= TOL, (backend, padding)
        assert models["torch"].output_mask is None


# -- import ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("case", ["addition_rnn", "masked_autoencoder"])
def test_keras_file_imports_and_predicts_what_keras_predicts(L, case: str, fmt: str, tmp_path):
    from rnnspec.interop.proof import hard_inputs

    spec, model, _ = _hand_built(L, case, seed=4)
    inputs = partial(hard_inputs, seed=1, batch=6, time=9)
    imported = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", inputs, like=spec).spec
    assert imported.output_steps(spec.input.seq_len or 9) == spec.output_steps(spec.input.seq_len or 9)


def test_a_repeat_vector_after_a_dense_layer_is_refused(L, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.keras_import import UnsupportedModelError
    from rnnspec.runtime.importing import import_model

    layers = [L.LSTM(4), L.Dense(3), L.RepeatVector(2), L.LSTM(2)]
    keras.Sequential([keras.Input((5, 3)), *layers]).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedModelError, match=re.escape("a RepeatVector after a Dense layer")):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.2
name: torch-autoencoder
convention: torch
input: {features: 3}
recurrent:
  - {cell: lstm, units: 6}
  - {repeat_vector: 5}
  - {cell: lstm, units: 6, return_sequences: true}
head: {units: 3}
"""


def test_state_dict_of_a_torch_autoencoder_imports(tmp_path):
    """nn.LSTM encoder, its last output repeated (unsqueeze + repeat), nn.LSTM decoder, nn.Linear per step."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class AutoEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.LSTM(3, 6, batch_first=True)
            self.decoder = nn.LSTM(6, 6, batch_first=True)
            self.out = nn.Linear(6, 3)

        def forward(self, x: Any) -> Any:
            h, _ = self.encoder(x)
            h, _ = self.decoder(h[:, -1].unsqueeze(1).repeat(1, 5, 1))
            return self.out(h)

    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(4, 9, 3)).astype(np.float32)
    imported = assert_state_dict_imports(AutoEncoder(), TORCH_SPEC, tmp_path / "m.pt", x)
    assert imported.expected.shape == (4, 5, 3)  # every backend's shape is the module's


# -- export -----------------------------------------------------------------------------------------------------

EXPORTED = {
    "masked-autoencoder": _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 5}, {"repeat_vector": 6},
                   {"cell": "gru", "units": 4, "return_sequences": True}],
        head={"units": 3},
    ),
    "tokens-bidirectional": _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 4, "bidirectional": True}, {"repeat_vector": 3},
                   {"cell": "lstm", "units": 3, "return_sequences": True, "bidirectional": True}],
        head={"units": 4, "activation": "softmax"},
    ),
}  # fmt: skip


def _export_inputs(spec: rnnspec.ModelSpec) -> np.ndarray:
    x = random_inputs(spec, 6, batch=6, time=7)
    return np.concatenate([x, x[:, ::-1]])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", EXPORTED)
def test_torch_export_equals_the_reference(case: str, tmp_path):
    spec = EXPORTED[case]
    tag = f"rv_{case.replace('-', '_')}"
    assert_torch_export_equals_reference(spec, random_weights(spec, 4), _export_inputs(spec), tmp_path, tag)
    assert "Keras RepeatVector(" in (tmp_path / "model.py").read_text()


@pytest.mark.parametrize("case", EXPORTED)
def test_onnx_export_runs_under_onnxruntime_and_equals_the_reference(case: str, tmp_path):
    spec = EXPORTED[case]
    x = _export_inputs(spec)
    assert_onnx_export_equals_reference(spec, random_weights(spec, 4), [x, x[:3, :2]], tmp_path)


# -- training parity --------------------------------------------------------------------------------------------

TRAINED = {
    "addition-rnn-adam": (
        {
            "input": {"features": 12, "seq_len": 7},
            "recurrent": [{"cell": "lstm", "units": 8}, {"repeat_vector": 4},
                          {"cell": "lstm", "units": 8, "return_sequences": True}],
            "head": {"units": 12, "activation": "softmax"},
            "training": {"loss": "sparse_categorical_crossentropy", "optimizer": "adam", "metrics": ["accuracy"]},
        },
        (),
    ),
    "masked-autoencoder-rmsprop": (
        {
            "input": {"features": 3, "mask_value": 0.0},
            "recurrent": [{"cell": "gru", "units": 5}, {"repeat_vector": 8},
                          {"cell": "gru", "units": 5, "return_sequences": True}],
            "head": {"units": 3},
            "training": {"loss": "mse", "optimizer": "rmsprop"},
        },
        (pytest.mark.slow,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(k, marks=m) for k, (_, m) in TRAINED.items()])
def test_training_gives_the_same_losses_and_weights(case: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches; the targets have the
    decoder's steps (4 for 7 input steps in the addition RNN)."""
    backend_or_skip("torch")
    backend_or_skip("keras")
    data = TRAINED[case][0]
    spec = _spec(**{**data, "training": {**data["training"], "batch_size": 4, "epochs": 2, "shuffle": True}})
    x = random_inputs(spec, 0, batch=24, time=8)
    rng = np.random.default_rng(1)
    steps = spec.output_steps(x.shape[1])
    if spec.training.loss.name == "mse":
        y = rng.normal(size=(24, steps, 3)).astype(np.float32)
    else:
        y = rng.integers(0, 12, size=(24, steps))
    losses, weights = training_gaps(spec, x, y, batches=12)
    assert losses <= 1e-4 and weights <= 1e-4
