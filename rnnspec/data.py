"""The data layer: turn a data source into arrays shaped for a spec, without any framework.

One entry point, :func:`load_data`, reads what ``rnnspec train`` (and evaluation, prediction) needs:

* ``builtin:NAME`` -- generated data, no file: ``hello`` (seed 004's "hello! world" character task),
  ``sentiment`` (an IMDB-shaped binary task that a model can learn), ``topics`` (a Reuters-shaped
  multi-class task);
* ``keras:imdb`` / ``keras:reuters`` -- Keras's cached dataset files, found like Keras finds them;
* a ``.npz`` path -- a Keras ``imdb.npz`` or ``reuters.npz`` file (recognised by its keys);
* a ``.csv`` / ``.tsv`` / ``.jsonl`` path -- a text column and a label column, tokenized with a
  :class:`~rnnspec.tokenizer.Tokenizer` that is returned for reuse at evaluation and prediction.

The result, a :class:`Dataset`, is checked against the spec (token ids ``< vocab_size``, feature size,
sequence length, per-step or per-sample labels, label range against the head) and every mismatch is a
:class:`DataError` that says what was received, what was expected and how to fix it.

Keras's ``.npz`` files store ragged sequences as pickled object arrays. Loading them never calls
``np.load(allow_pickle=True)``: the pickle stream is read by an unpickler that can build nothing but
NumPy arrays (the same guard Keras 3.15 itself uses), after checking that the file is a zip archive with
exactly the expected members and a bounded size, and every array is then checked for the expected
structure (lists of non-negative Python ints, integer labels). A hostile file can still cost memory and
time up to its size limit; it cannot run code. Files are never downloaded.

Only NumPy and the standard library are imported here (rnnspec's core is framework-free).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .tokenizer import OOV_ID, PAD_ID, DataError, Tokenizer

if TYPE_CHECKING:
    from .spec import ModelSpec

__all__ = [
    "BUILTINS",
    "HELLO_TEXT",
    "IMDB_CLASSES",
    "KERAS_DATASETS",
    "MAX_NPZ_BYTES",
    "MAX_ONE_HOT_BYTES",
    "OOV_ID",
    "PAD_ID",
    "REUTERS_CLASSES",
    "TEXT_SUFFIXES",
    "DataError",
    "Dataset",
    "TextRows",
    "Tokenizer",
    "check_dataset",
    "hello_data",
    "keras_dataset_path",
    "load_data",
    "load_keras_dataset",
    "one_hot",
    "pad_for_spec",
    "pad_sequences",
    "read_keras_npz",
    "read_text_file",
    "sentiment_data",
    "topics_data",
]

Split = Literal["train", "test"]
KerasSplits = tuple[tuple[list[list[int]], np.ndarray], tuple[list[list[int]], np.ndarray]]
"""``((x_train, y_train), (x_test, y_test))``: sequences as int lists, labels as int64 arrays."""

BUILTINS: dict[str, str] = {
    "hello": 'seed 004: the string "hello! world" as one-hot characters (1, 12, 9) and per-step character ids '
    "(1, 12); needs `input.features: 9` and a last recurrent layer with `return_sequences: true`",
    "sentiment": "an IMDB-shaped binary task: token ids, variable lengths pre-padded to seq_len, label 1 when "
    '"positive" tokens outnumber "negative" ones (5% label noise)',
    "topics": "a Reuters-shaped multi-class task (46 classes unless the head says otherwise): the label is the "
    "class whose keywords occur most (5% label noise)",
}
"""Names accepted after ``builtin:``, with what they generate."""

HELLO_TEXT = "hello! world"

KERAS_DATASETS: dict[str, tuple[str, ...]] = {
    "imdb": ("x_train", "y_train", "x_test", "y_test"),
    "reuters": ("x", "y"),
}
"""The Keras dataset files rnnspec reads, with the arrays each must hold (and nothing else)."""

_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_KERAS_SHA256 = {  # the hashes keras.datasets.*.load_data checks after downloading
    "imdb": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    "reuters": "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
}

IMDB_CLASSES: tuple[str, ...] = ("negative", "positive")
REUTERS_CLASSES: tuple[str, ...] = (  # keras.datasets.reuters.get_label_names(), in label order
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee",
    "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx",
    "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail",
    "ipi", "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem",
    "dlr", "gas", "silver", "wpi", "hog", "lead",
)  # fmt: skip

MAX_NPZ_BYTES = 2**31
"""Largest total uncompressed size of a Keras ``.npz`` accepted (the real imdb.npz is far below)."""
MAX_ONE_HOT_BYTES = 2**31
"""Largest one-hot array built for a ``features`` spec; beyond it, use ``vocab_size`` and an embedding."""

TEXT_SUFFIXES: dict[str, str] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
"""File suffixes read as text tables, and their format."""

_SIDES = ("pre", "post")
_START_ID = 1  # like Keras's start_char: generated sequences begin with it
_FIRST_WORD_ID = 3  # like Keras's index_from: 0 padding, 1 start, 2 out-of-vocabulary
_DEFAULT_SEQ_LEN = 100
_SIZES = {"sentiment": {"train": 1024, "test": 256}, "topics": {"train": 2048, "test": 512}}


# ---------------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and labels shaped for one spec, plus what is needed to read predictions back as text.

    ``x``: int32 ids ``(n, seq_len)`` for ``vocab_size`` specs, float32 ``(n, T, features)`` for
    ``features`` specs. ``y``: int64 labels ``(n,)``, or ``(n, T)`` for per-step models.
    """

    x: np.ndarray
    y: np.ndarray
    source: str
    """The data source as given (``builtin:hello``, a path...)."""
    split: str
    """``train`` or ``test``."""
    tokenizer: Tokenizer | None = None
    """The tokenizer of text data: save it with the model, pass it back for evaluation and prediction."""
    alphabet: tuple[str, ...] | None = None
    """Characters of a character task in class order (``builtin:hello``): class ``i`` is ``alphabet[i]``."""
    classes: tuple[str, ...] | None = None
    """Names of the label ids, when known (string labels, IMDB, Reuters)."""

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def text_of(self, ids: Iterable[int]) -> str:
        """Text of a sequence of ids: characters of the alphabet, or the tokenizer's tokens."""
        values = [int(i) for i in np.asarray(ids).ravel()]
        if self.alphabet is not None:
            if any(not 0 <= i < len(self.alphabet) for i in values):
                raise DataError(
                    "character id out of range",
                    received=str(values),
                    expected=f"ids in [0, {len(self.alphabet)})",
                )
            return "".join(self.alphabet[i] for i in values)
        if self.tokenizer is not None:
            return self.tokenizer.decode_one(values)
        raise DataError(
            f"{self.source} has no alphabet or tokenizer to turn ids into text",
            fix="text is available for builtin:hello and text files (CSV, TSV, JSONL)",
        )

    def class_name(self, label: int) -> str:
        """Name of a label id (the id itself as text when the classes have no names)."""
        if self.classes is not None and 0 <= int(label) < len(self.classes):
            return self.classes[int(label)]
        return str(int(label))


# ---------------------------------------------------------------------------------------------------
# Padding and one-hot
# ---------------------------------------------------------------------------------------------------


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    *,
    padding: str = "pre",
    truncating: str = "pre",
    value: float = 0,
    dtype: Any = "int32",
) -> np.ndarray:
    """Pad (and truncate) sequences to one length, with exactly ``keras.utils.pad_sequences``'s semantics.

    ``maxlen=None`` pads to the longest sequence. ``"pre"`` (the default, as in Keras) pads and
    truncates at the start, so the last steps -- the ones a recurrent layer sees last -- are kept.
    Items may be scalars or vectors (all of one shape). Returns ``(len(sequences), maxlen, ...)``.
    Unlike Keras, ``maxlen=0`` gives an empty ``(n, 0)`` array, and the options after ``maxlen``
    are keyword-only (Keras's positional order is ``dtype, padding, truncating, value``).
    """
    for name, side in (("padding", padding), ("truncating", truncating)):
        if side not in _SIDES:
            raise DataError(f"unknown {name} side", received=repr(side), expected="'pre' or 'post'")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0):
        raise DataError("maxlen must be a non-negative integer or None", received=repr(maxlen))
    if not hasattr(sequences, "__len__"):
        raise DataError("sequences must be a list of sequences", received=type(sequences).__name__)
    lengths, sample_shape = _lengths_and_item_shape(sequences)
    width = max(lengths, default=0) if maxlen is None else int(maxlen)
    try:
        out = np.full((len(lengths), width, *sample_shape), value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError("cannot fill the padded array", received=f"value={value!r}, dtype={dtype!r}: {exc}") from None
    if width == 0:
        return out
    for i, seq in enumerate(sequences):
        if not len(seq):
            continue
        kept = np.asarray(seq[-width:] if truncating == "pre" else seq[:width], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise DataError(
                f"sequence {i} has items of another shape",
                received=f"items of shape {kept.shape[1:]}",
                expected=f"items of shape {sample_shape} (the first non-empty sequence's)",
            )
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, -len(kept) :] = kept
    return out


def _lengths_and_item_shape(sequences: Sequence[Any]) -> tuple[list[int], tuple[int, ...]]:
    """Length of every sequence, and the shape of one item (from the first non-empty sequence)."""
    lengths: list[int] = []
    shape: tuple[int, ...] | None = None
    for i, seq in enumerate(sequences):
        try:
            lengths.append(len(seq))
        except TypeError:
            raise DataError(f"sequence {i} is not a sequence", received=f"{type(seq).__name__}: {seq!r:.60}") from None
        if shape is None and len(seq):
            shape = np.asarray(seq).shape[1:]
    return lengths, shape or ()


def pad_for_spec(sequences: Sequence[Sequence[int]], spec: ModelSpec) -> np.ndarray:
    """Pre-pad and pre-truncate id sequences to the spec's ``input.seq_len`` (the longest when it has none)."""
    return pad_sequences(sequences, spec.input.seq_len)


def one_hot(ids: Any, depth: int, *, zero_pad: bool = False, dtype: Any = "float32") -> np.ndarray:
    """One-hot vectors of integer ids: shape ``ids.shape + (depth,)``.

    ``zero_pad=True`` maps id 0 (padding) to an all-zero vector, as a padded one-hot input should be.
    """
    arr = np.asarray(ids)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataError("one-hot needs integer ids", received=f"dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= depth):
        raise DataError(
            "id out of range for the one-hot size",
            received=f"ids in [{arr.min()}, {arr.max()}]",
            expected=f"ids in [0, {depth})",
        )
    nbytes = arr.size * depth * np.dtype(dtype).itemsize
    if nbytes > MAX_ONE_HOT_BYTES:
        raise DataError(
            "the one-hot inputs would be too large",
            received=f"{arr.shape} ids x {depth} features = {nbytes / 2**30:.1f} GiB",
            expected=f"at most {MAX_ONE_HOT_BYTES / 2**30:.0f} GiB",
            fix="use `input.vocab_size` with an `embedding` instead of `input.features`, or pass a smaller limit",
        )
    out = np.zeros((*arr.shape, depth), dtype=dtype)
    if arr.size:
        np.put_along_axis(out, arr[..., None].astype(np.intp), 1, axis=-1)
    if zero_pad:
        out[..., PAD_ID] = 0
    return out


# ---------------------------------------------------------------------------------------------------
# Keras dataset files (imdb.npz, reuters.npz)
# ---------------------------------------------------------------------------------------------------

_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # files written with NumPy < 2
        ("numpy._core.multiarray", "_reconstruct"),  # files written with NumPy >= 2
    }
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles object arrays of plain Python values; refuses every global but NumPy's array rebuilders."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load `{module}.{name}`: only NumPy arrays are allowed")


def keras_dataset_path(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Where a Keras dataset file is: ``path`` if given, else ``$KERAS_HOME/datasets/NAME.npz``
    (``~/.keras/datasets/NAME.npz`` without ``KERAS_HOME``). Raises :class:`DataError` when absent.

    Keras falls back to ``/tmp/.keras`` when the home directory is not writable; rnnspec does not look
    there, since anyone can put a file in ``/tmp``.
    """
    _check_keras_name(name)
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(
                f"Keras {name} file not found",
                where=str(path),
                expected=f"the {name}.npz that Keras downloads from {_KERAS_ORIGIN}{name}.npz",
                fix="check the path",
            )
        return file
    home = Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()
    file = home / "datasets" / f"{name}.npz"
    if not file.is_file():
        raise DataError(
            f"Keras's {name} dataset is not on this machine, and rnnspec never downloads data",
            received=f"no file at {file}",
            expected=f"{name}.npz from {_KERAS_ORIGIN}{name}.npz (sha256 {_KERAS_SHA256[name]})",
            fix=f"put that file at {file} (running `keras.datasets.{name}.load_data()` once on a machine with "
            f"internet caches it there), or pass its path as the data source",
        )
    return file


def _check_keras_name(name: str) -> None:
    if name not in KERAS_DATASETS:
        raise DataError(
            "unknown Keras dataset",
            received=repr(name),
            expected=" or ".join(repr(n) for n in KERAS_DATASETS),
        )


def read_keras_npz(path: str | os.PathLike[str], name: str | None = None) -> tuple[str, dict[str, Any]]:
    """Read a Keras ``imdb.npz`` / ``reuters.npz`` safely; returns ``(name, arrays)``.

    ``name`` None recognises the dataset by its members. The sequences come back as lists of lists of
    ints, the labels as int64 arrays, in the file's order (no shuffle yet). See the module docstring
    for the safety measures.
    """
    where = str(path)
    if not zipfile.is_zipfile(path):
        raise DataError(
            "not a Keras dataset file: it is not an .npz (zip) archive",
            where=where,
            expected="imdb.npz or reuters.npz as Keras caches them",
        )
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        name = _keras_name_of(name, [info.filename for info in infos], where)
        total = sum(info.file_size for info in infos)
        if total > MAX_NPZ_BYTES:
            raise DataError(
                "the .npz file is larger than a Keras dataset file can be",
                where=where,
                received=f"{total / 2**30:.1f} GiB uncompressed",
                expected=f"at most {MAX_NPZ_BYTES / 2**30:.0f} GiB",
            )
        raw = {info.filename[: -len(".npy")]: archive.read(info) for info in infos}
    arrays = {key: _read_npy(data, f"{where}[{key}]") for key, data in raw.items()}
    return name, _check_keras_arrays(name, arrays, where)


def _keras_name_of(name: str | None, members: list[str], where: str) -> str:
    """The dataset whose members are exactly ``members`` (``name`` if given, else detected)."""
    keys = sorted(m[: -len(".npy")] if m.endswith(".npy") else m for m in members)
    candidates = [name] if name is not None else list(KERAS_DATASETS)
    for candidate in candidates:
        _check_keras_name(candidate)
        well_formed = len(members) == len(set(members)) and all(m.endswith(".npy") for m in members)
        if well_formed and keys == sorted(KERAS_DATASETS[candidate]):
            return candidate
    expected = "; ".join(f"{n}: {', '.join(KERAS_DATASETS[n])}" for n in candidates)
    raise DataError(
        "not a Keras dataset file: unexpected arrays",
        where=where,
        received=f"members {members}",
        expected=f"exactly the arrays of {expected}",
        fix="pass the imdb.npz or reuters.npz that Keras downloads, unchanged",
    )


def _read_npy(data: bytes, where: str) -> np.ndarray:
    """One ``.npy`` member: numeric arrays with pickling disabled, object arrays with the NumPy-only unpickler."""
    fp = io.BytesIO(data)
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs only in the header's text encoding
            shape, _, dtype = fmt.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise DataError("not a valid .npy array", where=where, received=str(exc)) from None
    if not dtype.hasobject:
        fp.seek(0)
        try:
            return fmt.read_array(fp, allow_pickle=False)
        except ValueError as exc:
            raise DataError("corrupt .npy array", where=where, received=str(exc)) from None
    try:
        arr = _NumpyOnlyUnpickler(fp).load()
    except Exception as exc:  # a pickle stream can fail in many ways; all mean "not a Keras file"
        raise DataError(
            "refused or corrupt object array", where=where, received=f"{type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(arr, np.ndarray) or arr.shape != shape:
        raise DataError(
            "corrupt object array", where=where, received=type(arr).__name__, expected=f"an array of shape {shape}"
        )
    return arr


def _check_keras_arrays(name: str, arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    """Sequences as lists of lists of non-negative ints and labels as int64 arrays, or a :class:`DataError`."""
    out: dict[str, Any] = {}
    for xkey in (k for k in KERAS_DATASETS[name] if k.startswith("x")):
        ykey = "y" + xkey[1:]
        seqs = _keras_sequences(arrays[xkey], f"{where}[{xkey}]")
        labels = arrays[ykey]
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != len(seqs):
            raise DataError(
                "labels do not match the sequences",
                where=f"{where}[{ykey}]",
                received=f"{labels.dtype} array of shape {labels.shape}",
                expected=f"{len(seqs)} integer labels",
            )
        out[xkey], out[ykey] = seqs, labels.astype(np.int64)
    return out


def _keras_sequences(arr: np.ndarray, where: str) -> list[list[int]]:
    """The ragged sequences of a Keras file (or the rows of an equal-length integer matrix)."""
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.integer) and (arr.size == 0 or arr.min() >= 0):
        return arr.tolist()
    if arr.ndim != 1 or arr.dtype != object:
        raise DataError(
            "unexpected sequence array",
            where=where,
            received=f"{arr.dtype} array of shape {arr.shape}",
            expected="a 1-D object array of lists of word ids",
        )
    seqs: list[list[int]] = []
    for i, seq in enumerate(arr):
        if isinstance(seq, np.ndarray) and seq.ndim == 1 and np.issubdtype(seq.dtype, np.integer):
            seq = seq.tolist()
        if not isinstance(seq, list) or not all(type(w) is int and w >= 0 for w in seq):
            raise DataError(
                f"sequence {i} is not a list of word ids",
                where=where,
                received=f"{type(seq).__name__}: {seq!r:.80}",
                expected="a list of non-negative ints",
            )
        seqs.append(seq)
    return seqs


def load_keras_dataset(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    test_split: float | None = None,
) -> KerasSplits:
    """``keras.datasets.NAME.load_data`` without Keras or a download: ``((x_train, y_train), (x_test, y_test))``.

    Same arguments and the same result as Keras (sequences as lists of int lists, labels as int64
    arrays), quirks included: the seeded shuffles; ``maxlen`` *drops* sequences whose length (start
    mark included) is ``>= maxlen`` rather than truncating them; without ``num_words`` the largest id
    in the data also becomes ``oov_char``; ``test_split`` (default 0.2) is for ``reuters`` only. Pad
    the result with :func:`pad_sequences` or :func:`pad_for_spec`.
    """
    _check_keras_name(name)
    _, arrays = read_keras_npz(keras_dataset_path(name, path), name)
    return _process_keras(
        name,
        arrays,
        num_words=num_words,
        skip_top=skip_top,
        maxlen=maxlen,
        seed=seed,
        start_char=start_char,
        oov_char=oov_char,
        index_from=index_from,
        test_split=test_split,
    )


def _process_keras(name: str, arrays: dict[str, Any], *, test_split: float | None, **options: Any) -> KerasSplits:
    if name == "imdb":
        if test_split is not None:
            raise DataError(
                "imdb has a fixed train/test split; test_split is for reuters",
                received=f"test_split={test_split}",
                fix="drop test_split",
            )
        return _keras_imdb(arrays, **options)
    split = 0.2 if test_split is None else float(test_split)
    if not 0.0 <= split <= 1.0:
        raise DataError("test_split must be a fraction", received=f"test_split={test_split}", expected="0 <= x <= 1")
    return _keras_reuters(arrays, test_split=split, **options)


def _keras_imdb(
    arrays: dict[str, Any],
    *,
    num_words: int | None,
    skip_top: int,
    maxlen: int | None,
    seed: int,
    start_char: int | None,
    oov_char: int | None,
    index_from: int,
) -> KerasSplits:
    """``keras.datasets.imdb.load_data`` (Keras 3.15.1) on arrays already read."""
    rng = np.random.RandomState(seed)
    x_train, labels_train = _shuffled(rng, arrays["x_train"], arrays["y_train"])
    x_test, labels_test = _shuffled(rng, arrays["x_test"], arrays["y_test"])
    x_train = _offset_words(x_train, start_char, index_from)
    x_test = _offset_words(x_test, start_char, index_from)
    if maxlen:
        x_train, labels_train = _drop_long(maxlen, x_train, labels_train)
        x_test, labels_test = _drop_long(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise DataError(
                f"no sequence is shorter than maxlen={maxlen}",
                fix="raise maxlen (Keras drops every sequence of length >= maxlen, start mark included)",
            )
    xs = _cut_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test]).astype(np.int64)
    idx = len(x_train)
    return (xs[:idx], labels[:idx]), (xs[idx:], labels[idx:])


def _keras_reuters(
    arrays: dict[str, Any],
    *,
    num_words: int | None,
    skip_top: int,
    maxlen: int | None,
    seed: int,
    start_char: int | None,
    oov_char: int | None,
    index_from: int,
    test_split: float,
) -> KerasSplits:
    """``keras.datasets.reuters.load_data`` (Keras 3.15.1) on arrays already read."""
    rng = np.random.RandomState(seed)
    xs, labels = _shuffled(rng, arrays["x"], arrays["y"])
    xs = _offset_words(xs, start_char, index_from)
    if maxlen:
        xs, labels = _drop_long(maxlen, xs, labels)
        if not xs:
            raise DataError(
                f"no sequence is shorter than maxlen={maxlen}",
                fix="raise maxlen (Keras drops every sequence of length >= maxlen, start mark included)",
            )
    xs = _cut_vocabulary(xs, num_words, skip_top, oov_char)
    labels = np.asarray(labels, dtype=np.int64)
    idx = int(len(xs) * (1 - test_split))
    return (xs[:idx], labels[:idx]), (xs[idx:], labels[idx:])


def _shuffled(rng: np.random.RandomState, seqs: list[list[int]], labels: np.ndarray) -> tuple[list, np.ndarray]:
    indices = np.arange(len(seqs))
    rng.shuffle(indices)
    return [seqs[i] for i in indices], labels[indices]


def _offset_words(seqs: list[list[int]], start_char: int | None, index_from: int) -> list[list[int]]:
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in seqs]
    return [[w + index_from for w in x] for x in seqs]


def _drop_long(maxlen: int, seqs: list[list[int]], labels: Iterable[int]) -> tuple[list[list[int]], list[int]]:
    """Keras's ``remove_long_seq``: keep the sequences strictly shorter than ``maxlen``."""
    kept = [(x, y) for x, y in zip(seqs, labels, strict=True) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def _cut_vocabulary(xs: list[list[int]], num_words: int | None, skip_top: int, oov_char: int | None) -> list[list[int]]:
    if not num_words:
        num_words = max((max(x) for x in xs if x), default=0)  # Keras: the largest id itself is then cut
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


# ---------------------------------------------------------------------------------------------------
# Text files (CSV, TSV, JSONL)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextRows:
    """The rows of a text file: ``texts[i]`` and ``labels[i]`` come from line ``lines[i]`` of ``path``.

    Labels are ints (JSON integers or booleans) or strings (as written), mapped to ids by :func:`load_data`.
    """

    path: str
    texts: list[str]
    labels: list[int | str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, limit: int | None) -> TextRows:
        """The first ``limit`` rows (all of them for None)."""
        if limit is None:
            return self
        return TextRows(self.path, self.texts[:limit], self.labels[:limit], self.lines[:limit])


def read_text_file(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    fmt: str | None = None,
) -> TextRows:
    """Read a CSV/TSV (with a header row) or JSONL file (one JSON object per line).

    ``fmt`` (``csv``, ``tsv``, ``jsonl``) defaults to the file's suffix. Blank lines are skipped. A
    missing column, an empty file, a row with the wrong number of fields, a bad JSON line or an empty
    label raise a :class:`DataError` located at ``file:line``.
    """
    where = str(path)
    kind = fmt or TEXT_SUFFIXES.get(Path(path).suffix.lower())
    if kind not in ("csv", "tsv", "jsonl"):
        raise DataError(
            "unknown text file format",
            where=where,
            received=repr(fmt or Path(path).suffix),
            expected=", ".join(TEXT_SUFFIXES),
            fix="name the file with one of these suffixes",
        )
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            if kind == "jsonl":
                rows = _read_jsonl(fh, where, text_column, label_column)
            else:
                rows = _read_delimited(fh, where, "," if kind == "csv" else "\t", text_column, label_column)
    except FileNotFoundError:
        raise DataError("data file not found", where=where, fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            "the file is not UTF-8 text", where=where, received=str(exc), fix="save the file as UTF-8"
        ) from None
    if not rows.texts:
        raise DataError(
            "the file has no data rows", where=where, expected=f"rows with a {text_column!r} and a {label_column!r}"
        )
    return rows


def _empty_file(where: str, text_column: str, label_column: str) -> DataError:
    return DataError(
        "the file is empty",
        where=f"{where}:1",
        expected=f"a header row naming the columns {text_column!r} and {label_column!r}, then one row per sample",
    )


def _read_delimited(fh: Any, where: str, delimiter: str, text_column: str, label_column: str) -> TextRows:
    reader = csv.reader(fh, delimiter=delimiter, strict=True)
    header: list[str] = []
    line = 0
    rows = TextRows(where, [], [], [])
    try:
        while not header:  # the first non-blank row is the header
            line = reader.line_num + 1
            header = [name.strip() for name in next(reader)]
        text_at = _column(header, text_column, where, "text_column")
        label_at = _column(header, label_column, where, "label_column")
        while True:
            line = reader.line_num + 1
            row = next(reader)
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(
                    "wrong number of fields",
                    where=f"{where}:{line}",
                    received=f"{len(row)} field(s)",
                    expected=f"{len(header)}, as in the header ({', '.join(header)})",
                    fix="quote fields that contain the delimiter or a line break",
                )
            rows.texts.append(row[text_at])
            rows.labels.append(_label_cell(row[label_at], f"{where}:{line}", label_column))
            rows.lines.append(line)
    except StopIteration:
        if not header:
            raise _empty_file(where, text_column, label_column) from None
    except csv.Error as exc:
        raise DataError("malformed CSV", where=f"{where}:{reader.line_num or line}", received=str(exc)) from None
    return rows


def _column(header: list[str], name: str, where: str, option: str) -> int:
    if header.count(name) == 1:
        return header.index(name)
    problem = f"column {name!r} appears {header.count(name)} times" if name in header else f"no column {name!r}"
    raise DataError(
        problem,
        where=f"{where}:1",
        received=f"columns {header}",
        expected=f"exactly one column named {name!r}",
        fix=f"rename the column in the header, or pass {option}= the right name",
    )


def _label_cell(cell: str, where: str, label_column: str) -> str:
    value = cell.strip()
    if not value:
        raise DataError(f"empty label in column {label_column!r}", where=where, expected="an integer or a class name")
    return value


def _read_jsonl(fh: Any, where: str, text_column: str, label_column: str) -> TextRows:
    rows = TextRows(where, [], [], [])
    seen_any = False
    for line, raw in enumerate(fh, start=1):
        if not raw.strip():
            continue
        seen_any = True
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError("invalid JSON", where=f"{where}:{line}:{exc.colno}", received=exc.msg) from None
        if not isinstance(obj, dict):
            raise DataError(
                "each line must be a JSON object",
                where=f"{where}:{line}",
                received=type(obj).__name__,
                expected=f'{{"{text_column}": "...", "{label_column}": ...}}',
            )
        for key, option in ((text_column, "text_column"), (label_column, "label_column")):
            if key not in obj:
                raise DataError(
                    f"no key {key!r}",
                    where=f"{where}:{line}",
                    received=f"keys {sorted(obj)}",
                    fix=f"add {key!r} to every line, or pass {option}= the right key",
                )
        text = obj[text_column]
        if not isinstance(text, str):
            raise DataError(
                f"{text_column!r} must be a string", where=f"{where}:{line}", received=f"{type(text).__name__}"
            )
        rows.texts.append(text)
        rows.labels.append(_json_label(obj[label_column], f"{where}:{line}", label_column))
        rows.lines.append(line)
    if not seen_any:
        raise DataError("the file is empty", where=f"{where}:1", expected="one JSON object per line")
    return rows


def _json_label(value: Any, where: str, label_column: str) -> int | str:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise DataError(
        f"bad label in {label_column!r}",
        where=where,
        received=f"{type(value).__name__}: {value!r:.40}",
        expected="an integer, true/false, or a class name (non-empty string)",
    )


_INT_LABEL = re.compile(r"[+-]?\d+")


def _label_ids(rows: TextRows, classes: tuple[str, ...] | None, *, fit: bool) -> tuple[np.ndarray, Any]:
    """Label ids of ``rows`` and the class names: integers as given, or strings by sorted class name.

    ``fit`` decides the kind from the data; otherwise the labels must match ``classes`` (a reused
    tokenizer's: None means integer labels).
    """
    if fit:
        if all(isinstance(v, int) or _INT_LABEL.fullmatch(v) for v in rows.labels):
            return np.array([int(v) for v in rows.labels], dtype=np.int64), None
        first_int = next((i for i, v in enumerate(rows.labels) if isinstance(v, int)), None)
        if first_int is not None:  # JSON integers mixed with class names
            raise DataError(
                "labels mix integers and class names",
                where=f"{rows.path}:{rows.lines[first_int]}",
                received=f"{rows.labels[first_int]!r} among names such as {_first_name(rows.labels)!r}",
                expected="all labels integers, or all class names (strings)",
            )
        classes = tuple(sorted(set(rows.labels)))  # type: ignore[arg-type]
    index = {name: i for i, name in enumerate(classes or ())}
    ids = []
    for value, line in zip(rows.labels, rows.lines, strict=True):
        if classes is None:
            if not (isinstance(value, int) or _INT_LABEL.fullmatch(value)):
                raise DataError(
                    f"label {value!r} is not an integer, but the tokenizer was fit on integer labels",
                    where=f"{rows.path}:{line}",
                    fix="use the same kind of labels as the training data",
                )
            ids.append(int(value))
        elif isinstance(value, str) and value in index:
            ids.append(index[value])
        else:
            raise DataError(
                f"unknown label {value!r}",
                where=f"{rows.path}:{line}",
                expected=f"one of the training classes {list(classes)}",
                fix="use the class names of the training data",
            )
    return np.array(ids, dtype=np.int64), classes


def _first_name(labels: list[int | str]) -> str:
    return next(v for v in labels if isinstance(v, str) and not _INT_LABEL.fullmatch(v))


# ---------------------------------------------------------------------------------------------------
# Built-in data
# ---------------------------------------------------------------------------------------------------


def hello_data(text: str = HELLO_TEXT) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Seed 004's character task: ``(x, y, alphabet)``.

    ``alphabet`` is the sorted distinct characters (the seed used ``list(set(text))``, whose order
    changes between runs); ``x`` is the one-hot text ``(1, len(text), len(alphabet))`` float32 and ``y``
    the character ids ``(1, len(text))`` int64 -- the seed's targets are its inputs' ids, kept as is.
    """
    alphabet = tuple(sorted(set(text)))
    index = {c: i for i, c in enumerate(alphabet)}
    y = np.array([[index[c] for c in text]], dtype=np.int64)
    x = np.eye(len(alphabet), dtype=np.float32)[y]
    return x, y, alphabet


def _rng(seed: int, *tags: str) -> np.random.RandomState:
    """A legacy ``RandomState`` (its streams are frozen across NumPy versions) for ``seed`` and a purpose."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError("seed must be a non-negative integer", received=repr(seed))
    entropy = [int(seed), *(zlib.crc32(tag.encode()) for tag in tags)]
    return np.random.RandomState(np.random.SeedSequence(entropy).generate_state(4))


def _check_generated(n: int, vocab_size: int, seq_len: int, min_vocab: int, what: str) -> None:
    for name, value, least in (("n", n, 1), ("vocab_size", vocab_size, min_vocab), ("seq_len", seq_len, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise DataError(
                f"{what}: {name} is too small",
                received=f"{name}={value!r}",
                expected=f"an integer >= {least}",
                fix=f"raise {name}" + (" (the spec's input size)" if name == "vocab_size" else ""),
            )


def _split_tag(split: str) -> str:
    if split not in ("train", "test"):
        raise DataError("unknown split", received=repr(split), expected="'train' or 'test'")
    return split


def _background(vocab_size: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filler word ids (not in ``exclude``) and their cumulative Zipf-like probabilities (frequent = small id)."""
    ids = np.setdiff1d(np.arange(_FIRST_WORD_ID, vocab_size), exclude)
    weights = 1.0 / (np.arange(len(ids)) + 10.0)
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return ids, cdf


def _keyword_ids(rng: np.random.RandomState, vocab_size: int, count: int) -> np.ndarray:
    """``count`` distinct ids among the frequent words (the low ids, as in Keras's frequency-ranked data)."""
    pool = np.arange(_FIRST_WORD_ID, min(vocab_size, _FIRST_WORD_ID + max(200, 4 * count)))
    return rng.choice(pool, size=count, replace=False)


def _document(
    rng: np.random.RandomState,
    length: int,
    background: tuple[np.ndarray, np.ndarray],
    winners: np.ndarray,
    losers: np.ndarray,
    density: tuple[float, float],
) -> list[int]:
    """A start mark, then filler words with some ``winners`` and at most half as many ``losers`` at random places.

    The winners make up a fraction of the words drawn from ``density`` (at least one), as sentiment words
    are spread through a review: the signal does not fade as documents get longer.
    """
    words = length - 1
    win = max(1, round(words * rng.uniform(*density)))
    lose = rng.randint(0, win // 2 + 1)
    ids, cdf = background
    body = ids[np.searchsorted(cdf, rng.random_sample(words), side="right").clip(max=len(ids) - 1)]
    slots = rng.permutation(words)[: win + lose]
    body[slots[:win]] = rng.choice(winners, win)
    body[slots[win:]] = rng.choice(losers, lose)
    return [_START_ID, *body.tolist()]


def sentiment_data(
    n: int = 1024,
    *,
    vocab_size: int = 10000,
    seq_len: int = _DEFAULT_SEQ_LEN,
    seed: int = 0,
    split: str = "train",
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """An IMDB-shaped binary task: ``(x, y)``, ``x`` int32 ``(n, seq_len)`` pre-padded ids, ``y`` int64 ``(n,)``.

    Every sequence starts with id 1 (Keras's start mark), then filler words from ``[3, vocab_size)``
    (Zipf-like, frequent = small id). A few "positive" and "negative" word ids (the same for every split
    of one ``seed``) are planted: 15-30% of the words are of the label's kind and at most half as many of
    the other kind, so label 1 means positive words outnumber negative ones (never a tie), and a sequence
    model sees the majority near the end of the sequence too; then each label is flipped with probability
    ``noise``. Lengths vary from
    about ``seq_len / 4`` to ``seq_len``, so nothing is truncated. Deterministic for ``(seed, split)``.
    """
    _check_generated(n, vocab_size, seq_len, 8, "builtin:sentiment")
    k = max(1, min(10, (vocab_size - _FIRST_WORD_ID) // 8))
    keywords = _keyword_ids(_rng(seed, "sentiment", "words"), vocab_size, 2 * k)
    positive, negative = keywords[:k], keywords[k:]
    background = _background(vocab_size, keywords)
    rng = _rng(seed, "sentiment", _split_tag(split))
    shortest = min(seq_len, max(2, seq_len // 4))
    seqs, labels = [], np.empty(n, dtype=np.int64)
    for i in range(n):
        label = rng.randint(2)
        winners, losers = (positive, negative) if label else (negative, positive)
        seqs.append(_document(rng, rng.randint(shortest, seq_len + 1), background, winners, losers, (0.15, 0.3)))
        labels[i] = 1 - label if rng.random_sample() < noise else label
    return pad_sequences(seqs, seq_len), labels


def topics_data(
    n: int = 2048,
    *,
    num_classes: int = 46,
    vocab_size: int = 10000,
    seq_len: int = _DEFAULT_SEQ_LEN,
    seed: int = 0,
    split: str = "train",
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """A Reuters-shaped multi-class task: ``(x, y)`` like :func:`sentiment_data`, labels in ``[0, num_classes)``.

    Each class owns a few keyword ids; a document plants keywords of its class (10-20% of its words) and at
    most half as many of one other class among filler words; a fraction ``noise`` of the labels is redrawn
    at random.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise DataError("builtin:topics needs at least 2 classes", received=f"num_classes={num_classes!r}")
    _check_generated(n, vocab_size, seq_len, _FIRST_WORD_ID + num_classes + 1, "builtin:topics")
    k = max(1, min(5, (vocab_size - _FIRST_WORD_ID - 1) // (2 * num_classes)))
    keywords = _keyword_ids(_rng(seed, "topics", "words"), vocab_size, num_classes * k).reshape(num_classes, k)
    background = _background(vocab_size, keywords.ravel())
    rng = _rng(seed, "topics", _split_tag(split))
    shortest = min(seq_len, max(2, seq_len // 4))
    seqs, labels = [], np.empty(n, dtype=np.int64)
    for i in range(n):
        label = rng.randint(num_classes)
        other = (label + rng.randint(1, num_classes)) % num_classes
        length = rng.randint(shortest, seq_len + 1)
        seqs.append(_document(rng, length, background, keywords[label], keywords[other], (0.1, 0.2)))
        labels[i] = rng.randint(num_classes) if rng.random_sample() < noise else label
    return pad_sequences(seqs, seq_len), labels


def _builtin(name: str, spec: ModelSpec, split: str, seed: int) -> Dataset:
    source = f"builtin:{name}"
    if name == "hello":
        if spec.input.features is None:
            raise DataError(
                "builtin:hello is one-hot characters, but the spec's input is token ids",
                received=f"input.vocab_size: {spec.input.vocab_size}",
                expected="input.features: 9 (one-hot over the 9 characters of 'hello! world')",
                fix="use `input: {features: 9}` (see specs/char_rnn_hello.yaml)",
            )
        _split_tag(split)
        x, y, alphabet = hello_data()
        return Dataset(x, y, source, split, alphabet=alphabet)
    if name not in ("sentiment", "topics"):
        raise DataError(
            "unknown built-in data",
            received=repr(source),
            expected=", ".join(f"builtin:{known}" for known in BUILTINS),
            fix="use one of these, or a file path",
        )
    size = spec.input.vocab_size or spec.input.features
    assert size is not None
    seq_len = spec.input.seq_len or _DEFAULT_SEQ_LEN
    n = _SIZES[name][_split_tag(split)]
    if name == "sentiment":
        ids, y = sentiment_data(n, vocab_size=size, seq_len=seq_len, seed=seed, split=split)
        classes: tuple[str, ...] | None = IMDB_CLASSES
    else:
        num_classes = spec.output_units if _label_kind(spec) == "categorical" else len(REUTERS_CLASSES)
        ids, y = topics_data(n, num_classes=num_classes, vocab_size=size, seq_len=seq_len, seed=seed, split=split)
        classes = None
    return Dataset(_inputs_for_spec(ids, spec), y, source, split, classes=classes)


# ---------------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------------


def load_data(
    spec: ModelSpec,
    source: str | os.PathLike[str] | None = None,
    *,
    split: Split = "train",
    seed: int = 0,
    limit: int | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    tokenizer: Tokenizer | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> Dataset:
    """Load ``source`` (default: the spec's ``training.data``) shaped for ``spec`` and checked against it.

    * ``source``: ``builtin:NAME`` (see :data:`BUILTINS`), ``keras:imdb`` / ``keras:reuters`` (Keras's
      cache), a Keras ``.npz``, or a ``.csv``/``.tsv``/``.jsonl`` file. A relative path is resolved
      against ``base_dir`` (pass the spec file's folder) or the working directory.
    * ``split``: ``train`` or ``test``. Keras files have both; built-ins generate a different sample of
      the same task for each; a text file is one split, read whole for either (pass the test file).
    * ``seed``: generation seed of built-ins. Keras files always use Keras's shuffle seed 113, so the
      splits equal Keras's; text files keep the file order (the trainer shuffles).
    * ``limit``: keep the first ``limit`` samples.
    * ``tokenizer``: for text files, reuse a fitted tokenizer (evaluation, prediction); None fits a new
      one on these texts (word level for ``vocab_size`` specs, character level one-hot for
      ``features`` specs) and returns it in :attr:`Dataset.tokenizer`. Other sources ignore it.
    * ``text_column``, ``label_column``: columns (keys) of text files.

    Keras data is read with ``num_words`` = the spec's vocabulary and pre-padded/truncated to
    ``seq_len`` (the longest sequence when the spec has none).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError("limit must be a positive integer or None", received=repr(limit))
    _split_tag(split)
    text = _source_of(spec, source)
    if text.startswith("builtin:"):
        dataset = _builtin(text[len("builtin:") :], spec, split, seed)
        if limit is not None:
            dataset = _head(dataset, limit)
    elif text.startswith("keras:"):
        name = text[len("keras:") :]
        _check_keras_name(name)
        dataset = _keras_for_spec(spec, text, name, keras_dataset_path(name), split, limit)
    else:
        path = _resolve_path(text, base_dir)
        if path.suffix.lower() == ".npz":
            dataset = _keras_for_spec(spec, text, None, path, split, limit)
        elif path.suffix.lower() in TEXT_SUFFIXES:
            dataset = _text_for_spec(spec, text, path, split, limit, tokenizer, text_column, label_column)
        else:
            raise DataError(
                "unknown kind of data file",
                where=text,
                received=f"suffix {path.suffix or '(none)'!r}",
                expected=f".npz (a Keras dataset) or {', '.join(TEXT_SUFFIXES)}",
                fix="rename the file, or use builtin:" + " / builtin:".join(BUILTINS),
            )
    check_dataset(spec, dataset)
    return dataset


def _source_of(spec: ModelSpec, source: str | os.PathLike[str] | None) -> str:
    if source is not None:
        return os.fspath(source)
    if spec.training is not None and spec.training.data is not None:
        return spec.training.data
    raise DataError(
        f"no data source for spec {spec.name!r}",
        received="no source given and no `training.data` in the spec",
        expected="builtin:NAME, keras:imdb, keras:reuters, or a path to .npz/.csv/.tsv/.jsonl data",
        fix="pass the data source, or set `training: {data: ...}` in the spec",
    )


def _resolve_path(text: str, base_dir: str | os.PathLike[str] | None) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.is_file():
        raise DataError(
            "data file not found",
            where=text,
            received=f"no file at {path}",
            fix="check the path (a relative path in a spec is relative to the spec's folder), or use builtin:"
            + " / builtin:".join(BUILTINS),
        )
    return path


def _head(dataset: Dataset, limit: int) -> Dataset:
    return Dataset(
        dataset.x[:limit],
        dataset.y[:limit],
        dataset.source,
        dataset.split,
        tokenizer=dataset.tokenizer,
        alphabet=dataset.alphabet,
        classes=dataset.classes,
    )


def _inputs_for_spec(ids: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Padded ids as they are for ``vocab_size`` specs, one-hot (padding all zeros) for ``features`` specs."""
    if spec.input.vocab_size is not None:
        return ids.astype(np.int32, copy=False)
    assert spec.input.features is not None
    _check_ids(ids, spec.input.features, "input.features")
    return one_hot(ids, spec.input.features, zero_pad=True)


def _keras_for_spec(
    spec: ModelSpec, source: str, name: str | None, path: Path, split: str, limit: int | None
) -> Dataset:
    name, arrays = read_keras_npz(path, name)
    size = spec.input.vocab_size or spec.input.features
    (x_train, y_train), (x_test, y_test) = _process_keras(
        name,
        arrays,
        num_words=size,
        skip_top=0,
        maxlen=None,
        seed=113,
        start_char=1,
        oov_char=2,
        index_from=3,
        test_split=None,
    )
    seqs, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    if limit is not None:
        seqs, y = seqs[:limit], y[:limit]
    ids = pad_for_spec(seqs, spec)
    classes = IMDB_CLASSES if name == "imdb" else REUTERS_CLASSES
    return Dataset(_inputs_for_spec(ids, spec), y, source, split, classes=classes)


def _text_for_spec(
    spec: ModelSpec,
    source: str,
    path: Path,
    split: str,
    limit: int | None,
    tokenizer: Tokenizer | None,
    text_column: str,
    label_column: str,
) -> Dataset:
    rows = read_text_file(path, text_column=text_column, label_column=label_column).head(limit)
    if tokenizer is None:
        level = "word" if spec.input.vocab_size is not None else "char"
        tokenizer = Tokenizer(level, vocab_size=spec.input.vocab_size or spec.input.features).fit(rows.texts)
        y, classes = _label_ids(rows, None, fit=True)
        tokenizer.classes = classes
    else:
        if not tokenizer.fitted:
            raise DataError("the tokenizer passed has no vocabulary", fix="fit it first, or pass tokenizer=None")
        y, classes = _label_ids(rows, tokenizer.classes, fit=False)
    ids = pad_for_spec(tokenizer.encode(rows.texts), spec)
    if spec.input.features is not None:
        _check_ids(ids, spec.input.features, "input.features", fix="fit the tokenizer with vocab_size=features")
    return Dataset(_inputs_for_spec(ids, spec), y, source, split, tokenizer=tokenizer, classes=classes)


# ---------------------------------------------------------------------------------------------------
# Checking data against a spec
# ---------------------------------------------------------------------------------------------------


def _label_kind(spec: ModelSpec) -> str | None:
    """``categorical``, ``binary`` or None (no label range to check), from the loss or the head."""
    if spec.training is not None:
        name = spec.training.loss.name
        if name in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
            return "categorical"
        return "binary" if name == "binary_crossentropy" else None
    if spec.output_activation == "softmax":
        return "categorical"
    return "binary" if spec.output_activation == "sigmoid" and spec.output_units == 1 else None


def _check_ids(ids: np.ndarray, size: int, field: str, fix: str | None = None) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        bad = np.argwhere((ids < 0) | (ids >= size))[0]
        value = ids[tuple(bad)]
        raise DataError(
            f"token id {value} does not fit the spec's {field}",
            received=f"id {value} at sample {bad[0]}, step {bad[1]} (ids span [{ids.min()}, {ids.max()}])",
            expected=f"ids in [0, {size})",
            fix=fix or f"set `{field}: {int(ids.max()) + 1}` or more",
        )


def check_dataset(spec: ModelSpec, dataset: Dataset) -> None:
    """Raise a :class:`DataError` unless ``dataset`` fits ``spec``: input kind and size, sequence length,
    label shape (per step or per sample) and label range for the loss and head."""
    x, y, src = dataset.x, dataset.y, dataset.source
    if len(x) == 0:
        raise DataError(f"{src} has no samples", fix="check the file, or raise `limit`")
    if len(x) != len(y):
        raise DataError(f"{src}: inputs and labels do not pair up", received=f"{len(x)} inputs, {len(y)} labels")
    _check_inputs(spec, x, src)
    _check_label_shape(spec, x, y, src)
    _check_label_range(spec, y, src)


def _check_inputs(spec: ModelSpec, x: np.ndarray, src: str) -> None:
    vocab, features, seq_len = spec.input.vocab_size, spec.input.features, spec.input.seq_len
    if vocab is not None:
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise DataError(
                f"{src} is not token ids, but the spec's input is",
                received=f"{x.dtype} inputs of shape {x.shape}",
                expected=f"integer ids (n, steps) for input.vocab_size: {vocab}",
                fix="use `input.features` for vector inputs",
            )
        _check_ids(x, vocab, "input.vocab_size")
    else:
        if x.ndim != 3 or x.shape[2] != features:
            got = f"{x.shape[2]} features per step" if x.ndim == 3 else f"inputs of shape {x.shape}"
            raise DataError(
                f"{src} does not fit the spec's input size",
                received=got,
                expected=f"input.features: {features} (inputs of shape (n, steps, {features}))",
                fix=f"set `input.features: {x.shape[2]}`" if x.ndim == 3 else "use `input.vocab_size` for token ids",
            )
    if seq_len is not None and x.shape[1] != seq_len:
        raise DataError(
            f"{src} has sequences of another length than the spec",
            received=f"{x.shape[1]} steps",
            expected=f"input.seq_len: {seq_len}",
            fix=f"set `input.seq_len: {x.shape[1]}` or remove it (variable length)",
        )


def _check_label_shape(spec: ModelSpec, x: np.ndarray, y: np.ndarray, src: str) -> None:
    last = f"recurrent[{len(spec.recurrent) - 1}]"
    if spec.output_per_step and y.shape != x.shape[:2]:
        raise DataError(
            f"the spec predicts one output per step, but {src} has one label per sequence",
            received=f"labels of shape {y.shape}",
            expected=f"per-step labels of shape {x.shape[:2]}",
            fix=f"set `return_sequences: false` on the last recurrent layer ({last})",
        )
    if not spec.output_per_step and y.shape != x.shape[:1]:
        raise DataError(
            f"the spec predicts one output per sequence, but {src} has a label per step",
            received=f"labels of shape {y.shape}",
            expected=f"one label per sequence, shape {x.shape[:1]}",
            fix=f"set `return_sequences: true` on the last recurrent layer ({last})",
        )


def _check_label_range(spec: ModelSpec, y: np.ndarray, src: str) -> None:
    kind = _label_kind(spec)
    units = spec.output_units
    low, high = int(y.min()), int(y.max())
    outputs = f"{units} output unit(s), {spec.output_activation}"
    if kind == "categorical" and (low < 0 or high >= units):
        needed = high + 1
        raise DataError(
            f"{src} has labels outside the model's classes",
            received=f"labels in [{low}, {high}] ({needed} classes) for {outputs}",
            expected=f"labels in [0, {units})",
            fix=f"set the head's `units: {needed}`" if low >= 0 else "labels must be non-negative class ids",
        )
    if kind == "binary" and (units != 1 or low < 0 or high > 1):
        classes = len(np.unique(y))
        raise DataError(
            f"{src} does not fit a binary (yes/no) output",
            received=f"{classes} distinct labels in [{low}, {high}] for {outputs}",
            expected="labels 0 and 1 with one sigmoid output unit",
            fix=f"for {classes} classes use `head: {{units: {high + 1}, activation: softmax}}` and "
            "`loss: sparse_categorical_crossentropy`",
        )
