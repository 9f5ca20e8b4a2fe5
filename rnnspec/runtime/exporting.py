"""Exporting a model built by rnnspec as plain PyTorch, Keras or ONNX: :func:`export` checks the weights
against the spec and hands them to the exporter the backends registered for the format."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.registry import get_exporter
from rnnspec.core.specs import as_spec, spec_of
from rnnspec.core.weights import check_weights
from rnnspec.runtime.models import get_weights

__all__ = ["export"]


def export(model: Any, format: str, path: str | Path, weights: Mapping[str, np.ndarray] | None = None) -> list[Path]:
    """Export a model built by rnnspec (or a spec with ``weights``) as ``onnx``, ``torch`` or ``keras``.

    >>> rnnspec.export(model, "onnx", "model.onnx")  # doctest: +SKIP
    >>> rnnspec.export(model, "torch", "out/model.py")  # writes model.py and model.safetensors  # doctest: +SKIP

    Returns the files written, all of them as one unit (none, if any fails). The exported model needs no rnnspec
    to run.
    """
    from rnnspec.util import staged_outputs

    if weights is None:
        spec, values = spec_of(model), get_weights(model)
    else:
        spec = as_spec(model)
        values = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    check_weights(spec, values)
    exporter = get_exporter(format)
    with staged_outputs() as out:
        return [out.final(p) for p in exporter(spec, values, out.stage(Path(path)))]
