"""A live model's own parameters ↔ canonical weights, both ways, from the import rules alone.

The importers (:mod:`rnnspec.interop`) turn a model's tensors into canonical weights by moving numbers
only: kernels transposed, gate blocks reordered, tensors renamed. Such a map can be inverted by
watching where the numbers go: tensors filled with their own index show which tensor each canonical
weight comes from, and tensors filled with their element indices show where each element lands.
So one import function gives both directions — canonical weights *into* a user's model, and its
gradients (laid out as its parameters) *out* as canonical gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnspec.lang.errors import RnnspecError

__all__ = ["ParameterMap"]

Items = list[tuple[str, np.ndarray]]
_EXACT = 2**24
"""Integers up to this survive a float32 round trip (the importers return float32)."""


@dataclass(frozen=True)
class _Source:
    tensors: np.ndarray
    """For each element of a canonical weight (flattened), the index of the model's tensor it is read from."""
    elements: np.ndarray
    """... and its index in that tensor (flattened)."""


class ParameterMap:
    """How the tensors ``keys`` (shapes ``shapes``) of a model become canonical weights through ``to_canonical``,
    and back."""

    def __init__(self, keys: list[str], shapes: list[tuple[int, ...]], to_canonical: Callable[[Items], dict]):
        self.keys, self.shapes, self.to_canonical = list(keys), [tuple(s) for s in shapes], to_canonical
        if len(self.keys) >= _EXACT or any(int(np.prod(s, dtype=np.int64)) >= _EXACT for s in self.shapes):
            raise RnnspecError("the model has a parameter too large to map element by element (2**24 elements at most)")
        owner = to_canonical([(k, np.full(s, float(i), np.float32)) for i, (k, s) in enumerate(self._pairs())])
        where = to_canonical([(k, np.arange(np.prod(s), dtype=np.float32).reshape(s)) for k, s in self._pairs()])
        self.sources = {
            name: _Source(
                np.asarray(owner[name]).astype(np.int64).ravel(), np.asarray(where[name]).astype(np.int64).ravel()
            )
            for name in owner
        }
        probe = {n: np.random.default_rng(0).normal(size=np.shape(v)).astype(np.float32) for n, v in owner.items()}
        back = self.canonical(self.tensors(probe))
        if any(not np.array_equal(back[n], probe[n]) for n in probe):  # the import adds or mixes numbers
            raise RnnspecError("the model's parameters do not map one to one onto canonical weights (a sum or a mix)")

    def _pairs(self) -> list[tuple[str, tuple[int, ...]]]:
        return list(zip(self.keys, self.shapes, strict=True))

    def canonical(self, tensors: Items) -> dict[str, np.ndarray]:
        """Canonical weights (or gradients) of the model's tensors, as the import reads them."""
        return {k: np.asarray(v) for k, v in self.to_canonical(tensors).items()}

    def tensors(self, weights: dict[str, np.ndarray], base: Items | None = None) -> Items:
        """The model's tensors holding canonical ``weights``; elements no weight covers keep ``base``'s values
        (zeros without it)."""
        out = (
            [np.array(v, dtype=np.float64) for _, v in base] if base is not None else [np.zeros(s) for s in self.shapes]
        )
        for name, source in self.sources.items():
            if name not in weights:
                raise RnnspecError(f"no value for canonical weight {name}")
            values = np.asarray(weights[name], dtype=np.float64).ravel()
            if values.size != source.elements.size:
                raise RnnspecError(
                    f"canonical weight {name} has {values.size} values; the model's map has {source.elements.size}"
                )
            for tensor in np.unique(source.tensors):
                chosen = source.tensors == tensor
                out[int(tensor)].reshape(-1)[source.elements[chosen]] = values[chosen]
        return [(k, v.astype(np.float32)) for k, v in zip(self.keys, out, strict=True)]
