"""Keras's ``pad_sequences`` and one-hot encoding, in NumPy (no framework), and token ids shaped as a spec's input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnspec.data.tokenizer import PAD_ID, DataError
from rnnspec.data.validation import check_ids
from rnnspec.util import is_int_at_least

if TYPE_CHECKING:
    from rnnspec.lang.spec import ModelSpec

__all__ = [
    "MAX_ONE_HOT_BYTES",
    "inputs_for_spec",
    "one_hot",
    "pad_for_spec",
    "pad_sequences",
]


MAX_ONE_HOT_BYTES = 2**31
"""Largest one-hot array built for a ``features`` spec; beyond it, use ``vocab_size`` and an embedding."""


_SIDES = ("pre", "post")


# ---------------------------------------------------------------------------------------------------
# Padding and one-hot
# ---------------------------------------------------------------------------------------------------


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    *,
    padding: str = "pre",
    truncating: str = "pre",
    value: float = 0,
    dtype: Any = "int32",
) -> np.ndarray:
    """Pad (and truncate) sequences to one length, with exactly ``keras.utils.pad_sequences``'s semantics.

    ``maxlen=None`` pads to the longest sequence. ``"pre"`` (the default, as in Keras) pads and
    truncates at the start, so the last steps -- the ones a recurrent layer sees last -- are kept.
    Items may be scalars or vectors (all of one shape). Returns ``(len(sequences), maxlen, ...)``.
    Unlike Keras, ``maxlen=0`` gives an empty ``(n, 0)`` array, and the options after ``maxlen``
    are keyword-only (Keras's positional order is ``dtype, padding, truncating, value``).
    """
    for name, side in (("padding", padding), ("truncating", truncating)):
        if side not in _SIDES:
            raise DataError(f"unknown {name} side", received=repr(side), expected="'pre' or 'post'")
    if maxlen is not None and not is_int_at_least(maxlen, 0):
        raise DataError("maxlen must be a non-negative integer or None", received=repr(maxlen))
    if not hasattr(sequences, "__len__"):
        raise DataError("sequences must be a list of sequences", received=type(sequences).__name__)
    lengths, sample_shape = _lengths_and_item_shape(sequences)
    width = max(lengths, default=0) if maxlen is None else int(maxlen)
    try:
        out = np.full((len(lengths), width, *sample_shape), value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError("cannot fill the padded array", received=f"value={value!r}, dtype={dtype!r}: {exc}") from None
    if width == 0:
        return out
    for i, seq in enumerate(sequences):
        if not len(seq):
            continue
        kept = np.asarray(seq[-width:] if truncating == "pre" else seq[:width], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise DataError(
                f"sequence {i} has items of another shape",
                received=f"items of shape {kept.shape[1:]}",
                expected=f"items of shape {sample_shape} (the first non-empty sequence's)",
            )
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, -len(kept) :] = kept
    return out


def _lengths_and_item_shape(sequences: Sequence[Any]) -> tuple[list[int], tuple[int, ...]]:
    """Length of every sequence, and the shape of one item (from the first non-empty sequence)."""
    lengths: list[int] = []
    shape: tuple[int, ...] | None = None
    for i, seq in enumerate(sequences):
        try:
            lengths.append(len(seq))
        except TypeError:
            raise DataError(f"sequence {i} is not a sequence", received=f"{type(seq).__name__}: {seq!r:.60}") from None
        if shape is None and len(seq):
            shape = np.asarray(seq).shape[1:]
    return lengths, shape or ()


def pad_for_spec(sequences: Sequence[Sequence[int]], spec: ModelSpec) -> np.ndarray:
    """Pre-pad and pre-truncate id sequences to the spec's ``input.seq_len`` (the longest when it has none)."""
    return pad_sequences(sequences, spec.input.seq_len)


def one_hot(ids: Any, depth: int, *, zero_pad: bool = False, dtype: Any = "float32") -> np.ndarray:
    """One-hot vectors of integer ids: shape ``ids.shape + (depth,)``.

    ``zero_pad=True`` maps id 0 (padding) to an all-zero vector, as a padded one-hot input should be.
    """
    arr = np.asarray(ids)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise DataError("one-hot needs integer ids", received=f"dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= depth):
        raise DataError(
            "id out of range for the one-hot size",
            received=f"ids in [{arr.min()}, {arr.max()}]",
            expected=f"ids in [0, {depth})",
        )
    nbytes = arr.size * depth * np.dtype(dtype).itemsize
    if nbytes > MAX_ONE_HOT_BYTES:
        raise DataError(
            "the one-hot inputs would be too large",
            received=f"{arr.shape} ids x {depth} features = {nbytes / 2**30:.1f} GiB",
            expected=f"at most {MAX_ONE_HOT_BYTES / 2**30:.0f} GiB",
            fix="use `input.vocab_size` with an `embedding` instead of `input.features`, or pass a smaller limit",
        )
    out = np.zeros((*arr.shape, depth), dtype=dtype)
    if arr.size:
        np.put_along_axis(out, arr[..., None].astype(np.intp), 1, axis=-1)
    if zero_pad:
        out[..., PAD_ID] = 0
    return out


def inputs_for_spec(ids: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Padded ids as they are for ``vocab_size`` specs, one-hot (padding all zeros) for ``features`` specs."""
    if spec.input.vocab_size is not None:
        return ids.astype(np.int32, copy=False)
    assert spec.input.features is not None
    check_ids(ids, spec.input.features, "input.features")
    return one_hot(ids, spec.input.features, zero_pad=True)
