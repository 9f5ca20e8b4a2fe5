"""Moved to :mod:`rnnspec.core.kinds` (the contracts below the backends); this name keeps old imports working."""

from __future__ import annotations

import warnings
from typing import Any

from rnnspec.core import kinds as _moved

__all__ = list(_moved.__all__)


def __getattr__(name: str) -> Any:
    value = getattr(_moved, name)  # AttributeError for a name the module never had
    warnings.warn(
        f"rnnspec.runtime.kinds.{name} moved to rnnspec.core.kinds.{name}; import it from there",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
