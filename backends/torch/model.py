"""The PyTorch backend: a native, batch-first ``nn.Module`` with Keras-layout parameters.

The module is a loop over the spec's layers (:meth:`~rnnspec.lang.spec.ModelSpec.stack`). Each
layer kind's ``nn.Module`` comes from :data:`BUILDERS` (one builder per kind), and every layer
module's ``forward(h, mask)`` returns ``(h, mask)`` with Keras's mask flow: ``Masking`` and an
``Embedding`` with ``mask_zero`` create the mask, dropout and Dense layers pass it on, a recurrent
layer without ``return_sequences`` drops it.

Each recurrent cell kind registers, with :func:`cell`, one :class:`Cell` in :data:`CELLS`: its step
function (Keras's equations), the PyTorch fused op that computes it where one can, and the gate
order of PyTorch's layout. A new cell is one step function and one ``@cell(...)`` registration.

Parameters are stored in the canonical (Keras) layout, so ``sum(p.numel())`` equals the
analytic count of the spec's convention and weights copy 1:1. :meth:`_Direction._torch_layout` is
the one place that transposes kernels and reorders gates (GRU: Keras z, r, h → PyTorch r, z, n) to
call PyTorch's fused RNN kernels (``nn.RNN``/``nn.LSTM``/``nn.GRU``'s own ops; cuDNN on a GPU).

Where the kernels cannot express the spec (activations other than tanh/sigmoid — relu for
SimpleRNN —, GRU ``reset_after: false``, recurrent dropout while training, masks with holes) the
step loop runs instead. Masks without holes (pre- or post-padding, Keras's ``pad_sequences``
default included) stay on the fused kernels: each row is left-aligned, the rows are run in length
buckets (each bucket only the rows still running, states carried), and the outputs gathered back,
which is exact because an RNN is causal. A masked batch so pays for the steps its rows have.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnspec.core.backend import (
    MODEL_BACKEND_ATTR,
    MODEL_SPEC_ATTR,
    DataParallel,
    DeviceCheck,
    MatmulTiming,
    StateDictReader,
    Threads,
    TrainableBackend,
)
from rnnspec.core.builtins import TableLiveModels
from rnnspec.core.kinds import KindRegistry
from rnnspec.core.weights import weight_shapes
from rnnspec.lang.analysis import analyze
from rnnspec.lang.layers import RecurrentLayer, same_padding
from rnnspec.lang.spec import ModelSpec

from .ops import ACTIVATIONS, activation, dropout, dropout_mask

__all__ = [
    "ACTIVATIONS",
    "BACKEND",
    "BUILDERS",
    "CELLS",
    "Cell",
    "RnnspecModule",
    "TorchBackend",
    "cell",
    "load_artifact",
]

Shapes = dict[str, tuple[int, ...]]

BUILDERS = KindRegistry("torch", "builder")
"""Layer kind → ``builder(layer_spec, name, shapes) -> nn.Module``; ``shapes`` are the layer's weight
leaves (``kernel``, ``forward/bias``...) in the spec's convention."""
CELLS = KindRegistry("torch", "step function")
"""Recurrent cell kind → its :class:`Cell` (step function, fused op, PyTorch gate order)."""

_KEYS = {"forward": "fwd", "backward": "bwd"}


# -- the layer modules ------------------------------------------------------------------------------


class _Layer(nn.Module):
    """A layer of the stack: ``forward(h, mask) -> (h, mask)``; weightless by default."""

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return h, mask

    def parameter(self, leaf: str) -> nn.Parameter:
        """The parameter behind a canonical weight leaf (``kernel``, ``forward/bias``...)."""
        param = getattr(self, leaf, None)
        if not isinstance(param, nn.Parameter):
            raise KeyError(leaf)
        return param


@BUILDERS.register("masking")
class _Masking(_Layer):
    """Keras ``Masking``: a step is kept where any feature differs from ``mask_value``; masked steps are zeroed."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.mask_value = float(layer.mask_value)

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        keep = (h != self.mask_value).any(dim=-1)
        return torch.where(keep[..., None], h, torch.zeros((), dtype=h.dtype, device=h.device)), keep


@BUILDERS.register("embedding")
class _Embedding(_Layer):
    """Keras ``Embedding``; with ``mask_zero`` its mask is ``ids != 0``, with ``padding_idx`` ``ids != padding_idx``
    (the padding row stays an ordinary row)."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(shapes["embeddings"]))
        self.mask_id = layer.mask_id

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        ids = h.long()
        return F.embedding(ids, self.embeddings), (ids != self.mask_id) if self.mask_id is not None else mask


@BUILDERS.register("dropout")
class _Dropout(_Layer):
    """Keras ``Dropout``: inverted dropout of every element while training; identity at inference."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.rate = float(layer.dropout)

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return (dropout(h, self.rate) if self.training else h), mask


@BUILDERS.register("spatial_dropout")
class _SpatialDropout(_Layer):
    """Keras ``SpatialDropout1D``: one multiplier per (sample, channel), the same at every step."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.rate = float(layer.spatial_dropout)

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if not self.training:
            return h, mask
        return dropout(h, self.rate, (h.shape[0], 1, h.shape[2])), mask


@BUILDERS.register("dense")
class _Dense(_Layer):
    """Keras ``Dense`` (on every step of a 3-D input); ``activate=False`` gives the pre-activation."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(shapes["kernel"]))
        self.bias = nn.Parameter(torch.zeros(shapes["bias"])) if "bias" in shapes else None
        self.activation = layer.activation
        self.act = activation(layer.activation)

    def forward(self, h: Tensor, mask: Tensor | None, activate: bool = True) -> tuple[Tensor, Tensor | None]:
        out = h @ self.kernel
        if self.bias is not None:
            out = out + self.bias
        return (self.act(out) if activate else out), mask


@BUILDERS.register("layer_norm")
class _LayerNorm(_Layer):
    """Keras ``LayerNormalization`` over the last axis: PyTorch's ``F.layer_norm`` (biased variance, epsilon
    inside the root) with Keras's epsilon; ``gamma`` / ``beta`` are ``nn.LayerNorm``'s ``weight`` / ``bias``,
    each present only where ``scale`` / ``center`` keep it. The mask passes on."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.epsilon = float(layer.epsilon)
        self.gamma = nn.Parameter(torch.ones(shapes["gamma"])) if "gamma" in shapes else None
        self.beta = nn.Parameter(torch.zeros(shapes["beta"])) if "beta" in shapes else None

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return F.layer_norm(h, (h.shape[-1],), self.gamma, self.beta, self.epsilon), mask


@BUILDERS.register("batch_norm")
class _BatchNorm(_Layer):
    """Keras ``BatchNormalization`` over the last axis, written out (PyTorch's ``nn.BatchNorm1d`` moves its
    ``running_var`` with the unbiased batch variance; Keras with the biased one). In training, unless frozen (Keras:
    ``training and self.trainable``), the batch's moments over every axis but the features (with a mask, over the
    valid steps: sums divided by ``count + 1e-7``, Keras's ``_moments``) normalise the batch, and the moving statistics
    move to them by Keras's rule ``moving * momentum + batch * (1 - momentum)``; otherwise the moving statistics
    normalise. ``tf.nn.batch_normalization``'s form: ``x * inv + (beta - mean * inv)``, ``inv = gamma /
    sqrt(var + epsilon)``. The moving statistics are parameters without gradients. The mask passes on."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.momentum, self.epsilon = float(layer.momentum), float(layer.epsilon)
        self.frozen = not layer.is_trainable()
        self.gamma = nn.Parameter(torch.ones(shapes["gamma"])) if "gamma" in shapes else None
        self.beta = nn.Parameter(torch.zeros(shapes["beta"])) if "beta" in shapes else None
        self.moving_mean = nn.Parameter(torch.zeros(shapes["moving_mean"]), requires_grad=False)
        self.moving_variance = nn.Parameter(torch.ones(shapes["moving_variance"]), requires_grad=False)

    def _moments(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        axes = tuple(range(h.dim() - 1))
        if mask is None or mask.dim() != h.dim() - 1:
            mean = h.mean(dim=axes)
            return mean, (h - mean.detach()).square().mean(dim=axes)
        keep = mask.unsqueeze(-1).expand_as(h)
        zero = torch.zeros((), dtype=h.dtype, device=h.device)
        count = keep.to(h.dtype).sum(dim=axes) + 1e-7  # Keras's backend.epsilon() on the count
        mean = torch.where(keep, h, zero).sum(dim=axes) / count
        return mean, torch.where(keep, h - mean, zero).square().sum(dim=axes) / count

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.training and not self.frozen:
            mean, var = self._moments(h, mask)
            with torch.no_grad():
                m = self.momentum
                self.moving_mean.copy_(self.moving_mean * m + mean.detach() * (1.0 - m))
                self.moving_variance.copy_(self.moving_variance * m + var.detach() * (1.0 - m))
        else:
            mean, var = self.moving_mean, self.moving_variance
        inv = torch.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma
        offset = -mean * inv if self.beta is None else self.beta - mean * inv
        return h * inv + offset, mask


@BUILDERS.register("activation")
class _Activation(_Layer):
    """Keras ``Activation``: the activation alone (softmax / log_softmax over the last axis); the mask passes on.
    ``activate=False`` gives its input (the logits when it makes the model's outputs)."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.activation = layer.activation
        self.act = activation(layer.activation)

    def forward(self, h: Tensor, mask: Tensor | None, activate: bool = True) -> tuple[Tensor, Tensor | None]:
        return (self.act(h) if activate else h), mask


@BUILDERS.register("global_max_pool")
class _GlobalMaxPool(_Layer):
    """Keras ``GlobalMaxPooling1D``: the max over every step (Keras's layer ignores the mask); no mask after."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.keepdims = bool(layer.keepdims)

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return h.amax(dim=1, keepdim=self.keepdims), None


@BUILDERS.register("global_average_pool")
class _GlobalAveragePool(_Layer):
    """Keras ``GlobalAveragePooling1D``: the mean over the valid steps (a fully padded row is 0/0, NaN, as in
    Keras); no mask after."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.keepdims = bool(layer.keepdims)

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if mask is None:
            return h.mean(dim=1, keepdim=self.keepdims), None
        keep = mask.unsqueeze(-1)
        total = torch.where(keep, h, torch.zeros((), dtype=h.dtype, device=h.device)).sum(1, keepdim=self.keepdims)
        return total / keep.to(h.dtype).sum(1, keepdim=self.keepdims), None


@BUILDERS.register("repeat_vector")
class _RepeatVector(_Layer):
    """Keras ``RepeatVector(n)``: ``(batch, features)`` → ``(batch, n, features)``; Keras drops any mask here."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.n = int(layer.repeat_vector)

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return h.unsqueeze(1).repeat(1, self.n, 1), None


@BUILDERS.register("flatten")
class _Flatten(_Layer):
    """Keras ``Flatten``: ``(batch, steps, features)`` → ``(batch, steps * features)`` in C order (a vector stays as
    it is); Keras drops any mask here (the spec refuses a masked input)."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return h.flatten(1), None


class _Pool(_Layer):
    """Keras ``MaxPooling1D`` / ``AveragePooling1D`` over the time axis of ``(batch, time, features)``; Keras's
    ``same`` padding (extra step on the right) written out: -inf never wins a max, and an average divides by the
    window's real steps (PyTorch's ``count_include_pad=False``). Keras drops any mask here."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.mode = layer.kind
        self.pool_size, self.strides, self.same = layer.pool_size, layer.strides, layer.padding == "same"

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        x = h.transpose(1, 2)
        k, s = self.pool_size, self.strides
        pad = same_padding(x.shape[-1], k, s) if self.same else (0, 0)
        if self.mode == "max_pool":
            out = F.max_pool1d(F.pad(x, pad, value=float("-inf")) if self.same else x, k, s)
        elif not self.same:
            out = F.avg_pool1d(x, k, s)
        else:
            total = F.avg_pool1d(F.pad(x, pad), k, s)
            real = F.avg_pool1d(F.pad(torch.ones_like(x[:1, :1]), pad), k, s)
            out = total / real
        return out.transpose(1, 2), None


BUILDERS.register("max_pool", "average_pool")(_Pool)


@BUILDERS.register("conv1d")
class _Conv1D(_Layer):
    """Keras ``Conv1D``: ``F.conv1d`` over ``(batch, features, time)`` with the kernel kept in Keras's layout
    ``(kernel_size, inputs, filters)`` (PyTorch's weight is its ``(2, 1, 0)`` transpose), zero-padded as Keras pads
    (``same``: the extra step on the right; ``causal``: on the left); ``activate=False`` gives the pre-activation.
    Keras drops any mask here."""

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.spec_layer = layer
        self.kernel = nn.Parameter(torch.zeros(shapes["kernel"]))
        self.bias = nn.Parameter(torch.zeros(shapes["bias"])) if "bias" in shapes else None
        self.act = activation(layer.activation)

    def forward(self, h: Tensor, mask: Tensor | None, activate: bool = True) -> tuple[Tensor, Tensor | None]:
        layer = self.spec_layer
        x = F.pad(h.transpose(1, 2), layer.padding_for(h.shape[1]))
        z = F.conv1d(x, self.kernel.permute(2, 1, 0), self.bias, stride=layer.strides, dilation=layer.dilation_rate)
        z = z.transpose(1, 2)
        return (self.act(z) if activate else z), None


# -- recurrent cells ----------------------------------------------------------------------------------

StepFunction = Callable[["_Direction", Tensor, tuple[Tensor, ...], "Tensor | None"], tuple[Tensor, tuple[Tensor, ...]]]
"""``step(direction, xk, states, rec_masks) -> (output, states)``: one step of Keras's cell, where ``xk``
is the input already multiplied by the kernel (plus the input bias) and ``rec_masks`` the recurrent
dropout masks (None, one for all gates, or one per gate)."""
FusedOp = Callable[[Any, Tensor, tuple[Tensor, ...], list[Tensor], bool, bool], tuple[Tensor, tuple[Tensor, ...]]]
"""``op(layer, x, states, params, has_bias, training) -> (outputs (batch, time, units), final states)``:
PyTorch's fused kernel on an unmasked batch-first sequence from ``states`` (each ``(1, batch, units)``),
with the weights in PyTorch's layout."""


def _no_fused_kernel(layer: Any) -> str:
    return "no fused PyTorch kernel"


@dataclass(frozen=True)
class Cell:
    """How one recurrent cell kind runs in PyTorch."""

    step: StepFunction
    """Keras's equations for one step (the step loop: masks with holes, other activations, recurrent dropout)."""
    states: int = 1
    """Number of state tensors (h; h and c for an LSTM)."""
    fused: FusedOp | None = None
    """PyTorch's fused op computing this cell, if any."""
    unfusable: Callable[[Any], str | None] = _no_fused_kernel
    """Why the fused op cannot compute a given layer of this kind (None when it can)."""
    gate_dropout: bool = True
    """With ``recurrent_dropout``, one input and one state mask per gate (Keras's ``implementation=1``)."""


def cell(
    *kinds: str,
    states: int = 1,
    fused: FusedOp | None = None,
    unfusable: Callable[[Any], str | None] = _no_fused_kernel,
    gate_dropout: bool = True,
) -> Callable[[StepFunction], StepFunction]:
    """Decorator: register a step function as the :class:`Cell` of ``kinds`` (and the recurrent builder for them)."""

    def decorate(step: StepFunction) -> StepFunction:
        entry = Cell(step, states, fused, unfusable, gate_dropout)
        for kind in kinds:
            CELLS.add(kind, entry)
            BUILDERS.add(kind, _Recurrent)
        return step

    return decorate


class _Direction(nn.Module):
    """One direction of a recurrent layer: Keras-layout parameters, the fused kernel and the step loop."""

    def __init__(self, layer: Any, entry: Cell, shapes: Shapes):
        super().__init__()
        self.layer = layer
        self.cell = entry
        self.units = layer.units
        self.kernel = nn.Parameter(torch.zeros(shapes["kernel"]))
        self.recurrent_kernel = nn.Parameter(torch.zeros(shapes["recurrent_kernel"]))
        self.bias = nn.Parameter(torch.zeros(shapes["bias"])) if "bias" in shapes else None
        self.recurrent_bias = (
            nn.Parameter(torch.zeros(shapes["recurrent_bias"])) if "recurrent_bias" in shapes else None
        )
        self.act = activation(layer.activation)
        self.gate = activation(getattr(layer, "recurrent_activation", "sigmoid"))

    def biases(self) -> tuple[Tensor | None, Tensor | None]:
        """(input bias, recurrent bias) as flat vectors; None where the cell has none."""
        if self.bias is None:
            return None, None
        if self.bias.dim() == 2:
            return self.bias[0], self.bias[1]
        return self.bias, self.recurrent_bias

    # -- fused kernels ------------------------------------------------------------------------------

    def _torch_layout(self) -> list[Tensor]:
        """Weights as PyTorch's RNN ops take them: transposed, gates reordered, bias_hh filled."""
        kernel, recurrent = self.kernel, self.recurrent_kernel
        b_in, b_rec = self.biases()
        index = self.layer.gate_index("torch", self.units)  # the layer kind's gate order (GRU: r, z, n)
        if index != sorted(index):
            order = torch.tensor(index, device=kernel.device)
            kernel, recurrent = kernel[:, order], recurrent[:, order]
            b_in = None if b_in is None else b_in[order]
            b_rec = None if b_rec is None else b_rec[order]
        params = [kernel.t(), recurrent.t()]
        if b_in is not None:
            params += [b_in, b_rec if b_rec is not None else torch.zeros_like(b_in)]
        return params

    def run_fused(
        self, x: Tensor, states: tuple[Tensor, ...] | None = None, params: list[Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """All outputs ``(batch, time, units)`` of the fused kernel on unmasked input, and the final states
        (from zero states, or from ``states``)."""
        assert self.cell.fused is not None
        if states is None:
            states = (x.new_zeros(1, x.shape[0], self.units),) * self.cell.states
        params = self._torch_layout() if params is None else params
        return self.cell.fused(self.layer, x, states, params, self.bias is not None, self.training)

    # -- the step loop -------------------------------------------------------------------------------

    def run_loop(
        self,
        x: Tensor,
        mask: Tensor | None,
        zero_output: bool,
        in_masks: Tensor | None,
        rec_masks: Tensor | None,
        initial: tuple[Tensor, ...] | None = None,
        final: list[Tensor] | None = None,
    ) -> Tensor:
        """Keras's ``rnn`` loop (masked steps keep the state) over input in processing order, from ``initial``
        states (zeros without them); ``final``, when given, receives the states after the last step."""
        batch = x.shape[0]
        b_in, _ = self.biases()
        xk = _add_bias(_project(x, self.kernel, in_masks), b_in)
        zeros = x.new_zeros(batch, self.units)
        states: tuple[Tensor, ...] = (zeros,) * self.cell.states if initial is None else initial
        previous = zeros
        outputs = []
        for t, xt in enumerate(xk.unbind(1)):  # sliced once: xk[:, t] per step made backward quadratic in time
            out, new_states = self.cell.step(self, xt, states, rec_masks)
            if mask is not None:
                keep = mask[:, t, None]
                out = torch.where(keep, out, zeros if zero_output else previous)
                new_states = tuple(torch.where(keep, n, s) for n, s in zip(new_states, states, strict=True))
            outputs.append(out)
            previous, states = out, new_states
        if final is not None:
            final[:] = states
        if not outputs:
            return x.new_zeros(batch, 0, self.units)
        return torch.stack(outputs, dim=1)


def _project(v: Tensor, weight: Tensor, masks: Tensor | None) -> Tensor:
    """``v @ weight`` under Keras's dropout masks: one for all gates, or one per gate block."""
    if masks is None:
        return v @ weight
    if masks.shape[0] == 1:
        return (v * masks[0]) @ weight
    blocks = weight.chunk(masks.shape[0], dim=1)
    return torch.cat([(v * m) @ w for m, w in zip(masks, blocks, strict=True)], dim=-1)


def _contiguous(mask: Tensor) -> tuple[bool, Tensor, Tensor]:
    """Whether every row's valid steps form one block; the blocks' starts and lengths."""
    lengths = mask.sum(dim=1)
    time = mask.shape[1]
    positions = torch.arange(time, device=mask.device).expand_as(mask)
    starts = torch.where(mask, positions, time).min(dim=1).values
    ends = torch.where(mask, positions, -1).max(dim=1).values
    ok = bool(((lengths == 0) | (ends - starts + 1 == lengths)).all())
    return ok, starts.clamp(max=max(time - 1, 0)), lengths


BUCKETS = 8
"""At most this many length buckets per masked batch (each is one fused call on its active rows)."""


def _bucket_bounds(sorted_lengths: list[int], buckets: int = BUCKETS) -> list[int]:
    """Time boundaries ``0 = b0 < b1 < ... = longest`` where the number of still-running rows drops:
    the lengths at evenly spaced ranks of the rows sorted longest first."""
    longest = sorted_lengths[0]
    n = len(sorted_lengths)
    cuts = {sorted_lengths[min(n - 1, (k * n) // buckets)] for k in range(1, buckets)}
    return sorted({0, longest} | {c for c in cuts if 0 < c < longest})


def _run_bucketed(direction: _Direction, rows: Tensor, lengths: list[int], last: bool) -> Tensor:
    """The fused kernel over left-aligned rows sorted longest first, paying only for the steps some row
    still needs.

    Time is cut into buckets at the lengths where rows finish, and each bucket runs only the rows still
    running, from the states the previous bucket left (exact: a row's outputs up to its length are the
    same, and nothing after its length is read). Returns, in the sorted order, each row's output at its
    last step ``(batch, units)`` when ``last``, else the outputs ``(batch, longest, units)`` with zeros
    where a row had finished. ``lengths[0]`` (the longest) must be at least 1.
    """
    batch = rows.shape[0]
    params = direction._torch_layout()
    states: tuple[Tensor, ...] | None = None
    pieces = []
    bounds = _bucket_bounds(lengths)
    for t0, t1 in itertools.pairwise(bounds):
        active = sum(1 for length in lengths if length > t0)
        carried = None if states is None else tuple(s[:, :active].contiguous() for s in states)
        out, states = direction.run_fused(rows[:active, t0:t1], carried, params)
        if last:  # the rows that end in this bucket: their last output is here
            ending = sum(1 for length in lengths if length > t1)
            if active > ending:
                at = torch.tensor([lengths[r] - 1 - t0 for r in range(ending, active)], device=rows.device)
                pieces.append(out[torch.arange(ending, active, device=rows.device), at])
        else:
            pieces.append(F.pad(out, (0, 0, 0, 0, 0, batch - active)))
    if last:  # buckets end rows from the shortest up; rows of length 0 (sorted last) output zeros
        finals = torch.cat(pieces[::-1], dim=0)
        return F.pad(finals, (0, 0, 0, batch - finals.shape[0]))
    return torch.cat(pieces, dim=1)


def _take_steps(x: Tensor, rows: Tensor, steps: Tensor) -> Tensor:
    """``x[rows, steps]`` for ``x`` of ``(batch, time, features)``: one ``index_select`` of whole feature vectors
    from the flattened ``(batch·time, features)`` (advanced indexing copies element by element: 2-3x slower on a
    CPU, and so is its backward)."""
    flat = (rows * x.shape[1] + steps).reshape(-1)
    picked = x.reshape(-1, x.shape[2]).index_select(0, flat)
    return picked.view(*torch.broadcast_shapes(rows.shape, steps.shape), x.shape[2])


def _run_aligned(direction: _Direction, x: Tensor, mask: Tensor, zero_output: bool, last: bool) -> Tensor:
    """Fused kernel under a hole-free mask: left-align each row (its first ``longest`` steps only, rows
    sorted longest first in the same gather), run each row only as long as it is, and put the outputs
    back — or, with ``last``, only the output of the last step ``(batch, units)``."""
    batch, time = mask.shape
    _, starts, lengths = _contiguous(mask)
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order].tolist()
    longest = sorted_lengths[0]
    if longest == 0:  # every row fully masked: Keras's outputs are zeros
        return x.new_zeros(batch, direction.units) if last else x.new_zeros(batch, time, direction.units)
    steps = torch.arange(longest, device=x.device)
    source = (starts[order][:, None] + steps).clamp(max=time - 1)
    out = _run_bucketed(direction, _take_steps(x, order[:, None], source), sorted_lengths, last)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(batch, device=order.device)
    if last:  # the row's last valid output, or zeros where the last step is masked and zeroed
        final = out[inverse]
        return final * mask[:, -1, None].to(final.dtype) if zero_output else final
    steps = torch.arange(time, device=x.device).expand(batch, time)
    back = (steps - starts[:, None]).clamp(min=0)
    back = torch.minimum(back, (lengths - 1).clamp(min=0)[:, None])
    restored = _take_steps(out, inverse[:, None], back)
    # before the block: zeros; after it: the last valid output (Keras), or zeros (zero_output_for_mask)
    keep = mask if zero_output else (steps >= starts[:, None]) & (lengths > 0)[:, None]
    return restored * keep[..., None].to(restored.dtype)


class _Recurrent(_Layer):
    """One recurrent layer (both directions when bidirectional), with Keras's masking semantics.

    The builder of every cell kind registered with :func:`cell`.
    """

    def __init__(self, layer: Any, name: str, shapes: Shapes):
        super().__init__()
        self.layer = layer
        self.cell = CELLS.get(layer.kind, name)
        tags = ["forward", "backward"] if layer.bidirectional else ["forward"]
        prefix = {t: f"{t}/" if layer.bidirectional else "" for t in tags}
        # ModuleDict keys cannot be "forward" (nn.Module.forward), hence fwd / bwd.
        self.directions = nn.ModuleDict(
            {
                _KEYS[t]: _Direction(
                    layer, self.cell, {k[len(prefix[t]) :]: v for k, v in shapes.items() if k.startswith(prefix[t])}
                )
                for t in tags
            }
        )
        self.why_loop = self.cell.unfusable(layer) if self.cell.fused is not None else _no_fused_kernel(layer)
        self.fused = self.why_loop is None
        self.loop_calls = 0
        self.carried: dict[str, tuple[Tensor, ...]] = {}
        """A stateful layer's states after the last predicted batch, by direction (empty: zeros); not weights."""

    def parameter(self, leaf: str) -> nn.Parameter:
        parts = leaf.split("/")
        direction = self.directions[_KEYS[parts[0]] if len(parts) == 2 else "fwd"]
        param = getattr(direction, parts[-1], None)
        if not isinstance(param, nn.Parameter):
            raise KeyError(leaf)
        return param

    def note(self, name: str) -> str:
        """Which path this layer takes (``rnnspec build`` prints it)."""
        layer = self.layer
        if layer.stateful:
            return f"{name}: step loop (stateful: each batch starts from the states the one before left)"
        if self.fused:
            extra = " (a step loop while training, for recurrent_dropout)" if layer.recurrent_dropout > 0 else ""
            return f"{name}: fused PyTorch {layer.kind} kernel{extra}; masks with holes use a step loop"
        return f"{name}: step loop ({self.why_loop}); PyTorch's fused kernels cannot express it"

    def _dropout_masks(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Keras's RNN dropout: masks drawn once per sequence, shaped ``(copies, batch, [1,] size)``.

        With ``recurrent_dropout`` Keras's LSTM and GRU switch to ``implementation=1``: one input
        mask and one state mask per gate. Otherwise one input mask serves all gates.
        """
        if not self.training:
            return None, None
        layer = self.layer
        p, q = layer.dropout, layer.recurrent_dropout
        copies = layer.gates if q > 0 and self.cell.gate_dropout else 1
        batch = x.shape[0]
        in_masks = dropout_mask(x, (copies, batch, 1, x.shape[2]), p) if p > 0 else None
        rec_masks = dropout_mask(x, (copies, batch, layer.units), q) if q > 0 else None
        return in_masks, rec_masks

    def _direction(
        self, d: _Direction, x: Tensor, mask: Tensor | None, backwards: bool, zero: bool, last: bool
    ) -> Tensor:
        """Outputs in processing order ``(batch, time, units)``, or with ``last`` the last one ``(batch, units)``."""
        out = self._run_direction(d, x, mask, backwards, zero, last)
        return out[:, -1] if last and out.dim() == 3 else out

    def _run_direction(
        self, d: _Direction, x: Tensor, mask: Tensor | None, backwards: bool, zero: bool, last: bool
    ) -> Tensor:
        in_masks, rec_masks = self._dropout_masks(x)
        if backwards:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)
        if self.layer.stateful:  # Keras's stateful layer: start from the last batch's states, keep the new ones
            key = "bwd" if backwards and self.layer.bidirectional else "fwd"
            initial = self.carried.get(key)
            if initial is not None and initial[0].shape[0] != x.shape[0]:
                raise ValueError(
                    f"a stateful layer carries {initial[0].shape[0]} samples' states; the batch has {x.shape[0]}"
                )
            final: list[Tensor] = []
            self.loop_calls += 1
            out = d.run_loop(x, mask, zero, in_masks, rec_masks, initial, final)
            self.carried[key] = tuple(state.detach() for state in final)
            return out
        if mask is not None and bool(mask.all()):
            mask = None
        if self.fused and rec_masks is None and x.shape[1] > 0:
            if in_masks is not None:
                x = x * in_masks[0]
            if mask is None:
                return d.run_fused(x)[0]
            if _contiguous(mask)[0]:
                return _run_aligned(d, x, mask, zero, last)
            in_masks = None
        self.loop_calls += 1
        return d.run_loop(x, mask, zero, in_masks, rec_masks)

    def forward(self, h: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        layer = self.layer
        out_mask = mask if layer.return_sequences else None
        last = not layer.return_sequences
        if not layer.bidirectional:
            out = self._direction(self.directions["fwd"], h, mask, layer.go_backwards, False, last)
            return out, out_mask
        zero = layer.return_sequences
        fwd = self._direction(self.directions["fwd"], h, mask, False, zero, last)
        bwd = self._direction(self.directions["bwd"], h, mask, True, zero, last)
        if layer.return_sequences:
            bwd = bwd.flip(1)
        mode = layer.merge_mode
        if mode == "concat":
            return torch.cat([fwd, bwd], dim=-1), out_mask
        if mode == "sum":
            return fwd + bwd, out_mask
        if mode == "mul":
            return fwd * bwd, out_mask
        return (fwd + bwd) / 2, out_mask


def _gated_unfusable(layer: Any) -> str | None:
    if layer.activation != "tanh" or layer.recurrent_activation != "sigmoid":
        return f"activation {layer.activation}, recurrent_activation {layer.recurrent_activation}"
    return None


States = tuple[Tensor, ...]


def _fused_simple_rnn(layer: Any, x: Tensor, states: States, params: list[Tensor], has_bias: bool, train: bool):
    op = torch._VF.rnn_tanh if layer.activation == "tanh" else torch._VF.rnn_relu
    out, h = op(x, states[0], params, has_bias, 1, 0.0, train, False, True)
    return out, (h,)


def _fused_lstm(layer: Any, x: Tensor, states: States, params: list[Tensor], has_bias: bool, train: bool):
    out, h, c = torch._VF.lstm(x, states, params, has_bias, 1, 0.0, train, False, True)
    return out, (h, c)


def _fused_gru(layer: Any, x: Tensor, states: States, params: list[Tensor], has_bias: bool, train: bool):
    out, h = torch._VF.gru(x, states[0], params, has_bias, 1, 0.0, train, False, True)
    return out, (h,)


def _add_bias(z: Tensor, bias: Tensor | None) -> Tensor:
    return z if bias is None else z + bias


@cell(
    "simple_rnn",
    fused=_fused_simple_rnn,
    unfusable=lambda layer: None if layer.activation in ("tanh", "relu") else f"activation {layer.activation}",
    gate_dropout=False,
)
def simple_rnn_step(d: _Direction, xk: Tensor, states: tuple[Tensor, ...], rec_masks: Tensor | None):
    """Keras ``SimpleRNNCell``: ``h = activation(x·W + b + h·U)``."""
    out = d.act(_add_bias(xk + _project(states[0], d.recurrent_kernel, rec_masks), d.biases()[1]))
    return out, (out,)


@cell("lstm", states=2, fused=_fused_lstm, unfusable=_gated_unfusable)
def lstm_step(d: _Direction, xk: Tensor, states: tuple[Tensor, ...], rec_masks: Tensor | None):
    """Keras ``LSTMCell`` (gates i, f, c, o): ``c = f·c + i·act(z_c)``, ``h = o·act(c)``."""
    z = _add_bias(xk + _project(states[0], d.recurrent_kernel, rec_masks), d.biases()[1])
    i, f, g, o = z.split(d.units, dim=1)
    c = d.gate(f) * states[1] + d.gate(i) * d.act(g)
    out = d.gate(o) * d.act(c)
    return out, (out, c)


def _gru_unfusable(layer: Any) -> str | None:
    return "GRU reset_after: false" if not layer.reset_after else _gated_unfusable(layer)


@cell("gru", fused=_fused_gru, unfusable=_gru_unfusable)
def gru_step(d: _Direction, xk: Tensor, states: tuple[Tensor, ...], rec_masks: Tensor | None):
    """Keras ``GRUCell`` (gates z, r, h), both ``reset_after`` forms; ``h = z·h + (1-z)·candidate``."""
    u = d.units
    h = states[0]
    recurrent = d.recurrent_kernel
    _, b_rec = d.biases()
    if d.layer.reset_after:
        hz = _add_bias(_project(h, recurrent, rec_masks), b_rec)
        z, r = d.gate(xk[:, : 2 * u] + hz[:, : 2 * u]).split(u, dim=1)
        candidate = d.act(xk[:, 2 * u :] + r * hz[:, 2 * u :])
    else:
        zr_masks = None if rec_masks is None else rec_masks[:2] if len(rec_masks) == 3 else rec_masks
        hz = _add_bias(_project(h, recurrent[:, : 2 * u], zr_masks), None if b_rec is None else b_rec[: 2 * u])
        z, r = d.gate(xk[:, : 2 * u] + hz).split(u, dim=1)
        h_h = h if rec_masks is None else h * rec_masks[-1]
        hh = _add_bias((r * h_h) @ recurrent[:, 2 * u :], None if b_rec is None else b_rec[2 * u :])
        candidate = d.act(xk[:, 2 * u :] + hh)
    out = z * h + (1 - z) * candidate
    return out, (out,)


# -- the model ----------------------------------------------------------------------------------------


class _Layers(nn.Module):
    """The layer modules by their spec names, in order. ``nn.ModuleDict`` and ``add_module`` refuse a name that
    is an attribute of the container (``forward``, ``training``, ``keys``, ``to``...), while Keras and a spec take
    any such name for a layer: such a module is held under the name plus ``_`` (its state-dict key), and looked up,
    listed and iterated by its spec name."""

    def __init__(self, layers: dict[str, nn.Module]):
        super().__init__()
        self.keys_by_name: dict[str, str] = {}  # set first: a layer may be named keys_by_name too
        for name, module in layers.items():
            key = name
            while hasattr(self, key):
                key += "_"
            self.add_module(key, module)
            self.keys_by_name[name] = key

    def __getitem__(self, name: str) -> nn.Module:
        return self._modules[self.keys_by_name[name]]  # type: ignore[return-value]

    def __iter__(self) -> Any:
        return iter(self.keys_by_name)

    def __len__(self) -> int:
        return len(self.keys_by_name)

    def items(self) -> Any:
        return [(name, self._modules[key]) for name, key in self.keys_by_name.items()]


class RnnspecModule(nn.Module):
    """A spec compiled to PyTorch. ``forward(x)`` gives the outputs as the head defines them
    (probabilities for sigmoid/softmax); ``forward(x, logits=True)`` the pre-activation of the layer whose activation
    makes the outputs (the output Dense layer, or an ``activation`` entry after it).

    After each call :attr:`output_mask` holds Keras's mask of the outputs (``(batch, time)`` bool for
    per-step outputs of a masked model, else None): the trainer's losses and metrics skip padding with it.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        setattr(self, MODEL_SPEC_ATTR, spec)
        setattr(self, MODEL_BACKEND_ATTR, "torch")
        self.spec = spec
        stack = spec.stack()
        BUILDERS.check(stack)
        CELLS.check([(name, layer) for name, layer in stack if isinstance(layer, RecurrentLayer)])
        layers: dict[str, nn.Module] = {}
        for row in analyze(spec).layers:
            assert row.layer is not None
            shapes = row.layer.weight_shapes(row.input_dim, spec.convention)
            module = BUILDERS.get(row.layer.kind, row.name)(row.layer, row.name, shapes)
            for leaf in shapes:
                if not row.layer.leaf_trainable(leaf):  # frozen (`trainable: false`): the trainer never updates it
                    module.parameter(leaf).requires_grad_(False)
            layers[row.name] = module
        self.layers = _Layers(layers)
        self.embedding_name = next((name for name, layer in stack if layer is spec.embedding), None)
        output = spec.output_activation_layer  # the Dense layer or Activation whose activation makes the outputs
        self.output_name = output[0] if output is not None else None
        self.head_name = self.output_name
        self.recurrent_names = [name for name, layer in stack if isinstance(layer, RecurrentLayer)]
        self.capture_embedding = False
        self.embedded: Tensor | None = None
        self.embedded_ids: Tensor | None = None
        self.output_mask: Tensor | None = None

    def forward(self, x: Tensor, logits: bool = False) -> Tensor:
        h = x.long() if self.embedding_name is not None else x.to(next(self.parameters()).dtype)
        mask: Tensor | None = None
        for name, module in self.layers.items():
            if name == self.output_name:
                h, mask = module(h, mask, activate=not logits)
            else:
                h, mask = module(h, mask)
            if name == self.embedding_name and self.capture_embedding and h.requires_grad:
                # the trainer reads the gradient per token occurrence (TensorFlow's IndexedSlices)
                h.retain_grad()
                self.embedded, self.embedded_ids = h, x.long()
        self.output_mask = mask
        return h

    def parameter_of(self, canonical: str) -> nn.Parameter:
        """The parameter behind a canonical weight name (``recurrent_0/forward/kernel``...)."""
        layer, _, leaf = canonical.partition("/")
        try:
            return self.layers[layer].parameter(leaf)
        except KeyError:
            raise KeyError(f"{canonical!r} is not a weight of spec {self.spec.name!r}") from None


class TorchBackend(
    TrainableBackend, Threads, MatmulTiming, DeviceCheck, DataParallel, TableLiveModels, StateDictReader
):
    """Builds :class:`RnnspecModule` and moves canonical weights in and out of it."""

    name = "torch"

    def build(self, spec: ModelSpec) -> RnnspecModule:
        return RnnspecModule(spec)

    def live(self, obj: Any) -> Any:
        """A driver of a user's own ``torch.nn.Module`` for :mod:`rnnspec.testing` (None for anything else)."""
        from .live import live

        return live(obj)

    def set_weights(self, model: RnnspecModule, weights: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for name, value in weights.items():
                param = model.parameter_of(name)
                param.copy_(torch.as_tensor(np.asarray(value), dtype=param.dtype, device=param.device))

    def get_weights(self, model: RnnspecModule) -> dict[str, np.ndarray]:
        return {
            name: model.parameter_of(name).detach().cpu().numpy().astype(np.float32, copy=True)
            for name in weight_shapes(model.spec)
        }

    def count_params(self, model: RnnspecModule) -> dict[str, int]:
        """Parameters per layer name, 0 for weightless layers (masking, dropout)."""
        return {name: sum(p.numel() for p in module.parameters()) for name, module in model.layers.items()}

    def predict(self, model: RnnspecModule, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        step = batch_size or max(len(x), 1)
        try:
            # no autograd bookkeeping at all (inference_mode: ~3% of a forward), except for a stateful layer's
            # states, which stay with the model and must stay usable outside inference mode
            with torch.no_grad() if model.spec.stateful else torch.inference_mode():
                starts = range(0, max(len(x), 1), step)  # an empty batch still runs once, for its shape
                outs = [model(torch.as_tensor(x[k : k + step], device=device)).cpu() for k in starts]
        finally:
            model.train(was_training)
        return torch.cat(outs).numpy()

    def reset_states(self, model: RnnspecModule) -> None:
        """Stateful layers start the next batch from zero states (Keras's ``layer.reset_state()``)."""
        for _, module in model.layers.items():
            if isinstance(module, _Recurrent):
                module.carried = {}

    def summary(self, model: RnnspecModule) -> str:
        from rnnspec.lang.analysis import LayerRow
        from rnnspec.lang.summary import render_rows

        spec = model.spec
        time = spec.input.seq_len or next(t for t in itertools.count(3) if spec.windows_fit(t))
        rows = {row.name: row.output_shape for row in analyze(spec).layers}  # time None where it is variable
        x = torch.ones((1, time), dtype=torch.long) if spec.embedding else torch.ones((1, time, spec.input.features))
        shapes: dict[str, tuple[int | None, ...]] = {}

        def record(name: str, out: tuple[Tensor, Tensor | None]) -> None:
            dims = out[0].shape[1:]
            free = spec.input.seq_len is None
            shapes[name] = (
                None,
                *(rows[name][1] if (free and k == 0 and len(dims) > 1) else d for k, d in enumerate(dims)),
            )

        hooks = [
            module.register_forward_hook(lambda _m, _i, out, name=name: record(name, out))
            for name, module in model.layers.items()
        ]
        carried = {name: dict(m.carried) for name, m in model.layers.items() if isinstance(m, _Recurrent)}
        try:
            self.reset_states(model)  # a stateful layer's states are the user's: the shape probe leaves them
            self.predict(model, x.numpy())
        finally:
            for hook in hooks:
                hook.remove()
            for name, states in carried.items():
                model.layers[name].carried = states
        types = {row.name: row.type for row in analyze(spec).layers}
        counts = self.count_params(model)
        rows = [LayerRow(name, f"{types[name]}, torch", shapes[name], counts[name], "", 0) for name in model.layers]
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        return render_rows(spec.name, rows, trainable=trainable, non_trainable=frozen, note="torch.nn.Module")

    def notes(self, model: RnnspecModule) -> list[str]:
        return [module.note(name) for name, module in model.layers.items() if isinstance(module, _Recurrent)]

    def matmul_seconds(self, shapes: list[tuple[int, int, int, int]], repeats: int = 3) -> float:
        """Seconds for ``count`` products ``(m, k) @ (k, n)`` of each shape with ``torch.mm`` in float32 on the
        CPU (the best of ``repeats``, after one warm-up): the GEMM floor of ``rnnspec bench``."""
        pairs = [(torch.rand(m, k), torch.rand(k, n), c) for m, k, n, c in shapes]
        best = float("inf")
        for _ in range(repeats + 1):
            start = time.perf_counter()
            for a, b, count in pairs:
                for _ in range(count):
                    torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        return best

    def set_threads(self, threads: int) -> None:
        """Intra-op threads for this process; inter-op work (none in an RNN step) gets one thread."""
        torch.set_num_threads(threads)
        # settable only before the first parallel work; after that it stays as it is
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)

    def init_distributed(self, device: str | None) -> tuple[int, int]:
        """Join the process group torchrun started this process in: ``(rank, world size)``."""
        from .dist import init_from_env

        return init_from_env(device)

    def finish_distributed(self) -> None:
        """Leave the process group once the work is done (every rank calls it)."""
        from .dist import finish

        finish()

    def launch(self, nproc: int, args: list[str]) -> int:
        """``rnnspec ARGS`` in ``nproc`` data-parallel processes (torchrun's launcher API); the exit code."""
        from .dist import launch

        return launch(nproc, args)

    def check_device(self, device: str | None) -> None:
        """Refuse, before any work, a device this machine does not have (``--device cuda`` without CUDA)."""
        from .train import resolve_device

        resolve_device(device)

    def trainer(self, model: RnnspecModule, training: Any, device: str | None = None) -> Any:
        from .train import TorchTrainer

        return TorchTrainer(model, training, device)

    def load_artifact(self, path: Path) -> RnnspecModule:
        return load_artifact(path)

    def read_state_dict(self, path: Path) -> list[tuple[str, np.ndarray]]:
        """A user's ``torch.save``-d state dict as ``(key, array)`` pairs (see :mod:`.io`)."""
        from .io import read_state_dict

        return read_state_dict(path)

    def save_artifact(self, model: RnnspecModule, directory: Path) -> list[Path]:
        from safetensors.torch import save

        from rnnspec.util import write_bytes_atomic

        path = Path(directory) / f"{model.spec.name}.torch.safetensors"
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        metadata = {"format": "rnnspec-torch-state-dict/1", "spec": json.dumps(model.spec.to_dict(), sort_keys=True)}
        write_bytes_atomic(path, save(state, metadata=metadata))
        return [path]


def load_artifact(path: str | Path) -> RnnspecModule:
    """Load a ``.torch.safetensors`` artifact written by ``rnnspec build -o`` (no unpickling).

    Every way the file can be wrong (not safetensors, no spec, a broken spec, tensors that do not
    fit the spec) is an :class:`RnnspecError` naming the file.
    """
    from rnnspec.core.weights import load_weights_file
    from rnnspec.lang.errors import RnnspecError
    from rnnspec.lang.loader import loads_spec

    tensors, metadata = load_weights_file(path)
    if "spec" not in metadata:
        raise RnnspecError(
            f"{path}: a safetensors file without an rnnspec spec, so not a torch artifact written by rnnspec. "
            "fix: pass the spec too (`rnnspec convert FILE --spec SPEC`), or import a state dict with `rnnspec import`"
        )
    spec = loads_spec(metadata["spec"], file=f"{path} (embedded spec)", fmt="json")
    model = RnnspecModule(spec)
    try:
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()})
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise RnnspecError(
            f"{path}: its tensors do not fit its spec {spec.name!r} ({' '.join(first[1:3]).strip()[:300]}); "
            "the file was altered or is damaged"
        ) from None
    return model


BACKEND = TorchBackend()
