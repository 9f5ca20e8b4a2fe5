"""The ``global_max_pool`` / ``global_average_pool`` kinds end to end: Keras's GlobalMaxPooling1D and
GlobalAveragePooling1D over a sequence output.

References come from outside the code under test: Keras models written by hand (counts,
``model.summary()`` rows, outputs and masks, training) and the formulas of
``keras/src/layers/pooling/global_{max,average}_pooling1d.py`` written out here. Keras's semantics,
which these tests pin: GlobalMaxPooling1D does not support masking (the max runs over every step,
padded ones included, and the mask ends); GlobalAveragePooling1D averages the valid steps only,
``sum(where(mask, x, 0)) / sum(mask)``, and a fully padded row is 0/0 = NaN. Cases: the classic
toxic-comment BiGRU with global max pooling, masked and unmasked averages, ``keepdims``.
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
from rnnspec.lang.layers import GlobalAveragePoolSpec, GlobalMaxPoolSpec

from .kinds import (
    assert_counts_equal_keras,
    assert_keras_file_imports,
    assert_onnx_export_equals_reference,
    assert_state_dict_imports,
    assert_torch_export_equals_reference,
    hand_built,
    training_gaps,
)
from .parity import backend_or_skip, random_inputs, random_weights

TOL = 1e-5
"""float32 forward outputs, absolute (NaN where Keras gives NaN: a fully padded row's average)."""
BACKENDS = ["keras", "torch", "numpy"]

pytestmark = pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "global-pool", **data})


def _close(got: np.ndarray, expected: np.ndarray) -> bool:
    """Equal to TOL, NaN exactly where the other has NaN."""
    return got.shape == expected.shape and np.allclose(got, expected, rtol=0.0, atol=TOL, equal_nan=True)


# -- the spec ------------------------------------------------------------------------------------------


def test_entries_names_shapes_and_mask_flow():
    spec = _spec(
        input={"vocab_size": 30, "seq_len": 9},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[
            {"cell": "gru", "units": 4, "return_sequences": True, "bidirectional": True},
            {"global_max_pool": None},
        ],
        head={"units": 6, "activation": "sigmoid"},
    )
    assert isinstance(spec.recurrent[1], GlobalMaxPoolSpec) and not spec.recurrent[1].keepdims
    assert spec.layer_names() == ["embedding", "recurrent_0", "global_max_pool_0", "head"]
    assert [row.output_shape for row in analyze(spec).layers][2:] == [(None, 8), (None, 6)]
    assert not spec.output_per_step and spec.masked and not spec.output_masked
    kept = _spec(
        input={"features": 3},
        recurrent=[{"cell": "lstm", "units": 4, "return_sequences": True}, {"global_average_pool": {"keepdims": True}}],
    )
    assert isinstance(kept.recurrent[1], GlobalAveragePoolSpec) and kept.recurrent[1].keepdims
    assert analyze(kept).layers[1].output_shape == (None, 1, 4)
    assert kept.output_per_step and kept.output_steps(9) == 1
    for s in (spec, kept):
        assert rnnspec.spec_from_dict(s.to_dict()) == s


BAD = [
    ("after-last-output", [{"cell": "lstm", "units": 2}, {"global_max_pool": {}}], "recurrent[1].global_max_pool",
     "its input has no time axis"),
    ("before-a-cell", [{"cell": "lstm", "units": 2, "return_sequences": True}, {"global_average_pool": {}},
                       {"cell": "lstm", "units": 2}], "recurrent[1]", "pools the sequence into one vector"),
    ("unknown-option", [{"cell": "lstm", "units": 2, "return_sequences": True},
                        {"global_max_pool": {"data_format": "channels_first"}}], "global_max_pool.data_format",
     "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(("recurrent", "where", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(recurrent: list, where: str, message: str):
    with pytest.raises(SpecError) as info:
        _spec(input={"features": 3}, recurrent=recurrent)
    assert where in str(info.value) and message in str(info.value)


# -- the cases ------------------------------------------------------------------------------------------------


def toxic_bigru(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """The toxic-comment classifier: Embedding(mask_zero) → SpatialDropout1D → BiGRU(sequences) →
    GlobalMaxPooling1D → Dense(6, sigmoid). The max sees the BiGRU's zeros at padded steps."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"spatial_dropout": 0.2},
                   {"cell": "gru", "units": 4, "return_sequences": True, "bidirectional": True},
                   {"global_max_pool": {}}],
        head={"units": 6, "activation": "sigmoid"},
    )  # fmt: skip
    layers = [L.Embedding(30, 6, mask_zero=True), L.SpatialDropout1D(0.2),
              L.Bidirectional(L.GRU(4, return_sequences=True)), L.GlobalMaxPooling1D(),
              L.Dense(6, activation="sigmoid")]  # fmt: skip
    return spec, layers


def masked_average(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Masking(0) → LSTM(sequences) → GlobalAveragePooling1D → Dense(2): the mean of the valid steps."""
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 5, "return_sequences": True}, {"global_average_pool": {}}],
        head={"units": 2},
    )
    return spec, [L.Masking(0.0), L.LSTM(5, return_sequences=True), L.GlobalAveragePooling1D(), L.Dense(2)]


def kept_dims(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Embedding(mask_zero) → LSTM(sequences) → GlobalAveragePooling1D(keepdims) → GRU(sequences) →
    GlobalMaxPooling1D(keepdims) → Dense(3): one-step sequences."""
    spec = _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "lstm", "units": 4, "return_sequences": True},
                   {"global_average_pool": {"keepdims": True}},
                   {"cell": "gru", "units": 3, "return_sequences": True},
                   {"global_max_pool": {"keepdims": True}}],
        head={"units": 3},
    )  # fmt: skip
    layers = [L.Embedding(30, 6, mask_zero=True), L.LSTM(4, return_sequences=True),
              L.GlobalAveragePooling1D(keepdims=True), L.GRU(3, return_sequences=True),
              L.GlobalMaxPooling1D(keepdims=True), L.Dense(3)]  # fmt: skip
    return spec, layers


def unmasked(L: Any) -> tuple[rnnspec.ModelSpec, list[Any]]:
    """Features → SimpleRNN(sequences) → GlobalAveragePooling1D → Dense(2) (the plain mean)."""
    spec = _spec(
        input={"features": 3},
        recurrent=[{"cell": "simple_rnn", "units": 4, "return_sequences": True}, {"global_average_pool": {}}],
        head={"units": 2},
    )
    return spec, [L.SimpleRNN(4, return_sequences=True), L.GlobalAveragePooling1D(), L.Dense(2)]


CASES: dict[str, Callable[[Any], tuple[rnnspec.ModelSpec, list[Any]]]] = {
    f.__name__: f for f in (toxic_bigru, masked_average, kept_dims, unmasked)
}


def _inputs(spec: rnnspec.ModelSpec, padding: str) -> np.ndarray:
    """Rows of several lengths, a full row, a fully padded row and a row of length 1, pre- or post-padded."""
    x = random_inputs(spec, 3, batch=6, time=7)
    x[2] = 0
    x[2, -1] = x[0, -1]
    if padding == "post":
        x = x[:, ::-1].copy()
    return x


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    spec, layers = CASES[case](L)
    model, weights = hand_built(spec, layers, seed)
    return spec, model, weights


@pytest.mark.parametrize("case", CASES)
def test_counts_and_summary_rows_equal_keras(L, case: str):
    assert_counts_equal_keras(*_hand_built(L, case))


@pytest.mark.parametrize("case", CASES)
def test_outputs_and_masks_equal_keras(L, case: str):
    """Every backend, pre- and post-padded, every position (NaN where Keras's average of a fully padded row is)."""
    spec, hand, weights = _hand_built(L, case)
    models = {backend: rnnspec.build(spec, backend, weights=weights) for backend in BACKENDS}
    for padding in ("pre", "post"):
        x = _inputs(spec, padding)
        out = hand(x, training=False)
        expected = np.asarray(out)
        assert getattr(out, "_keras_mask", None) is None
        for backend, model in models.items():
            assert _close(rnnspec.predict(model, x), expected), (backend, padding)
        assert models["torch"].output_mask is None
    if case == "masked_average":  # the fully padded row: Keras's 0/0, NaN on every backend
        empty = ~np.any(x != 0.0, axis=(1, 2))
        assert empty.any() and np.isnan(expected[empty]).all() and not np.isnan(expected[~empty]).any()


def test_the_formulas_of_kerass_layers():
    """Keras's own layers on a tensor with a mask against the formulas written out: max over every step, the
    valid steps' mean, NaN for a fully masked row."""
    backend_or_skip("keras")
    from rnnspec_backends.keras.runtime import keras
    from rnnspec_backends.numpy.model import FORWARD

    rng = np.random.default_rng(0)
    h = rng.normal(size=(3, 4, 2)).astype(np.float32)
    mask = np.array([[False, True, True, False], [True, True, True, True], [False] * 4])
    avg = np.asarray(keras.layers.GlobalAveragePooling1D()(h, mask=mask))
    biggest = np.asarray(keras.layers.GlobalMaxPooling1D()(h))
    expected_avg = np.stack([h[0, 1:3].mean(0), h[1].mean(0), np.full(2, np.nan)])
    assert np.allclose(avg, expected_avg, atol=1e-6, equal_nan=True) and np.isnan(avg[2]).all()
    assert np.array_equal(biggest, h.max(axis=1))
    got_avg, avg_mask = FORWARD.get("global_average_pool")(GlobalAveragePoolSpec(global_average_pool={}), {},
                                                           h.astype(np.float64), mask)  # fmt: skip
    got_max, max_mask = FORWARD.get("global_max_pool")(GlobalMaxPoolSpec(global_max_pool={}), {}, h, mask)
    assert avg_mask is None and max_mask is None
    assert np.allclose(got_avg, expected_avg, atol=1e-6, equal_nan=True)
    assert np.array_equal(got_max, h.max(axis=1))  # padded steps included, as Keras


# -- import ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("case", ["toxic_bigru", "kept_dims"])
def test_keras_file_imports_and_predicts_what_keras_predicts(L, case: str, fmt: str, tmp_path):
    spec, model, _ = _hand_built(L, case, seed=4)
    assert_keras_file_imports(model, tmp_path / f"model.{fmt}", _inputs(spec, "pre"), like=spec, tol=TOL, nan=True)


def test_pooling_over_the_features_is_refused(L, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.keras_import import UnsupportedModelError
    from rnnspec.runtime.importing import import_model

    layers = [L.LSTM(4, return_sequences=True), L.GlobalMaxPooling1D(data_format="channels_first"), L.Dense(1)]
    keras.Sequential([keras.Input((5, 3)), *layers]).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedModelError, match=re.escape("data_format 'channels_first'")):
        import_model(tmp_path / "m.keras")


TORCH_SPEC = """
rnnspec: 1.2
name: torch-bigru-pool
convention: torch
input: {vocab_size: 30}
embedding: {output_dim: 6}
recurrent:
  - {cell: gru, units: 5, return_sequences: true, bidirectional: true}
  - {global_max_pool: {}}
head: {units: 6, activation: sigmoid}
"""


def test_state_dict_of_a_torch_bigru_with_max_pooling_imports(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    class Toxic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(30, 6)
            self.gru = nn.GRU(6, 5, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(10, 6)

        def forward(self, x: Any) -> Any:
            h, _ = self.gru(self.emb(x))
            return torch.sigmoid(self.fc(h.amax(dim=1)))

    torch.manual_seed(0)
    x = np.random.default_rng(1).integers(1, 30, size=(5, 7))
    assert_state_dict_imports(Toxic(), TORCH_SPEC, tmp_path / "m.pt", x, tol=TOL, nan=True)


# -- export -------------------------------------------------------------------------------------------------------

EXPORTED = {
    "toxic-bigru": _spec(
        input={"vocab_size": 30},
        embedding={"output_dim": 6, "mask_zero": True},
        recurrent=[{"cell": "gru", "units": 4, "return_sequences": True, "bidirectional": True},
                   {"global_max_pool": {}}],
        head={"units": 6, "activation": "sigmoid"},
    ),
    "masked-average-kept": _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[{"cell": "lstm", "units": 5, "return_sequences": True},
                   {"global_average_pool": {"keepdims": True}}],
        head={"units": 2},  # per step: (batch, 1, 2); NaN on the fully padded row, as Keras
    ),
    "unmasked": _spec(
        input={"features": 3},
        recurrent=[{"cell": "lstm", "units": 5, "return_sequences": True}, {"global_average_pool": {}}],
        head={"units": 2},
    ),
}  # fmt: skip


def _export_inputs(spec: rnnspec.ModelSpec) -> np.ndarray:
    x = random_inputs(spec, 6, batch=6, time=7)
    return np.concatenate([x, x[:, ::-1]])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", EXPORTED)
def test_torch_export_equals_the_reference(case: str, tmp_path):
    spec = EXPORTED[case]
    tag = f"gp_{case.replace('-', '_')}"
    assert_torch_export_equals_reference(spec, random_weights(spec, 4), _export_inputs(spec), tmp_path, tag, nan=True)


@pytest.mark.parametrize("case", EXPORTED)
def test_onnx_export_runs_under_onnxruntime_and_equals_the_reference(case: str, tmp_path):
    spec = EXPORTED[case]
    x = _export_inputs(spec)
    assert_onnx_export_equals_reference(spec, random_weights(spec, 4), [x, x[:3, :2]], tmp_path, nan=True)


# -- training parity ------------------------------------------------------------------------------------------------

TRAINED = {
    "toxic-bigru-adam": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6, "mask_zero": True},
            "recurrent": [{"cell": "gru", "units": 4, "return_sequences": True, "bidirectional": True},
                          {"global_max_pool": {}}],
            "head": {"units": 6, "activation": "sigmoid"},
            "training": {"loss": "binary_crossentropy", "optimizer": "adam", "metrics": ["accuracy"]},
        },
        (),
    ),
    "masked-average-rmsprop": (
        {
            "input": {"vocab_size": 30},
            "embedding": {"output_dim": 6, "mask_zero": True},
            "recurrent": [{"cell": "lstm", "units": 5, "return_sequences": True}, {"global_average_pool": {}}],
            "head": {"units": 1},
            "training": {"loss": "mse", "optimizer": "rmsprop"},
        },
        (pytest.mark.slow,),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(k, marks=m) for k, (_, m) in TRAINED.items()])
def test_training_gives_the_same_losses_and_weights(case: str):
    """model.fit and rnnspec's torch loop from the same seeded weights on the same batches (no fully padded row:
    its average is NaN in Keras)."""
    backend_or_skip("torch")
    backend_or_skip("keras")
    data = TRAINED[case][0]
    spec = _spec(**{**data, "training": {**data["training"], "batch_size": 4, "epochs": 2, "shuffle": True}})
    x = random_inputs(spec, 0, batch=24, time=8)
    x[:, -1] = np.maximum(x[:, -1], 1)  # every row has a valid step
    rng = np.random.default_rng(1)
    units = spec.output_units
    y = rng.integers(0, 2, size=(24, units)) if units > 1 else rng.normal(size=(24, 1)).astype(np.float32)
    losses, weights = training_gaps(spec, x, y, batches=12)
    assert losses <= 1e-4 and weights <= 1e-4
