"""Shared pieces of the per-kind test files (tests/test_<kind>.py): the Keras-style summary table read back into
rows (so each kind's file compares its summary with Keras's own), the hand-written Keras model with the spec's
weights, the plain-PyTorch export loaded as a user loads it, and the training parity of the torch loop with
``model.fit``."""

from __future__ import annotations

import re
from typing import Any, NamedTuple


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
    is fixed; the batch size where it is fixed, as for stateful layers), written by hand as a Keras user writes it."""
    from rnnspec_backends.keras.runtime import keras

    steps = spec.input.seq_len
    shape = (steps,) if spec.input.vocab_size is not None else (steps, spec.input.features)
    dtype = "int32" if spec.input.vocab_size else "float32"
    return keras.Sequential([keras.Input(shape, batch_size=spec.input.batch_size, dtype=dtype), *layers])


def hand_built(
    spec: Any, layers: list[Any], seed: int = 1, *, weights: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The hand-written Keras model with the spec's seeded random weights (or ``weights`` where given) set into it:
    its weights' shapes must be the spec's, in the spec's order (the counts come from Keras, not from rnnspec)."""
    import rnnspec

    from .parity import random_weights

    model = keras_sequential(spec, layers)
    weights = random_weights(spec, seed) if weights is None else weights
    names = rnnspec.weight_shapes(spec)
    assert [tuple(v.shape) for v in model.weights] == list(names.values())
    model.set_weights([weights[name] for name in names])
    return model, weights


def exported_torch_module(spec: Any, weights: dict[str, Any], folder: Any, tag: str) -> tuple[Any, Any]:
    """rnnspec's plain-PyTorch export of ``spec`` to ``folder/model.py``, that file imported as a user imports it
    (the module ``exported_<tag>``), and the path of its weights file."""
    import importlib.util

    from rnnspec_backends.torch.export import export_torch

    source, state_file = export_torch(spec, weights, folder / "model.py")
    found = importlib.util.spec_from_file_location(f"exported_{tag}", source)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module, state_file


def exported_torch_model(spec: Any, weights: dict[str, Any], folder: Any, tag: str) -> Any:
    """rnnspec's plain-PyTorch export of ``spec`` loaded as a user loads it (the file, then its state dict), in
    eval mode."""
    from safetensors.torch import load_file

    module, state_file = exported_torch_module(spec, weights, folder, tag)
    model = module.Model()
    model.load_state_dict(load_file(str(state_file)))
    return model.eval()


class Fit(NamedTuple):
    """One backend's ``rnnspec.fit`` from seed 0: the model, its batch losses, its weights before and after."""

    model: Any
    losses: Any
    start: dict[str, Any]
    end: dict[str, Any]


def fit_both(spec: Any, x: Any, y: Any, **options: Any) -> dict[str, Fit]:
    """rnnspec's torch loop and ``model.fit`` (keras backend) from the same seeded weights on the same batches
    (``options`` go to ``rnnspec.fit``)."""
    import numpy as np

    import rnnspec

    fits = {}
    for backend in ("torch", "keras"):
        model = rnnspec.build(spec, backend, seed=0)
        start = rnnspec.get_weights(model)
        history = rnnspec.fit(model, x, y, seed=0, **options)
        fits[backend] = Fit(model, np.array(history["batch_loss"]), start, rnnspec.get_weights(model))
    return fits


def fit_gaps(fits: dict[str, Fit], batches: int | None = None) -> tuple[float, float]:
    """The largest relative difference of the two backends' batch losses (``batches`` of them where given) and the
    largest absolute difference of their final weights."""
    import numpy as np

    (tl, tw), (kl, kw) = ((fits[b].losses, fits[b].end) for b in ("torch", "keras"))
    assert len(tl) == len(kl) > 0 and batches in (None, len(tl)), (len(tl), len(kl), batches)
    return float(np.max(np.abs(tl - kl) / np.abs(kl))), max(float(np.abs(tw[k] - kw[k]).max()) for k in tw)


def training_gaps(spec: Any, x: Any, y: Any, batches: int | None = None) -> tuple[float, float]:
    """``model.fit`` (keras backend) and rnnspec's torch loop from the same seeded weights on the same batches: the
    largest relative difference of their batch losses and the largest absolute difference of the final weights."""
    return fit_gaps(fit_both(spec, x, y), batches)
