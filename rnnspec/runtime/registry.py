"""Moved to :mod:`rnnspec.core.registry` (the contracts below the backends); this name keeps old imports working."""

from rnnspec.core import registry as _moved
from rnnspec.core.moved import forwarder

__all__ = list(_moved.__all__)
__getattr__ = forwarder(__name__, _moved.__name__)
