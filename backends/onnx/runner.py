"""An exported ``.onnx`` file run by ONNX Runtime on the CPU, for the proof of ``rnnspec export --format onnx``.

>>> run = run_file([Path("model.onnx")])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from rnnspec.core.noise import ulp_perturbed

__all__ = ["run_file"]


def run_file(written: list[Path], nudge: int | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """Inference with the ONNX model in ``written[0]``; None where onnxruntime is not installed. With ``nudge`` (a
    seed), every float32 initializer moved by one ulp first (the proof's noise floor)."""
    if find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    # the model's bytes, not its path: onnxruntime takes UTF-8 paths only (any file name works this way)
    data = Path(written[0]).read_bytes()
    if nudge is not None:
        data = _nudged(data, nudge)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]


def _nudged(data: bytes, seed: int) -> bytes:
    """The model with every float32 initializer (its weights) moved by one ulp."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    inits = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    moved = ulp_perturbed({str(i): numpy_helper.to_array(t) for i, t in enumerate(inits)}, seed)
    for i, tensor in enumerate(inits):
        tensor.CopyFrom(numpy_helper.from_array(moved[str(i)], tensor.name))
    return model.SerializeToString()
