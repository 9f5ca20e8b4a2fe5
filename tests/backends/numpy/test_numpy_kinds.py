"""The NumPy reference's layer kinds against Keras models built by hand (not by rnnspec's keras backend).

Each case is a spec and the Keras model it stands for, written here layer by layer with the spec's
layer names. The same canonical weights (:func:`rnnspec.initial_weights`, biases made non-zero and
embeddings widened so that a layout bug cannot hide) are set on both, layer by layer; the outputs
agree within 1e-5, the mask on the outputs is Keras's, and every layer's count in the NumPy model
equals Keras's ``count_params()`` of the hand-built layer. The inputs are masked: pre-padded,
post-padded and fully padded rows, a row with a hole, and (for ``mask_value``) a step where only
some features equal the padding value, which is not masked.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import rnnspec
from rnnspec.core.kinds import DuplicateKindError, MissingKindError
from rnnspec.lang.layers import ACTIVATIONS

nb = pytest.importorskip("rnnspec_backends.numpy.model")

TOL = 1e-5
SEED = 3


@pytest.fixture(scope="module")
def keras():
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
        pytest.skip("keras / tensorflow are not installed (pip install 'rnnspec[keras]')")
    from rnnspec_backends.keras.model import keras  # the backend first: it makes Keras run on TensorFlow

    assert keras.backend.backend() == "tensorflow"
    return keras


def _spec(**data) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.1, "name": "numpy-kinds", **data})


def _weights(spec: rnnspec.ModelSpec, seed: int = SEED) -> dict[str, np.ndarray]:
    """Canonical initial weights, with random biases (zeros hide bias-layout bugs) and wider embeddings."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in rnnspec.initial_weights(spec, seed).items():
        if name.endswith("bias"):
            value = value + rng.normal(0.0, 0.5, size=value.shape)
        elif name.endswith("embeddings"):
            value = value * 20.0
        out[name] = value.astype(np.float32)
    return out


def _sequential(keras, spec: rnnspec.ModelSpec, input_layer, layers: list):
    """A Sequential of the hand-built ``layers``, which must be the spec's layers in order (names checked)."""
    model = keras.Sequential([input_layer, *layers])
    assert [layer.name for layer in model.layers] == spec.layer_names()
    return model


def _set_weights(kmodel, spec: rnnspec.ModelSpec, weights: dict[str, np.ndarray]) -> None:
    """Canonical weights into the hand-built model, layer by layer, in Keras's own weight order."""
    shapes = rnnspec.weight_shapes(spec)
    for name in spec.layer_names():
        leaves = [key for key in shapes if key.startswith(f"{name}/")]
        layer = kmodel.get_layer(name)
        assert [tuple(v.shape) for v in layer.weights] == [shapes[key] for key in leaves], name
        layer.set_weights([weights[key] for key in leaves])


def _ids(vocab: int, seed: int = 0) -> np.ndarray:
    """Token ids: a full row, pre-padded, post-padded, fully padded, and a row with a hole of padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(6, 7))
    ids[1, :3] = 0
    ids[2, 4:] = 0
    ids[3, :] = 0
    ids[4, 2:4] = 0
    ids[5, :6] = 0
    return ids.astype(np.int32)


def _features(features: int, mask_value: float = 0.0, seed: int = 0) -> np.ndarray:
    """Features padded with ``mask_value`` as :func:`_ids`, plus a step where only some features are padding."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, 7, features)).astype(np.float32)
    x[1, :3] = mask_value
    x[2, 4:] = mask_value
    x[3, :] = mask_value
    x[4, 2:4] = mask_value
    x[5, :6] = mask_value
    x[0, 3, 0] = mask_value  # some features only: not masked
    x[4, 5, 1:] = mask_value  # the others only: not masked
    return x


def _keras_mask(output) -> np.ndarray | None:
    mask = getattr(output, "_keras_mask", None)
    return None if mask is None else np.asarray(mask)


def _compare(keras, spec: rnnspec.ModelSpec, kmodel, x: np.ndarray) -> float:
    """Set one set of weights on both, compare outputs, output masks and per-layer counts; the worst difference."""
    weights = _weights(spec)
    _set_weights(kmodel, spec, weights)
    expected = kmodel(x, training=False)
    ours, mask = nb.forward_masked(spec, weights, x)
    assert ours.dtype == np.float64
    assert ours.shape == tuple(expected.shape)
    diff = float(np.abs(ours - np.asarray(expected)).max())
    assert diff <= TOL, f"{spec.name}: max |numpy - keras| = {diff:.3g}"
    keras_mask = _keras_mask(expected)
    if keras_mask is None:
        assert mask is None
    else:
        assert mask is not None and np.array_equal(mask, keras_mask)
    assert (mask is not None) == spec.output_masked

    model = rnnspec.build(spec, "numpy", weights=weights)
    counts = rnnspec.get_backend("numpy").count_params(model)
    assert counts == {layer.name: layer.count_params() for layer in kmodel.layers}
    np.testing.assert_allclose(rnnspec.predict(model, x), ours.astype(np.float32), rtol=0, atol=0)
    return diff


# -- the reference models ------------------------------------------------------------------------------


def test_text_classification(keras):
    """TensorFlow's text-classification tutorial, smaller: Embedding(mask_zero) → BiLSTM → Dense relu → Dense."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 8, "mask_zero": True},
        recurrent=[{"cell": "lstm", "units": 8, "bidirectional": True}],
        head=[{"units": 8, "activation": "relu"}, {"units": 1, "activation": "sigmoid"}],
    )
    L = keras.layers
    kmodel = _sequential(
        keras,
        spec,
        keras.Input((None,), dtype="int32"),
        [
            L.Embedding(30, 8, mask_zero=True, name="embedding"),
            L.Bidirectional(L.LSTM(8), name="recurrent_0"),
            L.Dense(8, activation="relu", name="head_0"),
            L.Dense(1, activation="sigmoid", name="head_1"),
        ],
    )
    _compare(keras, spec, kmodel, _ids(30))


def test_bilstm_with_dropout_layers(keras):
    """Embedding(mask_zero) → SpatialDropout1D → BiLSTM(sequences) → Dropout → LSTM → Dropout → Dense: dropout is
    the identity at inference and passes the mask on."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[
            {"spatial_dropout": 0.2},
            {"cell": "lstm", "units": 5, "return_sequences": True, "bidirectional": True},
            {"dropout": 0.3},
            {"cell": "lstm", "units": 4},
        ],
        head=[{"dropout": 0.5}, {"units": 1, "activation": "sigmoid"}],
    )
    L = keras.layers
    kmodel = _sequential(
        keras,
        spec,
        keras.Input((None,), dtype="int32"),
        [
            L.Embedding(30, 6, mask_zero=True, name="embedding"),
            L.SpatialDropout1D(0.2, name="spatial_dropout_0"),
            L.Bidirectional(L.LSTM(5, return_sequences=True), name="recurrent_0"),
            L.Dropout(0.3, name="dropout_0"),
            L.LSTM(4, name="recurrent_1"),
            L.Dropout(0.5, name="dropout_1"),
            L.Dense(1, activation="sigmoid", name="head_0"),
        ],
    )
    _compare(keras, spec, kmodel, _ids(30, seed=1))


def test_masked_regressor(keras):
    """``input: {features: 3, mask_value: 0.0}`` → Masking → LSTM(6) → Dense(1), holes and partial padding included."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 6}],
        head={"units": 1},
    )
    L = keras.layers
    kmodel = _sequential(
        keras,
        spec,
        keras.Input((None, 3)),
        [L.Masking(0.0, name="masking"), L.LSTM(6, name="recurrent_0"), L.Dense(1, name="head")],
    )
    _compare(keras, spec, kmodel, _features(3))


def test_masking_with_another_value_on_sequences(keras):
    """``mask_value: -1`` with a per-step output: Masking's zeros and its mask reach the output mask."""
    spec = _spec(
        input={"features": 3, "mask_value": -1.0},
        recurrent=[{"cell": "simple_rnn", "units": 4, "return_sequences": True}],
        head={"units": 2},
    )
    L = keras.layers
    kmodel = _sequential(
        keras,
        spec,
        keras.Input((None, 3)),
        [
            L.Masking(-1.0, name="masking"),
            L.SimpleRNN(4, return_sequences=True, name="recurrent_0"),
            L.Dense(2, name="head"),
        ],
    )
    _compare(keras, spec, kmodel, _features(3, mask_value=-1.0, seed=2))


def test_per_step_tagger(keras):
    """Embedding(mask_zero) → GRU(return_sequences) → Dense(4, gelu) → Dense(3, softmax) on every step."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 5, "return_sequences": True}],
        head=[{"units": 4, "activation": "gelu"}, {"units": 3, "activation": "softmax"}],
    )
    L = keras.layers
    kmodel = _sequential(
        keras,
        spec,
        keras.Input((None,), dtype="int32"),
        [
            L.Embedding(30, 6, mask_zero=True, name="embedding"),
            L.GRU(5, return_sequences=True, name="recurrent_0"),
            L.Dense(4, activation="gelu", name="head_0"),
            L.Dense(3, activation="softmax", name="head_1"),
        ],
    )
    _compare(keras, spec, kmodel, _ids(30, seed=3))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hidden_dense_activation(keras, activation: str):
    """A hidden Dense layer with each element-wise activation, on every step and on the last one."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "simple_rnn", "units": 4, "return_sequences": True}],
        head=[{"units": 5, "activation": activation, "use_bias": activation != "relu"}, {"units": 2}],
    )
    L = keras.layers
    kmodel = _sequential(
        keras,
        spec,
        keras.Input((None, 3)),
        [
            L.Masking(0.0, name="masking"),
            L.SimpleRNN(4, return_sequences=True, name="recurrent_0"),
            L.Dense(5, activation=activation, use_bias=activation != "relu", name="head_0"),
            L.Dense(2, name="head_1"),
        ],
    )
    # wider inputs put the pre-activations on both sides of every activation's kinks
    _compare(keras, spec, kmodel, 3.0 * _features(3, seed=4))


def test_gelu_is_the_exact_erf_form():
    """gelu is Keras's default ``approximate=False``: 0.5·x·(1 + erf(x/√2)), not the tanh approximation."""
    import math

    x = np.array([-3.0, -1.0, -0.1, 0.0, 0.5, 2.0, 6.0])
    expected = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    np.testing.assert_allclose(nb.ACTIVATIONS["gelu"](x), expected, rtol=1e-15, atol=0)
    tanh_form = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    assert np.abs(nb.ACTIVATIONS["gelu"](x) - tanh_form).max() > 1e-5


# -- the registries ----------------------------------------------------------------------------------


def test_every_kind_has_one_forward_function_and_every_cell_one_step():
    from rnnspec.lang.layers import LAYER_ACTIVATIONS, LAYER_KINDS, RECURRENT_KINDS

    assert nb.FORWARD.kinds() == sorted(LAYER_KINDS)
    assert nb.STEPS.kinds() == sorted(RECURRENT_KINDS)
    assert set(ACTIVATIONS) | {"softmax", "log_softmax"} == set(LAYER_ACTIVATIONS) == set(nb.ACTIVATIONS)
    with pytest.raises(DuplicateKindError):
        nb.FORWARD.register("dense")(lambda layer, w, h, mask: (h, mask))
    with pytest.raises(DuplicateKindError):
        nb.cell("lstm")(lambda layer, w, x, states: (x, states))
    with pytest.raises(MissingKindError, match="numpy backend has no step function"):
        nb.STEPS.get("conv1d", "recurrent_0")


def test_weightless_layers_count_zero():
    spec = _spec(
        input={"features": 2, "mask_value": 0.0},
        recurrent=[{"spatial_dropout": 0.1}, {"cell": "gru", "units": 3}, {"dropout": 0.2}],
        head=[{"units": 2, "activation": "tanh"}, {"dropout": 0.4}, {"units": 1}],
    )
    counts = rnnspec.get_backend("numpy").count_params(rnnspec.build(spec, "numpy", seed=0))
    assert list(counts) == spec.layer_names()
    assert counts == {
        "masking": 0,
        "spatial_dropout_0": 0,
        "recurrent_0": 3 * (2 * 3 + 3 * 3 + 2 * 3),
        "dropout_0": 0,
        "head_0": 3 * 2 + 2,
        "dropout_1": 0,
        "head_1": 2 + 1,
    }
