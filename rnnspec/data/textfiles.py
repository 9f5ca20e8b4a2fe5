"""Text tables (CSV, TSV, JSONL) with a text column and a label column, read with located errors."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rnnspec.data.tokenizer import DataError, loads_json

__all__ = [
    "TEXT_SUFFIXES",
    "Record",
    "TextLayout",
    "TextRows",
    "iter_text_records",
    "label_ids",
    "read_text_file",
    "text_format",
]


TEXT_SUFFIXES: dict[str, str] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
"""File suffixes read as text tables, and their format."""


# ---------------------------------------------------------------------------------------------------
# Text files (CSV, TSV, JSONL)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextRows:
    """The rows of a text file: ``texts[i]`` and ``labels[i]`` come from line ``lines[i]`` of ``path``.

    Labels are as written: ints (JSON integers or booleans), floats, strings, or lists (JSONL per-step
    labels); :func:`load_data` turns them into class ids or numbers, as the spec's loss needs.
    """

    path: str
    texts: list[str]
    labels: Any
    lines: Any

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, limit: int | None) -> TextRows:
        """The first ``limit`` rows (all of them for None)."""
        if limit is None:
            return self
        return TextRows(self.path, self.texts[:limit], self.labels[:limit], self.lines[:limit])


@dataclass(frozen=True)
class Record:
    """One row of a text file: its text and label (as written), its first line, and its bytes ``start .. end``."""

    text: str
    label: Any
    line: int
    start: int
    end: int


@dataclass(frozen=True)
class TextLayout:
    """How to read one row back from its bytes: the format and, for CSV/TSV, the text column's position."""

    path: str
    kind: str
    text_column: str
    text_at: int | None = None
    fields: int | None = None

    def text_of(self, raw: bytes, row: str) -> str:
        """The text of the row stored as ``raw`` (checked when the file was first read); ``row`` names it."""
        where = f"{self.path} ({row})"
        if self.kind == "jsonl":
            obj = loads_json(_decode(raw, where, raw.startswith(_BOM)), where)
            return obj[self.text_column]  # type: ignore[no-any-return]
        pieces = [_decode(piece, where, False) for piece in raw.splitlines(keepends=True)]  # lines as first read
        row = next(csv.reader(pieces, delimiter=_DELIMITERS[self.kind], strict=True))
        assert self.text_at is not None
        return row[self.text_at]


_DELIMITERS = {"csv": ",", "tsv": "\t"}
MAX_LINE_BYTES = 64 * 1024**2
"""Longest line read from a text file: a longer one (a binary or corrupt file) is refused, not held in memory."""
_BOM = b"\xef\xbb\xbf"


def text_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """``csv``, ``tsv`` or ``jsonl``: ``fmt``, or the file's suffix; a DataError for anything else."""
    kind = fmt or TEXT_SUFFIXES.get(Path(path).suffix.lower())
    if kind not in ("csv", "tsv", "jsonl"):
        raise DataError(
            "unknown text file format",
            where=str(path),
            received=repr(fmt or Path(path).suffix),
            expected=", ".join(TEXT_SUFFIXES),
            fix="name the file with one of these suffixes",
        )
    return kind


def read_text_file(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str | None = None,
) -> TextRows:
    """Read a CSV/TSV (with a header row) or JSONL file (one JSON object per line).

    ``fmt`` (``csv``, ``tsv``, ``jsonl``) defaults to the file's suffix. ``label_column=None`` reads the
    texts only (inputs to predict on): the labels are then all None. Blank lines are skipped. A
    missing column, an empty file, a row with the wrong number of fields, a bad JSON line or an empty
    label raise a :class:`DataError` located at ``file:line``.
    """
    rows = TextRows(str(path), [], [], [])
    for record in iter_text_records(path, text_column=text_column, label_column=label_column, fmt=fmt)[1]:
        rows.texts.append(record.text)
        rows.labels.append(record.label)
        rows.lines.append(record.line)
    return rows


def iter_text_records(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str | None = None,
    digest: Any = None,
) -> tuple[TextLayout, Iterator[Record]]:
    """The rows of a text file one at a time, each with the bytes it was read from, checked as
    :func:`read_text_file` checks them; and the layout that reads a row's text back from those bytes.

    The file is read as bytes in one pass (lines end at ``\\n``, ``\\r\\n`` or ``\\r``); nothing is kept
    but the current row. The header of a CSV/TSV is read before this returns (the layout needs it).
    ``digest`` (a ``hashlib`` object) is updated with every byte read.
    """
    where = str(path)
    kind = text_format(path, fmt)
    fh = _open_bytes(path, where)  # closed by the generator (or below, when reading the header fails)
    lines = _Lines(fh, where, digest)
    try:
        if kind == "jsonl":
            layout = TextLayout(where, kind, text_column)
            records = _jsonl_records(lines, where, text_column, label_column)
        else:
            layout, records = _delimited_records(lines, where, kind, text_column, label_column)
    except BaseException:
        fh.close()
        raise
    return layout, _closing(records, fh, where, _columns(text_column, label_column))


def _open_bytes(path: Path, where: str) -> BinaryIO:
    """``path`` opened for reading bytes; the caller owns the handle."""
    try:
        return Path(path).open("rb")
    except FileNotFoundError:
        raise DataError("data file not found", where=where, fix="check the path") from None


def _closing(records: Iterator[Record], fh: Any, where: str, columns: str) -> Iterator[Record]:
    with fh:
        seen = False
        for record in records:
            seen = True
            yield record
    if not seen:
        raise DataError("the file has no data rows", where=where, expected=f"rows with {columns}")


def _decode(raw: bytes, where: str, first: bool) -> str:
    try:
        return raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            "the file is not UTF-8 text", where=where, received=str(exc), fix="save the file as UTF-8"
        ) from None


class _Lines:
    """The lines of a binary file as text, with the byte offset after the last line handed out."""

    def __init__(self, fh: Any, where: str, digest: Any = None):
        self.fh, self.where, self.digest = fh, where, digest
        self.start = 0  # where the last line handed out starts
        self.offset = 0  # bytes handed out so far
        self.number = 0  # lines handed out so far

    def __iter__(self) -> Iterator[str]:
        while True:  # split at b"\n"; a lone b"\r" ends a line too, as in text mode
            chunk = self.fh.readline(MAX_LINE_BYTES + 1)
            if not chunk:
                return
            if len(chunk) > MAX_LINE_BYTES:
                raise DataError(
                    f"line {self.number + 1} is longer than {MAX_LINE_BYTES // 1024**2} MiB",
                    where=f"{self.where}:{self.number + 1}",
                    expected="a text file with one row per line (a CSV field may span lines)",
                    fix="check that this is the data file; split rows that long into several",
                )
            if self.digest is not None:
                self.digest.update(chunk)
            for raw in chunk.splitlines(keepends=True) if b"\r" in chunk[:-2] else (chunk,):
                text = _decode(raw, f"{self.where}:{self.number + 1}", self.offset == 0)
                self.start = self.offset
                self.offset += len(raw)
                self.number += 1
                yield text


def _columns(text_column: str, label_column: str | None) -> str:
    return f"a {text_column!r}" + ("" if label_column is None else f" and a {label_column!r}")


def _empty_file(where: str, text_column: str, label_column: str | None) -> DataError:
    names = repr(text_column) if label_column is None else f"{text_column!r} and {label_column!r}"
    column = "column" if label_column is None else "columns"
    return DataError(
        "the file is empty",
        where=f"{where}:1",
        expected=f"a header row naming the {column} {names}, then one row per sample",
    )


def _delimited_records(
    lines: _Lines, where: str, kind: str, text_column: str, label_column: str | None
) -> tuple[TextLayout, Iterator[Record]]:
    reader = csv.reader(iter(lines), delimiter=_DELIMITERS[kind], strict=True)
    header: list[str] = []
    line = 0
    try:
        while not header:  # the first non-blank row is the header
            line = reader.line_num + 1
            header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise _empty_file(where, text_column, label_column) from None
    except csv.Error as exc:
        raise DataError("malformed CSV", where=f"{where}:{reader.line_num or line}", received=str(exc)) from None
    others = [name for name in header if name not in (text_column, label_column)]
    text_at = _column(header, text_column, where, "text_column", others)
    label_at = None if label_column is None else _column(header, label_column, where, "label_column", others)
    layout = TextLayout(where, kind, text_column, text_at, len(header))

    def records() -> Iterator[Record]:
        line = 0
        try:
            while True:
                line, start = reader.line_num + 1, lines.offset
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
                label = None
                if label_at is not None and label_column is not None:
                    label = _label_cell(row[label_at], f"{where}:{line}", label_column)
                yield Record(row[text_at], label, line, start, lines.offset)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError("malformed CSV", where=f"{where}:{reader.line_num or line}", received=str(exc)) from None

    return layout, records()


def _column(header: list[str], name: str, where: str, option: str, others: list[str]) -> int:
    if header.count(name) == 1:
        return header.index(name)
    problem = f"column {name!r} appears {header.count(name)} times" if name in header else f"no column {name!r}"
    raise DataError(
        problem,
        where=f"{where}:1",
        received=f"columns {header}",
        expected=f"exactly one column named {name!r}",
        fix=f"rename the column in the header, or name yours: {_naming(option, others)}",
    )


def _naming(option: str, names: list[str]) -> str:
    """How to name a column (key): the command line's flag and the Python keyword, with one of ``names``."""
    flag = "--" + option.replace("_", "-")
    example = next((n for n in names if n and n.isprintable() and " " not in n), "NAME")
    return f"{flag} {example} on the command line ({option}={example!r} from Python)"


def _label_cell(cell: str, where: str, label_column: str) -> str:
    value = cell.strip()
    if not value:
        raise DataError(f"empty label in column {label_column!r}", where=where, expected="an integer or a class name")
    return value


def _jsonl_records(lines: _Lines, where: str, text_column: str, label_column: str | None) -> Iterator[Record]:
    seen_any = False
    for raw in lines:
        line, start = lines.number, lines.start
        if not raw.strip():
            continue
        seen_any = True
        obj = loads_json(raw, f"{where}:{line}")
        if not isinstance(obj, dict):
            raise DataError(
                "each line must be a JSON object",
                where=f"{where}:{line}",
                received=type(obj).__name__,
                expected="{"
                + f'"{text_column}": "..."'
                + ("" if label_column is None else f', "{label_column}": ...')
                + "}",
            )
        for key, option in ((text_column, "text_column"), (label_column, "label_column")):
            if key is None:
                continue
            if key not in obj:
                others = [k for k in obj if k not in (text_column, label_column)]
                raise DataError(
                    f"no key {key!r}",
                    where=f"{where}:{line}",
                    received=f"keys {sorted(obj)}",
                    fix=f"add {key!r} to every line, or name yours: {_naming(option, others)}",
                )
        text = obj[text_column]
        if not isinstance(text, str):
            raise DataError(
                f"{text_column!r} must be a string", where=f"{where}:{line}", received=f"{type(text).__name__}"
            )
        label = None if label_column is None else _json_label(obj[label_column], f"{where}:{line}", label_column)
        yield Record(text, label, line, start, lines.offset)
    if not seen_any:
        raise DataError("the file is empty", where=f"{where}:1", expected="one JSON object per line")


def _json_label(value: Any, where: str, label_column: str) -> Any:
    """A label as written: an integer, a number, a class name, or a list (per-step labels, several units)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and value:
        return value
    raise DataError(
        f"bad label in {label_column!r}",
        where=where,
        received=f"{type(value).__name__}: {value!r:.40}",
        expected="a number, true/false, a class name, or a list (one label per step)",
    )


_INT_LABEL = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?")


def _check_int64(rows: TextRows) -> None:
    for value, line in zip(rows.labels, rows.lines, strict=True):
        text = str(value).lstrip("+-")
        if len(text) > 18 and (len(text) > 40 or abs(int(value)) >= 2**63):
            raise DataError(
                "a label is too large for a class id",
                where=f"{rows.path}:{line}",
                received=f"{str(value)[:30]}{'...' if len(str(value)) > 30 else ''}",
                expected="class ids from 0 to the number of classes - 1",
            )


def label_ids(rows: TextRows, classes: tuple[str, ...] | None, *, fit: bool) -> tuple[np.ndarray, Any]:
    """Label ids of ``rows`` and the class names: integers as given, or strings by sorted class name.

    ``fit`` decides the kind from the data; otherwise the labels must match ``classes`` (a reused
    tokenizer's: None means integer labels).
    """
    for value, line in zip(rows.labels, rows.lines, strict=True):
        if isinstance(value, (float, list)):
            raise DataError(
                f"label {value!r:.40} is not a class, but the loss needs one class per sample",
                where=f"{rows.path}:{line}",
                expected="an integer class id or a class name",
                fix="for numeric targets use `loss: mse` (or mae, huber); for one label per step, "
                "set `return_sequences: true` on the last recurrent layer",
            )
    if fit:
        if all(isinstance(v, int) or _INT_LABEL.fullmatch(v) for v in rows.labels):
            _check_int64(rows)
            return np.array([int(v) for v in rows.labels], dtype=np.int64), None
        decimal = next((k for k, v in enumerate(rows.labels) if isinstance(v, str) and _DECIMAL.fullmatch(v)), None)
        if decimal is not None:
            raise DataError(
                f"label {rows.labels[decimal]!r} is a number with a fraction, not a class",
                where=f"{rows.path}:{rows.lines[decimal]}",
                received=f"labels such as {rows.labels[decimal]!r}",
                expected="integer class ids (0, 1, ...) or class names",
                fix="for numeric targets use `loss: mse` (or mae, huber) with a JSONL or .npz file; for classes, "
                "write the class ids as integers",
            )
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
