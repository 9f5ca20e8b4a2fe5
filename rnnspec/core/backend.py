"""The contract every backend object fulfils (the ``BACKEND`` of each module in backends/), and every optional
capability a backend or its trainer may offer.

A backend turns a validated :class:`~rnnspec.lang.spec.ModelSpec` into a native model and moves
canonical weights (see :mod:`rnnspec.core.weights`) in and out of it. All gate reordering and
transposing of a framework lives in its backend, in one place.

The core never imports a framework: it reaches a backend through :mod:`rnnspec.core.registry`, and
finds the backend of a built model through the attribute ``_rnnspec_backend`` (the backend's
name) that every backend sets on the models it builds, next to ``_rnnspec_spec`` (the spec).

**Capabilities.** Beyond :class:`Backend`, what a backend can do is declared, never probed: each optional
capability is a ``runtime_checkable`` protocol below, named in :data:`BACKEND_CAPABILITIES` (a trainer's in
:data:`TRAINER_CAPABILITIES`). A backend declares one by implementing it (the built-in backends list the
protocols as base classes), and the core asks ``isinstance(impl, Threads)`` or ``supports(impl, "threads")``.
The registry's table of built-ins repeats each built-in's set so that a command can choose a backend
without importing its framework (a test keeps the two equal)::

    >>> from rnnspec.core.backend import capabilities_of
    >>> from rnnspec.core.registry import get_backend
    >>> sorted(capabilities_of(get_backend("numpy")))
    ['variants']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rnnspec.lang.spec import ModelSpec

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "BACKEND_CAPABILITIES",
    "MODEL_BACKEND_ATTR",
    "MODEL_SPEC_ATTR",
    "TRAINER_CAPABILITIES",
    "Backend",
    "CheckpointingTrainer",
    "DataParallel",
    "DeviceCheck",
    "LiveDriver",
    "LiveModels",
    "MatmulTiming",
    "OccurrenceSquares",
    "QuietTraining",
    "ReferenceVariants",
    "SeededTrainer",
    "StateDictReader",
    "Threads",
    "TrainableBackend",
    "Trainer",
    "capabilities_of",
    "class_modules",
    "missing_members",
    "supports",
]

MODEL_BACKEND_ATTR = "_rnnspec_backend"
MODEL_SPEC_ATTR = "_rnnspec_spec"


@runtime_checkable
class Backend(Protocol):
    """What every backend provides: build a spec, move canonical weights, predict, save and load artifacts."""

    name: str

    def build(self, spec: ModelSpec) -> Any:
        """A native model for ``spec`` (weights not yet meaningful; the core sets them next).

        The model carries ``_rnnspec_backend`` and ``_rnnspec_spec``.
        """

    def set_weights(self, model: Any, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights (already checked against the spec by the core)."""

    def get_weights(self, model: Any) -> dict[str, np.ndarray]:
        """The model's weights as canonical float32 arrays."""

    def count_params(self, model: Any) -> dict[str, int]:
        """The framework's own parameter count per layer name (``count_params()`` / ``numel()``)."""

    def predict(self, model: Any, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Inference outputs (dropout off) for int token ids ``(batch, time)`` or features ``(batch, time, f)``;
        ``batch_size`` runs ``x`` in batches of that many samples (None: one batch)."""

    def summary(self, model: Any) -> str:
        """The built model's own summary as text."""

    def save_artifact(self, model: Any, directory: Path) -> list[Path]:
        """Write the native artifact(s) into ``directory`` atomically; return the paths written."""

    def load_artifact(self, path: Path) -> Any:
        """Load an artifact written by :meth:`save_artifact` (no unpickling of code)."""

    def notes(self, model: Any) -> list[str]:
        """Remarks about how the model runs (e.g. which layers fall back to a step loop)."""


# --- a trainer and what it may offer ----------------------------------------------------------------------


@runtime_checkable
class Trainer(Protocol):
    """What a :class:`TrainableBackend`'s ``trainer(model, training)`` returns."""

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
        """Train on ``x, y`` in the given order, one optimizer step per batch (``progress(done, total)`` after each).

        Returns ``{"batch_loss": [...], "loss": float, "accuracy": float (if tracked)}``. ``on_steps(carry)``
        is called after every ``every``-th batch of the epoch but the last, with the epoch's state so far;
        given that ``carry`` back and the rest of the epoch's batches, the trainer finishes the epoch.
        """

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        """Loss (and accuracy) over ``x, y`` in inference mode, as Keras's ``evaluate``."""


@runtime_checkable
class SeededTrainer(Protocol):
    """Capability ``seeded``: the trainer draws its dropout masks from a generator ``fit``'s seed sets, so a run
    repeats from its seed."""

    def set_seed(self, seed: int) -> None:
        """Seed the trainer's random streams (dropout masks)."""


@runtime_checkable
class CheckpointingTrainer(Protocol):
    """Capability ``checkpoints``: the trainer's state (optimizer step and slots, random generators) can be
    saved with a checkpoint and put back to resume exactly."""

    def state(self) -> dict[str, np.ndarray]:
        """The trainer's state as named arrays (what a checkpoint stores beside the weights)."""

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Put back a state returned by :meth:`state` (the model's weights are set by the core)."""


TRAINER_CAPABILITIES: dict[str, type] = {"seeded": SeededTrainer, "checkpoints": CheckpointingTrainer}
"""Every optional capability of a trainer, by name."""


# --- what a backend may offer beyond Backend ----------------------------------------------------------------


@runtime_checkable
class TrainableBackend(Backend, Protocol):
    """Capability ``trains``: the backend can train and evaluate a loss (``rnnspec train``/``evaluate``,
    ``fit``, ``check``'s training parity, ``bench``'s training figures)."""

    def trainer(self, model: Any, training: Any, device: str | None = None) -> Trainer:
        """A :class:`Trainer` for ``model`` with the spec's ``training`` section.

        Its ``train_epoch`` returns ``loss``, ``batch_loss`` and one value per metric of
        ``training.metrics`` (Keras's names), and ``evaluate`` the loss and the metrics.
        """


@runtime_checkable
class Threads(Protocol):
    """Capability ``threads``: the framework's CPU thread count can be set (``--threads``, ``RNNSPEC_THREADS``);
    a backend without it keeps its framework's default."""

    def set_threads(self, threads: int) -> None:
        """Intra-op threads for this process (set before the framework starts its pools, where it must be)."""


@runtime_checkable
class MatmulTiming(Protocol):
    """Capability ``matmul_timing``: the backend times its framework's matrix product, for ``bench``'s GEMM
    floor (without one, bench measures NumPy's)."""

    def matmul_seconds(self, shapes: list[tuple[int, int, int, int]], repeats: int = 3) -> float:
        """The best of ``repeats`` timings of the products ``(count, m, k, n)`` (``count`` of each), in seconds."""


@runtime_checkable
class DeviceCheck(Protocol):
    """Capability ``device_check``: the backend refuses, before any work, a device it cannot use (``--device
    cuda`` without CUDA); a backend without it takes any ``--device``."""

    def check_device(self, device: str | None) -> None:
        """Raise an :class:`~rnnspec.lang.errors.RnnspecError` naming the device and the fix if unusable."""


@runtime_checkable
class DataParallel(Protocol):
    """Capability ``data_parallel``: training and evaluation in several processes (``--nproc N``, torchrun),
    each on its shard of every batch, equal to one process."""

    def launch(self, nproc: int, args: list[str]) -> int:
        """``rnnspec ARGS`` in ``nproc`` data-parallel processes; the exit code."""

    def init_distributed(self, device: str | None) -> tuple[int, int]:
        """Join the process group a launcher started this process in: ``(rank, world size)``."""

    def finish_distributed(self) -> None:
        """Leave the process group once the work is done (every rank calls it)."""


@runtime_checkable
class QuietTraining(Protocol):
    """Capability ``quiet_training``: the framework logs to file descriptor 2 while it trains (TensorFlow), so
    the CLI holds stderr back during training when ``quiet_training`` is true."""

    quiet_training: bool


@runtime_checkable
class LiveDriver(Protocol):
    """What :meth:`LiveModels.live` returns: a user's own model of the framework, driven with named tensors."""

    def tensors(self) -> list[tuple[str, Any]]:
        """The model's own tensors, ``(name, array)`` in the framework's order and layout."""

    def assign(self, items: list[tuple[str, Any]]) -> None:
        """Write tensors given as :meth:`tensors` returns them."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Inference outputs, float64."""

    def gradients(self, x: np.ndarray, y: np.ndarray, loss: Any, weight: np.ndarray | None) -> tuple[float, Any]:
        """The loss and each tensor's gradient, ``(value, [(name, gradient)])``."""

    def train_steps(self, *args: Any, **kwargs: Any) -> None:
        """``(x, y, loss, weight, optimizer, steps)``: updates by the user's own optimizer."""


@runtime_checkable
class OccurrenceSquares(Protocol):
    """A :class:`LiveDriver` whose framework squares an embedding's gradient per token occurrence (Keras's sparse
    update): after :meth:`LiveDriver.gradients`, the per-occurrence sums of squares, ``[(name, array)]``."""

    occurrence_squares: list[tuple[str, Any]]


@runtime_checkable
class LiveModels(Protocol):
    """Capability ``live_models``: the backend drives a user's own model of its framework (a hand-written Keras
    model or ``torch.nn.Module``) for the conformance tests of :mod:`rnnspec.testing`."""

    convention: str
    """The weight convention those models are read in (``keras`` or ``torch``: which importer maps their tensors
    to canonical weights, and whether the model's own layers give its spec)."""

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` is a model of this backend's framework (decided without importing the framework where
        ``obj`` cannot be one: see :func:`class_modules`)."""

    def live(self, obj: Any) -> LiveDriver | None:
        """A :class:`LiveDriver` of ``obj`` (None for an object this backend cannot drive)."""


@runtime_checkable
class StateDictReader(Protocol):
    """Capability ``state_dicts``: the backend reads a PyTorch state dict file (``.pt``, ``.pth``, ``.bin``,
    ``.safetensors``) as named arrays, for ``rnnspec import`` and ``check --model``."""

    def read_state_dict(self, path: Path) -> list[tuple[str, np.ndarray]]:
        """The file's tensors in their stored order, as NumPy arrays (no unpickling of code)."""


@runtime_checkable
class ReferenceVariants(Protocol):
    """Capability ``variants``: the backend computes the forward pass of a spec with given weights directly, and
    the semantic variants the porting-mistake catalogue needs (:mod:`rnnspec.testing.mistakes`)."""

    def forward_with(
        self, spec: ModelSpec, weights: dict[str, np.ndarray], x: np.ndarray, variant: str | None = None
    ) -> np.ndarray:
        """Outputs of ``spec`` with ``weights`` (float64), computed as ``variant`` (None: the spec's meaning)."""


BACKEND_CAPABILITIES: dict[str, type] = {
    "trains": TrainableBackend,
    "threads": Threads,
    "matmul_timing": MatmulTiming,
    "device_check": DeviceCheck,
    "data_parallel": DataParallel,
    "quiet_training": QuietTraining,
    "live_models": LiveModels,
    "state_dicts": StateDictReader,
    "variants": ReferenceVariants,
}
"""Every optional capability of a backend, by the name the registry's table and :func:`supports` use."""


def _protocol(capability: str) -> type:
    protocol = BACKEND_CAPABILITIES.get(capability) or TRAINER_CAPABILITIES.get(capability)
    if protocol is None:
        known = ", ".join([*BACKEND_CAPABILITIES, *TRAINER_CAPABILITIES])
        raise ValueError(f"unknown capability {capability!r}; the declared ones are {known}")
    return protocol


def supports(obj: Any, capability: str) -> bool:
    """Whether the backend (or trainer) ``obj`` offers ``capability`` (a name of :data:`BACKEND_CAPABILITIES` or
    :data:`TRAINER_CAPABILITIES`); a data capability such as ``quiet_training`` also needs its value true."""
    protocol = _protocol(capability)
    if not isinstance(obj, protocol):
        return False
    return bool(obj.quiet_training) if protocol is QuietTraining else True


def capabilities_of(obj: Any) -> frozenset[str]:
    """The names of every capability the backend ``obj`` offers."""
    return frozenset(name for name in BACKEND_CAPABILITIES if supports(obj, name))


def class_modules(obj: Any) -> set[str]:
    """The top-level modules that ``obj``'s classes come from (``{"torch", "builtins"}`` for a ``torch.nn.Module``):
    what a :meth:`LiveModels.owns` reads to recognise a model of its framework without importing it."""
    return {cls.__module__.split(".")[0] for cls in type(obj).__mro__}


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``obj`` lacks (for messages that say why an object is not a backend)."""
    members: list[str] = []
    for cls in protocol.__mro__:
        if cls in (Protocol, object) or cls.__name__ == "Generic":
            continue
        members += [*getattr(cls, "__annotations__", {}), *(k for k, v in vars(cls).items() if callable(v))]
    return sorted({m for m in members if not m.startswith("_") and not hasattr(obj, m)})
