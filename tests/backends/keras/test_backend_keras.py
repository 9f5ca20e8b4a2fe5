"""The Keras backend against independent references.

* counts: the analytic counts of :func:`rnnspec.analyze` against Keras's own ``count_params()``;
* weights: the canonical round trip, bit for bit;
* torch convention: the custom cells against ``torch.nn.RNN/LSTM/GRU`` loaded with the same random
  weights, and against a NumPy loop written here from PyTorch's documented equations (also the
  ``reset_after: false`` GRU, which PyTorch lacks, and Keras's masking);
* keras convention: against plain Keras layers built here, given the same weights;
* artifacts, the TensorFlow-only guard, summary and notes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec import analyze, load_spec, spec_from_dict, weight_shapes
from rnnspec.lang.spec import ModelSpec
from tests.conftest import REPO, SPECS

# The backend first: importing it sets TensorFlow's log level before TensorFlow loads.
keras_backend = pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
pytest.importorskip("tensorflow")
keras = keras_backend.keras
BACKEND = keras_backend.BACKEND

TOL = 1e-5
KERAS_SAVE_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
"""Keras's own ``model.save`` converts variables with ``np.array`` (keras/src/backend/tensorflow/core.py)."""


def _spec(
    recurrent: list[dict[str, Any]],
    *,
    convention: str = "keras",
    features: int | None = 3,
    vocab: int | None = None,
    mask_zero: bool = False,
    head: dict[str, Any] | None = None,
    name: str = "t",
) -> ModelSpec:
    data: dict[str, Any] = {"rnnspec": 1, "name": name, "convention": convention, "recurrent": recurrent}
    if vocab is not None:
        data["input"] = {"vocab_size": vocab}
        data["embedding"] = {"output_dim": 4, "mask_zero": mask_zero}
    else:
        data["input"] = {"features": features}
    if head is not None:
        data["head"] = head
    return spec_from_dict(data)


def _with_convention(spec: ModelSpec, convention: str) -> ModelSpec:
    return spec_from_dict({**spec.to_dict(), "convention": convention})


def _random_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Random canonical weights, biases included (never constants, so every slot matters)."""
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0.0, 0.5, size=s).astype(np.float32) for k, s in weight_shapes(spec).items()}


def _inputs(spec: ModelSpec, batch: int = 3, time: int = 6, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if spec.input.vocab_size is not None:
        ids = rng.integers(1, spec.input.vocab_size, size=(batch, time))
        if spec.embedding is not None and spec.embedding.mask_zero:
            ids[0, :2] = 0  # pre-padding
            ids[1, 3] = 0  # a hole
            if batch > 2:
                ids[2, :] = 0  # a fully masked row
        return ids
    return rng.normal(size=(batch, time, spec.input.features)).astype(np.float32)


# -- parameter counts ----------------------------------------------------------------------------


def _count_cases() -> dict[str, ModelSpec]:
    cases: dict[str, ModelSpec] = {}
    for path in sorted(SPECS.glob("*.yaml")):
        spec = load_spec(path)
        for convention in ("keras", "torch"):
            cases[f"{path.stem}-{convention}"] = _with_convention(spec, convention)
    head = {"units": 2}
    for convention in ("keras", "torch"):
        for cell in ("simple_rnn", "lstm", "gru"):
            cases[f"{cell}-{convention}"] = _spec([{"cell": cell, "units": 4}], convention=convention, head=head)
            cases[f"{cell}-no-bias-{convention}"] = _spec(
                [{"cell": cell, "units": 4, "use_bias": False}], convention=convention
            )
        cases[f"gru-reset-before-{convention}"] = _spec(
            [{"cell": "gru", "units": 4, "reset_after": False}], convention=convention, head=head
        )
        for mode in ("concat", "sum", "mul", "ave"):
            cases[f"bi-{mode}-{convention}"] = _spec(
                [
                    {"cell": "lstm", "units": 3, "bidirectional": True, "merge_mode": mode, "return_sequences": True},
                    {"cell": "gru", "units": 2, "bidirectional": True, "merge_mode": mode, "reset_after": False},
                ],
                convention=convention,
                vocab=9,
                mask_zero=True,
                head=head,
            )
    return cases


COUNT_CASES = _count_cases()


@pytest.mark.parametrize("case", sorted(COUNT_CASES))
def test_counts_equal_analysis(case: str):
    spec = COUNT_CASES[case]
    model = BACKEND.build(spec)
    assert BACKEND.count_params(model) == {row.name: row.params for row in analyze(spec).layers}
    assert model.count_params() == analyze(spec).total_params


def test_layer_names_and_types():
    spec = COUNT_CASES["bi-sum-torch"]
    model = BACKEND.build(spec)
    assert [layer.name for layer in model.layers] == spec.layer_names()
    assert model.name == spec.name
    assert isinstance(model.get_layer("recurrent_0"), keras.layers.Bidirectional)
    assert isinstance(model.get_layer("recurrent_0").forward_layer.cell, keras_backend.TorchLSTMCell)
    assert isinstance(model.get_layer("recurrent_1").backward_layer.cell, keras_backend.TorchGRUCell)
    assert isinstance(BACKEND.build(COUNT_CASES["gru-torch"]).get_layer("recurrent_0"), keras.layers.GRU)
    assert isinstance(BACKEND.build(COUNT_CASES["lstm-keras"]).get_layer("recurrent_0"), keras.layers.LSTM)
    assert model._rnnspec_backend == "keras"
    assert model._rnnspec_spec is spec
    assert rnnspec.spec_of(model) is spec


# -- canonical weights ---------------------------------------------------------------------------

ROUND_TRIP = {
    "imdb_lstm": load_spec(SPECS / "imdb_lstm.yaml"),
    "char_rnn_hello (torch)": load_spec(SPECS / "char_rnn_hello.yaml"),
    "bi-concat-torch": COUNT_CASES["bi-concat-torch"],
    "bi-ave-keras": COUNT_CASES["bi-ave-keras"],
    "gru-reset-before-torch": COUNT_CASES["gru-reset-before-torch"],
    "lstm-no-bias-torch": COUNT_CASES["lstm-no-bias-torch"],
}


@pytest.mark.parametrize("case", sorted(ROUND_TRIP))
def test_seeded_weights_round_trip_bit_for_bit(case: str):
    spec = ROUND_TRIP[case]
    model = rnnspec.build(spec, "keras", seed=0)
    got = rnnspec.get_weights(model)
    expected = rnnspec.initial_weights(spec, 0)
    assert list(got) == list(expected)
    for name, value in expected.items():
        assert got[name].dtype == np.float32
        assert np.array_equal(got[name], value), name

    fresh = _random_weights(spec, 5)
    rnnspec.set_weights(model, fresh)
    assert all(np.array_equal(rnnspec.get_weights(model)[k], v) for k, v in fresh.items())


def test_set_weights_reports_every_mismatch():
    spec = COUNT_CASES["lstm-torch"]
    model = BACKEND.build(spec)
    weights = _random_weights(spec, 0)
    del weights["recurrent_0/recurrent_bias"]
    weights["recurrent_0/kernel"] = weights["recurrent_0/kernel"][:2]
    weights["extra/kernel"] = np.zeros(1, np.float32)
    with pytest.raises(rnnspec.RnnspecError) as info:
        BACKEND.set_weights(model, weights)
    text = str(info.value)
    assert "missing recurrent_0/recurrent_bias" in text
    assert "unexpected extra/kernel" in text
    assert "recurrent_0/kernel: shape (2, 16), expected (3, 16)" in text


# -- torch convention against PyTorch and its equations ------------------------------------------


def _torch_layout(cell: str, w: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """PyTorch's tensors for one direction: transposed kernels, GRU gates (z, r, h) reordered to (r, z, n)."""
    kernel, recurrent = w[prefix + "kernel"], w[prefix + "recurrent_kernel"]
    bias, recurrent_bias = w[prefix + "bias"], w.get(prefix + "recurrent_bias")
    if bias.ndim == 2:
        bias, recurrent_bias = bias[0], bias[1]
    if cell == "gru":

        def reorder(a: np.ndarray) -> np.ndarray:
            z, r, h = np.split(a, 3, axis=-1)
            return np.concatenate([r, z, h], axis=-1)

        kernel, recurrent, bias, recurrent_bias = map(reorder, (kernel, recurrent, bias, recurrent_bias))
    return {"weight_ih": kernel.T, "weight_hh": recurrent.T, "bias_ih": bias, "bias_hh": recurrent_bias}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _torch_step(cell: str, p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, reset_after: bool):
    """One step of PyTorch's documented equations (nn.RNN, nn.LSTM, nn.GRU) in float64.

    ``reset_after=False`` is the GRU variant PyTorch lacks: ``n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)``.
    """
    gi = x @ p["weight_ih"].T + p["bias_ih"]
    if cell == "simple_rnn":
        h = np.tanh(gi + h @ p["weight_hh"].T + p["bias_hh"])
        return h, c
    if cell == "lstm":
        i, f, g, o = np.split(gi + h @ p["weight_hh"].T + p["bias_hh"], 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    w_hr, w_hz, w_hn = np.split(p["weight_hh"], 3, axis=0)
    b_hr, b_hz, b_hn = np.split(p["bias_hh"], 3)
    i_r, i_z, i_n = np.split(gi, 3, axis=-1)
    r = _sigmoid(i_r + h @ w_hr.T + b_hr)
    z = _sigmoid(i_z + h @ w_hz.T + b_hz)
    n = np.tanh(i_n + r * (h @ w_hn.T + b_hn)) if reset_after else np.tanh(i_n + (r * h) @ w_hn.T + b_hn)
    return (1.0 - z) * n + z * h, c


def _reference(spec: ModelSpec, w: dict[str, np.ndarray], ids_or_x: np.ndarray) -> np.ndarray:
    """One unidirectional layer under Keras's masking: masked steps keep the state and repeat the output."""
    (layer,) = spec.recurrent
    if spec.embedding is not None:
        x = w["embedding/embeddings"][ids_or_x].astype(np.float64)
        mask = ids_or_x != 0 if spec.embedding.mask_zero else np.ones(ids_or_x.shape, bool)
    else:
        x, mask = ids_or_x.astype(np.float64), np.ones(ids_or_x.shape[:2], bool)
    if layer.go_backwards:
        x, mask = x[:, ::-1], mask[:, ::-1]
    p = {k: v.astype(np.float64) for k, v in _torch_layout(layer.cell, w, "recurrent_0/").items()}
    h = c = np.zeros((x.shape[0], layer.units))
    outputs = []
    for t in range(x.shape[1]):
        h_new, c_new = _torch_step(layer.cell, p, x[:, t], h, c, getattr(layer, "reset_after", True))
        keep = mask[:, t, None]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        outputs.append(h)
    seq = np.stack(outputs, axis=1)
    return seq if layer.return_sequences else seq[:, -1]


TORCH_LOOP_CASES = {
    "simple_rnn": ({"cell": "simple_rnn", "units": 5, "return_sequences": True}, {}),
    "lstm": ({"cell": "lstm", "units": 4}, {}),
    "gru-reset-after": ({"cell": "gru", "units": 4, "return_sequences": True}, {}),
    "gru-reset-before": ({"cell": "gru", "units": 4, "reset_after": False, "return_sequences": True}, {}),
    "gru-reset-before-last": ({"cell": "gru", "units": 3, "reset_after": False}, {}),
    "simple_rnn-masked-backwards": (
        {"cell": "simple_rnn", "units": 4, "return_sequences": True, "go_backwards": True},
        {"vocab": 11, "mask_zero": True},
    ),
    "lstm-masked": ({"cell": "lstm", "units": 3, "return_sequences": True}, {"vocab": 11, "mask_zero": True}),
    "lstm-masked-last": ({"cell": "lstm", "units": 3}, {"vocab": 11, "mask_zero": True}),
    "gru-reset-before-masked-backwards": (
        {"cell": "gru", "units": 3, "reset_after": False, "go_backwards": True, "return_sequences": True},
        {"vocab": 11, "mask_zero": True},
    ),
}


@pytest.mark.parametrize("case", sorted(TORCH_LOOP_CASES))
def test_torch_convention_equals_torch_equations(case: str):
    layer, extra = TORCH_LOOP_CASES[case]
    spec = _spec([layer], convention="torch", **extra)
    weights = _random_weights(spec, 3)
    model = rnnspec.build(spec, "keras", weights=weights)
    x = _inputs(spec, batch=4)
    got = rnnspec.predict(model, x)
    expected = _reference(spec, weights, x)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= TOL


TORCH_MODULE_CASES = {
    "rnn": {"cell": "simple_rnn", "units": 5},
    "rnn-relu-sequences": {"cell": "simple_rnn", "units": 5, "activation": "relu", "return_sequences": True},
    "lstm": {"cell": "lstm", "units": 4},
    "lstm-sequences": {"cell": "lstm", "units": 4, "return_sequences": True},
    "gru": {"cell": "gru", "units": 4, "return_sequences": True},
    "bi-lstm": {"cell": "lstm", "units": 3, "bidirectional": True},
    "bi-rnn-sequences": {"cell": "simple_rnn", "units": 3, "bidirectional": True, "return_sequences": True},
    "bi-gru": {"cell": "gru", "units": 3, "bidirectional": True},
}


def _torch_module(torch: Any, spec: ModelSpec, weights: dict[str, np.ndarray]) -> Any:
    (layer,) = spec.recurrent
    kind = {"simple_rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[layer.cell]
    options = {"nonlinearity": layer.activation} if layer.cell == "simple_rnn" else {}
    module = kind(spec.input.features, layer.units, batch_first=True, bidirectional=layer.bidirectional, **options)
    state = {}
    prefixes = [("recurrent_0/forward/", "_l0"), ("recurrent_0/backward/", "_l0_reverse")]
    for prefix, suffix in prefixes if layer.bidirectional else [("recurrent_0/", "_l0")]:
        for key, value in _torch_layout(layer.cell, weights, prefix).items():
            state[key + suffix] = torch.from_numpy(np.ascontiguousarray(value))
    module.load_state_dict(state)
    return module.eval()


@pytest.mark.parametrize("case", sorted(TORCH_MODULE_CASES))
def test_torch_convention_equals_torch_modules(case: str):
    torch = pytest.importorskip("torch")
    layer = TORCH_MODULE_CASES[case]
    spec = _spec([layer], convention="torch", features=3)
    weights = _random_weights(spec, 11)
    x = _inputs(spec, batch=3, time=7)
    got = rnnspec.predict(rnnspec.build(spec, "keras", weights=weights), x)
    with torch.no_grad():
        out, state = _torch_module(torch, spec, weights)(torch.from_numpy(x))
    h_n = (state[0] if isinstance(state, tuple) else state).numpy()
    if layer.get("return_sequences"):
        expected = out.numpy()
    elif layer.get("bidirectional"):
        expected = np.concatenate([h_n[0], h_n[1]], axis=-1)
    else:
        expected = h_n[0]
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= TOL


@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.3], ids=["one-mask", "mask-per-gate"])
@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_torch_cells_keep_keras_training_dropout(cell: str, recurrent_dropout: float):
    """With a zero recurrent bias and the same seed, a torch cell drops exactly what Keras's cell drops.

    ``recurrent_dropout`` makes Keras's LSTM and GRU cells switch to one mask per gate.
    """
    options: dict[str, Any] = {"dropout": 0.4, "recurrent_dropout": recurrent_dropout, "seed": 7}
    native_kind = {"simple_rnn": keras.layers.SimpleRNNCell, "lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}
    torch_kind = {
        "simple_rnn": keras_backend.TorchSimpleRNNCell,
        "lstm": keras_backend.TorchLSTMCell,
        "gru": keras_backend.TorchGRUCell,
    }
    extra = {"reset_after": False} if cell == "gru" else {}
    native = keras.layers.RNN(native_kind[cell](4, **options, **extra), return_sequences=True)
    ours = keras.layers.RNN(torch_kind[cell](4, **options), return_sequences=True)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    native(x)
    ours(x)
    for target, value in zip(ours.cell.weights, [*native.cell.get_weights(), None], strict=True):
        target.assign(np.zeros(target.shape, np.float32) if value is None else value)
    trained = np.asarray(ours(x, training=True))
    assert np.max(np.abs(trained - np.asarray(native(x, training=True)))) <= TOL
    assert np.max(np.abs(np.asarray(ours(x, training=False)) - np.asarray(native(x, training=False)))) <= TOL
    assert not np.allclose(trained, np.asarray(ours(x, training=False)))


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_torch_cells_train(cell: str):
    """One optimizer step moves every weight of a torch-convention layer, ``recurrent_bias`` included."""
    layer = {"cell": cell, "units": 3, "dropout": 0.2, "recurrent_dropout": 0.2}
    if cell == "gru":
        layer["reset_after"] = False
    spec = _spec([layer], convention="torch", head={"units": 1})
    model = rnnspec.build(spec, "keras", weights=_random_weights(spec, 6))
    before = rnnspec.get_weights(model)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = _inputs(spec, batch=4)
    model.fit(x, np.ones((4, 1), np.float32), epochs=1, batch_size=4, verbose=0)
    after = rnnspec.get_weights(model)
    assert [k for k in before if np.array_equal(before[k], after[k])] == []


# -- keras convention against plain Keras layers -------------------------------------------------


def _plain_keras(spec: ModelSpec, weights: dict[str, np.ndarray]) -> Any:
    """The spec written directly with Keras layers, weights given in Keras's own order."""
    names = iter(spec.layer_names())
    if spec.embedding is not None:
        inputs = keras.Input((None,), dtype="int32")
        name = next(names)
        embedding = keras.layers.Embedding(
            spec.input.vocab_size, spec.embedding.output_dim, mask_zero=spec.embedding.mask_zero
        )
        layers = [(embedding, [weights[f"{name}/embeddings"]])]
    else:
        inputs = keras.Input((None, spec.input.features))
        layers = []
    kinds = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
    for layer in spec.recurrent:
        name = next(names)
        options = {k: v for k, v in layer.model_dump().items() if k in ("activation", "use_bias", "go_backwards")}
        options["return_sequences"] = layer.return_sequences
        if layer.cell != "simple_rnn":
            options["recurrent_activation"] = layer.recurrent_activation
        if layer.cell == "gru":
            options["reset_after"] = layer.reset_after
        rnn = kinds[layer.cell](layer.units, **options)
        prefixes = ["forward/", "backward/"] if layer.bidirectional else [""]
        values = [
            weights[f"{name}/{p}{leaf}"]
            for p in prefixes
            for leaf in ("kernel", "recurrent_kernel", "bias")
            if f"{name}/{p}{leaf}" in weights
        ]
        if layer.bidirectional:
            rnn = keras.layers.Bidirectional(rnn, merge_mode=layer.merge_mode)
        layers.append((rnn, values))
    if spec.head is not None:
        name = next(names)
        dense = keras.layers.Dense(spec.head.units, activation=spec.head.activation, use_bias=spec.head.use_bias)
        layers.append((dense, [weights[k] for k in (f"{name}/kernel", f"{name}/bias") if k in weights]))
    x = inputs
    for layer, _ in layers:
        x = layer(x)
    model = keras.Model(inputs, x)
    for layer, values in layers:
        layer.set_weights(values)
    return model


KERAS_CASES = {
    "simple_rnn": ([{"cell": "simple_rnn", "units": 4, "activation": "relu"}], {"head": {"units": 1}}),
    "lstm-hard-sigmoid": (
        [{"cell": "lstm", "units": 4, "recurrent_activation": "hard_sigmoid", "return_sequences": True}],
        {},
    ),
    "gru-reset-before": ([{"cell": "gru", "units": 4, "reset_after": False, "go_backwards": True}], {}),
    "gru-no-bias": ([{"cell": "gru", "units": 3, "use_bias": False, "return_sequences": True}], {}),
    "stack-masked": (
        [
            {"cell": "lstm", "units": 3, "return_sequences": True, "go_backwards": True},
            {"cell": "gru", "units": 3, "return_sequences": True},
        ],
        {"vocab": 10, "mask_zero": True, "head": {"units": 2, "activation": "softmax"}},
    ),
    **{
        f"bi-{mode}-masked": (
            [
                {"cell": "gru", "units": 3, "bidirectional": True, "merge_mode": mode, "return_sequences": True},
                {"cell": "simple_rnn", "units": 2, "bidirectional": True, "merge_mode": mode},
            ],
            {"vocab": 10, "mask_zero": True, "head": {"units": 1, "activation": "sigmoid"}},
        )
        for mode in ("concat", "sum", "mul", "ave")
    },
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_convention_equals_plain_keras(case: str):
    recurrent, extra = KERAS_CASES[case]
    spec = _spec(recurrent, **extra)
    weights = _random_weights(spec, 2)
    x = _inputs(spec, batch=3, time=6)
    got = rnnspec.predict(rnnspec.build(spec, "keras", weights=weights), x)
    expected = np.asarray(_plain_keras(spec, weights)(x, training=False))
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= TOL


def test_predict_is_inference_and_probabilities():
    spec = _spec(
        [{"cell": "lstm", "units": 4, "dropout": 0.5, "recurrent_dropout": 0.5}],
        convention="torch",
        head={"units": 3, "activation": "softmax"},
    )
    weights = _random_weights(spec, 4)
    model = rnnspec.build(spec, "keras", weights=weights)
    x = _inputs(spec)
    got = rnnspec.predict(model, x)
    assert np.array_equal(got, rnnspec.predict(model, x))
    assert np.allclose(got.sum(axis=-1), 1.0, atol=1e-6)
    no_dropout = spec_from_dict({**spec.to_dict(), "recurrent": [{"cell": "lstm", "units": 4}]})
    assert np.max(np.abs(got - rnnspec.predict(rnnspec.build(no_dropout, "keras", weights=weights), x))) <= TOL
    assert rnnspec.predict(model, x[:0]).shape == (0, 3)


# -- artifacts -----------------------------------------------------------------------------------


ARTIFACT_CASES = {
    "bi-mul-torch": COUNT_CASES["bi-mul-torch"],
    "gru-reset-before-torch": COUNT_CASES["gru-reset-before-torch"],
    "stack-masked-keras": _spec(KERAS_CASES["stack-masked"][0], **KERAS_CASES["stack-masked"][1]),
}


@pytest.mark.filterwarnings(KERAS_SAVE_WARNING)
@pytest.mark.parametrize("case", sorted(ARTIFACT_CASES))
def test_keras_file_round_trip(case: str, tmp_path: Path):
    spec = ARTIFACT_CASES[case]
    model = rnnspec.build(spec, "keras", weights=_random_weights(spec, 9))
    x = _inputs(spec)
    paths = BACKEND.save_artifact(model, tmp_path / "out")
    assert paths == [tmp_path / "out" / f"{spec.name}.keras"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{spec.name}.keras"]

    loaded = keras_backend.load_artifact(paths[0])
    assert rnnspec.spec_of(loaded) == spec
    assert np.array_equal(rnnspec.predict(loaded, x), rnnspec.predict(model, x))
    before, after = rnnspec.get_weights(model), rnnspec.get_weights(loaded)
    assert all(np.array_equal(after[k], v) for k, v in before.items())

    plain = keras.saving.load_model(paths[0], safe_mode=True)
    assert np.array_equal(np.asarray(plain(x, training=False)), np.asarray(loaded(x, training=False)))


@pytest.mark.filterwarnings(KERAS_SAVE_WARNING)
def test_load_artifact_rejects_foreign_and_broken_files(tmp_path: Path):
    foreign = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(foreign)
    with pytest.raises(rnnspec.RnnspecError, match="carries no rnnspec spec"):
        keras_backend.load_artifact(foreign)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(rnnspec.RnnspecError, match=r"not a readable \.keras archive"):
        keras_backend.load_artifact(broken)
    with pytest.raises(rnnspec.RnnspecError, match="no such file"):
        keras_backend.load_artifact(tmp_path / "missing.keras")


# -- summary, notes, the TensorFlow guard -------------------------------------------------------


def test_summary_and_notes():
    spec = COUNT_CASES["bi-concat-torch"]
    model = BACKEND.build(spec)
    text = BACKEND.summary(model)
    assert text.startswith(f'Model: "{spec.name}"')
    for name in spec.layer_names():
        assert name in text
    assert f"Total params: {analyze(spec).total_params:,}" in text
    notes = BACKEND.notes(model)
    assert any("TorchLSTMCell" in n for n in notes)
    masked = BACKEND.build(COUNT_CASES["bi-concat-keras"])
    assert masked.get_layer("recurrent_1").backward_layer.use_cudnn is False
    assert any(n.startswith("recurrent_0, recurrent_1: use_cudnn=False") for n in BACKEND.notes(masked))
    assert BACKEND.notes(BACKEND.build(COUNT_CASES["imdb_lstm-keras"])) == []


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**environ, **env}, capture_output=True, text=True, timeout=120
    )


GUARD = """
import rnnspec
try:
    rnnspec.build("specs/imdb_lstm.yaml", "keras")
except rnnspec.RnnspecError as exc:
    print("RnnspecError:", exc)
"""


def test_other_keras_backend_is_refused():
    result = _run(GUARD, KERAS_BACKEND="jax")
    assert result.stdout.strip() == (
        "RnnspecError: KERAS_BACKEND is 'jax', but rnnspec's keras backend needs TensorFlow; fix: unset "
        "KERAS_BACKEND or set KERAS_BACKEND=tensorflow (or use the torch or numpy backend)"
    ), result.stderr


def test_keras_already_on_another_backend_is_refused():
    pytest.importorskip("torch")
    code = "import os, keras\nos.environ['KERAS_BACKEND'] = 'tensorflow'\n" + GUARD
    result = _run(code, KERAS_BACKEND="torch")
    assert result.stdout.startswith("RnnspecError: keras is already imported with the 'torch' backend"), result.stderr
    assert "KERAS_BACKEND=tensorflow" in result.stdout


def test_import_is_quiet():
    result = _run("import rnnspec_backends.keras.model as k; print(k.keras.backend.backend())")
    assert result.stdout.strip() == "tensorflow"
    assert result.stderr == ""
