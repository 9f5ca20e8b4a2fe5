"""What the PyTorch model and its trainer share: Keras's activations and dropout, on torch tensors.

Both :mod:`rnnspec_backends.torch` (the model) and :mod:`rnnspec_backends.torch.train` (the
trainer) import this module; neither imports the other at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ACTIVATIONS", "LossOps", "activation", "dropout", "dropout_generator", "dropout_mask"]

_GENERATOR: ContextVar[torch.Generator | None] = ContextVar("rnnspec_dropout_generator", default=None)
"""The generator dropout masks are drawn from (None: PyTorch's global one)."""


@contextlib.contextmanager
def dropout_generator(generator: torch.Generator | None) -> Iterator[None]:
    """Draw the dropout masks of the enclosed forward passes from ``generator``: a trainer seeds its own,
    so that training is repeatable from its seed and a checkpoint can save where the masks are."""
    token = _GENERATOR.set(generator)
    try:
        yield
    finally:
        _GENERATOR.reset(token)


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    # Keras 3: clip(x / 6 + 0.5, 0, 1), which is PyTorch's hardsigmoid
    "hard_sigmoid": F.hardsigmoid,
    "relu": torch.relu,
    "elu": F.elu,
    "selu": lambda x: _SELU_SCALE * torch.where(x > 0, x, _SELU_ALPHA * torch.expm1(torch.clamp(x, max=0.0))),
    # Keras's default approximate=False: 0.5·x·(1 + erf(x/√2)), PyTorch's approximate="none"
    "gelu": F.gelu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "exponential": torch.exp,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
}
"""Keras's activations by name: every element-wise one of :data:`rnnspec.lang.layers.ACTIVATIONS`, and
``softmax`` / ``log_softmax`` over the last axis."""


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation ``name``, or a clear error for a name PyTorch's backend does not implement."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"the torch backend has no activation {name!r}; it has: {', '.join(ACTIVATIONS)}") from None


class LossOps:
    """PyTorch's operations for the losses' and metrics' formulas (:mod:`rnnspec.lang.losses`)."""

    clip = staticmethod(torch.clamp)
    log = staticmethod(torch.log)
    abs = staticmethod(torch.abs)
    where = staticmethod(torch.where)

    @staticmethod
    def bce_logits(x: Tensor, y: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(x, y, reduction="none")

    @staticmethod
    def log_softmax(v: Tensor) -> Tensor:
        return torch.log_softmax(v, -1)

    @staticmethod
    def take_last(p: Tensor, y: Tensor) -> Tensor:
        return p.gather(-1, y.long().unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def sum_last(v: Tensor) -> Tensor:
        return v.sum(-1, keepdim=True)

    @staticmethod
    def mean_last(v: Tensor) -> Tensor:
        return v.mean(-1)


def dropout_mask(like: Tensor, shape: tuple[int, ...], rate: float) -> Tensor:
    """Keras's inverted-dropout multiplier of ``shape``: 0 with probability ``rate``, else exactly
    ``1/(1-rate)`` (in the tensor's dtype, as TensorFlow's ``x * scale``)."""
    keep = like.new_empty(shape).bernoulli_(1.0 - rate, generator=_GENERATOR.get())
    return keep * (1.0 / (1.0 - rate))


def dropout(x: Tensor, rate: float, noise_shape: tuple[int, ...] | None = None) -> Tensor:
    """Keras's ``backend.random.dropout``: one multiplier per element of ``noise_shape`` (broadcast over
    ``x``; default: every element), kept elements scaled by ``1/(1-rate)``. Identity for rate 0."""
    if rate <= 0.0:
        return x
    return x * dropout_mask(x, tuple(x.shape) if noise_shape is None else noise_shape, rate)
