"""The losses :mod:`rnnspec.testing` differentiates on a user's own model, written once for both frameworks.

Keras's formulas on the model's outputs (probabilities after the head's activation, as a hand-written
model returns them): each framework's driver passes its own operations as ``ops``.
"""

from __future__ import annotations

from typing import Any

EPSILON = 1e-7
"""Keras's ``backend.epsilon()``: probabilities are clipped to [ε, 1 − ε] before a log."""


def elementwise_loss(loss: dict[str, Any], out: Any, y: Any, ops: Any) -> Any:
    """The per-sample (per-step) loss of outputs ``out`` against ``y``, the last axis reduced as Keras reduces it.

    ``loss``: ``{"name", "from_logits", "delta"}`` (the spec's loss); ``out`` holds probabilities, or logits
    with ``from_logits``; ``ops`` gives each framework's operations."""
    name, delta = loss["name"], float(loss.get("delta", 1.0))
    if loss.get("from_logits") and name == "binary_crossentropy":  # Keras's stable form on logits
        return ops.mean_last(ops.softplus(out) - y * out)
    if loss.get("from_logits") and name == "sparse_categorical_crossentropy":
        return -ops.take_last(ops.log_softmax(out), y)
    if loss.get("from_logits") and name == "categorical_crossentropy":
        return -ops.sum_last(y * ops.log_softmax(out))[..., 0]
    if name == "sparse_categorical_crossentropy":
        p = ops.clip(out, EPSILON, 1 - EPSILON)
        return -ops.log(ops.take_last(p, y))
    if name == "categorical_crossentropy":
        p = ops.clip(out / ops.sum_last(out), EPSILON, 1 - EPSILON)
        return -ops.sum_last(y * ops.log(p))[..., 0]
    if name == "binary_crossentropy":
        p = ops.clip(out, EPSILON, 1 - EPSILON)
        return ops.mean_last(-(y * ops.log(p) + (1 - y) * ops.log(1 - p)))
    error = out - y
    if name == "mae":
        return ops.mean_last(ops.abs(error))
    if name == "huber":
        size = ops.abs(error)
        return ops.mean_last(ops.where(size <= delta, 0.5 * error * error, delta * size - 0.5 * delta * delta))
    return ops.mean_last(error * error)  # mse
