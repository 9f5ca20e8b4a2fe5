"""Shared pieces of the per-kind test files (tests/test_<kind>.py): Keras's layers as a fixture-free helper and the
Keras-style summary table read back into rows, so each kind's file compares its summary with Keras's own."""

from __future__ import annotations

import re
from typing import Any


def summary_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of a Keras-style summary table (wrapped cells joined, whitespace removed)."""
    rows: list[tuple[str, ...]] = []
    cells: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("│"):
            parts = [re.sub(r"\s+", "", p) for p in line.strip().strip("│").split("│")]
            cells = parts if cells is None else [a + b for a, b in zip(cells, parts, strict=True)]
        elif cells is not None:
            rows.append(tuple(cells))
            cells = None
    return rows


def typed_rows(table: str) -> list[tuple[str, ...]]:
    """The rows with each layer's name dropped (Keras numbers its own), its type kept."""
    return [(re.sub(r"^.*\((\w+)\)$", r"\1", name), *rest) for name, *rest in summary_rows(table)]


def keras_summary(model: Any) -> str:
    """What Keras's ``model.summary()`` prints."""
    chunks: list[str] = []
    model.summary(print_fn=lambda text, **_: chunks.append(text))
    return "\n".join(chunks)


def keras_sequential(spec: Any, layers: list[Any]) -> Any:
    """Keras's ``Sequential`` of ``layers`` on the spec's input (token ids or feature vectors; ``seq_len`` where it
    is fixed), written by hand as a Keras user writes it."""
    from rnnspec_backends.keras.runtime import keras

    steps = spec.input.seq_len
    shape = (steps,) if spec.input.vocab_size is not None else (steps, spec.input.features)
    return keras.Sequential([keras.Input(shape, dtype="int32" if spec.input.vocab_size else "float32"), *layers])


def hand_built(spec: Any, layers: list[Any], seed: int = 1) -> tuple[Any, dict[str, Any]]:
    """The hand-written Keras model with the spec's seeded random weights set into it: its weights' shapes must be
    the spec's, in the spec's order (the counts come from Keras, not from rnnspec)."""
    import rnnspec

    from .parity import random_weights

    model = keras_sequential(spec, layers)
    weights = random_weights(spec, seed)
    names = rnnspec.weight_shapes(spec)
    assert [tuple(v.shape) for v in model.weights] == list(names.values())
    model.set_weights([weights[name] for name in names])
    return model, weights


def exported_torch_model(spec: Any, weights: dict[str, Any], folder: Any, tag: str) -> Any:
    """rnnspec's plain-PyTorch export of ``spec`` loaded as a user loads it (the file, then its state dict), in
    eval mode."""
    import importlib.util

    from rnnspec_backends.torch.export import export_torch
    from safetensors.torch import load_file

    source, state_file = export_torch(spec, weights, folder / "model.py")
    found = importlib.util.spec_from_file_location(f"exported_{tag}", source)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(load_file(str(state_file)))
    return model.eval()


def training_gaps(spec: Any, x: Any, y: Any) -> tuple[float, float]:
    """``model.fit`` (keras backend) and rnnspec's torch loop from the same seeded weights on the same batches: the
    largest relative difference of their batch losses and the largest absolute difference of the final weights."""
    import numpy as np

    import rnnspec

    result = {}
    for backend in ("torch", "keras"):
        model = rnnspec.build(spec, backend, seed=0)
        result[backend] = (rnnspec.fit(model, x, y, seed=0), rnnspec.get_weights(model))
    (th, tw), (kh, kw) = result["torch"], result["keras"]
    tl, kl = np.array(th["batch_loss"]), np.array(kh["batch_loss"])
    assert len(tl) == len(kl) > 0
    return float(np.max(np.abs(tl - kl) / np.abs(kl))), max(float(np.abs(tw[k] - kw[k]).max()) for k in tw)
