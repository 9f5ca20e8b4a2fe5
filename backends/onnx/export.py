"""``rnnspec export --format onnx``: one ONNX file that onnxruntime runs, equal to the NumPy reference.

The graph is built node by node with :mod:`onnx.helper` (no framework exporter). Its input ``x`` is
int64 token ids ``[batch, time]`` or float32 features ``[batch, time, features]``, both axes
symbolic; its output ``y`` is float32. Recurrent layers use ONNX's fused ``RNN`` / ``LSTM`` /
``GRU`` ops (``layout=0``, time-major); Dense layers are ``MatMul`` + ``Add`` + the activation; a
``layer_norm`` is ONNX's ``LayerNormalization`` (opset 17); an ``activation`` entry is its activation's node(s)
(``Softmax`` / ``LogSoftmax`` over the last axis).

Weights: kernels are transposed to ONNX's ``[gates·units, inputs]``, LSTM gate blocks go from
Keras's i, f, c, o to ONNX's i, o, f, c (GRU's z, r, h is the same in both), and ``B`` is the input
bias followed by the recurrent one (zeros where the spec has none). A GRU with ``reset_after``
is ``linear_before_reset=1``.

Masks follow Keras exactly for any padding (pre, post, holes, fully padded rows). The fused ops
only skip a suffix of each row (``sequence_lens``), so a masked layer first moves each row's
valid steps to the front in time order (``TopK`` of ``mask·(T - t)``, then ``GatherElements``),
runs the op with ``sequence_lens`` = the number of valid steps, and puts the outputs back: with
``c(t)`` the count of valid steps up to ``t``, the output at ``t`` is the compact output
``c(t) - 1``, which repeats the previous output at a masked step (zeros before the first valid
one); a bidirectional layer's outputs are zero at masked steps. The last output is ``Y_h``.

Recurrent activations the fused ops cannot express (``selu``, ``swish``, ``exponential``, ``gelu``)
are refused with the alternatives, and so is ``softplus``: onnxruntime's kernels compute it as
``log(1 + exp(x))``, which overflows for inputs above about 88.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnspec.core.kinds import KindRegistry, MissingKindError
from rnnspec.core.weights import check_weights, permute_gates
from rnnspec.lang.errors import RnnspecError, render_problem
from rnnspec.lang.layers import (
    ActivationSpec,
    AveragePoolSpec,
    BatchNormSpec,
    Conv1DSpec,
    DenseSpec,
    EmbeddingSpec,
    FlattenSpec,
    GlobalAveragePoolSpec,
    GlobalMaxPoolSpec,
    LayerNormSpec,
    LayerSpec,
    MaskingSpec,
    MaxPoolSpec,
    RecurrentLayer,
    RepeatVectorSpec,
)
from rnnspec.lang.spec import ModelSpec
from rnnspec.util import write_bytes_atomic

from ..numpy.model import DirectionWeights

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "BUILDERS",
    "DENSE_ACTIVATIONS",
    "FUSED_CELLS",
    "MIN_OPSET",
    "RECURRENT_ACTIVATIONS",
    "REFUSED_ACTIVATIONS",
    "FusedCell",
    "export_onnx",
]

MIN_OPSET = 17
"""The oldest opset the graph is written for."""

RECURRENT_ACTIVATIONS: dict[str, tuple[str, float | None, float | None]] = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "elu": ("Elu", 1.0, None),
    "softsign": ("Softsign", None, None),
}
"""Keras activation → ``(ONNX RNN activation, alpha, beta)``; alpha and beta are None where the function takes none."""

REFUSED_ACTIVATIONS: dict[str, str] = {
    "softplus": "onnxruntime's fused kernels compute Softplus as log(1 + exp(x)), which overflows to inf (then NaN) "
    "for inputs above about 88, where Keras returns x",
}
"""Recurrent activations that ONNX's RNN ops name but onnxruntime does not compute as Keras does, and why."""

_INT64_MIN = np.iinfo(np.int64).min
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def export_onnx(spec: ModelSpec, weights: dict[str, np.ndarray], path: str | Path, *, opset: int = 17) -> list[Path]:
    """Write ``spec`` with canonical ``weights`` to ``path`` as an ONNX model of ``opset`` (>= 17); returns ``[path]``.

    The file is checked with ``onnx.checker`` and written atomically: a failed export leaves no file.
    """
    onnx = _import_onnx()
    _check_opset(onnx, opset)
    check_weights(spec, weights)
    model = _model(onnx, spec, weights, opset)
    onnx.checker.check_model(model, full_check=True)
    target = Path(path)
    write_bytes_atomic(target, model.SerializeToString())
    return [target]


def _import_onnx() -> ModuleType:
    try:
        import onnx
    except ModuleNotFoundError:
        raise RnnspecError("ONNX export needs the onnx package: pip install 'rnnspec[onnx]'") from None
    return onnx


def _check_opset(onnx: ModuleType, opset: object) -> None:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise RnnspecError(
            f"ONNX export: opset {opset!r} is not supported; expected an integer from {MIN_OPSET} to {newest} "
            f"(the installed onnx {onnx.__version__} knows opsets up to {newest})"
        )


# -- the graph being built ----------------------------------------------------------------------------


class _Graph:
    """Nodes and initializers of the graph under construction, with unique tensor names per layer scope."""

    def __init__(self, onnx: ModuleType):
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.scope = "input"
        self.batch_size: int | None = None
        """A stateful spec's fixed batch (``input.batch_size``): the batch axis of its state inputs and outputs."""
        self.states: list[tuple[str, str, list[Any]]] = []
        """A stateful layer's carried states: ``(input name, output tensor, shape)`` per state (``LAYER.h_0`` in,
        ``LAYER.h_n`` out; ``.c_0`` / ``.c_n`` for an LSTM's cell state)."""
        self._count = 0
        self._consts: dict[tuple[str, tuple[int, ...], bytes], str] = {}

    def fresh(self, hint: str) -> str:
        """A new tensor name in the current scope."""
        self._count += 1
        return f"{self.scope}/{hint}_{self._count}"

    def const(self, value: Any, dtype: Any = np.float32, hint: str = "const") -> str:
        """An initializer holding ``value`` as ``dtype`` (small constants are shared)."""
        array = np.array(value, dtype=dtype, order="C")
        key = (array.dtype.str, array.shape, array.tobytes())
        small = array.size <= 16
        if small and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        if small:
            self._consts[key] = name
        return name

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant (axes, shapes, slice bounds)."""
        return self.const(list(values), np.int64)

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        """Add one node with one output; returns the output's name."""
        return self.ops(op_type, *inputs, outputs=1, **attrs)[0]

    def ops(self, op_type: str, *inputs: str, outputs: int, unused: tuple[int, ...] = (), **attrs: Any) -> list[str]:
        """Add one node with ``outputs`` outputs; returns their names (empty for the ``unused`` ones)."""
        names = ["" if k in unused else self.fresh(op_type) for k in range(outputs)]
        node = self.onnx.helper.make_node(op_type, list(inputs), names, name=f"{self.fresh(op_type)}:node", **attrs)
        self.nodes.append(node)
        return names

    @property
    def float_type(self) -> int:
        return self.onnx.TensorProto.FLOAT


# -- masks ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compaction:
    """How a mask moves each row's valid steps to the front and the outputs back (all ``[batch, time]``)."""

    order: str
    """int64: for each compact step, the original step it comes from (valid steps first, in time order)."""
    lengths: str
    """int32 ``[batch]``: valid steps per row (the fused op's ``sequence_lens``)."""
    source: str
    """int64: for each original step, the compact step whose output it shows (``max(c(t) - 1, 0)``)."""
    seen: str
    """float32: 1 where a valid step has been seen up to and including ``t`` (``c(t) > 0``), else 0."""


@dataclass
class _Mask:
    """Keras's mask as a float32 ``[batch, time]`` tensor of ones (valid) and zeros, and its compaction."""

    keep: str
    _compaction: _Compaction | None = field(default=None, repr=False)

    def compaction(self, g: _Graph) -> _Compaction:
        if self._compaction is None:
            self._compaction = _compact(g, self.keep)
        return self._compaction

    def reversed(self, g: _Graph) -> _Mask:
        return _Mask(_reverse_time(g, self.keep))


def _compact(g: _Graph, keep: str) -> _Compaction:
    time = g.op("Shape", keep, start=1, end=2)
    steps = g.op(
        "Cast", g.op("Range", g.const(0, np.int64), g.op("Squeeze", time), g.const(1, np.int64)), to=g.float_type
    )
    rank = g.op("Sub", g.op("Cast", time, to=g.float_type), steps)
    _, order = g.ops("TopK", g.op("Mul", keep, rank), time, outputs=2, axis=1, largest=1, sorted=1)
    lengths = g.op("Cast", g.op("ReduceSum", keep, g.ints(1), keepdims=0), to=g.onnx.TensorProto.INT32)
    count = g.op("CumSum", keep, g.const(1, np.int64))
    source = g.op("Cast", g.op("Max", g.op("Sub", count, g.const(1.0)), g.const(0.0)), to=g.onnx.TensorProto.INT64)
    return _Compaction(order, lengths, source, g.op("Min", count, g.const(1.0)))


def _take_steps(g: _Graph, x: str, steps: str) -> str:
    """``x[b, steps[b, t], :]`` for a ``[batch, time, features]`` tensor and int64 ``[batch, time]`` steps."""
    index = g.op("Expand", g.op("Unsqueeze", steps, g.ints(2)), g.op("Shape", x))
    return g.op("GatherElements", x, index, axis=1)


def _reverse_time(g: _Graph, x: str) -> str:
    return g.op("Slice", x, g.ints(-1), g.ints(_INT64_MIN), g.ints(1), g.ints(-1))


# -- activations ----------------------------------------------------------------------------------------


def _gelu(g: _Graph, x: str) -> str:
    erf = g.op("Erf", g.op("Mul", x, g.const(1.0 / math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", erf, g.const(1.0)))


DENSE_ACTIVATIONS: dict[str, Callable[[_Graph, str], str]] = {
    "linear": lambda g, x: x,
    "tanh": lambda g, x: g.op("Tanh", x),
    "sigmoid": lambda g, x: g.op("Sigmoid", x),
    "hard_sigmoid": lambda g, x: g.op("HardSigmoid", x, alpha=1.0 / 6.0, beta=0.5),
    "relu": lambda g, x: g.op("Relu", x),
    "elu": lambda g, x: g.op("Elu", x, alpha=1.0),
    "selu": lambda g, x: g.op("Selu", x, alpha=_SELU_ALPHA, gamma=_SELU_SCALE),
    "gelu": _gelu,
    "softplus": lambda g, x: g.op("Softplus", x),
    "softsign": lambda g, x: g.op("Softsign", x),
    "swish": lambda g, x: g.op("Mul", x, g.op("Sigmoid", x)),
    "exponential": lambda g, x: g.op("Exp", x),
    "softmax": lambda g, x: g.op("Softmax", x, axis=-1),
    "log_softmax": lambda g, x: g.op("LogSoftmax", x, axis=-1),
}
"""Keras's Dense and Activation activations as ONNX nodes (gelu in its exact erf form, as Keras's default)."""


@dataclass(frozen=True)
class FusedCell:
    """How a recurrent cell kind maps onto its fused ONNX op (the op is the kind's ``onnx_op``)."""

    functions: tuple[str, ...]
    """The spec fields whose activations the op applies, in ONNX's order (RNN: f; GRU: f, g; LSTM: f, g, h)."""
    attributes: Callable[[Any], dict[str, Any]] = field(default=lambda layer: {})
    """Extra attributes of the node for a layer (GRU: ``linear_before_reset``)."""


FUSED_CELLS = KindRegistry("onnx export", "fused cell", owner="the ONNX export")
"""Recurrent cell kind → :class:`FusedCell` (cells also register :func:`_recurrent` in :data:`BUILDERS`)."""
FUSED_CELLS.add("simple_rnn", FusedCell(("activation",)))
FUSED_CELLS.add("lstm", FusedCell(("recurrent_activation", "activation", "activation")))
FUSED_CELLS.add(
    "gru",
    FusedCell(("recurrent_activation", "activation"), lambda layer: {"linear_before_reset": int(layer.reset_after)}),
)


def _keras_activations(layer: RecurrentLayer) -> list[tuple[str, str]]:
    """``(field, activation)`` of each function the fused op applies, in ONNX's order (f; f, g; f, g, h)."""
    return [(name, getattr(layer, name)) for name in FUSED_CELLS.get(layer.kind).functions]


def _rnn_activations(name: str, layer: RecurrentLayer) -> dict[str, Any]:
    """The fused op's ``activations``, ``activation_alpha`` and ``activation_beta`` for every direction.

    onnxruntime hands the alphas (betas) out in order to the functions that take one, so each list
    holds only those functions' values.
    """
    functions = _keras_activations(layer)
    for field_name, value in functions:
        if value not in RECURRENT_ACTIVATIONS:
            raise _unsupported_activation(name, layer, field_name, value)
    entries = [RECURRENT_ACTIVATIONS[value] for _, value in functions] * layer.directions
    attrs: dict[str, Any] = {"activations": [onnx_name for onnx_name, _, _ in entries]}
    alphas = [alpha for _, alpha, _ in entries if alpha is not None]
    betas = [beta for _, _, beta in entries if beta is not None]
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    return attrs


def _unsupported_activation(name: str, layer: RecurrentLayer, field_name: str, value: str) -> RnnspecError:
    reason = REFUSED_ACTIVATIONS.get(value, "ONNX's fused RNN/LSTM/GRU ops have no such activation function")
    return RnnspecError(
        render_problem(
            f"layer {name!r}",
            f"the ONNX export cannot express `{field_name}: {value}` in a {layer.keras_class} layer: {reason}",
            f"{field_name}: {value}",
            f"{field_name}: one of {', '.join(RECURRENT_ACTIVATIONS)}",
            f"use another `{field_name}` in the spec, or export to PyTorch (`rnnspec export --format torch`)",
        )
    )


# -- layers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Flow:
    """What flows between layers: the tensor, Keras's mask on it, and whether it has a time axis."""

    h: str
    mask: _Mask | None
    per_step: bool


Leaves = dict[str, np.ndarray]
OnnxWeights = tuple[np.ndarray, np.ndarray, np.ndarray]
Builder = Callable[[_Graph, str, Any, Leaves, _Flow], _Flow]
BUILDERS = KindRegistry("onnx export", "node builder", owner="the ONNX export")
"""Layer kind → ``fn(graph, name, layer, weights by leaf, flow) -> flow``. Register with
``@BUILDERS.register("kind")`` (or ``BUILDERS.add``); a kind ONNX cannot express is declared with
``BUILDERS.refuse("kind", "reason")``."""


def _masking(g: _Graph, name: str, layer: MaskingSpec, w: Leaves, flow: _Flow) -> _Flow:
    padding = g.op("Equal", flow.h, g.const(layer.mask_value))
    valid = g.op("ReduceSum", g.op("Cast", g.op("Not", padding), to=g.float_type), g.ints(-1), keepdims=0)
    keep = g.op("Greater", valid, g.const(0.0))
    h = g.op("Where", g.op("Unsqueeze", keep, g.ints(-1)), flow.h, g.const(0.0))
    return _Flow(h, _Mask(g.op("Cast", keep, to=g.float_type)), flow.per_step)


def _embedding(g: _Graph, name: str, layer: EmbeddingSpec, w: Leaves, flow: _Flow) -> _Flow:
    h = g.op("Gather", g.const(w["embeddings"], hint="embeddings"), flow.h, axis=0)
    if layer.mask_id is None:
        return _Flow(h, flow.mask, flow.per_step)
    keep = g.op("Not", g.op("Equal", flow.h, g.const(layer.mask_id, np.int64)))  # mask_zero: 0; padding_idx
    return _Flow(h, _Mask(g.op("Cast", keep, to=g.float_type)), flow.per_step)


def _identity(g: _Graph, name: str, layer: LayerSpec, w: Leaves, flow: _Flow) -> _Flow:
    return flow


def _dense(g: _Graph, name: str, layer: DenseSpec, w: Leaves, flow: _Flow) -> _Flow:
    z = g.op("MatMul", flow.h, g.const(w["kernel"], hint="kernel"))
    if "bias" in w:
        z = g.op("Add", z, g.const(w["bias"], hint="bias"))
    return _Flow(DENSE_ACTIVATIONS[layer.activation](g, z), flow.mask, flow.per_step)


def _layer_norm(g: _Graph, name: str, layer: LayerNormSpec, w: Leaves, flow: _Flow) -> _Flow:
    """ONNX's ``LayerNormalization`` (opset 17) over the last axis: Keras's biased variance, epsilon inside the root,
    computed in float32 (``stash_type=1``). Its scale input is required: ones where ``scale`` is off."""
    if "gamma" in w:
        scale = g.const(w["gamma"], hint="gamma")
    else:
        one = g.onnx.helper.make_tensor("one", g.float_type, [1], [1.0])
        scale = g.op("ConstantOfShape", g.op("Shape", flow.h, start=-1), value=one)
    inputs = [flow.h, scale] + ([g.const(w["beta"], hint="beta")] if "beta" in w else [])
    h = g.op("LayerNormalization", *inputs, axis=-1, epsilon=float(layer.epsilon), stash_type=1)
    return _Flow(h, flow.mask, flow.per_step)


def _batch_norm(g: _Graph, name: str, layer: BatchNormSpec, w: Leaves, flow: _Flow) -> _Flow:
    """ONNX's ``BatchNormalization`` in inference mode (the moving statistics; its channels are axis 1, so a sequence
    is transposed to ``[batch, features, time]`` and back). Its scale and bias are required: ones / zeros where
    ``scale`` / ``center`` are off."""
    features = w["moving_mean"].shape[0]
    scale = w["gamma"] if "gamma" in w else np.ones(features, np.float32)
    bias = w["beta"] if "beta" in w else np.zeros(features, np.float32)
    stats = [g.const(scale, hint="gamma"), g.const(bias, hint="beta")]
    stats += [g.const(w["moving_mean"], hint="moving_mean"), g.const(w["moving_variance"], hint="moving_variance")]
    h = g.op("Transpose", flow.h, perm=[0, 2, 1]) if flow.per_step else flow.h
    h = g.op("BatchNormalization", h, *stats, epsilon=float(layer.epsilon))
    h = g.op("Transpose", h, perm=[0, 2, 1]) if flow.per_step else h
    return _Flow(h, flow.mask, flow.per_step)


def _activation(g: _Graph, name: str, layer: ActivationSpec, w: Leaves, flow: _Flow) -> _Flow:
    """Keras ``Activation``: the activation's node(s) (``Softmax`` / ``LogSoftmax`` over the last axis)."""
    return _Flow(DENSE_ACTIVATIONS[layer.activation](g, flow.h), flow.mask, flow.per_step)


def _global_max_pool(g: _Graph, name: str, layer: GlobalMaxPoolSpec, w: Leaves, flow: _Flow) -> _Flow:
    """Keras ``GlobalMaxPooling1D`` over every step (Keras ignores the mask): the values at ``ArgMax`` over time
    (``GatherElements``: exact, and the same nodes in every opset); no mask after."""
    h = g.op("GatherElements", flow.h, g.op("ArgMax", flow.h, axis=1, keepdims=1), axis=1)
    return _Flow(h if layer.keepdims else g.op("Squeeze", h, g.ints(1)), None, layer.keepdims)


def _global_average_pool(g: _Graph, name: str, layer: GlobalAveragePoolSpec, w: Leaves, flow: _Flow) -> _Flow:
    """Keras ``GlobalAveragePooling1D``: ``sum(where(mask, x, 0)) / sum(mask)`` over time (a fully padded row is
    0/0, NaN, as in Keras), the plain mean without a mask; no mask after."""
    keepdims = int(layer.keepdims)
    if flow.mask is None:  # ReduceSum over the time axis by its length (ReduceMean's axes differ by opset)
        steps = g.op("Cast", g.op("Shape", flow.h, start=1, end=2), to=g.float_type)
        h = g.op("Div", g.op("ReduceSum", flow.h, g.ints(1), keepdims=keepdims), steps)
        return _Flow(h, None, layer.keepdims)
    keep = g.op("Unsqueeze", flow.mask.keep, g.ints(2))
    valid = g.op("Where", g.op("Greater", keep, g.const(0.0)), flow.h, g.const(0.0))
    total = g.op("ReduceSum", valid, g.ints(1), keepdims=keepdims)
    h = g.op("Div", total, g.op("ReduceSum", keep, g.ints(1), keepdims=keepdims))
    return _Flow(h, None, layer.keepdims)


def _repeat_vector(g: _Graph, name: str, layer: RepeatVectorSpec, w: Leaves, flow: _Flow) -> _Flow:
    """Keras ``RepeatVector(n)``: ``Unsqueeze`` to ``[batch, 1, features]`` then ``Tile`` ``n`` times; no mask after."""
    h = g.op("Tile", g.op("Unsqueeze", flow.h, g.ints(1)), g.const(np.array([1, layer.repeat_vector, 1]), np.int64))
    return _Flow(h, None, True)


def _pool(g: _Graph, name: str, layer: MaxPoolSpec | AveragePoolSpec, w: Leaves, flow: _Flow) -> _Flow:
    """Keras ``MaxPooling1D`` / ``AveragePooling1D``: ONNX's ``MaxPool`` / ``AveragePool`` over ``[batch, features,
    time]``; ``same`` is ``auto_pad=SAME_UPPER`` (TensorFlow's padding, the extra step at the end), and an average
    counts the real steps only (``count_include_pad=0``). No mask after it (Keras drops it)."""
    attrs: dict[str, Any] = {"kernel_shape": [layer.pool_size], "strides": [layer.strides]}
    attrs["auto_pad"] = "SAME_UPPER" if layer.padding == "same" else "VALID"
    if layer.kind == "average_pool":
        attrs["count_include_pad"] = 0
    x = g.op("Transpose", flow.h, perm=[0, 2, 1])
    h = g.op("MaxPool" if layer.kind == "max_pool" else "AveragePool", x, **attrs)
    return _Flow(g.op("Transpose", h, perm=[0, 2, 1]), None, True)


def _conv1d(g: _Graph, name: str, layer: Conv1DSpec, w: Leaves, flow: _Flow) -> _Flow:
    """Keras ``Conv1D``: ONNX's ``Conv`` over ``[batch, features, time]`` with the kernel as ``[filters, inputs,
    kernel_size]``; ``same`` is ``auto_pad=SAME_UPPER`` (TensorFlow's padding), ``causal`` a ``Pad`` of
    ``span - 1`` zeros at the start; then the activation. No mask after it (Keras drops it)."""
    x = g.op("Transpose", flow.h, perm=[0, 2, 1])
    if layer.padding == "causal":
        x = g.op("Pad", x, g.const(np.array([0, 0, layer.span - 1, 0, 0, 0]), np.int64))
    inputs = [x, g.const(np.ascontiguousarray(w["kernel"].transpose(2, 1, 0)), hint="kernel")]
    if "bias" in w:
        inputs.append(g.const(w["bias"], hint="bias"))
    z = g.op(
        "Conv",
        *inputs,
        kernel_shape=[layer.kernel_size],
        strides=[layer.strides],
        dilations=[layer.dilation_rate],
        auto_pad="SAME_UPPER" if layer.padding == "same" else "VALID",
    )
    z = g.op("Transpose", z, perm=[0, 2, 1])
    return _Flow(DENSE_ACTIVATIONS[layer.activation](g, z), None, True)


def _recurrent(g: _Graph, name: str, layer: RecurrentLayer, w: Leaves, flow: _Flow) -> _Flow:
    """One direction (``go_backwards`` reverses the input and the mask) or Keras's ``Bidirectional``."""
    attrs = _rnn_activations(name, layer)
    initial = _state_inputs(g, name, layer) if layer.stateful else None
    if layer.bidirectional:
        tensors = [_onnx_weights(layer, _direction(w, d)) for d in ("forward/", "backward/")]
        fused = _run_fused(g, layer, tensors, attrs, flow.h, flow.mask, zero_output=layer.return_sequences,
                           initial=initial)  # fmt: skip
        out = _merge(g, layer.merge_mode, *fused.outputs)
    else:
        h, mask = flow.h, flow.mask
        if layer.go_backwards:
            h, mask = _reverse_time(g, h), None if mask is None else mask.reversed(g)
        tensors = [_onnx_weights(layer, _direction(w, ""))]
        fused = _run_fused(g, layer, tensors, attrs, h, mask, zero_output=False, initial=initial)
        (out,) = fused.outputs
    if initial is not None:
        for (state_in, shape), final in zip(initial, fused.finals, strict=True):
            g.states.append((state_in, final, shape))
    return _Flow(out, flow.mask if layer.return_sequences else None, layer.return_sequences)


def final_state_name(initial: str) -> str:
    """The graph output that gives a stateful layer's final state for its input ``initial``: ``LAYER.h_0`` →
    ``LAYER.h_n`` (the one naming rule; the runner and the caller feed each batch's outputs to the next)."""
    return initial.removesuffix("_0") + "_n"


def _state_inputs(g: _Graph, name: str, layer: RecurrentLayer) -> list[tuple[str, list[Any]]]:
    """A stateful layer's initial states as graph inputs, ``[directions, batch, units]`` each (ONNX's ``initial_h``
    layout): ``LAYER.h_0`` and, for an LSTM, ``LAYER.c_0``; the caller feeds zeros first, then the ``LAYER.h_n`` /
    ``LAYER.c_n`` outputs of the batch before, as Keras carries a stateful layer's states."""
    shape: list[Any] = [layer.directions, g.batch_size or "batch", layer.units]
    states = ["h", "c"] if layer.kind == "lstm" else ["h"]
    return [(f"{name}.{state}_0", shape) for state in states]


def _direction(w: Leaves, prefix: str) -> DirectionWeights:
    return DirectionWeights.of({k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)})


def _onnx_weights(layer: RecurrentLayer, w: DirectionWeights) -> OnnxWeights:
    """``W [gates·units, inputs]``, ``R [gates·units, units]`` and ``B [2·gates·units]`` in ONNX's gate order."""

    def gates(matrix: np.ndarray) -> np.ndarray:  # the kind's ONNX gate order (LSTM i, f, c, o → i, o, f, c)
        return permute_gates(np.asarray(matrix, dtype=np.float32), layer, "onnx", axis=0)

    bias = np.concatenate([gates(w.input_bias), gates(w.recurrent_bias)])
    return gates(w.kernel.T), gates(w.recurrent_kernel.T), bias


@dataclass(frozen=True)
class _Fused:
    """What :func:`_run_fused` gives: per direction, the sequence or the last output; and the final states (with
    ``initial``), ``[directions, batch, units]`` each, in the order of the initial ones."""

    outputs: list[str]
    finals: list[str]


def _run_fused(
    g: _Graph,
    layer: RecurrentLayer,
    tensors: list[OnnxWeights],
    attrs: dict[str, Any],
    x: str,
    mask: _Mask | None,
    *,
    zero_output: bool,
    initial: list[tuple[str, list[Any]]] | None = None,
) -> _Fused:
    """Run the fused op on batch-major ``x``; per direction, the sequence ``[batch, time, units]`` or the last one.

    With a mask, the valid steps are compacted first and the sequences put back at their steps:
    zeros at masked steps with ``zero_output``, else the previous output (zeros before the first). With ``initial``
    (a stateful layer's state inputs) the op starts from them, and a row with no valid step keeps them.
    """
    compaction = None if mask is None else mask.compaction(g)
    if compaction is not None:
        x = _take_steps(g, x, compaction.order)
    lengths = None if compaction is None else compaction.lengths
    states = [name for name, _ in initial] if initial is not None else []
    y, *finals = _fused_node(g, layer, tensors, attrs, x, lengths, states)  # Y, Y_h (and an LSTM's Y_c)
    last = finals[0]  # each row's output after its last valid step
    if states and lengths is not None:  # a fully padded row: Keras keeps its states (the fused op may zero them)
        empty = g.op("Unsqueeze", g.op("Equal", lengths, g.const(0, np.int32)), g.ints(0, 2))
        finals = [g.op("Where", empty, start, final) for start, final in zip(states, finals, strict=True)]
        # and outputs zeros (the output before any valid step), not the states it carries
        last = g.op("Where", empty, g.const(0.0), last)
    directions = [g.const(d, np.int64) for d in range(len(tensors))]
    if not layer.return_sequences:
        return _Fused([g.op("Gather", last, d, axis=0) for d in directions], finals[: len(states)])
    seqs = [g.op("Transpose", g.op("Gather", y, d, axis=1), perm=[1, 0, 2]) for d in directions]
    finals = finals[: len(states)]
    if mask is None or compaction is None:
        return _Fused(seqs, finals)
    weight = g.op("Unsqueeze", mask.keep if zero_output else compaction.seen, g.ints(2))
    return _Fused([g.op("Mul", _take_steps(g, seq, compaction.source), weight) for seq in seqs], finals)


def _fused_node(
    g: _Graph,
    layer: RecurrentLayer,
    tensors: list[OnnxWeights],
    attrs: dict[str, Any],
    x: str,
    lengths: str | None,
    states: list[str] | None = None,
) -> list[str]:
    """The fused node on batch-major ``x``: outputs ``Y [time, directions, batch, units]``, ``Y_h`` and, when
    ``states`` (``initial_h`` and an LSTM's ``initial_c``) are given, an LSTM's ``Y_c``."""
    w, r, b = (g.const(np.stack([t[k] for t in tensors]), hint=leaf) for k, leaf in enumerate(("W", "R", "B")))
    inputs = [g.op("Transpose", x, perm=[1, 0, 2]), w, r, b]
    if lengths is not None or states:
        inputs.append(lengths or "")
    inputs += states or []
    attrs = {**attrs, **FUSED_CELLS.get(layer.kind).attributes(layer)}
    return g.ops(
        layer.onnx_op,
        *inputs,
        outputs=3 if states and layer.kind == "lstm" else 2,
        unused=() if layer.return_sequences else (0,),
        hidden_size=layer.units,
        direction="bidirectional" if len(tensors) == 2 else "forward",
        layout=0,
        **attrs,
    )


def _merge(g: _Graph, mode: str, a: str, b: str) -> str:
    if mode == "concat":
        return g.op("Concat", a, b, axis=-1)
    if mode == "sum":
        return g.op("Add", a, b)
    if mode == "mul":
        return g.op("Mul", a, b)
    return g.op("Mul", g.op("Add", a, b), g.const(0.5))


def _flatten(g: _Graph, name: str, layer: FlattenSpec, w: Leaves, flow: _Flow) -> _Flow:
    """Keras ``Flatten``: ``Flatten`` at axis 1, ``(batch, steps * features)`` in C order; no mask after."""
    return _Flow(g.op("Flatten", flow.h, axis=1), None, False)


BUILDERS.add("masking", _masking)
BUILDERS.add("embedding", _embedding)
BUILDERS.register("dropout", "spatial_dropout")(_identity)
BUILDERS.add("dense", _dense)
BUILDERS.add("layer_norm", _layer_norm)
BUILDERS.add("batch_norm", _batch_norm)
BUILDERS.add("activation", _activation)
BUILDERS.register("max_pool", "average_pool")(_pool)
BUILDERS.add("conv1d", _conv1d)
BUILDERS.add("repeat_vector", _repeat_vector)
BUILDERS.add("flatten", _flatten)
BUILDERS.add("global_max_pool", _global_max_pool)
BUILDERS.add("global_average_pool", _global_average_pool)
BUILDERS.register("simple_rnn", "lstm", "gru")(_recurrent)


# -- the model ------------------------------------------------------------------------------------------


def _model(onnx: ModuleType, spec: ModelSpec, weights: dict[str, np.ndarray], opset: int) -> Any:
    """The ONNX model: input ``x``, the layers of the stack, output ``y``."""
    helper = onnx.helper
    g = _Graph(onnx)
    g.batch_size = spec.input.batch_size
    flow, features = _layers(g, spec, weights)
    g.nodes.append(helper.make_node("Identity", [flow.h], ["y"], name="output/y"))
    state_inputs, state_outputs = [], []
    for state_in, final, shape in g.states:  # a stateful layer's states: in as LAYER.h_0, out as LAYER.h_n
        state_out = final_state_name(state_in)
        g.nodes.append(helper.make_node("Identity", [final], [state_out], name=f"output/{state_out}"))
        state_inputs.append(helper.make_tensor_value_info(state_in, g.float_type, shape))
        state_outputs.append(helper.make_tensor_value_info(state_out, g.float_type, shape))
    tokens = spec.input.vocab_size is not None
    in_shape: list[Any] = ["batch", "time"] if tokens else ["batch", "time", spec.input.features]
    steps = spec.output_steps(None) or "time"  # a repeat_vector's N, else the input's time axis
    out_shape: list[Any] = ["batch", steps, features] if flow.per_step else ["batch", features]
    graph = helper.make_graph(
        g.nodes,
        spec.name,
        [
            helper.make_tensor_value_info("x", onnx.TensorProto.INT64 if tokens else g.float_type, in_shape),
            *state_inputs,
        ],
        [helper.make_tensor_value_info("y", g.float_type, out_shape), *state_outputs],
        g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="rnnspec",
        doc_string=f"rnnspec model {spec.name!r} (convention {spec.convention})",
    )


def _layers(g: _Graph, spec: ModelSpec, weights: dict[str, np.ndarray]) -> tuple[_Flow, int]:
    """Every layer of the stack applied to ``x``: the final flow and its number of features."""
    flow = _Flow("x", None, True)
    shapes = spec.shapes()
    for name, layer, *_ in shapes:
        try:
            builder = BUILDERS.get(layer.kind, name)
        except MissingKindError as exc:
            raise RnnspecError(str(exc)) from None
        g.scope = name
        prefix = f"{name}/"
        leaves = {k[len(prefix) :]: np.asarray(v, dtype=np.float32) for k, v in weights.items() if k.startswith(prefix)}
        flow = builder(g, name, layer, leaves, flow)
    return flow, shapes[-1].features
