"""Each kind of data file read and shaped for a spec: Keras dataset files, ``.npz`` arrays ``x`` and ``y``,
text tables (in memory, or streamed when larger than :data:`~rnnspec.data.textstream.STREAM_BYTES`) and JSONL
float sequences. :func:`~rnnspec.data.loading.load_data` chooses among them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnnspec.data import textstream
from rnnspec.data.arrays import read_sequence_jsonl, read_xy_npz
from rnnspec.data.dataset import Dataset
from rnnspec.data.keras_datasets import IMDB_CLASSES, REUTERS_CLASSES, process_keras, read_keras_npz
from rnnspec.data.labels import class_ids, numeric_targets, per_step_values
from rnnspec.data.lazy import LazyRows
from rnnspec.data.sequences import inputs_for_spec, pad_for_spec, pad_sequences
from rnnspec.data.textfiles import TEXT_SUFFIXES, TextRows, label_ids, read_text_file
from rnnspec.data.tokenizer import DataError, Tokenizer
from rnnspec.data.validation import check_ids, label_kind

if TYPE_CHECKING:
    from rnnspec.lang.spec import ModelSpec

__all__ = ["keras_for_spec", "sequences_for_spec", "streams_text", "text_for_spec", "xy_for_spec"]


def streams_text(path: Path, spec: ModelSpec) -> bool:
    return (
        path.suffix.lower() in TEXT_SUFFIXES
        and not spec.output_per_step
        and path.stat().st_size > textstream.STREAM_BYTES
    )


def keras_for_spec(
    spec: ModelSpec, source: str, name: str | None, path: Path, split: str, limit: int | None
) -> Dataset:
    name, arrays = read_keras_npz(path, name)
    size = spec.input.vocab_size or spec.input.features
    (x_train, y_train), (x_test, y_test) = process_keras(
        name,
        arrays,
        num_words=size,
        skip_top=0,
        maxlen=None,
        seed=113,
        start_char=1,
        oov_char=2,
        index_from=3,
        test_split=None,
    )
    seqs, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    if limit is not None:
        seqs, y = seqs[:limit], y[:limit]
    ids = pad_for_spec(seqs, spec)
    classes = IMDB_CLASSES if name == "imdb" else REUTERS_CLASSES
    return Dataset(inputs_for_spec(ids, spec), y, source, split, classes=classes)


def text_for_spec(
    spec: ModelSpec,
    source: str,
    path: Path,
    split: str,
    limit: int | None,
    tokenizer: Tokenizer | None,
    text_column: str,
    label_column: str,
) -> Dataset:
    if streams_text(path, spec):
        return _streamed_text_for_spec(spec, source, path, split, limit, tokenizer, text_column, label_column)
    rows = read_text_file(path, text_column=text_column, label_column=label_column).head(limit)
    fit = tokenizer is None
    tokenizer = _tokenizer_for(spec, tokenizer)
    if fit:
        tokenizer.fit(rows.texts)
    encoded = tokenizer.encode(rows.texts)
    ids = pad_for_spec(encoded, spec)
    if spec.input.features is not None:
        check_ids(ids, spec.input.features, "input.features", fix="fit the tokenizer with vocab_size=features")
    wheres = [f"{rows.path}:{line}" for line in rows.lines]
    if spec.output_per_step:
        for seq, at, value in zip(encoded, wheres, rows.labels, strict=True):
            _check_steps(len(seq), value, at, label_column)
    y, classes = _labels(spec, rows.labels, wheres, ids.shape[1], tokenizer.classes, fit, label_column, rows)
    if fit:
        tokenizer.classes = classes
    return Dataset(inputs_for_spec(ids, spec), y, source, split, tokenizer=tokenizer, classes=classes)


def _tokenizer_for(spec: ModelSpec, tokenizer: Tokenizer | None) -> Tokenizer:
    """The tokenizer given (it must be fitted), or a new one for the spec: words for ids, characters for one-hot."""
    if tokenizer is None:
        level = "word" if spec.input.vocab_size is not None else "char"
        return Tokenizer(level, vocab_size=spec.input.vocab_size or spec.input.features)
    if not tokenizer.fitted:
        raise DataError("the tokenizer passed has no vocabulary", fix="fit it first, or pass tokenizer=None")
    return tokenizer


def _streamed_text_for_spec(
    spec: ModelSpec,
    source: str,
    path: Path,
    split: str,
    limit: int | None,
    tokenizer: Tokenizer | None,
    text_column: str,
    label_column: str,
) -> Dataset:
    """A text file too large to hold: indexed in one pass that fits the tokenizer, its rows tokenized and
    padded a batch at a time (:mod:`rnnspec.data.textstream`); the labels, one per row, are held."""
    fit = tokenizer is None
    tokenizer = _tokenizer_for(spec, tokenizer)
    counts: Counter[str] | None = Counter() if fit else None
    index, labels, lines = textstream.index_text_file(
        path, tokenize=tokenizer.tokenize, counts=counts, text_column=text_column, label_column=label_column,
        limit=limit,
    )  # fmt: skip
    if counts is not None:
        tokenizer.fit_counts(counts)
    width = spec.input.seq_len if spec.input.seq_len is not None else index.longest
    features = spec.input.features
    if features is not None and tokenizer.num_ids > features:
        raise DataError(
            f"the tokenizer has {tokenizer.num_ids} ids, more than the spec's input.features",
            expected=f"at most {features} ids",
            fix="fit the tokenizer with vocab_size=features",
        )
    rows = TextRows(str(path), [], labels, lines)
    wheres = textstream.Wheres(str(path), lines)
    y, classes = _labels(spec, labels, wheres, width, tokenizer.classes, fit, label_column, rows)  # type: ignore[arg-type]
    del rows, labels, lines, wheres  # only the index stays: 12 bytes a row
    if fit:
        tokenizer.classes = classes
    x = textstream.EncodedRows(index, tokenizer, width, features)
    return Dataset(x, y, source, split, tokenizer=tokenizer, classes=classes)  # type: ignore[arg-type]


def _check_steps(steps: int, value: object, at: str, column: str) -> None:
    labels = per_step_values(value, at, column)
    if len(labels) != steps:
        raise DataError(
            f"the text has {steps} token(s) but {len(labels)} per-step label(s)",
            where=at,
            received=f"{len(labels)} labels",
            expected=f"one label per token ({steps})",
            fix="give one label per token (the tokenizer splits at spaces and punctuation)",
        )


def _labels(
    spec: ModelSpec,
    values: list,
    wheres: list[str],
    width: int,
    classes: tuple[str, ...] | None,
    fit: bool,
    column: str,
    rows: TextRows | None = None,
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Labels for ``spec``'s loss: numbers (regression) or class ids, padded per step like the inputs."""
    kind = label_kind(spec)
    if kind == "regression" or (kind is None and spec.training is None and _all_numbers(values)):
        loss = spec.training.loss.name if spec.training is not None else "regression"
        targets = numeric_targets(
            values, wheres, units=spec.output_units, per_step=spec.output_per_step, column=column, loss=loss
        )
        if spec.output_per_step:
            y = pad_sequences(targets, width, dtype="float32")
            return (y[..., 0] if spec.output_units == 1 else y), None
        y = np.stack(targets).astype(np.float32)
        return (y[:, 0] if spec.output_units == 1 else y), classes
    if spec.output_per_step:
        ids, classes = class_ids(values, wheres, classes, fit=fit, column=column)
        return pad_sequences(ids, width, dtype="int64"), classes
    if rows is None:
        ids, classes = class_ids([[v] for v in values], wheres, classes, fit=fit, column=column)
        return np.concatenate(ids), classes
    return label_ids(rows, classes, fit=fit)


def _all_numbers(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def sequences_for_spec(
    spec: ModelSpec, source: str, path: Path, split: str, limit: int | None, text_column: str, label_column: str
) -> Dataset:
    """Float feature sequences from JSONL, padded with the spec's mask value (Keras ``pad_sequences``, pre)."""
    assert spec.input.features is not None
    x_key = text_column if text_column != "text" else "x"
    y_key = label_column if label_column != "label" else "y"
    xs, ys, lines = read_sequence_jsonl(
        path, features=spec.input.features, per_step=spec.output_per_step, x_key=x_key, y_key=y_key
    )
    if limit is not None:
        xs, ys, lines = xs[:limit], ys[:limit], lines[:limit]
    pad = spec.input.mask_value if spec.input.mask_value is not None else 0.0
    x = pad_sequences(xs, spec.input.seq_len, dtype="float32", value=pad)
    wheres = [f"{path}:{line}" for line in lines]
    y, classes = _labels(spec, ys, wheres, x.shape[1], None, True, y_key)
    return Dataset(x, y, source, split, classes=classes)


def xy_for_spec(spec: ModelSpec, source: str, path: Path, split: str, limit: int | None) -> Dataset:
    """Arrays ``x`` and ``y`` of an ``.npz``, as they are (one split; pass the test file for evaluation)."""
    x, y = read_xy_npz(path)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if spec.input.vocab_size is not None:
        if not np.issubdtype(x.dtype, np.integer):
            raise DataError(
                "the spec's input is token ids, but x holds non-integer values",
                where=source,
                received=f"x of dtype {x.dtype}, shape {x.shape}",
                expected="integer ids (n, steps)",
                fix="save x as integers, or use `input.features` for float inputs",
            )
        check_ids(x, spec.input.vocab_size, "input.vocab_size")  # before the cast, which would wrap large ids
        x = x.astype(np.int32)
    else:
        x = x.astype(np.float32)
        if x.ndim == 2 and spec.input.features == 1:
            x = x.with_feature_axis() if isinstance(x, LazyRows) else x[..., None]
        finite = x.all_finite() if isinstance(x, LazyRows) else np.isfinite(x).all()
        if not finite:
            raise DataError("x contains NaN or infinity", where=source, fix="clean the data first")
    kind = label_kind(spec)
    if kind in ("regression", None) or spec.training is None:
        y = y.astype(np.float32)
        lead = 2 if spec.output_per_step else 1
        if spec.output_units == 1 and y.ndim == lead + 1 and y.shape[-1] == 1:
            y = y[..., 0]
    elif np.issubdtype(y.dtype, np.floating) and (y != np.round(y)).any():
        raise DataError(
            "y holds fractional numbers, but the loss needs class ids",
            where=source,
            received=f"y of dtype {y.dtype}",
            fix="for numeric targets use `loss: mse` (or mae, huber)",
        )
    elif kind != "categorical" or y.ndim < (3 if spec.output_per_step else 2):
        if y.size and (not np.all(np.isfinite(y)) or np.max(y) >= 2**63 or np.min(y) < -(2**63)):
            raise DataError(
                "y holds labels that are not class ids (too large, or not finite)",
                where=source,
                received=f"y of dtype {y.dtype} with values from {y.min()} to {y.max()}",
                expected="class ids from 0 to the number of classes - 1",
            )
        y = y.astype(np.int64)
    return Dataset(x, y, source, split)
