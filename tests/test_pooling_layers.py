"""The ``max_pool`` / ``average_pool`` kinds end to end: Keras's ``MaxPooling1D`` / ``AveragePooling1D``.

References come from outside the code under test: Keras models written by hand with ``keras.layers.MaxPooling1D``
/ ``AveragePooling1D`` (counts, ``model.summary()`` rows, outputs, training), and the window arithmetic written
out here from keras-layer-semantics.md section 2 (valid ``floor((T - k) / s) + 1``, same ``ceil(T / s)`` with the
extra padding step on the right; an average at a padded edge over its real steps). Keras's pooling layers do not
support masking (``supports_masking`` is False: the mask is dropped with a warning), so a masked input is refused
with that reason. Cases: Keras's imdb_cnn_lstm form (Embedding → MaxPooling1D → LSTM), pooling between recurrent
layers, ``same`` padding with strides on odd and even lengths; import from ``.keras`` / ``.h5``, a state dict,
plain-torch and ONNX export, training parity.
"""

from __future__ import annotations

import math
import re
from functools import partial
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import SpecError
from rnnspec.lang.layers import AveragePoolSpec, MaxPoolSpec

from .kinds import (
    BACKENDS,
    TOL,
    assert_counts_equal_keras,
    assert_keras_file_imports,
    assert_onnx_export_equals_reference,
    assert_state_dict_imports,
    assert_torch_export_equals_reference,
    assign_normal,
    hand_built,
    summary_rows,
    training_gaps,
)
from .parity import backend_or_skip, random_inputs, random_weights


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "pooling", **data})


def _steps(T: int, k: int, s: int, padding: str) -> int:
    """Keras's output length, written out (keras-layer-semantics.md section 2)."""
    return math.floor((T - k) / s) + 1 if padding == "valid" else math.ceil(T / s)


# -- the spec ------------------------------------------------------------------------------------------


def test_entries_defaults_and_shorthands():
    spec = _spec(
        input={"features": 3},
        recurrent=[
            {"max_pool": None},
            {"average_pool": 3},
            {"cell": "lstm", "units": 4, "return_sequences": True},
            {"max_pool": {"pool_size": 3, "strides": 1, "padding": "same"}, "name": "pool"},
            {"cell": "gru", "units": 2},
        ],
    )
    first, second, third = spec.recurrent[0], spec.recurrent[1], spec.recurrent[3]
    assert isinstance(first, MaxPoolSpec) and isinstance(second, AveragePoolSpec)
    assert (first.pool_size, first.strides, first.padding) == (2, 2, "valid")  # Keras: strides default pool_size
    assert (second.pool_size, second.strides, second.padding) == (3, 3, "valid")
    assert (third.pool_size, third.strides, third.padding) == (3, 1, "same")
    assert spec.layer_names() == ["max_pool_0", "average_pool_0", "recurrent_0", "pool", "recurrent_1"]
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec
    assert all(row.params == 0 for row in analyze(spec).layers if "pool" in row.kind)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_output_lengths_are_kerass_formulas(padding: str):
    for T in range(3, 10):
        for k in (1, 2, 3, 4):
            for s in (1, 2, 3):
                if padding == "valid" and k > T:
                    continue
                spec = _spec(input={"features": 2, "seq_len": T},
                             recurrent=[{"average_pool": {"pool_size": k, "strides": s, "padding": padding}},
                                        {"cell": "gru", "units": 2, "return_sequences": True}])  # fmt: skip
                assert analyze(spec).layers[0].output_shape == (None, _steps(T, k, s, padding), 2)
                assert spec.output_steps(T) == _steps(T, k, s, padding)


BAD = [
    ("after-last-output", {"input": {"features": 3},
                           "recurrent": [{"cell": "lstm", "units": 2}, {"max_pool": 2}]},
     "recurrent[1].max_pool: MaxPooling1D slides a window over the time axis, but its input has no time axis"),
    ("mask-zero", {"input": {"vocab_size": 9}, "embedding": {"output_dim": 3, "mask_zero": True},
                   "recurrent": [{"max_pool": 2}, {"cell": "lstm", "units": 2}]},
     "Keras's MaxPooling1D does not support masking: it drops the mask"),
    ("masking-after-a-reader", {"input": {"features": 3, "mask_value": 0.0},
                                "recurrent": [{"cell": "lstm", "units": 2, "return_sequences": True},
                                              {"average_pool": 2}, {"cell": "gru", "units": 2}]},
     "move the average_pool entry before recurrent[0] (recurrent_0)"),
    ("padding-idx", {"input": {"vocab_size": 9}, "embedding": {"output_dim": 3, "padding_idx": 1},
                     "recurrent": [{"max_pool": 2}, {"cell": "lstm", "units": 2}]},
     "remove `padding_idx: 1` (Keras's model computes the same without it"),
    ("window-too-long", {"input": {"features": 3, "seq_len": 4},
                         "recurrent": [{"average_pool": 5}, {"cell": "lstm", "units": 2}]},
     "AveragePooling1D has no whole window in 4 steps"),
    ("causal", {"input": {"features": 3},
                "recurrent": [{"max_pool": {"padding": "causal"}}, {"cell": "lstm", "units": 2}]},
     "recurrent[0].max_pool.padding"),
    ("in-head", {"input": {"features": 3}, "recurrent": [{"cell": "lstm", "units": 2, "return_sequences": True}],
                 "head": [{"max_pool": 2}, {"units": 1}]}, "head[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(data: dict, message: str):
    with pytest.raises(SpecError, match=re.escape(message)):
        _spec(**data)


def test_the_mask_refusal_says_removing_it_is_exact_before_any_reader():
    with pytest.raises(SpecError) as info:
        _spec(input={"vocab_size": 9}, embedding={"output_dim": 3, "mask_zero": True},
              recurrent=[{"dropout": 0.1}, {"average_pool": 2}, {"cell": "lstm", "units": 2}])  # fmt: skip
    text = str(info.value)
    assert "recurrent[1].average_pool" in text
    assert "remove `mask_zero: true` (Keras's model computes the same without it" in text


# -- the cases: a spec and the same model written with Keras's layers ---------------------------------


def imdb_cnn_lstm_pool(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Keras's imdb_cnn_lstm form without its Conv1D: Embedding → Dropout → MaxPooling1D(4) → LSTM → Dense(1)."""
    spec = _spec(input={"vocab_size": 30, "seq_len": 11}, embedding={"output_dim": 6},
                 recurrent=[{"dropout": 0.25}, {"max_pool": 4}, {"cell": "lstm", "units": 5}],
                 head={"units": 1, "activation": "sigmoid"})  # fmt: skip
    return spec, [L.Embedding(30, 6), L.Dropout(0.25), L.MaxPooling1D(4), L.LSTM(5), L.Dense(1, "sigmoid")]


def between_recurrent_layers(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """LSTM(sequences) → AveragePooling1D(3, 2, same) → GRU(sequences) → MaxPooling1D(2, 1, same) → Dense per step."""
    spec = _spec(
        input={"features": 3},
        recurrent=[
            {"cell": "lstm", "units": 4, "return_sequences": True},
            {"average_pool": {"pool_size": 3, "strides": 2, "padding": "same"}},
            {"cell": "gru", "units": 5, "return_sequences": True},
            {"max_pool": {"pool_size": 2, "strides": 1, "padding": "same"}},
        ],
        head={"units": 2},
    )
    return spec, [L.LSTM(4, return_sequences=True), L.AveragePooling1D(3, 2, "same"), L.GRU(5, return_sequences=True),
                  L.MaxPooling1D(2, 1, "same"), L.Dense(2)]  # fmt: skip


def same_edges(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Both poolings first, ``same`` with an even window and strides 3 (padding on both edges), then valid."""
    spec = _spec(
        input={"features": 2},
        recurrent=[
            {"average_pool": {"pool_size": 4, "strides": 3, "padding": "same"}},
            {"max_pool": {"pool_size": 4, "strides": 3, "padding": "same"}},
            {"cell": "simple_rnn", "units": 3, "return_sequences": True},
            {"average_pool": {"pool_size": 1}},
        ],
    )
    return spec, [L.AveragePooling1D(4, 3, "same"), L.MaxPooling1D(4, 3, "same"), L.SimpleRNN(3, return_sequences=True),
                  L.AveragePooling1D(1)]  # fmt: skip


CASES = {"imdb_cnn_lstm_pool": imdb_cnn_lstm_pool, "between": between_recurrent_layers, "same_edges": same_edges}


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, seed)
    return spec, model, weights


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    assert_counts_equal_keras(*_hand_built(L, case))


def _inputs(spec: rnnspec.ModelSpec, time: int) -> np.ndarray:
    x = random_inputs(spec, 3, batch=5, time=time)
    if spec.input.vocab_size is not None:
        x[x == 0] = 1  # no padding: Keras's pooling layers take every step as data
    return x


@pytest.mark.parametrize("case", CASES)
def test_outputs_equal_keras(L, case: str):
    """Every backend, an odd and an even length (the ``same`` padding differs), every position compared."""
    spec, hand, weights = _hand_built(L, case)
    models = {backend: rnnspec.build(spec, backend, weights=weights) for backend in BACKENDS}
    for time in [spec.input.seq_len] if spec.input.seq_len else [7, 8, 2]:
        x = _inputs(spec, time)
        expected = np.asarray(hand(x, training=False))
        for backend, model in models.items():
            got = rnnspec.predict(model, x)
            assert got.shape == expected.shape, (backend, time)
            assert np.abs(got - expected).max() <= TOL, (backend, time)
        assert models["torch"].output_mask is None


def test_average_same_counts_real_steps_only_as_keras():
    """keras-layer-semantics.md section 2's numbers: AveragePooling1D(2, 1, 'same')([1, 2, 3, 4]) = [1.5, 2.5, 3.5, 4]
    and (3, 1, 'same') = [1.5, 2, 3, 3.5] on every backend (PyTorch's count_include_pad=True would give 2 and 7/3)."""
    x = np.array([[[1.0], [2.0], [3.0], [4.0]]], dtype=np.float32)
    for k, expected in ((2, [1.5, 2.5, 3.5, 4.0]), (3, [1.5, 2.0, 3.0, 3.5])):
        spec = _spec(input={"features": 1}, recurrent=[{"average_pool": {"pool_size": k, "strides": 1,
                                                                         "padding": "same"}},
                                                       {"cell": "simple_rnn", "units": 1, "activation": "linear",
                                                        "use_bias": False, "return_sequences": True}])  # fmt: skip
        weights = {"recurrent_0/kernel": np.ones((1, 1), np.float32), "recurrent_0/recurrent_kernel": np.zeros((1, 1),
                   np.float32)}  # fmt: skip
        for backend in BACKENDS:
            backend_or_skip(backend)
            got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
            assert np.abs(got[0, :, 0] - expected).max() <= TOL, (backend, k)


# -- import -------------------------------------------------------------------------------------------


def _keras_file_model(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((12,), dtype="int32"), L.Embedding(30, 6), L.MaxPooling1D(),
                             L.LSTM(5, return_sequences=True), L.AveragePooling1D(3, strides=2, padding="same"),
                             L.GRU(4), L.Dense(1, activation="sigmoid")])  # fmt: skip


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_file_imports_and_predicts_what_keras_predicts(L, fmt: str, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.proof import hard_inputs

    model = assign_normal(_keras_file_model(keras))
    inputs = partial(hard_inputs, seed=1, batch=6, time=12)
    spec = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", inputs).spec
    pools = [(layer.kind, layer.pool_size, layer.strides, layer.padding) for _, layer in spec.stack()
             if "pool" in layer.kind]  # fmt: skip
    assert pools == [("max_pool", 2, 2, "valid"), ("average_pool", 3, 2, "same")]


def test_a_keras_pooling_of_a_sequence_whose_mask_was_read_is_refused_with_the_reason(L, tmp_path):
    """A recurrent layer read the embedding's mask, then Keras's layer drops it: refused, saying so (a mask dropped
    before any layer read it imports as mask_zero: false: tests/interop/test_import_dropped_masks.py)."""
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.runtime.importing import import_model

    layers = [
        L.Embedding(9, 3, mask_zero=True),
        L.LSTM(2, return_sequences=True),
        L.MaxPooling1D(2),
        L.LSTM(2),
        L.Dense(1),
    ]
    keras.Sequential([keras.Input((None,), dtype="int32"), *layers]).save(tmp_path / "m.keras")
    with pytest.raises(rnnspec.RnnspecError, match="does not support masking"):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.2
name: torch-pooling
convention: torch
input: {vocab_size: 30}
embedding: {output_dim: 6}
recurrent:
  - {max_pool: {pool_size: 2}}
  - {cell: lstm, units: 8, return_sequences: true}
  - {average_pool: {pool_size: 2, strides: 1}}
  - {cell: gru, units: 5}
head: {units: 3}
"""


def test_state_dict_with_pooling_imports(tmp_path):
    """A PyTorch module with F.max_pool1d / F.avg_pool1d between its layers: the poolings take no tensors."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Module(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(30, 6)
            self.lstm = nn.LSTM(6, 8, batch_first=True)
            self.gru = nn.GRU(8, 5, batch_first=True)
            self.fc = nn.Linear(5, 3)

        def forward(self, x: Any) -> Any:
            h = nn.functional.max_pool1d(self.emb(x).transpose(1, 2), 2).transpose(1, 2)
            h, _ = self.lstm(h)
            h = nn.functional.avg_pool1d(h.transpose(1, 2), 2, 1).transpose(1, 2)
            h, _ = self.gru(h)
            return self.fc(h[:, -1])

    torch.manual_seed(0)
    x = np.random.default_rng(1).integers(0, 30, size=(5, 9))
    assert_state_dict_imports(Module(), TORCH_SPEC, tmp_path / "m.pt", x)


# -- export: plain PyTorch and ONNX ---------------------------------------------------------------------

EXPORTED = _spec(
    input={"features": 3},
    recurrent=[
        {"max_pool": {"pool_size": 3, "strides": 2, "padding": "same"}},
        {"cell": "lstm", "units": 5, "return_sequences": True},
        {"average_pool": {"pool_size": 4, "strides": 3, "padding": "same"}},
        {"cell": "gru", "units": 4, "return_sequences": True},
        {"average_pool": {"pool_size": 2, "strides": 1}},
        {"max_pool": {"pool_size": 2, "strides": 1}},
    ],
    head={"units": 2},
)


def _export_inputs(time: int) -> np.ndarray:
    return np.random.default_rng(6).normal(size=(4, time, 3)).astype(np.float32)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_export_writes_the_poolings_and_equals_the_reference(tmp_path):
    inputs = [_export_inputs(time) for time in (17, 18)]  # the same padding differs by length: computed in forward
    assert_torch_export_equals_reference(EXPORTED, random_weights(EXPORTED, 4), inputs, tmp_path, "pooling")
    assert "Keras MaxPooling1D(3, strides=2, padding='same')" in (tmp_path / "model.py").read_text()


def test_onnx_export_runs_under_onnxruntime_and_equals_the_reference(tmp_path):
    onnx = pytest.importorskip("onnx")
    inputs = [_export_inputs(time) for time in (17, 18)]
    assert_onnx_export_equals_reference(EXPORTED, random_weights(EXPORTED, 4), inputs, tmp_path)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert {"MaxPool", "AveragePool"} <= ops


# -- training parity ------------------------------------------------------------------------------------

TRAINED = {
    "imdb-max-pool-adam": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6},
            "recurrent": [{"max_pool": 2}, {"cell": "lstm", "units": 5}],
            "head": {"units": 1, "activation": "sigmoid"},
            "training": {"loss": "binary_crossentropy", "optimizer": "adam"},
        },
        (),
    ),
    "per-step-average-same-rmsprop": (
        {
            "input": {"features": 3},
            "recurrent": [{"cell": "gru", "units": 5, "return_sequences": True},
                          {"average_pool": {"pool_size": 3, "strides": 2, "padding": "same"}}],
            "head": {"units": 3, "activation": "softmax"},
            "training": {"loss": "sparse_categorical_crossentropy", "optimizer": "rmsprop"},
        },
        (pytest.mark.slow,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(k, marks=m) for k, (_, m) in TRAINED.items()])
def test_training_gives_the_same_losses_and_weights(case: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches: the gradient goes
    through the max (to the winning step) and the average (shared by the window's real steps) alike."""
    backend_or_skip("torch")
    backend_or_skip("keras")
    data = TRAINED[case][0]
    spec = _spec(**{**data, "training": {**data["training"], "batch_size": 4, "epochs": 2, "shuffle": True}})
    x = random_inputs(spec, 0, batch=16, time=8)
    rng = np.random.default_rng(1)
    shape = (16, 1) if spec.output_units == 1 else (16, spec.output_steps(8))
    y = rng.integers(0, 2 if spec.output_units == 1 else 3, size=shape)
    losses, weights = training_gaps(spec, x, y, batches=8)
    assert losses <= 1e-4 and weights <= 1e-4


def test_torch_summary_keeps_a_variable_length_variable_and_fits_every_window():
    """The torch summary runs a sample: long enough for a window of 5 (3 steps would leave none), and a pooled
    variable length is still None as in Keras's summary."""
    backend = backend_or_skip("torch")
    spec = _spec(input={"features": 2}, recurrent=[{"max_pool": 5}, {"cell": "gru", "units": 3,
                                                                    "return_sequences": True}])  # fmt: skip
    rows = summary_rows(backend.summary(rnnspec.build(spec, "torch", seed=0)))
    assert [row[1] for row in rows] == ["(None,None,2)", "(None,None,3)"]
