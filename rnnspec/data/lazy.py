"""Arrays larger than memory: the rows of an ``.npy`` (or of an uncompressed ``.npz`` member, as
``np.savez`` writes them) read from the file when a batch needs them.

:class:`LazyRows` looks like a read-only array to the code that trains on it — ``len``, ``shape``,
``dtype``, ``ndim``, slicing and row gathering — but holds only the file's name and the header. A
batch gathered with an index array reads just its rows (``os.pread``, sorted, coalesced), so the
pages go to the kernel's cache, not to the process: training on a 2 GB token file keeps the
resident memory of the batches, not of the file. Values are cast to ``dtype`` as they are read.

Training from one is identical to training from the array in memory: the same rows in the same order
make the same batches (``fit`` orders indices, not rows).
"""

from __future__ import annotations

import copy
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.data.npy import npy_header
from rnnspec.data.tokenizer import DataError

__all__ = ["LazyRows", "OnDemandRows", "lazy_npy", "lazy_npz_member"]

CHUNK_BYTES = 64 * 1024**2
"""How much a full pass (a range check) reads at a time."""


class OnDemandRows:
    """Rows ``start .. stop`` of data read (or made) when a batch asks for them: a read-only array to the code
    that trains on it. Subclasses set ``row_shape``, ``dtype``, ``start``, ``stop`` and define :meth:`_gather`
    (rows of this view, by index)."""

    row_shape: tuple[int, ...]
    dtype: np.dtype
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def size(self) -> int:
        return len(self) * int(np.prod(self.row_shape, dtype=np.int64))

    def _view(self, start: int, stop: int) -> Any:
        view = copy.copy(self)
        view.start, view.stop = start, stop
        return view

    def astype(self, dtype: Any, copy: bool = False) -> Any:
        """The same rows, cast to ``dtype`` when read (nothing is read now)."""
        view = _copy(self)
        view.dtype = np.dtype(dtype)
        return view

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return self._gather(np.arange(start, stop, step))
            return self._view(self.start + start, self.start + max(start, stop))
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} of {len(self)}")
            return self._gather(np.array([index]))[0]
        index = np.asarray(key)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False).ravel()
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"rows {index.min()}..{index.max()} of {len(self)}")
        return self._gather(index)

    def _gather(self, index: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Every row, read now (only for data that fits in memory)."""
        out = self.read(0, len(self))
        return out if dtype is None else out.astype(dtype)

    def read(self, begin: int, end: int) -> np.ndarray:
        """Rows ``begin .. end`` of this view."""
        return self._gather(np.arange(begin, max(begin, end), dtype=np.int64))

    def chunks(self) -> Iterator[np.ndarray]:
        """Every row, a chunk of about :data:`CHUNK_BYTES` at a time (for range checks)."""
        row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        step = max(1, CHUNK_BYTES // max(row_bytes, 1))
        for begin in range(0, len(self), step):
            yield self.read(begin, min(begin + step, len(self)))

    def known_bounds(self) -> tuple[Any, Any] | None:
        """Bounds every value is known to lie within without reading (None: they must be read)."""
        return None

    def min(self) -> Any:
        return min(chunk.min() for chunk in self.chunks()) if len(self) else self.dtype.type(0)

    def max(self) -> Any:
        return max(chunk.max() for chunk in self.chunks()) if len(self) else self.dtype.type(0)

    def all_finite(self) -> bool:
        return all(bool(np.isfinite(chunk).all()) for chunk in self.chunks())


_copy = copy.copy


class LazyRows(OnDemandRows):
    """Rows ``start .. stop`` of a C-ordered numeric array stored at ``offset`` in ``path``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        offset: int,
        shape: tuple[int, ...],
        stored: np.dtype,
        dtype: Any = None,
        start: int = 0,
        stop: int | None = None,
    ):
        self.path = str(path)
        self.offset = int(offset)
        self.full_shape = tuple(int(d) for d in shape)
        self.row_shape = self.full_shape[1:]
        self.stored = np.dtype(stored)
        self.dtype = np.dtype(dtype) if dtype is not None else self.stored
        self.start = int(start)
        self.stop = self.full_shape[0] if stop is None else int(stop)
        self.row_items = int(np.prod(self.full_shape[1:], dtype=np.int64))
        self.row_bytes = self.row_items * self.stored.itemsize

    def with_feature_axis(self) -> LazyRows:
        """``rows[..., None]``: the same bytes seen as ``(n, steps, 1)``."""
        shape = (*self.full_shape, 1)
        return LazyRows(self.path, self.offset, shape, self.stored, self.dtype, self.start, self.stop)

    # -- reading ------------------------------------------------------------------------------------

    def read(self, begin: int, end: int) -> np.ndarray:
        """Rows ``begin .. end`` (of this view) in one read."""
        count = max(0, end - begin)
        out = np.empty((count, *self.full_shape[1:]), dtype=self.stored)
        if count:
            at = self.offset + (self.start + begin) * self.row_bytes
            with open(self.path, "rb") as fh:
                data = os.pread(fh.fileno(), count * self.row_bytes, at)
            if len(data) != count * self.row_bytes:
                raise DataError("the file is shorter than its header says", where=self.path)
            out = np.frombuffer(data, dtype=self.stored).reshape(out.shape)
        return out.astype(self.dtype, copy=False)

    def _gather(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((index.size, *self.full_shape[1:]), dtype=self.dtype)
        if not index.size:
            return out
        order = np.argsort(index, kind="stable")
        rows = index[order]
        with open(self.path, "rb") as fh:
            fd = fh.fileno()
            # runs of consecutive rows are read at once
            breaks = np.flatnonzero(np.diff(rows) != 1) + 1
            for run in np.split(np.arange(rows.size), breaks):
                first, count = int(rows[run[0]]), int(run.size)
                data = os.pread(fd, count * self.row_bytes, self.offset + (self.start + first) * self.row_bytes)
                if len(data) != count * self.row_bytes:
                    raise DataError("the file is shorter than its header says", where=self.path)
                block = np.frombuffer(data, dtype=self.stored).reshape((count, *self.full_shape[1:]))
                out[order[run]] = block
        return out

    def __repr__(self) -> str:
        return f"LazyRows({self.path!r}, shape={self.shape}, dtype={self.dtype})"


def lazy_npy(path: str | os.PathLike[str]) -> LazyRows:
    """The rows of an ``.npy`` file, read on demand (its header checked against its size first)."""
    where = str(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset, shape, dtype = npy_header(fh, size, where)
    if not shape:
        raise DataError("the array has no rows", where=where, received=f"shape {shape}")
    return LazyRows(path, offset, shape, dtype)


def lazy_npz_member(path: str | os.PathLike[str], name: str) -> LazyRows | None:
    """The rows of member ``name`` (e.g. ``x``) of an ``.npz`` written by ``np.savez``, read on demand; None
    when the member is compressed (``np.savez_compressed``), which has to be read whole."""
    where = f"{path}[{name}]"
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with archive.open(info) as member:
            offset, shape, dtype = npy_header(member, info.file_size, where)
        with open(path, "rb") as fh:  # the member's data starts after its local header
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                raise DataError("not a valid .npz member", where=where)
            name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            stored_name = fh.read(name_len)
            size = os.fstat(fh.fileno()).st_size
    if not shape:
        raise DataError("the array has no rows", where=where, received=f"shape {shape}")
    start = info.header_offset + 30 + name_len + extra_len
    # Rows are read from these bytes directly (no CRC): the member's local header must agree with the central
    # directory, and its bytes must lie inside the file, or the rows would be some other part of the file.
    if stored_name != info.filename.encode() or info.compress_size != info.file_size or start + info.file_size > size:
        raise DataError(
            "not a valid .npz member: its local header disagrees with the archive's directory",
            where=where,
            fix="save the arrays again with np.savez",
        )
    return LazyRows(Path(path), start + offset, shape, dtype)
