"""The built-in data sets (``builtin:NAME``): generated, no file.

``hello`` is seed 004's "hello! world" character task, ``sentiment`` an IMDB-shaped binary task that a
model can learn, ``topics`` a Reuters-shaped multi-class task. Deterministic for ``(seed, split)``.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from rnnspec.data.dataset import Dataset, check_split
from rnnspec.data.keras_datasets import IMDB_CLASSES, REUTERS_CLASSES
from rnnspec.data.sequences import inputs_for_spec, pad_sequences
from rnnspec.data.tokenizer import DataError
from rnnspec.data.validation import label_kind
from rnnspec.util import available_memory, human_bytes, is_int_at_least

if TYPE_CHECKING:
    from rnnspec.lang.spec import ModelSpec

__all__ = [
    "BUILTINS",
    "HELLO_TEXT",
    "builtin_dataset",
    "generated_bytes",
    "hello_data",
    "sentiment_data",
    "topics_data",
]

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

_START_ID = 1  # like Keras's start_char: generated sequences begin with it
_FIRST_WORD_ID = 3  # like Keras's index_from: 0 padding, 1 start, 2 out-of-vocabulary
_DEFAULT_SEQ_LEN = 100
_SIZES = {"sentiment": {"train": 1024, "test": 256}, "topics": {"train": 2048, "test": 512}}


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
    rng = _rng(seed, "sentiment", check_split(split))
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
    rng = _rng(seed, "topics", check_split(split))
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
    return spec.output_units if label_kind(spec) == "categorical" else len(REUTERS_CLASSES)


def builtin_dataset(name: str, spec: ModelSpec, split: str, seed: int) -> Dataset:
    source = f"builtin:{name}"
    if name == "hello":
        if spec.input.features is None:
            raise DataError(
                "builtin:hello is one-hot characters, but the spec's input is token ids",
                received=f"input.vocab_size: {spec.input.vocab_size}",
                expected="input.features: 9 (one-hot over the 9 characters of 'hello! world')",
                fix="use `input: {features: 9}` (see specs/char_rnn_hello.yaml)",
            )
        check_split(split)
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
    n = _SIZES[name][check_split(split)]
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
