"""The torch backend's layer kinds against Keras models built by hand (not by rnnspec's keras backend).

Forward: the same canonical weights in both, outputs within 1e-5 and the same output mask, for the
TF text-classification model, a BiLSTM with SpatialDropout1D and Dropout layers, a masked
multivariate regressor (a fully masked row included) and a per-step tagger with a gelu hidden
layer; per-layer counts equal Keras's ``count_params()``. Dropout statistics in training mode, the
kind registries, and short training runs (mse, mae, huber; metrics mae, mse, rmse) against
``model.fit`` with dropout rates 0.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import rnnspec
from rnnspec.core.kinds import DuplicateKindError, KindRegistry, MissingKindError
from tests.conftest import SPECS
from tests.parity import random_inputs, random_weights

torch = pytest.importorskip("torch", reason="needs the torch extra")
tb = pytest.importorskip("rnnspec_backends.torch.model")

FORWARD_TOL = 1e-5
LOSS_TOL = 1e-4


@pytest.fixture(scope="module")
def keras():
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
        pytest.skip("keras / tensorflow are not installed (pip install 'rnnspec[keras]')")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"Keras runs on {keras.backend.backend()}, these references need TensorFlow")
    return keras


def _spec(**data) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.1, "name": "kinds", **data})


def _load(kmodel, spec: rnnspec.ModelSpec, weights: dict[str, np.ndarray]) -> None:
    """Canonical weights into a hand-built Keras model: the same order and shapes as Keras's own weights."""
    shapes = rnnspec.weight_shapes(spec)
    assert [tuple(v.shape) for v in kmodel.weights] == list(shapes.values())
    kmodel.set_weights([weights[name] for name in shapes])


# -- the reference models: (spec, Keras model) ---------------------------------------------------------


def text_classification(keras):
    """TensorFlow's text-classification tutorial (smaller): Embedding(mask_zero) → BiLSTM → Dense relu → Dense."""
    spec = _spec(
        input={"vocab_size": 40},
        embedding={"output_dim": 8, "mask_zero": True},
        recurrent=[{"cell": "lstm", "units": 6, "bidirectional": True}],
        head=[{"units": 6, "activation": "relu"}, {"units": 1}],
    )
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(40, 8, mask_zero=True),
            L.Bidirectional(L.LSTM(6)),
            L.Dense(6, activation="relu"),
            L.Dense(1),
        ]
    )
    return spec, model


def bilstm_dropout(keras):
    """Embedding(mask_zero) → SpatialDropout1D → BiLSTM(sequences) → Dropout → LSTM → Dropout → Dense sigmoid."""
    spec = _spec(
        input={"vocab_size": 40},
        embedding={"output_dim": 8, "mask_zero": True},
        recurrent=[
            {"spatial_dropout": 0.2},
            {"cell": "lstm", "units": 5, "return_sequences": True, "bidirectional": True},
            {"dropout": 0.3},
            {"cell": "lstm", "units": 4},
        ],
        head=[{"dropout": 0.5}, {"units": 1, "activation": "sigmoid"}],
    )
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(40, 8, mask_zero=True),
            L.SpatialDropout1D(0.2),
            L.Bidirectional(L.LSTM(5, return_sequences=True)),
            L.Dropout(0.3),
            L.LSTM(4),
            L.Dropout(0.5),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    return spec, model


def masked_regressor(keras):
    """Masking(0) on 3 features → LSTM(32) → Dense(1)."""
    spec = _spec(input={"features": 3, "mask_value": 0.0}, recurrent=[{"cell": "lstm", "units": 32}], head={"units": 1})
    L = keras.layers
    model = keras.Sequential([keras.Input((None, 3)), L.Masking(0.0), L.LSTM(32), L.Dense(1)])
    return spec, model


def tagger(keras):
    """Embedding(mask_zero) → GRU(sequences) → Dense(gelu) → Dense(softmax), per step."""
    spec = _spec(
        input={"vocab_size": 40},
        embedding={"output_dim": 8, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 6, "return_sequences": True}],
        head=[{"units": 7, "activation": "gelu"}, {"units": 5, "activation": "softmax"}],
    )
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(40, 8, mask_zero=True),
            L.GRU(6, return_sequences=True),
            L.Dense(7, activation="gelu"),
            L.Dense(5, activation="softmax"),
        ]
    )
    return spec, model


def masked_simple_rnn_stack(keras):
    """Masking(0.5) → SimpleRNN(relu, sequences, backwards) → Dropout → Bidirectional GRU(ave) → Dense(tanh)."""
    spec = _spec(
        input={"features": 4, "mask_value": 0.5},
        recurrent=[
            {"cell": "simple_rnn", "units": 5, "activation": "relu", "return_sequences": True, "go_backwards": True},
            {"dropout": 0.4},
            {"cell": "gru", "units": 3, "return_sequences": True, "bidirectional": True, "merge_mode": "ave"},
        ],
        head={"units": 2, "activation": "tanh"},
    )
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            L.Masking(0.5),
            L.SimpleRNN(5, activation="relu", return_sequences=True, go_backwards=True),
            L.Dropout(0.4),
            L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="ave"),
            L.Dense(2, activation="tanh"),
        ]
    )
    return spec, model


MODELS = [text_classification, bilstm_dropout, masked_regressor, tagger, masked_simple_rnn_stack]


def _inputs(spec: rnnspec.ModelSpec) -> np.ndarray:
    """Pre-padded rows of several lengths, a full row and a fully masked row (tests/parity.py), plus a hole."""
    x = random_inputs(spec, 3, batch=6, time=8)
    if spec.input.mask_value is None:
        x[-1, 5] = 0
    return x


@pytest.mark.parametrize("make", MODELS, ids=[m.__name__ for m in MODELS])
def test_forward_mask_and_counts_equal_keras(keras, make):
    spec, kmodel = make(keras)
    weights = random_weights(spec, 1)
    _load(kmodel, spec, weights)
    model = rnnspec.build(spec, "torch", weights=weights)
    x = _inputs(spec)
    expected = np.asarray(kmodel.predict_on_batch(x))
    got = rnnspec.predict(model, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= FORWARD_TOL
    # the same output mask as Keras's (None once a recurrent layer returns only its last output)
    keras_mask = getattr(kmodel(x, training=False), "_keras_mask", None)
    if keras_mask is None:
        assert model.output_mask is None
    else:
        assert np.array_equal(model.output_mask.numpy(), np.asarray(keras_mask))
    counts = rnnspec.get_backend("torch").count_params(model)
    assert list(counts) == spec.layer_names()
    assert counts == {name: layer.count_params() for name, layer in zip(spec.layer_names(), kmodel.layers, strict=True)}


# -- Masking, gelu and Dense on 3-D input without Keras ------------------------------------------------


def test_masking_zeroes_masked_steps_and_makes_the_mask():
    spec = _spec(input={"features": 2, "mask_value": 1.5}, recurrent=[{"cell": "gru", "units": 2}])
    model = rnnspec.build(spec, "torch", seed=0)
    x = torch.tensor([[[1.5, 1.5], [1.5, 2.0], [0.0, 0.0]]])
    out, mask = model.layers["masking"](x, None)
    assert mask.tolist() == [[False, True, True]]
    assert out.tolist() == [[[0.0, 0.0], [1.5, 2.0], [0.0, 0.0]]]


def test_gelu_is_the_exact_erf_form():
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    expected = 0.5 * x * (1 + torch.erf(x / np.sqrt(2.0)))
    assert torch.allclose(tb.ACTIVATIONS["gelu"](x), expected, rtol=0, atol=1e-12)


def test_dense_on_every_step_passes_the_mask_through():
    spec = _spec(
        input={"vocab_size": 9},
        embedding={"output_dim": 3, "mask_zero": True},
        recurrent=[{"cell": "lstm", "units": 4, "return_sequences": True}, {"dropout": 0.5}],
        head=[{"units": 3, "activation": "selu"}, {"dropout": 0.1}, {"units": 2}],
    )
    model = rnnspec.build(spec, "torch", seed=0)
    x = random_inputs(spec, 0)
    out = rnnspec.predict(model, x)
    assert out.shape == (*x.shape, 2)
    assert np.array_equal(model.output_mask.numpy(), x != 0)
    # the last step alone gives the same per-step value: Dense acts on each step independently
    h = torch.as_tensor(np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32))
    dense = model.layers["head_1"]
    with torch.no_grad():
        whole, _ = dense(h, None)
        one, _ = dense(h[:, -1], None)
    assert torch.equal(whole[:, -1], one)


# -- dropout statistics in training mode -----------------------------------------------------------------

RATE = 0.3
SCALE = np.float32(1.0 / (1.0 - RATE))


def _dropout_model(entry: dict):
    spec = _spec(
        input={"vocab_size": 5},
        embedding={"output_dim": 4},
        recurrent=[entry, {"cell": "lstm", "units": 2}],
    )
    return rnnspec.build(spec, "torch", seed=0)


def test_dropout_drops_elements_and_scales_the_rest_exactly():
    layer = _dropout_model({"dropout": RATE}).layers["dropout_0"]
    x = torch.as_tensor(np.random.default_rng(0).uniform(0.5, 2.0, size=(64, 50, 40)).astype(np.float32))
    layer.train()
    torch.manual_seed(0)
    out, _ = layer(x, None)
    kept = out != 0
    # 128,000 independent draws: the kept fraction's standard deviation is 0.0013; 0.01 is over 7 of them
    assert abs(kept.double().mean().item() - (1 - RATE)) <= 0.01
    assert torch.equal(out[kept], x[kept] * torch.tensor(SCALE))
    assert len(torch.unique(kept.flatten(), return_counts=True)[0]) == 2
    layer.eval()
    assert torch.equal(layer(x, None)[0], x)


def test_spatial_dropout_drops_whole_channels_of_a_sequence():
    layer = _dropout_model({"spatial_dropout": RATE}).layers["spatial_dropout_0"]
    x = torch.as_tensor(np.random.default_rng(1).uniform(0.5, 2.0, size=(200, 12, 100)).astype(np.float32))
    layer.train()
    torch.manual_seed(1)
    out, _ = layer(x, None)
    kept = out != 0
    # every (sample, channel) is kept at all steps or dropped at all steps
    assert bool((kept.all(dim=1) | (~kept).all(dim=1)).all())
    # 20,000 (sample, channel) draws: standard deviation 0.0032; 0.02 is over 6 of them
    assert abs(kept[:, 0].double().mean().item() - (1 - RATE)) <= 0.02
    assert torch.equal(out[kept], x[kept] * torch.tensor(SCALE))
    # not one mask for the whole batch: samples differ
    assert not bool((kept[:, 0] == kept[:1, 0]).all())
    layer.eval()
    assert torch.equal(layer(x, None)[0], x)


def test_dropout_layers_pass_the_mask_and_act_only_in_training():
    spec = _spec(
        input={"vocab_size": 9},
        embedding={"output_dim": 4, "mask_zero": True},
        recurrent=[{"spatial_dropout": 0.5}, {"cell": "gru", "units": 3, "return_sequences": True}, {"dropout": 0.5}],
        head=[{"dropout": 0.5}, {"units": 2}],
    )
    plain = _spec(
        input={"vocab_size": 9},
        embedding={"output_dim": 4, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 3, "return_sequences": True}],
        head=[{"units": 2}],
    )
    weights = random_weights(plain, 0)
    x = random_inputs(spec, 1)
    model = rnnspec.build(spec, "torch", weights=weights)
    reference = rnnspec.build(plain, "torch", weights=weights)
    assert np.array_equal(rnnspec.predict(model, x), rnnspec.predict(reference, x))
    assert np.array_equal(model.output_mask.numpy(), x != 0)
    model.train()
    torch.manual_seed(0)
    assert not np.allclose(model(torch.as_tensor(x)).detach().numpy(), rnnspec.predict(reference, x))
    assert np.array_equal(model.output_mask.numpy(), x != 0)


# -- the kind registries --------------------------------------------------------------------------------


def _copy(registry: KindRegistry, without: tuple[str, ...] = ()) -> KindRegistry:
    copy = KindRegistry(registry.backend, registry.what)
    for kind in registry.kinds():
        if kind not in without:
            copy.add(kind, registry.get(kind))
    return copy


def test_every_layer_kind_has_one_builder_and_every_cell_a_step_function():
    from rnnspec.lang.layers import LAYER_KINDS, RECURRENT_KINDS

    assert tb.BUILDERS.kinds() == sorted(LAYER_KINDS)
    assert tb.CELLS.kinds() == sorted(RECURRENT_KINDS)
    assert tb.CELLS.what == "step function"


def test_a_second_registration_is_refused():
    with pytest.raises(DuplicateKindError, match="two builders for layer kind 'dense'"):
        tb.BUILDERS.register("dense")(tb.BUILDERS.get("dense"))
    with pytest.raises(DuplicateKindError, match="two step functions for layer kind 'lstm'"):
        tb.cell("lstm")(tb.lstm_step)
    assert tb.BUILDERS.kinds() == _copy(tb.BUILDERS).kinds()


def test_a_missing_kind_fails_clearly_on_build(monkeypatch):
    spec = rnnspec.load_spec(SPECS / "bilstm_dropout.yaml")
    builders, cells = tb.BUILDERS, tb.CELLS
    monkeypatch.setattr(tb, "BUILDERS", _copy(builders, without=("spatial_dropout", "dropout")))
    with pytest.raises(MissingKindError) as info:
        rnnspec.build(spec, "torch", seed=0)
    message = str(info.value)
    assert "the torch backend has no builder for layer kind 'spatial_dropout' (layer 'spatial_dropout_0')" in message
    assert "'dropout' (layer 'dropout_0'), 'dropout' (layer 'dropout_1')" in message
    from rnnspec.lang.layers import LAYER_KINDS

    kept = [kind for kind in sorted(LAYER_KINDS) if kind not in ("spatial_dropout", "dropout")]
    assert f"it has: {', '.join(kept)}" in message

    monkeypatch.setattr(tb, "BUILDERS", builders)
    monkeypatch.setattr(tb, "CELLS", _copy(cells, without=("lstm",)))
    with pytest.raises(MissingKindError, match="no step function for layer kind 'lstm' \\(layer 'recurrent_0'\\)"):
        rnnspec.build(spec, "torch", seed=0)


def test_a_new_cell_is_one_step_function_and_one_registration(monkeypatch):
    """Re-registering simple_rnn from scratch (no fused op) in copies of the registries gives the same model."""
    monkeypatch.setattr(tb, "BUILDERS", _copy(tb.BUILDERS, without=("simple_rnn",)))
    monkeypatch.setattr(tb, "CELLS", _copy(tb.CELLS, without=("simple_rnn",)))

    @tb.cell("simple_rnn", gate_dropout=False)
    def elman(d, xk, states, rec_masks):
        out = d.act(xk + states[0] @ d.recurrent_kernel)
        return out, (out,)

    spec = _spec(
        input={"vocab_size": 9},
        embedding={"output_dim": 3, "mask_zero": True},
        recurrent=[{"cell": "simple_rnn", "units": 4, "return_sequences": True, "bidirectional": True}],
    )
    weights, x = random_weights(spec, 0), random_inputs(spec, 1)
    model = rnnspec.build(spec, "torch", weights=weights)
    got = rnnspec.predict(model, x)
    assert not model.layers["recurrent_0"].fused and model.layers["recurrent_0"].loop_calls == 2
    monkeypatch.undo()
    assert np.abs(got - rnnspec.predict(rnnspec.build(spec, "torch", weights=weights), x)).max() <= 1e-6


# -- training against Keras's fit ------------------------------------------------------------------------

BATCH, N = 4, 48  # 12 optimizer steps


def _per_step_regressor(keras, loss: dict):
    """Masking → GRU(sequences) → SpatialDropout1D(0) → Dense(gelu) → Dropout(0) → Dense(2), per-step targets."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "gru", "units": 5, "return_sequences": True}, {"spatial_dropout": 0.0}],
        head=[{"units": 4, "activation": "gelu"}, {"dropout": 0.0}, {"units": 2}],
        training={"loss": loss},
    )
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            L.Masking(0.0),
            L.GRU(5, return_sequences=True),
            L.SpatialDropout1D(0.0),
            L.Dense(4, activation="gelu"),
            L.Dropout(0.0),
            L.Dense(2),
        ]
    )
    return spec, model


def _last_step_regressor(keras, loss: dict):
    """Masking → LSTM(6) → Dropout(0) → Dense(1)."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 6}, {"dropout": 0.0}],
        head={"units": 1},
        training={"loss": loss},
    )
    L = keras.layers
    model = keras.Sequential([keras.Input((None, 3)), L.Masking(0.0), L.LSTM(6), L.Dropout(0.0), L.Dense(1)])
    return spec, model


def _token_tagger(keras, loss: dict):
    """Embedding(mask_zero) → SpatialDropout1D(0) → BiLSTM(sequences) → Dense(3) (Adam's per-occurrence rule)."""
    spec = _spec(
        input={"vocab_size": 12},
        embedding={"output_dim": 4, "mask_zero": True},
        recurrent=[
            {"spatial_dropout": 0.0},
            {"cell": "lstm", "units": 3, "return_sequences": True, "bidirectional": True},
        ],
        head={"units": 3},
        training={"loss": loss},
    )
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            L.Embedding(12, 4, mask_zero=True),
            L.SpatialDropout1D(0.0),
            L.Bidirectional(L.LSTM(3, return_sequences=True)),
            L.Dense(3),
        ]
    )
    return spec, model


def _keras_loss(keras, loss: dict):
    name = loss["name"]
    if name == "huber":
        return keras.losses.Huber(delta=loss.get("delta", 1.0))
    return {"mse": keras.losses.MeanSquaredError, "mae": keras.losses.MeanAbsoluteError}[name]()


TRAINING_CASES = [
    ("mse", _last_step_regressor, {"name": "mse"}),
    ("mae", _per_step_regressor, {"name": "mae"}),
    ("huber", _per_step_regressor, {"name": "huber", "delta": 0.5}),
    ("huber-tokens", _token_tagger, {"name": "huber"}),
]


@pytest.mark.parametrize(("make", "loss"), [c[1:] for c in TRAINING_CASES], ids=[c[0] for c in TRAINING_CASES])
def test_training_and_metrics_equal_keras_fit(keras, make, loss):
    spec, kmodel = make(keras, loss)
    training = {"optimizer": {"name": "adam", "learning_rate": 0.01}, "metrics": ["mae", "mse", "rmse"]}
    spec = rnnspec.spec_from_dict({**spec.to_dict(), "training": {**spec.to_dict()["training"], **training}})
    weights = random_weights(spec, 2)
    x = random_inputs(spec, 4, batch=N, time=6)
    rng = np.random.default_rng(5)
    y = rng.normal(size=(N, x.shape[1], spec.output_units) if spec.output_per_step else (N, 1)).astype(np.float32)

    # Keras: its own fit loop, the same batches in the same order; each step's loss from the loss tracker
    _load(kmodel, spec, weights)
    kmodel.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=_keras_loss(keras, loss),
        metrics=["mae", "mse", keras.metrics.RootMeanSquaredError(name="rmse")],
    )
    steps: list[float] = []

    class StepLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = [0.0, 0.0]

        def on_train_batch_end(self, batch, logs=None):
            total, count = float(kmodel._loss_tracker.total), float(kmodel._loss_tracker.count)
            steps.append((total - self.seen[0]) / (count - self.seen[1]))
            self.seen[:] = [total, count]

    k_history = kmodel.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[StepLosses()])
    k_eval = kmodel.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)

    model = rnnspec.build(spec, "torch", weights=weights)
    history = rnnspec.fit(model, x, y, epochs=1, batch_size=BATCH, shuffle=False)
    evaluation = rnnspec.evaluate(model, x, y, batch_size=BATCH)

    t_steps, k_steps = np.array(history["batch_loss"]), np.array(steps)
    assert len(t_steps) == len(k_steps) == N // BATCH
    assert np.max(np.abs(t_steps - k_steps) / np.abs(k_steps)) <= LOSS_TOL
    assert [k for k in history if k not in ("batch_loss", "seed")] == ["loss", "mae", "mse", "rmse"]
    assert list(evaluation) == ["loss", "mae", "mse", "rmse"]
    for key in ("loss", "mae", "mse", "rmse"):
        np.testing.assert_allclose(history[key][0], k_history.history[key][0], rtol=LOSS_TOL, err_msg=key)
        np.testing.assert_allclose(evaluation[key], k_eval[key], rtol=LOSS_TOL, err_msg=f"evaluate {key}")
    final = rnnspec.get_weights(model)
    for name, value in zip(rnnspec.weight_shapes(spec), kmodel.get_weights(), strict=True):
        assert np.abs(final[name] - value).max() <= LOSS_TOL, name


def test_masked_metrics_skip_padding_but_rmse_counts_it():
    """Keras's mae / mse metrics wrap a loss function and read the outputs' mask; RootMeanSquaredError does not."""
    spec = _spec(
        input={"features": 2, "mask_value": 0.0},
        recurrent=[{"cell": "gru", "units": 3, "return_sequences": True}],
        head={"units": 2},
        training={"loss": "mse", "metrics": ["mse", "rmse", "mae"]},
    )
    model = rnnspec.build(spec, "torch", seed=0)
    x = random_inputs(spec, 0, batch=5, time=6)
    y = np.random.default_rng(1).normal(size=(5, 6, 2)).astype(np.float32)
    result = rnnspec.evaluate(model, x, y, batch_size=2)
    assert list(result) == ["loss", "mse", "rmse", "mae"]
    error = rnnspec.predict(model, x).astype(np.float64) - y
    mask = (x != 0).any(-1)
    per_step = (error**2).mean(-1)
    # the loss: a masked mean per batch (2, 2 and 1 samples; the 2nd row is all padding), weighted by batch size
    batches = [slice(0, 2), slice(2, 4), slice(4, 5)]
    loss = sum((per_step[b] * mask[b]).sum() / mask[b].sum() * len(mask[b]) for b in batches) / 5
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    # the metrics: sums and counts over the whole pass
    assert result["mse"] == pytest.approx((per_step * mask).sum() / mask.sum(), rel=1e-5)
    assert result["mae"] == pytest.approx((np.abs(error).mean(-1) * mask).sum() / mask.sum(), rel=1e-5)
    assert result["rmse"] == pytest.approx(np.sqrt((error**2).mean()), rel=1e-5)


def test_a_headless_sigmoid_output_is_a_probability_for_the_loss(keras):
    """Keras reads logits only behind a Dense sigmoid/softmax; a recurrent layer's own sigmoid output is clipped."""
    spec = _spec(
        input={"features": 1},
        recurrent=[{"cell": "simple_rnn", "units": 1, "activation": "sigmoid"}],
        training={"loss": "binary_crossentropy", "optimizer": "sgd"},
    )
    weights = {"recurrent_0/kernel": [[30.0]], "recurrent_0/recurrent_kernel": [[0.0]], "recurrent_0/bias": [0.0]}
    weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    x, y = np.ones((1, 2, 1), np.float32), np.zeros((1, 1), np.float32)
    kmodel = keras.Sequential([keras.Input((None, 1)), keras.layers.SimpleRNN(1, activation="sigmoid")])
    _load(kmodel, spec, weights)
    kmodel.compile("sgd", "binary_crossentropy")
    expected = kmodel.evaluate(x, y, verbose=0)
    # -log(1 - float32(1 - 1e-7)) = 15.9424 in float32 (the clipped probability), not the logit 30
    assert expected == pytest.approx(15.9424, rel=1e-4)
    got = rnnspec.evaluate(rnnspec.build(spec, "torch", weights=weights), x, y)["loss"]
    assert got == pytest.approx(expected, rel=1e-6)
