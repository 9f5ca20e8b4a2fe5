"""A Keras file's compile settings (optimizer with its settings, loss, metrics) → the spec's ``training`` section.

What the spec cannot express is never dropped silently: each left-out setting is named in a *note*
(a line the import prints). A loss the spec does not have leaves the model without a ``training``
section; an optimizer it does not have leaves the section's optimizer to the spec's default, said so.

The spec's optimizers and their settings are read from the spec language itself (the classes of
:data:`rnnspec.lang.spec.OptimizerSpec`, named as Keras names them), the losses and metrics from
:mod:`rnnspec.lang.losses`, so a setting the language gains is imported without a change here.

>>> notes: list[str] = []
>>> training_section({"optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 0.009999999776482582}},
...                   "loss": "bce", "metrics": ["acc"]}, notes)
{'optimizer': {'name': 'rmsprop', 'learning_rate': 0.01}, 'loss': {'name': 'binary_crossentropy'}, \
'metrics': ['accuracy']}
"""

from __future__ import annotations

import typing
from typing import Any

import numpy as np

from rnnspec.lang.losses import LOSSES, METRICS
from rnnspec.lang.spec import OptimizerSpec

__all__ = ["training_section"]


def _optimizer_classes() -> dict[str, type]:
    """Keras's optimizer class name → the spec's optimizer class (``SGD``, ``Adam``, ``RMSprop``)."""
    union = typing.get_args(OptimizerSpec)[0]
    return {cls.__name__: cls for cls in typing.get_args(union)}


_INERT = {"name", "jit_compile", "is_legacy_optimizer", "ema_momentum", "ema_overwrite_frequency"}
"""Optimizer settings with no effect on the updates (or none unless another setting is on: ``use_ema``)."""
_KERAS2_NAMES = {"lr": "learning_rate"}
"""Keras 2's names of settings the spec names as Keras 3 does."""
_LOSS_KEYS = {"name", "from_logits", "delta", "reduction", "dtype", "fn"}
"""Loss settings read or without effect on a single-output model (``reduction`` checked on its own)."""
_MEAN_REDUCTIONS = (None, "auto", "sum_over_batch_size")
_ACCURACY = ("accuracy", "acc")
"""Keras's strings for the accuracy it chooses from the loss (the spec's ``accuracy``)."""


def training_section(config: dict[str, Any] | None, notes: list[str]) -> dict[str, Any] | None:
    """The ``training`` section (a dict) of a file's compile settings, or None; what it leaves out goes to ``notes``."""
    if not config:
        return None
    loss = _loss(config.get("loss"), notes)
    optimizer = _optimizer(config.get("optimizer"), notes)
    metrics = _metrics(config.get("metrics"), notes)
    for key in ("loss_weights", "weighted_metrics"):
        if config.get(key):
            notes.append(f"compile setting {key}={_shown(config[key])} left out: the spec has no {key}")
    if loss is None:
        if config.get("loss") is not None:
            kept = f" (the file's optimizer: {optimizer})" if optimizer is not None else ""
            notes.append(f"no `training` section was written: the spec needs a loss it has; add one by hand{kept}")
        return None
    section: dict[str, Any] = {}
    if optimizer is not None:
        section["optimizer"] = optimizer
    section["loss"] = loss
    if metrics:
        section["metrics"] = metrics
    return section


def _optimizer(value: Any, notes: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    classes = _optimizer_classes()
    class_name = value.get("class_name") if isinstance(value, dict) else value
    module = value.get("module") if isinstance(value, dict) else None
    known = ", ".join(cls.model_fields["name"].annotation.__args__[0] for cls in classes.values())
    cls = classes.get(class_name) if isinstance(class_name, str) and _keras_module(module) else None
    if cls is None:
        notes.append(
            f"optimizer {_shown(class_name)} left out: the spec has {known}; `training.optimizer` is the spec's "
            "default (rmsprop) until you set it"
        )
        return None
    config = value.get("config") if isinstance(value, dict) else None
    config = config if isinstance(config, dict) else {}
    fields = cls.model_fields
    entry: dict[str, Any] = {"name": fields["name"].annotation.__args__[0]}
    left: list[str] = []
    for raw_key, setting in config.items():
        key = _KERAS2_NAMES.get(raw_key, raw_key)
        if key == "name" or setting is None:
            continue
        if key == "learning_rate" and isinstance(setting, dict):
            entry["learning_rate"], note = _schedule(setting)
            left.append(note)
            continue
        if key in fields:
            entry[key] = _float32(setting)
        elif key not in _INERT and setting not in (False, 0, 0.0):
            left.append(f"{raw_key}={_shown(setting)}")
    if entry.get("learning_rate") is None:
        entry.pop("learning_rate", None)
    if left:
        notes.append(f"optimizer {class_name} settings left out (the spec has no such setting): {', '.join(left)}")
    return entry


def _schedule(value: dict[str, Any]) -> tuple[float | None, str]:
    config = value.get("config") if isinstance(value.get("config"), dict) else {}
    start = config.get("initial_learning_rate")
    kind = _shown(value.get("class_name"))
    if isinstance(start, (int, float)) and not isinstance(start, bool):
        return _float32(start), f"learning-rate schedule {kind} (its initial rate {start} kept as a constant rate)"
    return None, f"learning-rate schedule {kind} (the optimizer's default rate kept)"


def _loss(value: Any, notes: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    config: dict[str, Any] = {}
    name = value
    if isinstance(value, dict):
        if not _keras_module(value.get("module")):
            notes.append(f"loss {_shown(value.get('class_name'))} left out: a custom object, not Keras's own")
            return None
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        name = value.get("class_name")
        if name == "function":  # a Keras loss function given by itself
            name, config = value.get("config"), {}
        elif name in ("LossFunctionWrapper", "MeanMetricWrapper"):  # Keras 2 wrappers name their function
            name = config.get("fn", config.get("name"))
    kind = _loss_kind(name)
    if kind is None:
        known = ", ".join(LOSSES)
        notes.append(f"loss {_shown(name)} left out: the spec has {known}")
        return None
    entry: dict[str, Any] = {"name": kind.name}
    if config.get("from_logits") and kind.from_logits:
        entry["from_logits"] = True
    if kind.delta:
        if "delta" in config:
            entry["delta"] = _float32(config["delta"])
        elif isinstance(value, dict):
            notes.append("loss Huber: Keras does not store its delta in the file; the import takes 1.0, as Keras does "
                         "when it loads the file")  # fmt: skip
    left = [f"{k}={_shown(v)}" for k, v in config.items() if k not in _LOSS_KEYS and v not in (None, False, 0, 0.0, -1)]
    if config.get("reduction") not in _MEAN_REDUCTIONS:
        left.append(f"reduction={_shown(config['reduction'])}")
    if left:
        notes.append(f"loss {kind.name} settings left out (the spec's loss has no such setting): {', '.join(left)}")
    return entry


def _loss_kind(name: Any) -> Any:
    if not isinstance(name, str):
        return None
    wanted = name.lower()
    for kind in LOSSES.values():
        if wanted in (kind.name, kind.keras_class.lower(), *kind.keras_names):
            return kind
    return None


def _metrics(value: Any, notes: list[str]) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if len(items) == 1 and isinstance(items[0], list):  # one output's list
        items = items[0]
    out: list[str] = []
    left: list[str] = []
    for item in items:
        name = _metric_name(item)
        if name is None:
            left.append(_shown(item.get("class_name") if isinstance(item, dict) else item))
        elif name not in out:
            out.append(name)
    if left:
        notes.append(f"metrics left out: {', '.join(left)} (the spec has {', '.join(METRICS)})")
    return out


def _metric_name(item: Any) -> str | None:
    if isinstance(item, dict):
        if not _keras_module(item.get("module")):
            return None
        config = item.get("config") if isinstance(item.get("config"), dict) else {}
        if item.get("class_name") == "MeanMetricWrapper":  # Keras 2: a metric given by its name
            item = config.get("name")
        else:
            by_class = {kind.keras_class: kind.name for kind in METRICS.values() if kind.keras_class}
            return by_class.get(str(item.get("class_name")))
    if not isinstance(item, str):
        return None
    wanted = item.lower()
    if wanted in _ACCURACY:
        return "accuracy"
    for kind in METRICS.values():
        loss = LOSSES.get(kind.name)
        if wanted == kind.name or (kind.keras_class and wanted == kind.keras_class.lower()):
            return kind.name
        if loss is not None and wanted in loss.keras_names:
            return kind.name
    return None


def _keras_module(module: Any) -> bool:
    return module is None or (isinstance(module, str) and module.split(".")[0] == "keras")


def _float32(value: Any) -> Any:
    """A number Keras stored from float32 (0.009999999776482582) as the float32 it is, written shortest (0.01)."""
    if isinstance(value, float) and float(np.float32(value)) == value:
        return float(str(np.float32(value)))
    return value


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
