"""Text tables (CSV, TSV, JSONL) with a text column and a label column, read with located errors."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.data.tokenizer import DataError, loads_json

__all__ = [
    "TEXT_SUFFIXES",
    "TextRows",
    "label_ids",
    "read_text_file",
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
    labels: list[Any]
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
    label_column: str | None = "label",
    fmt: str | None = None,
) -> TextRows:
    """Read a CSV/TSV (with a header row) or JSONL file (one JSON object per line).

    ``fmt`` (``csv``, ``tsv``, ``jsonl``) defaults to the file's suffix. ``label_column=None`` reads the
    texts only (inputs to predict on): the labels are then all None. Blank lines are skipped. A
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
            "the file has no data rows", where=where, expected=f"rows with {_columns(text_column, label_column)}"
        )
    return rows


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


def _read_delimited(fh: Any, where: str, delimiter: str, text_column: str, label_column: str | None) -> TextRows:
    reader = csv.reader(fh, delimiter=delimiter, strict=True)
    header: list[str] = []
    line = 0
    rows = TextRows(where, [], [], [])
    try:
        while not header:  # the first non-blank row is the header
            line = reader.line_num + 1
            header = [name.strip() for name in next(reader)]
        text_at = _column(header, text_column, where, "text_column")
        label_at = None if label_column is None else _column(header, label_column, where, "label_column")
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
            if label_at is None or label_column is None:
                rows.labels.append(None)
            else:
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


def _read_jsonl(fh: Any, where: str, text_column: str, label_column: str | None) -> TextRows:
    rows = TextRows(where, [], [], [])
    seen_any = False
    for line, raw in enumerate(fh, start=1):
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
        rows.labels.append(
            None if label_column is None else _json_label(obj[label_column], f"{where}:{line}", label_column)
        )
        rows.lines.append(line)
    if not seen_any:
        raise DataError("the file is empty", where=f"{where}:1", expected="one JSON object per line")
    return rows


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
