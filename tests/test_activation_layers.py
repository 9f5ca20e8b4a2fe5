"""The ``activation`` kind end to end: Keras's standalone ``Activation`` layer.

References come from outside the code under test: Keras models written by hand with
``keras.layers.Activation`` (counts, ``model.summary()`` rows, outputs and masks, training), and NumPy's
formulas written out here (the float64 reference). Cases: Keras's IMDB examples' ``Dense(1)`` then
``Activation('sigmoid')``, a per-step softmax head, activations between recurrent layers on ``Masking``
input (pre- and post-padded rows, a fully padded row, length 1), every activation name, import from
``.keras`` / ``.h5``, state dicts, plain-torch and ONNX export, training parity.
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
from rnnspec.lang.layers import LAYER_ACTIVATIONS, ActivationSpec, DenseSpec

from .kinds import (
    BACKENDS,
    TOL,
    assert_counts_equal_keras,
    assert_keras_file_imports,
    assert_onnx_export_equals_reference,
    assert_state_dict_imports,
    assert_torch_export_equals_reference,
    assign_normal,
    fit_both,
    fit_gaps,
    hand_built,
)
from .parity import backend_or_skip, random_inputs, random_weights


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "activation", **data})


# -- the spec ------------------------------------------------------------------------------------------


def test_entries_names_and_output_activation():
    spec = _spec(
        input={"features": 3},
        recurrent=[
            {"activation": "tanh"},
            {"cell": "lstm", "units": 4, "return_sequences": True},
            {"activation": "relu", "name": "rect"},
            {"cell": "gru", "units": 2},
        ],
        head=[{"units": 3, "activation": "relu"}, {"activation": "linear"}, {"units": 1}, {"activation": "sigmoid"}],
    )
    kinds = [type(layer) for _, layer in spec.stack()]
    assert kinds == [ActivationSpec, type(spec.recurrent[1]), ActivationSpec, type(spec.recurrent[3]),
                     DenseSpec, ActivationSpec, DenseSpec, ActivationSpec]  # fmt: skip
    assert spec.layer_names() == [
        "activation_0", "recurrent_0", "rect", "recurrent_1", "head_0", "activation_2", "head_1", "activation_3",
    ]  # fmt: skip
    assert spec.output_activation == "sigmoid"
    assert spec.output_activation_layer == ("activation_3", spec.head[3])
    assert spec.output_layer is spec.head[2]
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec
    assert all(row.params == 0 for row in analyze(spec).layers if row.kind == "activation")


def test_a_linear_activation_keeps_the_range_of_what_it_follows():
    spec = _spec(input={"features": 3}, recurrent=[{"cell": "lstm", "units": 2}],
                 head=[{"units": 1, "activation": "sigmoid"}, {"activation": "linear"}],
                 training={"loss": "binary_crossentropy"})  # fmt: skip
    assert spec.output_activation == "sigmoid"
    assert spec.output_activation_layer == ("head_0", spec.head[0])


def test_versions_1_and_1_1_still_read_and_1_2_is_the_format():
    from rnnspec.lang.spec import FORMAT_VERSION

    assert FORMAT_VERSION == 1.2
    data = {"name": "v", "input": {"features": 2}, "recurrent": [{"cell": "gru", "units": 2}]}
    specs = [rnnspec.spec_from_dict({"rnnspec": v, **data}) for v in (1, 1.1, 1.2)]
    assert specs[0].layer_names() == specs[1].layer_names() == specs[2].layer_names()


BAD = [
    ("unknown-name", {"recurrent": [{"cell": "lstm", "units": 2}], "head": [{"units": 2}, {"activation": "relu6"}]},
     "head[1].activation"),
    ("head-without-dense", {"recurrent": [{"cell": "lstm", "units": 2}], "head": [{"activation": "sigmoid"}]},
     "must be a Dense layer"),
    ("dropout-after-output", {"recurrent": [{"cell": "lstm", "units": 2}],
                              "head": [{"units": 2}, {"activation": "softmax"}, {"dropout": 0.1}]},
     "must be a Dense layer"),
    ("dense-in-recurrent", {"recurrent": [{"cell": "lstm", "units": 2, "return_sequences": True},
                                          {"units": 3, "activation": "relu"}]}, "missing required key `cell`"),
    ("only-activations", {"recurrent": [{"activation": "relu"}]}, "no recurrent layer"),
    ("typo", {"recurrent": [{"cell": "lstm", "units": 2}, {"activation": "sigmiod"}]}, "did you mean 'sigmoid'"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(data: dict, message: str):
    with pytest.raises(SpecError, match=re.escape(message)):
        _spec(input={"features": 3}, **data)


def test_loss_checks_see_the_activation_after_the_dense_layer():
    data = {"input": {"features": 3}, "recurrent": [{"cell": "lstm", "units": 2}]}
    _spec(**data, head=[{"units": 1}, {"activation": "sigmoid"}], training={"loss": "binary_crossentropy"})
    with pytest.raises(SpecError, match="binary_crossentropy needs probabilities, but the outputs are relu"):
        _spec(**data, head=[{"units": 1}, {"activation": "relu"}], training={"loss": "binary_crossentropy"})
    with pytest.raises(SpecError, match="from_logits: true, but the outputs already go through softmax"):
        _spec(**data, head=[{"units": 3}, {"activation": "softmax"}],
              training={"loss": {"name": "sparse_categorical_crossentropy", "from_logits": True}})  # fmt: skip


# -- the cases: a spec and the same model written with Keras's layers ---------------------------------


def imdb_dense_then_sigmoid(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Keras's IMDB examples: Embedding(mask_zero) → LSTM → Dense(1) → Activation('sigmoid')."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "lstm", "units": 5}],
        head=[{"units": 1}, {"activation": "sigmoid"}],
    )
    return spec, [L.Embedding(30, 6, mask_zero=True), L.LSTM(5), L.Dense(1), L.Activation("sigmoid")]


def per_step_softmax(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """A tagger: Embedding(mask_zero) → GRU(sequences) → Dense(4) → Activation('softmax') on every step."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 5, "return_sequences": True}],
        head=[{"units": 4}, {"activation": "softmax"}],
    )
    return spec, [L.Embedding(30, 6, mask_zero=True), L.GRU(5, return_sequences=True), L.Dense(4),
                  L.Activation("softmax")]  # fmt: skip


def between_recurrent_layers(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Masking(0) → Activation('tanh') → LSTM(sequences) → Activation('relu') → SimpleRNN(sequences)
    → Activation('log_softmax') as the per-step outputs (the mask passes through each Activation)."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[
            {"activation": "tanh"},
            {"cell": "lstm", "units": 4, "return_sequences": True},
            {"activation": "relu"},
            {"cell": "simple_rnn", "units": 3, "return_sequences": True},
            {"activation": "log_softmax"},
        ],
    )
    layers = [L.Masking(0.0), L.Activation("tanh"), L.LSTM(4, return_sequences=True), L.Activation("relu"),
              L.SimpleRNN(3, return_sequences=True), L.Activation("log_softmax")]  # fmt: skip
    return spec, layers


def bidirectional_head_stack(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding(mask_zero) → BiGRU → Activation('gelu') → Dense(5) → Activation('swish') → Dropout → Dense(3)
    → Activation('softmax')."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 4, "bidirectional": True}, {"activation": "gelu"}],
        head=[{"units": 5}, {"activation": "swish"}, {"dropout": 0.2}, {"units": 3}, {"activation": "softmax"}],
    )
    layers = [L.Embedding(30, 6, mask_zero=True), L.Bidirectional(L.GRU(4)), L.Activation("gelu"), L.Dense(5),
              L.Activation("swish"), L.Dropout(0.2), L.Dense(3), L.Activation("softmax")]  # fmt: skip
    return spec, layers


CASES: dict[str, Callable[[Any], tuple[rnnspec.ModelSpec, list[Any]]]] = {
    f.__name__: f for f in (imdb_dense_then_sigmoid, per_step_softmax, between_recurrent_layers,
                            bidirectional_head_stack)
}  # fmt: skip


def _inputs(spec: rnnspec.ModelSpec, padding: str) -> np.ndarray:
    """Rows of several lengths, a full row, a fully padded row and a row of length 1, pre- or post-padded."""
    x = random_inputs(spec, 3, batch=6, time=7)
    x[2] = 0  # a row of length 1: its last step only
    x[2, -1] = x[0, -1]
    if padding == "post":
        x = x[:, ::-1].copy()  # the same rows with their padding at the end
    return x


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    """The spec, the hand-written Keras model and random canonical weights loaded into it (Keras's own order)."""
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, seed)
    return spec, model, weights


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    assert_counts_equal_keras(*_hand_built(L, case), kind="Activation")


@pytest.mark.parametrize("case", CASES)
def test_outputs_and_masks_equal_keras(L, case: str):
    """Every backend, pre- and post-padded: every position compared, padded steps, the fully padded row and the
    row of length 1 included; the torch model's output mask is Keras's."""
    spec, hand, weights = _hand_built(L, case)
    models = {backend: rnnspec.build(spec, backend, weights=weights) for backend in BACKENDS}
    for padding in ("pre", "post"):
        x = _inputs(spec, padding)
        out = hand(x, training=False)
        expected = np.asarray(out)
        for backend, model in models.items():
            got = rnnspec.predict(model, x)
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= TOL, (backend, padding)
        keras_mask = getattr(out, "_keras_mask", None)
        torch_mask = models["torch"].output_mask
        assert (keras_mask is None) == (torch_mask is None)
        if keras_mask is not None:
            assert np.array_equal(torch_mask.numpy(), np.asarray(keras_mask))


def _formula(name: str, x: np.ndarray) -> np.ndarray:
    """Each activation written out from its definition in float64 (Keras 3's; gelu exact, hard_sigmoid x/6 + 1/2)."""
    import math

    sig = 1.0 / (1.0 + np.exp(-x))
    selu_a, selu_s = 1.6732632423543772, 1.0507009873554805
    shifted = x - x.max(axis=-1, keepdims=True)
    return {
        "linear": lambda: x,
        "tanh": lambda: np.tanh(x),
        "sigmoid": lambda: sig,
        "hard_sigmoid": lambda: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
        "relu": lambda: np.maximum(x, 0.0),
        "elu": lambda: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1.0),
        "selu": lambda: selu_s * np.where(x > 0, x, selu_a * (np.exp(np.minimum(x, 0)) - 1.0)),
        "gelu": lambda: np.vectorize(lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))))(x),
        "softplus": lambda: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0),
        "softsign": lambda: x / (1.0 + np.abs(x)),
        "swish": lambda: x * sig,
        "exponential": lambda: np.exp(x),
        "softmax": lambda: np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True),
        "log_softmax": lambda: shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)),
    }[name]()


@pytest.mark.parametrize("name", LAYER_ACTIVATIONS)
def test_every_activation_equals_kerass_and_its_formula(L, name: str):
    """Masking → LSTM(sequences) → Activation(name): Keras's outputs on every backend; the numpy reference's
    activation against its formula."""
    from rnnspec_backends.numpy.model import FORWARD

    spec = _spec(input={"features": 3, "mask_value": 0.0},
                 recurrent=[{"cell": "lstm", "units": 4, "return_sequences": True}, {"activation": name}])  # fmt: skip
    hand, weights = hand_built(spec, [L.Masking(0.0), L.LSTM(4, return_sequences=True), L.Activation(name)], 5)
    x = _inputs(spec, "pre") * 3.0  # into the activations' tails
    expected = np.asarray(hand(x, training=False))
    for backend in BACKENDS:
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
        assert np.abs(got - expected).max() <= TOL, backend
    h = np.random.default_rng(0).normal(0.0, 4.0, size=(2, 3, 5))
    mask = np.array([[True, False, True], [False, True, True]])
    got, got_mask = FORWARD.get("activation")(ActivationSpec(activation=name), {}, h, mask)
    assert got_mask is mask
    assert np.allclose(got, _formula(name, h), rtol=1e-12, atol=1e-12)


def test_torch_convention_equals_the_numpy_reference():
    spec = _spec(
        convention="torch",
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "lstm", "units": 5, "return_sequences": True}, {"activation": "elu"},
                   {"cell": "gru", "units": 4, "reset_after": False}],
        head=[{"units": 3}, {"activation": "log_softmax"}],
    )  # fmt: skip
    weights = random_weights(spec, 2)
    x = random_inputs(spec, 5, batch=6, time=7)
    expected = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    for backend in ("keras", "torch"):
        backend_or_skip(backend)
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
        assert np.abs(got - expected).max() <= TOL, backend


def test_torch_logits_are_the_input_of_the_last_activation():
    """``forward(x, logits=True)`` stops before the Activation that makes the outputs (the trainer's logits)."""
    torch = pytest.importorskip("torch")
    spec = _spec(input={"features": 3}, recurrent=[{"cell": "gru", "units": 3}],
                 head=[{"units": 2}, {"activation": "softmax"}, {"activation": "linear"}])  # fmt: skip
    weights = random_weights(spec, 1)
    model = rnnspec.build(spec, "torch", weights=weights)
    x = torch.as_tensor(random_inputs(spec, 1))
    with torch.no_grad():
        logits, probs = model(x, logits=True), model(x)
    assert model.output_name == "activation_0"
    assert torch.allclose(torch.softmax(logits, dim=-1), probs, atol=1e-7)
    dense_only = _spec(input={"features": 3}, recurrent=[{"cell": "gru", "units": 3}], head=[{"units": 2}])
    with torch.no_grad():
        plain = rnnspec.build(dense_only, "torch", weights=weights)(x)
    assert torch.equal(plain, logits)


# -- import: Keras files and PyTorch state dicts ---------------------------------------------------------


def _keras_files() -> dict[str, Callable[[], Any]]:
    from rnnspec_backends.keras.runtime import keras

    L = keras.layers

    def imdb_lstm() -> Any:
        """keras.io / keras-team/keras examples/imdb_lstm.py (Keras 2): Embedding → LSTM → Dense(1) →
        Activation('sigmoid'), here with mask_zero."""
        return keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(30, 6, mask_zero=True), L.LSTM(5),
                                 L.Dense(1), L.Activation("sigmoid")])  # fmt: skip

    def tagger_with_activations() -> Any:
        return keras.Sequential([
            keras.Input((None, 3)), L.Masking(0.0), L.Activation("tanh"), L.GRU(4, return_sequences=True),
            L.Activation("relu"), L.Dense(3), L.Activation("log_softmax"),
        ])  # fmt: skip

    return {"imdb_lstm": imdb_lstm, "tagger_with_activations": tagger_with_activations}


@pytest.fixture(scope="module")
def keras_files() -> dict[str, Callable[[], Any]]:
    backend_or_skip("keras")
    return _keras_files()


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("name", ["imdb_lstm", "tagger_with_activations"])
def test_keras_file_imports_and_predicts_what_keras_predicts(keras_files, name: str, fmt: str, tmp_path):
    from rnnspec.interop.proof import hard_inputs

    model = assign_normal(keras_files[name]())
    inputs = partial(hard_inputs, seed=1, batch=6, time=9)
    spec = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", inputs).spec
    activations = [layer.activation for _, layer in spec.stack() if isinstance(layer, ActivationSpec)]
    assert activations == {"imdb_lstm": ["sigmoid"], "tagger_with_activations": ["tanh", "relu", "log_softmax"]}[name]


REFUSED = [
    ("unknown-activation", lambda L: [L.LSTM(4), L.Dense(2), L.Activation("relu6")], "activation 'relu6' is not one"),
    ("dropout-after-output", lambda L: [L.LSTM(4), L.Dense(2), L.Activation("softmax"), L.Dropout(0.1)],
     "a Dropout after the output Dense layer"),
]  # fmt: skip


@pytest.mark.parametrize(("layers", "reason"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_keras_activations_the_spec_cannot_express_are_refused(keras_files, layers, reason: str, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.keras_import import UnsupportedModelError
    from rnnspec.runtime.importing import import_model

    keras.Sequential([keras.Input((5, 3)), *layers(keras.layers)]).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedModelError, match=re.escape(reason)):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.2
name: torch-activation
convention: torch
input: {vocab_size: 30}
embedding: {output_dim: 6}
recurrent:
  - {cell: lstm, units: 8, return_sequences: true}
  - {activation: tanh}
  - {cell: gru, units: 5}
head:
  - {units: 3}
  - {activation: log_softmax}
"""


def test_state_dict_of_a_log_softmax_tagger_imports(tmp_path):
    """A PyTorch module ending in F.log_softmax (taggers do): the activations take no tensors."""
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
            h, _ = self.lstm(self.emb(x))
            h, _ = self.gru(torch.tanh(h))
            return torch.log_softmax(self.fc(h[:, -1]), dim=-1)

    torch.manual_seed(0)
    x = np.random.default_rng(1).integers(0, 30, size=(5, 7))
    assert_state_dict_imports(Module(), TORCH_SPEC, tmp_path / "m.pt", x)


# -- export: plain PyTorch and ONNX ---------------------------------------------------------------------

EXPORTED = _spec(
    input={"features": 3, "mask_value": 0.0},
    recurrent=[
        {"activation": "hard_sigmoid"},
        {"cell": "lstm", "units": 5, "return_sequences": True},
        {"activation": "selu"},
        {"cell": "gru", "units": 4},
        {"activation": "softsign"},
    ],
    head=[{"units": 6}, {"activation": "gelu"}, {"units": 3}, {"activation": "log_softmax"}],
)
EXPORTED_PER_STEP = _spec(
    input={"vocab_size": 30},
    embedding={"output_dim": 6, "mask_zero": True},
    recurrent=[{"cell": "gru", "units": 5, "return_sequences": True}, {"activation": "swish"}],
    head=[{"units": 4}, {"activation": "softmax"}],
)


def _export_inputs(spec: rnnspec.ModelSpec) -> np.ndarray:
    x = random_inputs(spec, 6, batch=6, time=7)
    return np.concatenate([x, x[:, ::-1]])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("spec", [EXPORTED, EXPORTED_PER_STEP], ids=["last-output", "per-step"])
def test_torch_export_writes_the_activations_and_equals_the_reference(spec: rnnspec.ModelSpec, tmp_path):
    weights = random_weights(spec, 4)
    tag = f"act_{spec.input.features or 0}"
    assert_torch_export_equals_reference(spec, weights, _export_inputs(spec), tmp_path, tag)
    assert "Keras Activation(" in (tmp_path / "model.py").read_text()


@pytest.mark.parametrize("spec", [EXPORTED, EXPORTED_PER_STEP], ids=["last-output", "per-step"])
def test_onnx_export_runs_under_onnxruntime_and_equals_the_reference(spec: rnnspec.ModelSpec, tmp_path):
    onnx = pytest.importorskip("onnx")
    x = _export_inputs(spec)
    assert_onnx_export_equals_reference(spec, random_weights(spec, 4), [x, x[:3, :1]], tmp_path)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert ("LogSoftmax" if spec is EXPORTED else "Softmax") in ops


# -- training parity ------------------------------------------------------------------------------------

TRAINED = {
    "imdb-dense-then-sigmoid-adam": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6, "mask_zero": True},
            "recurrent": [{"cell": "lstm", "units": 5}],
            "head": [{"units": 1}, {"activation": "sigmoid"}],
            "training": {"loss": "binary_crossentropy", "optimizer": "adam", "metrics": ["accuracy"]},
        },
        (),
    ),
    "per-step-softmax-rmsprop": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6, "mask_zero": True},
            "recurrent": [{"cell": "gru", "units": 5, "return_sequences": True}, {"activation": "relu"}],
            "head": [{"units": 3}, {"activation": "softmax"}],
            "training": {"loss": "sparse_categorical_crossentropy", "optimizer": "rmsprop"},
        },
        (pytest.mark.slow,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(k, marks=m) for k, (_, m) in TRAINED.items()])
def test_training_gives_the_same_losses_and_weights(case: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches; Keras takes the
    logits behind an Activation('sigmoid' / 'softmax') as behind a Dense's, and so does the torch loop."""
    backend_or_skip("torch")
    backend_or_skip("keras")
    data = TRAINED[case][0]
    spec = _spec(**{**data, "training": {**data["training"], "batch_size": 4, "epochs": 2, "shuffle": True}})
    x = random_inputs(spec, 0, batch=24, time=8)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(24, 1)) if spec.output_units == 1 else rng.integers(0, 3, size=x.shape)
    fits = fit_both(spec, x, y)
    losses, weights = fit_gaps(fits, batches=12)
    assert losses <= 1e-4 and weights <= 1e-4
    if case.startswith("imdb"):
        # the same model with the sigmoid on the Dense layer: the same training, step for step
        fused = {**data, "head": {"units": 1, "activation": "sigmoid"}}
        fused["training"] = {**data["training"], "batch_size": 4, "epochs": 2, "shuffle": True}
        assert np.max(np.abs(fit_both(_spec(**fused), x, y)["torch"].losses - fits["torch"].losses)) <= 1e-6


# -- the porting-mistake catalogue ------------------------------------------------------------------------


def test_a_missing_activation_layer_is_a_named_porting_mistake():
    """The catalogue's activation_missing makes the model return logits when the sigmoid is its own layer too."""
    from rnnspec.testing.mistakes import CATALOGUE

    spec = _spec(input={"features": 3}, recurrent=[{"cell": "gru", "units": 3}],
                 head=[{"units": 1}, {"activation": "sigmoid"}])  # fmt: skip
    (mistake,) = [m for m in CATALOGUE.mistakes_for(spec) if m.name == "activation_missing"]
    wrong = rnnspec.spec_from_dict(mistake.spec(spec.to_dict()))
    assert wrong.output_activation == "linear"
    weights = random_weights(spec, 0)
    x = random_inputs(spec, 0)
    ours = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    theirs = rnnspec.predict(rnnspec.build(wrong, "numpy", weights=weights), x)
    assert np.allclose(ours, 1.0 / (1.0 + np.exp(-theirs)), atol=1e-6)
