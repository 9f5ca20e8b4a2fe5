"""A module's old name kept working after it moved: its attributes forwarded, with a DeprecationWarning."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["forwarder"]


def forwarder(old: str, new: str) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``old``: each attribute read from ``new``, saying where it went."""
    target = import_module(new)

    def __getattr__(name: str) -> Any:
        value = getattr(target, name)  # AttributeError for a name the module never had
        warnings.warn(f"{old}.{name} moved to {new}.{name}; import it from there", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__
