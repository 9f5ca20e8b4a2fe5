"""The ``flatten`` kind end to end: Keras's ``Flatten`` over a fixed-length sequence.

References come from outside the code under test: Keras models written by hand (counts,
``model.summary()`` rows, outputs, training), Keras's own ``Flatten`` on a tensor, and the formula of
``keras/src/layers/reshaping/flatten.py`` written out here (``out[b, t * F + f] = x[b, t, f]``, C order).
Keras's semantics these tests pin: the width after it is steps x features, so the steps must be fixed;
on a vector it changes nothing; it does not support masking (a masked sequence is refused, as for
pooling and Conv1D). Cases: a sensor LSTM (``LSTM(return_sequences) → Flatten → Dense``), a Conv1D
front-end before the flatten, a bidirectional GRU with a hidden Dense, a flatten of a vector.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import SpecError
from rnnspec.lang.layers import FlattenSpec

from .kinds import (
    assert_backends_predict,
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
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "flatten", **data})


# -- the spec ------------------------------------------------------------------------------------------


def test_entry_name_shapes_and_width():
    spec = _spec(
        input={"features": 3, "seq_len": 7},
        recurrent=[{"cell": "lstm", "units": 4, "return_sequences": True}, {"flatten": None}],
        head={"units": 2, "activation": "softmax"},
    )
    assert isinstance(spec.recurrent[1], FlattenSpec)
    assert spec.layer_names() == ["recurrent_0", "flatten_0", "head"]
    assert [row.output_shape for row in analyze(spec).layers] == [(None, 7, 4), (None, 28), (None, 2)]
    assert analyze(spec).layers[2].params == 28 * 2 + 2  # the Dense reads steps x features
    assert not spec.output_per_step and spec.output_units == 2
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec
    shapes = spec.shapes()
    assert [(s.inputs, s.input_steps, s.features) for s in shapes] == [(3, 7, 4), (4, 7, 28), (28, 1, 2)]


BAD = [
    ("no-seq-len", {"features": 3}, [{"cell": "lstm", "units": 2, "return_sequences": True}, {"flatten": {}}],
     "recurrent[1].flatten", "the number of steps must be fixed"),
    ("masked", {"features": 3, "seq_len": 5, "mask_value": 0.0},
     [{"cell": "lstm", "units": 2, "return_sequences": True}, {"flatten": {}}],
     "recurrent[1].flatten", "Keras's Flatten does not support masking"),
    ("before-a-cell", {"features": 3, "seq_len": 5},
     [{"cell": "lstm", "units": 2, "return_sequences": True}, {"flatten": {}}, {"cell": "lstm", "units": 2}],
     "recurrent[1]", "flattens the sequence into one vector"),
    ("unknown-option", {"features": 3, "seq_len": 5},
     [{"cell": "lstm", "units": 2, "return_sequences": True}, {"flatten": {"data_format": "channels_first"}}],
     "flatten.data_format", "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(("inputs", "recurrent", "where", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(inputs: dict, recurrent: list, where: str, message: str):
    with pytest.raises(SpecError) as info:
        _spec(input=inputs, recurrent=recurrent)
    assert where in str(info.value) and message in str(info.value)


# -- the cases ------------------------------------------------------------------------------------------------


def sensor_lstm(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """A sensor classifier: LSTM(return_sequences) → Flatten → Dense(3, softmax)."""
    spec = _spec(
        input={"features": 3, "seq_len": 6},
        recurrent=[{"cell": "lstm", "units": 4, "return_sequences": True}, {"flatten": {}}],
        head={"units": 3, "activation": "softmax"},
    )
    return spec, [L.LSTM(4, return_sequences=True), L.Flatten(), L.Dense(3, activation="softmax")]


def conv_front(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding → Conv1D → MaxPooling1D → GRU(sequences) → Flatten → Dense(1, sigmoid)."""
    spec = _spec(
        input={"vocab_size": 30, "seq_len": 10},
        embedding={"output_dim": 5},
        recurrent=[{"conv1d": {"filters": 4, "kernel_size": 3, "activation": "relu"}}, {"max_pool": 2},
                   {"cell": "gru", "units": 3, "return_sequences": True}, {"flatten": {}}],
        head={"units": 1, "activation": "sigmoid"},
    )  # fmt: skip
    layers = [L.Embedding(30, 5), L.Conv1D(4, 3, activation="relu"), L.MaxPooling1D(2),
              L.GRU(3, return_sequences=True), L.Flatten(), L.Dense(1, activation="sigmoid")]  # fmt: skip
    return spec, layers


def bidirectional_hidden(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Bidirectional(GRU(sequences)) → Flatten → Dense(8, relu) → Dense(2)."""
    spec = _spec(
        input={"features": 3, "seq_len": 5},
        recurrent=[{"cell": "gru", "units": 3, "return_sequences": True, "bidirectional": True}, {"flatten": {}}],
        head=[{"units": 8, "activation": "relu"}, {"units": 2}],
    )
    layers = [L.Bidirectional(L.GRU(3, return_sequences=True)), L.Flatten(), L.Dense(8, activation="relu"),
              L.Dense(2)]  # fmt: skip
    return spec, layers


def vector(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """SimpleRNN (last output) → Flatten → Dense(2): Keras's Flatten of a vector changes nothing."""
    spec = _spec(
        input={"features": 3, "seq_len": 5},
        recurrent=[{"cell": "simple_rnn", "units": 4}, {"flatten": {}}],
        head={"units": 2},
    )
    return spec, [L.SimpleRNN(4), L.Flatten(), L.Dense(2)]


CASES: dict[str, Callable[[Any], tuple[rnnspec.ModelSpec, list[Any]]]] = {
    f.__name__: f for f in (sensor_lstm, conv_front, bidirectional_hidden, vector)
}


def _case(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, seed)
    return spec, model, weights


def _inputs(spec: rnnspec.ModelSpec, seed: int = 3, batch: int = 5) -> np.ndarray:
    return random_inputs(spec, seed, batch=batch, time=spec.input.seq_len)


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    assert_counts_equal_keras(*_case(L, case))


@pytest.mark.parametrize("case", CASES)
def test_outputs_equal_keras(L, case: str):
    spec, hand, weights = _case(L, case)
    x = _inputs(spec)
    assert_backends_predict(spec, weights, x, np.asarray(hand(x, training=False)))


def test_the_formula_of_kerass_layer():
    """Keras's own Flatten against ``out[b, t * F + f] = x[b, t, f]`` written out, and rnnspec's NumPy forward."""
    backend_or_skip("keras")
    from rnnspec_backends.keras.runtime import keras
    from rnnspec_backends.numpy.model import FORWARD

    h = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    expected = np.empty((2, 12), np.float32)
    for b in range(2):
        for t in range(3):
            for f in range(4):
                expected[b, t * 4 + f] = h[b, t, f]
    assert np.array_equal(np.asarray(keras.layers.Flatten()(h)), expected)
    got, mask = FORWARD.get("flatten")(FlattenSpec(flatten={}), {}, h, np.ones((2, 3), bool))
    assert mask is None and np.array_equal(got, expected)


# -- import ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_file_imports_and_predicts_what_keras_predicts(L, fmt: str, tmp_path):
    spec, model, _ = _case(L, "conv_front", seed=4)
    imported = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", _inputs(spec), like=spec).spec
    assert imported.input.seq_len == 10


def test_flatten_of_channels_first_is_refused(L, tmp_path):
    from rnnspec.interop.keras_import import UnsupportedModelError
    from rnnspec.runtime.importing import import_model

    spec, _ = sensor_lstm(L)
    layers = [L.LSTM(4, return_sequences=True), L.Flatten(data_format="channels_first"), L.Dense(1)]
    from .kinds import keras_sequential

    keras_sequential(spec, layers).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedModelError, match=re.escape("data_format 'channels_first'")):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.2
name: torch-lstm-flatten
convention: torch
input: {features: 3, seq_len: 6}
recurrent:
  - {cell: lstm, units: 4, return_sequences: true}
  - {flatten: {}}
head: {units: 2}
"""


def test_state_dict_of_a_torch_lstm_with_flatten_imports(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    class Sensor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)
            self.fc = nn.Linear(24, 2)

        def forward(self, x: Any) -> Any:
            h, _ = self.lstm(x)
            return self.fc(torch.flatten(h, 1))

    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(5, 6, 3)).astype(np.float32)
    assert_state_dict_imports(Sensor(), TORCH_SPEC, tmp_path / "m.pt", x)


# -- export -------------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", ["conv_front", "bidirectional_hidden"])
def test_torch_export_equals_the_reference(L, case: str, tmp_path):
    spec, _ = CASES[case](L)
    assert_torch_export_equals_reference(
        spec, random_weights(spec, 4), _inputs(spec, batch=6), tmp_path, f"flatten_{case}"
    )


@pytest.mark.parametrize("case", ["conv_front", "bidirectional_hidden"])
def test_onnx_export_runs_under_onnxruntime_and_equals_the_reference(L, case: str, tmp_path):
    spec, _ = CASES[case](L)
    assert_onnx_export_equals_reference(spec, random_weights(spec, 4), _inputs(spec, batch=6), tmp_path)


# -- training parity ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "optimizer"), [("sensor_lstm", "adam"), pytest.param("conv_front", "rmsprop", marks=pytest.mark.slow)]
)
def test_training_gives_the_same_losses_and_weights(L, case: str, optimizer: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches."""
    backend_or_skip("torch")
    backend_or_skip("keras")
    spec, _ = CASES[case](L)
    loss = "binary_crossentropy" if spec.output_units == 1 else "sparse_categorical_crossentropy"
    training = {"loss": loss, "optimizer": optimizer, "batch_size": 4, "epochs": 2, "shuffle": True}
    spec = _spec(**{**spec.to_dict(), "name": "flatten", "rnnspec": 1.2, "training": training})
    x = _inputs(spec, seed=0, batch=16)
    y = np.random.default_rng(1).integers(0, max(spec.output_units, 2), size=(16,))
    losses, weights = training_gaps(spec, x, y)
    assert losses <= 1e-4 and weights <= 1e-4
