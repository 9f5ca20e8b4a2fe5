"""Training an :class:`~rnnspec_backends.torch.RnnspecModule` with Keras's meaning.

- Losses are computed from logits where the head is sigmoid or softmax, as Keras does (it reads the
  logits behind its ``sigmoid``/``softmax`` outputs), so ``binary_crossentropy`` is
  ``BCEWithLogits`` and the categorical losses are ``log_softmax`` based. ``mse``, ``mae`` and
  ``huber`` compare the outputs with the targets, averaged over the last axis. ``sum_over_batch_size``
  reduction: the mean over every element, or over the unmasked ones when the outputs carry Keras's
  mask (per-step outputs of a model with ``mask_zero`` or ``mask_value``; the model reports the mask
  of its last call, :attr:`RnnspecModule.output_mask`).
- Optimizers follow Keras's update formulas (:class:`KerasOptimizer`), not ``torch.optim``'s:
  RMSprop's epsilon inside the square root, Adam's "epsilon hat", Keras's defaults.
- TensorFlow hands the embedding gradient to the optimizer as one slice per token occurrence, and
  Adam / RMSprop square each slice before duplicates are summed; clipping by value also acts per
  slice. The trainer reproduces that from the gradient of the embedded sequence.
- Epoch logs are Keras's: the loss is the running mean weighted by batch size; ``accuracy``, ``mae``
  and ``mse`` the mean over every (unmasked) sample or step of the per-step value (itself the mean
  over the last axis); ``rmse`` the square root of the epoch's mean squared error. Keras's
  ``RootMeanSquaredError`` is not a wrapped loss function and does not read the outputs' mask, so
  ``rmse`` counts padded steps too (checked against Keras by tests/test_torch_kinds.py).
- Clipping (``clipnorm`` / ``clipvalue``) is one function, :func:`clip_gradient`, used for every
  variable and for the embedding's per-occurrence slices.
- Dropout masks come from the trainer's own ``torch.Generator``, seeded by ``fit``'s seed, so a run
  repeats from its seed; :meth:`TorchTrainer.state` holds it with the optimizer's slots for a checkpoint.
- In a process group (``torchrun``, ``rnnspec train --nproc``) the trainer is data-parallel and keeps
  single-process Keras semantics: every rank takes a contiguous shard of every global batch
  (``np.array_split``), the model runs under ``DistributedDataParallel``, each rank's loss is its sum
  over the global count of samples (or valid steps) times the world size (DDP averages), the
  embedding's per-occurrence sums (gradient and Σ g²) are SUM-all-reduced outside DDP and clipped
  after the reduction, and the epoch's metric sums are reduced. Batch-norm-free models need no other
  synchronisation: the ranks apply the same update to the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnspec.core.backend import CheckpointingTrainer, SeededTrainer, Trainer
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.losses import LOSSES, METRICS
from rnnspec.lang.spec import SGD, Adam, RMSprop, TrainingSpec

from .dist import all_gather, all_reduce_sum, stop_when_a_peer_fails, world
from .ops import LossOps, activation, dropout_generator

__all__ = ["KerasOptimizer", "TorchTrainer", "clip_gradient", "resolve_device"]


def resolve_device(device: str | None) -> torch.device:
    """``auto`` (or None): CUDA when available, else CPU; ``cpu``; ``cuda`` (refused clearly if absent)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RnnspecError("--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise RnnspecError(f"unknown device {device!r}; expected auto, cpu or cuda")
    return torch.device(device)


@contextmanager
def _flush_denormals():
    """Flush denormal floats to zero while training on a CPU (as TensorFlow does in its threads).

    Tiny gradients through long sequences become denormal and make a CPU step several times
    slower; flushing them changes nothing above 1e-38.
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def clip_gradient(grad: Tensor, clipnorm: float | None, clipvalue: float | None) -> Tensor:
    """Keras's ``clipnorm`` (scale to at most this L2 norm over the whole tensor) or ``clipvalue``
    (each element to ``[-clipvalue, clipvalue]``); the gradient itself when neither is set."""
    if clipnorm:
        norm = grad.pow(2).sum().sqrt()
        return grad * clipnorm / torch.maximum(norm, norm.new_tensor(clipnorm))
    if clipvalue:
        return grad.clamp(-clipvalue, clipvalue)
    return grad


class KerasOptimizer:
    """SGD / Adam / RMSprop with Keras 3's update formulas and clipping, on torch tensors."""

    def __init__(self, params: list[Tensor], spec: SGD | Adam | RMSprop):
        self.params = params
        self.spec = spec
        self.iterations = 0
        self.state: list[dict[str, Tensor]] = [{} for _ in params]

    def slot_names(self) -> list[str]:
        """The names of the state each parameter gets at its first step (what ``_update`` makes)."""
        s = self.spec
        if isinstance(s, SGD):
            return ["m"] if s.momentum != 0 else []
        if isinstance(s, RMSprop):
            return ["v", *(["a"] if s.centered else []), *(["m"] if s.momentum > 0 else [])]
        return ["m", "v", *(["v_hat"] if s.amsgrad else [])]

    def clip(self, grad: Tensor) -> Tensor:
        """Keras's per-variable ``clipnorm`` or ``clipvalue``."""
        return clip_gradient(grad, self.spec.clipnorm, self.spec.clipvalue)

    @torch.no_grad()
    def step(self, grads: list[Tensor], squares: dict[int, Tensor] | None = None) -> None:
        """Apply one update; ``squares[i]`` replaces ``grads[i]**2`` in the second moment of parameter i."""
        squares = squares or {}
        for i, (param, grad) in enumerate(zip(self.params, grads, strict=True)):
            square = squares.get(i)
            self._update(param, grad, grad * grad if square is None else square, self.state[i])
        self.iterations += 1

    def _update(self, param: Tensor, g: Tensor, g2: Tensor, state: dict[str, Tensor]) -> None:
        s = self.spec
        lr = s.learning_rate
        if isinstance(s, SGD):
            if s.momentum == 0:
                param.sub_(g * lr)
                return
            m = state.setdefault("m", torch.zeros_like(param))
            m.mul_(s.momentum).sub_(g * lr)
            param.add_(m * s.momentum - g * lr if s.nesterov else m)
        elif isinstance(s, RMSprop):
            v = state.setdefault("v", torch.zeros_like(param))
            v.mul_(s.rho).add_(g2 * (1 - s.rho))
            if s.centered:
                a = state.setdefault("a", torch.zeros_like(param))
                a.mul_(s.rho).add_(g * (1 - s.rho))
                denominator = v - a * a + s.epsilon
            else:
                denominator = v + s.epsilon
            increment = g * lr / denominator.sqrt()
            if s.momentum > 0:
                m = state.setdefault("m", torch.zeros_like(param))
                m.mul_(s.momentum).add_(increment)
                param.sub_(m)
            else:
                param.sub_(increment)
        else:
            t = self.iterations + 1
            b1 = torch.tensor(s.beta_1, dtype=param.dtype, device=param.device)
            b2 = torch.tensor(s.beta_2, dtype=param.dtype, device=param.device)
            alpha = lr * torch.sqrt(1 - b2**t) / (1 - b1**t)
            m = state.setdefault("m", torch.zeros_like(param))
            v = state.setdefault("v", torch.zeros_like(param))
            m.add_((g - m) * (1 - s.beta_1))
            v.add_((g2 - v) * (1 - s.beta_2))
            if s.amsgrad:
                v_hat = state.setdefault("v_hat", torch.zeros_like(param))
                torch.maximum(v_hat, v, out=v_hat)
                v = v_hat
            param.sub_(m * alpha / (v.sqrt() + s.epsilon))


class _Sums:
    """Keras's epoch accumulators: per metric a running ``[total, count]``, in float64."""

    def __init__(self, names: list[str]):
        self.values = {name: np.zeros(2) for name in names}

    def add(self, batch: dict[str, Tensor]) -> None:
        for name, pair in batch.items():
            self.values[name] += pair.detach().cpu().double().numpy()

    def reduce(self, device: torch.device) -> None:
        """Sum every process's totals and counts (a process group's epoch)."""
        names = list(self.values)
        if names:
            summed = all_reduce_sum(torch.as_tensor(np.stack([self.values[n] for n in names]), device=device))
            self.values = dict(zip(names, summed.cpu().numpy(), strict=True))

    def results(self) -> dict[str, float]:
        out = {}
        for name, (total, count) in self.values.items():
            mean = total / count if count else 0.0
            out[name] = float(np.sqrt(mean)) if METRICS[name].root else float(mean)
        return out


class TorchTrainer(Trainer, SeededTrainer, CheckpointingTrainer):
    """One optimizer and loss for one model; ``train_epoch`` and ``evaluate`` as rnnspec.runtime.training expects."""

    def __init__(self, model: Any, training: TrainingSpec, device: str | None = None):
        self.model = model
        self.spec = model.spec
        self.training = training
        self.device = resolve_device(device)
        model.to(self.device)
        # a frozen layer's weights (`trainable: false`, requires_grad False) are not the optimizer's: no update and no
        # slots, as Keras builds its optimizer from model.trainable_variables only
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = KerasOptimizer(self.params, training.optimizer)
        self.generator: torch.Generator | None = None
        """Where dropout masks come from: None (PyTorch's global generator) until ``fit`` gives a seed."""
        embedding = model.layers[model.embedding_name].embeddings if model.embedding_name else None
        self.embedding = embedding if embedding is not None and embedding.requires_grad else None
        self.embedding_index = next((i for i, p in enumerate(self.params) if p is self.embedding), None)
        self.rank, self.world = world()
        self.forward: Any = model
        if self.world > 1:
            self._refuse_per_shard_statistics()
            self._wrap_ddp()
        self.metrics = list(dict.fromkeys(training.metrics))
        spec = self.spec
        self.masked_outputs = spec.output_masked
        output = spec.output_activation_layer  # the output Dense layer, or an Activation after it
        self.output_activation = getattr(output[1], "activation", "linear") if output is not None else "linear"
        self.activate = activation(self.output_activation)
        loss = training.loss
        self.loss_kind = LOSSES[loss.name]
        self.on_logits = loss.from_logits or self.output_activation == self.loss_kind.logits_of
        # the logits behind the output activation stand for the outputs only where Keras reads them so (a sigmoid or
        # softmax under its loss without from_logits); with from_logits the outputs themselves are the logits (a
        # log_softmax head: log_softmax of its outputs, PyTorch's NLLLoss, as Keras computes it)
        self.behind = not loss.from_logits and self.output_activation == self.loss_kind.logits_of

    def _per_occurrence(self) -> bool:
        """Whether the embedding's gradient follows TensorFlow's per-occurrence slices (Adam, RMSprop, clipping)."""
        spec = self.optimizer.spec
        per_occurrence = isinstance(spec, (Adam, RMSprop)) or spec.clipvalue is not None or spec.clipnorm is not None
        return self.embedding is not None and per_occurrence

    def _refuse_per_shard_statistics(self) -> None:
        """A ``batch_norm`` layer normalises each batch by its own mean and variance: under data-parallel training
        each process would see only its shard's, and Keras's one-process training sees the whole batch's, so the
        losses and moving statistics would differ (PyTorch's ``SyncBatchNorm`` is not Keras's semantics either)."""
        layers = [(name, layer.kind) for name, layer in self.spec.stack() if layer.batch_statistics]
        if layers:
            name, kind = layers[0]
            raise RnnspecError(
                f"{kind} layer {name!r} normalises each batch by its statistics, and {self.world} processes would "
                "each compute them on their shard of the batch instead of the whole batch Keras trains on, so "
                "data-parallel training would not match one process"
                f"\n  received: a spec with {kind} and {self.world} processes"
                f"\n  expected: one process for a spec with {kind}"
                "\n  fix: train without --nproc (or torchrun), or replace batch_norm with layer_norm, whose "
                "statistics are per sample"
            )

    def _wrap_ddp(self) -> None:
        """Run the model under DistributedDataParallel; the embedding stays out of it when its per-occurrence
        sums are reduced by the trainer instead."""
        from torch.nn.parallel import DistributedDataParallel

        if self._per_occurrence():
            names = [name for name, p in self.model.named_parameters() if p is self.embedding]
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self.model, names)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.forward = DistributedDataParallel(self.model, device_ids=ids)

    def _shard(self, values: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a global batch (all of it in one process)."""
        if self.world == 1:
            return values
        return np.array_split(values, self.world)[self.rank]

    def _check_shards(self, n: int, batch_size: int) -> None:
        last = n - (-(-n // batch_size) - 1) * batch_size
        if self.world > 1 and min(batch_size, last) < self.world:
            raise RnnspecError(
                f"a batch of {min(batch_size, last)} sample(s) cannot be shared by {self.world} processes (every "
                "process takes part in every step); fix: a batch size and sample count whose last batch has at "
                "least one sample per process, or fewer processes"
            )

    # -- loss and metrics ----------------------------------------------------------------------------

    def _targets(self, y: np.ndarray, out: Tensor) -> Tensor:
        labels = self.loss_kind.integer_labels
        dtype = torch.long if labels else out.dtype
        target = torch.as_tensor(y, device=self.device).to(dtype)
        if labels:
            if target.dim() == out.dim():
                target = target.squeeze(-1)
        elif target.dim() == out.dim() - 1:
            target = target.unsqueeze(-1)
        return target

    def _elementwise_loss(self, raw: Tensor, target: Tensor) -> Tensor:
        """Per-element loss (the last axis reduced as Keras does), from logits where Keras uses them."""
        out = raw if self.behind else self.activate(raw)
        delta = self.training.loss.huber_delta
        return self.loss_kind.elementwise(out, target, LossOps, from_logits=self.on_logits, delta=delta)

    def _matches(self, outputs: Tensor, target: Tensor, y: np.ndarray) -> Tensor:
        """Keras's "accuracy": binary, sparse categorical or categorical, chosen from the shapes."""
        if outputs.shape[-1] == 1:
            t = target if target.dim() == outputs.dim() else target.unsqueeze(-1)
            return ((outputs > 0.5).to(outputs.dtype) == t.to(outputs.dtype)).to(outputs.dtype).squeeze(-1)
        predicted = outputs.argmax(-1)
        if np.ndim(y) < outputs.dim() or (np.shape(y)[-1] == 1 and outputs.shape[-1] > 1):
            labels = torch.as_tensor(y, device=self.device).long()
            labels = labels.squeeze(-1) if labels.dim() == outputs.dim() else labels
            return (predicted == labels).to(outputs.dtype)
        return (predicted == target.argmax(-1)).to(outputs.dtype)

    def _metric_sums(self, outputs: Tensor, target: Tensor, y: np.ndarray, weight: Tensor | None) -> dict[str, Tensor]:
        """Each metric's ``[total, count]`` for one batch, as Keras's metric objects accumulate them.

        ``accuracy``, ``mae`` and ``mse`` wrap a per-step function (the mean over the last axis) in
        Keras's ``Mean``, weighted by the outputs' mask; ``rmse`` (``RootMeanSquaredError``) averages the
        squared error per sample and ignores the mask; its epoch value is the root of total / count.
        """
        sums: dict[str, Tensor] = {}
        values = None
        if any(METRICS[name].per_step is not None or METRICS[name].root for name in self.metrics):
            values = torch.as_tensor(y, device=self.device).to(outputs.dtype)
            if values.dim() == outputs.dim() - 1:
                values = values.unsqueeze(-1)
            error = outputs - values
        for name in self.metrics:
            if METRICS[name].root:  # RootMeanSquaredError: per sample, masks ignored
                per_sample = error.pow(2).reshape(len(error), -1).mean(-1)
                sums[name] = torch.stack([per_sample.sum(), per_sample.new_tensor(float(len(per_sample)))])
                continue
            formula = METRICS[name].per_step
            per_step = self._matches(outputs, target, y) if formula is None else formula(error, LossOps)
            w = torch.ones_like(per_step) if weight is None else weight
            sums[name] = torch.stack([(per_step * w).sum(), w.sum()])
        return sums

    def _batch(self, xb: np.ndarray, yb: np.ndarray, forward: Any = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The loss to differentiate, the batch's loss value, and each metric's sums ``[total, count]``.

        In a process group the value is the global batch's loss and the loss to differentiate this rank's
        sum over the global count, times the world size (DDP averages the gradients)."""
        x = torch.as_tensor(xb, device=self.device)
        raw = (forward or self.model)(x, logits=True)
        target = self._targets(yb, raw)
        losses = self._elementwise_loss(raw, target)
        mask = self.model.output_mask if self.masked_outputs else None
        weight = mask.to(losses.dtype) if mask is not None else None
        if self.world > 1:
            total = (losses * weight).sum() if weight is not None else losses.sum()
            count = weight.sum() if weight is not None else losses.new_tensor(float(losses.numel()))
            stat = all_reduce_sum(torch.stack([total.detach(), count.detach()]))
            loss = total * self.world / stat[1] if stat[1] > 0 else total * 0
            value = stat[0] / stat[1] if stat[1] > 0 else stat[0] * 0
        else:
            if weight is not None:
                valid = weight.sum()
                loss = (losses * weight).sum() / valid if valid > 0 else losses.sum() * 0
            else:
                loss = losses.mean()
            value = loss.detach()
        sums: dict[str, Tensor] = {}
        if self.metrics:
            with torch.no_grad():
                sums = self._metric_sums(self.activate(raw.detach()), target, yb, weight)
        return loss, value, sums

    # -- epochs --------------------------------------------------------------------------------------

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
        """One pass in the given order: ``batch_loss``, ``loss`` and each metric of ``training.metrics``.

        ``carry`` continues an epoch from what ``on_steps`` received (``x, y`` are then the rest of it);
        ``on_steps(carry)`` is called after every ``every``-th batch of the epoch but its last."""
        model = self.model
        self._check_shards(len(x), batch_size)
        model.train()
        model.capture_embedding = self.embedding is not None
        batch_losses: list[float] = []
        loss_total = seen = 0.0
        metrics = _Sums(self.metrics)
        if carry is not None:
            batch_losses = [float(v) for v in carry["batch_loss"]]
            loss_total, seen = (float(v) for v in carry["loss_sums"])
            for name in metrics.values:
                metrics.values[name] = np.array(carry[f"metric/{name}"][self.rank], dtype=np.float64)
        n_batches = len(batch_losses) + -(-len(x) // batch_size)
        try:
            with stop_when_a_peer_fails(), _flush_denormals(), dropout_generator(self.generator):
                for start in range(0, len(x), batch_size):
                    xb, yb = np.asarray(x[start : start + batch_size]), y[start : start + batch_size]
                    for p in self.params:
                        p.grad = None
                    loss, batch_value, sums = self._batch(self._shard(xb), self._shard(yb), self.forward)
                    if loss.requires_grad:  # not when every layer is frozen (Keras then warns and fits nothing)
                        loss.backward()
                    grads, squares = self._gradients()
                    self.optimizer.step(grads, squares)
                    value = float(batch_value)
                    batch_losses.append(value)
                    loss_total += value * len(xb)
                    seen += len(xb)
                    metrics.add(sums)
                    if progress is not None:
                        progress(len(batch_losses), n_batches)
                    done = len(batch_losses)
                    if on_steps is not None and every and done % every == 0 and done < n_batches:
                        on_steps(self._carry(batch_losses, loss_total, seen, metrics))
        finally:
            model.capture_embedding = False
        if self.world > 1:
            with stop_when_a_peer_fails():
                metrics.reduce(self.device)
        return {"batch_loss": batch_losses, "loss": loss_total / seen, **metrics.results()}

    def _carry(self, batch_losses: list[float], loss_total: float, seen: float, metrics: _Sums) -> dict[str, Any]:
        """The epoch so far, to continue it from: its batch losses, loss sums and every process's metric sums."""
        out = {
            "steps": np.array(len(batch_losses), dtype=np.int64),
            "batch_loss": np.array(batch_losses, dtype=np.float64),
            "loss_sums": np.array([loss_total, seen], dtype=np.float64),
        }
        for name, pair in metrics.values.items():
            mine = torch.as_tensor(pair, dtype=torch.float64, device=self.device)
            rows = all_gather(mine, self.device) if self.world > 1 else [mine]
            out[f"metric/{name}"] = np.stack([row.cpu().numpy() for row in rows])
        return out

    # -- seed and checkpoint state ------------------------------------------------------------------

    def set_seed(self, seed: int) -> None:
        """Draw the dropout masks of training from a generator seeded with ``seed``: one seed, one set of masks."""
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed + self.rank)  # each process its own masks

    def state(self) -> dict[str, np.ndarray]:
        """What a checkpoint needs beyond the weights: the optimizer's step count and slots, the dropout generator."""
        generator = (self.generator or torch.default_generator).get_state()
        out = {"iterations": np.array(self.optimizer.iterations, dtype=np.int64)}
        if self.world > 1:  # every rank draws its own masks: all of them are saved (every rank calls this)
            with stop_when_a_peer_fails():
                gathered = all_gather(generator, self.device)
            for rank, state in enumerate(gathered):
                out[f"dropout_generator/{rank}"] = state.cpu().numpy().copy()
        else:
            out["dropout_generator"] = generator.cpu().numpy().copy()
        for i, slots in enumerate(self.optimizer.state):
            for name in self.optimizer.slot_names():  # a slot not made yet is zeros (what its first step makes)
                value = slots[name] if name in slots else torch.zeros_like(self.params[i])
                out[f"slot/{i}/{name}"] = value.detach().cpu().numpy().copy()  # not a view
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state` (a checkpoint of the same spec and optimizer), or say what does not fit."""
        slots: list[dict[str, Tensor]] = [{} for _ in self.params]
        for key, value in state.items():
            if not key.startswith("slot/"):
                continue
            _, index, name = key.split("/")
            i = int(index)
            if i >= len(self.params) or tuple(value.shape) != tuple(self.params[i].shape):
                raise RnnspecError(f"the checkpoint's optimizer slot {key} {value.shape} does not fit this model")
            slots[i][name] = torch.as_tensor(value, device=self.device).clone()
        self.optimizer.state = slots
        self.optimizer.iterations = int(state["iterations"])
        key = f"dropout_generator/{self.rank}" if self.world > 1 else "dropout_generator"
        if key not in state:
            raise RnnspecError(
                f"the checkpoint was written by a run in another number of processes (it has no {key}); resume "
                "with as many processes as it was trained with"
            )
        if self.generator is None:
            self.generator = torch.Generator(device=self.device)
        try:
            self.generator.set_state(torch.as_tensor(state[key], dtype=torch.uint8).clone())
        except RuntimeError:
            raise RnnspecError(
                f"the checkpoint's dropout generator was saved on another kind of device than {self.device.type}; "
                "resume with the --device the run was trained with"
            ) from None

    def _gradients(self) -> tuple[list[Tensor], dict[int, Tensor]]:
        """Clipped gradients and, for the embedding, TensorFlow's per-occurrence second-moment input."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        squares: dict[int, Tensor] = {}
        spec = self.optimizer.spec
        per_occurrence = isinstance(spec, (Adam, RMSprop)) or spec.clipvalue is not None or spec.clipnorm is not None
        if self.world > 1 and self.embedding_index is not None and per_occurrence:
            grads[self.embedding_index], squares[self.embedding_index] = self._reduced_embedding_sums()
            others = [i for i in range(len(grads)) if i != self.embedding_index]
        elif self.embedding_index is not None and per_occurrence and self.model.embedded.grad is not None:
            # TensorFlow's embedding gradient is a list of slices, one per token occurrence: clipping acts on
            # the slices (clipnorm's norm counts every occurrence), and Adam / RMSprop square each slice
            # before the duplicates of a row are summed (checked against Keras by the parity tests)
            ids = self.model.embedded_ids.reshape(-1)
            slices = self.optimizer.clip(self.model.embedded.grad.reshape(ids.numel(), -1))
            grads[self.embedding_index] = torch.zeros_like(self.embedding).index_add_(0, ids, slices)
            squares[self.embedding_index] = torch.zeros_like(self.embedding).index_add_(0, ids, slices * slices)
            others = [i for i in range(len(grads)) if i != self.embedding_index]
        else:
            others = range(len(grads))
        for i in others:
            grads[i] = self.optimizer.clip(grads[i])
        return grads, squares

    def _reduced_embedding_sums(self) -> tuple[Tensor, Tensor]:
        """The embedding's gradient and Σ g² over every occurrence on every rank, clipped as one process would.

        Each rank's slices are of its loss times the world size, so they are divided by it. ``clipvalue``
        acts on each occurrence (on its rank); ``clipnorm``'s norm is over every occurrence, so it is
        taken after the SUM all-reduce: ``sqrt(Σ g²)``."""
        assert self.embedding is not None
        spec = self.optimizer.spec
        ids = self.model.embedded_ids.reshape(-1)
        embedded = self.model.embedded.grad
        slices = (
            embedded.reshape(ids.numel(), -1) / self.world
            if embedded is not None
            else self.embedding.new_zeros((0, self.embedding.shape[1]))
        )
        if not spec.clipnorm and spec.clipvalue:
            slices = slices.clamp(-spec.clipvalue, spec.clipvalue)
        sums = torch.zeros((2, *self.embedding.shape), dtype=self.embedding.dtype, device=self.embedding.device)
        sums[0].index_add_(0, ids, slices)
        sums[1].index_add_(0, ids, slices * slices)
        grad, square = all_reduce_sum(sums)
        if spec.clipnorm:
            norm = square.sum().sqrt()
            factor = spec.clipnorm / torch.maximum(norm, norm.new_tensor(spec.clipnorm))
            grad, square = grad * factor, square * factor * factor
        return grad, square

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        """Loss and metrics over ``x, y`` in inference mode (Keras's ``evaluate``; in a process group each
        rank evaluates its shard of every batch and the sums are reduced)."""
        model = self.model
        self._check_shards(len(x), batch_size)
        was_training = model.training
        model.eval()
        loss_total = seen = 0.0
        metrics = _Sums(self.metrics)
        try:
            with stop_when_a_peer_fails(), torch.no_grad(), _flush_denormals():
                for start in range(0, len(x), batch_size):
                    xb, yb = np.asarray(x[start : start + batch_size]), y[start : start + batch_size]
                    _, value, sums = self._batch(self._shard(xb), self._shard(yb))
                    loss_total += float(value) * len(xb)
                    seen += len(xb)
                    metrics.add(sums)
        finally:
            model.train(was_training)
        if self.world > 1:
            with stop_when_a_peer_fails():
                metrics.reduce(self.device)
        return {"loss": loss_total / seen, **metrics.results()}
