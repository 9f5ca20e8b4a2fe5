"""Pretrained embedding tables (``embedding.weights``): an ``.npy`` array by id, or a GloVe text file by word.

The table initialises the embedding when a model is built (:func:`rnnspec.build` without weights: every
backend gets the same canonical weights). Files are foreign input, read within bounds:

- ``.npy``: the header is checked against the bytes stored before anything is allocated
  (:func:`rnnspec.data.npy.npy_header`), the array charged to a :class:`~rnnspec.core.budget.ReadBudget`;
  its shape must be ``(vocab_size, output_dim)``;
- GloVe ``.txt`` (``word v1 ... vD`` a line): streamed a line at a time, each line at most
  :data:`MAX_LINE_BYTES`; only the vocabulary's words are kept (one row each), so memory is the table's;
- ``vocabulary``: an rnnspec tokenizer file (id ``i + 2`` is ``tokens[i]``; 0 padding, 1 out-of-vocabulary) or
  a JSON object ``{word: id}`` (Keras's ``tokenizer.word_index``), at most :data:`MAX_VOCABULARY_BYTES`.

A row the file does not give (a word GloVe lacks, the padding and out-of-vocabulary rows, an id no word has)
keeps the initial value drawn from the seed (Keras's ``uniform(-0.05, 0.05)``); the note says how many.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from rnnspec.core.budget import ReadBudget
from rnnspec.data.npy import npy_header
from rnnspec.data.tokenizer import TOKENIZER_FORMAT, DataError
from rnnspec.lang.loader import base_dir_of
from rnnspec.lang.spec import ModelSpec

__all__ = ["MAX_LINE_BYTES", "MAX_VOCABULARY_BYTES", "pretrained_table", "read_vocabulary"]

MAX_LINE_BYTES = 1 << 20
"""The longest line of a GloVe file read (a 300-d vector is about 3 KB)."""
MAX_VOCABULARY_BYTES = 256 << 20
"""The largest vocabulary file read."""


def _path(text: str, spec: ModelSpec, field: str) -> Path:
    path = Path(text).expanduser()
    base = base_dir_of(spec)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if not path.is_file():
        raise DataError(
            f"the embedding's {field} file does not exist",
            where=f"embedding.{field}",
            received=str(path),
            fix="check the path (a relative path starts from the spec file's folder)",
        )
    return path


def pretrained_table(spec: ModelSpec, initial: np.ndarray) -> tuple[np.ndarray, str]:
    """The embedding table ``spec.embedding.weights`` names, as float32 ``(vocab_size, output_dim)``, and a note
    saying how its rows were filled. ``initial`` (the seeded table) gives the rows the file does not."""
    embedding = spec.embedding
    assert embedding is not None and embedding.weights is not None
    path = _path(embedding.weights, spec, "weights")
    if path.suffix.lower() == ".npy":
        table = _npy_table(path, tuple(initial.shape))
        return table, f"embedding: all {len(table):,} rows from {path.name}"
    assert embedding.vocabulary is not None
    words = read_vocabulary(_path(embedding.vocabulary, spec, "vocabulary"), len(initial))
    return _glove_table(path, words, initial)


def _npy_table(path: Path, shape: tuple[int, int]) -> np.ndarray:
    where = f"embedding.weights ({path})"
    budget = ReadBudget(path, error=DataError)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset, stored, dtype = npy_header(fh, size, where)
        if stored != shape:
            raise DataError(
                "the pretrained table does not fit the embedding",
                where=where,
                received=f"an array of shape {stored}",
                expected=f"shape {shape}: (input.vocab_size, embedding.output_dim), one row per id",
                fix="save the table for this vocabulary and output_dim, or set vocab_size / output_dim to its shape",
            )
        budget.charge(np.prod(shape, dtype=np.float64) * (dtype.itemsize + 4), "the table")
        fh.seek(offset)
        data = np.fromfile(fh, dtype=dtype, count=int(np.prod(shape)))
    table = data.reshape(shape).astype(np.float32)
    _check_finite(table, where)
    return table


def _check_finite(table: np.ndarray, where: str, what: str = "the table") -> None:
    bad = ~np.isfinite(table)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DataError(
            f"{what} holds non-finite numbers (NaN or infinity)",
            where=where,
            received=f"{int(bad.sum()):,} of them, the first in row {row}",
            fix="replace them (np.nan_to_num) and save the table again",
        )


def read_vocabulary(path: Path, vocab_size: int) -> dict[str, int]:
    """Word → id from an rnnspec tokenizer file or a JSON object ``{word: id}``; ids ``>= vocab_size`` are left out
    (Keras's ``num_words``: the spec's ids are below ``input.vocab_size``)."""
    where = f"embedding.vocabulary ({path})"
    size = path.stat().st_size
    if size > MAX_VOCABULARY_BYTES:
        raise DataError(
            "the vocabulary file is too large to be a vocabulary",
            where=where,
            received=f"{size:,} bytes",
            expected=f"at most {MAX_VOCABULARY_BYTES:,} bytes",
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError("not a readable JSON vocabulary", where=where, received=str(exc)[:160]) from None
    if isinstance(data, dict) and data.get("format") == TOKENIZER_FORMAT:
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError("the tokenizer file's tokens are not a list of words", where=where)
        words = {token: i + 2 for i, token in enumerate(tokens)}
    elif isinstance(data, dict) and all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        words = dict(data)
    else:
        raise DataError(
            "not a vocabulary",
            where=where,
            received=f"a JSON {type(data).__name__}",
            expected="an rnnspec tokenizer file, or a JSON object {word: id} (Keras's tokenizer.word_index)",
        )
    bad = [w for w, i in words.items() if i < 0]
    if bad:
        raise DataError("the vocabulary gives negative ids", where=where, received=f"{bad[0]!r}: {words[bad[0]]}")
    return {w: i for w, i in words.items() if i < vocab_size}


def _glove_table(path: Path, words: dict[str, int], initial: np.ndarray) -> tuple[np.ndarray, str]:
    where = f"embedding.weights ({path})"
    vocab_size, dim = initial.shape
    table = initial.astype(np.float32, copy=True)
    found = np.zeros(vocab_size, dtype=bool)
    with open(path, "rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(
                    f"line {number} is longer than {MAX_LINE_BYTES:,} bytes; not a GloVe text file",
                    where=where,
                )
            try:
                parts = raw.decode("utf-8").rstrip("\r\n").rstrip(" ").split(" ")
            except UnicodeDecodeError:
                raise DataError(f"line {number} is not UTF-8 text; not a GloVe text file", where=where) from None
            if number == 1 and len(parts) - 1 != dim:
                raise DataError(
                    "the GloVe vectors do not fit the embedding",
                    where=where,
                    received=f"{len(parts) - 1} numbers after the word on line 1",
                    expected=f"{dim} (embedding.output_dim)",
                    fix=f"use the {dim}d GloVe file, or set embedding.output_dim to {len(parts) - 1}",
                )
            if len(parts) < dim + 1:
                raise DataError(f"line {number} has {len(parts) - 1} numbers, not {dim}", where=where)
            word = " ".join(parts[:-dim])  # a word may hold spaces (glove.840B)
            row = words.get(word)
            if row is None or found[row]:
                continue
            try:
                vector = np.array(parts[-dim:], dtype=np.float32)
            except ValueError:
                raise DataError(f"line {number} ({word!r}) holds something that is not a number", where=where) from None
            _check_finite(vector[None], where, f"line {number} ({word!r})")
            table[row] = vector
            found[row] = True
    if not found.any():
        raise DataError(
            "none of the vocabulary's words is in the GloVe file",
            where=where,
            received=f"{len(words):,} words (e.g. {', '.join(repr(w) for w in list(words)[:3])}), {number:,} lines",
            fix="check that the vocabulary and the GloVe file are the right ones (GloVe's words are lower-case)",
        )
    missing = [w for w, i in words.items() if not found[i]]
    unused = vocab_size - int(found.sum()) - len({words[w] for w in missing})
    note = f"embedding: {int(found.sum()):,} of {vocab_size:,} rows from {path.name}"
    kept = []
    if missing:
        example = ", ".join(repr(w) for w in missing[:5])
        kept.append(f"{len(missing):,} words not in it ({example}{', ...' if len(missing) > 5 else ''})")
    if unused > 0:
        kept.append(f"{unused:,} ids no word of the vocabulary has (padding, out-of-vocabulary...)")
    if kept:
        note += f"; {' and '.join(kept)} keep their initial values (uniform in ±0.05, from the seed)"
    return table, note
