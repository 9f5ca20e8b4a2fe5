"""The ``layer_norm`` kind end to end: Keras ``LayerNormalization`` over the feature axis.

References come from outside the code under test: Keras models written by hand with
``keras.layers.LayerNormalization`` (counts, ``model.summary()`` rows, outputs and masks), the NumPy
float64 reference (the torch-convention case) and the formula itself. Cases: after a layer that
returns sequences (pre- and post-padded rows, a fully padded row), between recurrent layers, last
in the ``recurrent`` list (per-step outputs), in a head list, with ``center`` / ``scale`` off, on
``Masking`` input and in the torch convention. Seeded weights are Keras's initializers (gamma ones,
beta zeros) on every backend.
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
from rnnspec.lang.layers import LayerNormSpec

from .kinds import (
    BACKENDS,
    TOL,
    assert_counts_equal_keras,
    assert_keras_file_imports,
    assert_onnx_export_equals_reference,
    assert_state_dict_imports,
    assert_torch_export_equals_reference,
    fit_both,
    fit_gaps,
    hand_built,
    keras_summary,
    summary_rows,
)
from .parity import backend_or_skip, random_inputs, random_weights


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.1, "name": "layer-norm", **data})


# -- the spec ------------------------------------------------------------------------------------------

ENTRIES = [
    ("empty", {"layer_norm": {}}, (1e-3, True, True), {"gamma": (6,), "beta": (6,)}),
    ("null", {"layer_norm": None}, (1e-3, True, True), {"gamma": (6,), "beta": (6,)}),
    ("keras-defaults", {"layer_norm": {"epsilon": 0.001, "center": True, "scale": True}}, (1e-3, True, True),
     {"gamma": (6,), "beta": (6,)}),
    ("center-off", {"layer_norm": {"center": False}}, (1e-3, False, True), {"gamma": (6,)}),
    ("scale-off", {"layer_norm": {"scale": False, "epsilon": 1e-5}}, (1e-5, True, False), {"beta": (6,)}),
    ("both-off", {"layer_norm": {"center": False, "scale": False}}, (1e-3, False, False), {}),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "settings", "shapes"), [c[1:] for c in ENTRIES], ids=[c[0] for c in ENTRIES])
def test_entry_settings_and_weights(entry: dict, settings: tuple, shapes: dict):
    spec = _spec(
        input={"features": 3},
        recurrent=[{"cell": "lstm", "units": 6, "return_sequences": True}, entry],
    )
    layer = spec.recurrent[1]
    assert isinstance(layer, LayerNormSpec)
    assert (layer.epsilon, layer.center, layer.scale) == settings
    assert layer.weight_shapes(6, "keras") == layer.weight_shapes(6, "torch") == shapes
    assert spec.layer_names() == ["recurrent_0", "layer_norm_0"]
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec


def test_names_count_layer_norms_and_head_dense_layers_apart():
    spec = _spec(
        input={"features": 3},
        recurrent=[
            {"cell": "gru", "units": 4, "return_sequences": True},
            {"layer_norm": {}},
            {"cell": "gru", "units": 4},
            {"layer_norm": {}, "name": "top_norm"},
        ],
        head=[{"units": 5}, {"layer_norm": {}}, {"dropout": 0.1}, {"units": 1}],
    )
    assert spec.layer_names() == [
        "recurrent_0", "layer_norm_0", "recurrent_1", "top_norm", "head_0", "layer_norm_2", "dropout_0", "head_1",
    ]  # fmt: skip


def test_normalised_outputs_are_not_the_cells_activation():
    """Without a head, a layer_norm after the last cell makes the outputs unbounded: sigmoid-only losses refuse."""
    data = {"input": {"features": 3}, "recurrent": [{"cell": "simple_rnn", "units": 1, "activation": "sigmoid"}]}
    assert _spec(**data).output_activation == "sigmoid"
    data["recurrent"].append({"layer_norm": {}})
    assert _spec(**data).output_activation == "linear"
    with pytest.raises(SpecError, match="binary_crossentropy needs probabilities"):
        _spec(**data, training={"loss": "binary_crossentropy"})


BAD = [
    ("epsilon-zero", {"recurrent": [{"cell": "lstm", "units": 2, "return_sequences": True},
                                    {"layer_norm": {"epsilon": 0.0}}]}, "recurrent[1].layer_norm.epsilon"),
    ("typo", {"recurrent": [{"cell": "lstm", "units": 2, "return_sequences": True},
                            {"layer_norm": {"epsilno": 0.1}}]}, "did you mean `epsilon`"),
    ("axis", {"recurrent": [{"cell": "lstm", "units": 2, "return_sequences": True},
                            {"layer_norm": {"axis": 1}}]}, "unknown key `axis`"),
    ("last-in-head", {"recurrent": [{"cell": "lstm", "units": 2}],
                      "head": [{"units": 2}, {"layer_norm": {}}]}, "must be a Dense layer"),
    ("no-cell", {"recurrent": [{"layer_norm": {}}]}, "no recurrent layer"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(data: dict, message: str):
    with pytest.raises(SpecError, match=re.escape(message)):
        _spec(input={"features": 3}, **data)


# -- the cases: a spec and the same model written with Keras's layers ---------------------------------


def between_recurrent_layers(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding(mask_zero) → LSTM(sequences) → LayerNormalization → GRU → Dense(sigmoid)."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[
            {"cell": "lstm", "units": 5, "return_sequences": True},
            {"layer_norm": {}},
            {"cell": "gru", "units": 4},
        ],
        head={"units": 1, "activation": "sigmoid"},
    )
    layers = [L.Embedding(30, 6, mask_zero=True), L.LSTM(5, return_sequences=True), L.LayerNormalization(),
              L.GRU(4), L.Dense(1, activation="sigmoid")]  # fmt: skip
    return spec, layers


def per_step_outputs(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding(mask_zero) → GRU(sequences) → LayerNormalization(epsilon=1e-5) as the outputs, per step."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 5, "return_sequences": True}, {"layer_norm": {"epsilon": 1e-5}}],
    )
    return spec, [
        L.Embedding(30, 6, mask_zero=True),
        L.GRU(5, return_sequences=True),
        L.LayerNormalization(epsilon=1e-5),
    ]


def head_list(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Features → LSTM → Dense(relu) → LayerNormalization(center=False) → Dense(softmax)."""
    spec = _spec(
        input={"features": 4},
        recurrent=[{"cell": "lstm", "units": 6}],
        head=[
            {"units": 5, "activation": "relu"},
            {"layer_norm": {"center": False}},
            {"units": 3, "activation": "softmax"},
        ],
    )
    layers = [L.LSTM(6), L.Dense(5, activation="relu"), L.LayerNormalization(center=False),
              L.Dense(3, activation="softmax")]  # fmt: skip
    return spec, layers


def bidirectional_scale_off(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding(mask_zero) → BiLSTM(sequences) → LayerNormalization(scale=False) → Dropout → LSTM(sequences)
    → per-step head [LayerNormalization(both off), Dense]."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[
            {"cell": "lstm", "units": 4, "return_sequences": True, "bidirectional": True},
            {"layer_norm": {"scale": False}},
            {"dropout": 0.3},
            {"cell": "lstm", "units": 3, "return_sequences": True},
        ],
        head=[{"layer_norm": {"center": False, "scale": False, "epsilon": 0.01}}, {"units": 2}],
    )
    layers = [
        L.Embedding(30, 6, mask_zero=True),
        L.Bidirectional(L.LSTM(4, return_sequences=True)),
        L.LayerNormalization(scale=False),
        L.Dropout(0.3),
        L.LSTM(3, return_sequences=True),
        L.LayerNormalization(center=False, scale=False, epsilon=0.01),
        L.Dense(2),
    ]
    return spec, layers


def masked_features(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Masking(0) → LayerNormalization on the input features → SimpleRNN(sequences) → LayerNormalization."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[
            {"layer_norm": {}},
            {"cell": "simple_rnn", "units": 4, "return_sequences": True},
            {"layer_norm": {}},
        ],
    )
    layers = [L.Masking(0.0), L.LayerNormalization(), L.SimpleRNN(4, return_sequences=True), L.LayerNormalization()]
    return spec, layers


CASES: dict[str, Callable[[Any], tuple[rnnspec.ModelSpec, list[Any]]]] = {
    f.__name__: f
    for f in (between_recurrent_layers, per_step_outputs, head_list, bidirectional_scale_off, masked_features)
}


def _inputs(spec: rnnspec.ModelSpec, padding: str) -> np.ndarray:
    """Rows of several lengths, a full row and a fully padded row (tests/parity.py), pre- or post-padded."""
    x = random_inputs(spec, 3, batch=6, time=7)
    if padding == "post":
        x = x[:, ::-1].copy()  # the same rows with their padding at the end (order within a row does not matter)
    return x


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    """The spec, the hand-written Keras model and random canonical weights loaded into it (Keras's own order)."""
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, seed)
    return spec, model, weights


# -- counts and summary against Keras ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    assert_counts_equal_keras(*_hand_built(L, case), kind="LayerNormalization")


@pytest.mark.parametrize("backend", ["keras", "torch"])
@pytest.mark.parametrize("case", CASES)
def test_backend_counts_equal_keras_count_params(L, case: str, backend: str):
    spec, hand, weights = _hand_built(L, case)
    model = rnnspec.build(spec, backend, weights=weights)
    counts = backend_or_skip(backend).count_params(model)
    assert counts == {
        row.name: int(layer.count_params()) for row, layer in zip(analyze(spec).layers, hand.layers, strict=True)
    }


# -- outputs and masks -------------------------------------------------------------------------------


def _output_cases() -> list:
    """Every case x backend x padding; CI runs half of them in a rotation that still gives every case both
    paddings and every backend both paddings, the rest with --slow."""
    return [
        pytest.param(case, backend, padding, marks=() if (k + b + p) % 2 == 0 else pytest.mark.slow)
        for k, case in enumerate(CASES)
        for b, backend in enumerate(BACKENDS)
        for p, padding in enumerate(["pre", "post"])
    ]


@pytest.mark.parametrize(("case", "backend", "padding"), _output_cases())
def test_outputs_equal_keras(L, case: str, backend: str, padding: str):
    """Every position compared, padded steps and the fully padded row included."""
    spec, hand, weights = _hand_built(L, case)
    x = _inputs(spec, padding)
    expected = np.asarray(hand.predict_on_batch(x))
    model = rnnspec.build(spec, backend, weights=weights)
    got = rnnspec.predict(model, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL
    if backend == "torch":
        keras_mask = getattr(hand(x, training=False), "_keras_mask", None)
        if keras_mask is None:
            assert model.output_mask is None
        else:
            assert np.array_equal(model.output_mask.numpy(), np.asarray(keras_mask))


def test_numpy_reference_is_the_formula():
    """The float64 reference against ``(x - mean) / sqrt(var + eps) * gamma + beta`` written out per step."""
    from rnnspec_backends.numpy.model import FORWARD

    rng = np.random.default_rng(0)
    h = rng.normal(3.0, 2.0, size=(2, 4, 6))
    gamma, beta = rng.normal(size=6), rng.normal(size=6)
    layer = LayerNormSpec.model_validate({"layer_norm": {"epsilon": 0.01}})
    mask = rng.random((2, 4)) < 0.5
    got, got_mask = FORWARD.get("layer_norm")(layer, {"gamma": gamma, "beta": beta}, h, mask)
    assert got_mask is mask
    for b in range(2):
        for t in range(4):
            v = h[b, t]
            mean = sum(v) / 6
            var = sum((e - mean) ** 2 for e in v) / 6
            expected = [(e - mean) / (var + 0.01) ** 0.5 * g + c for e, g, c in zip(v, gamma, beta, strict=True)]
            assert np.allclose(got[b, t], expected, rtol=0, atol=1e-12)
    # a constant step (a zero output at a padded step) normalises to beta
    const, _ = FORWARD.get("layer_norm")(layer, {"gamma": gamma, "beta": beta}, np.zeros((1, 1, 6)), None)
    assert np.array_equal(const[0, 0], beta)


def test_torch_convention_equals_the_numpy_reference():
    """The torch convention (two bias vectors in the cells): layer_norm's weights are the same in both."""
    spec = _spec(
        convention="torch",
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[
            {"cell": "lstm", "units": 5, "return_sequences": True},
            {"layer_norm": {}},
            {"cell": "gru", "units": 4, "reset_after": False, "return_sequences": True},
        ],
        head=[{"layer_norm": {"center": False}}, {"units": 2}],
    )  # fmt: skip
    weights = random_weights(spec, 2)
    x = random_inputs(spec, 5, batch=6, time=7)
    expected = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    for backend in ("keras", "torch"):
        backend_or_skip(backend)
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
        assert np.abs(got - expected).max() <= TOL, backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_weights_are_keras_initializers_on_every_backend(backend: str):
    backend_or_skip(backend)
    spec = _spec(
        input={"features": 3},
        recurrent=[
            {"cell": "lstm", "units": 4, "return_sequences": True},
            {"layer_norm": {}},
            {"cell": "gru", "units": 2},
        ],
        head=[{"units": 3}, {"layer_norm": {"center": False}}, {"units": 1}],
    )
    expected = rnnspec.initial_weights(spec, seed=7)
    got = rnnspec.get_weights(rnnspec.build(spec, backend, seed=7))
    assert np.array_equal(got["layer_norm_0/gamma"], np.ones(4, np.float32))
    assert np.array_equal(got["layer_norm_0/beta"], np.zeros(4, np.float32))
    assert np.array_equal(got["layer_norm_1/gamma"], np.ones(3, np.float32))
    assert "layer_norm_1/beta" not in got
    assert list(got) == list(expected)
    assert all(np.array_equal(got[k], expected[k]) for k in expected)


# -- import: Keras files and PyTorch state dicts ---------------------------------------------------------


def _keras_models() -> dict[str, Callable[[], Any]]:
    from rnnspec_backends.keras.runtime import keras

    L = keras.layers

    def between_and_head() -> Any:
        return keras.Sequential([
            keras.Input((None,), dtype="int32"),
            L.Embedding(30, 6, mask_zero=True),
            L.LSTM(5, return_sequences=True),
            L.LayerNormalization(),
            L.GRU(4),
            L.Dense(5, activation="relu"),
            L.LayerNormalization(center=False, epsilon=1e-5),
            L.Dense(1, activation="sigmoid"),
        ])  # fmt: skip

    def masked_features_axis_by_index() -> Any:
        """Keras 2 saved the axis as its index: 2 on a sequence, 1 after a cell's last output."""
        return keras.Sequential([
            keras.Input((None, 3)),
            L.Masking(0.0),
            L.LayerNormalization(scale=False),
            L.LSTM(4, return_sequences=True),
            L.LayerNormalization(axis=2),
            L.SimpleRNN(3),
            L.LayerNormalization(axis=1, epsilon=0.01),
            L.Dense(2),
        ])  # fmt: skip

    return {"between_and_head": between_and_head, "masked_features_axis_by_index": masked_features_axis_by_index}


@pytest.fixture(scope="module")
def keras_models() -> dict[str, Callable[[], Any]]:
    backend_or_skip("keras")
    return _keras_models()


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", ["between_and_head", "masked_features_axis_by_index"])
def test_keras_file_imports_and_predicts_what_keras_predicts(keras_models, name: str, fmt: str, tmp_path):
    from rnnspec.interop.proof import hard_inputs

    model = keras_models[name]()
    rng = np.random.default_rng(0)
    for w in model.weights:  # random weights, gamma and beta included
        scale = 1.0 / np.sqrt(w.shape[0]) if len(w.shape) == 2 and "embeddings" not in w.path else 0.4
        w.assign(rng.normal(0.0, scale, size=tuple(w.shape)).astype("float32"))
    inputs = partial(hard_inputs, seed=1, batch=6, time=9)
    spec = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", inputs).spec
    kinds = [layer.kind for _, layer in spec.stack()]
    assert kinds.count("layer_norm") == {"between_and_head": 2, "masked_features_axis_by_index": 3}[name]


REFUSED = [
    ("time-axis", lambda L: [L.LSTM(4, return_sequences=True), L.LayerNormalization(axis=1), L.Dense(1)],
     "axis 1 of a rank-3 input is not the feature axis"),
    ("two-axes", lambda L: [L.LSTM(4, return_sequences=True), L.LayerNormalization(axis=[1, 2]), L.Dense(1)],
     "normalises over several axes"),
    ("rms-scaling", lambda L: [L.LSTM(4), L.LayerNormalization(rms_scaling=True), L.Dense(1)],
     "rms_scaling: true"),
    ("after-the-output", lambda L: [L.LSTM(4), L.Dense(2), L.LayerNormalization()],
     "a LayerNormalization after the output Dense layer"),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize(("layers", "reason"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_keras_options_the_spec_cannot_express_are_refused(keras_models, layers, reason: str, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.keras_import import UnsupportedModelError
    from rnnspec.runtime.importing import import_model

    keras.Sequential([keras.Input((5, 3)), *layers(keras.layers)]).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedModelError, match=re.escape(reason)):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.1
name: torch-layer-norm
convention: torch
input: {vocab_size: 30}
embedding: {output_dim: 6}
recurrent:
  - {cell: lstm, units: 8, return_sequences: true}
  - layer_norm: {}
  - {cell: gru, units: 5}
head:
  - {units: 7, activation: tanh}
  - layer_norm: {center: false, epsilon: 0.00001}
  - {units: 2, activation: softmax}
"""


def _torch_module() -> Any:
    torch = pytest.importorskip("torch")
    from torch import nn

    class Tagged(nn.Module):
        """What TORCH_SPEC says, in plain PyTorch: nn.LayerNorm with Keras's epsilon (1e-3), one without a bias."""

        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(30, 6)
            self.lstm = nn.LSTM(6, 8, batch_first=True)
            self.norm = nn.LayerNorm(8, eps=1e-3)
            self.gru = nn.GRU(8, 5, batch_first=True)
            self.fc = nn.Linear(5, 7)
            self.head_norm = nn.LayerNorm(7, eps=1e-5, bias=False)
            self.out = nn.Linear(7, 2)

        def forward(self, x: Any) -> Any:
            h, _ = self.lstm(self.emb(x))
            h, _ = self.gru(self.norm(h))
            return torch.softmax(self.out(self.head_norm(torch.tanh(self.fc(h[:, -1])))), dim=-1)

    torch.manual_seed(0)
    module = Tagged()
    with torch.no_grad():  # gamma and beta away from PyTorch's ones and zeros
        for name, p in module.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))
    return module


@pytest.mark.parametrize("suffix", ["pt", "safetensors"])
def test_state_dict_with_nn_layer_norm_imports(suffix: str, tmp_path):
    module = _torch_module()
    x = np.random.default_rng(1).integers(0, 30, size=(5, 7))
    weights = assert_state_dict_imports(module, TORCH_SPEC, tmp_path / f"m.{suffix}", x).weights
    assert np.array_equal(weights["layer_norm_0/gamma"], module.norm.weight.detach().numpy())
    assert np.array_equal(weights["layer_norm_0/beta"], module.norm.bias.detach().numpy())
    assert "layer_norm_1/beta" not in weights


def test_state_dict_that_misses_a_layer_norm_says_which(tmp_path):
    from rnnspec.interop.torch_import import StateDictError
    from rnnspec.runtime.importing import import_model

    torch = pytest.importorskip("torch")
    state = {k: v for k, v in _torch_module().state_dict().items() if not k.startswith("norm.")}
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(StateDictError, match=re.escape("layer_norm 'layer_norm_0': no nn.LayerNorm(8) with bias")):
        import_model(tmp_path / "m.pt", rnnspec.loads_spec(TORCH_SPEC))


# -- export: plain PyTorch (nn.LayerNorm) and ONNX (LayerNormalization) -----------------------------------

EXPORTED = {
    "all-four-forms": _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[
            {"cell": "lstm", "units": 5, "return_sequences": True},
            {"layer_norm": {}},
            {"cell": "gru", "units": 4, "return_sequences": True},
            {"layer_norm": {"scale": False, "epsilon": 0.01}},
        ],
        head=[
            {"units": 6, "activation": "relu"},
            {"layer_norm": {"center": False}},
            {"layer_norm": {"center": False, "scale": False, "epsilon": 1e-5}},
            {"units": 3, "activation": "softmax"},
        ],
    ),
    "masked-features-last-output": _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"layer_norm": {}}, {"cell": "simple_rnn", "units": 4}, {"layer_norm": {"epsilon": 0.5}}],
        head=[{"units": 2}],
    ),
}


def _export_weights(spec: rnnspec.ModelSpec) -> dict[str, np.ndarray]:
    """Random weights: gamma and beta away from Keras's ones and zeros, so a swapped or dropped one shows."""
    return random_weights(spec, 4)


def _export_inputs(spec: rnnspec.ModelSpec) -> np.ndarray:
    """Pre- and post-padded rows, a fully padded row, a full row (tests/parity.py) and their mirror images."""
    x = random_inputs(spec, 6, batch=6, time=7)
    return np.concatenate([x, x[:, ::-1]])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", EXPORTED)
def test_torch_export_uses_nn_layer_norm_and_equals_the_reference(case: str, tmp_path):
    torch = pytest.importorskip("torch")
    spec, weights = EXPORTED[case], _export_weights(EXPORTED[case])
    tag = f"ln_{case.replace('-', '_')}"
    model = assert_torch_export_equals_reference(spec, weights, _export_inputs(spec), tmp_path, tag)
    norms = {name: child for name, child in model.named_children() if name.startswith("layer_norm")}
    for name, layer in spec.stack():
        if isinstance(layer, LayerNormSpec) and layer.scale:
            assert isinstance(norms[name], torch.nn.LayerNorm)
            assert norms[name].eps == layer.epsilon
            assert norms[name].elementwise_affine
            assert (norms[name].bias is not None) == layer.center
        elif isinstance(layer, LayerNormSpec) and not layer.center:
            assert isinstance(norms[name], torch.nn.LayerNorm) and not norms[name].elementwise_affine
        elif isinstance(layer, LayerNormSpec):  # center without scale: no nn.LayerNorm form, its bias kept
            assert [key for key, _ in norms[name].named_parameters()] == ["bias"]


@pytest.mark.parametrize("case", EXPORTED)
def test_onnx_export_uses_layer_normalization_and_equals_the_reference(case: str, tmp_path):
    onnx = pytest.importorskip("onnx")
    spec, x = EXPORTED[case], _export_inputs(EXPORTED[case])
    assert_onnx_export_equals_reference(spec, _export_weights(spec), [x, x[:3, :4]], tmp_path)
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    norms = [node for node in graph.node if node.op_type == "LayerNormalization"]
    assert len(norms) == sum(isinstance(layer, LayerNormSpec) for _, layer in spec.stack())


# -- training parity ------------------------------------------------------------------------------------

TRAINED = {
    "masked-per-step-adam": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6, "mask_zero": True},
            "recurrent": [{"cell": "lstm", "units": 5, "return_sequences": True}, {"layer_norm": {}},
                          {"cell": "gru", "units": 4, "return_sequences": True}],
            "head": [{"layer_norm": {"center": False}}, {"units": 3, "activation": "softmax"}],
            "training": {"loss": "sparse_categorical_crossentropy", "optimizer": "adam"},
        },
        (),
    ),
    "last-output-rmsprop": (
        {
            "input": {"features": 4},
            "recurrent": [{"cell": "gru", "units": 5}, {"layer_norm": {"scale": False, "epsilon": 0.01}}],
            "head": [{"units": 4, "activation": "tanh"}, {"layer_norm": {}}, {"units": 1}],
            "training": {"loss": "mse", "optimizer": "rmsprop"},
        },
        (pytest.mark.slow,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(k, marks=m) for k, (_, m) in TRAINED.items()])
def test_training_gives_the_same_losses_and_weights(case: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches (dropout-free)."""
    backend_or_skip("torch")
    backend_or_skip("keras")
    data = TRAINED[case][0]
    spec = _spec(**{**data, "training": {**data["training"], "batch_size": 4, "epochs": 2, "shuffle": True}})
    x = random_inputs(spec, 0, batch=24, time=8)
    rng = np.random.default_rng(1)
    if spec.training.loss.name == "mse":
        y = rng.normal(size=(24, 1)).astype(np.float32)
    else:
        y = rng.integers(0, 3, size=x.shape)
    fits = fit_both(spec, x, y)
    losses, weights = fit_gaps(fits, batches=12)
    assert losses <= 1e-4 and weights <= 1e-4
    tw = fits["torch"].end
    start = rnnspec.initial_weights(spec, seed=0)
    moved = [k for k in tw if k.startswith("layer_norm") and not np.array_equal(tw[k], start[k])]
    assert moved == [k for k in start if k.startswith("layer_norm")]  # gamma and beta trained, alike


# -- the command line: summary, import, export -----------------------------------------------------------


def test_cli_summary_shows_layer_normalization_rows(L, tmp_path, capsys):
    """``rnnspec summary`` prints the rows Keras's ``model.summary()`` prints for the same model."""
    import yaml

    from rnnspec.cli import main

    spec, hand, _ = _hand_built(L, "between_recurrent_layers")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    assert main(["summary", str(tmp_path / "s.yaml")]) == 0
    printed = capsys.readouterr().out
    ours = [row for row in summary_rows(printed) if "LayerNormalization" in row[0]]
    keras_rows = [row for row in summary_rows(keras_summary(hand)) if "LayerNormalization" in row[0]]
    assert [row[1:] for row in ours] == [row[1:] for row in keras_rows] == [("(None,None,5)", "10")]
    assert ours[0][0] == "layer_norm_0(LayerNormalization)"


def test_cli_import_then_export_torch_and_onnx(keras_models, tmp_path, capsys):
    """A Keras file with LayerNormalization → ``rnnspec import`` → ``rnnspec export`` (torch, onnx): each command
    proves its files against the original or the reference and says so."""
    from rnnspec.cli import main

    model = keras_models["between_and_head"]()
    model.save(tmp_path / "m.keras")
    out = tmp_path / "imported"
    assert main(["import", str(tmp_path / "m.keras"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "original Keras model vs rnnspec torch" in printed and "ok" in printed
    assert "layer_norm" in (out / "spec.yaml").read_text()
    for fmt, target in (("torch", "model.py"), ("onnx", "model.onnx")):
        code = main(["export", str(out / "spec.yaml"), "--weights", str(out / "weights.safetensors"), "-f", fmt,
                     "-o", str(tmp_path / fmt / target)])  # fmt: skip
        printed = capsys.readouterr().out
        assert code == 0 and f"exported {fmt} vs rnnspec numpy" in printed and "ok" in printed, printed


# -- conformance of hand-written models: the porting mistake of this kind ------------------------------------


def _hand_pair(eps: float | None) -> tuple[Any, Any]:
    """A Keras model with LayerNormalization() and the PyTorch module a user writes for it (``eps`` None:
    nn.LayerNorm's default, the porting mistake)."""
    torch = pytest.importorskip("torch")
    from rnnspec_backends.keras.runtime import keras
    from torch import nn

    L = keras.layers
    kmodel = keras.Sequential([
        keras.Input((None, 4)),
        L.LSTM(5, return_sequences=True),
        L.LayerNormalization(),
        L.GRU(3),
        L.Dense(1, activation="sigmoid"),
    ])  # fmt: skip

    class Ported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(4, 5, batch_first=True)
            self.norm = nn.LayerNorm(5) if eps is None else nn.LayerNorm(5, eps=eps)
            self.gru = nn.GRU(5, 3, batch_first=True)
            self.fc = nn.Linear(3, 1)

        def forward(self, x: Any) -> Any:
            h, _ = self.lstm(x)
            h, _ = self.gru(self.norm(h))
            return torch.sigmoid(self.fc(h[:, -1]))

    return kmodel, Ported()


def test_hand_written_models_with_layer_norm_are_proven_equivalent(L):
    from rnnspec.testing import assert_equivalent

    report = assert_equivalent(*_hand_pair(1e-3))
    assert report.passed
    gradients = [r.what for r in report.rows if r.what.startswith("gradient layer_normalization")]
    assert sorted(g.rsplit("/", 1)[1] for g in gradients) == ["beta", "gamma"]  # Keras numbers the layer's name


def test_nn_layer_norm_left_at_its_default_eps_is_named(L):
    from rnnspec.testing import compare

    report = compare(*_hand_pair(None))
    assert not report.passed
    assert report.mistake == "layer_norm_epsilon", report.text()
    assert "nn.LayerNorm(features, eps=0.001)" in report.text()
