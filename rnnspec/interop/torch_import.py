"""A PyTorch ``state_dict`` + a spec → canonical weights (torch convention: both biases kept).

A state dict holds no activations and no head, so the spec says the architecture; the tensors
are matched to the spec's layers by module order and shape:

- ``nn.Embedding``: ``X.weight`` ``(vocab_size, output_dim)``;
- ``nn.RNN``/``nn.LSTM``/``nn.GRU``: ``X.weight_ih_l{k}[_reverse]``, ``weight_hh``, ``bias_ih``, ``bias_hh``;
  one spec layer per ``num_layers`` index, ``_reverse`` for bidirectional layers;
- ``nn.Linear``: ``X.weight`` ``(out, in)`` and ``X.bias``;
- ``nn.LayerNorm``: ``X.weight`` ``(features,)`` (``gamma``) and ``X.bias`` (``beta``); none without
  ``elementwise_affine``, no bias with ``bias=False``;
- ``nn.BatchNorm1d``: ``X.weight`` (``gamma``), ``X.bias`` (``beta``), ``X.running_mean``, ``X.running_var`` (the
  moving statistics); ``num_batches_tracked`` ignored.

PyTorch's layouts become the canonical (Keras) one: kernels transposed, GRU gate rows r, z, n
reordered to z, r, h. Anything unmatched or left over is listed, all at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnspec.core.budget import cap_lines
from rnnspec.core.kinds import KindRegistry
from rnnspec.core.weights import permute_gates
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.layers import (
    BatchNormSpec,
    Conv1DSpec,
    DenseSpec,
    EmbeddingSpec,
    GRUSpec,
    LayerNormSpec,
    RecurrentLayer,
)
from rnnspec.lang.spec import ModelSpec

__all__ = ["READERS", "StateDictError", "state_dict_to_weights", "torch_convention"]

_RNN_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


_BATCH_NORM_KEYS = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
"""An ``nn.BatchNorm1d``'s state (``num_batches_tracked`` is PyTorch's counter, not a weight: ignored)."""


class StateDictError(RnnspecError):
    """A state dict that does not fit the spec; every mismatch is listed."""


@dataclass
class _Unit:
    """One matchable block of a state dict: an embedding/linear module, or one layer of an RNN module."""

    kind: str
    """``table`` (a lone 2-D weight: Embedding, or Linear without bias), ``linear``, ``rnn``, ``norm`` (a 1-D
    weight with or without a bias: LayerNorm) or ``conv`` (a 3-D weight with or without a bias: Conv1d)."""
    label: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    used: bool = False


def _units(items: list[tuple[str, np.ndarray]]) -> list[_Unit]:
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, value in items:
        prefix, _, leaf = key.rpartition(".")
        modules.setdefault(prefix, {})[leaf] = np.asarray(value)
    units: list[_Unit] = []
    for prefix, params in modules.items():
        rnn = {leaf: _RNN_KEY.match(leaf) for leaf in params}
        if any(rnn.values()):
            layers: dict[int, _Unit] = {}
            for leaf, m in rnn.items():
                if m is None:
                    units.append(_Unit("other", f"{prefix}.{leaf}", {leaf: params[leaf]}))
                    continue
                k = int(m.group(2))
                unit = layers.setdefault(k, _Unit("rnn", f"{prefix} (layer {k})"))
                unit.tensors[f"{m.group(1)}{m.group(3) or ''}"] = params[leaf]
            units += [layers[k] for k in sorted(layers)]
        elif {"running_mean", "running_var"} <= set(params) <= _BATCH_NORM_KEYS:
            units.append(_Unit("batch_norm", prefix, {k: v for k, v in params.items() if k != "num_batches_tracked"}))
        elif set(params) == {"weight"} and params["weight"].ndim == 2:
            units.append(_Unit("table", prefix, params))
        elif set(params) == {"weight", "bias"} and params["weight"].ndim == 2:
            units.append(_Unit("linear", prefix, params))
        elif set(params) in ({"weight"}, {"weight", "bias"}) and params["weight"].ndim == 1:
            units.append(_Unit("norm", prefix, params))
        elif set(params) in ({"weight"}, {"weight", "bias"}) and params["weight"].ndim == 3:
            units.append(_Unit("conv", prefix, params))
        else:
            units += [_Unit("other", f"{prefix}.{leaf}" if prefix else leaf, {leaf: v}) for leaf, v in params.items()]
    return units


def torch_convention(spec: ModelSpec) -> ModelSpec:
    """``spec`` in the torch convention (two bias vectors, as PyTorch's modules)."""
    if spec.convention == "torch":
        return spec
    from rnnspec.lang.loader import spec_from_dict

    return spec_from_dict({**spec.to_dict(), "convention": "torch"})


def state_dict_to_weights(
    items: list[tuple[str, np.ndarray]], spec: ModelSpec, source: str
) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """Canonical weights of ``spec`` (returned in the torch convention) from a state dict's ``(key, array)`` pairs."""
    from rnnspec.lang.analysis import analyze

    spec = torch_convention(spec)
    units = _units(items)
    problems: list[str] = []
    weights: dict[str, np.ndarray] = {}
    rows = analyze(spec, "torch").layers
    READERS.check((row.name, row.layer) for row in rows)
    for row in rows:
        problems += READERS.get(row.kind, row.name)(units, row.layer, row.name, row.input_dim, weights)
    problems += [f"left over: {u.label} ({', '.join(f'{k} {tuple(v.shape)}' for k, v in u.tensors.items())})"
                 for u in units if not u.used]  # fmt: skip
    if problems:
        raise StateDictError(
            f"{source}: the state dict does not fit spec {spec.name!r}:\n  "
            + "\n  ".join(cap_lines(problems, indent=""))
            + "\n  fix: check the spec against the module (sizes, num_layers, bidirectional, bias), "
            "or save the state_dict of the module the spec describes"
        )
    return spec, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}


Reader = Callable[[list[_Unit], Any, str, int, dict[str, np.ndarray]], list[str]]
READERS = KindRegistry("torch import", "state-dict reader", owner="the state-dict importer")
"""Layer kind → ``fn(units, layer, name, inputs, out) -> problems``: takes the layer's tensors from the state
dict's units (:func:`_take`), writes its canonical weights into ``out`` and returns what did not fit."""


@READERS.register(
    "masking", "dropout", "spatial_dropout", "activation", "repeat_vector", "global_max_pool", "global_average_pool"
)
def _no_weights(units: list[_Unit], layer: Any, name: str, inputs: int, out: dict[str, np.ndarray]) -> list[str]:
    """A layer without weights takes nothing from the state dict."""
    return []


READERS.register("max_pool", "average_pool", "flatten")(_no_weights)  # pooling: F.max_pool1d / F.avg_pool1d, no tensors


@READERS.register("embedding")
def _embedding(
    units: list[_Unit], layer: EmbeddingSpec, name: str, inputs: int, out: dict[str, np.ndarray]
) -> list[str]:
    """``nn.Embedding``: ``weight`` ``(vocab_size, output_dim)`` is the table."""
    shape = (inputs, layer.output_dim)
    unit = _take(units, ("table",), lambda u: u.tensors["weight"].shape == shape)
    if unit is None:
        return [f"embedding {name!r}: no nn.Embedding weight of shape {shape}"]
    out[f"{name}/embeddings"] = unit.tensors["weight"]
    return []


@READERS.register("dense")
def _dense(units: list[_Unit], layer: DenseSpec, name: str, inputs: int, out: dict[str, np.ndarray]) -> list[str]:
    """``nn.Linear``: ``weight`` ``(out, in)`` is the kernel transposed, ``bias`` the bias."""
    shape = (layer.units, inputs)
    kinds = ("linear",) if layer.use_bias else ("table",)
    unit = _take(units, kinds, lambda u: u.tensors["weight"].shape == shape)
    if unit is None:
        bias = "with" if layer.use_bias else "without"
        return [f"dense {name!r}: no nn.Linear {bias} bias with a weight of shape {shape}"]
    out[f"{name}/kernel"] = unit.tensors["weight"].T
    if layer.use_bias:
        out[f"{name}/bias"] = unit.tensors["bias"]
    return []


def _take(units: list[_Unit], kinds: tuple[str, ...], fits: Any) -> _Unit | None:
    for unit in units:
        if not unit.used and unit.kind in kinds and fits(unit):
            unit.used = True
            return unit
    return None


@READERS.register("conv1d")
def _conv1d(units: list[_Unit], layer: Conv1DSpec, name: str, inputs: int, out: dict[str, np.ndarray]) -> list[str]:
    """``nn.Conv1d``: ``weight`` ``(filters, inputs, kernel_size)`` is the kernel's ``(2, 1, 0)`` transpose."""
    shape = (layer.filters, inputs, layer.kernel_size)
    keys = {"weight", "bias"} if layer.use_bias else {"weight"}
    unit = _take(units, ("conv",), lambda u: set(u.tensors) == keys and u.tensors["weight"].shape == shape)
    if unit is None:
        bias = "with" if layer.use_bias else "without (bias=False)"
        return [f"conv1d {name!r}: no nn.Conv1d{shape} {bias} bias"]
    out[f"{name}/kernel"] = unit.tensors["weight"].transpose(2, 1, 0)
    if layer.use_bias:
        out[f"{name}/bias"] = unit.tensors["bias"]
    return []


@READERS.register("layer_norm")
def _layer_norm(
    units: list[_Unit], layer: LayerNormSpec, name: str, features: int, out: dict[str, np.ndarray]
) -> list[str]:
    """``nn.LayerNorm(features)``: ``weight`` is gamma, ``bias`` beta (a layer_norm without both has no tensors)."""
    if not layer.scale and not layer.center:
        return []
    if not layer.scale:
        return [
            f"layer_norm {name!r}: center without scale has no nn.LayerNorm form (its bias needs its weight); "
            "set `scale: true` in the spec (PyTorch's weight is gamma)"
        ]
    keys = {"weight", "bias"} if layer.center else {"weight"}
    unit = _take(units, ("norm",), lambda u: set(u.tensors) == keys and u.tensors["weight"].shape == (features,))
    if unit is None:
        bias = "with" if layer.center else "without (bias=False)"
        return [f"layer_norm {name!r}: no nn.LayerNorm({features}) {bias} bias"]
    out[f"{name}/gamma"] = unit.tensors["weight"]
    if layer.center:
        out[f"{name}/beta"] = unit.tensors["bias"]
    return []


@READERS.register("batch_norm")
def _batch_norm(
    units: list[_Unit], layer: BatchNormSpec, name: str, features: int, out: dict[str, np.ndarray]
) -> list[str]:
    """``nn.BatchNorm1d(features)``: ``weight`` is gamma, ``bias`` beta, ``running_mean`` / ``running_var`` the moving
    statistics (``num_batches_tracked`` ignored). ``affine=False`` has neither weight nor bias."""
    keys = (
        {"running_mean", "running_var"} | ({"weight"} if layer.scale else set()) | ({"bias"} if layer.center else set())
    )
    unit = _take(units, ("batch_norm",), lambda u: set(u.tensors) == keys and u.tensors["running_mean"].shape ==
                 (features,))  # fmt: skip
    if unit is None:
        affine = (
            "" if layer.scale and layer.center else ", affine=False" if not layer.scale and not layer.center else ""
        )
        if layer.scale != layer.center:
            return [f"batch_norm {name!r}: center: {str(layer.center).lower()} with scale: "
                    f"{str(layer.scale).lower()} has no nn.BatchNorm1d form (affine keeps both weight and bias); "
                    "set both in the spec"]  # fmt: skip
        return [f"batch_norm {name!r}: no nn.BatchNorm1d({features}{affine})"]
    for leaf, key in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                      ("moving_variance", "running_var")):  # fmt: skip
        if key in unit.tensors:
            out[f"{name}/{leaf}"] = unit.tensors[key]
    return []


@READERS.register("simple_rnn", "lstm", "gru")
def _recurrent(
    units: list[_Unit], layer: RecurrentLayer, name: str, inputs: int, out: dict[str, np.ndarray]
) -> list[str]:
    g, u = layer.gates, layer.units
    suffixes = ["", "_reverse"] if layer.bidirectional else [""]

    def fits(unit: _Unit) -> bool:
        t = unit.tensors
        want = {f"weight_ih{s}": (g * u, inputs) for s in suffixes} | {f"weight_hh{s}": (g * u, u) for s in suffixes}
        if layer.use_bias:
            want |= {f"{b}{s}": (g * u,) for b in ("bias_ih", "bias_hh") for s in suffixes}
        return set(t) == set(want) and all(t[k].shape == shape for k, shape in want.items())

    unit = _take(units, ("rnn",), fits)
    if unit is None:
        proj = [un for un in units if not un.used and any(k.startswith("weight_hr") for k in un.tensors)]
        if proj:
            return [f"{proj[0].label}: an LSTM with proj_size; the spec has no projection"]
        bidir = "bidirectional " if layer.bidirectional else ""
        bias = "" if layer.use_bias else " without bias"
        return [
            f"recurrent layer {name!r}: no {bidir}nn.{layer.torch_class or layer.keras_class} layer{bias} "
            f"with {inputs} inputs and {u} units"
        ]
    if isinstance(layer, GRUSpec) and not layer.reset_after:
        return [f"recurrent layer {name!r}: nn.GRU applies the reset gate after the matmul; set `reset_after: true`"]
    for s, tag in zip(suffixes, ["forward/", "backward/"] if layer.bidirectional else [""], strict=True):
        t = unit.tensors
        out[f"{name}/{tag}kernel"] = _keras_gates(t[f"weight_ih{s}"], layer).T
        out[f"{name}/{tag}recurrent_kernel"] = _keras_gates(t[f"weight_hh{s}"], layer).T
        if not layer.use_bias:
            continue
        b_ih, b_hh = _keras_gates(t[f"bias_ih{s}"], layer), _keras_gates(t[f"bias_hh{s}"], layer)
        if isinstance(layer, GRUSpec):
            out[f"{name}/{tag}bias"] = np.stack([b_ih, b_hh])
        else:
            out[f"{name}/{tag}bias"] = b_ih
            out[f"{name}/{tag}recurrent_bias"] = b_hh
    return []


def _keras_gates(rows: np.ndarray, layer: RecurrentLayer) -> np.ndarray:
    """PyTorch's gate blocks (rows) in Keras's order, as the kind declares them (GRU r, z, n → z, r, h)."""
    return permute_gates(rows, layer, "torch", axis=0, inverse=True)
