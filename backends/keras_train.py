"""Training a Keras model built by rnnspec: ``compile`` from the spec, then ``model.fit`` per epoch.

rnnspec.runtime.training orders the samples; each epoch is one ``fit(..., epochs=1, shuffle=False)`` on the
ordered data, so both backends see the same batches. The loss of every optimizer step is read off
Keras's own loss tracker (its running total and count), which is what Keras's epoch loss is made of.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnspec.lang.spec import SGD, Adam, LossSpec, RMSprop, TrainingSpec

from .keras import keras

__all__ = ["KerasTrainer", "keras_loss", "keras_optimizer"]


def keras_optimizer(spec: SGD | Adam | RMSprop) -> Any:
    """The Keras optimizer a spec's ``optimizer`` names, with its arguments."""
    clip = {"clipnorm": spec.clipnorm, "clipvalue": spec.clipvalue}
    if isinstance(spec, SGD):
        return keras.optimizers.SGD(spec.learning_rate, momentum=spec.momentum, nesterov=spec.nesterov, **clip)
    if isinstance(spec, Adam):
        return keras.optimizers.Adam(
            spec.learning_rate,
            beta_1=spec.beta_1,
            beta_2=spec.beta_2,
            epsilon=spec.epsilon,
            amsgrad=spec.amsgrad,
            **clip,
        )
    return keras.optimizers.RMSprop(
        spec.learning_rate, rho=spec.rho, momentum=spec.momentum, epsilon=spec.epsilon, centered=spec.centered, **clip
    )


def keras_loss(spec: LossSpec) -> Any:
    """The Keras loss a spec's ``loss`` names."""
    if spec.name == "mse":
        return keras.losses.MeanSquaredError()
    cls = {
        "binary_crossentropy": keras.losses.BinaryCrossentropy,
        "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
        "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    }[spec.name]
    return cls(from_logits=spec.from_logits)


class _StepLosses(keras.callbacks.Callback):
    """The loss of each optimizer step, from the loss tracker's running total and count."""

    def __init__(self, tracker: Any, progress: Callable[[int, int], None] | None, n_batches: int):
        super().__init__()
        self.tracker = tracker
        self.progress = progress
        self.n_batches = n_batches
        self.losses: list[float] = []
        self.total = self.count = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.total = self.count = 0.0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        total = float(np.asarray(self.tracker.total))
        count = float(np.asarray(self.tracker.count))
        self.losses.append((total - self.total) / (count - self.count))
        self.total, self.count = total, count
        if self.progress is not None:
            self.progress(len(self.losses), self.n_batches)


class KerasTrainer:
    """Compiles the model once; ``train_epoch`` and ``evaluate`` as rnnspec.runtime.training expects."""

    def __init__(self, model: Any, training: TrainingSpec, device: str | None = None):
        self.model = model
        self.training = training
        model.compile(
            optimizer=keras_optimizer(training.optimizer),
            loss=keras_loss(training.loss),
            metrics=list(training.metrics),
        )

    def _y(self, y: np.ndarray) -> np.ndarray:
        if self.training.loss.name == "sparse_categorical_crossentropy":
            return y.astype(np.int32)
        # one output unit: (n, t) targets become (n, t, 1), which Keras needs once the outputs carry a mask
        rank = 3 if self.model._rnnspec_spec.output_per_step else 2
        return (y[..., None] if y.ndim == rank - 1 else y).astype(np.float32)

    def train_epoch(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        recorder = _StepLosses(self.model._loss_tracker, progress, -(-len(x) // batch_size))
        history = self.model.fit(
            x, self._y(y), batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[recorder]
        )
        logs: dict[str, Any] = {"batch_loss": recorder.losses, "loss": history.history["loss"][0]}
        if "accuracy" in history.history:
            logs["accuracy"] = history.history["accuracy"][0]
        return logs

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        result = self.model.evaluate(x, self._y(y), batch_size=batch_size, verbose=0, return_dict=True)
        return {k: float(result[k]) for k in ("loss", "accuracy") if k in result}
