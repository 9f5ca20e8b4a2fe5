"""Labels as a spec needs them: numbers for regression losses, class ids for classification, one per
step for per-step models; read from the raw values of a data file, each located at ``file:line``.

Regression targets are read as numbers and never as class names: ``3.5`` stays 3.5. A CSV/TSV cell
holds per-step labels separated by spaces (``DET NOUN VERB``); JSONL gives a list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnspec.data.tokenizer import DataError

__all__ = ["class_ids", "numeric_targets", "per_step_values"]

_INT = re.compile(r"[+-]?\d+")


def per_step_values(value: Any, at: str, column: str) -> list[Any]:
    """The per-step labels of one sample: a JSON list, or a CSV cell split at whitespace."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return value.split()
    raise DataError(
        f"the model predicts one output per step, so {column!r} needs one label per step",
        where=at,
        received=f"{type(value).__name__}: {value!r:.40}",
        expected="a list (JSONL) or space-separated labels (CSV/TSV)",
        fix="give one label per step, or set `return_sequences: false` on the last recurrent layer",
    )


def _number(value: Any, at: str, column: str, loss: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        out = float(value)
    else:
        try:
            out = float(str(value).strip())
        except ValueError:
            raise DataError(
                f"label {value!r} in {column!r} is not a number, but loss {loss} needs numeric targets",
                where=at,
                received=repr(value),
                expected="a number such as 3.5",
                fix="use numeric labels, or a classification loss (sparse_categorical_crossentropy) for classes",
            ) from None
    if not math.isfinite(out):
        raise DataError(f"label {value!r} in {column!r} is not finite", where=at, expected="a finite number")
    return out


def numeric_targets(
    values: Sequence[Any], wheres: Sequence[str], *, units: int, per_step: bool, column: str, loss: str
) -> list[np.ndarray]:
    """One float32 array per sample: ``(units,)``-shaped numbers, or ``(steps, units)`` for per-step models.

    A sample with one output unit may give a plain number; with several, a list of ``units`` numbers.
    """
    out = []
    for value, at in zip(values, wheres, strict=True):
        items = per_step_values(value, at, column) if per_step else [value]
        rows = []
        for item in items:
            if isinstance(item, list):
                if len(item) != units:
                    raise DataError(
                        f"a target in {column!r} has {len(item)} numbers, but the model has {units} output unit(s)",
                        where=at,
                        received=repr(item)[:60],
                        expected=f"{units} number(s)",
                    )
                rows.append([_number(v, at, column, loss) for v in item])
            elif units == 1:
                rows.append([_number(item, at, column, loss)])
            else:
                raise DataError(
                    f"the model has {units} output units, so each target in {column!r} is a list of {units} numbers",
                    where=at,
                    received=repr(item)[:60],
                    expected=f"a list of {units} numbers",
                )
        arr = np.asarray(rows, dtype=np.float32)
        out.append(arr if per_step else arr[0])
    return out


def class_ids(
    values: Sequence[Any], wheres: Sequence[str], classes: tuple[str, ...] | None, *, fit: bool, column: str
) -> tuple[list[np.ndarray], tuple[str, ...] | None]:
    """Per-step class ids (one int64 array per sample) and the class names (None for integer labels).

    ``fit`` decides from the data: all integers stay integers; otherwise names are sorted into ids.
    Without ``fit`` the labels must be of the kind ``classes`` says (a reused tokenizer's).
    """
    steps = [per_step_values(v, at, column) for v, at in zip(values, wheres, strict=True)]
    flat = [(item, at) for items, at in zip(steps, wheres, strict=True) for item in items]
    integers = all(_is_int(item) for item, _ in flat)
    if fit:
        classes = None if integers else tuple(sorted({str(item) for item, _ in flat}))
    index = {name: i for i, name in enumerate(classes or ())}
    out = []
    for items, at in zip(steps, wheres, strict=True):
        ids = []
        for item in items:
            if classes is None:
                if not _is_int(item):
                    raise DataError(
                        f"label {item!r} is not an integer class id",
                        where=at,
                        expected="integer class ids, as in the training data",
                    )
                ids.append(int(item))
            elif str(item) in index:
                ids.append(index[str(item)])
            else:
                raise DataError(
                    f"unknown label {item!r}",
                    where=at,
                    expected=f"one of the training classes {list(classes)}",
                    fix="use the class names of the training data",
                )
        out.append(np.asarray(ids, dtype=np.int64))
    return out, classes


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return True
    return isinstance(value, str) and bool(_INT.fullmatch(value.strip()))
