"""An exported ``.onnx`` file run by ONNX Runtime on the CPU, for the proof of ``rnnspec export --format onnx``.

>>> run = run_file([Path("model.onnx")])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

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
    x_name, *states = [i.name for i in session.get_inputs()]
    if not states:
        return lambda x: session.run(None, {x_name: x})[0]
    return _carrying(session, x_name, states)


def _carrying(session: Any, x_name: str, states: list[str]) -> Callable[[np.ndarray], np.ndarray]:
    """A stateful model's graph (``LAYER.h_0`` inputs, ``LAYER.h_n`` outputs) run as Keras runs it: ``x`` in
    consecutive batches of the states' fixed batch, each starting from the states the one before left, from zeros
    on the first call (each call starts from zeros: the proof's rows are one run)."""
    shapes = {i.name: [int(d) for d in i.shape] for i in session.get_inputs() if i.name in states}
    batch = next(iter(shapes.values()))[1]
    outputs = [o.name for o in session.get_outputs()]
    from .export import final_state_name

    finals = [final_state_name(name) for name in states]

    def run(x: np.ndarray) -> np.ndarray:
        carried = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
        parts = []
        for start in range(0, len(x), batch):
            got = dict(zip(outputs, session.run(outputs, {x_name: x[start : start + batch], **carried}), strict=True))
            parts.append(got["y"])
            carried = {name: got[final] for name, final in zip(states, finals, strict=True)}
        return np.concatenate(parts)

    return run


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
