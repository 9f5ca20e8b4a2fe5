"""The keras backend: a ``keras.Sequential`` on TensorFlow per spec, its trainer and export.

Modules: see the folder. The public names below are imported from ``model`` on first use, so
importing a sibling module (say the trainer) does not import the model module.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["BACKEND", "KerasBackend", "load_artifact"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(f"{__name__}.model"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
