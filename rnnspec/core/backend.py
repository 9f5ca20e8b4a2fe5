"""The contract every backend object fulfils (the ``BACKEND`` of each module in backends/).

A backend turns a validated :class:`~rnnspec.lang.spec.ModelSpec` into a native model and moves
canonical weights (see :mod:`rnnspec.core.weights`) in and out of it. All gate reordering and
transposing of a framework lives in its backend, in one place.

The core never imports a framework: it reaches a backend through :mod:`rnnspec.core.registry`, and
finds the backend of a built model through the attribute ``_rnnspec_backend`` (the backend's
name) that every backend sets on the models it builds, next to ``_rnnspec_spec`` (the spec).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnnspec.lang.spec import ModelSpec

__all__ = ["MODEL_BACKEND_ATTR", "MODEL_SPEC_ATTR", "Backend", "TrainableBackend"]

MODEL_BACKEND_ATTR = "_rnnspec_backend"
MODEL_SPEC_ATTR = "_rnnspec_spec"


@runtime_checkable
class Backend(Protocol):
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


@runtime_checkable
class TrainableBackend(Backend, Protocol):
    """A backend that can also train: ``rnnspec train``/``fit``/``evaluate`` and ``check`` use only this method."""

    def trainer(self, model: Any, training: Any, device: str | None = None) -> Any:
        """A :class:`rnnspec.runtime.training.Trainer` for ``model`` with the spec's ``training`` section.

        Its ``train_epoch`` returns ``loss``, ``batch_loss`` and one value per metric of
        ``training.metrics`` (Keras's names), and ``evaluate`` the loss and the metrics.
        """
