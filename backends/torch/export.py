"""``export --format torch``: a spec and its weights as plain PyTorch, loadable without rnnspec.

:func:`export_torch` writes two files side by side:

- ``model.py``: readable module source that imports only torch. It defines ``Model(nn.Module)``,
  whose attributes are named after the spec's layers, so the state-dict keys are PyTorch's own
  (``embedding.weight``, ``lstm.weight_ih_l0``, ``head.bias``...), and a ``load(path)`` helper;
- ``model.safetensors``: that state dict.

Each layer becomes PyTorch's own module where that module computes the spec exactly:
``nn.Embedding``, ``nn.Linear``, ``nn.LayerNorm``, ``nn.Dropout`` / ``nn.Dropout1d``, and ``nn.LSTM`` / ``nn.GRU`` /
``nn.RNN`` (``batch_first``) for a recurrent layer whose input carries no mask and whose cell is one
PyTorch has (LSTM and GRU with tanh and sigmoid, GRU ``reset_after: true``, SimpleRNN with tanh or
relu). Such a layer under a mask is a small class on the same fused op (``torch.lstm``, what nn.LSTM calls),
a subclass of the generated ``MaskedLayer``: Keras's mask semantics, exact for any mask (pre- or post-padding,
holes, fully padded rows), come from moving each row's valid steps to the front and running rows in length buckets
(:data:`_MASKED_SOURCE`), as rnnspec's own module and the ONNX export do. Any other recurrent layer (other
activations, GRU ``reset_after: false``) is written out as a small module class that loops over time with Keras's
mask semantics (those of :func:`rnnspec_backends.numpy._run_direction`), each step's input slice taken once; so is a
``stateful: true`` layer, whose loop starts from the states the previous call left (its ``carried`` attribute,
outside the state dict) and which ``Model.reset_states()`` zeroes.
Both kinds hold their parameters under nn.LSTM's names and layouts (``weight_ih_l0``, ``bias_hh_l0_reverse``...),
so every kind reads and loads alike; the generated file's docstring names each layer's path.

Canonical (Keras) weights map to PyTorch as ``weight_ih = kernel.T``, ``weight_hh =
recurrent_kernel.T``; LSTM gates i, f, c, o are PyTorch's i, f, g, o; GRU gates z, r, h become
PyTorch's r, z, n (the first two blocks swap, in weights and biases); a keras-convention single
bias is ``bias_ih`` with ``bias_hh = 0``. The generated code resolves every activation when it is
written (no lookups by name at run time), so ``torch.jit.script`` and ``torch.export.export`` take
the model as it is.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from rnnspec.core.emit import py_docstring, py_identifier, py_literal, unique
from rnnspec.core.kinds import KindRegistry, MissingKindError
from rnnspec.core.weights import check_weights, permute_gates
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.layers import (
    ActivationSpec,
    AveragePoolSpec,
    BatchNormSpec,
    Conv1DSpec,
    DenseSpec,
    DropoutSpec,
    EmbeddingSpec,
    FlattenSpec,
    GlobalAveragePoolSpec,
    GlobalMaxPoolSpec,
    GRUSpec,
    LayerNormSpec,
    LSTMSpec,
    MaskingSpec,
    MaxPoolSpec,
    RecurrentLayer,
    RepeatVectorSpec,
    SimpleRNNSpec,
    SpatialDropoutSpec,
)
from rnnspec.lang.spec import ModelSpec
from rnnspec.util import write_bytes_atomic

__all__ = ["CELL_CODE", "LAYER_CODE", "CellCode", "export_torch"]

Array = np.ndarray

# -- activations, resolved into code when the module is written -------------------------------------

_ACTIVATION_CODE: dict[str, str] = {
    "linear": "{}",
    "tanh": "torch.tanh({})",
    "sigmoid": "torch.sigmoid({})",
    "hard_sigmoid": "hard_sigmoid({})",
    "relu": "torch.relu({})",
    "elu": "F.elu({})",
    "selu": "torch.selu({})",
    "gelu": "F.gelu({})",
    "softplus": "F.softplus({})",
    "softsign": "F.softsign({})",
    "swish": "F.silu({})",
    "exponential": "torch.exp({})",
    "softmax": "torch.softmax({}, dim=-1)",
    "log_softmax": "torch.log_softmax({}, dim=-1)",
}
"""Keras's activations as PyTorch expressions (gelu: the exact, erf form, PyTorch's default)."""

_HARD_SIGMOID_SOURCE = '''
def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 3's hard sigmoid: ``clip(x / 6 + 0.5, 0, 1)``."""
    return torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)
'''


_MASKED_SOURCE = '''
def take_steps(x: torch.Tensor, rows: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """``x[rows[:, None], steps]`` of ``x`` (batch, time, features), ``steps`` (n, m): one index_select of whole
    feature vectors (advanced indexing copies element by element, slower on a CPU, and so is its backward)."""
    flat = (rows.unsqueeze(1) * x.size(1) + steps).reshape(-1)
    return x.reshape(-1, x.size(2)).index_select(0, flat).view(steps.size(0), steps.size(1), x.size(2))


@torch.jit.unused
def exporting() -> bool:
    """Whether torch.export is tracing the model (its shapes must not depend on the mask's values)."""
    return torch.compiler.is_exporting()


class MaskedLayer(nn.Module):
    """A recurrent layer under Keras's mask on PyTorch's fused kernel (the base of the ``...Masked`` classes).

    Keras's mask semantics: a masked step keeps the state and outputs the previous output (zeros before the
    first valid step), or zeros in a Bidirectional layer's sequences. A cell so only ever sees its row's valid
    steps, in time order: each row's valid steps are moved to the front (padding before or after them and holes
    between them alike), the fused kernel runs them, and the output at step t is the one after the row's c(t)-th
    valid step (c(t): the valid steps up to and including t). The rows run longest first in at most 8 length
    buckets, each bucket only the rows still running, from the states the bucket before left: a batch pays for
    the steps its rows have, not batch x time. Under torch.export (shapes fixed before the data is seen) every
    row runs every step instead; the outputs are the same.
    """

    def __init__(self, units: int) -> None:
        super().__init__()
        self.units = units

    def kernel(
        self, x: torch.Tensor, states: list[torch.Tensor], params: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fused op on ``x`` (batch first) from ``states`` (zeros when empty): outputs and final states."""
        raise NotImplementedError

    def run(
        self, x: torch.Tensor, mask: torch.Tensor, params: list[torch.Tensor], last: bool, zero_output: bool
    ) -> torch.Tensor:
        """One direction over ``x`` in processing order: the outputs (batch, time, units), or with ``last`` the
        last one (batch, units); masked steps output zeros with ``zero_output``."""
        batch = x.size(0)
        if x.size(1) == 0:
            return x.new_zeros([batch, self.units]) if last else x.new_zeros([batch, 0, self.units])
        lengths = mask.sum(dim=1)
        steps = torch.argsort((~mask).to(torch.int32), dim=1, stable=True)  # valid steps first, in time order
        if torch.jit.is_scripting() or not exporting():
            y, rows = self.bucketed(x, steps, lengths, params, last)
        else:  # every row runs every step: no shape depends on the mask's values
            compact = x.gather(1, steps.unsqueeze(2).expand(-1, -1, x.size(2)))
            y = self.kernel(compact, [], params)[0]
            rows = torch.arange(batch, device=x.device)
            if last:  # the output after the last valid step; zeros for a fully padded row
                at = (lengths - 1).clamp(min=0)
                y = y[rows, at] * (lengths > 0).unsqueeze(1).to(y.dtype)
        if last:
            return y[rows]
        count = mask.cumsum(dim=1)  # c(t)
        out = take_steps(y, rows, (count - 1).clamp(min=0))
        keep = mask if zero_output else count > 0
        return out * keep.unsqueeze(2).to(out.dtype)

    def bucketed(
        self, x: torch.Tensor, steps: torch.Tensor, lengths: torch.Tensor, params: list[torch.Tensor], last: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The compact outputs of the rows sorted longest first (batch, longest, units), zeros after each row's
        end; with ``last`` each row's last output (batch, units). Also each row's place in that order."""
        batch = x.size(0)
        order = torch.argsort(lengths, descending=True, stable=True)
        rows = torch.empty_like(order)
        rows[order] = torch.arange(batch, device=x.device)
        sizes: list[int] = lengths[order].tolist()
        longest = sizes[0]
        if longest == 0:  # every row fully masked
            return (x.new_zeros([batch, self.units]) if last else x.new_zeros([batch, 1, self.units])), rows
        compact = take_steps(x, order, steps[order, :longest])  # (batch, longest, features), longest first
        bounds = [0]
        for k in range(7, 0, -1):  # cut where the number of running rows drops
            cut = sizes[k * batch // 8]
            if cut > bounds[-1] and cut < longest:
                bounds.append(cut)
        bounds.append(longest)
        states: list[torch.Tensor] = []
        pieces: list[torch.Tensor] = []
        active = batch
        for i in range(len(bounds) - 1):
            t0, t1 = bounds[i], bounds[i + 1]
            while sizes[active - 1] <= t0:  # the rows that ended before this bucket
                active -= 1
            states = [s[:, :active].contiguous() for s in states]
            y, states = self.kernel(compact[:active, t0:t1], states, params)
            if last:  # the rows that end in this bucket: their last output is here
                ending = active
                while ending > 0 and sizes[ending - 1] <= t1:
                    ending -= 1
                if active > ending:
                    at = torch.tensor(sizes[ending:active], device=x.device) - 1 - t0
                    pieces.insert(0, y[torch.arange(ending, active, device=x.device), at])
            else:
                pieces.append(F.pad(y, [0, 0, 0, 0, 0, batch - active]))
        if last:  # rows of length 0 (sorted last) output zeros
            finals = torch.cat(pieces, dim=0)
            return F.pad(finals, [0, 0, 0, batch - finals.size(0)]), rows
        return torch.cat(pieces, dim=1), rows
'''


def _act(name: str, expr: str) -> str:
    """The PyTorch expression of activation ``name`` applied to ``expr``."""
    return _ACTIVATION_CODE[name].format(expr)


# -- names ----------------------------------------------------------------------------------------------

_RESERVED = set(dir(nn.Module())) | set(dir(nn.Module))
"""Attribute names a layer must not take (``forward``, ``training``, ``eval``...)."""


def _identifiers(names: list[str]) -> list[str]:
    """Python identifiers for the layer names, unique, clear of nn.Module's attributes, never mangled
    (:func:`rnnspec.core.emit.py_identifier`)."""
    out: list[str] = []
    for name in names:
        out.append(py_identifier(name, out, reserved=_RESERVED))
    return out


def _class_names(idents: list[str]) -> list[str]:
    """``lstm_1`` → ``Lstm1Steps``: the names of the written-out classes, unique."""
    out: list[str] = []
    for ident in idents:
        out.append(unique("".join(part[:1].upper() + part[1:] for part in ident.split("_") if part) + "Steps", out))
    return out


def _float(value: float) -> str:
    """A Python literal for ``value`` (``float("inf")`` where repr is not one)."""
    return py_literal(float(value))


# -- the weights: canonical (Keras layout) → PyTorch layout ---------------------------------------------


def _direction_state(layer: RecurrentLayer, w: dict[str, Array]) -> dict[str, Array]:
    """One direction's canonical weights as PyTorch's ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]
    bias = w.get("bias")
    biases: tuple[Array, Array] | None = None
    if bias is not None and bias.ndim == 2:  # reset-after GRU: rows input, recurrent
        biases = (bias[0], bias[1])
    elif bias is not None:
        biases = (bias, w.get("recurrent_bias", np.zeros_like(bias)))
    kernel, recurrent = permute_gates(kernel, layer, "torch"), permute_gates(recurrent, layer, "torch")
    if biases is not None:  # the kind's gate order (GRU: z, r, h → r, z, n)
        biases = (permute_gates(biases[0], layer, "torch"), permute_gates(biases[1], layer, "torch"))
    out = {"weight_ih": kernel.T, "weight_hh": recurrent.T}
    if biases is not None:
        out["bias_ih"], out["bias_hh"] = biases
    return out


def _recurrent_state(layer: RecurrentLayer, w: dict[str, Array]) -> dict[str, Array]:
    """A recurrent layer's parameters under nn.LSTM's names (``weight_ih_l0``, ``..._l0_reverse``)."""
    if not layer.bidirectional:
        return {f"{k}_l0": v for k, v in _direction_state(layer, w).items()}
    out: dict[str, Array] = {}
    for tag, suffix in (("forward/", "_l0"), ("backward/", "_l0_reverse")):
        leaves = {k[len(tag) :]: v for k, v in w.items() if k.startswith(tag)}
        out.update({f"{k}{suffix}": v for k, v in _direction_state(layer, leaves).items()})
    return out


# -- generated code, one layer at a time ----------------------------------------------------------------


@dataclass
class _Code:
    """What one layer adds to the generated file."""

    init: list[str] = field(default_factory=list)
    """Lines of ``Model.__init__``."""
    forward: list[str] = field(default_factory=list)
    """Lines of ``Model.forward`` (the running tensor is ``h``, the mask ``mask``)."""
    classes: list[str] = field(default_factory=list)
    """Module-level source (a written-out recurrent class)."""
    state: dict[str, Array] = field(default_factory=dict)
    """State-dict entries without the attribute prefix."""
    doc: str = ""
    """One line of the header's layer table."""
    stateful: bool = False
    """Whether the layer's module carries states from batch to batch (it has ``reset_states()``)."""


@dataclass(frozen=True)
class _Context:
    """Where a layer sits: its attribute name, input features and whether a mask reaches it."""

    ident: str
    cls: str
    """The class name, should the layer be written out."""
    inputs: int
    masked: bool


LAYER_CODE = KindRegistry("torch export", "code emitter", owner="the PyTorch export")
"""Layer kind → ``fn(layer, context, canonical weights by leaf) -> _Code``: what the layer adds to the generated
module. Register with ``@LAYER_CODE.register("kind")``; a kind the export cannot write is declared with
``LAYER_CODE.refuse("kind", "reason")``."""


@dataclass(frozen=True)
class CellCode:
    """How one recurrent cell kind is written out step by step (and whether PyTorch's module computes it)."""

    step_lines: Callable[[Any, bool, bool], list[str]]
    """``fn(layer, masked, bias) -> lines`` of one time step in PyTorch's gate order (see :func:`_step_lines`)."""
    native: Callable[[Any], bool]
    """Whether ``nn.<torch_class>`` computes an unmasked layer of this kind exactly."""
    states: int = 1
    """State tensors of the step (h; h and c for an LSTM)."""
    kernel: Callable[[Any, bool], str] | None = None
    """``fn(layer, bias) -> expression``: PyTorch's fused op (the one ``nn.<torch_class>`` calls) on ``x`` from
    ``states`` with ``params``, batch first; its outputs, then its final states. None: the cell has none."""
    setup: Callable[[Any, bool], list[str]] = lambda layer, bias: []
    """``fn(layer, bias) -> lines`` run once before the loop (slices of the weights the steps use: a slice taken
    in every step would give every step's backward a weight-sized zero tensor)."""


CELL_CODE = KindRegistry("torch export", "cell code", owner="the PyTorch export")
"""Recurrent cell kind → :class:`CellCode` (cells also register :func:`_recurrent_code` in :data:`LAYER_CODE`)."""


def _merge(mode: str, a: str, b: str) -> str:
    if mode == "concat":
        return f"torch.cat([{a}, {b}], dim=-1)"
    if mode == "sum":
        return f"{a} + {b}"
    if mode == "mul":
        return f"{a} * {b}"
    return f"({a} + {b}) / 2.0"


@LAYER_CODE.register("masking")
def _masking_code(layer: MaskingSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    value = _float(layer.mask_value)
    return _Code(
        forward=[
            f"mask = (h != {value}).any(dim=-1)  # Keras Masking: a step whose features all equal {value} is padding",
            "h = torch.where(mask.unsqueeze(-1), h, torch.zeros_like(h))",
        ],
        doc=f"(no module) Keras Masking({value}) in forward(): padding steps are set to 0 and masked",
    )


@LAYER_CODE.register("embedding")
def _embedding_code(layer: EmbeddingSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    forward = [f"h = self.{ctx.ident}(h)"]
    pad = layer.mask_id
    if pad is not None:
        forward.insert(0, f"mask = h != {pad}  # id {pad} is padding (Keras mask_zero; padding_idx)")
    return _Code(
        init=[f"self.{ctx.ident} = nn.Embedding({ctx.inputs}, {layer.output_dim})"],
        forward=forward,
        state={"weight": w["embeddings"]},
        doc=f"nn.Embedding({ctx.inputs}, {layer.output_dim})"
        + (f"; id {pad} is padding (masked)" if pad is not None else ""),
    )


@LAYER_CODE.register("dropout")
def _dropout_code(layer: DropoutSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    return _Code(
        init=[f"self.{ctx.ident} = nn.Dropout({_float(layer.dropout)})"],
        forward=[f"h = self.{ctx.ident}(h)"],
        doc=f"nn.Dropout({_float(layer.dropout)})",
    )


@LAYER_CODE.register("spatial_dropout")
def _spatial_dropout_code(layer: SpatialDropoutSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    rate = _float(layer.spatial_dropout)
    return _Code(
        init=[f"self.{ctx.ident} = nn.Dropout1d({rate})"],
        forward=[f"h = self.{ctx.ident}(h.transpose(1, 2)).transpose(1, 2)  # whole channels, as SpatialDropout1D"],
        doc=f"nn.Dropout1d({rate}) over (batch, features, time): Keras SpatialDropout1D",
    )


@LAYER_CODE.register("dense")
def _dense_code(layer: DenseSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    state = {"weight": w["kernel"].T}
    if layer.use_bias:
        state["bias"] = w["bias"]
    bias = "" if layer.use_bias else ", bias=False"
    return _Code(
        init=[f"self.{ctx.ident} = nn.Linear({ctx.inputs}, {layer.units}{bias})"],
        forward=[f"h = {_act(layer.activation, f'self.{ctx.ident}(h)')}"],
        state=state,
        doc=f"nn.Linear({ctx.inputs}, {layer.units}{bias}), activation {layer.activation}",
    )


@LAYER_CODE.register("layer_norm")
def _layer_norm_code(layer: LayerNormSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """``nn.LayerNorm`` with Keras's epsilon (weight = gamma, bias = beta). Keras's ``center`` without ``scale``
    has no nn.LayerNorm form (its bias needs its weight): a small module then calls ``F.layer_norm`` with the bias."""
    eps, n = _float(layer.epsilon), ctx.inputs
    if layer.scale or not layer.center:
        options = f", eps={eps}" + ("" if layer.scale else ", elementwise_affine=False")
        options += "" if layer.center or not layer.scale else ", bias=False"
        state = {"weight": w["gamma"]} if layer.scale else {}
        state |= {"bias": w["beta"]} if layer.center else {}
        return _Code(
            init=[f"self.{ctx.ident} = nn.LayerNorm({n}{options})"],
            forward=[f"h = self.{ctx.ident}(h)"],
            state=state,
            doc=f"nn.LayerNorm({n}{options}): Keras LayerNormalization over the features",
        )
    source = f'''
class {ctx.cls}(nn.Module):
    """Keras LayerNormalization(scale=False): an offset without a scale, which nn.LayerNorm cannot hold."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros({n}))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(h, [{n}], None, self.bias, {eps})
'''
    return _Code(
        init=[f"self.{ctx.ident} = {ctx.cls}()"],
        forward=[f"h = self.{ctx.ident}(h)"],
        classes=[source],
        state={"bias": w["beta"]},
        doc=f"{ctx.cls}: F.layer_norm({n} features, eps={eps}) plus a bias (Keras LayerNormalization, scale off)",
    )


@LAYER_CODE.register("batch_norm")
def _batch_norm_code(layer: BatchNormSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """``nn.BatchNorm1d`` with Keras's epsilon and ``momentum = 1 - Keras's momentum`` (weight = gamma, bias = beta,
    running_mean / running_var = the moving statistics) over the channels of ``(batch, features, time)``: exact at
    inference (eval mode). Keras's ``center`` without ``scale`` (or the reverse) has no nn.BatchNorm1d form: a small
    module then calls ``F.batch_norm`` with what it has, always with the running statistics."""
    eps, n, momentum = _float(layer.epsilon), ctx.inputs, _float(round(1.0 - layer.momentum, 12))
    stats = {"running_mean": w["moving_mean"], "running_var": w["moving_variance"]}
    call = f"self.{ctx.ident}(h.transpose(1, 2)).transpose(1, 2) if h.dim() == 3 else self.{ctx.ident}(h)"
    note = "# Keras BatchNormalization at inference (eval mode): PyTorch's training updates running_var with the "
    note += "unbiased variance and ignores masks; Keras's with the biased variance over the valid steps"
    if layer.scale == layer.center:
        options = f", eps={eps}, momentum={momentum}" + ("" if layer.scale else ", affine=False")
        state = {"weight": w["gamma"], "bias": w["beta"]} if layer.scale else {}
        return _Code(
            init=[f"self.{ctx.ident} = nn.BatchNorm1d({n}{options})"],
            forward=[note, f"h = {call}"],
            state={**state, **stats, "num_batches_tracked": np.array(0, dtype=np.int64)},
            doc=f"nn.BatchNorm1d({n}{options}): Keras BatchNormalization over the features (eval mode)",
        )
    leaf, attr = ("gamma", "weight") if layer.scale else ("beta", "bias")
    source = f'''
class {ctx.cls}(nn.Module):
    """Keras BatchNormalization(center={layer.center}, scale={layer.scale}) at inference: the running statistics,
    and only the {attr} (nn.BatchNorm1d holds both or neither)."""

    def __init__(self) -> None:
        super().__init__()
        self.{attr} = nn.Parameter(torch.{"ones" if layer.scale else "zeros"}({n}))
        self.register_buffer("running_mean", torch.zeros({n}))
        self.register_buffer("running_var", torch.ones({n}))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(h, self.running_mean, self.running_var, {"self.weight" if attr == "weight" else "None"},
                            {"self.bias" if attr == "bias" else "None"}, False, 0.0, {eps})
'''
    return _Code(
        init=[f"self.{ctx.ident} = {ctx.cls}()"],
        forward=[note, f"h = {call}"],
        classes=[source],
        state={attr: w[leaf], **stats},
        doc=f"{ctx.cls}: F.batch_norm({n} features, eps={eps}) with the running statistics (Keras "
        f"BatchNormalization, {'center' if layer.center else 'scale'} off)",
    )


@LAYER_CODE.register("activation")
def _activation_code(layer: ActivationSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """Keras ``Activation``: the activation as an expression of the forward (no module, no weights)."""
    return _Code(
        forward=[f"h = {_act(layer.activation, 'h')}  # Keras Activation({layer.activation!r})"],
        doc=f"(no module) Keras Activation({layer.activation!r}) in forward()",
    )


@LAYER_CODE.register("global_max_pool")
def _global_max_pool_code(layer: GlobalMaxPoolSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """Keras ``GlobalMaxPooling1D``: the max over every step (Keras ignores the mask)."""
    keep = ", keepdim=True" if layer.keepdims else ""
    return _Code(
        forward=[f"h = h.amax(dim=1{keep})  # Keras GlobalMaxPooling1D: every step, padded ones included"],
        doc="(no module) Keras GlobalMaxPooling1D in forward(): the max over every step",
    )


@LAYER_CODE.register("global_average_pool")
def _global_average_pool_code(layer: GlobalAveragePoolSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """Keras ``GlobalAveragePooling1D``: the mean over the valid steps (0/0, NaN, on a fully padded row)."""
    keep = ", keepdim=True" if layer.keepdims else ""
    if not ctx.masked:
        forward = [f"h = h.mean(dim=1{keep})  # Keras GlobalAveragePooling1D"]
    else:
        forward = [
            "# Keras GlobalAveragePooling1D: the mean over the valid steps (a fully padded row is 0/0: NaN)",
            f"h = torch.where(mask.unsqueeze(-1), h, torch.zeros_like(h)).sum(dim=1{keep}) "
            f"/ mask.unsqueeze(-1).to(h.dtype).sum(dim=1{keep})",
        ]
    return _Code(
        forward=forward,
        doc="(no module) Keras GlobalAveragePooling1D in forward(): the mean over the "
        + ("valid steps" if ctx.masked else "steps"),
    )


@LAYER_CODE.register("repeat_vector")
def _repeat_vector_code(layer: RepeatVectorSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """Keras ``RepeatVector(n)``: the last output repeated ``n`` times; no mask after it (Keras drops it)."""
    n = layer.repeat_vector
    return _Code(
        forward=[
            f"h = h.unsqueeze(1).repeat(1, {n}, 1)  # Keras RepeatVector({n}): (batch, features) -> (batch, {n}, ...)"
        ],
        doc=f"(no module) Keras RepeatVector({n}) in forward(): the vector at each of {n} steps",
    )


@LAYER_CODE.register("flatten")
def _flatten_code(layer: FlattenSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """Keras ``Flatten``: every step's features in one vector per sample (C order, as ``torch.flatten``)."""
    return _Code(
        forward=["h = h.flatten(1)  # Keras Flatten: (batch, steps, features) -> (batch, steps * features)"],
        doc="(no module) Keras Flatten in forward(): the steps' features side by side",
    )


@LAYER_CODE.register("max_pool", "average_pool")
def _pool_code(layer: MaxPoolSpec | AveragePoolSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """Keras ``MaxPooling1D`` / ``AveragePooling1D`` as expressions of the forward over ``(batch, features, time)``;
    ``same`` padding as Keras pads (the extra step on the right, computed from the length): -inf for a max, and an
    average divided by the window's real steps. No mask after it (Keras drops it)."""
    k, s = layer.pool_size, layer.strides
    fn = "F.max_pool1d" if layer.kind == "max_pool" else "F.avg_pool1d"
    label = f"Keras {layer.keras_class}({k}, strides={s}, padding={layer.padding!r})"
    if layer.padding == "valid":
        forward = [f"h = {fn}(h.transpose(1, 2), {k}, {s}).transpose(1, 2)  # {label}"]
    else:
        forward = [
            f"t = h.size(1)  # {label}: the extra padding step on the right",
            f"pad = max((t + {s - 1}) // {s} * {s} - {s} + {k} - t, 0)",
            "x = h.transpose(1, 2)",
        ]
        if layer.kind == "max_pool":
            forward.append(f"h = {fn}(F.pad(x, [pad // 2, pad - pad // 2], value=float('-inf')), {k}, {s})")
        else:
            forward += [
                "ones = F.pad(torch.ones_like(x[:1, :1]), [pad // 2, pad - pad // 2])",
                f"h = {fn}(F.pad(x, [pad // 2, pad - pad // 2]), {k}, {s}) / {fn}(ones, {k}, {s})  # real steps",
            ]
        forward.append("h = h.transpose(1, 2)")
    return _Code(forward=forward, doc=f"(no module) {label} in forward()")


@LAYER_CODE.register("conv1d")
def _conv1d_code(layer: Conv1DSpec, ctx: _Context, w: dict[str, Array]) -> _Code:
    """Keras ``Conv1D`` as ``nn.Conv1d`` (weight = the kernel's ``(2, 1, 0)`` transpose) over ``(batch, features,
    time)``, zero-padded as Keras pads: ``same`` computed from the length (the extra step on the right), ``causal``
    on the left. No mask after it (Keras drops it)."""
    k, s, d, span = layer.kernel_size, layer.strides, layer.dilation_rate, layer.span
    options = (f", stride={s}" if s != 1 else "") + (f", dilation={d}" if d != 1 else "")
    options += "" if layer.use_bias else ", bias=False"
    state = {"weight": np.ascontiguousarray(w["kernel"].transpose(2, 1, 0))}
    if layer.use_bias:
        state["bias"] = w["bias"]
    label = f"Keras Conv1D({layer.filters}, {k}, padding={layer.padding!r})"
    forward = ["x = h.transpose(1, 2)"]
    if layer.padding == "same":
        forward += [
            f"t = h.size(1)  # {label}: the extra padding step on the right",
            f"pad = max((t + {s - 1}) // {s} * {s} - {s} + {span} - t, 0)",
            "x = F.pad(x, [pad // 2, pad - pad // 2])",
        ]
    elif layer.padding == "causal":
        forward.append(f"x = F.pad(x, [{span - 1}, 0])  # {label}: step t sees steps up to t")
    forward.append(f"h = {_act(layer.activation, f'self.{ctx.ident}(x).transpose(1, 2)')}")
    return _Code(
        init=[f"self.{ctx.ident} = nn.Conv1d({ctx.inputs}, {layer.filters}, {k}{options})"],
        forward=forward,
        state=state,
        doc=f"nn.Conv1d({ctx.inputs}, {layer.filters}, {k}{options}) over (batch, features, time), padding "
        f"{layer.padding!r} as Keras, activation {layer.activation}",
    )


def _describe(layer: RecurrentLayer) -> str:
    """``bidirectional LSTM(4, activation tanh, ...)``: the spec's recurrent layer in words."""
    parts = [f"{layer.units}", f"activation {layer.activation}"]
    fields = type(layer).model_fields
    if "recurrent_activation" in fields:
        parts.append(f"recurrent_activation {layer.recurrent_activation}")
    if "reset_after" in fields:
        parts.append(f"reset_after {str(layer.reset_after).lower()}")
    if not layer.use_bias:
        parts.append("no bias")
    text = f"{layer.keras_class}({', '.join(parts)})"
    if layer.bidirectional:
        text = f"bidirectional {text}, merge {layer.merge_mode}"
    if layer.go_backwards:
        text += ", go_backwards"
    return text + (", returns sequences" if layer.return_sequences else ", returns the last step")


def _fusable(layer: RecurrentLayer) -> bool:
    """Whether nn.LSTM / nn.GRU / nn.RNN's op computes ``layer``'s cell exactly (the cell kind's :class:`CellCode`
    says): then an unmasked layer is that module, and a masked one a :class:`MaskedLayer` on that op."""
    code = CELL_CODE.get(layer.kind)
    return layer.torch_class is not None and code.kernel is not None and code.native(layer)


def _simple_rnn_native(layer: SimpleRNNSpec) -> bool:
    return layer.activation in ("tanh", "relu")


def _gated_native(layer: LSTMSpec | GRUSpec) -> bool:
    standard = layer.activation == "tanh" and layer.recurrent_activation == "sigmoid"
    return standard and getattr(layer, "reset_after", True)


def _native_code(layer: RecurrentLayer, ctx: _Context, w: dict[str, Array]) -> _Code:
    """nn.LSTM / nn.GRU / nn.RNN, batch_first, and the lines that pick Keras's outputs from theirs."""
    u, attr = layer.units, f"self.{ctx.ident}"
    options = ", batch_first=True"
    options += ", bidirectional=True" if layer.bidirectional else ""
    options += "" if layer.use_bias else ", bias=False"
    options += ', nonlinearity="relu"' if isinstance(layer, SimpleRNNSpec) and layer.activation == "relu" else ""
    module = f"nn.{layer.torch_class}({ctx.inputs}, {u}{options})"
    if layer.bidirectional:
        forward = [f"h, _ = {attr}(h)  # forward outputs, then the backward ones (aligned with the input)"]
        if layer.return_sequences:
            if layer.merge_mode != "concat":
                forward.append(f"h = {_merge(layer.merge_mode, f'h[:, :, :{u}]', f'h[:, :, {u}:]')}")
        else:
            forward.append("# the forward direction's last step; the backward direction's state after the whole input")
            forward.append(f"h = {_merge(layer.merge_mode, f'h[:, -1, :{u}]', f'h[:, 0, {u}:]')}")
    else:
        if layer.go_backwards:
            forward = [f"h, _ = {attr}(torch.flip(h, [1]))  # go_backwards: outputs stay in processing order"]
        else:
            forward = [f"h, _ = {attr}(h)"]
        if not layer.return_sequences:
            forward.append("h = h[:, -1]")
    return _Code(
        init=[f"self.{ctx.ident} = {module}"],
        forward=forward,
        state=_recurrent_state(layer, w),
        doc=f"{module}: {_describe(layer)}",
    )


def _written_out_code(layer: RecurrentLayer, ctx: _Context, w: dict[str, Array]) -> _Code:
    """A generated step-by-step class (see :func:`_steps_class`) and the line that calls it."""
    cls = ctx.cls
    call = f"h = self.{ctx.ident}(h, mask)" if ctx.masked else f"h = self.{ctx.ident}(h)"
    why = (
        "stateful: it carries its states"
        if layer.stateful
        else "a mask reaches it"
        if ctx.masked
        else "PyTorch has no module for this cell"
    )
    state = _recurrent_state(layer, w)
    return _Code(
        init=[f"self.{ctx.ident} = {cls}()"],
        forward=[call],
        classes=[_steps_class(cls, layer, ctx, {k: v.shape for k, v in state.items()})],
        state=state,
        doc=f"{cls}: {_describe(layer)}; written out step by step ({why})",
        stateful=bool(layer.stateful),
    )


def _masked_class(cls: str, layer: RecurrentLayer, shapes: dict[str, tuple[int, ...]]) -> str:
    """Source of a :class:`MaskedLayer` subclass: the layer's parameters, its fused op and its directions."""
    code, u, torch_class = CELL_CODE.get(layer.kind), layer.units, layer.torch_class
    assert code.kernel is not None
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if layer.use_bias else [])
    params = [
        f"self.{name} = nn.Parameter(torch.zeros({', '.join(map(str, shape))}))" for name, shape in shapes.items()
    ]
    lstm = code.states == 2
    zeros = "[zeros, zeros]" if lstm else "[zeros]"

    def direction(suffix: str) -> str:
        return "[" + ", ".join(f"self.{name}{suffix}" for name in names) + "]"

    last = str(not layer.return_sequences)
    zero = str(layer.bidirectional and layer.return_sequences)
    flipped = "torch.flip(x, [1]), torch.flip(mask, [1])"
    if not layer.bidirectional:
        source = flipped if layer.go_backwards else "x, mask"
        forward = [f"return self.run({source}, {direction('_l0')}, {last}, False)"]
        if layer.go_backwards:
            forward.insert(0, "# go_backwards: the reversed sequence; outputs stay in processing order")
    else:
        forward = [
            f"fwd = self.run(x, mask, {direction('_l0')}, {last}, {zero})",
            f"bwd = self.run({flipped}, {direction('_l0_reverse')}, {last}, {zero})",
        ]
        if layer.return_sequences:
            forward.append("bwd = torch.flip(bwd, [1])  # back in input order")
        forward.append(f"return {_merge(layer.merge_mode, 'fwd', 'bwd')}")
    mask_doc = (
        "zeros (Keras's Bidirectional)"
        if layer.bidirectional and layer.return_sequences
        else "the previous step's (zeros before the first valid step)"
    )
    about = f"Keras {_describe(layer)}, under a mask, on nn.{torch_class}'s fused op (see MaskedLayer)."
    more = (
        f"Parameters are named and laid out as nn.{torch_class}'s (``weight_ih_l0`` is ``kernel.T``...). "
        f"At a masked step the state is kept and the output is {mask_doc}."
    )
    body = [
        *_wrap('"""' + about, ""),
        "",
        *_wrap(more + '\n"""', ""),
        "",
        "def __init__(self) -> None:",
        f"    super().__init__({u})",
        *[f"    {p}" for p in params],
        "",
        "def kernel(",
        "    self, x: torch.Tensor, states: list[torch.Tensor], params: list[torch.Tensor]",
        ") -> tuple[torch.Tensor, list[torch.Tensor]]:",
        f'    """nn.{torch_class}\'s op on ``x`` from ``states`` ({"h, c" if lstm else "h"}; zeros when empty)."""',
        "    if len(states) == 0:",
        f"        zeros = x.new_zeros([1, x.size(0), {u}])",
        f"        states = {zeros}",
        f"    {'y, h, c' if lstm else 'y, h'} = {code.kernel(layer, layer.use_bias)}",
        f"    return y, {'[h, c]' if lstm else '[h]'}",
        "",
        "def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:",
        *[f"    {line}" for line in forward],
    ]
    return f"class {cls}(MaskedLayer):\n" + "\n".join(f"    {line}" if line else "" for line in body) + "\n"


def _masked_code(layer: RecurrentLayer, ctx: _Context, w: dict[str, Array]) -> _Code:
    """A masked layer PyTorch's fused op computes: a :class:`MaskedLayer` subclass and the line that calls it."""
    cls = ctx.cls.removesuffix("Steps") + "Masked"  # unique as the Steps names are, and unlike any of them
    state = _recurrent_state(layer, w)
    return _Code(
        init=[f"self.{ctx.ident} = {cls}()"],
        forward=[f"h = self.{ctx.ident}(h, mask)"],
        classes=[_masked_class(cls, layer, {k: v.shape for k, v in state.items()})],
        state=state,
        doc=f"{cls}: {_describe(layer)}; nn.{layer.torch_class}'s fused op on each row's valid steps (masked: "
        "MaskedLayer)",
    )


@LAYER_CODE.register("simple_rnn", "lstm", "gru")
def _recurrent_code(layer: RecurrentLayer, ctx: _Context, w: dict[str, Array]) -> _Code:
    """PyTorch's own module where it computes the layer; under a mask, a :class:`MaskedLayer` on that module's
    fused op; else (a cell PyTorch has no op for) a written-out class (the cell's :class:`CellCode` says)."""
    if not _fusable(layer) or layer.stateful:  # a stateful layer carries its states in its written-out loop
        return _written_out_code(layer, ctx, w)
    return (_masked_code if ctx.masked else _native_code)(layer, ctx, w)


# -- the written-out recurrent class ---------------------------------------------------------------------


def _step_lines(layer: RecurrentLayer, masked: bool, bias: bool) -> list[str]:
    """One time step in PyTorch's gate order; the new state goes to ``h_new``/``c_new`` (masked) or ``h``/``c``."""
    return CELL_CODE.get(layer.kind).step_lines(layer, masked, bias)


def _blocks(u: int) -> Callable[[int], str]:
    """``block(k)``: the slice of gate block ``k`` of ``u`` units (``"4:8"``)."""
    return lambda k: f"{k * u}:{(k + 1) * u}"


def _lstm_step(layer: LSTMSpec, masked: bool, bias: bool) -> list[str]:
    act, gate, block = layer.activation, layer.recurrent_activation, _blocks(layer.units)
    h_out, c_out = ("h_new", "c_new") if masked else ("h", "c")
    b_hh = ", bias_hh" if bias else ""
    return [
        f"z = xt + F.linear(h, weight_hh{b_hh})  # gates i, f, g, o",
        f"i = {_act(gate, f'z[:, {block(0)}]')}",
        f"f = {_act(gate, f'z[:, {block(1)}]')}",
        f"g = {_act(act, f'z[:, {block(2)}]')}",
        f"o = {_act(gate, f'z[:, {block(3)}]')}",
        f"{c_out} = f * c + i * g",
        f"{h_out} = o * {_act(act, c_out)}",
    ]


def _gru_step(layer: GRUSpec, masked: bool, bias: bool) -> list[str]:
    act, gate, block = layer.activation, layer.recurrent_activation, _blocks(layer.units)
    h_out, b_hh = ("h_new" if masked else "h"), (", bias_hh" if bias else "")
    lines: list[str] = []  # xt: the input side, gates r, z, n
    if layer.reset_after:
        lines.append(f"hw = F.linear(h, weight_hh{b_hh})")
        candidate = f"xt[:, {block(2)}] + r * hw[:, {block(2)}]"
    else:  # Keras's reset_after false: the reset gate applies before the recurrent matmul (blocks: _gru_setup)
        lines.append(f"hw = F.linear(h, weight_hh_rz{', bias_hh_rz' if bias else ''})")
        candidate = f"xt[:, {block(2)}] + F.linear(r * h, weight_hh_n{', bias_hh_n' if bias else ''})"
    return [
        *lines,
        f"r = {_act(gate, f'xt[:, {block(0)}] + hw[:, {block(0)}]')}",
        f"z = {_act(gate, f'xt[:, {block(1)}] + hw[:, {block(1)}]')}",
        f"n = {_act(act, candidate)}",
        f"{h_out} = z * h + (1.0 - z) * n",
    ]


def _gru_setup(layer: GRUSpec, bias: bool) -> list[str]:
    """reset_after false: the recurrent weights' r, z blocks and n block, sliced once."""
    if layer.reset_after:
        return []
    u = layer.units
    lines = [f"weight_hh_rz, weight_hh_n = weight_hh[0:{2 * u}], weight_hh[{2 * u}:{3 * u}]  # r, z; n"]
    if bias:
        lines.append(f"bias_hh_rz, bias_hh_n = bias_hh[0:{2 * u}], bias_hh[{2 * u}:{3 * u}]")
    return lines


def _simple_rnn_step(layer: SimpleRNNSpec, masked: bool, bias: bool) -> list[str]:
    h_out, b_hh = ("h_new" if masked else "h"), (", bias_hh" if bias else "")
    return [f"{h_out} = {_act(layer.activation, f'xt + F.linear(h, weight_hh{b_hh})')}"]


def _fused_args(bias: bool) -> str:
    """The fused ops' arguments after the states: biases, 1 layer, no dropout, train, 1 direction, batch first."""
    return f"params, {bias}, 1, 0.0, self.training, False, True"


def _simple_rnn_kernel(layer: SimpleRNNSpec, bias: bool) -> str:
    return f"torch.rnn_{layer.activation}(x, states[0], {_fused_args(bias)})"


CELL_CODE.add("simple_rnn", CellCode(_simple_rnn_step, _simple_rnn_native, kernel=_simple_rnn_kernel))
CELL_CODE.add(
    "lstm",
    CellCode(_lstm_step, _gated_native, states=2, kernel=lambda _, b: f"torch.lstm(x, states, {_fused_args(b)})"),
)
CELL_CODE.add(
    "gru",
    CellCode(
        _gru_step, _gated_native, kernel=lambda _, b: f"torch.gru(x, states[0], {_fused_args(b)})", setup=_gru_setup
    ),
)


def _pick(names: list[str], suffix: str, indent: str) -> list[str]:
    """``weight_ih, weight_hh = self.weight_ih_l0, self.weight_hh_l0`` (and the biases on a second line)."""
    return [
        f"{indent}{', '.join(pair)} = {', '.join(f'self.{n}{suffix}' for n in pair)}"
        for pair in (names[:2], names[2:])
        if pair
    ]


def _run_method(layer: RecurrentLayer, masked: bool, bias: bool) -> list[str]:
    """``run``: one direction over the whole sequence, Keras's loop (outputs in processing order)."""
    u, lstm = layer.units, CELL_CODE.get(layer.kind).states == 2
    zero_output = layer.bidirectional and layer.return_sequences
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    args = (
        "x: torch.Tensor"
        + (", mask: torch.Tensor" if masked else "")
        + (", reverse: bool" if layer.bidirectional else "")
        + (", start: list[torch.Tensor]" if layer.stateful else "")
    )
    returns = "tuple[torch.Tensor, list[torch.Tensor]]" if layer.stateful else "torch.Tensor"
    what = " and the final states" if layer.stateful else ""
    lines = [
        f"def run(self, {args}) -> {returns}:",
        f'    """One direction over the sequence: outputs (batch, time, {u}) in processing order{what}."""',
        *_pick(names, "_l0", "    "),
    ]
    if layer.bidirectional:
        lines += ["    if reverse:", *_pick(names, "_l0_reverse", "        ")]
    lines += [
        f"    xw = F.linear(x, weight_ih{', bias_ih' if bias else ''})  # the input side of every step at once",
        *[f"    {line}" for line in CELL_CODE.get(layer.kind).setup(layer, bias)],
        f"    h = {'start[0]' if layer.stateful else f'x.new_zeros([x.size(0), {u}])'}",
    ]
    if lstm:
        lines.append(f"    c = {'start[1]' if layer.stateful else f'x.new_zeros([x.size(0), {u}])'}")
    if masked and not zero_output:
        lines.append("    out = torch.zeros_like(h)  # the last valid step's output (zeros before the first one)")
    if masked:
        lines.append("    keeps = mask.unsqueeze(2).unbind(1)")
    lines += [
        "    outputs: list[torch.Tensor] = []",
        "    # each step's slice taken once (slicing xw[:, t] in the loop would make backward quadratic in time)",
        "    for t, xt in enumerate(xw.unbind(1)):" if masked else "    for xt in xw.unbind(1):",
    ]
    lines += [f"        {line}" for line in _step_lines(layer, masked, bias)]
    if not masked:
        lines.append("        outputs.append(h)")
    else:
        lines.append("        keep = keeps[t]  # a masked step keeps the state")
        fallback = "torch.zeros_like(h_new)" if zero_output else "out"
        lines.append(f"        out = torch.where(keep, h_new, {fallback})")
        lines.append("        h = torch.where(keep, h_new, h)")
        if lstm:
            lines.append("        c = torch.where(keep, c_new, c)")
        lines.append("        outputs.append(out)")
    if layer.stateful:
        lines.append(f"    return torch.stack(outputs, dim=1), {'[h, c]' if lstm else '[h]'}")
    else:
        lines.append("    return torch.stack(outputs, dim=1)")
    return lines


def _forward_method(layer: RecurrentLayer, masked: bool) -> list[str]:
    """``forward``: the direction(s), Keras's order of outputs and the merge."""
    if layer.stateful:
        return _stateful_forward_method(layer, masked)
    m = ", mask" if masked else ""
    lines = [f"def forward(self, x: torch.Tensor{', mask: torch.Tensor' if masked else ''}) -> torch.Tensor:"]
    flipped = "torch.flip(x, [1])" + (", torch.flip(mask, [1])" if masked else "")
    if not layer.bidirectional:
        pick = "" if layer.return_sequences else "[:, -1]"
        if layer.go_backwards:
            lines.append("    # go_backwards: the reversed sequence; outputs stay in processing order")
            lines.append(f"    return self.run({flipped}){pick}")
        else:
            lines.append(f"    return self.run(x{m}){pick}")
        return lines
    lines.append(f"    fwd = self.run(x{m}, False)")
    if layer.return_sequences:
        lines.append(f"    bwd = torch.flip(self.run({flipped}, True), [1])  # back in input order")
        lines.append(f"    return {_merge(layer.merge_mode, 'fwd', 'bwd')}")
    else:
        lines.append(f"    bwd = self.run({flipped}, True)")
        lines.append(f"    return {_merge(layer.merge_mode, 'fwd[:, -1]', 'bwd[:, -1]')}")
    return lines


def _stateful_forward_method(layer: RecurrentLayer, masked: bool) -> list[str]:
    """``forward`` of a stateful layer: each direction starts from the states the batch before left (``carried``;
    zeros after ``reset_states``) and leaves its final ones, as Keras's ``stateful=True``; and ``reset_states``."""
    per = CELL_CODE.get(layer.kind).states  # h, or h and c
    m = ", mask" if masked else ""
    flipped = "torch.flip(x, [1])" + (", torch.flip(mask, [1])" if masked else "")
    count = per * layer.directions
    lines = [
        f"def forward(self, x: torch.Tensor{', mask: torch.Tensor' if masked else ''}) -> torch.Tensor:",
        "    if len(self.carried) == 0:  # the first batch after reset_states: zero states",
        f"        self.carried = [x.new_zeros([x.size(0), {layer.units}]) for _ in range({count})]",
        "    elif self.carried[0].size(0) != x.size(0):",
        "        raise ValueError(",
        '            f"this stateful layer carries {self.carried[0].size(0)} rows of states from batch to batch, and '
        'got a "',
        '            f"batch of {x.size(0)}: feed batches of the same size, or call reset_states() first"',
        "        )",
        "    start = self.carried",
    ]
    if not layer.bidirectional:
        pick = "" if layer.return_sequences else "[:, -1]"
        if layer.go_backwards:
            lines.append("    # go_backwards: the reversed sequence; outputs stay in processing order")
            lines.append(f"    y, states = self.run({flipped}, start)")
        else:
            lines.append(f"    y, states = self.run(x{m}, start)")
        lines += ["    self.carried = [s.detach() for s in states]", f"    return y{pick}"]
    else:
        lines.append(f"    fwd, ahead = self.run(x{m}, False, start[:{per}])")
        lines.append(f"    bwd, behind = self.run({flipped}, True, start[{per}:])")
        lines.append("    self.carried = [s.detach() for s in ahead + behind]")
        if layer.return_sequences:
            lines.append("    bwd = torch.flip(bwd, [1])  # back in input order")
            lines.append(f"    return {_merge(layer.merge_mode, 'fwd', 'bwd')}")
        else:
            lines.append(f"    return {_merge(layer.merge_mode, 'fwd[:, -1]', 'bwd[:, -1]')}")
    lines += [
        "",
        "@torch.jit.export",
        "def reset_states(self) -> None:",
        '    """Start the next batch from zero states (Keras\'s ``layer.reset_state()``)."""',
        "    self.carried = []",
    ]
    return lines


def _wrap(text: str, indent: str, width: int = 100) -> list[str]:
    """``text`` as lines of at most ``width`` characters (its own line breaks kept)."""
    return [
        line
        for paragraph in text.split("\n")
        for line in textwrap.wrap(paragraph, width, initial_indent=indent, subsequent_indent=indent) or [indent]
    ]


def _steps_class(cls: str, layer: RecurrentLayer, ctx: _Context, shapes: dict[str, tuple[int, ...]]) -> str:
    """Source of a module class that computes ``layer`` one time step at a time."""
    bias = layer.use_bias
    torch_class = layer.torch_class or "LSTM"
    mask_doc = (
        "At a masked step (``mask`` false) the state is kept and the output is "
        + (
            "zeros (Keras's Bidirectional)."
            if layer.bidirectional and layer.return_sequences
            else "the previous step's (zeros before the first valid step)."
        )
        if ctx.masked
        else "No mask reaches this layer."
    )
    params = [
        f"self.{name} = nn.Parameter(torch.zeros({', '.join(map(str, shape))}))" for name, shape in shapes.items()
    ]
    about = f"``{ctx.ident}``, written out one time step at a time: Keras {_describe(layer)}."
    more = f"Parameters are named and laid out as nn.{torch_class}'s (``weight_ih_l0`` is ``kernel.T``...). {mask_doc}"
    if layer.stateful:
        more += (
            " Stateful (Keras's stateful=True): each batch starts from the final states of the batch before (row i "
            "continues row i), kept in ``carried`` (not in the state dict); ``reset_states()`` zeroes them."
        )
        params.append("self.carried: list[torch.Tensor] = []  # the states the last batch left (none: zeros)")
    body = [
        *_wrap('"""' + about, ""),
        "",
        *_wrap(more + '\n"""', ""),
        "",
        *(
            ["carried: list[torch.Tensor]  # (a class annotation: TorchScript types the attribute by it)", ""]
            if layer.stateful
            else []
        ),
        "def __init__(self) -> None:",
        "    super().__init__()",
        *[f"    {p}" for p in params],
        "",
        *_run_method(layer, ctx.masked, bias),
        "",
        *_forward_method(layer, ctx.masked),
    ]
    return f"class {cls}(nn.Module):\n" + "\n".join(f"    {line}" if line else "" for line in body) + "\n"


# -- the whole file ---------------------------------------------------------------------------------------


def _layer_codes(spec: ModelSpec, weights: dict[str, Array]) -> tuple[list[tuple[str, _Code]], int, bool]:
    """Each layer's code with its attribute name; the output's features and whether it has a time axis."""
    stack = spec.stack()
    idents = _identifiers([name for name, _ in stack])
    classes = _class_names(idents)
    features = spec.input.vocab_size if spec.input.vocab_size is not None else spec.input.features
    assert features is not None
    per_step, masked = True, False
    out: list[tuple[str, _Code]] = []
    for (name, layer), ident, cls, shape in zip(stack, idents, classes, spec.shapes(), strict=True):
        try:
            build = LAYER_CODE.get(layer.kind, name)
        except MissingKindError as exc:
            raise RnnspecError(str(exc)) from None
        prefix = f"{name}/"
        w = {k[len(prefix) :]: np.asarray(v, dtype=np.float32) for k, v in weights.items() if k.startswith(prefix)}
        code = build(layer, _Context(ident, cls, features, masked), w)
        if code.state and not layer.is_trainable():  # `trainable: false`: frozen, as the spec's layer
            code.init.append(f"self.{ident}.requires_grad_(False)  # frozen (trainable: false in the spec)")
            code.doc += "; frozen (requires_grad False)"
        out.append((ident, code))
        masked = layer.makes_mask() or (masked and layer.keeps_mask())
        features, per_step = shape.features, shape.per_step
    return out, features, per_step


def _header(spec: ModelSpec, stem: str, codes: list[tuple[str, _Code]], features: int, per_step: bool) -> str:
    if spec.input.vocab_size is not None:
        given = f"token ids, int64 (batch, time), in [0, {spec.input.vocab_size})"
    else:
        given = f"float32 features (batch, time, {spec.input.features})"
    returns = f"(batch, time, {features})" if per_step else f"(batch, {features})"
    width = max(len(ident) for ident, _ in codes)
    table = [
        line
        for ident, code in codes
        for line in textwrap.wrap(
            f"{ident.ljust(width)}  {code.doc}", 100, initial_indent="    ", subsequent_indent=" " * (width + 8)
        )
    ]
    text = "\n".join(
        [
            f"``{spec.name}``: a recurrent model exported from its rnnspec spec as plain PyTorch.",
            "",
            f"Input: {given}. Output: {returns}.",
            "It computes what the spec means in Keras at inference (masks included) and needs nothing but torch.",
            "",
            "Layers, bottom to top (attribute: module):",
            "",
            *table,
            "",
            "Dropout layers are nn.Dropout / nn.Dropout1d: the identity in eval mode, they drop while training.",
            "The recurrent layers' own dropout and recurrent_dropout (training only) are not part of this module.",
            "torch.jit.script and torch.export.export take the model as it is (torch.export fixes the sequence",
            "length to its example's: it unrolls PyTorch's recurrent ops and the written-out loops over x.size(1)).",
            "",
            "Load::",
            "",
            "    import safetensors.torch",
            "",
            "    model = Model()",
            f"    model.load_state_dict(safetensors.torch.load_file({py_literal(stem + '.safetensors')}))",
            "    model.eval()",
            "",
            f"or ``model = load()`` (reads ``{stem}.safetensors`` beside this file), then ``y = model(x)``.",
            "",
        ]
    )
    return py_docstring(text)  # the file and spec names escaped: nothing in them ends the docstring


_LOAD_SOURCE = '''
def load(path: str = "") -> Model:
    """A ``Model`` in eval mode with the weights of ``path`` (default: the .safetensors file beside this one)."""
    try:
        import safetensors.torch
    except ImportError as exc:
        raise ImportError("reading the weights needs safetensors: pip install safetensors") from exc
    model = Model()
    with open(path or __file__.rsplit(".", 1)[0] + ".safetensors", "rb") as fh:  # any file name (load_file: UTF-8 only)
        model.load_state_dict(safetensors.torch.load(fh.read()))
    return model.eval()
'''


def _model_class(codes: list[tuple[str, _Code]], batch_size: int | None = None) -> str:
    init = [line for _, code in codes for line in code.init]
    forward = [line for _, code in codes for line in code.forward]
    stateful = [ident for ident, code in codes if code.stateful]
    reset = [
        "",
        "    @torch.jit.export",
        "    def reset_states(self) -> None:",
        '        """Start the next batch from zero states in every stateful layer (Keras\'s ``reset_states``)."""',
        *[f"        self.{ident}.reset_states()" for ident in stateful],
    ]
    fixed = [
        f"    batch_size: int = {batch_size}  # a stateful model predicts batches of this size, one after another",
        "",
    ]
    lines = [
        "class Model(nn.Module):",
        '    """The whole model; ``forward(x)`` returns its outputs."""',
        "",
        *(fixed if batch_size is not None else []),
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *[f"        {line}" for line in init],
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        h = x",
        *[f"        {line}" for line in forward],
        "        return h",
        *(reset if stateful else []),
    ]
    return "\n".join(lines) + "\n"


def _source(spec: ModelSpec, stem: str, weights: dict[str, Array]) -> tuple[str, dict[str, Array]]:
    """The module source and its state dict (PyTorch's names and layouts)."""
    codes, features, per_step = _layer_codes(spec, weights)
    classes = [source for _, code in codes for source in code.classes]
    uses_hard_sigmoid = any("hard_sigmoid(" in line for _, c in codes for line in [*c.forward, *c.classes])
    uses_masked = any("(MaskedLayer):" in source for source in classes)
    body = [
        *([_HARD_SIGMOID_SOURCE] if uses_hard_sigmoid else []),
        *([_MASKED_SOURCE] if uses_masked else []),
        *classes,
        _model_class(codes, spec.input.batch_size if spec.stateful else None),
        _LOAD_SOURCE,
    ]
    text = "\n\n".join(part.strip("\n") + "\n" for part in body)
    imports = [
        "import torch",
        *(["import torch.nn.functional as F"] if "F." in text else []),
        "from torch import nn",
    ]
    source = _header(spec, stem, codes, features, per_step) + "\n\n" + "\n".join(imports) + "\n\n\n" + text
    state = {f"{ident}.{key}": value for ident, code in codes for key, value in code.state.items()}
    return source, state


def export_torch(spec: ModelSpec, weights: dict[str, np.ndarray], path: str | Path) -> list[Path]:
    """Write ``path`` (``model.py``: plain-PyTorch module source) and ``model.safetensors`` beside it (its
    state dict, PyTorch's key names); returns both paths. Neither file needs rnnspec to load."""
    target = Path(path)
    if target.suffix != ".py":
        raise RnnspecError(f"{target}: the exported module must be a .py file (its weights go beside it)")
    check_weights(spec, weights)
    source, state = _source(spec, target.stem, dict(weights))
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    weights_path = target.with_suffix(".safetensors")
    data = safetensors.torch.save(tensors, metadata={"format": "pt", "rnnspec_model": spec.name})
    write_bytes_atomic(target, source.encode("utf-8"))
    write_bytes_atomic(weights_path, data)
    return [target, weights_path]
