"""Functional Keras 3 models with masks: the op entries Keras writes for a masking layer's mask are skipped.

Keras 3.15 writes the mask of a functional model's masking layer as op entries of its config (checked here on
files the installed Keras saves): ``Masking(v)`` as ``NotEqual(x, v)`` then ``Any(axis=-1)``, and
``Embedding(mask_zero=True)`` as ``NotEqual(ids, 0)``; the layer after it takes that op's output as its ``mask``.
The reference outputs are the Keras model's own, on inputs with pre-/post-padded, holed, fully padded and
length-1 rows.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest

pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
pytest.importorskip("torch")
import keras

import rnnspec
from rnnspec.cli import main
from rnnspec.interop.keras_import import UnsupportedModelError
from rnnspec.interop.proof import hard_inputs
from rnnspec.runtime.importing import import_model

L = keras.layers
TOL = 1e-5


def _masking_lstm() -> keras.Model:
    """The issue's model: Input -> Masking -> LSTM -> Dense."""
    inputs = keras.Input((None, 3))
    x = L.Masking()(inputs)
    x = L.LSTM(4)(x)
    return keras.Model(inputs, L.Dense(1, "sigmoid")(x))


def _masking_value_stack() -> keras.Model:
    inputs = keras.Input((9, 3))
    x = L.Masking(mask_value=0.5)(inputs)
    x = L.LSTM(4, return_sequences=True)(x)
    x = L.GRU(3)(x)
    return keras.Model(inputs, L.Dense(2)(x))


def _embedding_bidirectional() -> keras.Model:
    inputs = keras.Input((None,), dtype="int32")
    x = L.Embedding(30, 5, mask_zero=True)(inputs)
    x = L.Bidirectional(L.LSTM(4, return_sequences=True))(x)
    x = L.SimpleRNN(3)(x)
    return keras.Model(inputs, L.Dense(2, "softmax")(x))


MODELS = {
    "masking_lstm": _masking_lstm,
    "masking_value_stack": _masking_value_stack,
    "embedding_bidirectional": _embedding_bidirectional,
}


def _randomize(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0.0, 0.4, size=tuple(w.shape)).astype("float32"))


def _config_classes(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return [entry["class_name"] for entry in json.loads(zf.read("config.json"))["config"]["layers"]]


@pytest.fixture(scope="module", params=sorted(MODELS))
def saved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, keras.Model, Path]:
    model = MODELS[request.param]()
    _randomize(model, len(request.param))
    folder = tmp_path_factory.mktemp(request.param)
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")
    return request.param, model, folder


def test_keras_writes_the_mask_as_op_entries(saved: tuple[str, keras.Model, Path]) -> None:
    """The premise, on the installed Keras: a functional masking layer's mask is op entries of the config."""
    name, _, folder = saved
    classes = _config_classes(folder / "model.keras")
    expected = ["NotEqual", "Any"] if name.startswith("masking") else ["NotEqual"]
    assert [c for c in classes if c in ("NotEqual", "Any")] == expected


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_functional_masked_model_imports_and_predicts_what_keras_predicts(
    saved: tuple[str, keras.Model, Path], fmt: str
) -> None:
    name, model, folder = saved
    spec, weights = import_model(folder / f"model.{fmt}")
    assert spec.input.mask_value == (0.5 if name == "masking_value_stack" else None if name.startswith("emb") else 0.0)
    x = hard_inputs(spec, seed=3, batch=6, time=9)
    expected = np.asarray(model(x, training=False))
    for backend in ("numpy", "torch"):
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= TOL, backend


def test_the_issue_model_imports_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: "layer 'any' (Any): the spec has no Any layer", exit 1."""
    model = _masking_lstm()
    _randomize(model, 5)
    model.save(tmp_path / "masked.keras")
    code = main(["import", str(tmp_path / "masked.keras"), "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Any" not in captured.err
    assert "original Keras model vs rnnspec torch" in captured.out


def test_a_mask_computed_by_the_authors_own_ops_is_refused(tmp_path: Path) -> None:
    """An LSTM given a mask of its own (tokens != 5, not the Embedding's tokens != 0) is not a masking layer's."""
    ids = keras.Input((7,), dtype="int32")
    x = L.Embedding(20, 4)(ids)
    x = L.LSTM(3)(x, mask=keras.ops.not_equal(ids, 5))
    keras.Model(ids, L.Dense(1)(x)).save(tmp_path / "own_mask.keras")
    with pytest.raises(UnsupportedModelError) as info:
        import_model(tmp_path / "own_mask.keras")
    assert "computes a mask that is not the mask of a Masking or Embedding" in str(info.value)


def test_a_mask_op_with_another_value_than_the_masking_layer_is_refused(tmp_path: Path) -> None:
    """The ops are skipped only when they compute the layer's own mask: a NotEqual edited to compare with 1.0
    while the Masking layer says 0.0 is refused, not imported as mask_value 0.0."""
    model = _masking_lstm()
    model.save(tmp_path / "masked.keras")
    with zipfile.ZipFile(tmp_path / "masked.keras") as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    config = json.loads(members["config.json"])
    for entry in config["config"]["layers"]:
        if entry["class_name"] == "NotEqual":
            entry["inbound_nodes"][0]["args"][1] = 1.0
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "edited.keras", "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    with pytest.raises(UnsupportedModelError) as info:
        import_model(tmp_path / "edited.keras")
    assert "computes a mask" in str(info.value)


def test_an_op_on_the_data_path_is_refused_as_an_operation(tmp_path: Path) -> None:
    inputs = keras.Input((6, 2))
    x = L.Masking()(inputs)
    x = L.LSTM(3)(x)
    keras.Model(inputs, L.Dense(1)(keras.ops.multiply(x, 2.0))).save(tmp_path / "op.keras")
    with pytest.raises(UnsupportedModelError) as info:
        import_model(tmp_path / "op.keras")
    message = str(info.value)
    assert "an operation on tensors (keras.ops Multiply)" in message
    assert "'any'" not in message and "NotEqual" not in message
