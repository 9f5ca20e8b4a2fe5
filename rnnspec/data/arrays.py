"""Numeric data files: float feature sequences and targets, for ``features`` specs and regression.

Two formats:

* ``.jsonl`` -- one JSON object per line, ``{"x": [[f, ...], ...], "y": ...}``: ``x`` a sequence of
  steps (each a list of ``input.features`` numbers, or one number when ``features: 1``); ``y`` a
  number, a list of numbers (one per output unit), an integer class, or -- for per-step models -- a
  list with one entry per step of ``x``. The keys can be renamed (``text_column``/``label_column``).
  Sequences of different lengths are padded like Keras's ``pad_sequences`` (``pre``) with the
  spec's ``input.mask_value`` (0 without one), so Keras's ``Masking`` skips the padding.
* ``.npz`` -- arrays ``x`` and ``y`` (``np.savez("data.npz", x=x, y=y)``), read without pickle.

Every problem is a :class:`DataError` at ``file:line`` with what was received and expected.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.budget import ZIP_ERRORS
from rnnspec.data.lazy import lazy_npz_member
from rnnspec.data.npy import npy_header
from rnnspec.data.tokenizer import DataError, loads_json

__all__ = [
    "MAX_ARRAY_BYTES",
    "is_xy_npz",
    "read_input_array",
    "read_sequence_jsonl",
    "read_xy_npz",
    "reads_on_demand",
    "wants_sequence_jsonl",
]

MAX_ARRAY_BYTES = 2 * 1024**3
"""Largest array an ``.npz`` may declare (2 GiB), checked before it is read."""


def wants_sequence_jsonl(path: str | os.PathLike[str], text_column: str) -> bool:
    """Whether a JSONL file holds numeric sequences: in its first object the input (``text_column``, else
    ``x``) is a list rather than a text."""
    from rnnspec.data.textfiles import MAX_LINE_BYTES

    try:
        with open(path, "rb") as fh:
            while raw := fh.readline(MAX_LINE_BYTES + 1):  # bounded: a giant line is not read whole here
                if len(raw) > MAX_LINE_BYTES:
                    return False
                if raw.strip():
                    obj = loads_json(raw.decode("utf-8-sig"), str(path))
                    if not isinstance(obj, dict):
                        return False
                    return isinstance(obj.get(text_column if text_column in obj else "x"), list)
    except (OSError, UnicodeDecodeError, DataError):
        return False
    return False


def read_sequence_jsonl(
    path: str | os.PathLike[str],
    *,
    features: int,
    per_step: bool,
    x_key: str = "x",
    y_key: str | None = "y",
) -> tuple[list[np.ndarray], list[Any], list[int]]:
    """The sequences ``(steps, features)``, the raw targets and the line of each sample.

    ``y_key=None`` reads inputs only (to predict on): the targets are then all None."""
    where = str(path)
    xs: list[np.ndarray] = []
    ys: list[Any] = []
    lines: list[int] = []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                at = f"{where}:{line}"
                obj = loads_json(raw, at)
                if not isinstance(obj, dict):
                    raise DataError(
                        "each line must be a JSON object",
                        where=at,
                        received=type(obj).__name__,
                        expected=_line_form(x_key, y_key),
                    )
                for key in (x_key, y_key):
                    if key is not None and key not in obj:
                        raise DataError(
                            f"no key {key!r}",
                            where=at,
                            received=f"keys {sorted(obj)}",
                            expected=f"{_line_form(x_key, y_key)} on every line",
                            fix="add it, or name the keys with --text-column / --label-column",
                        )
                x = _steps(obj[x_key], features, at, x_key)
                y = None if y_key is None else obj[y_key]
                if per_step and y_key is not None and (not isinstance(y, list) or len(y) != len(x)):
                    got = f"a list of {len(y)}" if isinstance(y, list) else type(y).__name__
                    raise DataError(
                        f"the model predicts one output per step, so {y_key!r} needs one label per step",
                        where=at,
                        received=f"{got} for {len(x)} steps",
                        expected=f"a list of {len(x)} labels",
                        fix="give one label per step, or set `return_sequences: false` on the last recurrent layer",
                    )
                xs.append(x)
                ys.append(y)
                lines.append(line)
    except FileNotFoundError:
        raise DataError("data file not found", where=where, fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise DataError("the file is not UTF-8 text", where=where, received=str(exc)) from None
    if not xs:
        raise DataError("the file has no data rows", where=where, expected=_line_form(x_key, y_key))
    return xs, ys, lines


def _line_form(x_key: str, y_key: str | None) -> str:
    return "{" + f'"{x_key}": [[...], ...]' + ("" if y_key is None else f', "{y_key}": ...') + "}"


def _steps(value: Any, features: int, at: str, key: str) -> np.ndarray:
    expected = f"a list of steps, each a list of {features} numbers" + (" (or one number)" if features == 1 else "")
    if not isinstance(value, list) or not value:
        raise DataError(
            f"{key!r} must be a non-empty list of steps", where=at, received=_short(value), expected=expected
        )
    rows = []
    for t, step in enumerate(value):
        if features == 1 and _is_number(step):
            step = [step]
        if not isinstance(step, list) or len(step) != features or not all(_is_number(v) for v in step):
            raise DataError(
                f"step {t} of {key!r} does not fit input.features: {features}",
                where=at,
                received=_short(step),
                expected=expected,
                fix=f"set `input.features: {len(step)}`" if isinstance(step, list) and step else None,
            )
        rows.append(step)
    arr = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise DataError(f"{key!r} contains NaN or infinity", where=at, fix="clean the data first")
    return arr.astype(np.float32)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, np.ndarray) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- .npz with x and y ----------------------------------------------------------------------------


def is_xy_npz(path: Path) -> bool:
    """Whether ``path`` is a zip archive holding ``x.npy`` and ``y.npy``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except ZIP_ERRORS:
        return False
    return {"x.npy", "y.npy"} <= names


LAZY_BYTES = 256 * 1024**2
"""An uncompressed ``x`` larger than this (``np.savez``) is read a batch at a time, not loaded."""


def read_xy_npz(path: Path) -> tuple[Any, np.ndarray]:
    """Arrays ``x`` and ``y`` of an ``.npz`` written by ``np.savez(x=..., y=...)``; never unpickles.

    An uncompressed ``x`` over :data:`LAZY_BYTES` comes back as :class:`~rnnspec.data.lazy.LazyRows`:
    its rows are read from the file when a batch needs them, so it may be larger than memory."""
    where = str(path)
    lazy = _lazy_x(path)
    if lazy is not None:
        return lazy, _read_y(path, where)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename in ("x.npy", "y.npy") and info.file_size > MAX_ARRAY_BYTES:
                    raise DataError(
                        f"{info.filename[0]} is larger than rnnspec reads ({MAX_ARRAY_BYTES // 1024**3} GiB)",
                        where=where,
                        received=f"{info.file_size} bytes",
                    )
                if info.filename in ("x.npy", "y.npy"):
                    with archive.open(info) as member:  # the header against the bytes stored, before NumPy allocates
                        _check_member_header(member, info.file_size, where, info.filename[0])
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
    except ValueError as exc:
        raise DataError(
            "x and y must be plain numeric arrays (object arrays are not read)",
            where=where,
            received=str(exc),
            fix="save padded numeric arrays: np.savez(path, x=x.astype('float32'), y=y)",
        ) from None
    except (*ZIP_ERRORS, KeyError) as exc:
        raise DataError("not a readable .npz file", where=where, received=str(exc) or type(exc).__name__) from None
    for name, arr in (("x", x), ("y", y)):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise DataError(f"{name} is not numeric", where=where, received=f"dtype {arr.dtype}")
    return x, y


def _check_member_header(member: Any, size: int, where: str, name: str) -> None:
    try:
        npy_header(member, size, f"{where}[{name}]")
    except DataError as exc:
        if exc.received and exc.received.startswith("dtype "):  # not numbers: said for x and y alike
            raise DataError(
                "x and y must be plain numeric arrays (object arrays are not read)",
                where=f"{where}[{name}]",
                received=exc.received,
                fix="save padded numeric arrays: np.savez(path, x=x.astype('float32'), y=y)",
            ) from None
        raise


def reads_on_demand(path: Path) -> bool:
    """Whether :func:`read_xy_npz` reads this file's ``x`` a batch at a time (uncompressed, over LAZY_BYTES)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("x.npy")
    except (*ZIP_ERRORS, KeyError):
        return False
    return info.file_size > LAZY_BYTES and info.compress_type == zipfile.ZIP_STORED


def _lazy_x(path: Path) -> Any:
    """``x`` as rows read on demand, when it is stored uncompressed and large; else None."""
    if not reads_on_demand(path):
        return None
    try:
        return lazy_npz_member(path, "x")
    except (*ZIP_ERRORS, KeyError):
        return None  # read_xy_npz's own path reports it


def _read_y(path: Path, where: str) -> np.ndarray:
    """The ``y`` of an .npz whose ``x`` is read on demand (``y`` is read whole, within the usual limit)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("y.npy")
            if info.file_size > MAX_ARRAY_BYTES:
                raise DataError(
                    f"y is larger than rnnspec reads ({MAX_ARRAY_BYTES // 1024**3} GiB)",
                    where=where,
                    received=f"{info.file_size} bytes",
                )
            with archive.open(info) as member:
                npy_header(member, info.file_size, f"{where}[y]")
                member.seek(0)
                y = np.lib.format.read_array(member, allow_pickle=False)
    except (*ZIP_ERRORS, KeyError, ValueError) as exc:
        raise DataError("not a readable .npz file", where=where, received=str(exc) or type(exc).__name__) from None
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise DataError("y is not numeric", where=where, received=f"dtype {y.dtype}")
    return y


# -- inputs to predict on: one array of an .npy or .npz -------------------------------------------


def read_input_array(path: Path) -> np.ndarray:
    """The inputs in an ``.npy`` file (memory-mapped, read as batches need it), or in an ``.npz``'s array
    ``x`` (else its only array). Numeric arrays only, never unpickled; the header is checked against
    the stored bytes before anything is read, so a corrupt or hostile file is refused, not allocated."""
    where = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = _input_member(archive.infolist(), where)
                if member.file_size > MAX_ARRAY_BYTES:
                    raise _too_large(f"{where}[{member.filename}]", member.file_size)
                with archive.open(member) as fh:
                    offset, _shape, _dtype = npy_header(fh, member.file_size, f"{where}[{member.filename}]")
                    fh.seek(0)
                    return np.lib.format.read_array(fh, allow_pickle=False)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_ARRAY_BYTES:
                raise _too_large(where, size)
            offset, shape, dtype = npy_header(fh, size, where)
        if int(np.prod(shape, dtype=np.int64)) == 0:
            return np.zeros(shape, dtype)
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="C")
    except FileNotFoundError:
        raise DataError("input file not found", where=where, fix="check the path") from None
    except (*ZIP_ERRORS, ValueError) as exc:
        raise DataError("not a readable .npy/.npz file", where=where, received=str(exc) or type(exc).__name__) from None


def _input_member(infos: list[zipfile.ZipInfo], where: str) -> zipfile.ZipInfo:
    names = [info.filename for info in infos]
    for info in infos:
        if info.filename == "x.npy":
            return info
    if len(infos) == 1 and names[0].endswith(".npy"):
        return infos[0]
    raise DataError(
        "which array holds the inputs?",
        where=where,
        received=f"arrays {[n.removesuffix('.npy') for n in names]}",
        expected="an array named x, or a single array",
        fix="save the inputs as x: np.savez('inputs.npz', x=x)",
    )


def _too_large(where: str, size: int) -> DataError:
    return DataError(
        f"the array is larger than rnnspec reads ({MAX_ARRAY_BYTES // 1024**3} GiB)",
        where=where,
        received=f"{size:,} bytes",
        fix="split the inputs into several files",
    )
