"""Frozen layers (``trainable: false``, issue 21 item 2): Keras's ``layer.trainable = False`` on the kinds with weights.

References: Keras itself (a model built by hand with ``trainable=False``: its ``model.summary()`` lines,
``non_trainable_weights``, a ``model.fit`` and the optimizer variables it builds), and the independent formula
``params = Σ sizes`` with a frozen layer's sizes counted as non-trainable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnspec
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import SpecError
from rnnspec.lang.summary import render_summary

from .kinds import count_lines, exported_torch_module, fit_both, fit_gaps, keras_summary
from .parity import backend_or_skip, random_inputs


def _spec(**data: Any) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict({"rnnspec": 1.1, "name": "frozen", **data})


# every kind with weights, each frozen once: embedding, a bidirectional LSTM, layer_norm, a GRU, the Dense head
FROZEN = {
    "input": {"vocab_size": 20, "seq_len": 6},
    "embedding": {"output_dim": 4, "mask_zero": True, "trainable": False},
    "recurrent": [
        {"cell": "lstm", "units": 3, "return_sequences": True, "bidirectional": True, "trainable": False},
        {"layer_norm": {}, "trainable": False},
        {"cell": "gru", "units": 5},
    ],
    "head": [{"units": 4, "activation": "relu", "trainable": False}, {"units": 1, "activation": "sigmoid"}],
    "training": {"loss": "binary_crossentropy", "optimizer": "adam", "batch_size": 4, "epochs": 1},
}
# sizes by hand: embedding 20·4; BiLSTM 2·4·(3·(4+3)+3); layer_norm 2·6; GRU 3·(5·(6+5)+2·5); head_0 5·4+4; head_1 4+1
FROZEN_SIZES = {"embedding": 80, "recurrent_0": 2 * 4 * (3 * 7 + 3), "layer_norm_0": 12, "head_0": 24}
TRAINED_SIZES = {"recurrent_1": 3 * (5 * 11 + 10), "head_1": 5}


def _keras_by_hand(L: Any) -> Any:
    """The same model written with Keras's own layers and ``trainable=False`` (no rnnspec code involved). The
    Bidirectional layer is frozen by ``layer.trainable = False``: Keras 3's ``Bidirectional(..., trainable=False)``
    sets the wrapper's flag alone and still trains its weights (see the import test below)."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            L.Embedding(20, 4, mask_zero=True, trainable=False, name="embedding"),
            L.Bidirectional(L.LSTM(3, return_sequences=True), name="recurrent_0"),
            L.LayerNormalization(trainable=False, name="layer_norm_0"),
            L.GRU(5, name="recurrent_1"),
            L.Dense(4, "relu", trainable=False, name="head_0"),
            L.Dense(1, "sigmoid", name="head_1"),
        ],
        name="frozen",
    )
    model.get_layer("recurrent_0").trainable = False
    return model


# -- the spec and its counts ----------------------------------------------------------------------------


def test_the_counts_split_into_trainable_and_not():
    analysis = analyze(_spec(**FROZEN))
    assert {row.name: row.non_trainable for row in analysis.layers if row.non_trainable} == FROZEN_SIZES
    assert analysis.non_trainable_params == sum(FROZEN_SIZES.values())
    assert analysis.trainable_params == sum(TRAINED_SIZES.values())
    doc = analysis.to_dict()
    assert (doc["trainable_params"], doc["non_trainable_params"]) == (200, 308)


def test_trainable_is_a_field_of_the_kinds_with_weights_only():
    for entry in ({"dropout": 0.5, "trainable": False}, {"activation": "relu", "trainable": False}):
        with pytest.raises(SpecError, match="trainable"):
            _spec(input={"features": 2}, recurrent=[entry, {"cell": "lstm", "units": 2}])
    spec = _spec(input={"features": 2}, recurrent=[{"cell": "lstm", "units": 2, "trainable": False}])
    assert spec.cells[0].trainable is False and "trainable" in spec.to_dict()["recurrent"][0]
    with pytest.raises(SpecError, match="trainable"):
        _spec(input={"features": 2}, recurrent=[{"cell": "lstm", "units": 2, "trainable": "no"}])


def test_the_summary_lines_equal_keras_model_summary(L):
    """``rnnspec summary``'s "Total / Trainable / Non-trainable params" lines are Keras's for the hand-built model."""
    hand = _keras_by_hand(L)
    keras_lines = count_lines(keras_summary(hand))
    ours = count_lines(render_summary(analyze(_spec(**FROZEN))))
    assert ours == keras_lines
    assert keras_lines[1:] == ["Trainable params: 200 (800.00 B)", "Non-trainable params: 308 (1.20 KB)"]
    frozen = {w.path.split("/")[1] for w in hand.non_trainable_weights}  # "frozen/embedding/embeddings"
    assert frozen == set(FROZEN_SIZES)


@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_the_built_models_freeze_the_same_weights(backend):
    backend_or_skip(backend)
    spec = _spec(**FROZEN)
    model = rnnspec.build(spec, backend, seed=0)
    if backend == "keras":
        frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
        summary = rnnspec.get_backend("keras").summary(model)
    else:
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        summary = rnnspec.get_backend("torch").summary(model)
    assert frozen == sum(FROZEN_SIZES.values())
    assert "Non-trainable params: 308" in summary


# -- training ---------------------------------------------------------------------------------------------


def _data(spec: rnnspec.ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    x = random_inputs(spec, 0, batch=8)
    y = np.random.default_rng(1).integers(0, 2, size=(8,))
    return x, y


def _check_frozen_unchanged(start: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    frozen = {k for k in start if k.split("/")[0] in FROZEN_SIZES}
    assert frozen and all(np.array_equal(start[k], after[k]) for k in frozen)  # bit for bit
    assert all(not np.array_equal(start[k], after[k]) for k in start if k not in frozen)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])  # adam: in the parity test below, on both backends
def test_training_leaves_frozen_weights_bit_for_bit(optimizer):
    backend_or_skip("torch")
    spec = _spec(**{**FROZEN, "training": {**FROZEN["training"], "optimizer": optimizer}})
    model = rnnspec.build(spec, "torch", seed=0)
    start = rnnspec.get_weights(model)
    rnnspec.fit(model, *_data(spec), seed=0, epochs=2)
    _check_frozen_unchanged(start, rnnspec.get_weights(model))


def test_training_parity_with_frozen_layers_and_the_optimizer_state():
    """model.fit and the torch loop agree, and both keep Adam's slots for the trainable weights only (Keras builds
    its optimizer from ``model.trainable_variables``: a frozen layer has no momentum or velocity)."""
    backend_or_skip("keras")
    backend_or_skip("torch")
    from rnnspec.runtime.training import _trainer_for

    spec = _spec(**FROZEN)
    fits, slots = fit_both(spec, *_data(spec), epochs=2), {}
    for backend, fit in fits.items():
        _check_frozen_unchanged(rnnspec.initial_weights(spec, seed=0), fit.end)
        trainer = _trainer_for(fit.model, rnnspec.get_backend(backend), spec.training, None)
        state = trainer.state()
        if backend == "torch":
            slots[backend] = sorted(v.size for k, v in state.items() if k.startswith("slot/"))
        else:
            variables = trainer._optimizer_variables()
            slots[backend] = sorted(int(np.prod(v.shape)) for v in variables if "iteration" not in v.path and
                                    "learning_rate" not in v.path)  # fmt: skip
    losses, weights = fit_gaps(fits)
    assert losses <= 1e-4 and weights <= 1e-4
    trainable = rnnspec.weight_shapes(spec)
    expected = sorted(int(np.prod(s)) for k, s in trainable.items() if k.split("/")[0] in TRAINED_SIZES for _ in "mv")
    assert slots["torch"] == slots["keras"] == expected


def test_a_model_frozen_whole_trains_nothing_on_torch():
    """Keras warns "The model does not have any trainable weights" and fits nothing; the torch loop does the same."""
    backend_or_skip("torch")
    data = {**FROZEN, "recurrent": [{"cell": "gru", "units": 5, "trainable": False}],
            "head": {"units": 1, "activation": "sigmoid", "trainable": False}}  # fmt: skip
    spec = _spec(**data)
    model = rnnspec.build(spec, "torch", seed=0)
    start = rnnspec.get_weights(model)
    history = rnnspec.fit(model, *_data(spec), seed=0, epochs=1)
    assert np.isfinite(history["loss"]).all()
    assert all(np.array_equal(v, rnnspec.get_weights(model)[k]) for k, v in start.items())


# -- export -----------------------------------------------------------------------------------------------


def test_the_plain_torch_export_freezes_the_same_modules(tmp_path: Path):
    backend_or_skip("torch")
    spec = _spec(**FROZEN)
    module, _ = exported_torch_module(spec, rnnspec.initial_weights(spec, seed=0), tmp_path, "frozen_model")
    assert (tmp_path / "model.py").read_text().count("requires_grad_(False)") == len(FROZEN_SIZES)
    model = module.load()
    frozen = {name.split(".")[0] for name, p in model.named_parameters() if not p.requires_grad}
    trained = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert (frozen, trained) == (set(FROZEN_SIZES), set(TRAINED_SIZES))


def test_the_keras_export_sets_trainable_false(tmp_path: Path, L):
    import keras
    from rnnspec_backends.keras.export import export_keras

    spec = _spec(**FROZEN)
    (path,) = export_keras(spec, rnnspec.initial_weights(spec, seed=0), tmp_path / "m.keras")
    model = keras.saving.load_model(path)
    assert {layer.name for layer in model.layers if not layer.trainable} == set(FROZEN_SIZES)
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == sum(FROZEN_SIZES.values())


def test_import_of_the_keras_export_keeps_the_flags(tmp_path: Path, L):
    from rnnspec.runtime.importing import import_model

    _keras_by_hand(L).save(tmp_path / "hand.keras")
    spec, _ = import_model(tmp_path / "hand.keras")
    assert {n for n, layer in spec.stack() if not layer.is_trainable()} == set(FROZEN_SIZES)
    assert analyze(spec).non_trainable_params == sum(FROZEN_SIZES.values())


def test_a_flag_on_the_wrapper_alone_imports_trainable_with_a_warning(tmp_path: Path, L):
    """``Bidirectional(LSTM(3), trainable=False)``: Keras 3 keeps the weights in ``model.trainable_weights`` (its
    inner layer's flag is True), so the import is trainable as Keras runs it, and the note says how to freeze it."""
    import keras

    from rnnspec.runtime.importing import import_model

    model = keras.Sequential([keras.Input((5, 2)), L.Bidirectional(L.LSTM(3), trainable=False, name="bi"), L.Dense(1)])
    assert len(model.trainable_weights) == 8  # Keras trains it: the reference the import follows
    model.save(tmp_path / "bi.keras")
    notes: list[str] = []
    spec, _ = import_model(tmp_path / "bi.keras", notes=notes)
    assert spec.recurrent[0].trainable is True
    (warning,) = notes
    assert "'bi' (Bidirectional)" in warning and "set `trainable: false`" in warning


def test_conformance_sees_what_training_sees(L):
    """rnnspec.testing compares the gradients training uses: a frozen weight has none on either side (Keras: not in
    ``model.trainable_variables``; PyTorch: ``requires_grad`` False), so the hand-built frozen model conforms to the
    frozen spec; against the same spec unfrozen (whose training would move those weights) the difference is named."""
    from rnnspec.testing import compare

    hand = _keras_by_hand(L)
    assert compare(hand, "torch", _spec(**FROZEN)).passed
    assert compare(hand, "torch").passed  # the spec read off the Keras model keeps its flags
    thawed = _spec(**{**FROZEN, "embedding": {"output_dim": 4, "mask_zero": True}})
    report = compare(hand, "torch", thawed)
    assert not report.passed and "embedding / embedding: trainable: False in the file, True in the spec" in str(report)
