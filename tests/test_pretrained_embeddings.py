"""Pretrained embedding tables (``embedding.weights``, issue 21 item 2): an ``.npy`` table by id, or a GloVe text
file with the vocabulary, initialise the embedding when a model is built, on every backend; a table that does not
fit is named. The expected rows are the files' own numbers (written by the test), the rest the seeded draw of
``initial_weights``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import rnnspec
from rnnspec.data.tokenizer import DataError, Tokenizer
from rnnspec.lang.errors import SpecError

from .parity import backend_or_skip

VOCAB, DIM = 8, 3


def _write_spec(folder: Path, embedding: dict[str, Any]) -> Path:
    data = {
        "rnnspec": 1.2,
        "name": "pretrained",
        "input": {"vocab_size": VOCAB},
        "embedding": {"output_dim": DIM, "mask_zero": True, **embedding},
        "recurrent": [{"cell": "gru", "units": 2}],
        "head": {"units": 1, "activation": "sigmoid"},
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _table() -> np.ndarray:
    return np.arange(VOCAB * DIM, dtype=np.float32).reshape(VOCAB, DIM) / 10


def test_an_npy_table_initialises_every_backend(tmp_path: Path):
    np.save(tmp_path / "table.npy", _table().astype(np.float64))  # any float dtype, stored as float32
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "table.npy", "trainable": False}))
    x = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    outputs = {}
    for backend in ("numpy", "torch", "keras"):
        backend_or_skip(backend)
        model = rnnspec.build(spec, backend, seed=0)
        assert np.array_equal(rnnspec.get_weights(model)["embedding/embeddings"], _table())
        outputs[backend] = rnnspec.predict(model, x)
    ref = outputs.pop("numpy")
    assert all(np.abs(out - ref).max() <= 1e-5 for out in outputs.values())
    others = rnnspec.initial_weights(spec, seed=0)  # the other layers are drawn from the seed as always
    assert np.array_equal(
        rnnspec.get_weights(rnnspec.build(spec, "numpy", seed=0))["head/kernel"], others["head/kernel"]
    )


def test_a_relative_path_starts_from_the_spec_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "emb").mkdir()
    np.save(tmp_path / "emb" / "t.npy", _table())
    spec_path = _write_spec(tmp_path, {"weights": "emb/t.npy"})
    monkeypatch.chdir(tmp_path / "emb")  # not the spec's folder
    model = rnnspec.build(str(spec_path), "numpy", seed=0)
    assert np.array_equal(rnnspec.get_weights(model)["embedding/embeddings"], _table())


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((VOCAB + 1, DIM), f"shape ({VOCAB}, {DIM})"), ((VOCAB, DIM + 2), f"shape ({VOCAB}, {DIM})")],
)
def test_a_table_of_another_shape_is_named(tmp_path: Path, shape, expected):
    np.save(tmp_path / "t.npy", np.zeros(shape, np.float32))
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "t.npy"}))
    with pytest.raises(DataError) as info:
        rnnspec.build(spec, "numpy", seed=0)
    text = str(info.value)
    assert f"an array of shape {shape}" in text and expected in text and "embedding.weights" in text


def test_hostile_npy_files_are_refused_before_allocating(tmp_path: Path):
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "t.npy"}))
    header = np.lib.format.header_data_from_array_1_0(np.zeros((VOCAB, DIM), np.float32))
    with open(tmp_path / "t.npy", "wb") as fh:  # a header declaring the right shape over 4 bytes of data
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0\0\0\0")
    with pytest.raises(DataError, match="header does not match its data"):
        rnnspec.build(spec, "numpy", seed=0)
    (tmp_path / "t.npy").write_bytes(b"not an array")
    with pytest.raises(DataError, match=r"not a valid \.npy array"):
        rnnspec.build(spec, "numpy", seed=0)
    bad = _table()
    bad[5, 1] = np.nan
    np.save(tmp_path / "t.npy", bad)
    with pytest.raises(DataError, match="row 5"):
        rnnspec.build(spec, "numpy", seed=0)
    (tmp_path / "t.npy").unlink()
    with pytest.raises(DataError, match="does not exist"):
        rnnspec.build(spec, "numpy", seed=0)


def _glove(path: Path, rows: dict[str, list[float]]) -> None:
    path.write_text("".join(f"{w} {' '.join(str(v) for v in vec)}\n" for w, vec in rows.items()), encoding="utf-8")


GLOVE = {"the": [0.5, -1.0, 2.0], "cat": [1.5, 0.25, -0.5], "zebra": [9.0, 9.0, 9.0], "new york": [3.0, 2.0, 1.0]}


def test_a_glove_file_with_a_tokenizer_vocabulary(tmp_path: Path):
    """Ids 0 (padding) and 1 (out-of-vocabulary) and the words GloVe lacks keep the seeded rows; the note counts
    them."""
    _glove(tmp_path / "glove.txt", GLOVE)
    tok = Tokenizer("word", vocab_size=VOCAB).fit(["the cat sat", "the dog"])  # the=2, cat=3, sat=4, dog=5
    tok.save(tmp_path / "tokenizer.json")
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "glove.txt", "vocabulary": "tokenizer.json"}))
    with pytest.warns(UserWarning) as record:
        weights = rnnspec.get_weights(rnnspec.build(spec, "numpy", seed=0))["embedding/embeddings"]
    start = rnnspec.initial_weights(spec, seed=0)["embedding/embeddings"]
    assert np.array_equal(weights[2], np.float32(GLOVE["the"])) and np.array_equal(weights[3], np.float32(GLOVE["cat"]))
    kept = [0, 1, 4, 5, 6, 7]
    assert np.array_equal(weights[kept], start[kept])
    (note,) = [str(w.message) for w in record]
    assert note.startswith("embedding: 2 of 8 rows from glove.txt; 2 words not in it ('sat', 'dog')")
    assert "4 ids no word of the vocabulary has" in note and "uniform in ±0.05" in note


def test_a_word_index_vocabulary_and_a_word_with_spaces(tmp_path: Path):
    _glove(tmp_path / "glove.txt", GLOVE)
    (tmp_path / "vocab.json").write_text(json.dumps({"new york": 1, "zebra": 7, "the": 2, "cat": 3, "far": 99}))
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "glove.txt", "vocabulary": "vocab.json"}))
    with pytest.warns(UserWarning, match="4 of 8 rows"):
        weights = rnnspec.get_weights(rnnspec.build(spec, "numpy", seed=0))["embedding/embeddings"]
    assert np.array_equal(weights[1], np.float32(GLOVE["new york"]))
    assert np.array_equal(weights[7], np.float32(GLOVE["zebra"]))  # 'far' (id 99 >= vocab_size) is left out


def test_glove_mismatches_are_named(tmp_path: Path):
    (tmp_path / "vocab.json").write_text(json.dumps({"the": 2, "cat": 3}))
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "glove.txt", "vocabulary": "vocab.json"}))
    _glove(tmp_path / "glove.txt", {"the": [1.0, 2.0], "cat": [3.0, 4.0]})  # 2d vectors, output_dim 3
    with pytest.raises(DataError) as info:
        rnnspec.build(spec, "numpy", seed=0)
    assert "2 numbers after the word on line 1" in str(info.value) and "3 (embedding.output_dim)" in str(info.value)
    _glove(tmp_path / "glove.txt", {"dog": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="none of the vocabulary's words is in the GloVe file"):
        rnnspec.build(spec, "numpy", seed=0)
    (tmp_path / "glove.txt").write_text("the 1 2 x\n")
    with pytest.raises(DataError, match=r"line 1 .* not a number"):
        rnnspec.build(spec, "numpy", seed=0)
    (tmp_path / "glove.txt").write_bytes(b"the " + b"1 " * (1 << 20))
    with pytest.raises(DataError, match="longer than"):
        rnnspec.build(spec, "numpy", seed=0)
    (tmp_path / "vocab.json").write_text('["the", "cat"]')
    with pytest.raises(DataError, match="not a vocabulary"):
        rnnspec.build(spec, "numpy", seed=0)


@pytest.mark.parametrize(
    ("embedding", "message"),
    [
        ({"weights": "glove.txt"}, "needs the id of each word"),
        ({"weights": "t.npy", "vocabulary": "v.json"}, "vocabulary is read with a GloVe text file only"),
        ({"weights": "table.csv"}, "must be an .npy array or a GloVe text file"),
    ],
)
def test_the_spec_fields_are_checked(tmp_path: Path, embedding, message):
    with pytest.raises(SpecError, match=message):
        rnnspec.load_spec(_write_spec(tmp_path, embedding))


def test_given_weights_are_not_replaced(tmp_path: Path):
    """A model built from weights (a trained run, an artifact) never reads the table again."""
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "missing.npy"}))
    weights = rnnspec.initial_weights(spec, seed=1)
    model = rnnspec.build(spec, "numpy", weights=weights)
    assert np.array_equal(rnnspec.get_weights(model)["embedding/embeddings"], weights["embedding/embeddings"])


def test_a_keras_artifact_of_a_pretrained_spec_loads(tmp_path: Path):
    """The artifact's config is compared with its embedded spec without the table's file (it says how the weights
    started, not what the layer computes), and loading does not read the table again."""
    backend_or_skip("keras")
    np.save(tmp_path / "t.npy", _table())
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "t.npy"}))
    keras_backend = rnnspec.get_backend("keras")
    (path,) = keras_backend.save_artifact(rnnspec.build(spec, "keras", seed=0), tmp_path / "out")
    (tmp_path / "t.npy").unlink()
    loaded = keras_backend.load_artifact(path)
    assert np.array_equal(rnnspec.get_weights(loaded)["embedding/embeddings"], _table())


def test_the_spec_check_derives_keeps_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``rnnspec check`` trains a copy of the spec (dropout off, its own training section): the copy's relative
    table path still starts from the spec's folder."""
    from rnnspec.lang.loader import base_dir_of
    from rnnspec.runtime.check import _training_spec

    np.save(tmp_path / "t.npy", _table())
    spec = rnnspec.load_spec(_write_spec(tmp_path, {"weights": "t.npy"}))
    monkeypatch.chdir(Path(__file__).parent)
    derived = _training_spec(spec, None, 4, [])
    assert base_dir_of(derived) == base_dir_of(spec) == str(tmp_path.resolve())
    model = rnnspec.build(derived, "numpy", seed=0)
    assert np.array_equal(rnnspec.get_weights(model)["embedding/embeddings"], _table())
