"""The keras backend's layer kinds against Keras models built by hand in this file.

Each case is a spec and the Keras layers a Keras user would write for it (the reference comes from
Keras, not from the backend under test): the TF text-classification model, a BiLSTM with
SpatialDropout1D and Dropout layers, a masked multivariate regressor, a per-step tagger with a
gelu hidden layer, and a masked per-step model with a non-zero mask value. Per case: layer types
and ``count_params()`` per layer, the ``model.summary()`` rows and footer against rnnspec's
analysis and summary, predictions and output masks with the same weights, and dropout in training
mode under the same seed. Then ``rnnspec.fit`` / ``rnnspec.evaluate`` against the hand-built model's
``fit`` for every regression loss and metric, the masked loss against NumPy, ``.keras`` artifacts,
the kind registries and the import graph of the backend's modules.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.core.kinds import DuplicateKindError
from rnnspec.lang.analysis import analyze
from rnnspec.lang.layers import LAYER_KINDS, RECURRENT_KINDS
from rnnspec.lang.summary import render_summary
from tests.conftest import REPO
from tests.kinds import keras_summary, summary_rows, typed_rows
from tests.parity import random_inputs, random_weights

keras_backend = pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
keras = keras_backend.keras
L = keras.layers
BACKEND = keras_backend.BACKEND

TOL = 1e-5
"""Forward outputs, absolute; histories, relative."""


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.1, "name": "kinds", **data})


# -- the cases: a spec and the same model written in Keras ---------------------------------------


def text_classification() -> tuple[rnnspec.ModelSpec, list[Any]]:
    """TensorFlow's "Text classification with an RNN" tutorial, at its sizes."""
    spec = _spec(
        input={"vocab_size": 1000},
        embedding={"output_dim": 64, "mask_zero": True},
        recurrent=[{"cell": "lstm", "units": 64, "bidirectional": True}],
        head=[{"units": 64, "activation": "relu"}, {"units": 1}],
    )
    layers = [
        keras.Input((None,), dtype="int32"),
        L.Embedding(1000, 64, mask_zero=True),
        L.Bidirectional(L.LSTM(64)),
        L.Dense(64, activation="relu"),
        L.Dense(1),
    ]
    return spec, layers


def bilstm_dropout() -> tuple[rnnspec.ModelSpec, list[Any]]:
    """SpatialDropout1D after the embedding, Dropout between the recurrent layers and in the head."""
    spec = _spec(
        input={"vocab_size": 50, "seq_len": 9},
        embedding={"output_dim": 8, "mask_zero": True},
        recurrent=[
            {"spatial_dropout": 0.2},
            {"cell": "lstm", "units": 6, "return_sequences": True, "bidirectional": True},
            {"dropout": 0.3},
            {"cell": "lstm", "units": 4},
        ],
        head=[{"dropout": 0.5}, {"units": 1, "activation": "sigmoid"}],
        training={"optimizer": "sgd", "loss": "binary_crossentropy", "metrics": ["accuracy"]},
    )
    layers = [
        keras.Input((9,), dtype="int32"),
        L.Embedding(50, 8, mask_zero=True),
        L.SpatialDropout1D(0.2),
        L.Bidirectional(L.LSTM(6, return_sequences=True)),
        L.Dropout(0.3),
        L.LSTM(4),
        L.Dropout(0.5),
        L.Dense(1, activation="sigmoid"),
    ]
    return spec, layers


def masked_regressor() -> tuple[rnnspec.ModelSpec, list[Any]]:
    """keras.io's weather model: Masking(0.0) → LSTM(32) → Dense(1), mse with metric mae."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 32}],
        head={"units": 1},
        training={"optimizer": "adam", "loss": "mse", "metrics": ["mae"]},
    )
    layers = [keras.Input((None, 3)), L.Masking(0.0), L.LSTM(32), L.Dense(1)]
    return spec, layers


def tagger() -> tuple[rnnspec.ModelSpec, list[Any]]:
    """One tag per token: Embedding(mask_zero) → GRU(sequences) → Dense(16, gelu) → Dense(5, softmax)."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 8, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 12, "return_sequences": True}],
        head=[{"units": 16, "activation": "gelu"}, {"units": 5, "activation": "softmax"}],
        training={"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    )
    layers = [
        keras.Input((None,), dtype="int32"),
        L.Embedding(30, 8, mask_zero=True),
        L.GRU(12, return_sequences=True),
        L.Dense(16, activation="gelu"),
        L.Dense(5, activation="softmax"),
    ]
    return spec, layers


def masked_sequence() -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Masking(-1.0) on features, every dropout kind, a bidirectional sum and a per-step head stack."""
    spec = _spec(
        input={"features": 4, "mask_value": -1.0},
        recurrent=[
            {"spatial_dropout": 0.1},
            {"cell": "simple_rnn", "units": 5, "return_sequences": True, "bidirectional": True, "merge_mode": "sum"},
            {"dropout": 0.2},
        ],
        head=[{"units": 6, "activation": "tanh"}, {"dropout": 0.4}, {"units": 2, "use_bias": False}],
    )
    layers = [
        keras.Input((None, 4)),
        L.Masking(-1.0),
        L.SpatialDropout1D(0.1),
        L.Bidirectional(L.SimpleRNN(5, return_sequences=True), merge_mode="sum"),
        L.Dropout(0.2),
        L.Dense(6, activation="tanh"),
        L.Dropout(0.4),
        L.Dense(2, use_bias=False),
    ]
    return spec, layers


CASES: dict[str, Callable[[], tuple[rnnspec.ModelSpec, list[Any]]]] = {
    "tf-text-classification": text_classification,
    "bilstm-dropout": bilstm_dropout,
    "masked-regressor": masked_regressor,
    "tagger": tagger,
    "masked-sequence": masked_sequence,
}


def _hand_built(layers: list[Any], spec: rnnspec.ModelSpec, weights: dict[str, np.ndarray]) -> Any:
    """The hand-written Keras model with the canonical weights (Keras's own weight order is canonical)."""
    model = keras.Sequential(layers)
    shapes = rnnspec.weight_shapes(spec)
    assert [tuple(v.shape) for v in model.weights] == list(shapes.values())
    model.set_weights([weights[name] for name in shapes])
    return model


def _both(case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, Any, dict[str, np.ndarray]]:
    """The spec, rnnspec's Keras model and the hand-built one, with the same weights and the same Keras seed."""
    keras.utils.set_random_seed(seed)
    spec, layers = CASES[case]()
    weights = random_weights(spec, seed)
    hand = _hand_built(layers, spec, weights)
    keras.utils.set_random_seed(seed)
    ours = rnnspec.build(spec, "keras", weights=weights)
    return spec, ours, hand, weights


def _table(text: str) -> tuple[list[tuple[str, ...]], int]:
    """The rows of a Keras-style summary (wrapped cells joined, whitespace removed) and its total."""
    total = re.search(r"Total params: ([\d,]+)", text)
    assert total is not None, text
    return summary_rows(text), int(total.group(1).replace(",", ""))


# -- structure: layers, counts, summaries --------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_layers_and_counts_equal_hand_built(case: str):
    spec, ours, hand, _ = _both(case)
    rows = analyze(spec).layers
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in hand.layers]
    assert [type(layer).__name__ for layer in hand.layers] == [row.type for row in rows]
    assert [layer.name for layer in ours.layers] == [row.name for row in rows]
    hand_counts = [int(layer.count_params()) for layer in hand.layers]
    assert hand_counts == [row.params for row in rows]
    assert BACKEND.count_params(ours) == {row.name: row.params for row in rows}
    assert hand.count_params() == ours.count_params() == analyze(spec).total_params


@pytest.mark.parametrize("case", CASES)
def test_summaries_equal_rnnspec_summary(case: str):
    spec, ours, hand, _ = _both(case)
    expected, total = _table(render_summary(analyze(spec)))
    assert total == analyze(spec).total_params
    got, got_total = _table(BACKEND.summary(ours))
    assert got == expected
    assert got_total == total
    hand_total = _table(keras_summary(hand))[1]
    assert typed_rows(keras_summary(hand)) == typed_rows(render_summary(analyze(spec)))
    assert hand_total == total


# -- numbers: forward, masks, dropout ------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_predictions_and_masks_equal_hand_built(case: str):
    spec, ours, hand, _ = _both(case)
    x = random_inputs(spec, 2, batch=6, time=spec.input.seq_len or 8)
    got = rnnspec.predict(ours, x)
    expected = np.asarray(hand.predict_on_batch(x))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL
    ours_mask = getattr(ours(x, training=False), "_keras_mask", None)
    hand_mask = getattr(hand(x, training=False), "_keras_mask", None)
    if spec.output_per_step and spec.masked:
        assert ours_mask is not None and hand_mask is not None
        assert np.array_equal(np.asarray(ours_mask), np.asarray(hand_mask))
        assert not np.asarray(ours_mask).all()
    else:
        assert ours_mask is None and hand_mask is None


@pytest.mark.parametrize("case", ["bilstm-dropout", "masked-sequence"])
def test_training_dropout_equals_hand_built_under_one_seed(case: str):
    spec, ours, hand, _ = _both(case, seed=4)
    x = random_inputs(spec, 5, batch=6, time=spec.input.seq_len or 8)
    got, expected = np.asarray(ours(x, training=True)), np.asarray(hand(x, training=True))
    assert np.abs(got - expected).max() <= TOL
    assert np.abs(got - rnnspec.predict(ours, x)).max() > 1e-3, "dropout did not act in training mode"


def test_masking_layer_and_cudnn_notes():
    _, ours, _, _ = _both("masked-regressor")
    masking = ours.get_layer("masking")
    assert isinstance(masking, L.Masking)
    assert masking.mask_value == 0.0
    assert ours.get_layer("recurrent_0").use_cudnn is False
    assert any(n.startswith("recurrent_0: use_cudnn=False behind mask_value") for n in BACKEND.notes(ours))


# -- training: rnnspec.fit against the hand-built model's fit ------------------------------------

REGRESSION_LOSSES = {
    "mse": lambda: keras.losses.MeanSquaredError(),
    "mae": lambda: keras.losses.MeanAbsoluteError(),
    "huber": lambda: keras.losses.Huber(delta=0.5),
}
METRICS = ["mae", "mse", "rmse"]


def _keras_metrics() -> list[Any]:
    return [
        keras.metrics.MeanAbsoluteError(name="mae"),
        keras.metrics.MeanSquaredError(name="mse"),
        keras.metrics.RootMeanSquaredError(name="rmse"),
    ]


def _regressor(per_step: bool, loss: str) -> tuple[rnnspec.ModelSpec, list[Any]]:
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 5, "return_sequences": per_step}],
        head={"units": 1},
        training={
            "optimizer": "adam",
            "loss": {"name": "huber", "delta": 0.5} if loss == "huber" else loss,
            "metrics": METRICS,
            "batch_size": 4,
            "epochs": 2,
            "shuffle": False,
        },
    )
    layers = [keras.Input((None, 3)), L.Masking(0.0), L.LSTM(5, return_sequences=per_step), L.Dense(1)]
    return spec, layers


def _regression_data(spec: rnnspec.ModelSpec, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = random_inputs(spec, seed, batch=n, time=6)
    y = np.random.default_rng(seed + 1).normal(size=(n, 6) if spec.output_per_step else (n,)).astype(np.float32)
    return x, y


def _assert_histories_equal(got: dict[str, Any], expected: dict[str, list[float]]) -> float:
    assert sorted(k for k in got if k not in ("batch_loss", "seed")) == sorted(expected)  # Keras's series
    worst = 0.0
    for key, values in expected.items():
        diff = np.abs(np.array(got[key]) - np.array(values)) / np.maximum(np.abs(values), 1e-12)
        worst = max(worst, float(diff.max()))
    assert worst <= TOL, worst
    return worst


@pytest.mark.parametrize("per_step", [False, True], ids=["last", "per-step"])
@pytest.mark.parametrize("loss", list(REGRESSION_LOSSES))
def test_fit_regression_equals_hand_built_fit(loss: str, per_step: bool):
    spec, layers = _regressor(per_step, loss)
    weights = random_weights(spec, 3)
    x, y = _regression_data(spec, 10, 4)
    x_val, y_val = _regression_data(spec, 5, 6)
    model = rnnspec.build(spec, "keras", weights=weights)
    history = rnnspec.fit(model, x, y, validation_data=(x_val, y_val))

    hand = _hand_built(layers, spec, weights)
    hand.compile(optimizer=keras.optimizers.Adam(), loss=REGRESSION_LOSSES[loss](), metrics=_keras_metrics())
    expected = hand.fit(
        x, y[..., None], batch_size=4, epochs=2, shuffle=False, verbose=0, validation_data=(x_val, y_val[..., None])
    ).history
    assert list(expected) == ["loss", *METRICS, "val_loss", *(f"val_{m}" for m in METRICS)]
    _assert_histories_equal(history, expected)
    assert len(history["batch_loss"]) == 2 * 3
    evaluated = rnnspec.evaluate(model, x_val, y_val)
    reference = hand.evaluate(x_val, y_val[..., None], batch_size=4, verbose=0, return_dict=True)
    assert list(evaluated) == ["loss", *METRICS]
    assert all(abs(evaluated[k] - reference[k]) <= TOL * abs(reference[k]) for k in reference)


def test_masked_per_step_loss_and_metrics_against_numpy():
    """One batch, so Keras's means are plain masked means: padded steps count in neither loss nor mae/mse.

    Keras's ``RootMeanSquaredError`` squares the error before its mean and so loses the outputs' mask:
    ``rmse`` counts padded steps (Keras's behaviour, kept).
    """
    spec, _ = _regressor(True, "huber")
    model = rnnspec.build(spec, "keras", weights=random_weights(spec, 7))
    x, y = _regression_data(spec, 6, 8)
    got = rnnspec.evaluate(model, x, y, batch_size=len(x))
    keep = (x != 0.0).any(axis=-1)
    assert 0 < keep.sum() < keep.size
    error = (rnnspec.predict(model, x)[..., 0] - y).astype(np.float64)
    kept = error[keep]
    huber = np.where(np.abs(kept) <= 0.5, 0.5 * kept**2, 0.5 * (np.abs(kept) - 0.25))
    expected = {
        "loss": huber.mean(),
        "mae": np.abs(kept).mean(),
        "mse": (kept**2).mean(),
        "rmse": np.sqrt((error**2).mean()),
    }
    for key, value in expected.items():
        assert abs(got[key] - value) <= 1e-5 * abs(value), key


def test_fit_tagger_masked_classes_equal_hand_built_fit_and_numpy():
    spec, ours, hand, _ = _both("tagger", seed=9)
    x = random_inputs(spec, 10, batch=8, time=7)
    y = np.random.default_rng(11).integers(0, 5, size=x.shape)
    keep = x != 0
    probs = rnnspec.predict(ours, x).astype(np.float64)
    picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    got = rnnspec.evaluate(ours, x, y, batch_size=len(x))
    assert abs(got["loss"] - (-np.log(picked[keep])).mean()) <= 1e-5 * got["loss"]
    assert abs(got["accuracy"] - (probs.argmax(-1) == y)[keep].mean()) <= 1e-6

    history = rnnspec.fit(ours, x, y, epochs=2, batch_size=3, shuffle=False)
    hand.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    expected = hand.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0).history
    _assert_histories_equal(history, expected)


def test_fit_with_dropout_layers_equals_hand_built_fit_under_one_seed():
    """Same Keras seed, same layers in the same order: the dropout layers draw the same masks while training."""
    spec, ours, hand, _ = _both("bilstm-dropout", seed=12)
    x = random_inputs(spec, 13, batch=8)
    y = np.random.default_rng(14).integers(0, 2, size=len(x)).astype(np.float32)
    history = rnnspec.fit(ours, x, y, epochs=2, batch_size=4, shuffle=False)
    hand.compile(optimizer=keras.optimizers.SGD(), loss="binary_crossentropy", metrics=["accuracy"])
    expected = hand.fit(x, y[:, None], batch_size=4, epochs=2, shuffle=False, verbose=0).history
    _assert_histories_equal(history, expected)


# -- artifacts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["keras", "torch"])
@pytest.mark.parametrize("case", ["bilstm-dropout", "masked-sequence", "masked-regressor"])
def test_keras_artifact_round_trip(case: str, convention: str, tmp_path: Path):
    spec, _ = CASES[case]()
    spec = rnnspec.spec_from_dict({**spec.to_dict(), "convention": convention})
    model = rnnspec.build(spec, "keras", weights=random_weights(spec, 15))
    (path,) = BACKEND.save_artifact(model, tmp_path)
    loaded = keras_backend.load_artifact(path)
    assert rnnspec.spec_of(loaded) == spec
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert BACKEND.count_params(loaded) == {row.name: row.params for row in analyze(spec).layers}
    x = random_inputs(spec, 16, batch=5, time=spec.input.seq_len or 8)
    assert np.array_equal(rnnspec.predict(loaded, x), rnnspec.predict(model, x))
    weights = rnnspec.get_weights(loaded)
    assert all(np.array_equal(weights[k], v) for k, v in rnnspec.get_weights(model).items())
    if spec.masked:
        assert all(layer.use_cudnn is False for layer in loaded.layers if hasattr(layer, "use_cudnn"))


# -- registries and modules ----------------------------------------------------------------------


def test_every_kind_has_one_builder_and_every_cell_one_entry():
    assert keras_backend.BUILDERS.kinds() == sorted(LAYER_KINDS)
    assert keras_backend.CELLS.kinds() == sorted(RECURRENT_KINDS)
    with pytest.raises(DuplicateKindError, match="two cells for layer kind 'lstm'"):
        keras_backend.register_cell("lstm", L.LSTM, keras_backend.TorchLSTMCell)
    assert keras_backend.CELLS.get("lstm").layer is L.LSTM


def test_trainer_module_does_not_import_the_backend_module():
    code = (
        "import sys, rnnspec_backends.keras.train as t\n"
        "print('rnnspec_backends.keras.model' in sys.modules, t.keras.__name__)\n"
        "import rnnspec_backends.keras.model as k\n"
        "print(k.TorchGRUCell.__module__, k.keras is t.keras)"
    )
    environ = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["False", "keras", "rnnspec_backends.keras.cells", "True"], result.stderr
