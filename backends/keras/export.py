"""``rnnspec export --format keras``: a ``.keras`` file that Keras opens without rnnspec.

The model is built from Keras's own layers only (Embedding, Masking, SimpleRNN/LSTM/GRU,
Bidirectional, Dropout, SpatialDropout1D, Dense), so ``keras.saving.load_model`` needs nothing
but Keras. A torch-convention spec is first brought to the keras convention (each recurrent bias
added into its bias); the one case Keras cannot express, a GRU with ``reset_after: false`` and a
non-zero recurrent bias, is refused with the alternative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnspec.core.weights import WeightsError, to_keras_convention
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec

from .model import BACKEND, _write_model_atomic

__all__ = ["export_keras"]


def export_keras(spec: ModelSpec, weights: dict[str, np.ndarray], path: str | Path) -> list[Path]:
    """Write ``path`` (a ``.keras`` file); returns ``[path]``."""
    target = Path(path)
    if target.suffix != ".keras":
        raise RnnspecError(f"{target}: a Keras model file must end in .keras (Keras refuses other names)")
    if spec.embedding is not None and spec.embedding.mask_id:
        raise RnnspecError(
            f"{target}: Keras's Embedding masks id 0 only (mask_zero), so a plain .keras file cannot say "
            f"`padding_idx: {spec.embedding.mask_id}`; fix: export to onnx or torch, or write `rnnspec build SPEC "
            "--backend keras -o DIR` (rnnspec's artifact, which restores the mask when rnnspec loads it), or re-map "
            "the ids so that padding is 0 and use `mask_zero: true`"
        )
    try:
        keras_spec, keras_weights = to_keras_convention(spec, weights)
    except WeightsError as exc:
        raise RnnspecError(
            f"{exc}\n  a plain .keras file can hold only Keras's own layers; `rnnspec build SPEC --backend keras "
            "-o DIR` writes one with rnnspec's torch-convention cell, which needs rnnspec installed to load"
        ) from None
    model = BACKEND.build(keras_spec)
    BACKEND.set_weights(model, keras_weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_model_atomic(model, keras_spec, target)
    return [target]
