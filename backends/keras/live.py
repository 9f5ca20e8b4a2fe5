"""A user's own Keras model, as :mod:`rnnspec.testing` drives it: its layers' weights in and out, its outputs,
and one backward pass (``tf.GradientTape``) of a loss computed as Keras computes it."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnspec.lang.losses import LOSSES, elementwise_loss

from .runtime import keras, tf

Items = list[tuple[str, np.ndarray]]


class _TfOps:
    clip = staticmethod(tf.clip_by_value)
    log = staticmethod(tf.math.log)
    abs = staticmethod(tf.abs)
    where = staticmethod(tf.where)

    @staticmethod
    def bce_logits(x: Any, y: Any) -> Any:
        return tf.math.softplus(x) - y * x  # Keras's stable form on logits

    @staticmethod
    def log_softmax(v: Any) -> Any:
        return tf.nn.log_softmax(v, axis=-1)

    @staticmethod
    def take_last(p: Any, y: Any) -> Any:
        return tf.gather(p, tf.cast(y, tf.int32), axis=-1, batch_dims=len(y.shape))

    @staticmethod
    def sum_last(v: Any) -> Any:
        return tf.reduce_sum(v, axis=-1, keepdims=True)

    @staticmethod
    def mean_last(v: Any) -> Any:
        return tf.reduce_mean(v, axis=-1)


class KerasLive:
    """Drive ``model``: ``tensors``/``assign`` its layers' weights (key ``LAYER_INDEX/WEIGHT_INDEX``),
    ``forward`` in inference mode, ``gradients``."""

    def __init__(self, model: Any):
        self.model = model
        self.occurrence_squares: Items = []
        """After :meth:`gradients`: for each weight TensorFlow differentiates by occurrence (an embedding), the sum
        over its occurrences of each row's squared gradient, as Keras's Adam and RMSprop add them up."""

    def _weights(self) -> list[tuple[str, Any]]:
        return [(f"{i}/{j}", w) for i, layer in enumerate(self.model.layers) for j, w in enumerate(layer.weights)]

    def tensors(self) -> Items:
        return [(k, np.asarray(w.numpy()).copy()) for k, w in self._weights()]

    def assign(self, items: Items) -> None:
        values = dict(items)
        for key, variable in self._weights():
            variable.assign(np.asarray(values[key]).astype(variable.dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(np.asarray(x), training=False), dtype=np.float64)

    def _loss(self, x: np.ndarray, y: np.ndarray, loss: dict, weight: np.ndarray | None) -> Any:
        out = self.model(np.asarray(x), training=False)
        target = tf.constant(np.asarray(y))
        if LOSSES[loss["name"]].integer_labels:
            target = tf.cast(target, tf.int32)
        else:
            target = tf.cast(target, out.dtype)
            if len(target.shape) == len(out.shape) - 1:
                target = target[..., None]
        per = elementwise_loss(loss, out, target, _TfOps)
        if weight is not None:
            w = tf.constant(weight, dtype=per.dtype)
            return tf.reduce_sum(per * w) / tf.maximum(tf.reduce_sum(w), 1.0)
        return tf.reduce_mean(per)

    def train_steps(
        self, x: np.ndarray, y: np.ndarray, loss: dict, weight: np.ndarray | None, optimizer: Any, steps: int
    ) -> None:
        """``steps`` updates of the user's Keras ``optimizer`` on the batch (its gradients as TensorFlow gives them:
        an embedding's per occurrence); the optimizer's variables are put back afterwards."""
        variables = self.model.trainable_variables
        if not optimizer.built:
            optimizer.build(variables)
        saved = [np.asarray(v.numpy()).copy() for v in optimizer.variables]
        try:
            for _ in range(steps):
                with tf.GradientTape() as tape:
                    value = self._loss(x, y, loss, weight)
                optimizer.apply_gradients(zip(tape.gradient(value, variables), variables, strict=True))
        finally:
            for variable, value in zip(optimizer.variables, saved, strict=True):
                variable.assign(value)

    def gradients(self, x: np.ndarray, y: np.ndarray, loss: dict, weight: np.ndarray | None) -> tuple[float, Items]:
        weights = self._weights()
        with tf.GradientTape() as tape:
            value = self._loss(x, y, loss, weight)
        grads = tape.gradient(value, [w.value if hasattr(w, "value") else w for _, w in weights])
        # what training sees: a frozen weight (not in model.trainable_variables, which fit and its optimizer use) has
        # no gradient, as a PyTorch parameter with requires_grad False
        trained = {id(v) for v in self.model.trainable_variables}
        items, self.occurrence_squares = [], []
        for (key, variable), grad in zip(weights, grads, strict=True):
            if id(variable) not in trained:
                grad = None
            dense = np.zeros(tuple(variable.shape)) if grad is None else np.asarray(tf.convert_to_tensor(grad))
            items.append((key, dense.astype(np.float64)))
            if isinstance(grad, tf.IndexedSlices):
                squares = tf.math.unsorted_segment_sum(tf.square(grad.values), grad.indices, variable.shape[0])
                self.occurrence_squares.append((key, np.asarray(squares, dtype=np.float64)))
        return float(value), items


def live(obj: Any) -> KerasLive | None:
    """The driver of ``obj`` when it is a Keras model, else None."""
    return KerasLive(obj) if isinstance(obj, keras.Model) else None
