"""Keras's dataset files (``imdb.npz``, ``reuters.npz``), read the way ``keras.datasets.*.load_data`` reads them.

The ragged sequences are pickled object arrays. They are never loaded with
``np.load(allow_pickle=True)``: the pickle stream goes through an unpickler that can build nothing but NumPy
arrays, after checking that the file is a zip archive with exactly the expected members and a bounded
size. Files are never downloaded.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.budget import ZIP_ERRORS
from rnnspec.data.tokenizer import DataError

__all__ = [
    "IMDB_CLASSES",
    "KERAS_DATASETS",
    "MAX_NPZ_BYTES",
    "REUTERS_CLASSES",
    "check_keras_name",
    "keras_dataset_path",
    "load_keras_dataset",
    "process_keras",
    "read_keras_npz",
]


KerasSplits = tuple[tuple[list[list[int]], np.ndarray], tuple[list[list[int]], np.ndarray]]
"""``((x_train, y_train), (x_test, y_test))``: sequences as int lists, labels as int64 arrays."""


IMDB_CLASSES: tuple[str, ...] = ("negative", "positive")
REUTERS_CLASSES: tuple[str, ...] = (  # keras.datasets.reuters.get_label_names(), in label order
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee",
    "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx",
    "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail",
    "ipi", "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem",
    "dlr", "gas", "silver", "wpi", "hog", "lead",
)  # fmt: skip


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


MAX_NPZ_BYTES = 2**31
"""Largest total uncompressed size of a Keras ``.npz`` accepted (the real imdb.npz is far below)."""


# ---------------------------------------------------------------------------------------------------
# Keras dataset files (imdb.npz, reuters.npz)
# ---------------------------------------------------------------------------------------------------


class _ArrayStub:
    """Stands in for the ``ndarray`` a pickle rebuilds: records the state instead of handing it to NumPy.

    NumPy's ``ndarray.__setstate__`` trusts its input (a state shorter than its shape crashes the
    process, a huge shape allocates first); the stub lets rnnspec check the state and build the
    array itself.
    """

    def __init__(self) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _DtypeStub:
    """Stands in for ``numpy.dtype(...)`` inside a pickle: keeps only its arguments."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _NdarrayName:
    """The ``numpy.ndarray`` class as a pickle names it (only passed to ``_reconstruct``)."""


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _ArrayStub:
    if cls is not _NdarrayName:
        raise pickle.UnpicklingError("an array pickle must rebuild numpy.ndarray")
    return _ArrayStub()


_PICKLE_STANDINS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NdarrayName,
    ("numpy", "dtype"): _DtypeStub,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # files written with NumPy < 2
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # files written with NumPy >= 2
}


class _ObjectArrayUnpickler(pickle.Unpickler):
    """Reads the pickle of a NumPy object array without running NumPy: every global is a stand-in of
    rnnspec's own (:data:`_PICKLE_STANDINS`), everything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        standin = _PICKLE_STANDINS.get((module, name))
        if standin is None:
            raise pickle.UnpicklingError(f"refusing to load `{module}.{name}`: only NumPy arrays are allowed")
        return standin


def _object_array(stub: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    """The 1-D object array a checked stub describes: ``(version, shape, dtype, fortran, items)``."""
    state = getattr(stub, "state", None)
    if not isinstance(stub, _ArrayStub) or not isinstance(state, tuple) or len(state) != 5:
        raise DataError("corrupt object array", where=where, received=type(stub).__name__, expected="an array")
    _, pickled_shape, dtype, _, items = state
    if not isinstance(dtype, _DtypeStub) or dtype.args[:1] != ("O8",):
        raise DataError("corrupt object array", where=where, received="a dtype other than object")
    if tuple(pickled_shape) != shape or len(shape) != 1:
        raise DataError(
            "corrupt object array", where=where, received=f"shape {pickled_shape}", expected=f"1-D shape {shape}"
        )
    if not isinstance(items, list) or len(items) != shape[0]:
        count = len(items) if isinstance(items, list) else type(items).__name__
        raise DataError(
            "corrupt object array: its items do not fill its shape",
            where=where,
            received=f"{count} items",
            expected=f"{shape[0]} items",
        )
    arr = np.empty(shape[0], dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr


def keras_dataset_path(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Where a Keras dataset file is: ``path`` if given, else ``$KERAS_HOME/datasets/NAME.npz``
    (``~/.keras/datasets/NAME.npz`` without ``KERAS_HOME``). Raises :class:`DataError` when absent.

    Keras falls back to ``/tmp/.keras`` when the home directory is not writable; rnnspec does not look
    there, since anyone can put a file in ``/tmp``.
    """
    check_keras_name(name)
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


def check_keras_name(name: str) -> None:
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
        try:
            raw = {info.filename[: -len(".npy")]: archive.read(info) for info in infos}
        except ZIP_ERRORS as exc:
            raise DataError("not a readable .npz file", where=where, received=str(exc) or type(exc).__name__) from None
    arrays = {key: _read_npy(data, f"{where}[{key}]") for key, data in raw.items()}
    return name, _check_keras_arrays(name, arrays, where)


def _keras_name_of(name: str | None, members: list[str], where: str) -> str:
    """The dataset whose members are exactly ``members`` (``name`` if given, else detected)."""
    keys = sorted(m[: -len(".npy")] if m.endswith(".npy") else m for m in members)
    candidates = [name] if name is not None else list(KERAS_DATASETS)
    for candidate in candidates:
        check_keras_name(candidate)
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
        declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        stored = len(data) - fp.tell()
        if declared != stored:
            raise DataError(
                "corrupt .npy array: its header does not match its data",
                where=where,
                received=f"a header declaring shape {shape} of {dtype} ({declared:,} bytes), {stored:,} bytes stored",
                expected="the array as NumPy saved it",
            )
        fp.seek(0)
        try:
            return fmt.read_array(fp, allow_pickle=False)
        except ValueError as exc:
            raise DataError("corrupt .npy array", where=where, received=str(exc)) from None
    try:
        stub = _ObjectArrayUnpickler(fp).load()
    except Exception as exc:  # a pickle stream can fail in many ways; all mean "not a Keras file"
        raise DataError(
            "refused or corrupt object array", where=where, received=f"{type(exc).__name__}: {exc}"
        ) from None
    return _object_array(stub, tuple(shape), where)


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
    check_keras_name(name)
    _, arrays = read_keras_npz(keras_dataset_path(name, path), name)
    return process_keras(
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


def process_keras(name: str, arrays: dict[str, Any], *, test_split: float | None, **options: Any) -> KerasSplits:
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
