"""The error of a model file that cannot be imported."""

from __future__ import annotations

from rnnspec.lang.errors import RnnspecError

__all__ = ["ImportError_"]


class ImportError_(RnnspecError):
    """A file that cannot be imported (its kind, or a spec that is needed and missing)."""
