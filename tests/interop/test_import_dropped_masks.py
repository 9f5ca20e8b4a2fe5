"""Importing a Keras model whose Embedding(mask_zero=True) feeds a layer that drops the mask unread.

Keras's Conv1D, pooling and Flatten layers do not support masking: they drop the mask they receive (with a
warning). When no layer read the embedding's mask before that, the model computes exactly what it computes
without ``mask_zero`` (an embedding's values do not depend on it), so the import states it so, with a note, and
predicts what Keras predicts on padded rows. The reference is Keras itself (the saved model's predictions); a mask
that a recurrent layer read first still changes the outputs, and stays refused with the reason.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import rnnspec

from ..parity import backend_or_skip

BACKENDS = ["keras", "torch", "numpy"]


def _padded_ids(batch: int = 6, steps: int = 12, vocab: int = 40) -> np.ndarray:
    """Pre- and post-padded rows, a full row, a row of one token."""
    rng = np.random.default_rng(2)
    x = rng.integers(1, vocab, size=(batch, steps))
    x[0, :5] = 0
    x[1, 7:] = 0
    x[3, :-1] = 0
    return x.astype(np.int32)


def _save(keras: Any, layers: list[Any], path: Any) -> Any:
    model = keras.Sequential([keras.Input((12,), dtype="int32"), *layers])
    model.save(path)
    return model


@pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")
@pytest.mark.parametrize("front", ["conv1d", "max_pool", "flatten"])
def test_a_mask_dropped_before_any_reader_is_left_out_with_a_note(L, front: str, tmp_path):
    from rnnspec.runtime.importing import import_model

    backend_or_skip("keras")
    from rnnspec_backends.keras.runtime import keras

    first = {
        "conv1d": [L.Conv1D(5, 3, activation="relu"), L.LSTM(4)],
        "max_pool": [L.MaxPooling1D(2), L.GRU(4)],
        "flatten": [L.LSTM(4, return_sequences=True), L.Flatten()],
    }[front]
    if front == "flatten":  # the LSTM reads the mask first: refused below; here the flatten comes before a reader
        first = [L.Flatten(), L.RepeatVector(3), L.LSTM(4)]
    model = _save(keras, [L.Embedding(40, 6, mask_zero=True), *first, L.Dense(1, activation="sigmoid")],
                  tmp_path / "m.keras")  # fmt: skip
    notes: list[str] = []
    spec, weights = import_model(tmp_path / "m.keras", notes=notes)
    assert spec.embedding is not None and not spec.embedding.mask_zero
    said = r"mask_zero=True on embedding.* was left out: Keras's \w+ .* drops the mask"
    assert any(re.search(said, note) for note in notes)
    x = _padded_ids()
    expected = np.asarray(model(x, training=False))
    for backend in BACKENDS:
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
        assert np.allclose(got, expected, rtol=0.0, atol=1e-5), backend


@pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")
def test_a_mask_read_before_it_is_dropped_stays_refused(L, tmp_path):
    from rnnspec.interop.keras_import import UnsupportedModelError
    from rnnspec.runtime.importing import import_model

    backend_or_skip("keras")
    from rnnspec_backends.keras.runtime import keras

    layers = [L.Embedding(40, 6, mask_zero=True), L.LSTM(4, return_sequences=True), L.Conv1D(3, 2), L.LSTM(2),
              L.Dense(1)]  # fmt: skip
    _save(keras, layers, tmp_path / "m.keras")
    with pytest.raises((UnsupportedModelError, rnnspec.SpecError)) as info:
        import_model(tmp_path / "m.keras")
    assert "does not support masking" in str(info.value)


def test_a_batch_normalization_reads_the_mask_before_it_is_dropped():
    """BatchNormalization's training moments leave masked steps out (a mask reader, a fact of the kind): a Conv1D
    after it is not "the same without mask_zero", and the spec's check names the reader instead."""
    with pytest.raises(rnnspec.SpecError) as info:
        rnnspec.spec_from_dict({
            "rnnspec": 1.2, "name": "bn", "input": {"vocab_size": 40},
            "embedding": {"output_dim": 6, "mask_zero": True},
            "recurrent": [{"batch_norm": {}}, {"conv1d": {"filters": 3, "kernel_size": 2}},
                          {"cell": "lstm", "units": 2}],
        })  # fmt: skip
    message = str(info.value)
    assert "after recurrent[0] (batch_norm_0) read it" in message and "move the conv1d entry before" in message


@pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning")
@pytest.mark.parametrize(("between", "imports"), [("dropout", True), ("batch_norm", False)])
def test_only_a_layer_that_passes_the_mask_on_unread_keeps_it_droppable(L, between: str, imports: bool, tmp_path):
    from rnnspec.runtime.importing import import_model

    backend_or_skip("keras")
    from rnnspec_backends.keras.runtime import keras

    middle = L.Dropout(0.1) if between == "dropout" else L.BatchNormalization()
    layers = [L.Embedding(40, 6, mask_zero=True), middle, L.Conv1D(3, 2), L.LSTM(2), L.Dense(1)]
    _save(keras, layers, tmp_path / "m.keras")
    if imports:
        spec, _ = import_model(tmp_path / "m.keras")
        assert spec.embedding is not None and not spec.embedding.mask_zero
    else:
        with pytest.raises(rnnspec.RnnspecError, match="does not support masking"):
            import_model(tmp_path / "m.keras")
