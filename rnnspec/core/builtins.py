"""What a built-in backend reads from its own row of the registry's table, written once for all of them."""

from __future__ import annotations

from typing import Any

from rnnspec.core.backend import LiveModels, class_modules
from rnnspec.core.registry import backend_entry

__all__ = ["TableLiveModels"]


class TableLiveModels(LiveModels):
    """:class:`~rnnspec.core.backend.LiveModels`' ``convention`` and ``owns`` from the backend's row
    (``model_convention``, ``model_modules``); the backend writes only ``live``."""

    name: str

    @property
    def convention(self) -> str:
        """The weight convention of the framework's own models (declared in the registry's table)."""
        return str(backend_entry(self.name).model_convention)

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is a model of the backend's framework, read from its classes' modules (nothing imported)."""
        return bool(class_modules(obj) & set(backend_entry(self.name).model_modules))
