"""ONNX export (fused ``LSTM``/``GRU``/``RNN`` ops with ``sequence_lens``).

``export.py`` writes the file; ``runner.py`` opens it with onnxruntime for the export's proof. The public
name below is imported from ``export`` on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["export_onnx"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(f"{__name__}.export"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
