"""An exported ``.onnx`` file run by ONNX Runtime on the CPU, for the proof of ``rnnspec export --format onnx``.

>>> run = run_file([Path("model.onnx")])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np

__all__ = ["run_file"]


def run_file(written: list[Path]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Inference with the ONNX model in ``written[0]``; None where onnxruntime is not installed."""
    if find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    # the model's bytes, not its path: onnxruntime takes UTF-8 paths only (any file name works this way)
    session = onnxruntime.InferenceSession(Path(written[0]).read_bytes(), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]
