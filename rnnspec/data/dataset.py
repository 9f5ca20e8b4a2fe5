"""The result of loading data: :class:`Dataset`, inputs and labels shaped for one spec."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rnnspec.data.tokenizer import DataError, Tokenizer

__all__ = ["Dataset", "Split", "check_split"]

Split = Literal["train", "test"]
"""The two splits a data source can give."""


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`Split`, else a DataError."""
    if split not in ("train", "test"):
        raise DataError("unknown split", received=repr(split), expected="'train' or 'test'")
    return split


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and labels shaped for one spec, plus what is needed to read predictions back as text.

    ``x``: int32 ids ``(n, seq_len)`` for ``vocab_size`` specs, float32 ``(n, T, features)`` for
    ``features`` specs. ``y``: int64 class ids ``(n,)``, or ``(n, T)`` for per-step models; float32
    targets ``(n,)`` / ``(n, units)`` (``(n, T[, units])`` per step) for regression losses.
    """

    x: np.ndarray
    y: np.ndarray
    source: str
    """The data source as given (``builtin:hello``, a path...)."""
    split: str
    """``train`` or ``test``."""
    tokenizer: Tokenizer | None = None
    """The tokenizer of text data: save it with the model, pass it back for evaluation and prediction."""
    alphabet: tuple[str, ...] | None = None
    """Characters of a character task in class order (``builtin:hello``): class ``i`` is ``alphabet[i]``."""
    classes: tuple[str, ...] | None = None
    """Names of the label ids, when known (string labels, IMDB, Reuters)."""

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def text_of(self, ids: Iterable[int]) -> str:
        """Text of a sequence of ids: characters of the alphabet, or the tokenizer's tokens."""
        values = [int(i) for i in np.asarray(ids).ravel()]
        if self.alphabet is not None:
            if any(not 0 <= i < len(self.alphabet) for i in values):
                raise DataError(
                    "character id out of range",
                    received=str(values),
                    expected=f"ids in [0, {len(self.alphabet)})",
                )
            return "".join(self.alphabet[i] for i in values)
        if self.tokenizer is not None:
            return self.tokenizer.decode_one(values)
        raise DataError(
            f"{self.source} has no alphabet or tokenizer to turn ids into text",
            fix="text is available for builtin:hello and text files (CSV, TSV, JSONL)",
        )

    def class_name(self, label: int) -> str:
        """Name of a label id (the id itself as text when the classes have no names)."""
        if self.classes is not None and 0 <= int(label) < len(self.classes):
            return self.classes[int(label)]
        return str(int(label))
