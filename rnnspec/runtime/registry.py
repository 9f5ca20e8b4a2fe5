"""Moved to :mod:`rnnspec.core.registry` (the contracts below the backends); this name keeps old imports working."""

from __future__ import annotations

import warnings
from typing import Any

from rnnspec.core import registry as _moved

__all__ = list(_moved.__all__)


def __getattr__(name: str) -> Any:
    value = getattr(_moved, name)  # AttributeError for a name the module never had
    warnings.warn(
        f"rnnspec.runtime.registry.{name} moved to rnnspec.core.registry.{name}; import it from there",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
