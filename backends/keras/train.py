"""Training a Keras model built by rnnspec: ``compile`` from the spec, then ``model.fit`` per epoch.

rnnspec.runtime.training orders the samples; each epoch is one ``fit(..., epochs=1)`` on the ordered data,
so both backends see the same batches. The loss of every optimizer step is read off Keras's own loss
tracker (its running total and count), which is what Keras's epoch loss is made of.

The data goes to Keras as a ``tf.data`` pipeline of the ordered batches with tf.data's autotuning off.
Given NumPy arrays, Keras builds an autotuned pipeline for each ``fit``/``evaluate`` call, and
tearing one down waits for its tuning thread: up to 0.5 s at the end of a call, about 50 % of a
one-second epoch (measured; ``benchmarks/epoch.py``). One ``fit`` over many epochs pays it once;
rnnspec's one ``fit`` per epoch would pay it every epoch. The batches are the same.

Losses and metrics are Keras's own objects, named as Keras names them in the history: ``loss``,
``accuracy`` (Keras picks binary / sparse / categorical accuracy from the loss and shapes), ``mae``,
``mse`` and ``rmse``. Keras's mask (``mask_zero`` or ``Masking``) rides on per-step outputs, so the
loss and every metric skip padded steps. This module reaches Keras only through
:mod:`.runtime`; it never imports :mod:`.model`.

>>> trainer = KerasTrainer(model, spec.training)  # doctest: +SKIP
>>> trainer.train_epoch(x, y, batch_size=32)["loss"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnspec.core.backend import CheckpointingTrainer, SeededTrainer, Trainer
from rnnspec.core.specs import spec_of
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.losses import LOSSES, METRICS
from rnnspec.lang.spec import SGD, Adam, LossSpec, RMSprop, TrainingSpec

from .runtime import keras, tf

__all__ = ["KERAS_LOSSES", "KERAS_METRICS", "KerasTrainer", "keras_loss", "keras_metric", "keras_optimizer"]


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


KERAS_LOSSES: dict[str, Any] = {name: getattr(keras.losses, kind.keras_class) for name, kind in LOSSES.items()}
"""Loss name → Keras's loss class (the class each loss of :mod:`rnnspec.lang.losses` names)."""
KERAS_METRICS: dict[str, Any] = {
    name: None if kind.keras_class is None else getattr(keras.metrics, kind.keras_class)
    for name, kind in METRICS.items()
}
"""Metric name → Keras's metric class (None: Keras's string, resolved by ``compile``)."""


def keras_loss(spec: LossSpec) -> Any:
    """The Keras loss a spec's ``loss`` names.

    >>> keras_loss(LossSpec(name="huber", delta=2.0)).get_config()["delta"]  # doctest: +SKIP
    2.0
    """
    kind = LOSSES[spec.name]
    options: dict[str, Any] = {}
    if kind.from_logits:
        options["from_logits"] = spec.from_logits
    if kind.delta:
        options["delta"] = spec.huber_delta
    return KERAS_LOSSES[spec.name](**options)


def keras_metric(name: str) -> Any:
    """The Keras metric of a spec's metric name, reported under that name.

    ``accuracy`` stays Keras's string, which ``compile`` resolves to binary, sparse categorical or
    categorical accuracy from the loss and the shapes.
    """
    cls = KERAS_METRICS[name]
    return name if cls is None else cls(name=name)


class _StepLosses(keras.callbacks.Callback):
    """The loss of each optimizer step, from the loss tracker's running total and count."""

    def __init__(
        self,
        trainer: KerasTrainer,
        progress: Callable[[int, int], None] | None,
        n_batches: int,
        carry: dict[str, np.ndarray] | None = None,
        every: int = 0,
        on_steps: Callable[[dict[str, np.ndarray]], None] | None = None,
    ):
        super().__init__()
        self.trainer = trainer
        self.tracker = trainer.model._loss_tracker
        self.progress = progress
        self.losses: list[float] = [] if carry is None else [float(v) for v in carry["batch_loss"]]
        self.n_batches = len(self.losses) + n_batches
        self.carry, self.every, self.on_steps = carry, every, on_steps
        self.total = self.count = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.carry is not None:  # Keras has just reset the metrics: put back the epoch's sums so far
            self.trainer._set_metric_state(self.carry)
        self.total = float(np.asarray(self.tracker.total))
        self.count = float(np.asarray(self.tracker.count))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        total = float(np.asarray(self.tracker.total))
        count = float(np.asarray(self.tracker.count))
        self.losses.append((total - self.total) / (count - self.count))
        self.total, self.count = total, count
        done = len(self.losses)
        if self.progress is not None:
            self.progress(done, self.n_batches)
        if self.on_steps is not None and self.every and done % self.every == 0 and done < self.n_batches:
            self.on_steps(self.trainer._metric_state(self.losses))


def _check_mirrored(spec: Any, training: TrainingSpec, replicas: int) -> None:
    """Refuse what a ``tf.distribute`` strategy computes differently from one device (measured; see
    docs/training.md): clipping (per replica, before the gradients are summed) and a masked loss (each
    replica's mean over its own valid steps)."""
    optimizer = training.optimizer
    if optimizer.clipnorm is not None or optimizer.clipvalue is not None:
        raise RnnspecError(
            f"under a tf.distribute strategy ({replicas} replicas) Keras clips each replica's gradients before "
            "they are summed, which is not single-device Keras; remove clipnorm/clipvalue, or train with one "
            "device or the torch backend (--nproc), which clips after the reduction"
        )
    if spec.output_masked:
        raise RnnspecError(
            f"under a tf.distribute strategy ({replicas} replicas) Keras divides a masked loss by each replica's "
            "own count of valid steps, which is not single-device Keras; train this spec on one device or on "
            "the torch backend (--nproc), which divides by the global count"
        )


def _check_even(n: int, batch_size: int, replicas: int) -> None:
    """Every batch must split evenly across the replicas: Keras weights each replica's mean alike (an 8/7
    split is not the mean of 15), and fails outright when the first batch does not divide."""
    sizes = {min(batch_size, n - start) for start in range(0, n, batch_size)}
    uneven = sorted(size for size in sizes if size % replicas)
    if uneven:
        raise RnnspecError(
            f"a batch of {uneven[0]} samples does not split evenly across {replicas} replicas; under a "
            "tf.distribute strategy Keras would average unequal shards as equals. fix: a batch size and sample "
            f"count that are multiples of {replicas} (--limit), or the torch backend (--nproc)"
        )


class KerasTrainer(Trainer, SeededTrainer, CheckpointingTrainer):
    """Compiles the model once; ``train_epoch`` and ``evaluate`` as rnnspec.runtime.training expects."""

    def __init__(self, model: Any, training: TrainingSpec, device: str | None = None):
        self.model = model
        self.training = training
        self.spec = spec_of(model)
        metrics = list(dict.fromkeys(training.metrics))
        self.names = ["loss", *metrics]
        self.strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
        self.replicas = int(self.strategy.num_replicas_in_sync)
        if self.replicas > 1:
            _check_mirrored(self.spec, training, self.replicas)
        with self.strategy.scope():  # the optimizer's variables belong to the model's strategy
            model.compile(
                optimizer=keras_optimizer(training.optimizer),
                loss=keras_loss(training.loss),
                metrics=[keras_metric(name) for name in metrics],
            )

    def _y(self, y: np.ndarray) -> np.ndarray:
        """Targets as Keras takes them: int class ids, else float32 with the output's unit axis.

        With one output unit, ``(n,)`` targets become ``(n, 1)`` and per-step ``(n, t)`` targets
        ``(n, t, 1)``: Keras needs the unit axis once the outputs carry a mask, and a regression
        loss would otherwise broadcast ``(n,)`` against ``(n, 1)``.
        """
        if LOSSES[self.training.loss.name].integer_labels:
            return y.astype(np.int32)
        rank = 3 if self.spec.output_per_step else 2
        return (y[..., None] if y.ndim == rank - 1 else y).astype(np.float32)

    def _batches(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> Any:
        """The batches of ``(x, y)`` in order (the last one short), as a tf.data pipeline without autotuning.

        Rows read from a file (not an array) are read a batch at a time by a generator."""
        dtype = np.int32 if self.spec.input.vocab_size is not None else np.float32
        if not isinstance(x, np.ndarray):
            return self._streamed(x, self._y(y), batch_size, dtype)
        x = np.asarray(x, dtype=dtype)
        options = tf.data.Options()
        options.autotune.enabled = False
        options.experimental_optimization.apply_default_optimizations = False  # as Keras's own pipeline
        # When the batches divide the data, their size is static, as in Keras's pipeline for arrays; a
        # masked RNN's step runs faster with it (benchmarks/epoch.py, masked). No sample is dropped.
        whole = len(x) % batch_size == 0
        data = tf.data.Dataset.from_tensor_slices((x, self._y(y))).batch(batch_size, drop_remainder=whole)
        return data.with_options(options)

    def _streamed(self, x: Any, y: np.ndarray, batch_size: int, dtype: Any) -> Any:
        def batches() -> Any:
            for start in range(0, len(x), batch_size):
                yield np.asarray(x[start : start + batch_size], dtype=dtype), y[start : start + batch_size]

        signature = (
            tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(dtype)),
            tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)),
        )
        options = tf.data.Options()
        options.autotune.enabled = False
        data = tf.data.Dataset.from_generator(batches, output_signature=signature)
        # a known number of batches, as an array's pipeline has: Keras then never runs past the end
        data = data.apply(tf.data.experimental.assert_cardinality(-(-len(x) // batch_size)))
        return data.with_options(options)

    def _logs(self, values: dict[str, Any]) -> dict[str, float]:
        return {name: float(values[name]) for name in self.names}

    def train_epoch(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        progress: Callable[[int, int], None] | None = None,
        *,
        carry: dict[str, np.ndarray] | None = None,
        every: int = 0,
        on_steps: Callable[[dict[str, np.ndarray]], None] | None = None,
    ) -> dict[str, Any]:
        """One ``model.fit`` epoch on the batches in order. ``carry`` continues an epoch from what ``on_steps``
        received (``x, y`` are the rest of it); ``on_steps(carry)`` is called after every ``every``-th batch
        of the epoch but its last."""
        if self.replicas > 1:
            _check_even(len(x), batch_size, self.replicas)
            if carry is not None or on_steps is not None:
                raise RnnspecError("checkpoints within an epoch are not supported under a tf.distribute strategy")
        if carry is not None and not getattr(self.model._compile_metrics, "built", True):
            # Keras builds its metrics when the first step is traced; the epoch's sums go into them before that
            dtype = np.int32 if self.spec.input.vocab_size is not None else np.float32
            self.model._symbolic_build(data_batch=(np.asarray(x[:batch_size], dtype), self._y(y)[:batch_size]))
        recorder = _StepLosses(self, progress, -(-len(x) // batch_size), carry, every, on_steps)
        history = self.model.fit(
            self._batches(x, y, batch_size), epochs=1, shuffle=False, verbose=0, callbacks=[recorder]
        )
        logs = self._logs({k: v[0] for k, v in history.history.items()})
        return {"batch_loss": recorder.losses, **logs}

    def _metric_state(self, losses: list[float]) -> dict[str, np.ndarray]:
        """The epoch so far: its batch losses and the values of Keras's metric variables (the running sums)."""
        out = {"steps": np.array(len(losses), dtype=np.int64), "batch_loss": np.array(losses, dtype=np.float64)}
        out.update({f"metric/{k}": np.asarray(v.numpy()) for k, v in enumerate(self.model.metrics_variables)})
        return out

    def _set_metric_state(self, carry: dict[str, np.ndarray]) -> None:
        variables = self.model.metrics_variables
        saved = {int(k.split("/")[1]): v for k, v in carry.items() if k.startswith("metric/")}
        if sorted(saved) != list(range(len(variables))):
            raise RnnspecError(f"the checkpoint holds {len(saved)} metric variables; this model has {len(variables)}")
        for k, variable in enumerate(variables):
            variable.assign(saved[k].astype(variable.dtype))

    # -- seed and checkpoint state ------------------------------------------------------------------

    def _seed_states(self) -> list[Any]:
        """The state variables of the model's dropout seed generators (Keras saves none of them in .keras)."""
        return [v for v in self.model.variables if "seed_generator_state" in v.path]

    def _optimizer_variables(self) -> list[Any]:
        optimizer = self.model.optimizer
        if not optimizer.built:  # built at the first step; a checkpoint is restored before it
            optimizer.build(self.model.trainable_variables)
        return list(optimizer.variables)

    def set_seed(self, seed: int) -> None:
        """Seed every dropout generator from fit's seed (Keras draws their seeds from Python's ``random``)."""
        states = self._seed_states()
        seeds = np.random.SeedSequence(seed).generate_state(len(states), dtype=np.uint32)
        for variable, value in zip(states, seeds, strict=True):
            variable.assign(np.array([value, 0]).astype(variable.dtype))

    def state(self) -> dict[str, np.ndarray]:
        """What a checkpoint needs beyond the weights: the optimizer's variables (``iterations`` and slots) and
        the seed generators' states."""
        out = {f"optimizer/{k}": np.asarray(v.numpy()) for k, v in enumerate(self._optimizer_variables())}
        out.update({f"seed/{k}": np.asarray(v.numpy()) for k, v in enumerate(self._seed_states())})
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state` (a checkpoint of the same spec and optimizer), or say what does not fit."""
        for prefix, variables in (("optimizer", self._optimizer_variables()), ("seed", self._seed_states())):
            saved = {int(k.split("/")[1]): v for k, v in state.items() if k.startswith(prefix + "/")}
            if sorted(saved) != list(range(len(variables))):
                raise RnnspecError(
                    f"the checkpoint holds {len(saved)} {prefix} variables; this model has {len(variables)}"
                )
            for k, variable in enumerate(variables):
                if tuple(saved[k].shape) != tuple(variable.shape):
                    raise RnnspecError(
                        f"the checkpoint's {prefix} variable {k} {saved[k].shape} does not fit {variable.path} "
                        f"{tuple(variable.shape)}"
                    )
                variable.assign(saved[k].astype(variable.dtype))

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        if self.replicas > 1:
            _check_even(len(x), batch_size, self.replicas)
        result = self.model.evaluate(self._batches(x, y, batch_size), verbose=0, return_dict=True)
        return self._logs(result)
