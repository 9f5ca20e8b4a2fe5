"""Checking data against a spec: input kind and size, sequence length, label shape and label range.

Every mismatch is a :class:`~rnnspec.data.tokenizer.DataError` that says what was received, what was
expected and how to fix it. Rows read from a file (:class:`~rnnspec.data.lazy.OnDemandRows`) are checked a
chunk at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rnnspec.data.lazy import OnDemandRows
from rnnspec.data.tokenizer import DataError
from rnnspec.lang.spec import REGRESSION_LOSSES

if TYPE_CHECKING:
    from rnnspec.data.dataset import Dataset
    from rnnspec.lang.spec import ModelSpec

__all__ = ["check_dataset", "check_ids", "label_kind"]


def label_kind(spec: ModelSpec) -> str | None:
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


def check_ids(ids: Any, size: int, field: str, fix: str | None = None) -> None:
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
        check_ids(x, vocab, "input.vocab_size")
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
    lead = (len(x), spec.output_steps(x.shape[1])) if spec.output_per_step else x.shape[:1]
    if y.shape == lead:
        return
    # targets with a unit axis: numbers (regression) or one-hot rows, as many as the output units
    if y.shape == (*lead, spec.output_units) and np.issubdtype(y.dtype, np.floating):
        return
    if spec.output_per_step:
        raise DataError(
            f"the spec predicts one output per step, but {src} has one label per sequence",
            received=f"labels of shape {y.shape}",
            expected=f"per-step labels of shape {lead}",
            fix=f"set `return_sequences: false` on the last recurrent layer ({last})",
        )
    raise DataError(
        f"the spec predicts one output per sequence, but {src} has a label per step",
        received=f"labels of shape {y.shape}",
        expected=f"one label per sequence, shape {x.shape[:1]}",
        fix=f"set `return_sequences: true` on the last recurrent layer ({last})",
    )


def _check_label_range(spec: ModelSpec, y: np.ndarray, src: str) -> None:
    kind = label_kind(spec)
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
