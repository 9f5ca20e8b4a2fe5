"""The ``conv1d`` kind end to end: Keras's ``Conv1D`` as a front-end before (or between) recurrent layers.

References come from outside the code under test: Keras models written by hand with ``keras.layers.Conv1D``
(counts, ``model.summary()`` rows, outputs, training), PyTorch's own ``nn.Conv1d`` (a state dict), the output
lengths and Glorot fans written out from keras-layer-semantics.md section 1 and Keras's ``compute_fans``. Keras's
Conv1D does not support masking (the mask is dropped with a warning and padded steps leak into their neighbours),
so a masked input is refused with that reason. Cases: Keras's imdb_cnn_lstm example (shipped as
``specs/imdb_cnn_lstm.yaml``, its counts checked against Keras), causal dilated and strided ``same`` convolutions
on odd and even lengths, a convolution between recurrent layers; import from ``.keras`` / ``.h5``, a state dict,
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
from rnnspec.lang.layers import Conv1DSpec
from rnnspec.lang.summary import render_summary

from .conftest import SPECS
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
    keras_summary,
    training_gaps,
    typed_rows,
)
from .parity import backend_or_skip, random_inputs, random_weights


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "conv", **data})


def _steps(T: int, k: int, s: int, d: int, padding: str) -> int:
    """Keras's Conv1D output length, written out (keras-layer-semantics.md section 1)."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return math.floor((T - span) / s) + 1
    if padding == "same":
        return math.ceil(T / s)
    return math.floor((T - 1) / s) + 1


# -- the spec ------------------------------------------------------------------------------------------


def test_entries_defaults_and_weights():
    spec = _spec(
        input={"features": 3},
        recurrent=[
            {"conv1d": {"filters": 4, "kernel_size": 3}},
            {"cell": "lstm", "units": 5, "return_sequences": True},
            {"conv1d": {"filters": 2, "kernel_size": 2, "use_bias": False, "activation": "relu"}, "name": "c"},
            {"cell": "gru", "units": 2},
        ],
    )
    first = spec.recurrent[0]
    assert isinstance(first, Conv1DSpec)
    assert (first.strides, first.padding, first.dilation_rate, first.activation, first.use_bias) == (
        1, "valid", 1, "linear", True)  # fmt: skip
    assert spec.layer_names() == ["conv1d_0", "recurrent_0", "c", "recurrent_1"]
    assert rnnspec.weight_shapes(spec)["conv1d_0/kernel"] == (3, 3, 4)  # Keras: (kernel_size, inputs, filters)
    assert rnnspec.weight_shapes(spec)["conv1d_0/bias"] == (4,)
    assert "c/bias" not in rnnspec.weight_shapes(spec)
    assert [row.params for row in analyze(spec).layers if row.kind == "conv1d"] == [3 * 3 * 4 + 4, 2 * 5 * 2]
    assert rnnspec.weight_shapes(spec, "torch")["conv1d_0/kernel"] == (3, 3, 4)  # one layout in both conventions
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec
    assert (
        spec.recurrent[2].entry_label() == "{conv1d: {filters: 2, kernel_size: 2, activation: relu, use_bias: False}}"
    )


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_output_lengths_are_kerass_formulas(padding: str):
    for T in range(5, 11):
        for k in (1, 2, 3, 4):
            for s, d in ((1, 1), (2, 1), (3, 1), (1, 2), (1, 3)):
                if padding == "valid" and (k - 1) * d + 1 > T:
                    continue
                conv = {"filters": 2, "kernel_size": k, "strides": s, "dilation_rate": d, "padding": padding}
                gru = {"cell": "gru", "units": 2, "return_sequences": True}
                spec = _spec(input={"features": 2, "seq_len": T}, recurrent=[{"conv1d": conv}, gru])
                assert analyze(spec).layers[0].output_shape == (None, _steps(T, k, s, d, padding), 2)


def test_glorot_fans_take_the_receptive_field():
    """Keras's compute_fans: fan_in = kernel_size·inputs, fan_out = kernel_size·filters for a (k, in, out) kernel."""
    spec = _spec(input={"features": 6}, recurrent=[{"conv1d": {"filters": 10, "kernel_size": 5}},
                                                   {"cell": "lstm", "units": 2}])  # fmt: skip
    kernel = rnnspec.initial_weights(spec, seed=3)["conv1d_0/kernel"]
    limit = math.sqrt(6.0 / (5 * 6 + 5 * 10))
    assert kernel.shape == (5, 6, 10)
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit  # 300 draws reach the edge; a 2-D fan (6 + 10) would overshoot it
    assert not rnnspec.initial_weights(spec, seed=3)["conv1d_0/bias"].any()


BAD = [
    ("strides-and-dilation", {"input": {"features": 3}, "recurrent": [
        {"conv1d": {"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2}}, {"cell": "lstm", "units": 2}]},
     "Keras's Conv1D takes strides > 1 or dilation_rate > 1, not both"),
    ("no-filters", {"input": {"features": 3},
                    "recurrent": [{"conv1d": {"kernel_size": 3}}, {"cell": "lstm", "units": 2}]},
     "recurrent[0].conv1d.filters"),
    ("mask-zero", {"input": {"vocab_size": 9}, "embedding": {"output_dim": 3, "mask_zero": True},
                   "recurrent": [{"dropout": 0.2}, {"conv1d": {"filters": 2, "kernel_size": 3}},
                                 {"cell": "lstm", "units": 2}]},
     "recurrent[1].conv1d: Keras's Conv1D does not support masking: it drops the mask"),
    ("after-last-output", {"input": {"features": 3}, "recurrent": [
        {"cell": "lstm", "units": 2}, {"conv1d": {"filters": 2, "kernel_size": 1}}]}, "but its input has no time axis"),
    ("too-short", {"input": {"features": 3, "seq_len": 6}, "recurrent": [
        {"conv1d": {"filters": 2, "kernel_size": 4, "dilation_rate": 2}}, {"cell": "lstm", "units": 2}]},
     "Conv1D has no whole window in 6 steps"),
    ("unknown-padding", {"input": {"features": 3}, "recurrent": [
        {"conv1d": {"filters": 2, "kernel_size": 3, "padding": "full"}}, {"cell": "lstm", "units": 2}]},
     "recurrent[0].conv1d.padding"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(data: dict, message: str):
    with pytest.raises(SpecError, match=re.escape(message)):
        _spec(**data)


def test_the_mask_message_says_what_keras_would_do_and_the_exact_fix():
    with pytest.raises(SpecError) as info:
        _spec(input={"vocab_size": 9}, embedding={"output_dim": 3, "mask_zero": True},
              recurrent=[{"conv1d": {"filters": 2, "kernel_size": 3}}, {"cell": "lstm", "units": 2}])  # fmt: skip
    text = str(info.value)
    assert "computes over the padded steps as if they were data" in text
    assert "remove `mask_zero: true` (Keras's model computes the same without it" in text


# -- the cases: a spec and the same model written with Keras's layers ---------------------------------


def imdb_cnn_lstm(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Keras's imdb_cnn_lstm example, small: Embedding → Dropout → Conv1D(relu) → MaxPooling1D(4) → LSTM → Dense(1)
    → Activation('sigmoid')."""
    spec = _spec(input={"vocab_size": 30, "seq_len": 20}, embedding={"output_dim": 6},
                 recurrent=[{"dropout": 0.25}, {"conv1d": {"filters": 8, "kernel_size": 5, "activation": "relu"}},
                            {"max_pool": 4}, {"cell": "lstm", "units": 5}],
                 head=[{"units": 1}, {"activation": "sigmoid"}])  # fmt: skip
    return spec, [L.Embedding(30, 6), L.Dropout(0.25), L.Conv1D(8, 5, activation="relu"), L.MaxPooling1D(4),
                  L.LSTM(5), L.Dense(1), L.Activation("sigmoid")]  # fmt: skip


def causal_and_strided(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """A causal dilated Conv1D(tanh) → GRU(sequences) → a strided ``same`` Conv1D without bias → Dense per step."""
    spec = _spec(
        input={"features": 3},
        recurrent=[
            {"conv1d": {"filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2, "activation": "tanh"}},
            {"cell": "gru", "units": 5, "return_sequences": True},
            {"conv1d": {"filters": 3, "kernel_size": 4, "padding": "same", "strides": 2, "use_bias": False}},
        ],
        head={"units": 2},
    )
    return spec, [L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="tanh"), L.GRU(5, return_sequences=True),
                  L.Conv1D(3, 4, strides=2, padding="same", use_bias=False), L.Dense(2)]  # fmt: skip


def between_recurrent_layers(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """LSTM(sequences) → Conv1D(5, 2, same, selu) → SimpleRNN (its last output)."""
    spec = _spec(input={"features": 2},
                 recurrent=[{"cell": "lstm", "units": 4, "return_sequences": True},
                            {"conv1d": {"filters": 5, "kernel_size": 2, "padding": "same", "activation": "selu"}},
                            {"cell": "simple_rnn", "units": 3}])  # fmt: skip
    return spec, [L.LSTM(4, return_sequences=True), L.Conv1D(5, 2, padding="same", activation="selu"), L.SimpleRNN(3)]


CASES = {"imdb_cnn_lstm": imdb_cnn_lstm, "causal_and_strided": causal_and_strided, "between": between_recurrent_layers}


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, seed)
    return spec, model, weights


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    assert_counts_equal_keras(*_hand_built(L, case))


def test_the_shipped_imdb_cnn_lstm_spec_counts_as_kerass_example(L):
    """specs/imdb_cnn_lstm.yaml against the example's layers written with Keras: every row and the footer."""
    from rnnspec_backends.keras.runtime import keras

    spec = rnnspec.load_spec(SPECS / "imdb_cnn_lstm.yaml")
    hand = keras.Sequential([keras.Input((100,), dtype="int32"), L.Embedding(20000, 128), L.Dropout(0.25),
                             L.Conv1D(64, 5, padding="valid", activation="relu", strides=1),
                             L.MaxPooling1D(pool_size=4), L.LSTM(70), L.Dense(1), L.Activation("sigmoid")])  # fmt: skip
    assert hand.count_params() == analyze(spec).total_params == 2_638_895
    assert typed_rows(render_summary(analyze(spec))) == typed_rows(keras_summary(hand))


@pytest.mark.parametrize("case", CASES)
def test_outputs_equal_keras(L, case: str):
    """Every backend, odd and even lengths (the ``same`` padding differs), every position compared."""
    spec, hand, weights = _hand_built(L, case)
    models = {backend: rnnspec.build(spec, backend, weights=weights) for backend in BACKENDS}
    for time in [spec.input.seq_len] if spec.input.seq_len else [7, 8, 1]:
        x = random_inputs(spec, 3, batch=5, time=time)
        expected = np.asarray(hand(x, training=False))
        for backend, model in models.items():
            got = rnnspec.predict(model, x)
            assert got.shape == expected.shape, (backend, time)
            assert np.abs(got - expected).max() <= TOL, (backend, time)


def test_torch_convention_is_the_same_convolution():
    spec = causal_and_strided(_Layers())[0]
    torch_spec = rnnspec.spec_from_dict({**spec.to_dict(), "convention": "torch"})
    weights = random_weights(torch_spec, 2)
    x = random_inputs(spec, 1, batch=3, time=9)
    expected = rnnspec.predict(rnnspec.build(torch_spec, "numpy", weights=weights), x)
    for backend in ("torch", "keras"):
        backend_or_skip(backend)
        assert np.abs(rnnspec.predict(rnnspec.build(torch_spec, backend, weights=weights), x) - expected).max() <= TOL


class _Layers:
    """Stands in for keras.layers where only the spec of a case is wanted."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


# -- import -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_file_imports_and_predicts_what_keras_predicts(L, fmt: str, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.proof import hard_inputs

    model = keras.Sequential([keras.Input((20,), dtype="int32"), *imdb_cnn_lstm(L)[1]])  # the example's layers
    assign_normal(model)
    inputs = partial(hard_inputs, seed=1, batch=6, time=20)
    spec = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", inputs).spec
    (conv,) = [layer for _, layer in spec.stack() if isinstance(layer, Conv1DSpec)]
    assert (conv.filters, conv.kernel_size, conv.padding, conv.activation) == (8, 5, "valid", "relu")


def test_a_keras_causal_dilated_file_imports(L, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    model = keras.Sequential([keras.Input((None, 3)), L.Conv1D(4, 3, padding="causal", dilation_rate=2),
                              L.GRU(5, return_sequences=True), L.Conv1D(2, 4, strides=2, padding="same")])  # fmt: skip
    x = np.random.default_rng(2).normal(size=(3, 9, 3)).astype(np.float32)
    assert_keras_file_imports(model, tmp_path / "m.keras", x)


def test_a_keras_conv1d_on_a_sequence_whose_mask_was_read_is_refused_with_the_reason(L, tmp_path):
    """A recurrent layer read the embedding's mask, then Keras's layer drops it: refused, saying so (a mask dropped
    before any layer read it imports as mask_zero: false: tests/interop/test_import_dropped_masks.py)."""
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.runtime.importing import import_model

    layers = [
        L.Embedding(9, 3, mask_zero=True),
        L.LSTM(2, return_sequences=True),
        L.Conv1D(2, 3),
        L.LSTM(2),
        L.Dense(1),
    ]
    keras.Sequential([keras.Input((None,), dtype="int32"), *layers]).save(tmp_path / "m.keras")
    with pytest.raises(rnnspec.RnnspecError, match="Conv1D does not support masking"):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.2
name: torch-conv
convention: torch
input: {vocab_size: 30}
embedding: {output_dim: 6}
recurrent:
  - {conv1d: {filters: 7, kernel_size: 3, padding: same, activation: relu}}
  - {max_pool: 2}
  - {cell: lstm, units: 8}
head: {units: 3}
"""


def test_state_dict_with_an_nn_conv1d_imports(tmp_path):
    """A PyTorch module with nn.Conv1d(6, 7, 3, padding=1) (odd kernel, stride 1: Keras's same) before its LSTM."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Module(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(30, 6)
            self.conv = nn.Conv1d(6, 7, 3, padding=1)
            self.lstm = nn.LSTM(7, 8, batch_first=True)
            self.fc = nn.Linear(8, 3)

        def forward(self, x: Any) -> Any:
            h = torch.relu(self.conv(self.emb(x).transpose(1, 2)))
            h, _ = self.lstm(nn.functional.max_pool1d(h, 2).transpose(1, 2))
            return self.fc(h[:, -1])

    torch.manual_seed(0)
    x = np.random.default_rng(1).integers(0, 30, size=(5, 9))
    imported = assert_state_dict_imports(Module(), TORCH_SPEC, tmp_path / "m.pt", x)
    assert imported.weights["conv1d_0/kernel"].shape == (3, 6, 7)


# -- export: plain PyTorch and ONNX ---------------------------------------------------------------------

EXPORTED = _spec(
    input={"features": 3},
    recurrent=[
        {"conv1d": {"filters": 4, "kernel_size": 4, "padding": "same", "strides": 2, "activation": "relu"}},
        {"cell": "lstm", "units": 5, "return_sequences": True},
        {"conv1d": {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2, "use_bias": False}},
        {"cell": "gru", "units": 4, "return_sequences": True},
        {"conv1d": {"filters": 2, "kernel_size": 2, "activation": "hard_sigmoid"}},
    ],
)


def _export_inputs(time: int) -> np.ndarray:
    return np.random.default_rng(6).normal(size=(4, time, 3)).astype(np.float32)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_export_writes_nn_conv1d_and_equals_the_reference(tmp_path):
    inputs = [_export_inputs(time) for time in (9, 10)]
    assert_torch_export_equals_reference(EXPORTED, random_weights(EXPORTED, 4), inputs, tmp_path, "conv")
    from safetensors.torch import load_file

    assert "nn.Conv1d(3, 4, 4, stride=2)" in (tmp_path / "model.py").read_text()
    state = load_file(str(tmp_path / "model.safetensors"))
    assert tuple(state["conv1d_0.weight"].shape) == (4, 3, 4)  # PyTorch's (filters, inputs, kernel_size)


def test_onnx_export_runs_under_onnxruntime_and_equals_the_reference(tmp_path):
    onnx = pytest.importorskip("onnx")
    inputs = [_export_inputs(time) for time in (9, 10)]
    assert_onnx_export_equals_reference(EXPORTED, random_weights(EXPORTED, 4), inputs, tmp_path)
    ops = [node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node]
    assert ops.count("Conv") == 3 and "Pad" in ops


# -- training parity ------------------------------------------------------------------------------------

TRAINED = {
    "imdb-cnn-lstm-adam": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6},
            "recurrent": [{"dropout": 0.0}, {"conv1d": {"filters": 4, "kernel_size": 3, "activation": "relu"}},
                          {"max_pool": 2}, {"cell": "lstm", "units": 5}],
            "head": [{"units": 1}, {"activation": "sigmoid"}],
            "training": {"loss": "binary_crossentropy", "optimizer": "adam"},
        },
        (),
    ),
    "causal-per-step-rmsprop": (
        {
            "input": {"features": 3},
            "recurrent": [{"conv1d": {"filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}},
                          {"cell": "gru", "units": 5, "return_sequences": True},
                          {"conv1d": {"filters": 3, "kernel_size": 2, "padding": "same", "strides": 2}}],
            "head": {"units": 3, "activation": "softmax"},
            "training": {"loss": "sparse_categorical_crossentropy", "optimizer": "rmsprop"},
        },
        (pytest.mark.slow,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(k, marks=m) for k, (_, m) in TRAINED.items()])
def test_training_gives_the_same_losses_and_weights(case: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches: the kernel's gradient
    in Keras's layout on both."""
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
