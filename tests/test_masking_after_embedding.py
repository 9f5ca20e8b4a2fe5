"""``{masking: {mask_value: V}}`` in the ``recurrent`` list: Keras's ``Masking`` after an ``Embedding``.

References come from outside the code under test: Keras models written by hand with ``keras.layers.Masking``
(counts, outputs, import from Sequential and functional ``.keras`` / ``.h5`` files). Keras 3.15's semantics,
which these tests pin (``keras/src/layers/core/masking.py``): a step is masked when **all** its features equal
``mask_value``, its features become 0, and ``Masking.compute_mask`` ignores the mask it receives, so after an
``Embedding(mask_zero=True)`` the Masking's mask replaces the embedding's (an id 0 whose row is not all
``mask_value`` is not masked any more). The embedding tables here have rows equal to ``mask_value`` so that
some ids are masked.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.errors import SpecError
from rnnspec.lang.layers import MaskingSpec

from .kinds import BACKENDS, TOL, assert_keras_file_imports, exported_torch_model, hand_built
from .parity import backend_or_skip, random_weights

MASKED_IDS = (3, 7)
"""Ids whose embedding rows are set to ``mask_value`` (all features): the steps Keras's Masking masks."""


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.2, "name": "masking-after-embedding", **data})


# -- the spec ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"), [({"mask_value": 1.5}, 1.5), (0.25, 0.25), ({}, 0.0), (None, 0.0), (2, 2.0)]
)
def test_entry_forms_names_and_mask_flow(written: Any, value: float):
    spec = _spec(
        input={"vocab_size": 20},
        embedding={"output_dim": 4},
        recurrent=[{"masking": written}, {"cell": "lstm", "units": 3, "return_sequences": True}],
        head={"units": 2},
    )
    assert isinstance(spec.recurrent[0], MaskingSpec) and spec.recurrent[0].mask_value == value
    assert spec.layer_names() == ["embedding", "masking_0", "recurrent_0", "head"]
    assert spec.masked and spec.output_masked
    assert rnnspec.spec_from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["recurrent"][0] == {"masking": {"mask_value": value}}


def test_input_masking_keeps_its_name_beside_a_listed_one():
    spec = _spec(
        input={"features": 3, "mask_value": 0.0},
        recurrent=[
            {"cell": "gru", "units": 2, "return_sequences": True},
            {"masking": 0.0},
            {"cell": "gru", "units": 2},
        ],
    )
    assert spec.layer_names() == ["masking", "recurrent_0", "masking_1", "recurrent_1"]


BAD = [
    ("no-time-axis", {"recurrent": [{"cell": "lstm", "units": 2}, {"masking": 0.0}]}, "recurrent[1].masking",
     "its input has no time axis"),
    ("in-head", {"recurrent": [{"cell": "lstm", "units": 2}], "head": [{"masking": 0.0}, {"units": 1}]}, "head",
     "cannot be in `head`"),
    ("not-a-number", {"recurrent": [{"masking": {"mask_value": "zero"}}, {"cell": "lstm", "units": 2}]},
     "recurrent[0].masking", "number"),
    ("conv-after-it", {"recurrent": [{"masking": 0.0}, {"conv1d": {"filters": 2, "kernel_size": 2}},
                                     {"cell": "lstm", "units": 2}]}, "recurrent[1].conv1d",
     "remove recurrent[0] (masking)"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "where", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_entries_are_located(data: dict, where: str, message: str):
    with pytest.raises(SpecError) as info:
        _spec(input={"vocab_size": 9}, embedding={"output_dim": 3}, **data)
    assert where in str(info.value) and message in str(info.value), str(info.value)


# -- the cases -----------------------------------------------------------------------------------------------


def _case(L: Any, name: str) -> tuple[rnnspec.ModelSpec, list[Any], float]:
    if name == "lstm-sequences":  # Embedding -> Masking(0.) -> LSTM(sequences) -> Dense on each step
        spec = _spec(input={"vocab_size": 12}, embedding={"output_dim": 4},
                     recurrent=[{"masking": {"mask_value": 0.0}},
                                {"cell": "lstm", "units": 5, "return_sequences": True}],
                     head={"units": 3})  # fmt: skip
        layers = [L.Embedding(12, 4), L.Masking(mask_value=0.0), L.LSTM(5, return_sequences=True), L.Dense(3)]
        return spec, layers, 0.0
    if name == "mask-zero-replaced":  # the embedding's mask_zero mask is replaced by the Masking's
        spec = _spec(input={"vocab_size": 12}, embedding={"output_dim": 4, "mask_zero": True},
                     recurrent=[{"masking": 0.5}, {"cell": "gru", "units": 4, "bidirectional": True}],
                     head={"units": 1, "activation": "sigmoid"})  # fmt: skip
        layers = [L.Embedding(12, 4, mask_zero=True), L.Masking(0.5), L.Bidirectional(L.GRU(4)),
                  L.Dense(1, activation="sigmoid")]  # fmt: skip
        return spec, layers, 0.5
    # mid-stack: a Masking between two recurrent layers masks the steps whose outputs are all mask_value (a
    # bias-free relu SimpleRNN outputs zeros until the first id whose row is not zero: the pre-padded steps)
    spec = _spec(input={"vocab_size": 12}, embedding={"output_dim": 3},
                 recurrent=[{"cell": "simple_rnn", "units": 3, "return_sequences": True, "activation": "relu",
                             "use_bias": False},
                            {"masking": 0.0}, {"cell": "lstm", "units": 2, "return_sequences": True}],
                 head={"units": 2})  # fmt: skip
    layers = [L.Embedding(12, 3), L.SimpleRNN(3, return_sequences=True, activation="relu", use_bias=False),
              L.Masking(0.0),
              L.LSTM(2, return_sequences=True), L.Dense(2)]  # fmt: skip
    return spec, layers, 0.0


CASES = ["lstm-sequences", "mask-zero-replaced", "mid-stack"]


def _weights(spec: rnnspec.ModelSpec, value: float, seed: int) -> dict[str, np.ndarray]:
    weights = random_weights(spec, seed)
    table = weights["embedding/embeddings"]
    table[list(MASKED_IDS)] = value
    if spec.embedding.mask_zero:
        assert np.any(table[0] != value)  # id 0 is masked by mask_zero only: Keras's Masking unmasks it
    return weights


def _inputs() -> np.ndarray:
    """Masked ids pre- and post-padded, inside a row, a fully masked row, id 0 (mask_zero's padding) and a row
    of length 1."""
    return np.array(
        [
            [3, 3, 1, 2, 5, 6],
            [1, 2, 5, 6, 7, 7],
            [1, 3, 2, 7, 4, 5],
            [3, 7, 3, 7, 3, 7],
            [0, 0, 4, 5, 0, 1],
            [7, 7, 7, 7, 7, 9],
        ],
        dtype=np.int64,
    )


def _hand_built(L: Any, case: str, seed: int = 1) -> tuple[rnnspec.ModelSpec, Any, dict[str, np.ndarray]]:
    spec, layers, value = _case(L, case)
    model, weights = hand_built(spec, layers, weights=_weights(spec, value, seed))
    return spec, model, weights


@pytest.mark.parametrize("case", CASES)
def test_counts_outputs_and_masks_equal_keras(L, case: str):
    spec, hand, weights = _hand_built(L, case)
    x = _inputs()
    out = hand(x, training=False)
    expected = np.asarray(out)
    keras_mask = getattr(out, "_keras_mask", None)
    assert keras_mask is None or not np.asarray(keras_mask).all()  # the premise: some steps are masked
    for backend in BACKENDS:
        model = rnnspec.build(spec, backend, weights=weights)
        got = rnnspec.predict(model, x)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOL, backend
        if backend == "keras":  # cuDNN off behind the mask, and the note names where the mask comes from
            assert any("use_cudnn=False behind a Masking entry" in n for n in backend_or_skip("keras").notes(model))
        if backend == "torch":
            mask = model.output_mask
            assert (mask is None) == (keras_mask is None)
            if mask is not None:
                assert np.array_equal(mask.numpy(), np.asarray(keras_mask))
        if backend != "numpy":
            counts = backend_or_skip(backend).count_params(model)
            pairs = zip(spec.layer_names(), hand.layers, strict=True)
            assert counts == {name: int(layer.count_params()) for name, layer in pairs}
    if case == "mask-zero-replaced":  # the premise: id 0 is not masked after Masking(0.5) in Keras either
        padded_only = hand(np.array([[0, 0, 4]]), training=False)
        unmasked = keras_model_without_mask_zero(L, hand)(np.array([[0, 0, 4]]), training=False)
        assert np.array_equal(np.asarray(padded_only), np.asarray(unmasked))


def keras_model_without_mask_zero(L: Any, hand: Any) -> Any:
    """The same Keras model with ``mask_zero=False``: equal outputs show the Masking layer replaced the mask."""
    from rnnspec_backends.keras.runtime import keras

    first = hand.layers[0]
    layers = [L.Embedding(first.input_dim, first.output_dim), L.Masking(0.5), L.Bidirectional(L.GRU(4)),
              L.Dense(1, activation="sigmoid")]  # fmt: skip
    model = keras.Sequential([keras.Input((None,), dtype="int32"), *layers])
    model.set_weights(hand.get_weights())
    return model


# -- export ----------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", ["mask-zero-replaced", "mid-stack"])
def test_torch_and_onnx_exports_equal_keras(L, case: str, tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from rnnspec_backends.onnx.export import export_onnx

    spec, hand, weights = _hand_built(L, case, seed=4)
    x = _inputs()
    expected = np.asarray(hand(x, training=False))
    model = exported_torch_model(spec, weights, tmp_path, f"masking_{case.replace('-', '_')}")
    assert "Keras Masking(" in (tmp_path / "model.py").read_text()
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
        assert np.abs(got - expected).max() <= TOL
        assert np.array_equal(torch.jit.script(model)(torch.from_numpy(x)).numpy(), got)
    (path,) = export_onnx(spec, weights, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x})
    assert np.abs(got - expected).max() <= TOL


# -- import ----------------------------------------------------------------------------------------------------


def _functional(L: Any) -> Any:
    from rnnspec_backends.keras.runtime import keras

    ids = keras.Input((None,), dtype="int32")
    h = L.Embedding(12, 4, mask_zero=True)(ids)
    h = L.Masking(0.0)(h)
    h = L.LSTM(5, return_sequences=True)(h)
    h = L.Dense(3)(h)
    return keras.Model(ids, h)


@pytest.mark.parametrize(("form", "fmt"), [("sequential", "keras"), ("sequential", "h5"), ("functional", "keras")])
def test_keras_file_imports_and_predicts_what_keras_predicts(L, form: str, fmt: str, tmp_path):
    if form == "sequential":
        _, model, _ = _hand_built(L, "lstm-sequences", seed=3)
    else:
        model = _functional(L)
        rng = np.random.default_rng(3)
        model.set_weights([rng.normal(0, 0.5, size=tuple(w.shape)).astype(np.float32) for w in model.weights])
        table = model.weights[0].numpy()
        table[list(MASKED_IDS)] = 0.0
        model.weights[0].assign(table)
    imported = assert_keras_file_imports(model, tmp_path / f"model.{fmt}", _inputs()).spec
    masking = [layer for layer in imported.recurrent if isinstance(layer, MaskingSpec)]
    assert len(masking) == 1 and masking[0].mask_value == 0.0 and imported.input.mask_value is None


def test_a_masking_layer_after_a_vector_output_is_refused_on_import(L, tmp_path):
    from rnnspec_backends.keras.runtime import keras

    from rnnspec.interop.keras_import import UnsupportedModelError
    from rnnspec.runtime.importing import import_model

    layers = [L.Embedding(9, 3), L.LSTM(4, return_sequences=True), L.LSTM(2), L.Masking(0.0), L.Dense(1)]
    keras.Sequential([keras.Input((5,), dtype="int32"), *layers]).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedModelError, match=re.escape("a Masking layer after a layer that returns one")):
        import_model(tmp_path / "m.keras")
