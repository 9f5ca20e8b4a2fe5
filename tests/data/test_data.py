"""The data layer: padding, Keras dataset files, text files, the tokenizer, built-in data, load_data.

Reference behaviour comes from Keras itself where it exists (``keras.utils.pad_sequences``,
``keras.datasets.imdb/reuters.load_data`` run on the same files, Keras's legacy ``Tokenizer``), from the
seed's printed values (``builtin:hello``), or from an independent formula or learner (a naive Bayes
classifier for the generated tasks); never from this code's own output.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnspec import RnnspecError, spec_from_dict
from rnnspec.data import (
    BUILTINS,
    REUTERS_CLASSES,
    Dataset,
    check_dataset,
    hello_data,
    keras_dataset_path,
    load_data,
    load_keras_dataset,
    one_hot,
    pad_for_spec,
    pad_sequences,
    read_keras_npz,
    read_text_file,
    sentiment_data,
    topics_data,
)
from rnnspec.data.tokenizer import OOV_ID, PAD_ID, Tokenizer, split_words
from tests.conftest import REPO

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def make_spec(
    *,
    vocab_size: int | None = 50,
    features: int | None = None,
    seq_len: int | None = 12,
    return_sequences: bool = False,
    head: dict[str, Any] | None = None,
    loss: str | None = "binary_crossentropy",
    data: str | None = None,
):
    """A small valid spec: embedding for token ids, one SimpleRNN, an optional head and loss."""
    spec: dict[str, Any] = {"rnnspec": 1, "name": "t", "input": {}}
    if vocab_size is not None:
        spec["input"]["vocab_size"] = vocab_size
        spec["embedding"] = {"output_dim": 4}
    if features is not None:
        spec["input"]["features"] = features
    if seq_len is not None:
        spec["input"]["seq_len"] = seq_len
    spec["recurrent"] = [{"cell": "simple_rnn", "units": 5, "return_sequences": return_sequences}]
    if head is None and loss == "binary_crossentropy":
        head = {"units": 1, "activation": "sigmoid"}
    if head is not None:
        spec["head"] = head
    if loss is not None:
        spec["training"] = {"loss": loss}
        if data is not None:
            spec["training"]["data"] = data
    return spec_from_dict(spec)


def object_array(seqs: list[list[int]]) -> np.ndarray:
    """A 1-D object array of Python int lists, as Keras's dataset files hold (even for equal lengths)."""
    arr = np.empty(len(seqs), dtype=object)
    for i, seq in enumerate(seqs):
        arr[i] = seq
    return arr


def ragged(rng: np.random.Generator, n: int, *, low: int = 1, high: int = 40, max_len: int = 25) -> list[list[int]]:
    return [rng.integers(low, high, rng.integers(1, max_len)).tolist() for _ in range(n)]


def write_imdb(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=object_array(ragged(rng, 40)),
        y_train=rng.integers(0, 2, 40),
        x_test=object_array(ragged(rng, 30)),
        y_test=rng.integers(0, 2, 30),
    )
    return path


def write_reuters(path: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=object_array(ragged(rng, 57)), y=rng.integers(0, 46, 57))
    return path


def as_lists(x: Any) -> list[list[int]]:
    return [[int(w) for w in seq] for seq in x]


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


# --------------------------------------------------------------------------------------------------
# pad_sequences
# --------------------------------------------------------------------------------------------------


def test_pad_sequences_matches_keras_docstring_examples():
    # The examples printed in keras.utils.pad_sequences's documentation.
    seqs = [[1], [2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(pad_sequences(seqs), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    assert pad_sequences(seqs).dtype == np.int32


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 1, 4, 9, 30])
def test_pad_sequences_matches_keras(keras, padding, truncating, maxlen):
    rng = np.random.default_rng(hash((padding, truncating, maxlen)) % 2**32)
    for trial in range(5):
        seqs = [rng.integers(-50, 50, rng.integers(0, 15)).tolist() for _ in range(rng.integers(1, 12))]
        if trial == 0:
            seqs.append([])  # an empty sequence stays all padding
        kwargs = {"maxlen": maxlen, "padding": padding, "truncating": truncating}
        expected = keras.utils.pad_sequences(seqs, **kwargs)
        got = pad_sequences(seqs, **kwargs)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
        # other value and dtype, and numpy arrays as sequences
        expected = keras.utils.pad_sequences([np.array(s) for s in seqs], value=-1.5, dtype="float32", **kwargs)
        got = pad_sequences([np.array(s) for s in seqs], value=-1.5, dtype="float32", **kwargs)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_pad_sequences_of_vectors_matches_keras(keras, padding, truncating):
    rng = np.random.default_rng(3)
    seqs = [rng.normal(size=(int(rng.integers(1, 8)), 3)).tolist() for _ in range(6)]
    kwargs = {"maxlen": 5, "padding": padding, "truncating": truncating, "dtype": "float32"}
    np.testing.assert_array_equal(pad_sequences(seqs, **kwargs), keras.utils.pad_sequences(seqs, **kwargs))


def test_pad_sequences_errors():
    with pytest.raises(RnnspecError, match="unknown padding side"):
        pad_sequences([[1]], padding="middle")
    with pytest.raises(RnnspecError, match="unknown truncating side"):
        pad_sequences([[1]], truncating="both")
    with pytest.raises(RnnspecError, match="maxlen"):
        pad_sequences([[1]], maxlen=-1)
    with pytest.raises(RnnspecError, match="sequence 1 is not a sequence"):
        pad_sequences([[1], 5])
    with pytest.raises(RnnspecError, match="another shape"):
        pad_sequences([[[1, 2]], [[1, 2, 3]]])
    assert pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)
    assert pad_sequences([]).shape == (0, 0)


def test_one_hot():
    ids = np.array([[0, 2, 1]])
    np.testing.assert_array_equal(one_hot(ids, 3), np.eye(3)[ids])
    np.testing.assert_array_equal(one_hot(ids, 3, zero_pad=True)[0, 0], [0, 0, 0])
    with pytest.raises(RnnspecError, match=r"expected: ids in \[0, 2\)"):
        one_hot(ids, 2)


# --------------------------------------------------------------------------------------------------
# Keras dataset files
# --------------------------------------------------------------------------------------------------

IMDB_OPTIONS = [
    {},
    {"num_words": 20},
    {"num_words": 25, "skip_top": 6},
    {"maxlen": 12},
    {"maxlen": 15, "num_words": 30},
    {"start_char": None},
    {"oov_char": None, "num_words": 15},
    {"start_char": None, "index_from": 0},
    {"seed": 7, "start_char": 5, "oov_char": 3, "index_from": 6},
]
REUTERS_OPTIONS = [
    {},
    {"test_split": 0.3},
    {"num_words": 20, "maxlen": 15},
    {"seed": 1, "oov_char": None, "skip_top": 4},
    {"start_char": None, "test_split": 0.5},
]


@pytest.mark.parametrize("options", IMDB_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_imdb_matches_keras(keras, monkeypatch, tmp_path, options):
    import keras.src.datasets.imdb as keras_imdb

    path = write_imdb(tmp_path / "imdb.npz")
    # Keras 3.15 refuses a path as `path=` and would re-download a file whose hash differs from the
    # real imdb.npz; pointing its get_file at our file runs everything else of Keras's load_data as is.
    monkeypatch.setattr(keras_imdb, "get_file", lambda *args, **kwargs: str(path))
    (kx_train, ky_train), (kx_test, ky_test) = keras.datasets.imdb.load_data(**options)
    (x_train, y_train), (x_test, y_test) = load_keras_dataset("imdb", path, **options)
    assert x_train == as_lists(kx_train)
    assert x_test == as_lists(kx_test)
    np.testing.assert_array_equal(y_train, ky_train)
    np.testing.assert_array_equal(y_test, ky_test)


@pytest.mark.parametrize(
    "options", REUTERS_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_reuters_matches_keras(keras, monkeypatch, tmp_path, options):
    import keras.src.datasets.reuters as keras_reuters

    path = write_reuters(tmp_path / "reuters.npz")
    monkeypatch.setattr(keras_reuters, "get_file", lambda *args, **kwargs: str(path))
    (kx_train, ky_train), (kx_test, ky_test) = keras.datasets.reuters.load_data(**options)
    (x_train, y_train), (x_test, y_test) = load_keras_dataset("reuters", path, **options)
    assert x_train == as_lists(kx_train)
    assert x_test == as_lists(kx_test)
    np.testing.assert_array_equal(y_train, ky_train)
    np.testing.assert_array_equal(y_test, ky_test)


def test_reuters_class_names_match_keras(keras):
    assert tuple(keras.datasets.reuters.get_label_names()) == REUTERS_CLASSES


def test_load_data_on_a_keras_file_matches_keras_pipeline(keras, monkeypatch, tmp_path):
    """load_data = Keras's load_data(num_words=vocab_size) + Keras's pad_sequences(maxlen=seq_len)."""
    import keras.src.datasets.imdb as keras_imdb

    path = write_imdb(tmp_path / "imdb.npz")
    monkeypatch.setattr(keras_imdb, "get_file", lambda *args, **kwargs: str(path))
    spec = make_spec(vocab_size=30, seq_len=10)
    for split, index in (("train", 0), ("test", 1)):
        kx, ky = keras.datasets.imdb.load_data(num_words=30)[index]
        ds = load_data(spec, str(path), split=split)
        np.testing.assert_array_equal(ds.x, keras.utils.pad_sequences(kx, maxlen=10))
        np.testing.assert_array_equal(ds.y, ky)
        assert ds.classes == ("negative", "positive")
    assert len(load_data(spec, str(path), limit=5)) == 5


def test_keras_dataset_path(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    with pytest.raises(RnnspecError) as info:
        keras_dataset_path("imdb")
    text = str(info.value)
    assert str(tmp_path / "kh" / "datasets" / "imdb.npz") in text
    assert "never downloads" in text
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz" in text
    (tmp_path / "kh" / "datasets").mkdir(parents=True)
    write_imdb(tmp_path / "kh" / "datasets" / "imdb.npz")
    assert keras_dataset_path("imdb") == tmp_path / "kh" / "datasets" / "imdb.npz"
    # without KERAS_HOME: ~/.keras/datasets
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(RnnspecError, match=str(tmp_path / "home" / ".keras" / "datasets" / "reuters.npz")):
        keras_dataset_path("reuters")
    with pytest.raises(RnnspecError, match="unknown Keras dataset"):
        keras_dataset_path("mnist")
    with pytest.raises(RnnspecError, match="file not found"):
        keras_dataset_path("imdb", tmp_path / "nope.npz")


def test_keras_source_reads_the_cache(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    write_reuters(tmp_path / "datasets" / "reuters.npz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = make_spec(
        vocab_size=40, seq_len=8, head={"units": 46, "activation": "softmax"}, loss="sparse_categorical_crossentropy"
    )
    ds = load_data(spec, "keras:reuters", split="test")
    assert ds.x.shape == (57 - int(57 * 0.8), 8)
    assert ds.classes == REUTERS_CLASSES


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > marker",))


def test_keras_npz_refuses_code_in_pickles(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arr = object_array([[1, 2]])
    arr[0] = _Exploit()
    np.savez(tmp_path / "evil.npz", x=arr, y=np.array([0]))
    with pytest.raises(RnnspecError, match=r"refusing to load `posix\.system`"):
        read_keras_npz(tmp_path / "evil.npz")
    assert not (tmp_path / "marker").exists()


def test_keras_npz_structure_is_checked(tmp_path):
    (tmp_path / "text.npz").write_text("x,y\n")
    with pytest.raises(RnnspecError, match=r"not an \.npz"):
        read_keras_npz(tmp_path / "text.npz")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "extra.npz", x=object_array(ragged(rng, 3)), y=np.zeros(3, int), z=np.zeros(1))
    with pytest.raises(RnnspecError, match="unexpected arrays"):
        read_keras_npz(tmp_path / "extra.npz")
    with pytest.raises(RnnspecError, match="unexpected arrays"):
        read_keras_npz(write_reuters(tmp_path / "r.npz"), "imdb")
    np.savez(tmp_path / "strings.npz", x=object_array(["abc", "de"]), y=np.zeros(2, int))
    with pytest.raises(RnnspecError, match="sequence 0 is not a list of word ids"):
        read_keras_npz(tmp_path / "strings.npz")
    np.savez(tmp_path / "labels.npz", x=object_array([[1], [2]]), y=np.zeros(3, int))
    with pytest.raises(RnnspecError, match="labels do not match"):
        read_keras_npz(tmp_path / "labels.npz")
    # a pickled non-array object where an array belongs
    with open(tmp_path / "x.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        pickle.dump({"not": "an array"}, fh)
    import zipfile

    with zipfile.ZipFile(tmp_path / "dict.npz", "w") as archive:
        archive.write(tmp_path / "x.npy", "x.npy")
        buf = tmp_path / "y.npy"
        np.save(buf, np.zeros(1, int))
        archive.write(buf, "y.npy")
    with pytest.raises(RnnspecError, match="corrupt object array"):
        read_keras_npz(tmp_path / "dict.npz")


def test_keras_npz_written_by_numpy_1_loads(tmp_path, keras, monkeypatch):
    """Keras's real files predate NumPy 2: their pickles name ``numpy.core.multiarray``."""
    import warnings
    import zipfile

    import keras.src.datasets.reuters as keras_reuters

    rng = np.random.default_rng(5)
    seqs = ragged(rng, 9)
    stream = pickle.dumps(object_array(seqs), protocol=3)  # text GLOBAL opcodes: renamable
    assert b"numpy._core.multiarray" in stream
    stream = stream.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with zipfile.ZipFile(tmp_path / "reuters.npz", "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (9,)})
        archive.writestr("x.npy", header.getvalue() + stream)
        labels = io.BytesIO()
        np.save(labels, rng.integers(0, 46, 9))
        archive.writestr("y.npy", labels.getvalue())
    monkeypatch.setattr(keras_reuters, "get_file", lambda *args, **kwargs: str(tmp_path / "reuters.npz"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core is NumPy 2's deprecated alias
        _, arrays = read_keras_npz(tmp_path / "reuters.npz")
        assert arrays["x"] == seqs
        (kx, ky), _ = keras.datasets.reuters.load_data()
        (x, y), _ = load_keras_dataset("reuters", tmp_path / "reuters.npz")
    assert x == as_lists(kx)
    np.testing.assert_array_equal(y, ky)


def test_keras_options_are_checked(tmp_path):
    path = write_imdb(tmp_path / "imdb.npz")
    with pytest.raises(RnnspecError, match="test_split is for reuters"):
        load_keras_dataset("imdb", path, test_split=0.1)
    with pytest.raises(RnnspecError, match="no sequence is shorter than maxlen=1"):
        load_keras_dataset("imdb", path, maxlen=1)


# --------------------------------------------------------------------------------------------------
# text files
# --------------------------------------------------------------------------------------------------


def test_read_csv_tsv_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text('id,text,label\n1,"Hello, world",pos\n\n2,"two\nlines",neg\n', encoding="utf-8")
    rows = read_text_file(tmp_path / "a.csv")
    assert rows.texts == ["Hello, world", "two\nlines"]
    assert rows.labels == ["pos", "neg"]
    assert rows.lines == [2, 4]
    (tmp_path / "a.tsv").write_text("body\ty\nsome text\t3\n", encoding="utf-8")
    rows = read_text_file(tmp_path / "a.tsv", text_column="body", label_column="y")
    assert (rows.texts, rows.labels) == (["some text"], ["3"])
    (tmp_path / "a.jsonl").write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": true}\n', encoding="utf-8")
    rows = read_text_file(tmp_path / "a.jsonl")
    assert (rows.texts, rows.labels, rows.lines) == (["a", "b"], [1, 1], [1, 3])


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "where", "message"),
    [
        ("e.csv", "", {}, "e.csv:1", "the file is empty"),
        ("e.jsonl", "\n\n", {}, "e.jsonl:1", "the file is empty"),
        ("h.csv", "text,label\n", {}, "h.csv", "no data rows"),
        ("m.csv", "review,label\nx,1\n", {}, "m.csv:1", "no column 'text'"),
        ("m2.csv", "text,label\nx,1\n", {"label_column": "y"}, "m2.csv:1", "no column 'y'"),
        ("d.csv", "text,text,label\nx,y,1\n", {}, "d.csv:1", "column 'text' appears 2 times"),
        ("r.csv", 'text,label\n"a\nb",1\nc,1,extra\n', {}, "r.csv:4", "wrong number of fields"),
        ("l.csv", "text,label\nx,1\ny, \n", {}, "l.csv:3", "empty label"),
        ("j.jsonl", '{"text": "a", "label": 1}\n{"text": "b", label: 2}\n', {}, "j.jsonl:2:15", "invalid JSON"),
        ("k.jsonl", '{"text": "a", "label": 1}\n{"txt": "b", "label": 2}\n', {}, "k.jsonl:2", "no key 'text'"),
        ("o.jsonl", '["a", 1]\n', {}, "o.jsonl:1", "must be a JSON object"),
        ("f.jsonl", '{"text": "a", "label": null}\n', {}, "f.jsonl:1", "bad label"),
        ("t.jsonl", '{"text": 5, "label": 1}\n', {}, "t.jsonl:1", "must be a string"),
        ("x.txt", "text,label\n", {}, "x.txt", "unknown text file format"),
    ],
)
def test_text_file_errors_are_located(tmp_path, name, content, kwargs, where, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(RnnspecError) as info:
        read_text_file(tmp_path / name, **kwargs)
    text = str(info.value)
    assert text.startswith(f"{tmp_path / where}: "), text
    assert message in text


def test_text_file_not_utf8_or_missing(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"text,label\n\xff\xfe,1\n")
    with pytest.raises(RnnspecError, match="not UTF-8"):
        read_text_file(tmp_path / "b.csv")
    with pytest.raises(RnnspecError, match="data file not found"):
        read_text_file(tmp_path / "none.csv")


# --------------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------------

_KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def random_corpus(rng: np.random.Generator, n: int) -> list[str]:
    """Texts on which Keras's default splitting and rnnspec's agree: words of letters/digits (some with an
    inner apostrophe), separated by spaces and Keras's filter characters, mixed case."""
    words = ["Cat", "dog", "the", "A", "x1", "don't", "42", "ok", "it's", "Zebra", "b", "cafe"]
    weights = np.linspace(3, 1, len(words))
    texts = []
    for _ in range(n):
        parts = []
        for word in rng.choice(words, size=int(rng.integers(0, 12)), p=weights / weights.sum()):
            sep = " " if rng.random() < 0.6 else str(rng.choice(list(_KERAS_FILTERS + " ")))
            parts.append(str(word) + sep)
        texts.append("".join(parts))
    return texts


@pytest.mark.parametrize("vocab_size", [None, 3, 6, 9, 50])
def test_word_tokenizer_matches_keras_tokenizer(keras, vocab_size):
    from keras.src.legacy.preprocessing.text import Tokenizer as KerasTokenizer

    rng = np.random.default_rng(vocab_size or 0)
    train, test = random_corpus(rng, 60), [*random_corpus(rng, 20), "unseen words here"]
    reference = KerasTokenizer(num_words=vocab_size, oov_token="<oov>")
    reference.fit_on_texts(train)
    ours = Tokenizer("word", vocab_size=vocab_size).fit(train)
    assert ours.encode(test) == reference.texts_to_sequences(test)
    assert ours.encode(train) == reference.texts_to_sequences(train)
    assert max(max(s, default=0) for s in ours.encode(train)) < (vocab_size or 10**9)


def test_char_tokenizer_matches_keras_tokenizer(keras):
    from keras.src.legacy.preprocessing.text import Tokenizer as KerasTokenizer

    train = ["hello! world", "Hello again, World.", "abc"]
    test = ["hello? XYZ", "world"]
    for size in (None, 8):
        reference = KerasTokenizer(num_words=size, char_level=True, lower=False, oov_token="<oov>")
        reference.fit_on_texts(train)
        ours = Tokenizer("char", vocab_size=size).fit(train)
        assert ours.encode(test) == reference.texts_to_sequences(test)


def test_word_splitting_rules():
    # letters and digits (any script), inner apostrophes kept, everything else separates
    assert split_words("Don't STOP—café's “quote” 3.14 ünïcode_x 'tis") == [
        "don't",
        "stop",
        "café's",
        "quote",
        "3",
        "14",
        "ünïcode",
        "x",
        "tis",
    ]
    assert split_words("ABC", lower=False) == ["ABC"]


def test_tokenizer_ids_decode_and_ties():
    tok = Tokenizer("word", vocab_size=5).fit(["b a", "a c", "d b"])
    # counts: b 2, a 2, c 1, d 1 -> ties in order of first occurrence; capped at 5 - 2 = 3 tokens
    assert tok.tokens == ["b", "a", "c"]
    assert tok.word_index == {"b": 2, "a": 3, "c": 4}
    assert tok.encode(["a d z"]) == [[3, OOV_ID, OOV_ID]]
    assert tok.decode([[PAD_ID, 3, 1, 4]]) == ["a <oov> c"]
    assert Tokenizer("char").fit(["aab"]).decode([[2, 3, 0]]) == ["ab"]
    with pytest.raises(RnnspecError, match="out of range"):
        tok.decode_one([9])


def test_tokenizer_user_errors():
    with pytest.raises(RnnspecError, match="no vocabulary yet"):
        Tokenizer().encode(["a"])
    with pytest.raises(RnnspecError, match="got one string"):
        Tokenizer().fit("a text")
    with pytest.raises(RnnspecError, match="unknown tokenizer level"):
        Tokenizer("sentence")  # type: ignore[arg-type]
    with pytest.raises(RnnspecError, match="vocab_size >= 2"):
        Tokenizer(vocab_size=1)
    with pytest.raises(RnnspecError, match="must be a string"):
        Tokenizer().fit([b"bytes"])  # type: ignore[list-item]


def test_tokenizer_json_round_trip(tmp_path):
    tok = Tokenizer("word", vocab_size=10).fit(["Ünïcode words, words", "more words"])
    tok.classes = ("neg", "pos")
    again = Tokenizer.from_json(tok.to_json())
    assert again == tok
    assert again.encode(["words more x"]) == tok.encode(["words more x"])
    tok.save(tmp_path / "sub" / "tok.json")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["tok.json"]  # no temporary left
    loaded = Tokenizer.load(tmp_path / "sub" / "tok.json")
    assert loaded == tok and loaded.classes == ("neg", "pos")
    assert json.loads((tmp_path / "sub" / "tok.json").read_text(encoding="utf-8"))["tokens"][0] == "words"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "field `format`"),
        ({"version": 2}, "field `version`"),
        ({"level": "byte"}, "field `level`"),
        ({"tokens": ["a", "a"]}, "field `tokens`"),
        ({"vocab_size": 3}, "at most vocab_size - 2 = 1 tokens"),
        ({"classes": [1, 2]}, "field `classes`"),
        ({"extra": 1}, "field `keys`"),
    ],
)
def test_tokenizer_json_is_validated(tmp_path, change, message):
    data = Tokenizer("word").fit(["a b"]).to_dict()
    data.update(change)
    (tmp_path / "t.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RnnspecError, match=message) as info:
        Tokenizer.load(tmp_path / "t.json")
    assert str(info.value).startswith(str(tmp_path / "t.json"))
    (tmp_path / "bad.json").write_text("{\n  nope", encoding="utf-8")
    with pytest.raises(RnnspecError, match=r"bad.json:2:3: a tokenizer file is not valid JSON"):
        Tokenizer.load(tmp_path / "bad.json")
    with pytest.raises(RnnspecError, match="tokenizer file not found"):
        Tokenizer.load(tmp_path / "missing.json")


# --------------------------------------------------------------------------------------------------
# text files through load_data
# --------------------------------------------------------------------------------------------------


def test_load_data_from_csv_and_reuse_tokenizer(tmp_path):
    (tmp_path / "train.csv").write_text(
        'text,label\n"A great, great film",pos\nawful film,neg\nGreat acting!,pos\nmeh,neutral\n', encoding="utf-8"
    )
    (tmp_path / "test.jsonl").write_text(
        '{"text": "great unknownword film", "label": "neg"}\n{"text": "x", "label": "sad"}\n', encoding="utf-8"
    )
    spec = make_spec(
        vocab_size=6,
        seq_len=4,
        head={"units": 3, "activation": "softmax"},
        loss="sparse_categorical_crossentropy",
        data="train.csv",
    )
    train = load_data(spec, base_dir=tmp_path)
    tok = train.tokenizer
    assert tok is not None and tok.tokens == ["great", "film", "a", "awful"]  # great 3, film 2, then first seen
    np.testing.assert_array_equal(train.x, [[4, 2, 2, 3], [0, 0, 5, 3], [0, 0, 2, 1], [0, 0, 0, 1]])
    assert train.classes == ("neg", "neutral", "pos") and tok.classes == train.classes
    np.testing.assert_array_equal(train.y, [2, 0, 2, 1])
    tok.save(tmp_path / "tok.json")
    with pytest.raises(RnnspecError) as info:
        load_data(spec, tmp_path / "test.jsonl", split="test", tokenizer=Tokenizer.load(tmp_path / "tok.json"))
    assert str(info.value).startswith(f"{tmp_path / 'test.jsonl'}:2: unknown label 'sad'")
    test = load_data(spec, tmp_path / "test.jsonl", split="test", tokenizer=tok, limit=1)
    np.testing.assert_array_equal(test.x, [[0, 2, 1, 3]])
    np.testing.assert_array_equal(test.y, [0])
    assert test.text_of(test.x[0]) == "great <oov> film"


def test_load_data_text_labels_and_ranges(tmp_path):
    (tmp_path / "ints.tsv").write_text("text\tlabel\nab\t0\ncd\t1\nef\t+1\n", encoding="utf-8")
    ds = load_data(make_spec(), tmp_path / "ints.tsv")
    np.testing.assert_array_equal(ds.y, [0, 1, 1])
    assert ds.classes is None
    (tmp_path / "three.tsv").write_text("text\tlabel\nab\t0\ncd\t2\n", encoding="utf-8")
    with pytest.raises(RnnspecError) as info:
        load_data(make_spec(), tmp_path / "three.tsv")
    text = str(info.value)
    assert "does not fit a binary" in text and "units: 3, activation: softmax" in text
    spec3 = make_spec(head={"units": 2, "activation": "softmax"}, loss="sparse_categorical_crossentropy")
    with pytest.raises(RnnspecError, match=r"labels in \[0, 2\] \(3 classes\)[\s\S]*units: 3"):
        load_data(spec3, tmp_path / "three.tsv")
    (tmp_path / "mixed.jsonl").write_text('{"text": "a", "label": "pos"}\n{"text": "b", "label": 1}\n')
    with pytest.raises(RnnspecError, match=r"mixed.jsonl:2: labels mix integers and class names"):
        load_data(make_spec(), tmp_path / "mixed.jsonl")


def test_load_data_text_for_a_features_spec_is_char_one_hot(tmp_path):
    (tmp_path / "c.csv").write_text("text,label\naab,0\nbc,1\n", encoding="utf-8")
    ds = load_data(make_spec(vocab_size=None, features=5, seq_len=3), tmp_path / "c.csv")
    assert ds.tokenizer is not None and ds.tokenizer.level == "char"
    ids = [[2, 2, 3], [0, 3, 4]]  # a 2x, b 2x, c 1x; "bc" pre-padded
    expected = np.eye(5, dtype=np.float32)[ids]
    expected[1, 0] = 0  # padding is an all-zero vector
    np.testing.assert_array_equal(ds.x, expected)


# --------------------------------------------------------------------------------------------------
# built-in data
# --------------------------------------------------------------------------------------------------


def test_builtin_hello_is_the_seed_task():
    spec = spec_from_dict(_yaml(REPO / "specs" / "char_rnn_hello.yaml"))
    ds = load_data(spec)  # the spec's training.data is builtin:hello
    assert ds.x.shape == (1, 12, 9) and ds.x.dtype == np.float32
    assert ds.y.shape == (1, 12)
    # The seed printed its dictionary and ids (list(set(...)) order); map both to characters.
    seed_set = ["!", "l", "d", "e", "o", "r", "w", "h", " "]
    seed_idx = [7, 3, 1, 1, 4, 0, 8, 6, 4, 5, 1, 2]
    assert "".join(seed_set[i] for i in seed_idx) == "hello! world"
    assert ds.alphabet == tuple(sorted(seed_set))
    assert ds.text_of(ds.y[0]) == "hello! world"
    # inputs are the one-hot of the targets (the seed's y_data is its x_data's ids)
    np.testing.assert_array_equal(ds.x[0], np.eye(9)[ds.y[0]])
    np.testing.assert_array_equal(ds.x[0].argmax(axis=1), ds.y[0])
    seed_one_hot = np.eye(9)[seed_idx]  # the seed's own x, up to its alphabet order
    permutation = [seed_set.index(c) for c in ds.alphabet]
    np.testing.assert_array_equal(seed_one_hot[:, permutation], ds.x[0])
    _, y, alphabet = hello_data("abca")
    assert alphabet == ("a", "b", "c") and y.tolist() == [[0, 1, 2, 0]]


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _naive_bayes_accuracy(x_train, y_train, x_test, y_test, vocab_size: int, classes: int) -> float:
    """An independent learner: multinomial naive Bayes on word counts (padding and start mark ignored)."""

    def counts(x):
        out = np.zeros((len(x), vocab_size))
        np.add.at(out, (np.repeat(np.arange(len(x)), x.shape[1]), x.ravel()), 1.0)
        out[:, :2] = 0
        return out

    a, b = counts(x_train), counts(x_test)
    per_class = np.stack([a[y_train == c].sum(0) for c in range(classes)]) + 1.0
    log_p = np.log(per_class / per_class.sum(1, keepdims=True))
    prior = np.log(np.bincount(y_train, minlength=classes) + 1.0)
    return float(((b @ log_p.T + prior).argmax(1) == y_test).mean())


def test_builtin_sentiment_shape_and_learnability():
    spec = make_spec(vocab_size=1000, seq_len=100)
    train, test = load_data(spec, "builtin:sentiment"), load_data(spec, "builtin:sentiment", split="test")
    assert train.x.shape == (1024, 100) and train.x.dtype == np.int32 and train.y.shape == (1024,)
    assert test.x.shape == (256, 100)
    assert train.x.min() == 0 and train.x.max() < 1000
    lengths = (train.x != 0).sum(1)
    assert lengths.min() < 50 < lengths.max() <= 100  # variable lengths
    # pre-padded: zeros only before the first token, and every sequence starts with the start mark 1
    first = 100 - lengths
    assert all(
        (row[:f] == 0).all() and row[f] == 1 and (row[f + 1 :] >= 3).all()
        for row, f in zip(train.x, first, strict=True)
    )
    assert 0.4 < train.y.mean() < 0.6
    acc = _naive_bayes_accuracy(train.x, train.y, test.x, test.y, 1000, 2)
    assert acc > 0.85, acc
    again = load_data(spec, "builtin:sentiment")
    np.testing.assert_array_equal(again.x, train.x)
    np.testing.assert_array_equal(again.y, train.y)
    other = load_data(spec, "builtin:sentiment", seed=1)
    assert not np.array_equal(other.x, train.x)
    assert not np.array_equal(test.x[:10], train.x[:10])
    assert len(load_data(spec, "builtin:sentiment", limit=7)) == 7


def test_builtin_sentiment_on_a_features_spec_is_one_hot():
    ds = load_data(make_spec(vocab_size=None, features=20, seq_len=15), "builtin:sentiment", limit=50)
    ids, _ = sentiment_data(1024, vocab_size=20, seq_len=15)
    expected = np.eye(20, dtype=np.float32)[ids[:50]]
    expected[ids[:50] == 0] = 0
    np.testing.assert_array_equal(ds.x, expected)


def test_builtin_topics():
    spec = make_spec(
        vocab_size=2000,
        seq_len=80,
        head={"units": 46, "activation": "softmax"},
        loss="sparse_categorical_crossentropy",
    )
    train, test = load_data(spec, "builtin:topics"), load_data(spec, "builtin:topics", split="test")
    assert train.x.shape == (2048, 80) and train.y.min() == 0 and train.y.max() == 45
    assert _naive_bayes_accuracy(train.x, train.y, test.x, test.y, 2000, 46) > 0.7
    # the number of classes follows the head
    spec5 = make_spec(head={"units": 5, "activation": "softmax"}, loss="categorical_crossentropy")
    assert set(load_data(spec5, "builtin:topics").y.tolist()) == set(range(5))
    x, y = topics_data(10, num_classes=3, vocab_size=50, seq_len=10, seed=4)
    assert x.shape == (10, 10) and set(y.tolist()) <= {0, 1, 2}


def test_builtin_errors():
    with pytest.raises(RnnspecError) as info:
        load_data(make_spec(), "builtin:mnist")
    assert all(f"builtin:{name}" in str(info.value) for name in BUILTINS)
    with pytest.raises(RnnspecError, match="one-hot characters, but the spec's input is token ids"):
        load_data(make_spec(), "builtin:hello")
    with pytest.raises(RnnspecError, match=r"received: 9 features per step[\s\S]*input.features: 9"):
        load_data(
            make_spec(vocab_size=None, features=4, seq_len=None, return_sequences=True, loss=None), "builtin:hello"
        )
    with pytest.raises(RnnspecError, match=r"one label per sequence[\s\S]*return_sequences: false"):
        load_data(make_spec(return_sequences=True, loss=None), "builtin:sentiment")
    with pytest.raises(RnnspecError, match=r"per step[\s\S]*return_sequences: true"):
        load_data(make_spec(vocab_size=None, features=9, seq_len=None, head={"units": 9}, loss=None), "builtin:hello")
    with pytest.raises(RnnspecError, match=r"input\.seq_len: 5"):
        load_data(make_spec(vocab_size=None, features=9, seq_len=5, return_sequences=True, loss=None), "builtin:hello")
    with pytest.raises(RnnspecError, match="vocab_size is too small"):
        sentiment_data(10, vocab_size=5)


# --------------------------------------------------------------------------------------------------
# load_data: sources and checks
# --------------------------------------------------------------------------------------------------


def test_load_data_source_errors(tmp_path):
    with pytest.raises(RnnspecError, match="no data source for spec 't'"):
        load_data(make_spec())
    with pytest.raises(RnnspecError, match=r"missing.csv: data file not found[\s\S]*spec's folder"):
        load_data(make_spec(), "missing.csv", base_dir=tmp_path)
    (tmp_path / "d.parquet").write_bytes(b"")
    with pytest.raises(RnnspecError, match="unknown kind of data file"):
        load_data(make_spec(), tmp_path / "d.parquet")
    with pytest.raises(RnnspecError, match="unknown split"):
        load_data(make_spec(), "builtin:sentiment", split="validation")  # type: ignore[arg-type]
    with pytest.raises(RnnspecError, match="limit must be a positive integer"):
        load_data(make_spec(), "builtin:sentiment", limit=0)
    with pytest.raises(RnnspecError, match="unknown Keras dataset"):
        load_data(make_spec(), "keras:cifar10")


def test_check_dataset_reports_what_and_fix():
    spec = make_spec(vocab_size=10, seq_len=3)
    with pytest.raises(RnnspecError) as info:
        check_dataset(spec, Dataset(np.array([[0, 1, 12]]), np.array([1]), "mine", "train"))
    text = str(info.value)
    assert "token id 12 does not fit the spec's input.vocab_size" in text
    assert "sample 0, step 2" in text and "expected: ids in [0, 10)" in text and "input.vocab_size: 13" in text
    with pytest.raises(RnnspecError, match="not token ids"):
        check_dataset(spec, Dataset(np.zeros((1, 3, 2)), np.array([1]), "mine", "train"))
    with pytest.raises(RnnspecError, match="do not pair up"):
        check_dataset(spec, Dataset(np.zeros((2, 3), int), np.array([1]), "mine", "train"))
    check_dataset(spec, Dataset(np.zeros((2, 3), int), np.array([1, 0]), "mine", "train"))


def test_pad_for_spec():
    seqs = [[1, 2, 3, 4, 5], [6]]
    np.testing.assert_array_equal(pad_for_spec(seqs, make_spec(seq_len=3)), [[3, 4, 5], [0, 0, 6]])
    np.testing.assert_array_equal(pad_for_spec(seqs, make_spec(seq_len=None)), [[1, 2, 3, 4, 5], [0, 0, 0, 0, 6]])


def test_data_modules_import_no_framework():
    code = (
        "import sys, rnnspec.data, rnnspec.data.tokenizer\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'torch', 'jax')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
