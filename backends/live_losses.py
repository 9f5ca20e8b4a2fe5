"""The losses :mod:`rnnspec.testing` differentiates on a user's own model, written once for both frameworks.

Keras's formulas on the model's outputs (probabilities after the head's activation, as a hand-written
model returns them): each framework's driver passes its own operations as ``ops``.
"""

from __future__ import annotations

from typing import Any

EPSILON = 1e-7
"""Keras's ``backend.epsilon()``: probabilities are clipped to [ε, 1 − ε] before a log."""


def elementwise_loss(name: str, out: Any, y: Any, ops: Any) -> Any:
    """The per-sample (per-step) loss of outputs ``out`` (probabilities, or values) against ``y``, the last axis
    reduced as Keras reduces it; ``ops`` is ``torch`` or TensorFlow (``tf.math``-like names are used)."""
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
        return ops.mean_last(ops.where(size <= 1.0, 0.5 * error * error, size - 0.5))
    return ops.mean_last(error * error)  # mse
