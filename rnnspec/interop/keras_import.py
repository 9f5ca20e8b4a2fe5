"""A Keras model (read by :mod:`rnnspec.interop.keras_files`, or live) → a spec and canonical weights.

One converter per Keras class (:data:`CONVERTERS`), each turning a layer's config and weights into
a *piece*: a spec entry and its canonical weights. The pieces are then placed into the spec's
sections (input, embedding, recurrent, head). Everything the spec cannot express is collected
and refused at once, each with the layer's name, class and the reason.

Keras 2 files are read too: ``time_major``/``implementation`` are ignored (no effect on the
math), a missing ``reset_after`` is read from the bias shape (the older single-bias GRU), and
``CuDNNLSTM``/``CuDNNGRU`` weights are converted the way Keras 2 converted them
(``_convert_rnn_weights``). ``hard_sigmoid`` is refused in a Keras 2 file: it meant
``0.2·x + 0.5`` there, and means ``x/6 + 0.5`` in Keras 3 and rnnspec.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnspec.core.budget import cap_lines
from rnnspec.core.emit import spec_name
from rnnspec.core.kinds import DuplicateKindError, KindRegistry
from rnnspec.interop.keras_compile import training_section
from rnnspec.interop.keras_files import KerasFile, KerasLayer
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.layers import (
    ACTIVATIONS,
    KINDS,
    LAYER_ACTIVATIONS,
    LAYER_KINDS,
    RECURRENT_ACTIVATIONS,
    RECURRENT_KINDS,
    DenseSpec,
    LayerSpec,
    RecurrentLayer,
)
from rnnspec.lang.loader import spec_from_dict
from rnnspec.lang.spec import FORMAT_VERSION

__all__ = ["CONVERTERS", "KIND_CONVERTERS", "Refusal", "UnsupportedModelError", "converter", "keras_to_spec"]


@dataclass(frozen=True)
class Refusal:
    """One layer the spec cannot express."""

    name: str
    class_name: str
    reason: str


def _expressible() -> str:
    """The models the spec expresses, in Keras's class names, from the kinds and where each may appear."""

    def names(placement: str, cells: bool) -> str:
        return "/".join(
            cls.keras_class
            for cls in KINDS
            if placement in cls.placements and isinstance(cls, type) and issubclass(cls, RecurrentLayer) == cells
        )

    inputs = " → ".join(f"[{cls.keras_class}]" for cls in KINDS if "input" in cls.placements)
    dense = DenseSpec.keras_class
    others = [cls.keras_class for cls in KINDS if "head" in cls.placements and cls is not DenseSpec]
    head = "/".join([dense, f"TimeDistributed({dense})", *others])
    return (
        f"input → {inputs} → {names('recurrent', True)}/Bidirectional layers with {names('recurrent', False)} → "
        f"{head} head"
    )


_EXPRESSIBLE = _expressible()


class UnsupportedModelError(RnnspecError):
    """The model has layers or options the spec cannot express; every one is listed."""

    def __init__(self, source: str, refusals: list[Refusal], fix: str | None = None):
        self.refusals = refusals
        lines = [f"{source}: the model cannot be imported; the spec cannot express:"]
        lines += cap_lines([f"  - layer {r.name!r} ({r.class_name}): {r.reason}" for r in refusals])
        lines.append(
            f"  fix: {fix or 'remove or replace these layers in the original model'} (rnnspec expresses "
            f"{_EXPRESSIBLE}), then save it again. Nothing was written."
        )
        super().__init__("\n".join(lines))


class _Unsupported(Exception):
    def __init__(self, reason: str):
        self.reason = reason


@dataclass
class Piece:
    """One layer converted: its section, its spec entry, its canonical weights (leaf → array)."""

    kind: str
    """``input``, ``masking``, ``embedding``, ``cell``, ``dropout``, ``spatial_dropout``, ``layer_norm``, ``dense``."""
    name: str
    class_name: str
    entry: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    zero_output_for_mask: bool = False


@dataclass
class _Context:
    keras_major: int


Converter = Callable[[KerasLayer, _Context], Piece | None]
CONVERTERS: dict[str, Converter] = {}
"""Keras class name → converter; a class not here is refused."""
KIND_CONVERTERS = KindRegistry("keras import", "converter", owner="the Keras importer")
"""Layer kind → the converter of the Keras class the kind names (``LayerSpec.keras_class``)."""


def converter(*kinds: str, classes: tuple[str, ...] = ()) -> Callable[[Converter], Converter]:
    """Decorator: register a converter for layer ``kinds`` (it reads the Keras class each kind names, its
    ``keras_class``) and for other Keras ``classes`` (wrappers, ``InputLayer``, Keras 2's CuDNN layers).

    A kind or a Keras class registered twice is refused::

        @converter("layer_norm")             # reads LayerNormalization
        def _layer_norm(layer, ctx): ...
    """

    def register(fn: Converter) -> Converter:
        names = [*(LAYER_KINDS[kind].keras_class for kind in kinds), *classes]
        for name in names:
            if name in CONVERTERS:
                raise DuplicateKindError(
                    f"the Keras importer registers two converters for Keras class {name} "
                    f"({_label(CONVERTERS[name])} and {_label(fn)}); keep one"
                )
        for kind in kinds:
            KIND_CONVERTERS.add(kind, fn)
        CONVERTERS.update(dict.fromkeys(names, fn))
        return fn

    return register


def _label(fn: Any) -> str:
    return getattr(fn, "__qualname__", repr(fn))


# -- options and names ------------------------------------------------------------------------------

_ALIASES = {"silu": "swish", None: "linear"}


def _activation(value: Any, ctx: _Context, allowed: tuple[str, ...], what: str = "activation") -> str:
    if isinstance(value, dict):
        cfg, module = value.get("config"), value.get("module")
        registered = value.get("registered_name")
        custom = (isinstance(module, str) and module.split(".")[0] != "keras") or (
            isinstance(registered, str) and ">" in registered
        )
        if value.get("class_name") == "function" and not custom:
            value = cfg.get("name") if isinstance(cfg, dict) else cfg
        if custom or not isinstance(value, str):
            shown = registered if isinstance(registered, str) else value
            shown = shown.get("class_name") if isinstance(shown, dict) else shown
            raise _Unsupported(
                f"{what} is a custom object ({str(shown)[:80]}); only Keras's built-in activations are read"
            )
    if not isinstance(value, str):
        raise _Unsupported(f"{what} {str(value)[:80]} is not an activation's name")
    name = _ALIASES.get(value, value)
    if name == "hard_sigmoid" and ctx.keras_major < 3:
        raise _Unsupported(
            f"{what} hard_sigmoid from a Keras {ctx.keras_major} file means 0.2·x + 0.5 (clipped at ±2.5), but "
            "x/6 + 0.5 in Keras 3 and in rnnspec: the outputs would change"
        )
    if name not in allowed:
        raise _Unsupported(f"{what} {value!r} is not one the spec has ({', '.join(allowed)})")
    return str(name)


def _refuse_options(cfg: dict[str, Any]) -> None:
    if cfg.get("return_state"):
        raise _Unsupported("return_state: true returns the states as extra outputs; a spec model has one output")
    if cfg.get("time_major"):
        raise _Unsupported("time_major: true takes (time, batch, features) input; the spec is batch-major")


def _split(weights: list[np.ndarray], n: int, layer: KerasLayer) -> list[np.ndarray]:
    if len(weights) != n:
        raise _Unsupported(f"{n} weight arrays expected, the file holds {len(weights)}")
    return [np.asarray(w, dtype=np.float32) for w in weights]


# -- converters ---------------------------------------------------------------------------------------


@converter(classes=("InputLayer",))
def _input_layer(layer: KerasLayer, ctx: _Context) -> Piece:
    cfg = layer.config
    if cfg.get("sparse") or cfg.get("ragged"):
        raise _Unsupported("sparse or ragged input; the spec takes dense arrays")
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    return Piece("input", layer.name, layer.class_name, {"shape": shape, "dtype": _dtype(cfg.get("dtype"))})


def _dtype(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("config", {}).get("name")
    return str(value or "float32")


@converter("masking")
def _masking(layer: KerasLayer, ctx: _Context) -> Piece:
    return Piece("masking", layer.name, layer.class_name, {"mask_value": float(layer.config.get("mask_value", 0.0))})


@converter("embedding")
def _embedding(layer: KerasLayer, ctx: _Context) -> Piece:
    cfg = layer.config
    (table,) = _split(layer.weights, 1, layer)
    entry = {"output_dim": int(cfg["output_dim"]), "mask_zero": bool(cfg.get("mask_zero", False))}
    piece = Piece("embedding", layer.name, layer.class_name, entry, {"embeddings": table})
    piece.entry["_vocab"] = int(cfg["input_dim"])
    if cfg.get("input_length"):
        piece.entry["_seq_len"] = int(cfg["input_length"])
    return piece


@converter("dropout")
def _dropout(layer: KerasLayer, ctx: _Context) -> Piece:
    if layer.config.get("noise_shape"):
        raise _Unsupported("a Dropout with noise_shape; the spec has Dropout and SpatialDropout1D")
    return Piece("dropout", layer.name, layer.class_name, {"dropout": float(layer.config.get("rate", 0.0))})


@converter("spatial_dropout")
def _spatial_dropout(layer: KerasLayer, ctx: _Context) -> Piece:
    return Piece("spatial_dropout", layer.name, layer.class_name, {"spatial_dropout": float(layer.config["rate"])})


@converter("dense")
def _dense(layer: KerasLayer, ctx: _Context) -> Piece:
    cfg = layer.config
    use_bias = bool(cfg.get("use_bias", True))
    arrays = _split(layer.weights, 2 if use_bias else 1, layer)
    entry = {
        "units": int(cfg["units"]),
        "activation": _activation(cfg.get("activation"), ctx, (*ACTIVATIONS, "softmax", "log_softmax")),
    }
    if not use_bias:
        entry["use_bias"] = False
    weights = {"kernel": arrays[0], **({"bias": arrays[1]} if use_bias else {})}
    return Piece("dense", layer.name, layer.class_name, entry, weights)


@converter("layer_norm")
def _layer_norm(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras ``LayerNormalization`` over the last axis (Keras 2 files name it by its index: checked on placing).

    Regularizers and constraints act on training only and are not read, as for every other layer.
    """
    cfg = layer.config
    if cfg.get("rms_scaling"):
        raise _Unsupported(
            "rms_scaling: true (deprecated in Keras) scales by 1/sqrt(variance + epsilon) without subtracting the "
            "mean and has no beta; the spec's layer_norm is the standard LayerNormalization"
        )
    axis = cfg.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if len(axes) != 1 or not isinstance(axes[0], int):
        raise _Unsupported(f"axis {axis!r} normalises over several axes; the spec's layer_norm normalises the features")
    epsilon = float(cfg.get("epsilon", 1e-3))
    if not 0.0 < epsilon <= 1.0:
        raise _Unsupported(f"epsilon {epsilon!r}; the spec's layer_norm takes 0 < epsilon <= 1")
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    arrays = _split(layer.weights, int(center) + int(scale), layer)
    weights = dict(zip([leaf for leaf, kept in (("gamma", scale), ("beta", center)) if kept], arrays, strict=True))
    entry = {"layer_norm": {"epsilon": epsilon, "center": center, "scale": scale}, "_axis": axes[0]}
    return Piece("layer_norm", layer.name, layer.class_name, entry, weights)


@converter("batch_norm")
def _batch_norm(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras ``BatchNormalization`` over the last axis (checked on placing): weights gamma, beta, moving_mean,
    moving_variance in Keras's order (gamma / beta only with ``scale`` / ``center``)."""
    cfg = layer.config
    if cfg.get("renorm"):
        raise _Unsupported(
            "renorm: true (batch renormalization) corrects the batch statistics while training; the "
            "spec's batch_norm is the standard BatchNormalization"
        )
    if cfg.get("virtual_batch_size"):
        raise _Unsupported(f"virtual_batch_size {cfg['virtual_batch_size']!r} (Keras 2's ghost batch norm)")
    axis = cfg.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if len(axes) != 1 or not isinstance(axes[0], int):
        raise _Unsupported(f"axis {axis!r} normalises over several axes; the spec's batch_norm normalises the features")
    epsilon, momentum = float(cfg.get("epsilon", 1e-3)), float(cfg.get("momentum", 0.99))
    if not 0.0 < epsilon <= 1.0:
        raise _Unsupported(f"epsilon {epsilon!r}; the spec's batch_norm takes 0 < epsilon <= 1")
    if not 0.0 <= momentum <= 1.0:
        raise _Unsupported(f"momentum {momentum!r}; the spec's batch_norm takes 0 <= momentum <= 1")
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    arrays = _split(layer.weights, int(center) + int(scale) + 2, layer)
    leaves = [leaf for leaf, kept in (("gamma", scale), ("beta", center)) if kept] + ["moving_mean", "moving_variance"]
    weights = dict(zip(leaves, arrays, strict=True))
    options = {"momentum": momentum, "epsilon": epsilon, "center": center, "scale": scale}
    return Piece("batch_norm", layer.name, layer.class_name, {"batch_norm": options, "_axis": axes[0]}, weights)


@converter("activation")
def _activation_layer(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras's standalone ``Activation`` (no weights): any activation the spec has, softmax and log_softmax too."""
    name = _activation(layer.config.get("activation"), ctx, LAYER_ACTIVATIONS)
    return Piece("activation", layer.name, layer.class_name, {"activation": name})


@converter("repeat_vector")
def _repeat_vector(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras ``RepeatVector(n)`` (no weights): a vector repeated over ``n`` steps, before a recurrent decoder."""
    n = layer.config.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise _Unsupported(f"n {n!r}; RepeatVector repeats a positive whole number of times")
    return Piece("repeat_vector", layer.name, layer.class_name, {"repeat_vector": n})


@converter("global_max_pool", "global_average_pool")
def _global_pool(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras ``GlobalMaxPooling1D`` / ``GlobalAveragePooling1D`` over the time axis (no weights)."""
    cfg = layer.config
    if cfg.get("data_format", "channels_last") not in ("channels_last", None):
        raise _Unsupported(f"data_format {cfg.get('data_format')!r} pools over the features; the spec pools time")
    kind = "global_max_pool" if layer.class_name == "GlobalMaxPooling1D" else "global_average_pool"
    options = {"keepdims": True} if cfg.get("keepdims") else {}
    return Piece(kind, layer.name, layer.class_name, {kind: options})


@converter("flatten")
def _flatten(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras ``Flatten`` (no weights): a fixed-length sequence's steps side by side, one vector per sample."""
    if layer.config.get("data_format", "channels_last") not in ("channels_last", None):
        raise _Unsupported(
            f"data_format {layer.config.get('data_format')!r} flattens features before steps; the spec's flatten "
            "keeps Keras's channels_last order"
        )
    return Piece("flatten", layer.name, layer.class_name, {"flatten": {}})


def _one_int(value: Any, what: str, default: int | None = None) -> int:
    """A 1-D layer's size argument: ``3``, ``[3]`` or ``(3,)`` (Keras's standardized tuple) → 3."""
    if value is None and default is not None:
        return default
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _Unsupported(f"{what} {value!r}; the spec takes one positive whole number")
    return value


def _channels_last(cfg: dict[str, Any]) -> None:
    if cfg.get("data_format", "channels_last") not in ("channels_last", None):
        raise _Unsupported(
            f"data_format {cfg.get('data_format')!r} takes (batch, features, time); the spec's sequences are "
            "(batch, time, features) (channels_last)"
        )


@converter("max_pool", "average_pool")
def _pool(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras ``MaxPooling1D`` / ``AveragePooling1D`` (no weights): pool size, strides and padding."""
    cfg = layer.config
    _channels_last(cfg)
    kind = "max_pool" if layer.class_name == "MaxPooling1D" else "average_pool"
    size = _one_int(cfg.get("pool_size"), "pool_size", 2)
    strides = _one_int(cfg.get("strides"), "strides", size)
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise _Unsupported(f"padding {padding!r}; the spec's pooling takes valid or same")
    options: dict[str, Any] = {"pool_size": size, "padding": padding}
    if strides != size:
        options["strides"] = strides
    return Piece(kind, layer.name, layer.class_name, {kind: options})


@converter("conv1d")
def _conv1d(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras ``Conv1D``: filters, kernel size, strides, padding (valid/same/causal), dilation, activation, bias;
    the kernel ``(kernel_size, inputs, filters)`` as it is (the canonical layout)."""
    cfg = layer.config
    _channels_last(cfg)
    if int(cfg.get("groups", 1) or 1) != 1:
        raise _Unsupported(f"groups {cfg.get('groups')!r} (a grouped convolution); the spec's conv1d has one group")
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same", "causal"):
        raise _Unsupported(f"padding {padding!r}; the spec's conv1d takes valid, same or causal")
    use_bias = bool(cfg.get("use_bias", True))
    arrays = _split(layer.weights, 2 if use_bias else 1, layer)
    options: dict[str, Any] = {
        "filters": _one_int(cfg.get("filters"), "filters"),
        "kernel_size": _one_int(cfg.get("kernel_size"), "kernel_size"),
        "strides": _one_int(cfg.get("strides"), "strides", 1),
        "padding": padding,
        "dilation_rate": _one_int(cfg.get("dilation_rate"), "dilation_rate", 1),
        "activation": _activation(cfg.get("activation"), ctx, ACTIVATIONS),
        "use_bias": use_bias,
    }
    weights = {"kernel": arrays[0], **({"bias": arrays[1]} if use_bias else {})}
    return Piece("conv1d", layer.name, layer.class_name, {"conv1d": options}, weights)


@converter(classes=("TimeDistributed",))
def _time_distributed(layer: KerasLayer, ctx: _Context) -> Piece:
    inner = layer.config.get("layer", {})
    if not isinstance(inner, dict) or inner.get("class_name") != "Dense":
        raise _Unsupported(f"TimeDistributed wraps a {inner.get('class_name')}; only TimeDistributed(Dense) is read")
    piece = _dense(KerasLayer("Dense", inner.get("config", {}), layer.weights), ctx)
    return Piece("dense", layer.name, layer.class_name, piece.entry, piece.weights)


_CELL_KINDS = {
    **{cls.keras_class: tag for tag, cls in RECURRENT_KINDS.items()},
    **{cls.keras_cudnn_class: tag for tag, cls in RECURRENT_KINDS.items() if cls.keras_cudnn_class},
}
"""Keras class (and Keras 2's CuDNN class) → the ``cell`` tag, from the kinds."""


@converter(*RECURRENT_KINDS)
def _recurrent(layer: KerasLayer, ctx: _Context) -> Piece:
    cfg = layer.config
    _refuse_options(cfg)
    kind = _CELL_KINDS[layer.class_name]
    entry: dict[str, Any] = {"cell": kind, "units": int(cfg["units"])}
    entry["activation"] = _activation(cfg.get("activation", "tanh"), ctx, RECURRENT_ACTIVATIONS)
    if kind != "simple_rnn":
        entry["recurrent_activation"] = _activation(
            cfg.get("recurrent_activation", "sigmoid"), ctx, RECURRENT_ACTIVATIONS, "recurrent_activation"
        )
    use_bias = bool(cfg.get("use_bias", True))
    for key in ("return_sequences", "go_backwards"):
        entry[key] = bool(cfg.get(key, False))
    entry["use_bias"] = use_bias
    for key in ("dropout", "recurrent_dropout"):
        entry[key] = float(cfg.get(key, 0.0))
    if kind == "lstm":
        entry["unit_forget_bias"] = bool(cfg.get("unit_forget_bias", True))
    if cfg.get("stateful"):
        entry["stateful"] = True  # states carried from batch to batch; the batch size is the input's
    arrays = _split(layer.weights, 3 if use_bias else 2, layer)
    weights = {"kernel": arrays[0], "recurrent_kernel": arrays[1]}
    if use_bias:
        weights["bias"] = arrays[2]
    if kind == "gru":
        entry["reset_after"] = _reset_after(cfg, weights.get("bias"))
    units = entry["units"]
    gates = RECURRENT_KINDS[kind].gates
    if weights["recurrent_kernel"].shape != (units, gates * units):
        raise _Unsupported(f"recurrent kernel of shape {weights['recurrent_kernel'].shape} for {units} units")
    piece = Piece("cell", layer.name, layer.class_name, entry, weights)
    piece.zero_output_for_mask = bool(cfg.get("zero_output_for_mask", False))
    return piece


def _reset_after(cfg: dict[str, Any], bias: np.ndarray | None) -> bool:
    if "reset_after" in cfg:
        stated = bool(cfg["reset_after"])
        if bias is not None and (bias.ndim == 2) != stated:
            raise _Unsupported(f"reset_after: {stated} with a bias of shape {bias.shape}")
        return stated
    return bias is not None and bias.ndim == 2  # Keras < 2.3 had no option: the single-bias GRU


@converter(classes=tuple(cls.keras_cudnn_class for cls in RECURRENT_KINDS.values() if cls.keras_cudnn_class))
def _cudnn(layer: KerasLayer, ctx: _Context) -> Piece:
    """Keras 2's CuDNN layers: the LSTM/GRU (reset_after) math with CuDNN's weight layout (§2.3 of Keras 2)."""
    cfg = layer.config
    _refuse_options(cfg)
    kind = _CELL_KINDS[layer.class_name]
    gates = RECURRENT_KINDS[kind].gates
    kernel, recurrent, bias = _split(layer.weights, 3, layer)
    kernel = np.hstack([k.T.reshape(k.shape, order="F") for k in np.hsplit(kernel, gates)])
    recurrent = np.hstack([k.T for k in np.hsplit(recurrent, gates)])
    bias = np.sum(np.split(bias, 2), axis=0) if kind == "lstm" else bias.reshape(2, -1)
    entry: dict[str, Any] = {"cell": kind, "units": int(cfg["units"])}
    for key in ("return_sequences", "go_backwards"):
        entry[key] = bool(cfg.get(key, False))
    if cfg.get("stateful"):
        entry["stateful"] = True
    if kind == "lstm":
        entry["unit_forget_bias"] = bool(cfg.get("unit_forget_bias", True))
    else:
        entry["reset_after"] = True
    weights = {"kernel": kernel, "recurrent_kernel": recurrent, "bias": bias.astype(np.float32)}
    return Piece("cell", layer.name, layer.class_name, entry, weights)


_MIRRORED = ("units", "activation", "recurrent_activation", "use_bias", "return_sequences", "reset_after")


@converter(classes=("Bidirectional",))
def _bidirectional(layer: KerasLayer, ctx: _Context) -> Piece:
    cfg = layer.config
    mode = cfg.get("merge_mode", "concat")
    if mode not in ("concat", "sum", "mul", "ave"):
        raise _Unsupported(f"merge_mode {mode!r} returns the two directions apart; the spec merges them")
    inner = cfg.get("layer")
    if not isinstance(inner, dict) or inner.get("class_name") not in _CELL_KINDS:
        name = inner.get("class_name") if isinstance(inner, dict) else inner
        raise _Unsupported(f"Bidirectional wraps a {name}; only SimpleRNN, LSTM and GRU are read")
    backward = cfg.get("backward_layer")
    inner_cfg = dict(inner.get("config", {}))
    if isinstance(backward, dict):
        bcfg = backward.get("config", {})
        differ = [k for k in _MIRRORED if bcfg.get(k) != inner_cfg.get(k)]
        if backward.get("class_name") != inner.get("class_name") or differ:
            raise _Unsupported(f"its backward layer differs from the forward one ({', '.join(differ) or 'class'})")
    half = len(layer.weights) // 2
    if len(layer.weights) % 2:
        raise _Unsupported(f"an odd number of weight arrays ({len(layer.weights)})")
    inner_cfg["go_backwards"] = False
    convert = CONVERTERS[inner["class_name"]]
    fwd = convert(KerasLayer(inner["class_name"], inner_cfg, layer.weights[:half]), ctx)
    bwd = convert(KerasLayer(inner["class_name"], inner_cfg, layer.weights[half:]), ctx)
    assert fwd is not None and bwd is not None
    entry = {**fwd.entry, "bidirectional": True, "merge_mode": mode}
    weights = {f"forward/{k}": v for k, v in fwd.weights.items()} | {f"backward/{k}": v for k, v in bwd.weights.items()}
    return Piece("cell", layer.name, layer.class_name, entry, weights)


# -- assembling the spec ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MaskRecipe:
    """How Keras 3 writes a masking layer's mask into a functional config: op entries applied to the layer's input."""

    ops: tuple[str, ...]
    """The op classes, from the layer's input to the mask."""
    value: Callable[[dict[str, Any]], float | None]
    """The number ``NotEqual`` compares with, from the layer's config; None where the layer makes no mask."""


_MASK_RECIPES = {
    "Masking": _MaskRecipe(("NotEqual", "Any"), lambda cfg: float(cfg.get("mask_value", 0.0))),
    "Embedding": _MaskRecipe(("NotEqual",), lambda cfg: 0.0 if cfg.get("mask_zero") else None),
}
"""Keras class of each layer that makes a mask → its recipe (Keras 3.15: ``Masking``: ``any(x != v, axis=-1)``;
``Embedding(mask_zero=True)``: ``ids != 0``)."""


def _is_op(layer: KerasLayer) -> bool:
    """An entry of Keras's ops (``keras.src.ops.numpy``...), not a layer: Keras 3 writes one per op a functional
    model applies to tensors. A ``.h5`` file's config names no modules: there an op is told by its config, which
    holds its name and arguments only (every layer's config has ``trainable``)."""
    if layer.module is not None:
        return layer.module.split(".")[:3] in (["keras", "src", "ops"], ["keras", "ops"])
    return "trainable" not in layer.config


def _mask_ops(layers: list[KerasLayer]) -> tuple[set[str], list[Refusal]]:
    """The op entries that only compute a masking layer's mask (to skip), and the masks computed otherwise.

    Each ``mask`` argument of a layer is followed back through op entries to the tensor they start from; the
    ops are the mask of a masking layer when that layer takes the same tensor and its recipe (:data:`_MASK_RECIPES`)
    names the same ops and number. Any other mask (one the model's author computed with their own ops) is refused:
    the spec's masks are those of its masking layers.
    """
    by_name = {layer.name: layer for layer in layers}
    skip: set[str] = set()
    refusals: list[Refusal] = []
    for mask in dict.fromkeys(name for layer in layers for name in layer.mask_inbound):
        chain: list[KerasLayer] = []
        node = by_name.get(mask)
        while node is not None and _is_op(node) and len(node.inbound) == 1 and len(chain) < 8:
            chain.insert(0, node)
            node = by_name.get(node.inbound[0])
        if chain and node is not None and _is_mask_of(chain, node.name, layers):
            skip.update(op.name for op in chain)
        elif mask not in skip:
            source = by_name.get(mask)
            refusals.append(
                Refusal(
                    mask,
                    source.class_name if source is not None else "?",
                    "computes a mask that is not the mask of a Masking or Embedding(mask_zero=True) layer; the "
                    "spec's masks come from those layers",
                )
            )
    used_as_data = {name for layer in layers if layer.name not in skip for name in layer.inbound}
    return skip - used_as_data, refusals


def _is_mask_of(chain: list[KerasLayer], source: str, layers: list[KerasLayer]) -> bool:
    """Whether the op ``chain`` applied to ``source`` is the mask of a masking layer that takes ``source``."""
    ops = tuple(op.class_name for op in chain)
    constants = chain[0].constants
    if any(op.class_name == "Any" and (op.config.get("axis") != -1 or op.config.get("keepdims")) for op in chain):
        return False
    for layer in layers:
        recipe = _MASK_RECIPES.get(layer.class_name)
        if recipe is None or layer.inbound != [source] or recipe.ops != ops:
            continue
        value = recipe.value(layer.config)
        if value is not None and len(constants) == 1 and float(constants[0]) == value:
            return True
    return False


def _safe_name(name: str) -> str:
    return spec_name(name)


def _layer_names(pieces: list[Piece]) -> list[str]:
    """The spec's name of each piece: Keras's name cleaned to the spec's characters, unique (``x.y`` and ``x_y``
    both clean to ``x_y``: the second is ``x_y_2``). Pieces without a layer of their own get ``""``."""
    taken: list[str] = []
    for piece in pieces:
        own = piece.kind != "input" and not (piece.kind == "masking" and _on_the_input(pieces, len(taken)))
        taken.append(spec_name(piece.name, taken) if own else "")
    return taken


def _on_the_input(pieces: list[Piece], k: int) -> bool:
    """Whether piece ``k`` (a Masking) takes the model's input: it is then ``input.mask_value``, else a ``masking``
    entry of ``recurrent`` (after an Embedding, as published models put it)."""
    return all(p.kind == "input" for p in pieces[:k])


def keras_to_spec(
    kfile: KerasFile, name: str | None = None, notes: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The spec (as a dict) and canonical weights (Keras convention) of a read Keras model.

    A layer the file freezes (``trainable=False`` on it, on a ``Bidirectional``'s inner layer or on the whole
    model) is ``trainable: false`` in the spec. What the file says but the spec cannot (a compile setting; a frozen
    layer of a kind without ``trainable``) is named in ``notes``, each a line to print; without ``notes``, such
    frozen layers are a :class:`UserWarning`.
    """
    ctx = _Context(kfile.keras_major)
    _refuse_endpoints(kfile)
    refusals: list[Refusal] = []
    pieces: list[Piece] = []
    skipped, mask_refusals = _mask_ops(kfile.layers)
    layers = [layer for layer in kfile.layers if layer.name not in skipped]
    refusals += mask_refusals
    refusals += _graph_refusals(kfile, layers)
    if kfile.foreign_modules:
        reason = f"its config names modules outside Keras ({', '.join(kfile.foreign_modules[:5])}); rnnspec reads "
        refusals.append(Refusal(kfile.model_name, kfile.model_class, reason + "only Keras's built-in layers"))
    for layer in layers:
        convert = CONVERTERS.get(layer.class_name)
        if convert is None:
            refusals.append(Refusal(layer.name, layer.class_name, _unknown_reason(layer)))
            continue
        try:
            piece = convert(layer, ctx)
        except _Unsupported as exc:
            refusals.append(Refusal(layer.name, layer.class_name, exc.reason))
            continue
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            detail = f"{type(exc).__name__}: {str(exc)[:120]}"
            refusals.append(Refusal(layer.name, layer.class_name, f"an unreadable config or weights ({detail})"))
            continue
        if piece is not None:
            if piece.weights and (not kfile.trainable or _frozen(layer.config)) and _takes_trainable(piece):
                piece.entry["trainable"] = False  # frozen in the file: frozen in the spec
            pieces.append(piece)
    found: list[str] = []
    spec, weights = _assemble(kfile, pieces, refusals, found)
    if refusals:
        raise UnsupportedModelError(str(kfile.path), refusals)
    spec["name"] = _safe_name(name or kfile.model_name)
    frozen = _frozen_note(kfile, layers, pieces)
    if frozen:
        found.append(frozen)
    _add_training(spec, kfile, found)
    if notes is not None:
        notes += found
    elif frozen:
        warnings.warn(frozen, UserWarning, stacklevel=2)
    return spec, weights


def _refuse_endpoints(kfile: KerasFile) -> None:
    """A model of several inputs or outputs (an encoder–decoder, a siamese model) is refused for that cause alone:
    the layers that join or split its branches are its symptoms, not further causes."""
    refusals = []
    for what, names in (("input", kfile.input_layers), ("output", kfile.output_layers)):
        if len(names) > 1:
            reason = f"the model has {len(names)} {what}s ({', '.join(names[:6])}); a spec describes one {what}"
            refusals.append(Refusal(kfile.model_name, kfile.model_class, reason))
    if refusals:
        raise UnsupportedModelError(
            str(kfile.path),
            refusals,
            fix="import a one-input, one-output model: save such a part of it as a model of its own (a siamese "
            "model's shared branch, the encoder of an encoder-decoder without return_state)",
        )


def _takes_trainable(piece: Piece) -> bool:
    """Whether the spec's kind of ``piece`` has a ``trainable`` field (every kind with weights should)."""
    cls = _kind_of(piece)
    return cls is not None and "trainable" in cls.model_fields


def _frozen_note(kfile: KerasFile, layers: list[KerasLayer], pieces: list[Piece]) -> str | None:
    """The warning naming the layers with weights the file freezes that the spec cannot freeze (a kind without
    ``trainable``), and the wrappers whose own flag alone says frozen (Keras trains them), or None."""
    with_weights = {piece.name for piece in pieces if piece.weights and not _takes_trainable(piece)}
    frozen = [
        f"{layer.name!r} ({layer.class_name})"
        for layer in layers
        if layer.name in with_weights and (not kfile.trainable or _frozen(layer.config))
    ]
    wrapped = [
        f"{layer.name!r} ({layer.class_name})"
        for layer in layers
        if kfile.trainable and _wrapper_only_frozen(layer.config) and layer.name in {p.name for p in pieces}
    ]
    parts = []
    if frozen:
        parts.append(
            f"frozen in the file (trainable: false): {', '.join(cap_lines(frozen, limit=10, indent=''))}. The spec's "
            "kind of these layers has no `trainable` field, so they are imported trainable: training the import would "
            "fine-tune the weights their author froze. Use it for prediction, or keep these layers' weights fixed in "
            "your own training code."
        )
    if wrapped:
        parts.append(
            f"{', '.join(cap_lines(wrapped, limit=10, indent=''))}: the wrapper says trainable: false but its inner "
            "layer does not, and Keras 3 trains such a layer (a flag given to the wrapper's constructor does not reach "
            "the weights), so the import is trainable as Keras runs it. To freeze it, set `trainable: false` on it in "
            "the spec."
        )
    return "WARNING: " + " ".join(parts) if parts else None


def _inner_config(config: dict[str, Any]) -> dict[str, Any] | None:
    inner = config.get("layer")
    inner_cfg = inner.get("config") if isinstance(inner, dict) else None
    return inner_cfg if isinstance(inner_cfg, dict) else None


def _frozen(config: dict[str, Any]) -> bool:
    """Whether Keras freezes the layer's weights. A wrapper (``Bidirectional``, ``TimeDistributed``) holds them in
    its inner layer, so its inner layer's flag decides: ``layer.trainable = False`` sets both flags, while
    ``Bidirectional(..., trainable=False)`` sets the wrapper's alone and Keras 3 still trains the weights (measured:
    ``model.trainable_weights`` keeps them, before and after loading)."""
    inner = _inner_config(config)
    return (inner if inner is not None else config).get("trainable") is False


def _wrapper_only_frozen(config: dict[str, Any]) -> bool:
    inner = _inner_config(config)
    return inner is not None and config.get("trainable") is False and inner.get("trainable") is not False


def _add_training(spec: dict[str, Any], kfile: KerasFile, notes: list[str]) -> None:
    """The file's compile settings as the spec's ``training`` section, where the spec takes them with this model."""
    training = training_section(kfile.compile_config, notes)
    if training is None:
        return
    try:
        spec_from_dict({**spec, "training": training})
    except RnnspecError as exc:
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        reason = (lines[0] if lines else str(exc))[:200]
        notes.append(f"no `training` section was written: the spec refuses the file's compile settings ({reason})")
        return
    spec["training"] = training


def _unknown_reason(layer: KerasLayer) -> str:
    if layer.class_name in ("Sequential", "Functional", "Model"):
        return "a nested model; save the inner layers as one flat model"
    if _is_op(layer):
        return (
            f"an operation on tensors (keras.ops {layer.class_name}) in the model's graph; the spec has no such layer"
        )
    if layer.class_name == "Lambda":
        return "a Lambda runs Python code; the spec has none (and rnnspec never runs code from a file)"
    return f"the spec has no {layer.class_name} layer"


def _graph_refusals(kfile: KerasFile, layers: list[KerasLayer]) -> list[Refusal]:
    """A functional model must be one chain (one input and one output: :func:`_refuse_endpoints`), each layer fed by
    the one before."""
    out: list[Refusal] = []
    if kfile.model_class == "Sequential":
        return out
    previous: str | None = None
    for layer in layers:
        fed_by = [n for n in layer.inbound if n != layer.name]
        if layer.class_name == "InputLayer":
            previous = layer.name
            continue
        if previous is not None and fed_by != [previous]:
            out.append(
                Refusal(
                    layer.name,
                    layer.class_name,
                    f"takes {', '.join(fed_by) or 'nothing'} instead of the layer before it ({previous}); "
                    "only models that are one chain of layers are read",
                )
            )
        previous = layer.name
    return out


def _kind_of(piece: Piece) -> type[LayerSpec] | None:
    """The spec's kind a piece becomes (a recurrent piece by its ``cell``); None for the input."""
    return LAYER_KINDS.get(piece.entry.get("cell", piece.kind))


def _assemble(
    kfile: KerasFile, pieces: list[Piece], refusals: list[Refusal], notes: list[str]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    spec: dict[str, Any] = {"rnnspec": FORMAT_VERSION, "name": "model"}
    weights: dict[str, np.ndarray] = {}
    shape = _input_shape(kfile, pieces)
    recurrent: list[dict[str, Any]] = []
    head: list[dict[str, Any]] = []
    masked = False
    unread = False  # whether the mask is an Embedding's mask_zero that no layer has read yet
    seen_cell = False
    rank = 3  # of the tensor the next layer takes: (batch, time, features) until a cell returns its last output
    names = _layer_names(pieces)
    for k, piece in enumerate(pieces):
        entry = {key: v for key, v in piece.entry.items() if not key.startswith("_")}
        layer_name = names[k]
        if piece.kind == "input":
            continue
        kind = _kind_of(piece)
        if kind is not None and kind.drops_mask_unread and masked and unread and "embedding" in spec:
            # Keras drops the embedding's mask here before any layer read it: the model computes what it computes
            # without mask_zero (the embedding's values do not depend on it), which is how the spec states it
            spec["embedding"]["mask_zero"] = False
            notes.append(
                f"mask_zero=True on {spec['embedding']['name']} was left out: Keras's {piece.class_name} "
                f"({piece.name}) drops the mask before any layer reads it, so the model computes the same without it"
            )
            masked = unread = False
        unread = unread and not (kind is not None and kind.reads_mask)
        if piece.kind == "masking":
            if _on_the_input(pieces, k):
                spec["_mask_value"] = entry["mask_value"]
            else:
                if head or rank != 3:
                    where = "after a Dense layer" if head else "after a layer that returns one vector per sample"
                    refusals.append(Refusal(piece.name, piece.class_name, f"a Masking layer {where}"))
                recurrent.append({"masking": entry, "name": layer_name})
            masked, unread = True, False  # Keras's Masking ignores the mask it receives: its own replaces it
            continue
        if piece.kind == "embedding":
            if any(p.kind not in ("input",) for p in pieces[:k]):
                refusals.append(Refusal(piece.name, piece.class_name, "an Embedding after other layers"))
            spec["embedding"] = {**entry, "name": layer_name}
            spec["_vocab"] = piece.entry["_vocab"]
            spec["_seq_len"] = piece.entry.get("_seq_len")
            masked = masked or entry["mask_zero"]
            unread = bool(entry["mask_zero"])
        elif piece.kind == "cell":
            if head:
                refusals.append(Refusal(piece.name, piece.class_name, "a recurrent layer after a Dense layer"))
            if (
                masked
                and piece.zero_output_for_mask
                and entry.get("return_sequences")
                and not entry.get("bidirectional")
            ):
                refusals.append(
                    Refusal(
                        piece.name,
                        piece.class_name,
                        "zero_output_for_mask: true on a masked layer (the spec repeats the last output at "
                        "masked steps, as Keras's default)",
                    )
                )
            recurrent.append({**entry, "name": layer_name})
            seen_cell = True
            masked = masked and bool(entry.get("return_sequences"))
            rank = 3 if entry.get("return_sequences") else 2
        elif piece.kind == "activation":
            (head if head else recurrent).append({**entry, "name": layer_name})
        elif piece.kind in ("global_max_pool", "global_average_pool"):
            if head:
                refusals.append(Refusal(piece.name, piece.class_name, f"a {piece.class_name} after a Dense layer"))
            recurrent.append({**entry, "name": layer_name})
            masked, rank = False, 3 if entry[piece.kind].get("keepdims") else 2  # Keras's mask ends here
        elif piece.kind == "flatten":
            if head:
                refusals.append(Refusal(piece.name, piece.class_name, "a Flatten after a Dense layer"))
            recurrent.append({**entry, "name": layer_name})
            masked, rank = False, 2  # Keras's Flatten drops any mask (the spec refuses a masked input, saying so)
        elif piece.kind == "repeat_vector":
            if head:
                refusals.append(Refusal(piece.name, piece.class_name, "a RepeatVector after a Dense layer"))
            recurrent.append({**entry, "name": layer_name})
            masked, rank = False, 3  # Keras's RepeatVector drops any mask
        elif piece.kind in ("max_pool", "average_pool", "conv1d"):
            if head or rank != 3:
                where = "after a Dense layer" if head else "after a recurrent layer that returns its last output only"
                refusals.append(Refusal(piece.name, piece.class_name, f"a {piece.class_name} {where}"))
            recurrent.append({**entry, "name": layer_name})
            masked = False  # Keras's pooling layers drop the mask (the spec refuses a masked input, saying so)
        elif piece.kind in ("dropout", "spatial_dropout"):
            target = head if head else recurrent
            if piece.kind == "spatial_dropout" and head:
                refusals.append(Refusal(piece.name, piece.class_name, "a SpatialDropout1D after a Dense layer"))
            target.append({**entry, "name": layer_name})
        elif piece.kind in ("layer_norm", "batch_norm"):
            axis = piece.entry["_axis"]
            if axis not in (-1, rank - 1):
                refusals.append(
                    Refusal(
                        piece.name,
                        piece.class_name,
                        f"axis {axis} of a rank-{rank} input is not the feature axis (-1); the spec's {piece.kind} "
                        "normalises the features" + (" of each step" if piece.kind == "layer_norm" else ""),
                    )
                )
            (head if head else recurrent).append({**entry, "name": layer_name})
        elif piece.kind == "dense":
            if not seen_cell:
                refusals.append(
                    Refusal(
                        piece.name,
                        piece.class_name,
                        "a Dense layer before the recurrent layers; the spec's head follows the recurrent stack",
                    )
                )
            head.append({**entry, "name": layer_name})
        weights.update({f"{layer_name}/{leaf}": value for leaf, value in piece.weights.items()})
    if not seen_cell:
        refusals.append(Refusal(kfile.model_name, kfile.model_class, "no SimpleRNN, LSTM, GRU or Bidirectional layer"))
    output = [e for e in head if "units" in e or "activation" not in e]  # an Activation may follow the output
    if head and "units" not in output[-1]:
        last = pieces[names.index(output[-1]["name"])]
        refusals.append(Refusal(last.name, last.class_name, f"a {last.class_name} after the output Dense layer"))
    spec["input"] = _input_section(spec, shape, pieces, refusals)
    if "embedding" in spec:
        spec["embedding"] = spec.pop("embedding")
    spec["recurrent"] = recurrent
    if head:
        spec["head"] = head[0] if len(head) == 1 else head
    for key in [k for k in spec if k.startswith("_")]:
        del spec[key]
    return spec, weights


def _input_shape(kfile: KerasFile, pieces: list[Piece]) -> list[Any] | None:
    for piece in pieces:
        if piece.kind == "input" and isinstance(piece.entry.get("shape"), list):
            return piece.entry["shape"]
    if isinstance(kfile.build_input_shape, list):
        return kfile.build_input_shape
    for layer in kfile.layers:
        shape = layer.config.get("batch_input_shape") or layer.config.get("batch_shape")
        if isinstance(shape, list):
            return shape
    return None


def _input_section(
    spec: dict[str, Any], shape: list[Any] | None, pieces: list[Piece], refusals: list[Refusal]
) -> dict[str, Any]:
    section: dict[str, Any] = {}
    seq_len = shape[1] if shape is not None and len(shape) >= 2 else spec.get("_seq_len")
    if "_vocab" in spec:
        section["vocab_size"] = spec["_vocab"]
    else:
        features = shape[2] if shape is not None and len(shape) == 3 else None
        if features is None:
            cells = [p for p in pieces if p.kind in ("cell", "conv1d")]
            if cells:
                kernel = next(iter(cells[0].weights.values()))
                features = int(kernel.shape[1] if cells[0].kind == "conv1d" else kernel.shape[0])
        if features is None:
            refusals.append(Refusal("input", "InputLayer", "the number of input features is not recorded"))
            features = 1
        section["features"] = int(features)
        if shape is not None and len(shape) not in (2, 3):
            refusals.append(Refusal("input", "InputLayer", f"input of shape {shape}; the spec takes sequences"))
    if isinstance(seq_len, int) and seq_len > 0:
        section["seq_len"] = seq_len
    stateful = [p for p in pieces if p.kind == "cell" and p.entry.get("stateful")]
    if stateful:
        batch = shape[0] if shape else None
        if isinstance(batch, int) and batch > 0:
            section["batch_size"] = batch
        else:
            refusals.append(
                Refusal(stateful[0].name, stateful[0].class_name, "stateful=True without a fixed batch size (the "
                        "file records no batch_shape / batch_input_shape on the input)")
            )  # fmt: skip
    if "_mask_value" in spec:
        section["mask_value"] = spec["_mask_value"]
    return section
