"""Two things a Keras file says that the importer must not lose in silence or in a list of symptoms:

* a frozen layer (``trainable=False``: a pretrained embedding table; on a ``Bidirectional``'s inner layer; the whole
  model frozen): the spec says ``trainable: false`` on exactly those layers, with no WARNING left (the import was
  once silently trainable, then trainable with a WARNING);
* a model of several inputs or outputs (an encoder–decoder with ``return_state``/``initial_state``, a siamese
  model): refused for that cause alone, not with the layers that join its branches.

Every file is saved by the installed Keras 3.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
pytest.importorskip("torch")
import keras

from rnnspec.cli import main
from rnnspec.interop.keras_import import UnsupportedModelError
from rnnspec.runtime.importing import import_model

L = keras.layers


def _frozen_embedding() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            L.Embedding(20, 4, mask_zero=True, trainable=False, name="glove"),
            L.LSTM(3, name="encoder"),
            L.Dense(1, "sigmoid", name="out"),
        ]
    )


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_a_frozen_embedding_is_imported_frozen(tmp_path: Path, fmt: str) -> None:
    _frozen_embedding().save(tmp_path / f"m.{fmt}")
    notes: list[str] = []
    spec, weights = import_model(tmp_path / f"m.{fmt}", notes=notes)
    assert spec.embedding is not None and weights["glove/embeddings"].shape == (20, 4)
    assert spec.embedding.trainable is False
    assert [layer.trainable for layer in spec.cells] == [True] and spec.output_layer.trainable is True
    assert not [n for n in notes if n.startswith("WARNING")]


def test_from_python_without_notes_nothing_is_warned(tmp_path: Path) -> None:
    import warnings

    _frozen_embedding().save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        spec, _ = import_model(tmp_path / "m.keras")
    assert spec.embedding.trainable is False


def test_the_command_writes_trainable_false(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _frozen_embedding().save(tmp_path / "m.keras")
    assert main(["import", str(tmp_path / "m.keras"), "-o", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "WARNING" not in printed
    (written,) = (tmp_path / "out").glob("*.yaml")
    from rnnspec import load_spec

    assert load_spec(written).embedding.trainable is False
    assert "trainable: false" in written.read_text()


def test_a_frozen_model_and_a_frozen_bidirectional_layer_are_frozen(tmp_path: Path) -> None:
    model = keras.Sequential(
        [
            keras.Input((5, 2)),
            L.Bidirectional(L.GRU(3, return_sequences=True), name="bi"),
            L.LSTM(2, name="top"),
            L.Dense(1, name="out"),
        ]
    )
    model.get_layer("bi").trainable = False
    model.save(tmp_path / "bi.keras")
    notes: list[str] = []
    spec, _ = import_model(tmp_path / "bi.keras", notes=notes)
    assert {n: layer.is_trainable() for n, layer in spec.stack()} == {"bi": False, "top": True, "out": True}
    assert notes == []
    model.get_layer("bi").trainable = True
    model.get_layer("bi").forward_layer.trainable = False  # the inner layer's flag (the wrapper's stays True)
    model.get_layer("bi").backward_layer.trainable = False
    model.save(tmp_path / "inner.keras")
    spec, _ = import_model(tmp_path / "inner.keras")
    assert spec.recurrent[0].trainable is False
    model.get_layer("bi").trainable = True
    model.trainable = False
    model.save(tmp_path / "all.keras")
    notes = []
    spec, _ = import_model(tmp_path / "all.keras", notes=notes)
    assert {n: layer.is_trainable() for n, layer in spec.stack()} == {"bi": False, "top": False, "out": False}
    assert notes == []


def test_a_trainable_model_has_no_warning(tmp_path: Path) -> None:
    keras.Sequential([keras.Input((5, 2)), L.LSTM(2), L.Dense(1)]).save(tmp_path / "m.keras")
    notes: list[str] = []
    import_model(tmp_path / "m.keras", notes=notes)
    assert notes == []


def _refusal(path: Path) -> str:
    with pytest.raises(UnsupportedModelError) as info:
        import_model(path)
    return str(info.value)


def test_an_encoder_decoder_is_refused_for_its_two_inputs_first(tmp_path: Path) -> None:
    """keras.io's seq2seq: the encoder's return_state feeds the decoder's initial_state."""
    encoder_inputs = keras.Input((None, 4), name="encoder_inputs")
    _, h, c = L.LSTM(5, return_state=True, name="encoder")(encoder_inputs)
    decoder_inputs = keras.Input((None, 3), name="decoder_inputs")
    seq = L.LSTM(5, return_sequences=True, name="decoder")(decoder_inputs, initial_state=[h, c])
    outputs = L.Dense(3, "softmax", name="out")(seq)
    keras.Model([encoder_inputs, decoder_inputs], outputs).save(tmp_path / "s2s.keras")
    message = _refusal(tmp_path / "s2s.keras")
    lines = message.splitlines()
    assert "the model has 2 inputs (encoder_inputs, decoder_inputs); a spec describes one input" in lines[1]
    refusals = [line for line in lines if line.startswith("  - ")]
    assert len(refusals) == 1  # the cause, not its symptoms (return_state, the decoder taking two tensors)
    assert "encoder" not in refusals[0].split(":")[0]


def test_a_siamese_model_is_refused_for_its_two_inputs(tmp_path: Path) -> None:
    left, right = keras.Input((6, 2), name="left"), keras.Input((6, 2), name="right")
    shared = L.LSTM(4, name="shared")
    distance = L.Subtract()([shared(left), shared(right)])
    keras.Model([left, right], L.Dense(1, "sigmoid")(distance)).save(tmp_path / "siamese.keras")
    message = _refusal(tmp_path / "siamese.keras")
    assert "the model has 2 inputs (left, right)" in message
    assert "Subtract" not in message and len([line for line in message.splitlines() if line.startswith("  - ")]) == 1


def test_two_outputs_are_refused_for_that_cause(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = keras.Input((6, 2))
    x = L.LSTM(4)(inputs)
    keras.Model(inputs, [L.Dense(1, name="a")(x), L.Dense(2, name="b")(x)]).save(tmp_path / "two.keras")
    assert main(["import", str(tmp_path / "two.keras"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "the model has 2 outputs (a, b); a spec describes one output" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
