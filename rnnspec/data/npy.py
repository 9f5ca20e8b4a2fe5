"""The header of an ``.npy`` array (alone, or a member of an ``.npz``), checked against the bytes stored
before anything is read: a corrupt or hostile file is refused, not allocated. Shared by the readers of
whole arrays (:mod:`rnnspec.data.arrays`) and of rows read on demand (:mod:`rnnspec.data.lazy`)."""

from __future__ import annotations

import tokenize
from typing import Any

import numpy as np

from rnnspec.data.tokenizer import DataError

__all__ = ["npy_header"]


_HEADER_ERRORS = (ValueError, SyntaxError, TypeError, tokenize.TokenError, RecursionError, OverflowError, EOFError)


def npy_header(fh: Any, size: int, where: str) -> tuple[int, tuple[int, ...], np.dtype]:
    """``(offset of the data, shape, dtype)`` of a C-ordered numeric ``.npy`` whose data fills the rest of it."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except _HEADER_ERRORS as exc:  # NumPy parses the header with ast.literal_eval and tokenize
        raise DataError("not a valid .npy array", where=where, received=f"{type(exc).__name__}: {exc}") from None
    if dtype.hasobject or not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise DataError(
            "the inputs are not a plain numeric array (object arrays are not read)",
            where=where,
            received=f"dtype {dtype}",
            fix="pad the inputs to one length and save them as numbers: np.savez(path, x=x.astype('int32'))",
        )
    offset = fh.tell()
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if declared != size - offset:
        raise DataError(
            "corrupt .npy array: its header does not match its data",
            where=where,
            received=f"a header declaring shape {shape} of {dtype} ({declared:,} bytes), "
            f"{size - offset:,} bytes stored",
            expected="the array as NumPy saved it",
        )
    if fortran and len(shape) > 1:
        raise DataError(
            "the array is stored in Fortran order",
            where=where,
            fix="save a C-ordered copy: np.save(path, np.ascontiguousarray(x))",
        )
    return offset, tuple(shape), dtype
