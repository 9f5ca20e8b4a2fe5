"""Training with Keras's meaning on every backend: ``fit`` and ``evaluate``.

The core decides everything that must be identical across frameworks — the validation split
(Keras takes the *last* fraction, before shuffling), the order of the samples in every epoch (a
seeded NumPy permutation), the batches — and each backend's trainer runs the epochs it is given:
the keras backend with ``model.fit`` on the pre-ordered data, the torch backend with rnnspec's own
loop and Keras-form optimizers. So the same seed and data give the same batches on both.

The history holds Keras's names (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``), one value
per epoch, where ``loss`` is the running mean over the epoch's batches weighted by batch size, as
Keras computes it; and ``batch_loss``, the loss of every optimizer step in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import ValidationError

from rnnspec.core.backend import CheckpointingTrainer, SeededTrainer, TrainableBackend, Trainer
from rnnspec.core.registry import backends_with
from rnnspec.core.weights import check_seed
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec, TrainingSpec
from rnnspec.runtime.checkpoint import Checkpoint, check_checkpoint, check_fits, fingerprint
from rnnspec.runtime.models import _backend_of, check_inputs, get_weights, set_weights, spec_of
from rnnspec.util import is_int_at_least

__all__ = ["EpochCallback", "Trainer", "evaluate", "fit", "training_of"]


EpochCallback = Callable[[int, dict[str, float]], None]


def training_of(spec: ModelSpec, **overrides: Any) -> TrainingSpec:
    """The spec's ``training`` section with ``overrides`` (None values are ignored) applied."""
    if spec.training is None:
        raise RnnspecError(
            f"spec {spec.name!r} has no `training` section; add one, e.g. "
            "`training: {optimizer: adam, loss: binary_crossentropy, metrics: [accuracy]}`"
        )
    changes = {k: v.item() if isinstance(v, np.generic) else v for k, v in overrides.items() if v is not None}
    try:
        return TrainingSpec.model_validate({**spec.training.model_dump(), **changes})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (received {e['input']!r})" for e in exc.errors()
        )
        raise RnnspecError(f"invalid training argument: {problems}") from None


def _check_xy(spec: ModelSpec, training: TrainingSpec, x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets that fit the spec and its loss, or a clear error saying what does not."""
    x_arr = check_inputs(spec, x)
    try:
        y_arr = np.asarray(y)
    except ValueError:
        raise RnnspecError(f"{what}: the targets are ragged; every sample needs a target of the same shape") from None
    if y_arr.ndim == 0 or len(x_arr) != len(y_arr):
        raise RnnspecError(f"{what}: x has {len(x_arr)} samples but y has shape {y_arr.shape}; one target per sample")
    if len(x_arr) == 0:
        raise RnnspecError(f"{what}: no samples")
    if not (np.issubdtype(y_arr.dtype, np.number) or y_arr.dtype == bool) or not np.isfinite(y_arr).all():
        raise RnnspecError(f"{what}: the targets must be finite numbers, received {y_arr.dtype} values")
    y_arr = _targets_for(spec, training, y_arr)
    _check_target_shape(spec, training, x_arr, y_arr, what)
    return x_arr, y_arr


def _check_target_shape(spec: ModelSpec, training: TrainingSpec, x: np.ndarray, y: np.ndarray, what: str) -> None:
    units, loss = spec.output_units, training.loss.name
    lead = (len(x), spec.output_steps(x.shape[1])) if spec.output_per_step else (len(x),)
    if loss == "sparse_categorical_crossentropy":
        shapes = [lead, (*lead, 1)]
    else:
        shapes = [(*lead, units)] + ([lead] if units == 1 else [])
    if y.shape not in shapes:
        raise RnnspecError(
            f"{what}: targets of shape {y.shape} do not fit the model's outputs "
            f"{(*lead, units)} with {loss}; expected {' or '.join(map(str, shapes))}"
        )
    if loss == "sparse_categorical_crossentropy" and (y.min() < 0 or y.max() >= units or (y != np.round(y)).any()):
        raise RnnspecError(f"{what}: class labels must be integers in [0, {units}); received {y.min()}..{y.max()}")
    if loss == "binary_crossentropy" and (y.min() < 0 or y.max() > 1):
        raise RnnspecError(f"{what}: binary targets must lie in [0, 1]; received {y.min()}..{y.max()}")


def _targets_for(spec: ModelSpec, training: TrainingSpec, y: np.ndarray) -> np.ndarray:
    """Integer class labels become one-hot rows for ``categorical_crossentropy`` (which wants them)."""
    if (
        training.loss.name == "categorical_crossentropy"
        and np.issubdtype(y.dtype, np.integer)
        and y.ndim == (2 if spec.output_per_step else 1)
    ):
        units = spec.output_units
        if y.size and (y.min() < 0 or y.max() >= units):
            raise RnnspecError(
                f"class labels must lie in [0, {units}) for {units} outputs; received {y.min()}..{y.max()}"
            )
        return np.eye(units, dtype=np.float32)[y]
    return y


def fit(
    model: Any,
    x: Any,
    y: Any,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    seed: int | None = None,
    validation_split: float | None = None,
    validation_data: tuple[Any, Any] | None = None,
    on_epoch_end: EpochCallback | None = None,
    on_batch_end: Callable[[int, int, int], None] | None = None,
    device: str | None = None,
    resume: Checkpoint | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    checkpoint_every: int | None = None,
) -> dict[str, Any]:
    """Train a built model with its spec's ``training`` section; arguments override it.

    Returns the history: ``loss``, each metric of ``training.metrics`` (``accuracy``, ``mae``, ``mse``,
    ``rmse``), then ``val_loss`` and ``val_<metric>`` per epoch, as Keras names them, and ``batch_loss``
    per optimizer step, and ``seed``: the seed of the shuffles (drawn when ``seed`` is None, so that
    ``fit(..., seed=history["seed"])`` repeats the batches).
    ``on_epoch_end(epoch, logs)`` and ``on_batch_end(epoch, batch, batches)`` report progress.
    Ctrl-C stops after restoring the weights of the last completed epoch; the history then has
    ``"interrupted": True``. A seed given (or resumed) also seeds the dropout masks, so the run repeats from
    it; without one, dropout draws from the framework's own generator (PyTorch's global one, Keras's seed
    generators under ``keras.utils.set_random_seed``), as a hand-written model's would.

    ``on_checkpoint(checkpoint)`` receives a :class:`~rnnspec.runtime.checkpoint.Checkpoint` after every
    completed epoch; ``resume=checkpoint`` continues that run from it — weights, optimizer state,
    dropout generators, data order, history — so that training 2 epochs and resuming to 4 equals
    training 4 (bit for bit on torch). A checkpoint of other data, spec, settings, seed or backend is
    refused, naming what differs. ``checkpoint_every=K`` also checkpoints after every K-th batch of an
    epoch (not its last); resuming from one trains the rest of that epoch, as if never stopped.

    >>> import rnnspec
    >>> model = rnnspec.build("specs/imdb_lstm.yaml", "torch", seed=0)
    >>> history = rnnspec.fit(model, x, y, epochs=2)  # doctest: +SKIP
    """
    spec = spec_of(model)
    if spec.stateful:
        names = [name for name, layer in spec.stack() if getattr(layer, "stateful", False)]
        raise RnnspecError(
            f"spec {spec.name!r} cannot be trained: {', '.join(names)} is stateful (stateful: true), which rnnspec "
            "supports for prediction only (training would carry states between shuffled batches of unrelated "
            "samples, and Keras's and PyTorch's trainers would not agree on when to reset them); fix: train the "
            "same spec without `stateful: true` and `input.batch_size`, then predict with its weights in the "
            "stateful spec (the weights are the same)"
        )
    training = training_of(
        spec, epochs=epochs, batch_size=batch_size, shuffle=shuffle, validation_split=validation_split
    )
    check_seed(seed)
    if checkpoint_every is not None and (not is_int_at_least(checkpoint_every, 1) or on_checkpoint is None):
        raise RnnspecError(
            f"checkpoint_every must be a positive number of batches, with on_checkpoint; received {checkpoint_every!r}"
        )
    if resume is not None:
        check_checkpoint(resume)  # one made in memory gets the checks a file gets
    if seed is None and resume is not None:  # the resumed run's seed
        seed = int(resume.fingerprint.get("seed", 0))
    seeds_dropout = seed is not None
    if seed is None:  # drawn here and recorded in the history, so that the batches can be repeated
        seed = int(np.random.SeedSequence().entropy % 2**32)
    x_arr, y_arr = _check_xy(spec, training, x, y, "training data")
    data = [x_arr, y_arr]
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise RnnspecError("validation_data must be a pair (x_val, y_val)")
        x_val, y_val = _check_xy(spec, training, *validation_data, "validation data")
        data += [x_val, y_val]
    elif training.validation_split > 0:
        split_at = math.floor(len(x_arr) * (1.0 - training.validation_split))
        if split_at in (0, len(x_arr)):
            raise RnnspecError(
                f"validation_split {training.validation_split} of {len(x_arr)} samples leaves an empty part; "
                "use more data or another split"
            )
        x_arr, x_val, y_arr, y_val = x_arr[:split_at], x_arr[split_at:], y_arr[:split_at], y_arr[split_at:]
    else:
        x_val = y_val = None

    impl = _backend_of(model)
    if not isinstance(impl, TrainableBackend):
        raise RnnspecError(f"the {impl.name} backend cannot train (it is forward-only); use {_trainers()}")
    trainer = _trainer_for(model, impl, training, device)
    if seeds_dropout and isinstance(trainer, SeededTrainer):
        trainer.set_seed(seed)
    rng = np.random.default_rng(seed)
    history: dict[str, Any] = {"loss": [], "batch_loss": [], "seed": seed}
    run_id = fingerprint(spec, training, data, seed, impl.name) if resume or on_checkpoint else {}
    first, carry = 0, None
    if resume is not None:
        carry = resume.epoch_carry
        history, first = _resume(model, trainer, resume, run_id, training, seed)
        batches = math.ceil(len(x_arr) / training.batch_size)
        if carry is not None and resume.steps_done >= batches:
            raise RnnspecError(
                f"cannot resume: the checkpoint is at {resume.position}, but an epoch of this data has {batches} "
                "batches. fix: resume from an unedited checkpoint, or start the run afresh with --overwrite"
            )
        for _ in range(first):  # the data order of the epochs done: each epoch's permutation comes from the seed
            if training.shuffle:
                rng.permutation(len(x_arr))
    if on_checkpoint is not None and not isinstance(trainer, CheckpointingTrainer):
        raise RnnspecError(f"the {impl.name} backend's trainer cannot save its state, so it cannot checkpoint")
    snapshot = get_weights(model)
    try:
        for epoch in range(first, training.epochs):
            order = rng.permutation(len(x_arr)) if training.shuffle else np.arange(len(x_arr))
            progress = None if on_batch_end is None else (lambda b, n, e=epoch: on_batch_end(e, b, n))
            within: dict[str, Any] = {}
            if carry is not None:  # resumed within this epoch: the rest of its batches
                order = order[int(carry["steps"]) * training.batch_size :]
                within["carry"], carry = carry, None
            if checkpoint_every is not None and on_checkpoint is not None:

                def on_steps(state: dict[str, np.ndarray], done: int = epoch) -> None:
                    weights, trainer_state = get_weights(model), trainer.state()  # type: ignore[attr-defined]
                    on_checkpoint(Checkpoint(done, _copied(history, seed), weights, trainer_state, run_id, state))

                within.update(every=checkpoint_every, on_steps=on_steps)
            result = trainer.train_epoch(_ordered(x_arr, order), y_arr[order], training.batch_size, progress, **within)
            logs = {k: float(v) for k, v in result.items() if k != "batch_loss"}
            if x_val is not None:
                val = trainer.evaluate(x_val, y_val, training.batch_size)
                logs.update({f"val_{k}": float(v) for k, v in val.items()})
            batch_losses = [float(v) for v in result["batch_loss"]]
            if not all(math.isfinite(v) for v in [*batch_losses, *logs.values()]):
                set_weights(model, snapshot)
                _forget_trainer(model)  # its optimizer state holds the non-finite steps; a later fit starts afresh
                raise NonFiniteLossError(epoch, batch_losses, logs, history)
            history["batch_loss"].extend(batch_losses)
            logs = _keras_order(logs, training)
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            snapshot = get_weights(model)
            if on_checkpoint is not None:
                state = trainer.state()  # type: ignore[attr-defined]
                on_checkpoint(Checkpoint(epoch + 1, _copied(history, seed), snapshot, state, run_id))
            if on_epoch_end is not None:
                on_epoch_end(epoch, logs)
    except KeyboardInterrupt:
        set_weights(model, snapshot)
        steps = len(history["loss"]) * math.ceil(len(x_arr) / training.batch_size)
        history["batch_loss"] = history["batch_loss"][:steps]
        history["interrupted"] = True
    finally:  # moved after the Keras-named series (a NaN stop's history carries it too)
        history["seed"] = history.pop("seed")
    return history


def _copied(history: dict[str, Any], seed: int) -> dict[str, Any]:
    """The history as it is now (its lists copied: training goes on appending to them)."""
    return {**{k: list(v) if isinstance(v, list) else v for k, v in history.items()}, "seed": seed}


class _Ordered:
    """Rows of a file-backed array in an epoch's order, read a batch at a time (``rows[a:b]`` reads those)."""

    def __init__(self, rows: Any, order: np.ndarray):
        self.rows, self.order = rows, order
        self.dtype, self.shape, self.ndim = rows.dtype, (len(order), *rows.shape[1:]), rows.ndim

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, key: slice) -> np.ndarray:
        return self.rows[self.order[key]]


def _ordered(x: Any, order: np.ndarray) -> Any:
    """``x[order]``: in memory for an array, batch by batch for rows read from a file."""
    return x[order] if isinstance(x, np.ndarray) else _Ordered(x, order)


def _resume(
    model: Any, trainer: Any, checkpoint: Checkpoint, run_id: dict[str, Any], training: TrainingSpec, seed: int
) -> tuple[dict[str, Any], int]:
    """Put the checkpoint's state into the model and trainer; its history and the number of epochs done."""
    differences = checkpoint.differences(run_id)
    if differences:
        raise RnnspecError(
            "cannot resume: the checkpoint was written by another run; "
            + "; ".join(differences[:6])
            + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
            + ". fix: resume with the same spec, data, settings, seed and backend, or start a new run"
        )
    check_resumable(checkpoint, training.epochs)
    if not isinstance(trainer, CheckpointingTrainer):
        raise RnnspecError(f"the {_backend_of(model).name} backend's trainer cannot restore a checkpoint")
    check_fits(checkpoint, get_weights(model), trainer.state())  # every array, before any is put in
    set_weights(model, checkpoint.weights)
    trainer.load_state(checkpoint.trainer_state)
    history = {k: (list(v) if isinstance(v, list) else v) for k, v in checkpoint.history.items()}
    for key in ("interrupted", "stopped", "seed"):
        history.pop(key, None)
    return {**history, "seed": seed}, checkpoint.epochs_done


def check_resumable(checkpoint: Checkpoint, epochs: int, where: str = "the run") -> None:
    """Refuse to resume a run that already has ``epochs`` epochs (``where``: the run, as the user named it)."""
    if checkpoint.epochs_done >= epochs:
        raise RnnspecError(
            f"nothing to resume: {where} is finished ({checkpoint.epochs_done} epochs done, {epochs} asked for); "
            f"nothing was trained. fix: ask for more epochs to train it further, e.g. --epochs "
            f"{checkpoint.epochs_done + 1} (epochs={checkpoint.epochs_done + 1} from Python)"
        )


class NonFiniteLossError(RnnspecError):
    """Training reached a NaN or infinite loss. The model holds the weights of the last finite epoch and
    :attr:`history` the epochs before it (``stopped`` says where it happened)."""

    def __init__(self, epoch: int, batch_losses: list[float], logs: dict[str, float], history: dict[str, Any]):
        bad_step = next((k for k, v in enumerate(batch_losses) if not math.isfinite(v)), None)
        where = f"epoch {epoch + 1}" + (f", step {bad_step + 1}" if bad_step is not None else "")
        what = ", ".join(f"{k} = {v}" for k, v in logs.items() if not math.isfinite(v)) or "batch loss nan"
        self.history = {**history, "stopped": f"non-finite loss at {where} ({what})"}
        kept = len(history["loss"])
        super().__init__(
            f"training stopped: the loss became NaN or infinite at {where} ({what}); the model keeps the weights "
            f"of the last finite epoch ({kept}). fix: lower the learning rate, add clipnorm, or check the data "
            "for huge or non-finite values"
        )


def _keras_order(logs: dict[str, float], training: TrainingSpec) -> dict[str, float]:
    """Keras's order of the epoch logs: loss, the metrics as listed, then the same for validation."""
    names = ["loss", *training.metrics]
    order = [*names, *(f"val_{name}" for name in names)]
    return {k: logs[k] for k in sorted(logs, key=lambda k: order.index(k) if k in order else len(order))}


def evaluate(model: Any, x: Any, y: Any, *, batch_size: int | None = None) -> dict[str, float]:
    """Loss and the spec's metrics of a built model on ``x, y``, as Keras's ``evaluate``."""
    spec = spec_of(model)
    training = training_of(spec, batch_size=batch_size)
    x_arr, y_arr = _check_xy(spec, training, x, y, "evaluation data")
    impl = _backend_of(model)
    if not isinstance(impl, TrainableBackend):
        raise RnnspecError(f"the {impl.name} backend cannot evaluate a loss; use {_trainers()}")
    result = _trainer_for(model, impl, training, None).evaluate(x_arr, y_arr, training.batch_size)
    return _keras_order({k: float(v) for k, v in result.items()}, training)


_TRAINER_ATTR = "_rnnspec_trainer"


def _trainers() -> str:
    """The backends that train, for messages (``keras or torch``)."""
    return " or ".join(backends_with("trains")) or "a backend that trains (none is installed)"


def _forget_trainer(model: Any) -> None:
    """Drop the model's cached trainer (and its optimizer state)."""
    if hasattr(model, _TRAINER_ATTR):
        delattr(model, _TRAINER_ATTR)


def _trainer_for(model: Any, impl: Any, training: TrainingSpec, device: str | None) -> Trainer:
    """The model's trainer, kept across calls so the optimizer state survives fit → evaluate → fit."""
    key = (training.optimizer, training.loss, tuple(training.metrics), device)
    cached = getattr(model, _TRAINER_ATTR, None)
    if cached is not None and cached[0] == key:
        return cached[1]
    trainer = impl.trainer(model, training, device=device)
    setattr(model, _TRAINER_ATTR, (key, trainer))
    return trainer
