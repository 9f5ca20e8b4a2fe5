"""The ``batch_norm`` kind end to end: Keras ``BatchNormalization`` over the feature axis.

References come from outside the code under test: Keras models written by hand with
``keras.layers.BatchNormalization`` (counts, ``model.summary()`` rows and its Trainable / Non-trainable lines, outputs
at inference with masks, the training-mode output and moving statistics of one call, ``model.fit``), the formula of
keras/src/layers/normalization/batch_normalization.py (3.15) written in NumPy for the masked batch moments (sums over
the valid steps divided by ``count + 1e-7``), and ``nn.BatchNorm1d`` for the state-dict import and the export. Moving
variances are drawn positive (a variance is).
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import SpecError
from rnnspec.lang.layers import BatchNormSpec
from rnnspec.lang.summary import render_summary

from .kinds import (
    BACKENDS,
    TOL,
    assert_counts_equal_keras,
    assert_keras_file_imports,
    assert_onnx_export_equals_reference,
    assert_state_dict_imports,
    assert_torch_export_equals_reference,
    count_lines,
    fit_both,
    fit_gaps,
    hand_built,
    keras_summary,
    typed_rows,
)
from .parity import backend_or_skip, random_inputs, random_weights

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "batch-norm", **data})


def _weights(spec: rnnspec.ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Random weights; each moving variance positive (|N(0, 0.5)| + 0.2, tests/parity.py) as a variance is."""
    weights = random_weights(spec, seed)
    assert all(v.min() > 0 for k, v in weights.items() if k.endswith("/moving_variance"))
    return weights


# -- the spec ------------------------------------------------------------------------------------------

ENTRIES = [
    ("empty", {"batch_norm": {}}, (0.99, 1e-3, True, True), ["gamma", "beta", "moving_mean", "moving_variance"]),
    ("null", {"batch_norm": None}, (0.99, 1e-3, True, True), ["gamma", "beta", "moving_mean", "moving_variance"]),
    ("settings", {"batch_norm": {"momentum": 0.9, "epsilon": 1e-5}}, (0.9, 1e-5, True, True),
     ["gamma", "beta", "moving_mean", "moving_variance"]),
    ("center-off", {"batch_norm": {"center": False}}, (0.99, 1e-3, False, True),
     ["gamma", "moving_mean", "moving_variance"]),
    ("both-off", {"batch_norm": {"center": False, "scale": False}}, (0.99, 1e-3, False, False),
     ["moving_mean", "moving_variance"]),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "settings", "leaves"), [c[1:] for c in ENTRIES], ids=[c[0] for c in ENTRIES])
def test_entry_settings_weights_and_what_training_touches(entry: dict, settings: tuple, leaves: list):
    spec = _spec(input={"features": 3}, recurrent=[{"cell": "lstm", "units": 6, "return_sequences": True}, entry])
    layer = spec.recurrent[1]
    assert isinstance(layer, BatchNormSpec)
    assert (layer.momentum, layer.epsilon, layer.center, layer.scale) == settings
    shapes = layer.weight_shapes(6, "keras")
    assert shapes == layer.weight_shapes(6, "torch") and list(shapes) == leaves
    assert all(shape == (6,) for shape in shapes.values())
    assert [leaf for leaf in leaves if not layer.leaf_trainable(leaf)] == ["moving_mean", "moving_variance"]
    assert layer.non_trainable_params(6, "keras") == 12
    assert spec.layer_names() == ["recurrent_0", "batch_norm_0"]
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec


BAD = [
    ("momentum", [{"cell": "lstm", "units": 2, "return_sequences": True}, {"batch_norm": {"momentum": 1.5}}],
     "recurrent[1].batch_norm.momentum"),
    ("epsilon", [{"cell": "lstm", "units": 2, "return_sequences": True}, {"batch_norm": {"epsilon": 0}}],
     "recurrent[1].batch_norm.epsilon"),
    ("typo", [{"cell": "lstm", "units": 2, "return_sequences": True}, {"batch_norm": {"momentun": 0.9}}],
     "did you mean `momentum`"),
    ("axis", [{"cell": "lstm", "units": 2, "return_sequences": True}, {"batch_norm": {"axis": 1}}],
     "unknown key `axis`"),
]  # fmt: skip


@pytest.mark.parametrize(("recurrent", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(recurrent: list, message: str):
    with pytest.raises(SpecError, match=re.escape(message)):
        _spec(input={"features": 3}, recurrent=recurrent)


# -- the cases: a spec and the same model written with Keras's layers ---------------------------------


def stacked_masked(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding(mask_zero) → BN → LSTM(sequences) → BN(momentum 0.9) → GRU → BN → Dense → BN(center off) → Dense."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"batch_norm": {}}, {"cell": "lstm", "units": 5, "return_sequences": True},
                   {"batch_norm": {"momentum": 0.9}}, {"cell": "gru", "units": 4}, {"batch_norm": None}],
        head=[{"units": 3}, {"batch_norm": {"center": False}}, {"units": 1, "activation": "sigmoid"}],
    )  # fmt: skip
    layers = [L.Embedding(30, 6, mask_zero=True), L.BatchNormalization(), L.LSTM(5, return_sequences=True),
              L.BatchNormalization(momentum=0.9), L.GRU(4), L.BatchNormalization(), L.Dense(3),
              L.BatchNormalization(center=False), L.Dense(1, activation="sigmoid")]  # fmt: skip
    return spec, layers


def per_step_features(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Masking(0) → GRU(sequences) → BN(scale off, epsilon 1e-5) → per-step outputs (no head), torch convention."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        convention="torch",
        recurrent=[{"cell": "gru", "units": 4, "return_sequences": True},
                   {"batch_norm": {"scale": False, "epsilon": 1e-5}}],
    )  # fmt: skip
    layers = [L.Masking(0.0), L.GRU(4, return_sequences=True), L.BatchNormalization(scale=False, epsilon=1e-5)]
    return spec, layers


CASES = {"stacked_masked": stacked_masked, "per_step_features": per_step_features}


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    # Keras's variables in order (gamma, beta, moving_mean, moving_variance); a reset_after GRU holds the torch
    # convention's two biases natively
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, weights=_weights(spec, seed))
    return spec, model, weights


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    """Every row, and the Total / Trainable / Non-trainable lines: the moving statistics are non-trainable."""
    spec, hand, weights = _hand_built(L, case)
    models = assert_counts_equal_keras(spec, hand, weights, footer=True)
    frozen = sum(int(np.prod(w.shape)) for w in hand.non_trainable_weights)
    assert sum(row.non_trainable for row in analyze(spec).layers) == frozen > 0
    for backend, model in models.items():
        assert f"Non-trainable params: {frozen:,}" in rnnspec.get_backend(backend).summary(model)


def test_the_shipped_stacked_lstm_batchnorm_spec_counts_as_keras(L):
    """specs/stacked_lstm_batchnorm.yaml against the same layers written with Keras: every row and the footer."""
    from rnnspec_backends.keras.runtime import keras

    spec = rnnspec.load_spec(SPECS / "stacked_lstm_batchnorm.yaml")
    hand = keras.Sequential([keras.Input((100,), dtype="int32"), L.Embedding(10000, 64),
                             L.LSTM(64, return_sequences=True), L.BatchNormalization(), L.LSTM(32),
                             L.BatchNormalization(), L.Dense(16, activation="relu"),
                             L.Dense(1, activation="sigmoid")])  # fmt: skip
    assert hand.count_params() == analyze(spec).total_params == 686_369
    assert typed_rows(render_summary(analyze(spec))) == typed_rows(keras_summary(hand))
    assert count_lines(render_summary(analyze(spec))) == count_lines(keras_summary(hand))
    assert count_lines(keras_summary(hand))[2].startswith("Non-trainable params: 192 ")


@pytest.mark.parametrize("case", CASES)
def test_inference_outputs_equal_keras(L, case: str):
    """Inference (the moving statistics) on every backend with pre-padded rows, a fully padded and a full row."""
    spec, hand, weights = _hand_built(L, case)
    models = {backend: rnnspec.build(spec, backend, weights=weights) for backend in BACKENDS}
    for time in (7, 1):
        x = random_inputs(spec, 3, batch=5, time=time)
        expected = np.asarray(hand(x, training=False))
        for backend, model in models.items():
            got = rnnspec.predict(model, x)
            assert got.shape == expected.shape, (backend, time)
            assert np.abs(got - expected).max() <= TOL, (backend, time)


# -- training mode: Keras's masked batch moments and its moving-statistics rule --------------------------


def _keras_moments(x: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """keras/src/layers/normalization/batch_normalization.py ``_moments`` (3.15) in float64: with a mask, sums over the
    valid positions divided by ``count + 1e-7`` (backend.epsilon()); without, tf.nn.moments (biased variance)."""
    x = x.astype(np.float64)
    if mask is None:
        return x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    keep = np.broadcast_to(mask[..., None], x.shape)
    count = keep.sum(axis=(0, 1)) + 1e-7
    mean = np.where(keep, x, 0.0).sum(axis=(0, 1)) / count
    return mean, np.square(np.where(keep, x - mean, 0.0)).sum(axis=(0, 1)) / count


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_one_training_call_normalises_with_the_batch_and_moves_the_statistics_as_keras(L, masked: bool):
    """A training-mode call: Keras's layer and the torch backend's module both normalise with the batch's moments (over
    the valid steps only when masked: checked against the formula) and move the moving statistics by
    ``moving * momentum + batch * (1 - momentum)`` with the biased variance (nn.BatchNorm1d's unbiased update would
    differ by n / (n - 1))."""
    torch = pytest.importorskip("torch")
    from rnnspec_backends.torch.model import BUILDERS

    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=(4, 6, 3)).astype(np.float32)
    mask = np.arange(6)[None, :] >= np.array([0, 2, 5, 6])[:, None] if masked else None  # pre-padded, one empty row
    layer = BatchNormSpec(batch_norm={"momentum": 0.8})
    gamma, beta = rng.normal(1.0, 0.3, size=3), rng.normal(0.0, 0.3, size=3)
    old_mean, old_var = rng.normal(size=3), np.abs(rng.normal(size=3)) + 0.5
    keras_bn = L.BatchNormalization(momentum=0.8)
    keras_bn.build((None, 6, 3))
    keras_bn.set_weights([w.astype(np.float32) for w in (gamma, beta, old_mean, old_var)])
    expected = np.asarray(keras_bn(x, training=True, mask=mask))
    mean, var = _keras_moments(x, mask)
    formula = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    assert np.abs(expected - formula).max() <= TOL
    new_mean, new_var = old_mean * 0.8 + mean * 0.2, old_var * 0.8 + var * 0.2
    assert np.abs(keras_bn.moving_mean.numpy() - new_mean).max() <= 1e-6
    assert np.abs(keras_bn.moving_variance.numpy() - new_var).max() <= 1e-6
    if masked:  # the padding is excluded: the unmasked moments are another number
        assert np.abs(np.asarray(_keras_moments(x, None)[0]) - mean).max() > 0.1

    module = BUILDERS.get("batch_norm", "bn")(layer, "bn", layer.weight_shapes(3, "keras"))
    with torch.no_grad():
        leaves = ("gamma", "beta", "moving_mean", "moving_variance")
        for leaf, value in zip(leaves, (gamma, beta, old_mean, old_var), strict=True):
            module.parameter(leaf).copy_(torch.as_tensor(value, dtype=torch.float32))
    module.train()
    got, out_mask = module(torch.from_numpy(x), None if mask is None else torch.from_numpy(mask))
    assert np.abs(got.detach().numpy() - expected).max() <= TOL
    assert out_mask is None if mask is None else np.array_equal(out_mask.numpy(), mask)  # the mask passes on
    assert np.abs(module.moving_mean.detach().numpy() - new_mean).max() <= 1e-6
    assert np.abs(module.moving_variance.detach().numpy() - new_var).max() <= 1e-6
    module.eval()  # inference: the moving statistics, unchanged
    before = module.moving_mean.detach().clone()
    module(torch.from_numpy(x), None)
    assert torch.equal(module.moving_mean.detach(), before)


# -- import ---------------------------------------------------------------------------------------------


def _keras_file_model(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(30, 6, mask_zero=True),
                             L.LSTM(5, return_sequences=True), L.BatchNormalization(momentum=0.95, epsilon=1e-4),
                             L.LSTM(4), L.BatchNormalization(center=False),
                             L.Dense(1, activation="sigmoid")])  # fmt: skip


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_file_imports_and_predicts_what_keras_predicts(L, fmt: str, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.proof import hard_inputs

    model = _keras_file_model(keras)
    rng = np.random.default_rng(0)
    for w in model.weights:
        value = rng.normal(0.0, 0.5, size=tuple(w.shape))
        w.assign((np.abs(value) + 0.2 if "variance" in w.path else value).astype("float32"))
    inputs = partial(hard_inputs, seed=1, batch=6, time=9)
    spec, weights, _ = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", inputs)
    norms = [(layer.momentum, layer.epsilon, layer.center, layer.scale) for _, layer in spec.stack()
             if isinstance(layer, BatchNormSpec)]  # fmt: skip
    assert norms == [(0.95, 1e-4, True, True), (0.99, 1e-3, False, True)]
    second = [name for name, layer in spec.stack() if isinstance(layer, BatchNormSpec)][1]
    assert np.array_equal(weights[f"{second}/moving_variance"], model.layers[4].moving_variance.numpy())
    assert np.array_equal(weights[f"{second}/gamma"], model.layers[4].gamma.numpy())


def test_a_batch_renormalization_is_refused_with_the_reason(L, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.runtime.importing import import_model

    keras.Sequential([keras.Input((None, 3)), L.LSTM(2, return_sequences=True), L.BatchNormalization(renorm=True),
                      L.LSTM(2), L.Dense(1)]).save(tmp_path / "m.keras")  # fmt: skip
    with pytest.raises(rnnspec.RnnspecError, match="renorm"):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.2
name: torch-batch-norm
convention: torch
input: {vocab_size: 30}
embedding: {output_dim: 6}
recurrent:
  - {cell: lstm, units: 8, return_sequences: true}
  - {batch_norm: {momentum: 0.9, epsilon: 0.00001}}
  - {cell: gru, units: 5}
  - {batch_norm: {center: false, scale: false, epsilon: 0.00001}}
head: {units: 3}
"""


def test_state_dict_with_batchnorm1d_imports(tmp_path):
    """nn.BatchNorm1d between the layers (weight, bias, running_mean, running_var; num_batches_tracked ignored), one
    with affine=False, in eval mode: the module's own outputs."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Module(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(30, 6)
            self.lstm = nn.LSTM(6, 8, batch_first=True)
            self.bn1 = nn.BatchNorm1d(8, momentum=0.1)
            self.gru = nn.GRU(8, 5, batch_first=True)
            self.bn2 = nn.BatchNorm1d(5, affine=False)
            self.fc = nn.Linear(5, 3)

        def forward(self, x: Any) -> Any:
            h, _ = self.lstm(self.emb(x))
            h, _ = self.gru(self.bn1(h.transpose(1, 2)).transpose(1, 2))
            return self.fc(self.bn2(h[:, -1]))

    torch.manual_seed(0)
    module = Module()
    with torch.no_grad():
        for bn in (module.bn1, module.bn2):
            bn.running_mean.normal_(0.0, 0.5)
            bn.running_var.uniform_(0.3, 2.0)
        module.bn1.weight.normal_(1.0, 0.3)
        module.bn1.bias.normal_(0.0, 0.3)
        module.bn1.num_batches_tracked.fill_(7)
    module.eval()
    x = np.random.default_rng(1).integers(0, 30, size=(5, 9))
    weights = assert_state_dict_imports(module, TORCH_SPEC, tmp_path / "m.pt", x).weights
    assert np.array_equal(weights["batch_norm_0/moving_variance"], module.bn1.running_var.numpy())


# -- export: plain PyTorch and ONNX ---------------------------------------------------------------------

EXPORTED = _spec(
    input={"features": 3, "mask_value": 0.0},
    recurrent=[
        {"batch_norm": {}},
        {"cell": "lstm", "units": 5, "return_sequences": True},
        {"batch_norm": {"center": False}},
        {"cell": "gru", "units": 4},
        {"batch_norm": {"center": False, "scale": False}},
    ],
    head=[{"units": 3}, {"batch_norm": {"scale": False}}, {"units": 2}],
)


def _export_inputs() -> np.ndarray:
    x = np.random.default_rng(6).normal(size=(4, 7, 3)).astype(np.float32)
    x[1, :3] = 0.0  # pre-padded
    x[2, 5:] = 0.0  # post-padded
    return x


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_export_writes_batchnorm1d_and_equals_the_reference(tmp_path):
    assert_torch_export_equals_reference(EXPORTED, _weights(EXPORTED, 4), _export_inputs(), tmp_path, "batch_norm")
    text = (tmp_path / "model.py").read_text()
    assert "nn.BatchNorm1d(3, eps=0.001, momentum=0.01)" in text
    assert "nn.BatchNorm1d(4, eps=0.001, momentum=0.01, affine=False)" in text
    assert "unbiased variance" in text  # the note on PyTorch's training


def test_onnx_export_runs_under_onnxruntime_and_equals_the_reference(tmp_path):
    onnx = pytest.importorskip("onnx")
    assert_onnx_export_equals_reference(EXPORTED, _weights(EXPORTED, 4), _export_inputs(), tmp_path)
    ops = [node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node]
    assert ops.count("BatchNormalization") == 4


# -- training parity ------------------------------------------------------------------------------------

TRAINED = {
    "stacked-masked-adam": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6, "mask_zero": True},
            "recurrent": [{"batch_norm": {}}, {"cell": "lstm", "units": 5, "return_sequences": True},
                          {"batch_norm": {"momentum": 0.9}}, {"cell": "gru", "units": 4}],
            "head": [{"units": 3}, {"batch_norm": {"center": False}}, {"units": 1, "activation": "sigmoid"}],
            "training": {"loss": "binary_crossentropy", "optimizer": "adam"},
        },
        (),
    ),
    "frozen-per-step-rmsprop": (
        {
            "input": {"features": 3, "mask_value": 0.0},
            "recurrent": [{"cell": "gru", "units": 5, "return_sequences": True},
                          {"batch_norm": {"momentum": 0.5}, "trainable": False},
                          {"cell": "lstm", "units": 4, "return_sequences": True}, {"batch_norm": {"momentum": 0.7}}],
            "head": {"units": 3, "activation": "softmax"},
            "training": {"loss": "sparse_categorical_crossentropy", "optimizer": "rmsprop"},
        },
        (pytest.mark.slow,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(k, marks=m) for k, (_, m) in TRAINED.items()])
def test_training_gives_the_same_losses_weights_and_moving_statistics(case: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches (masked): the batch
    statistics in every step, and after 8 steps the moving statistics, moved by Keras's rule, equal; a frozen
    batch_norm (Keras: inference mode even in fit) keeps all four weights."""
    backend_or_skip("torch")
    backend_or_skip("keras")
    data = TRAINED[case][0]
    spec = _spec(**{**data, "training": {**data["training"], "batch_size": 4, "epochs": 2, "shuffle": True}})
    x = random_inputs(spec, 0, batch=16, time=8)
    rng = np.random.default_rng(1)
    shape = (16, 1) if spec.output_units == 1 else (16, spec.output_steps(8))
    y = rng.integers(0, 2 if spec.output_units == 1 else 3, size=shape)
    fits = fit_both(spec, x, y)
    losses, weights = fit_gaps(fits, batches=8)
    assert losses <= 1e-4 and weights <= 1e-4
    tw, kw, start = fits["torch"].end, fits["keras"].end, fits["keras"].start
    for name, layer in spec.stack():
        if isinstance(layer, BatchNormSpec):
            moved = np.abs(kw[f"{name}/moving_mean"] - start[f"{name}/moving_mean"]).max()
            assert (moved == 0.0) == (not layer.is_trainable()), name
            for leaf in ("moving_mean", "moving_variance"):
                assert np.abs(tw[f"{name}/{leaf}"] - kw[f"{name}/{leaf}"]).max() <= 1e-5, (name, leaf)


def test_data_parallel_training_is_refused_with_the_reason(monkeypatch):
    """Each process would normalise by its shard's statistics, Keras by the whole batch's: refused, saying so, before
    the model is wrapped for data-parallel training (a fake world of two; no process group is started)."""
    backend_or_skip("torch")
    import rnnspec_backends.torch.train as torch_train

    from rnnspec.lang.errors import RnnspecError

    data = TRAINED[next(iter(TRAINED))][0]
    spec = _spec(**{**data, "training": {**data["training"], "batch_size": 4, "epochs": 1}})
    model = rnnspec.build(spec, "torch", seed=0)
    monkeypatch.setattr(torch_train, "world", lambda: (0, 2))
    monkeypatch.setattr(torch_train.TorchTrainer, "_wrap_ddp", lambda self: pytest.fail("wrapped for DDP"))
    x = random_inputs(spec, 0, batch=8, time=6)
    y = np.zeros((8, *([spec.output_units] if spec.output_units > 1 else [])), np.float32)
    with pytest.raises(RnnspecError, match=r"batch_norm layer .* 2 processes") as info:
        rnnspec.fit(model, x, y, seed=0)
    assert "fix: train without --nproc" in str(info.value)
