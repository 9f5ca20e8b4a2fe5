"""Moved to :mod:`rnnspec.core.weights` (the contracts below the backends); this name keeps old imports working."""

from rnnspec.core import weights as _moved
from rnnspec.core.moved import forwarder

__all__ = list(_moved.__all__)
__getattr__ = forwarder(__name__, _moved.__name__)
