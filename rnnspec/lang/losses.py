"""Every loss and metric of the spec language, each declared once with its one formula.

A loss declares its name (Keras's), Keras's class, whether it takes ``from_logits``, its options
(Huber's ``delta``), the head activation whose pre-activation a trainer may use as logits (Keras's
own shortcut: a sigmoid head under binary cross-entropy, a softmax head under the categorical
ones), Keras's long names (for the loader's suggestions) and its formula. The formula is written
once over an *ops namespace*, so the torch trainer, :mod:`rnnspec.testing`'s torch and TensorFlow
drivers and any other framework compute the same expression with their own operations:

========================  ==============================================================
op                        meaning (on the last axis where it says "last")
========================  ==============================================================
``clip(x, lo, hi)``       clamp
``log``, ``abs``          element-wise
``where(c, a, b)``        select
``log_softmax(x)``        over the last axis
``bce_logits(x, y)``      Keras's stable binary cross-entropy on logits, element-wise
``take_last(p, y)``       ``p[..., y]`` for integer labels ``y`` (one per row)
``sum_last(x)``           sum over the last axis, the axis kept (size 1)
``mean_last(x)``          mean over the last axis, the axis dropped
========================  ==============================================================

A new loss is one :class:`LossKind` in :data:`LOSSES` (the spec's ``LossName`` and the loader's
aliases derive from it) and one entry per trainer (``tests/core/test_kind_completeness.py`` checks it).

>>> LOSSES["huber"].keras_class
'Huber'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EPSILON",
    "LOSSES",
    "METRICS",
    "LossKind",
    "MetricKind",
    "canonical_loss",
    "canonical_metric",
    "elementwise_loss",
]

EPSILON = 1e-7
"""Keras's ``backend.epsilon()``: probabilities are clipped to [ε, 1 − ε] before a log."""

Formula = Callable[[Any, Any, Any, bool, float], Any]
"""``formula(out, y, ops, from_logits, delta)``: the per-sample (per-step) loss, the last axis reduced as Keras does."""


def _binary_crossentropy(out: Any, y: Any, ops: Any, from_logits: bool, delta: float) -> Any:
    if from_logits:
        return ops.mean_last(ops.bce_logits(out, y))
    p = ops.clip(out, EPSILON, 1 - EPSILON)
    return ops.mean_last(-(y * ops.log(p) + (1 - y) * ops.log(1 - p)))


def _sparse_categorical_crossentropy(out: Any, y: Any, ops: Any, from_logits: bool, delta: float) -> Any:
    if from_logits:
        return -ops.take_last(ops.log_softmax(out), y)
    return -ops.log(ops.take_last(ops.clip(out, EPSILON, 1 - EPSILON), y))


def _categorical_crossentropy(out: Any, y: Any, ops: Any, from_logits: bool, delta: float) -> Any:
    if from_logits:
        return -ops.sum_last(y * ops.log_softmax(out))[..., 0]
    p = ops.clip(out / ops.sum_last(out), EPSILON, 1 - EPSILON)
    return -ops.sum_last(y * ops.log(p))[..., 0]


def _mse(out: Any, y: Any, ops: Any, from_logits: bool, delta: float) -> Any:
    error = out - y
    return ops.mean_last(error * error)


def _mae(out: Any, y: Any, ops: Any, from_logits: bool, delta: float) -> Any:
    return ops.mean_last(ops.abs(out - y))


def _huber(out: Any, y: Any, ops: Any, from_logits: bool, delta: float) -> Any:
    error = out - y
    size = ops.abs(error)
    return ops.mean_last(ops.where(size <= delta, 0.5 * error * error, delta * size - 0.5 * delta * delta))


@dataclass(frozen=True)
class LossKind:
    """One loss: its facts and its formula."""

    name: str
    keras_class: str
    """Keras's class in ``keras.losses``."""
    formula: Formula
    from_logits: bool = False
    """Whether the loss takes ``from_logits`` (the cross-entropies)."""
    delta: bool = False
    """Whether the loss takes Huber's ``delta``."""
    logits_of: str | None = None
    """The head activation whose pre-activation the loss reads as logits (sigmoid, softmax), as Keras does."""
    integer_labels: bool = False
    """Labels are class ids (one integer per row), not values shaped as the outputs."""
    keras_names: tuple[str, ...] = ()
    """Keras's other spellings of the loss (``mean_squared_error``...), suggested by the loader."""

    @property
    def regression(self) -> bool:
        """Compares outputs with numbers (no class labels, no ``from_logits``)."""
        return not self.from_logits

    def elementwise(self, out: Any, y: Any, ops: Any, *, from_logits: bool = False, delta: float = 1.0) -> Any:
        """The per-sample (per-step) loss of ``out`` (probabilities, or logits with ``from_logits``) against ``y``."""
        return self.formula(out, y, ops, from_logits, delta)


_MSE_NAMES = ("mean_squared_error", "meansquarederror")
_MAE_NAMES = ("mean_absolute_error", "meanabsoluteerror")

LOSSES: dict[str, LossKind] = {
    kind.name: kind
    for kind in (
        LossKind(
            "binary_crossentropy",
            "BinaryCrossentropy",
            _binary_crossentropy,
            from_logits=True,
            logits_of="sigmoid",
            keras_names=("binarycrossentropy", "bce"),
        ),
        LossKind(
            "sparse_categorical_crossentropy",
            "SparseCategoricalCrossentropy",
            _sparse_categorical_crossentropy,
            from_logits=True,
            logits_of="softmax",
            integer_labels=True,
            keras_names=("sparsecategoricalcrossentropy",),
        ),
        LossKind(
            "categorical_crossentropy",
            "CategoricalCrossentropy",
            _categorical_crossentropy,
            from_logits=True,
            logits_of="softmax",
            keras_names=("categoricalcrossentropy",),
        ),
        LossKind("mse", "MeanSquaredError", _mse, keras_names=_MSE_NAMES),
        LossKind("mae", "MeanAbsoluteError", _mae, keras_names=_MAE_NAMES),
        LossKind("huber", "Huber", _huber, delta=True, keras_names=("huber_loss",)),
    )
}
"""Every loss a spec may name, in the order the spec language lists them."""


def elementwise_loss(loss: dict[str, Any], out: Any, y: Any, ops: Any) -> Any:
    """The per-sample (per-step) loss of the spec's ``loss`` (``{"name", "from_logits", "delta"}``)."""
    kind = LOSSES[loss["name"]]
    return kind.elementwise(out, y, ops, from_logits=bool(loss.get("from_logits")), delta=float(loss.get("delta", 1.0)))


@dataclass(frozen=True)
class MetricKind:
    """One metric: Keras's name for it and how each batch adds to it."""

    name: str
    keras_class: str | None
    """Keras's class in ``keras.metrics``; None: Keras's string (``accuracy``, which Keras resolves from the loss)."""
    per_step: Callable[[Any, Any], Any] | None = None
    """``fn(error, ops)``: the per-step value Keras's ``Mean`` averages (masked steps left out); None where the
    metric is not a mean of per-step values (accuracy: chosen from the shapes; rmse: per sample)."""
    root: bool = False
    """The epoch's value is the square root of the mean (RootMeanSquaredError)."""
    keras_names: tuple[str, ...] = ()
    """Keras's other spellings of the metric (``acc``, ``mean_squared_error``...), accepted as this one."""


METRICS: dict[str, MetricKind] = {
    kind.name: kind
    for kind in (
        MetricKind("accuracy", None, keras_names=("acc",)),
        MetricKind(
            "mae", "MeanAbsoluteError", lambda error, ops: ops.mean_last(ops.abs(error)), keras_names=_MAE_NAMES
        ),
        MetricKind("mse", "MeanSquaredError", lambda error, ops: ops.mean_last(error * error), keras_names=_MSE_NAMES),
        MetricKind("rmse", "RootMeanSquaredError", root=True, keras_names=("root_mean_squared_error",)),
    )
}
"""Every metric a spec may name, in the order the spec language lists them."""


def _spellings(name: str, keras_class: str | None, keras_names: tuple[str, ...]) -> dict[str, str]:
    return {alias.lower(): name for alias in (name, *keras_names, *([keras_class] if keras_class else []))}


_LOSS_SPELLINGS = {
    k: v for kind in LOSSES.values() for k, v in _spellings(kind.name, kind.keras_class, kind.keras_names).items()
}
_METRIC_SPELLINGS = {
    k: v for kind in METRICS.values() for k, v in _spellings(kind.name, kind.keras_class, kind.keras_names).items()
}


def canonical_loss(value: Any) -> Any:
    """rnnspec's name of a loss Keras knows by ``value`` (``mean_squared_error``, ``MeanSquaredError``, ``MSE``:
    ``mse``), as ``model.compile`` accepts them; anything else unchanged (the spec's validation explains it)."""
    return _LOSS_SPELLINGS.get(value.lower(), value) if isinstance(value, str) else value


def canonical_metric(value: Any) -> Any:
    """rnnspec's name of a metric Keras knows by ``value`` (``acc``: ``accuracy``; ``mean_absolute_error``,
    ``MeanAbsoluteError``, ``MAE``: ``mae``); anything else unchanged."""
    return _METRIC_SPELLINGS.get(value.lower(), value) if isinstance(value, str) else value
