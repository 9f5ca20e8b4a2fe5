"""Per-backend tables of what each layer kind compiles to: one entry per kind, no duplicates.

Every backend keeps one :class:`KindRegistry` of builders (and, where it has a step loop, one of
step functions), filled with the :meth:`KindRegistry.register` decorator beside the code it
registers. Building a spec first asks :meth:`KindRegistry.check`, so a kind the backend does not
know is refused before anything is built, naming the layer, the backend and what it does know.

The exporters (torch code emitters, ONNX node builders), the importers (Keras converters by
Keras class, state-dict readers) and the porting-mistake catalogue keep the same kind of table. A
table that cannot take a kind says so with :meth:`KindRegistry.refuse` and the reason, so every
kind of :data:`rnnspec.lang.layers.LAYER_KINDS` is either registered or refused with a reason in
every table (``tests/core/test_kind_completeness.py`` checks it).

>>> BUILDERS = KindRegistry("numpy", "builder")
>>> @BUILDERS.register("dropout", "spatial_dropout")
... def identity(layer, name, inputs):
...     return lambda x, mask: x
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.layers import LAYER_KINDS

__all__ = ["DuplicateKindError", "KindRegistry", "MissingKindError"]

F = TypeVar("F", bound=Callable[..., Any])


class DuplicateKindError(RnnspecError):
    """Two entries were registered for one kind in one table (a programming error, reported at import)."""


class MissingKindError(RnnspecError):
    """A spec uses a layer kind the backend has no entry for."""


class KindRegistry:
    """A table ``kind → entry`` for one backend (``what`` says what the entries are, for messages)."""

    def __init__(self, backend: str, what: str = "builder", *, owner: str | None = None):
        self.backend = backend
        self.what = what
        self.owner = owner or f"the {backend} backend"
        """Who keeps the table, in messages: ``the torch backend``, ``the ONNX export``..."""
        self._entries: dict[str, Any] = {}
        self._refusals: dict[str, str] = {}

    def register(self, *kinds: str) -> Callable[[F], F]:
        """Decorator: register the decorated object for ``kinds``; a kind registered twice is refused."""
        if not kinds:
            raise ValueError("register() needs at least one layer kind")

        def decorate(entry: F) -> F:
            for kind in kinds:
                self.add(kind, entry)
            return entry

        return decorate

    def add(self, kind: str, entry: Any) -> None:
        """Register ``entry`` for ``kind`` (refuses a second entry for the same kind)."""
        if kind in self._entries:
            raise DuplicateKindError(
                f"{self.owner} registers two {self.what}s for layer kind {kind!r} "
                f"({_label(self._entries[kind])} and {_label(entry)}); keep one"
            )
        if kind in self._refusals:
            raise DuplicateKindError(
                f"{self.owner} registers a {self.what} for layer kind {kind!r}, which it also "
                f"refuses ({self._refusals[kind]}); keep one"
            )
        self._entries[kind] = entry

    def refuse(self, kind: str, reason: str) -> None:
        """Declare that this table has no entry for ``kind``, and why (said to a user whose spec has it).

        >>> EXPORT = KindRegistry("onnx export", "node builder")
        >>> EXPORT.refuse("mgu", "ONNX has no fused MGU op")
        """
        if kind in self._entries or kind in self._refusals:
            raise DuplicateKindError(
                f"{self.owner} both registers and refuses layer kind {kind!r} (or refuses it twice)"
            )
        if not reason:
            raise ValueError(f"refusing layer kind {kind!r} needs a reason")
        self._refusals[kind] = reason

    def refusals(self) -> dict[str, str]:
        """The kinds declared refused, with their reasons."""
        return dict(self._refusals)

    def kinds(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, kind: str) -> bool:
        return kind in self._entries

    def get(self, kind: str, layer_name: str | None = None) -> Any:
        """The entry for ``kind``, or :class:`MissingKindError` naming the layer and the known kinds."""
        try:
            return self._entries[kind]
        except KeyError:
            if kind in self._refusals:
                raise MissingKindError(self._refused_message([(layer_name, kind)])) from None
            raise MissingKindError(self._missing_message([(layer_name, kind)])) from None

    def _refused_message(self, refused: list[tuple[str | None, str]]) -> str:
        return (
            "; ".join(
                f"{self.owner} cannot take layer kind {kind!r}"
                + (f" (layer {name!r})" if name else "")
                + f": {self._refusals[kind]}"
                for name, kind in refused
            )
            + ". fix: remove the layer from the spec, or use another backend or format"
        )

    def check(self, layers: Iterable[tuple[str, Any]]) -> None:
        """Refuse, listing every layer, when a ``(name, layer spec)`` has a kind without an entry."""
        missing = [(name, layer.kind) for name, layer in layers if layer.kind not in self._entries]
        refused = [(name, kind) for name, kind in missing if kind in self._refusals]
        if refused:
            raise MissingKindError(self._refused_message(refused))
        if missing:
            raise MissingKindError(self._missing_message(missing))

    def _missing_message(self, missing: list[tuple[str | None, str]]) -> str:
        what = ", ".join(f"{kind!r}" + (f" (layer {name!r})" if name else "") for name, kind in missing)
        known = ", ".join(self.kinds()) or "none"
        unknown = [kind for _, kind in missing if kind not in LAYER_KINDS]
        hint = (
            f"{', '.join(unknown)} is not a layer kind of the spec language"
            if unknown
            else f"use another backend, or register a {self.what} for it in {self.owner}"
        )
        return f"{self.owner} has no {self.what} for layer kind {what}; it has: {known}. fix: {hint}"


def _label(entry: Any) -> str:
    return getattr(entry, "__qualname__", None) or repr(entry)[:80]
