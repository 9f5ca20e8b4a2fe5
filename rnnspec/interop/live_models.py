"""Canonical weights of a live model that rnnspec did not build: a plain Keras model or a
``torch.nn.Module`` that a spec describes (read through its own methods; no framework is imported here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.weights import check_weights
from rnnspec.interop.errors import ImportError_
from rnnspec.interop.keras_files import KerasFile, KerasLayer
from rnnspec.interop.keras_import import keras_to_spec
from rnnspec.interop.renaming import rename_weights
from rnnspec.interop.torch_import import state_dict_to_weights
from rnnspec.lang.loader import spec_from_dict
from rnnspec.lang.spec import ModelSpec

__all__ = ["weights_from_model"]


def weights_from_model(model: Any, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical weights of a plain Keras model or ``torch.nn.Module`` that ``spec`` describes."""
    if hasattr(model, "state_dict") and callable(model.state_dict):
        items = [(k, v.detach().cpu().numpy()) for k, v in model.state_dict().items()]
        found, weights = state_dict_to_weights(items, spec, type(model).__name__)
        if found.convention != spec.convention:
            raise ImportError_(
                f"a torch module keeps two biases; describe it with `convention: torch` in the spec "
                f"(spec {spec.name!r} is in the {spec.convention} convention)"
            )
        return weights
    if hasattr(model, "layers") and hasattr(model, "get_config"):
        layers = [
            KerasLayer(type(layer).__name__, layer.get_config(), [np.asarray(w.numpy()) for w in layer.weights])
            for layer in model.layers
        ]
        shape = [None, *list(model.inputs[0].shape[1:])] if getattr(model, "inputs", None) else None
        kfile = KerasFile(Path(str(model.name)), "live", "3", "Sequential", str(model.name), layers,
                          build_input_shape=shape)  # fmt: skip
        data, weights = keras_to_spec(kfile)
        imported = spec_from_dict(data)
        renamed = rename_weights(imported, weights, spec, f"Keras model {model.name!r}")
        check_weights(spec, renamed)
        return renamed
    raise ImportError_(
        f"{type(model).__name__} is neither a model built by rnnspec, a Keras model nor a torch.nn.Module"
    )
