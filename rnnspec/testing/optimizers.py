"""The optimizers of two hand-written training loops, compared: their settings in one vocabulary (Keras's names),
where each puts epsilon, and the weights after a few steps from the same start on the same batch.

Keras and PyTorch name the same knobs differently (``rho`` and ``alpha``, ``learning_rate`` and ``lr``) and
place epsilon differently: Keras's RMSprop inside the square root, PyTorch's outside; Keras's Adam adds it
to √v before the bias correction ("epsilon hat"), PyTorch's to √v̂ after it. Equal numbers therefore do
not make equal optimizers; the report says which difference is there. Optimizers are read through their
attributes (``get_config()``, ``param_groups``): no framework is imported here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe_optimizer", "setting_differences"]

_EPSILON_FORM = {
    ("keras", "adam"): "added to √v before the bias correction (Keras's epsilon hat)",
    ("keras", "rmsprop"): "inside the square root (Keras)",
    ("torch", "adam"): "added to √v̂ after the bias correction (PyTorch)",
    ("torch", "rmsprop"): "outside the square root (PyTorch)",
}
_TORCH_NAMES = {"lr": "learning_rate", "alpha": "rho", "eps": "epsilon"}
_COMPARED = ("learning_rate", "beta_1", "beta_2", "rho", "momentum", "epsilon", "centered", "nesterov", "amsgrad",
             "weight_decay", "clipnorm", "clipvalue")  # fmt: skip


def describe_optimizer(optimizer: Any) -> dict[str, Any]:
    """``{"framework", "kind", SETTINGS...}`` of a Keras or PyTorch optimizer, in Keras's names."""
    kind = type(optimizer).__name__.lower()
    if hasattr(optimizer, "param_groups"):  # torch.optim
        group = optimizer.param_groups[0]
        out: dict[str, Any] = {"framework": "torch", "kind": kind}
        for key, value in group.items():
            if key == "params" or callable(value):
                continue
            if key == "betas":
                out["beta_1"], out["beta_2"] = (float(b) for b in value)
            else:
                out[_TORCH_NAMES.get(key, key)] = value
        out.setdefault("momentum", 0.0)
        return out
    if hasattr(optimizer, "get_config"):  # keras.optimizers
        config = optimizer.get_config()
        out = {"framework": "keras", "kind": kind}
        for key in _COMPARED:
            if key in config and config[key] is not None:
                out[key] = config[key]
        out.setdefault("weight_decay", 0.0)
        if kind == "sgd":
            out.setdefault("momentum", 0.0)
        return out
    raise TypeError(f"{type(optimizer).__name__} is neither a Keras nor a torch.optim optimizer")


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return bool(a == b)
    return abs(float(a) - float(b)) <= 1e-12 + 1e-6 * abs(float(a))  # Keras keeps its settings in float32


def _show(value: Any) -> str:
    """A setting as written (float32 settings read back shortest: 0.001, not 0.0010000000474974513)."""
    if isinstance(value, float):
        return f"{value:.7g}"
    return repr(value)


def setting_differences(first: Any, second: Any) -> tuple[list[str], str | None]:
    """What differs between two optimizers (``learning_rate 0.001 vs 0.01``...), and the named mistake when the
    difference is where epsilon goes (``optimizer_epsilon``) or the kind of optimizer (``optimizer_kind``)."""
    a, b = describe_optimizer(first), describe_optimizer(second)
    if a["kind"] != b["kind"]:
        return [f"the first is {a['kind']}, the second {b['kind']}"], "optimizer_kind"
    differences = []
    for key in _COMPARED:
        if key in a and key in b and not _close(a[key], b[key]):
            differences.append(f"{key} {_show(a[key])} vs {_show(b[key])}")
        elif key in ("clipnorm", "clipvalue") and (key in a) != (key in b):
            differences.append(f"{key} {_show(a.get(key))} vs {_show(b.get(key))}")
    forms = (_EPSILON_FORM.get((a["framework"], a["kind"])), _EPSILON_FORM.get((b["framework"], b["kind"])))
    mistake = None
    if forms[0] and forms[1] and forms[0] != forms[1]:
        differences.append(f"epsilon {forms[0]} vs {forms[1]}")
        mistake = "optimizer_epsilon"
    return differences, mistake
