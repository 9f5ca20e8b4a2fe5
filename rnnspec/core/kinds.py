"""Per-backend tables of what each layer kind compiles to: one entry per kind, no duplicates.

Every backend keeps one :class:`KindRegistry` of builders (and, where it has a step loop, one of
step functions), filled with the :meth:`KindRegistry.register` decorator beside the code it
registers. Building a spec first asks :meth:`KindRegistry.check`, so a kind the backend does not
know is refused before anything is built, naming the layer, the backend and what it does know.

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

    def __init__(self, backend: str, what: str = "builder"):
        self.backend = backend
        self.what = what
        self._entries: dict[str, Any] = {}

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
                f"the {self.backend} backend registers two {self.what}s for layer kind {kind!r} "
                f"({_label(self._entries[kind])} and {_label(entry)}); keep one"
            )
        self._entries[kind] = entry

    def kinds(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, kind: str) -> bool:
        return kind in self._entries

    def get(self, kind: str, layer_name: str | None = None) -> Any:
        """The entry for ``kind``, or :class:`MissingKindError` naming the layer and the known kinds."""
        try:
            return self._entries[kind]
        except KeyError:
            raise MissingKindError(self._missing_message([(layer_name, kind)])) from None

    def check(self, layers: Iterable[tuple[str, Any]]) -> None:
        """Refuse, listing every layer, when a ``(name, layer spec)`` has a kind without an entry."""
        missing = [(name, layer.kind) for name, layer in layers if layer.kind not in self._entries]
        if missing:
            raise MissingKindError(self._missing_message(missing))

    def _missing_message(self, missing: list[tuple[str | None, str]]) -> str:
        what = ", ".join(f"{kind!r}" + (f" (layer {name!r})" if name else "") for name, kind in missing)
        known = ", ".join(self.kinds()) or "none"
        unknown = [kind for _, kind in missing if kind not in LAYER_KINDS]
        hint = (
            f"{', '.join(unknown)} is not a layer kind of the spec language"
            if unknown
            else f"use another backend, or register a {self.what} for it in the {self.backend} backend"
        )
        return f"the {self.backend} backend has no {self.what} for layer kind {what}; it has: {known}. fix: {hint}"


def _label(entry: Any) -> str:
    return getattr(entry, "__qualname__", None) or repr(entry)[:80]
