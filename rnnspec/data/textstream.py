"""Text files larger than memory: read once to index them, then tokenized a batch at a time.

One pass over a CSV/TSV/JSONL file (:func:`index_text_file`) checks every row as
:func:`~rnnspec.data.textfiles.read_text_file` does, and keeps only, per row, where its bytes are
(12 bytes a row stay for training), its line and its label (equal labels share one object) until the
labels are read, and the longest row's number of tokens; it counts the tokens as it goes, so the
tokenizer is fitted on the same pass, and hashes the bytes it reads. The texts are not kept.

:class:`EncodedRows` then looks like the padded id array (or its one-hot form) to the code that
trains on it: a batch gathered by index reads just those rows (``os.pread``, sorted, neighbours
read at once), tokenizes them with the fitted tokenizer and pads them to the width of the whole
file -- the spec's ``seq_len``, or the longest row, known from the pass -- so every batch is the
one the in-memory path makes from the same rows.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnspec.data.lazy import OnDemandRows
from rnnspec.data.sequences import one_hot, pad_sequences
from rnnspec.data.textfiles import TextLayout, iter_text_records
from rnnspec.data.tokenizer import DataError, Tokenizer

__all__ = ["STREAM_BYTES", "EncodedRows", "TextIndex", "Wheres", "index_text_file"]

STREAM_BYTES = 256 * 1024**2
"""Text files larger than this (with one label per sample) are indexed and read a batch at a time."""


@dataclass(frozen=True, eq=False)
class TextIndex:
    """Where each row of a text file is: bytes ``starts[i]`` to ``starts[i] + sizes[i]``."""

    layout: TextLayout
    starts: np.ndarray
    sizes: np.ndarray
    longest: int
    """The most tokens in a row."""
    sha256: str
    stat: tuple[int, int]
    """File size and modification time when it was read: a file changed since is refused, not misread."""

    def __len__(self) -> int:
        return len(self.starts)

    def texts(self, rows: np.ndarray) -> list[str]:
        """The texts of ``rows`` (indices into the index), in that order."""
        out: list[str] = [""] * len(rows)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        path = self.layout.path
        with open(path, "rb") as fh:
            fd = fh.fileno()
            info = os.fstat(fd)
            if (info.st_size, info.st_mtime_ns) != self.stat:
                raise DataError(
                    "the data file changed while it was being read",
                    where=path,
                    fix="do not edit or replace a data file while rnnspec trains on it; start again",
                )
            breaks = np.flatnonzero(np.diff(ranked) > 1) + 1  # runs of neighbouring rows: one read each
            for run in np.split(np.arange(ranked.size), breaks):
                first, last = int(ranked[run[0]]), int(ranked[run[-1]])
                base = int(self.starts[first])
                data = os.pread(fd, int(self.starts[last]) + int(self.sizes[last]) - base, base)
                for k in run:
                    row = int(ranked[k])
                    at = int(self.starts[row]) - base
                    out[int(order[k])] = self.layout.text_of(data[at : at + int(self.sizes[row])], f"row {row + 1}")
        return out


class Wheres:
    """``FILE:LINE`` of every row, made when asked (a list of them would cost more than the labels)."""

    def __init__(self, path: str, lines: np.ndarray):
        self.path, self.lines = path, lines

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i: int) -> str:
        return f"{self.path}:{int(self.lines[i])}"

    def __iter__(self) -> Iterator[str]:
        return (f"{self.path}:{line}" for line in self.lines.tolist())


def index_text_file(
    path: str | os.PathLike[str],
    *,
    tokenize: Callable[[str], list[str]],
    counts: Counter[str] | None,
    text_column: str,
    label_column: str | None,
    limit: int | None = None,
) -> tuple[TextIndex, list[Any], np.ndarray]:
    """Read a text file once: every row checked, located and its tokens counted (into ``counts`` too when
    given, to fit a tokenizer); stops after ``limit`` rows. Returns the index, the labels as written and
    each row's first line (for the labels' error messages)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        info = os.fstat(fh.fileno())
    layout, records = iter_text_records(path, text_column=text_column, label_column=label_column, digest=digest)
    starts, sizes, lines = array("q"), array("I"), array("q")
    labels: list[Any] = []
    shared: dict[Any, Any] = {}
    longest = 0
    for record in records:
        tokens = tokenize(record.text)
        if counts is not None:
            counts.update(tokens)
        longest = max(longest, len(tokens))
        if record.end - record.start >= 2**32:
            raise DataError(
                "a row is larger than 4 GiB", where=f"{path}:{record.line}", fix="split the text into smaller rows"
            )
        starts.append(record.start)
        sizes.append(record.end - record.start)
        lines.append(record.line)
        label = record.label
        labels.append(label if isinstance(label, list) else shared.setdefault((type(label), label), label))
        if limit is not None and len(starts) >= limit:
            records.close()
            break
    index = TextIndex(
        layout,
        _packed(starts, np.int64),
        _packed(sizes, np.uint32),
        longest,
        digest.hexdigest(),
        (info.st_size, info.st_mtime_ns),
    )
    return index, labels, _packed(lines, np.int64)


def _packed(values: array, dtype: Any) -> np.ndarray:
    """An array module's values as NumPy's ``dtype`` (a copy: the array is freed)."""
    return np.frombuffer(values, dtype=np.dtype(values.typecode)).astype(dtype) if len(values) else np.zeros(0, dtype)


class EncodedRows(OnDemandRows):
    """The padded token ids of an indexed text file (one-hot over ``depth`` ids when given), made a batch at
    a time: rows tokenized with ``tokenizer`` and pre-padded (pre-truncated) to ``width``."""

    def __init__(self, index: TextIndex, tokenizer: Tokenizer, width: int, depth: int | None = None):
        self.index, self.tokenizer, self.width, self.depth = index, tokenizer, int(width), depth
        self.row_shape = (self.width,) if depth is None else (self.width, int(depth))
        self.dtype = np.dtype(np.int32 if depth is None else np.float32)
        self.start, self.stop = 0, len(index)

    def _gather(self, index: np.ndarray) -> np.ndarray:
        texts = self.index.texts(index + self.start)
        ids = pad_sequences(self.tokenizer.encode(texts), self.width)
        out = ids if self.depth is None else one_hot(ids, self.depth, zero_pad=True)
        return out.astype(self.dtype, copy=False)

    def known_bounds(self) -> tuple[Any, Any]:
        """Ids lie in ``[0, tokenizer.num_ids)``, one-hot values in ``[0, 1]``: nothing needs reading to know."""
        return (0, self.tokenizer.num_ids - 1) if self.depth is None else (0, 1)

    def all_finite(self) -> bool:
        return True

    def content_key(self) -> str:
        """What determines every value: the file's bytes, the tokenizer, the width, the rows and the dtype."""
        tokens = hashlib.sha256(self.tokenizer.to_json().encode()).hexdigest()
        return f"{self.index.sha256}/{tokens}/{self.row_shape}/{self.start}:{self.stop}/{self.dtype.str}"

    def __repr__(self) -> str:
        return f"EncodedRows({self.index.layout.path!r}, shape={self.shape}, dtype={self.dtype})"
