"""The data layer: turn a data source into arrays shaped for a spec, without any framework.

One entry point, :func:`load_data`, reads what ``rnnspec train`` (and evaluation, prediction) needs:

* ``builtin:NAME`` -- generated data, no file: ``hello`` (seed 004's "hello! world" character task),
  ``sentiment`` (an IMDB-shaped binary task that a model can learn), ``topics`` (a Reuters-shaped
  multi-class task);
* ``keras:imdb`` / ``keras:reuters`` -- Keras's cached dataset files, found like Keras finds them;
* a ``.npz`` path -- a Keras ``imdb.npz`` or ``reuters.npz`` file (recognised by its keys), or any
  ``.npz`` with arrays ``x`` and ``y`` (:mod:`rnnspec.data.arrays`);
* a ``.csv`` / ``.tsv`` / ``.jsonl`` path -- a text column and a label column, tokenized with a
  :class:`~rnnspec.data.tokenizer.Tokenizer` that is returned for reuse at evaluation and prediction;
  or, for ``features`` specs, a ``.jsonl`` of float sequences ``{"x": [[...], ...], "y": ...}``.

Labels follow the spec's loss: numbers for ``mse``/``mae``/``huber`` (never class names), class ids
for the cross-entropies, one per step (a JSONL list, or space-separated in a CSV cell) when the model
returns sequences, padded and truncated like the inputs.

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

import os
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rnnspec.data import textstream
from rnnspec.data.arrays import is_xy_npz, read_sequence_jsonl, read_xy_npz, reads_on_demand, wants_sequence_jsonl
from rnnspec.data.keras_datasets import (
    KERAS_DATASETS,
    MAX_NPZ_BYTES,
    check_keras_name,
    keras_dataset_path,
    load_keras_dataset,
    process_keras,
    read_keras_npz,
)
from rnnspec.data.labels import class_ids, numeric_targets
from rnnspec.data.lazy import LazyRows, OnDemandRows
from rnnspec.data.sequences import MAX_ONE_HOT_BYTES, one_hot, pad_for_spec, pad_sequences
from rnnspec.data.textfiles import TEXT_SUFFIXES, TextRows, label_ids, read_text_file
from rnnspec.data.tokenizer import OOV_ID, PAD_ID, DataError, Tokenizer
from rnnspec.lang.spec import REGRESSION_LOSSES
from rnnspec.util import available_memory, human_bytes, is_int_at_least

if TYPE_CHECKING:
    from rnnspec.lang.spec import ModelSpec

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
    "inputs_for_spec",
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


IMDB_CLASSES: tuple[str, ...] = ("negative", "positive")
REUTERS_CLASSES: tuple[str, ...] = (  # keras.datasets.reuters.get_label_names(), in label order
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee",
    "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx",
    "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail",
    "ipi", "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem",
    "dlr", "gas", "silver", "wpi", "hog", "lead",
)  # fmt: skip


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
    ``features`` specs. ``y``: int64 class ids ``(n,)``, or ``(n, T)`` for per-step models; float32
    targets ``(n,)`` / ``(n, units)`` (``(n, T[, units])`` per step) for regression losses.
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
    if not is_int_at_least(seed, 0):
        raise DataError("seed must be a non-negative integer", received=repr(seed))
    entropy = [int(seed), *(zlib.crc32(tag.encode()) for tag in tags)]
    return np.random.RandomState(np.random.SeedSequence(entropy).generate_state(4))


def _check_generated(n: int, vocab_size: int, seq_len: int, min_vocab: int, what: str) -> None:
    for name, value, least in (("n", n, 1), ("vocab_size", vocab_size, min_vocab), ("seq_len", seq_len, 2)):
        if not is_int_at_least(value, least):
            raise DataError(
                f"{what}: {name} is too small",
                received=f"{name}={value!r}",
                expected=f"an integer >= {least}",
                fix=f"raise {name}" + (" (the spec's input size)" if name == "vocab_size" else ""),
            )
    need = generated_bytes(n, vocab_size, seq_len)
    free = available_memory()
    if free is not None and need > free:
        raise DataError(
            f"{what}: generating {n:,} sequences of up to {seq_len:,} tokens (vocabulary {vocab_size:,}) needs "
            f"about {human_bytes(need)}, but the machine has {human_bytes(free)} available",
            received=f"n={n:,}, seq_len={seq_len:,}, vocab_size={vocab_size:,}",
            expected=f"data that fits in {human_bytes(free)}",
            fix="lower the spec's seq_len or vocab_size (the built-in tasks generate a fixed number of samples)",
        )


def generated_bytes(n: int, vocab_size: int, seq_len: int) -> int:
    """Peak bytes of a generated token task: each token as a Python int in a list while the documents are drawn
    (~36 bytes: the object and its slot), the padded int32 array and a float64 draw per token; per vocabulary
    entry the filler ids, weights and cumulative probabilities (int64 and float64 arrays, with temporaries)."""
    return 48 * n * seq_len + 40 * vocab_size


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
    if not is_int_at_least(num_classes, 2):
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


def _num_classes(name: str, spec: ModelSpec) -> int:
    if name != "topics":
        return 2
    return spec.output_units if _label_kind(spec) == "categorical" else len(REUTERS_CLASSES)


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
    least = 8 if name == "sentiment" else _FIRST_WORD_ID + _num_classes(name, spec) + 1
    if size < least:
        field = "input.vocab_size" if spec.input.vocab_size is not None else "input.features (one-hot ids)"
        raise DataError(
            f"{source} draws word ids from [0, {field.split(' ')[0].split('.')[1]}), and {size} leaves too few words",
            received=f"{field}: {size}",
            expected=f"at least {least}",
            fix=f"raise {field.split(' ')[0]} to {least} or more (the built-in sets are made for 10000)",
        )
    if name == "sentiment":
        ids, y = sentiment_data(n, vocab_size=size, seq_len=seq_len, seed=seed, split=split)
        classes: tuple[str, ...] | None = IMDB_CLASSES
    else:
        num_classes = _num_classes(name, spec)
        ids, y = topics_data(n, num_classes=num_classes, vocab_size=size, seq_len=seq_len, seed=seed, split=split)
        classes = None
    return Dataset(inputs_for_spec(ids, spec), y, source, split, classes=classes)


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
    if limit is not None and not is_int_at_least(limit, 1):
        raise DataError("limit must be a positive integer or None", received=repr(limit))
    _split_tag(split)
    text = _source_of(spec, source)
    if text.startswith("builtin:"):
        dataset = _builtin(text[len("builtin:") :], spec, split, seed)
        if limit is not None:
            dataset = _head(dataset, limit)
    elif text.startswith("keras:"):
        name = text[len("keras:") :]
        check_keras_name(name)
        dataset = _keras_for_spec(spec, text, name, keras_dataset_path(name), split, limit)
    else:
        path = _resolve_path(text, base_dir)
        sequences = (
            spec.input.features is not None
            and path.suffix.lower() in (".jsonl", ".ndjson")
            and wants_sequence_jsonl(path, text_column)
        )
        if not _reads_on_demand(path, spec, sequences):
            _check_fits(path, text)
        if path.suffix.lower() == ".npz" and is_xy_npz(path):
            dataset = _xy_for_spec(spec, text, path, split, limit)
        elif path.suffix.lower() == ".npz":
            dataset = _keras_for_spec(spec, text, None, path, split, limit)
        elif path.suffix.lower() == ".npy":
            raise DataError(
                "a .npy file holds one array, but training needs inputs and targets",
                where=text,
                expected="an .npz with arrays x and y",
                fix="save both: np.savez('data.npz', x=x, y=y)",
            )
        elif sequences:
            dataset = _sequences_for_spec(spec, text, path, split, limit, text_column, label_column)
        elif path.suffix.lower() in TEXT_SUFFIXES:
            dataset = _text_for_spec(spec, text, path, split, limit, tokenizer, text_column, label_column)
        else:
            raise DataError(
                "unknown kind of data file",
                where=text,
                received=f"suffix {path.suffix or '(none)'!r}",
                expected=f".npz (a Keras dataset, or arrays x and y) or {', '.join(TEXT_SUFFIXES)}",
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
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a FIFO, device or socket)"
        raise DataError(
            f"the data path is {kind}",
            where=text,
            received=str(path),
            expected="a regular data file (.csv, .tsv, .jsonl, .npz)",
            fix="name a file; to stream data, save it to a file first",
        )
    if not path.is_file():
        raise DataError(
            "data file not found",
            where=text,
            received=f"no file at {path}",
            fix="check the path (a relative path in a spec is relative to the spec's folder), or use builtin:"
            + " / builtin:".join(BUILTINS),
        )
    return path


def _reads_on_demand(path: Path, spec: ModelSpec, sequences: bool) -> bool:
    """Whether the file's inputs are read a batch at a time (never loaded whole): an uncompressed ``.npz``
    over ``LAZY_BYTES``, or a text file over ``STREAM_BYTES`` with one label per sample."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return reads_on_demand(path)
    return _streams_text(path, spec) and not sequences


def _streams_text(path: Path, spec: ModelSpec) -> bool:
    return (
        path.suffix.lower() in TEXT_SUFFIXES
        and not spec.output_per_step
        and path.stat().st_size > textstream.STREAM_BYTES
    )


def _check_fits(path: Path, text: str) -> None:
    """A data file larger than half the memory the machine has available is refused before it is read."""
    from rnnspec.util import available_memory, human_bytes

    size, free = path.stat().st_size, available_memory()
    if free is not None and 2 * size > free:
        raise DataError(
            "the data file is too large to load into memory",
            where=text,
            received=f"{human_bytes(size)} with {human_bytes(free)} of memory available",
            expected="a file under half the available memory",
            fix="use --limit on a smaller file, or split the data",
        )


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


def inputs_for_spec(ids: np.ndarray, spec: ModelSpec) -> np.ndarray:
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
    (x_train, y_train), (x_test, y_test) = process_keras(
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
    return Dataset(inputs_for_spec(ids, spec), y, source, split, classes=classes)


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
    if _streams_text(path, spec):
        return _streamed_text_for_spec(spec, source, path, split, limit, tokenizer, text_column, label_column)
    rows = read_text_file(path, text_column=text_column, label_column=label_column).head(limit)
    fit = tokenizer is None
    tokenizer = _tokenizer_for(spec, tokenizer)
    if fit:
        tokenizer.fit(rows.texts)
    encoded = tokenizer.encode(rows.texts)
    ids = pad_for_spec(encoded, spec)
    if spec.input.features is not None:
        _check_ids(ids, spec.input.features, "input.features", fix="fit the tokenizer with vocab_size=features")
    wheres = [f"{rows.path}:{line}" for line in rows.lines]
    if spec.output_per_step:
        for seq, at, value in zip(encoded, wheres, rows.labels, strict=True):
            _check_steps(len(seq), value, at, label_column)
    y, classes = _labels(spec, rows.labels, wheres, ids.shape[1], tokenizer.classes, fit, label_column, rows)
    if fit:
        tokenizer.classes = classes
    return Dataset(inputs_for_spec(ids, spec), y, source, split, tokenizer=tokenizer, classes=classes)


def _tokenizer_for(spec: ModelSpec, tokenizer: Tokenizer | None) -> Tokenizer:
    """The tokenizer given (it must be fitted), or a new one for the spec: words for ids, characters for one-hot."""
    if tokenizer is None:
        level = "word" if spec.input.vocab_size is not None else "char"
        return Tokenizer(level, vocab_size=spec.input.vocab_size or spec.input.features)
    if not tokenizer.fitted:
        raise DataError("the tokenizer passed has no vocabulary", fix="fit it first, or pass tokenizer=None")
    return tokenizer


def _streamed_text_for_spec(
    spec: ModelSpec,
    source: str,
    path: Path,
    split: str,
    limit: int | None,
    tokenizer: Tokenizer | None,
    text_column: str,
    label_column: str,
) -> Dataset:
    """A text file too large to hold: indexed in one pass that fits the tokenizer, its rows tokenized and
    padded a batch at a time (:mod:`rnnspec.data.textstream`); the labels, one per row, are held."""
    fit = tokenizer is None
    tokenizer = _tokenizer_for(spec, tokenizer)
    counts: Counter[str] | None = Counter() if fit else None
    index, labels, lines = textstream.index_text_file(
        path, tokenize=tokenizer.tokenize, counts=counts, text_column=text_column, label_column=label_column,
        limit=limit,
    )  # fmt: skip
    if counts is not None:
        tokenizer.fit_counts(counts)
    width = spec.input.seq_len if spec.input.seq_len is not None else index.longest
    features = spec.input.features
    if features is not None and tokenizer.num_ids > features:
        raise DataError(
            f"the tokenizer has {tokenizer.num_ids} ids, more than the spec's input.features",
            expected=f"at most {features} ids",
            fix="fit the tokenizer with vocab_size=features",
        )
    rows = TextRows(str(path), [], labels, lines)
    wheres = textstream.Wheres(str(path), lines)
    y, classes = _labels(spec, labels, wheres, width, tokenizer.classes, fit, label_column, rows)  # type: ignore[arg-type]
    del rows, labels, lines, wheres  # only the index stays: 12 bytes a row
    if fit:
        tokenizer.classes = classes
    x = textstream.EncodedRows(index, tokenizer, width, features)
    return Dataset(x, y, source, split, tokenizer=tokenizer, classes=classes)  # type: ignore[arg-type]


def _check_steps(steps: int, value: object, at: str, column: str) -> None:
    from rnnspec.data.labels import per_step_values

    labels = per_step_values(value, at, column)
    if len(labels) != steps:
        raise DataError(
            f"the text has {steps} token(s) but {len(labels)} per-step label(s)",
            where=at,
            received=f"{len(labels)} labels",
            expected=f"one label per token ({steps})",
            fix="give one label per token (the tokenizer splits at spaces and punctuation)",
        )


def _labels(
    spec: ModelSpec,
    values: list,
    wheres: list[str],
    width: int,
    classes: tuple[str, ...] | None,
    fit: bool,
    column: str,
    rows: TextRows | None = None,
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Labels for ``spec``'s loss: numbers (regression) or class ids, padded per step like the inputs."""
    kind = _label_kind(spec)
    if kind == "regression" or (kind is None and spec.training is None and _all_numbers(values)):
        loss = spec.training.loss.name if spec.training is not None else "regression"
        targets = numeric_targets(
            values, wheres, units=spec.output_units, per_step=spec.output_per_step, column=column, loss=loss
        )
        if spec.output_per_step:
            y = pad_sequences(targets, width, dtype="float32")
            return (y[..., 0] if spec.output_units == 1 else y), None
        y = np.stack(targets).astype(np.float32)
        return (y[:, 0] if spec.output_units == 1 else y), classes
    if spec.output_per_step:
        ids, classes = class_ids(values, wheres, classes, fit=fit, column=column)
        return pad_sequences(ids, width, dtype="int64"), classes
    if rows is None:
        ids, classes = class_ids([[v] for v in values], wheres, classes, fit=fit, column=column)
        return np.concatenate(ids), classes
    return label_ids(rows, classes, fit=fit)


def _all_numbers(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _sequences_for_spec(
    spec: ModelSpec, source: str, path: Path, split: str, limit: int | None, text_column: str, label_column: str
) -> Dataset:
    """Float feature sequences from JSONL, padded with the spec's mask value (Keras ``pad_sequences``, pre)."""
    assert spec.input.features is not None
    x_key = text_column if text_column != "text" else "x"
    y_key = label_column if label_column != "label" else "y"
    xs, ys, lines = read_sequence_jsonl(
        path, features=spec.input.features, per_step=spec.output_per_step, x_key=x_key, y_key=y_key
    )
    if limit is not None:
        xs, ys, lines = xs[:limit], ys[:limit], lines[:limit]
    pad = spec.input.mask_value if spec.input.mask_value is not None else 0.0
    x = pad_sequences(xs, spec.input.seq_len, dtype="float32", value=pad)
    wheres = [f"{path}:{line}" for line in lines]
    y, classes = _labels(spec, ys, wheres, x.shape[1], None, True, y_key)
    return Dataset(x, y, source, split, classes=classes)


def _xy_for_spec(spec: ModelSpec, source: str, path: Path, split: str, limit: int | None) -> Dataset:
    """Arrays ``x`` and ``y`` of an ``.npz``, as they are (one split; pass the test file for evaluation)."""
    x, y = read_xy_npz(path)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if spec.input.vocab_size is not None:
        if not np.issubdtype(x.dtype, np.integer):
            raise DataError(
                "the spec's input is token ids, but x holds non-integer values",
                where=source,
                received=f"x of dtype {x.dtype}, shape {x.shape}",
                expected="integer ids (n, steps)",
                fix="save x as integers, or use `input.features` for float inputs",
            )
        _check_ids(x, spec.input.vocab_size, "input.vocab_size")  # before the cast, which would wrap large ids
        x = x.astype(np.int32)
    else:
        x = x.astype(np.float32)
        if x.ndim == 2 and spec.input.features == 1:
            x = x.with_feature_axis() if isinstance(x, LazyRows) else x[..., None]
        finite = x.all_finite() if isinstance(x, LazyRows) else np.isfinite(x).all()
        if not finite:
            raise DataError("x contains NaN or infinity", where=source, fix="clean the data first")
    kind = _label_kind(spec)
    if kind in ("regression", None) or spec.training is None:
        y = y.astype(np.float32)
        lead = 2 if spec.output_per_step else 1
        if spec.output_units == 1 and y.ndim == lead + 1 and y.shape[-1] == 1:
            y = y[..., 0]
    elif np.issubdtype(y.dtype, np.floating) and (y != np.round(y)).any():
        raise DataError(
            "y holds fractional numbers, but the loss needs class ids",
            where=source,
            received=f"y of dtype {y.dtype}",
            fix="for numeric targets use `loss: mse` (or mae, huber)",
        )
    elif kind != "categorical" or y.ndim < (3 if spec.output_per_step else 2):
        if y.size and (not np.all(np.isfinite(y)) or np.max(y) >= 2**63 or np.min(y) < -(2**63)):
            raise DataError(
                "y holds labels that are not class ids (too large, or not finite)",
                where=source,
                received=f"y of dtype {y.dtype} with values from {y.min()} to {y.max()}",
                expected="class ids from 0 to the number of classes - 1",
            )
        y = y.astype(np.int64)
    return Dataset(x, y, source, split)


# ---------------------------------------------------------------------------------------------------
# Checking data against a spec
# ---------------------------------------------------------------------------------------------------


def _label_kind(spec: ModelSpec) -> str | None:
    """``categorical``, ``binary``, ``regression`` or None (no label range to check), from the loss or the head."""
    if spec.training is not None:
        name = spec.training.loss.name
        if name in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
            return "categorical"
        if name in REGRESSION_LOSSES:
            return "regression"
        return "binary" if name == "binary_crossentropy" else None
    if spec.output_activation == "softmax":
        return "categorical"
    return "binary" if spec.output_activation == "sigmoid" and spec.output_units == 1 else None


def _check_ids(ids: Any, size: int, field: str, fix: str | None = None) -> None:
    """Every id in ``[0, size)``, or a DataError naming the first that is not (rows read from a file are
    checked a chunk at a time)."""
    bounds = ids.known_bounds() if isinstance(ids, OnDemandRows) else None
    if bounds is not None and bounds[0] >= 0 and bounds[1] < size:
        return
    blocks = _chunks_at(ids) if isinstance(ids, OnDemandRows) else [(0, np.asarray(ids))]
    for first, block in blocks:
        if block.size and (block.min() < 0 or block.max() >= size):
            bad = np.argwhere((block < 0) | (block >= size))[0]
            value = block[tuple(bad)]
            low, high = ids.min(), ids.max()
            raise DataError(
                f"token id {value} does not fit the spec's {field}",
                received=f"id {value} at sample {first + bad[0]}, step {bad[1]} (ids span [{low}, {high}])",
                expected=f"ids in [0, {size})",
                fix=fix or f"set `{field}: {int(high) + 1}` or more",
            )


def _chunks_at(rows: OnDemandRows) -> Any:
    """``(index of the chunk's first row, chunk)`` over every row of a file-backed array."""
    first = 0
    for chunk in rows.chunks():
        yield first, chunk
        first += len(chunk)


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
    cells = [i for i, entry in enumerate(spec.recurrent) if getattr(entry, "cell", None)]
    last = f"recurrent[{cells[-1]}]"
    lead = x.shape[:2] if spec.output_per_step else x.shape[:1]
    if y.shape == lead:
        return
    # targets with a unit axis: numbers (regression) or one-hot rows, as many as the output units
    if y.shape == (*lead, spec.output_units) and np.issubdtype(y.dtype, np.floating):
        return
    if spec.output_per_step:
        raise DataError(
            f"the spec predicts one output per step, but {src} has one label per sequence",
            received=f"labels of shape {y.shape}",
            expected=f"per-step labels of shape {x.shape[:2]}",
            fix=f"set `return_sequences: false` on the last recurrent layer ({last})",
        )
    raise DataError(
        f"the spec predicts one output per sequence, but {src} has a label per step",
        received=f"labels of shape {y.shape}",
        expected=f"one label per sequence, shape {x.shape[:1]}",
        fix=f"set `return_sequences: true` on the last recurrent layer ({last})",
    )


def _check_label_range(spec: ModelSpec, y: np.ndarray, src: str) -> None:
    kind = _label_kind(spec)
    if kind not in ("categorical", "binary") or y.size == 0:
        return
    units = spec.output_units
    low, high = (int(v) for v in (y.min(), y.max())) if np.issubdtype(y.dtype, np.integer) else (0, 0)
    if not np.issubdtype(y.dtype, np.integer):
        finite = y[np.isfinite(y)]
        low, high = (int(finite.min()), int(finite.max())) if finite.size else (0, 0)
    outputs = f"{units} output unit(s), {spec.output_activation}"
    if kind == "categorical" and (low < 0 or high >= units):
        needed = high + 1
        raise DataError(
            f"{src} has labels outside the model's classes",
            received=f"labels in [{low}, {high}] ({needed} classes) for {outputs}",
            expected=f"labels in [0, {units})",
            fix=f"set the head's `units: {needed}`"
            if low >= 0 and needed <= 100_000
            else "labels must be class ids from 0 to the number of classes - 1",
        )
    if kind == "binary" and (units != 1 or low < 0 or high > 1):
        classes = len(np.unique(y))
        raise DataError(
            f"{src} does not fit a binary (yes/no) output",
            received=f"{classes} distinct labels in [{low}, {high}] for {outputs}",
            expected="labels 0 and 1 with one sigmoid output unit",
            fix=("map the two labels to 0 and 1, or " if classes <= 2 else f"for {classes} classes ")
            + f"use `head: {{units: {high + 1}, activation: softmax}}` and `loss: sparse_categorical_crossentropy`"
            + f" (class ids 0 to {high})",
        )
