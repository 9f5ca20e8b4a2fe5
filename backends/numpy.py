"""The NumPy reference: a forward-only interpreter of a spec, written from the equations.

It is the executable definition of rnnspec's semantics (Keras's): every cell, activation,
mask, direction, merge mode and head, in float64, with one explicit loop over time. It is the
third voice in every parity check, so it favours plainness over speed.

Masking follows Keras's ``rnn`` loop (``keras/src/backend/tensorflow/rnn.py``): at a masked step
the state is kept and the output is the previous step's output (zeros before the first valid
step), or zeros when ``zero_output_for_mask`` (Keras sets it for both directions of a
bidirectional layer that returns sequences). ``go_backwards`` processes the reversed sequence
and returns the outputs in processing order. A layer that returns sequences passes the mask on
unchanged (not reversed), as Keras's ``RNN.compute_mask`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.lang.analysis import GATES
from rnnspec.lang.spec import GRUSpec, LSTMSpec, ModelSpec, SimpleRNNSpec
from rnnspec.runtime.backend import MODEL_BACKEND_ATTR, MODEL_SPEC_ATTR
from rnnspec.runtime.weights import weight_shapes

__all__ = ["ACTIVATIONS", "BACKEND", "NumpyBackend", "NumpyModel", "forward"]

Array = np.ndarray

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


def _softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    "softplus": _softplus,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "swish": lambda x: x * _sigmoid(x),
    "exponential": np.exp,
    "softmax": _softmax,
}

Step = Callable[[Array, tuple[Array, ...]], tuple[Array, tuple[Array, ...]]]


def _cell_step(layer: Any, w: dict[str, Array]) -> tuple[Step, int]:
    """The step function of one direction of ``layer`` and the number of state tensors."""
    units = layer.units
    act = ACTIVATIONS[layer.activation]
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]
    gu = GATES[layer.cell] * units
    bias = w.get("bias")
    if bias is None:
        input_bias, recurrent_bias = np.zeros(gu), np.zeros(gu)
    elif bias.ndim == 2:
        input_bias, recurrent_bias = bias[0], bias[1]
    else:
        input_bias, recurrent_bias = bias, w.get("recurrent_bias", np.zeros(gu))

    if isinstance(layer, SimpleRNNSpec):

        def simple(x: Array, states: tuple[Array, ...]) -> tuple[Array, tuple[Array, ...]]:
            h = act(x @ kernel + input_bias + states[0] @ recurrent + recurrent_bias)
            return h, (h,)

        return simple, 1

    gate = ACTIVATIONS[layer.recurrent_activation]
    if isinstance(layer, LSTMSpec):

        def lstm(x: Array, states: tuple[Array, ...]) -> tuple[Array, tuple[Array, ...]]:
            h, c = states
            z = x @ kernel + input_bias + h @ recurrent + recurrent_bias
            i, f, g, o = (z[:, k * units : (k + 1) * units] for k in range(4))
            c = gate(f) * c + gate(i) * act(g)
            h = gate(o) * act(c)
            return h, (h, c)

        return lstm, 2

    assert isinstance(layer, GRUSpec)
    zr, hh = slice(0, 2 * units), slice(2 * units, 3 * units)

    def gru(x: Array, states: tuple[Array, ...]) -> tuple[Array, tuple[Array, ...]]:
        (h,) = states
        xz = x @ kernel + input_bias
        if layer.reset_after:
            hz = h @ recurrent + recurrent_bias
            zr_gates = gate(xz[:, zr] + hz[:, zr])
            z, r = zr_gates[:, :units], zr_gates[:, units:]
            candidate = act(xz[:, hh] + r * hz[:, hh])
        else:
            zr_gates = gate(xz[:, zr] + h @ recurrent[:, zr] + recurrent_bias[zr])
            z, r = zr_gates[:, :units], zr_gates[:, units:]
            candidate = act(xz[:, hh] + (r * h) @ recurrent[:, hh] + recurrent_bias[hh])
        h = z * h + (1.0 - z) * candidate
        return h, (h,)

    return gru, 1


def _run_direction(
    step: Step,
    n_states: int,
    units: int,
    x: Array,
    mask: Array | None,
    *,
    go_backwards: bool,
    zero_output_for_mask: bool,
) -> tuple[Array, Array]:
    """Keras's ``rnn`` loop: ``(last_output, outputs)`` with outputs in processing order."""
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    batch, time = x.shape[0], x.shape[1]
    states = tuple(np.zeros((batch, units)) for _ in range(n_states))
    previous = np.zeros((batch, units))
    outputs = np.zeros((batch, time, units))
    for t in range(time):
        out, new_states = step(x[:, t], states)
        if mask is not None:
            keep = mask[:, t, None]
            out = np.where(keep, out, 0.0 if zero_output_for_mask else previous)
            new_states = tuple(np.where(keep, s_new, s_old) for s_new, s_old in zip(new_states, states, strict=True))
        outputs[:, t] = out
        previous, states = out, new_states
    last = outputs[:, -1] if time else np.zeros((batch, units))
    return last, outputs


def _merge(mode: str, a: Array, b: Array) -> Array:
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    return (a + b) / 2.0


def _recurrent_layer(layer: Any, prefix: str, weights: dict[str, Array], x: Array, mask: Array | None) -> Array:
    def direction(tag: str, go_backwards: bool, zero_output: bool) -> Array:
        w = {k[len(tag) :]: v for k, v in weights.items() if k.startswith(tag)}
        step, n_states = _cell_step(layer, w)
        last, seq = _run_direction(
            step, n_states, layer.units, x, mask, go_backwards=go_backwards, zero_output_for_mask=zero_output
        )
        return seq if layer.return_sequences else last

    if not layer.bidirectional:
        return direction(f"{prefix}/", layer.go_backwards, False)
    zero = layer.return_sequences
    forward = direction(f"{prefix}/forward/", False, zero)
    backward = direction(f"{prefix}/backward/", True, zero)
    if layer.return_sequences:
        backward = backward[:, ::-1]
    return _merge(layer.merge_mode, forward, backward)


def forward(spec: ModelSpec, weights: dict[str, Array], x: Array) -> Array:
    """Outputs of ``spec`` with canonical ``weights`` for input ``x``, computed in float64."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    names = iter(spec.layer_names())
    mask: Array | None = None
    if spec.embedding is not None:
        name = next(names)
        ids = np.asarray(x, dtype=np.int64)
        h = w[f"{name}/embeddings"][ids]
        if spec.embedding.mask_zero:
            mask = ids != 0
    else:
        h = np.asarray(x, dtype=np.float64)
    for layer in spec.recurrent:
        h = _recurrent_layer(layer, next(names), w, h, mask)
        if not layer.return_sequences:
            mask = None
    if spec.head is not None:
        name = next(names)
        h = h @ w[f"{name}/kernel"]
        if spec.head.use_bias:
            h = h + w[f"{name}/bias"]
        h = ACTIVATIONS[spec.head.activation](h)
    return h


class NumpyModel:
    """A spec plus canonical weights; calling it runs :func:`forward`."""

    def __init__(self, spec: ModelSpec):
        setattr(self, MODEL_SPEC_ATTR, spec)
        setattr(self, MODEL_BACKEND_ATTR, "numpy")
        self.spec = spec
        self.weights: dict[str, Array] = {}

    def __call__(self, x: Array) -> Array:
        return forward(self.spec, self.weights, x)

    def __repr__(self) -> str:
        return f"NumpyModel({self.spec.name!r}, {len(self.weights)} weights)"


class NumpyBackend:
    """The reference backend (forward only)."""

    name = "numpy"

    def build(self, spec: ModelSpec) -> NumpyModel:
        model = NumpyModel(spec)
        model.weights = {k: np.zeros(s, dtype=np.float32) for k, s in weight_shapes(spec).items()}
        return model

    def set_weights(self, model: NumpyModel, weights: dict[str, Array]) -> None:
        model.weights = {k: np.array(v, dtype=np.float32) for k, v in weights.items()}

    def get_weights(self, model: NumpyModel) -> dict[str, Array]:
        return {k: v.copy() for k, v in model.weights.items()}

    def count_params(self, model: NumpyModel) -> dict[str, int]:
        counts = {name: 0 for name in model.spec.layer_names()}
        for key, value in model.weights.items():
            counts[key.split("/", 1)[0]] += int(value.size)
        return counts

    def predict(self, model: NumpyModel, x: Array) -> Array:
        return model(x).astype(np.float32)

    def summary(self, model: NumpyModel) -> str:
        from rnnspec.lang.analysis import analyze
        from rnnspec.lang.summary import render_summary

        return render_summary(analyze(model.spec))

    def save_artifact(self, model: NumpyModel, directory: Path) -> list[Path]:
        from rnnspec.runtime.weights import save_weights_file

        path = Path(directory) / f"{model.spec.name}.numpy.safetensors"
        save_weights_file(model.weights, path, model.spec)
        return [path]

    def load_artifact(self, path: Path) -> NumpyModel:
        from rnnspec.runtime.models import spec_from_weights_file
        from rnnspec.runtime.weights import load_weights_file

        model = self.build(spec_from_weights_file(path))
        self.set_weights(model, load_weights_file(path)[0])
        return model

    def notes(self, model: NumpyModel) -> list[str]:
        return ["NumPy reference: forward only, float64 arithmetic, one explicit loop per time step"]


BACKEND = NumpyBackend()
