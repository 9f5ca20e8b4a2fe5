"""The NumPy reference: a forward-only interpreter of a spec, written from the equations.

It is the executable definition of rnnspec's semantics (Keras's, at inference): every layer kind,
cell, activation, mask, direction, merge mode and head, in float64, with one explicit loop over
time. It is the third voice in every parity check, so it favours plainness over speed.

:func:`forward` is a loop over the spec's layers (:meth:`~rnnspec.lang.spec.ModelSpec.stack`);
:func:`forward_masked` also returns the mask on the outputs. Each layer kind has one forward
function in :data:`FORWARD`, ``fn(layer, w, h, mask) -> (h, mask)``, where ``w`` holds the layer's
own weights by leaf (``kernel``, ``forward/bias``...). The mask flows as in Keras: ``Masking`` and
an ``Embedding`` with ``mask_zero`` create it; ``Dropout``, ``SpatialDropout1D``, ``Dense`` and
``LayerNormalization`` and ``Activation`` pass it on; a recurrent layer passes it on when it returns sequences and
drops it otherwise.
Dropout layers are the identity (inference only).

Each recurrent cell kind has one step function in :data:`STEPS`, registered with :func:`cell`
(which also declares how many state tensors it carries); the shared loop over time, the
directions and the merge are the same for every cell. A new cell is one step function and one
``@cell(...)`` line.

Masking follows Keras's ``rnn`` loop (``keras/src/backend/tensorflow/rnn.py``): at a masked step
the state is kept and the output is the previous step's output (zeros before the first valid
step), or zeros when ``zero_output_for_mask`` (Keras sets it for both directions of a
bidirectional layer that returns sequences). ``go_backwards`` processes the reversed sequence
and returns the outputs in processing order. A layer that returns sequences passes the mask on
unchanged (not reversed), as Keras's ``RNN.compute_mask`` does. ``Masking(mask_value)`` masks a
step where every feature equals ``mask_value`` and sets its features to 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.backend import MODEL_BACKEND_ATTR, MODEL_SPEC_ATTR, Backend, ReferenceVariants
from rnnspec.core.kinds import KindRegistry
from rnnspec.core.weights import weight_shapes
from rnnspec.lang.layers import RecurrentLayer, pooled_steps, same_padding
from rnnspec.lang.spec import ModelSpec

__all__ = [
    "ACTIVATIONS",
    "BACKEND",
    "FORWARD",
    "STEPS",
    "Cell",
    "DirectionWeights",
    "NumpyBackend",
    "NumpyModel",
    "cell",
    "forward",
    "forward_masked",
]

Array = np.ndarray
Mask = Array | None

# -- activations ------------------------------------------------------------------------------------

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805
_erf = np.vectorize(math.erf, otypes=[np.float64])
"""The error function element-wise (NumPy has none; ``math.erf`` is exact in float64)."""


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


def _gelu(x: Array) -> Array:
    """Keras's ``gelu`` with its default ``approximate=False``: ``0.5·x·(1 + erf(x/√2))``."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


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
    "gelu": _gelu,
    "softplus": _softplus,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "swish": lambda x: x * _sigmoid(x),
    "exponential": np.exp,
    "softmax": _softmax,
    "log_softmax": lambda x: (
        (x - x.max(axis=-1, keepdims=True))
        - np.log(np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True))
    ),
}
"""Keras's activations by name: every element-wise one of :data:`rnnspec.lang.layers.ACTIVATIONS`, and
``softmax`` / ``log_softmax`` over the last axis."""

# -- the registries ---------------------------------------------------------------------------------

FORWARD = KindRegistry("numpy", "forward function")
"""Layer kind → ``fn(layer, w, h, mask) -> (h, mask)``; ``w`` maps the layer's weight leaves to float64 arrays."""
STEPS = KindRegistry("numpy", "step function")
"""Recurrent cell kind → its :class:`Cell` (step function and number of state tensors)."""


@dataclass(frozen=True)
class DirectionWeights:
    """The weights of one direction of a recurrent layer, biases always present (zeros where the spec has none)."""

    kernel: Array
    """``(inputs, gates·units)``."""
    recurrent_kernel: Array
    """``(units, gates·units)``."""
    input_bias: Array
    """``(gates·units,)``: Keras's bias (PyTorch's ``bias_ih``)."""
    recurrent_bias: Array
    """``(gates·units,)``: row 1 of a reset-after GRU's bias, or PyTorch's ``bias_hh``; zeros otherwise."""

    @classmethod
    def of(cls, w: dict[str, Array]) -> DirectionWeights:
        kernel, recurrent = w["kernel"], w["recurrent_kernel"]
        zeros = np.zeros(kernel.shape[1])
        bias = w.get("bias")
        if bias is None:
            return cls(kernel, recurrent, zeros, zeros)
        if bias.ndim == 2:  # Keras's (2, gates·units) bias: input row, recurrent row
            return cls(kernel, recurrent, bias[0], bias[1])
        return cls(kernel, recurrent, bias, w.get("recurrent_bias", zeros))


StepFunction = Callable[[Any, DirectionWeights, Array, tuple[Array, ...]], tuple[Array, tuple[Array, ...]]]
"""``step(layer, w, x_t, states) -> (output, states)``: one time step of the cell, Keras's equations."""


@dataclass(frozen=True)
class Cell:
    """How one recurrent cell kind runs: its step function and how many state tensors it carries."""

    step: StepFunction
    states: int = 1


def cell(*kinds: str, states: int = 1) -> Callable[[StepFunction], StepFunction]:
    """Decorator: register a step function as the :class:`Cell` of ``kinds`` (and the recurrent forward for them)."""

    def decorate(step: StepFunction) -> StepFunction:
        for kind in kinds:
            STEPS.add(kind, Cell(step, states))
            FORWARD.add(kind, _recurrent)
        return step

    return decorate


# -- weightless and input-side layers -------------------------------------------------------------------


@FORWARD.register("masking")
def _masking(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``Masking``: a step is kept where any feature differs from ``mask_value``; masked steps become 0."""
    keep = np.any(h != layer.mask_value, axis=-1)
    return np.where(keep[..., None], h, 0.0), keep


@FORWARD.register("embedding")
def _embedding(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``Embedding``: rows of the table; with ``mask_zero`` the mask is ``ids != 0``, with ``padding_idx``
    ``ids != padding_idx`` (else none)."""
    ids = np.asarray(h, dtype=np.int64)
    return w["embeddings"][ids], (ids != layer.mask_id) if layer.mask_id is not None else None


@FORWARD.register("dropout", "spatial_dropout")
def _identity(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``Dropout`` / ``SpatialDropout1D`` at inference: the identity; the mask passes on."""
    return h, mask


@FORWARD.register("dense")
def _dense(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``Dense`` (on every step of a sequence); the mask passes on."""
    z = h @ w["kernel"]
    if "bias" in w:
        z = z + w["bias"]
    return ACTIVATIONS[layer.activation](z), mask


@FORWARD.register("layer_norm")
def _layer_norm(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``LayerNormalization`` over the features of each step: ``(h - mean) / sqrt(var + epsilon)``
    with the biased variance (``tf.nn.moments``), times ``gamma``, plus ``beta``; the mask passes on."""
    mean = h.mean(axis=-1, keepdims=True)
    var = np.square(h - mean).mean(axis=-1, keepdims=True)
    out = (h - mean) / np.sqrt(var + layer.epsilon)
    if "gamma" in w:
        out = out * w["gamma"]
    if "beta" in w:
        out = out + w["beta"]
    return out, mask


@FORWARD.register("batch_norm")
def _batch_norm(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``BatchNormalization`` at inference: ``(h - moving_mean) / sqrt(moving_variance + epsilon)`` times
    ``gamma``, plus ``beta``, per feature (the moving statistics; the NumPy reference does not train); the mask
    passes on."""
    out = (h - w["moving_mean"]) / np.sqrt(w["moving_variance"] + layer.epsilon)
    if "gamma" in w:
        out = out * w["gamma"]
    if "beta" in w:
        out = out + w["beta"]
    return out, mask


@FORWARD.register("activation")
def _activation(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``Activation``: the activation alone (softmax / log_softmax over the last axis); the mask passes on."""
    return ACTIVATIONS[layer.activation](h), mask


@FORWARD.register("repeat_vector")
def _repeat_vector(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``RepeatVector(n)``: ``(batch, features)`` → ``(batch, n, features)``, the vector at every step; Keras
    drops any mask here."""
    return np.repeat(h[:, None, :], layer.repeat_vector, axis=1), None


@FORWARD.register("flatten")
def _flatten(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``Flatten``: ``(batch, steps, features)`` → ``(batch, steps * features)``, C order; no mask after."""
    return h.reshape(h.shape[0], -1), None


@FORWARD.register("global_max_pool")
def _global_max_pool(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``GlobalMaxPooling1D``: the max over **every** step (Keras's layer ignores the mask); no mask after."""
    return h.max(axis=1, keepdims=layer.keepdims), None


@FORWARD.register("global_average_pool")
def _global_average_pool(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``GlobalAveragePooling1D``: the mean over the valid steps, ``sum(where(mask, h, 0)) / sum(mask)``
    (a fully padded row is 0/0: NaN, as in Keras); no mask after."""
    if mask is None:
        return h.mean(axis=1, keepdims=layer.keepdims), None
    keep = mask[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(keep, h, 0.0).sum(axis=1, keepdims=layer.keepdims)
        return total / keep.sum(axis=1, keepdims=layer.keepdims), None


def _windows(layer: Any, steps: int) -> list[range]:
    """The real steps in each of Keras's pooling windows: ``valid`` whole windows only; ``same`` windows padded as
    Keras pads (:func:`rnnspec.lang.layers.same_padding`), clipped to the sequence."""
    k, s = layer.pool_size, layer.strides
    left = same_padding(steps, k, s)[0] if layer.padding == "same" else 0
    count = pooled_steps(steps, k, s, layer.padding) or 0
    return [range(max(i * s - left, 0), min(i * s - left + k, steps)) for i in range(count)]


def _pool(layer: Any, h: Array, reduce: Callable[[Array], Array]) -> Array:
    windows = _windows(layer, h.shape[1])
    out = np.zeros((h.shape[0], len(windows), h.shape[2]))
    for i, r in enumerate(windows):
        out[:, i] = reduce(h[:, r.start : r.stop])
    return out


@FORWARD.register("max_pool")
def _max_pool(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``MaxPooling1D``: the largest value of each feature in each window (padding never wins); no mask."""
    return _pool(layer, h, lambda x: x.max(axis=1)), None


@FORWARD.register("average_pool")
def _average_pool(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``AveragePooling1D``: the mean of each feature over each window's real steps; no mask."""
    return _pool(layer, h, lambda x: x.mean(axis=1)), None


@FORWARD.register("conv1d")
def _conv1d(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Keras ``Conv1D``: zero-padded as Keras pads (``same``: the extra step on the right; ``causal``: on the left),
    then ``y[t] = bias + sum_j x[t·strides + j·dilation_rate] · kernel[j]``, then the activation; no mask."""
    left, right = layer.padding_for(h.shape[1])
    x = np.pad(h, ((0, 0), (left, right), (0, 0)))
    s, d = layer.strides, layer.dilation_rate
    steps = max((x.shape[1] - layer.span) // s + 1, 0)
    z = np.zeros((h.shape[0], steps, layer.filters))
    for j in range(layer.kernel_size if steps else 0):
        z = z + x[:, j * d : j * d + (steps - 1) * s + 1 : s] @ w["kernel"][j]
    if "bias" in w:
        z = z + w["bias"]
    return ACTIVATIONS[layer.activation](z), None


# -- the recurrent layer: loop over time, directions, merge ------------------------------------------


def _run_direction(
    layer: Any,
    w: DirectionWeights,
    x: Array,
    mask: Mask,
    *,
    go_backwards: bool,
    zero_output_for_mask: bool,
    initial: tuple[Array, ...] | None = None,
    final: list[Array] | None = None,
) -> tuple[Array, Array]:
    """Keras's ``rnn`` loop: ``(last_output, outputs)`` with outputs in processing order. The states start from
    ``initial`` (zeros without it); ``final``, when given, receives the states after the last step (a stateful
    layer's next initial states: masked steps keep them, as in Keras)."""
    entry: Cell = STEPS.get(layer.kind)
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    batch, time, units = x.shape[0], x.shape[1], layer.units
    states = initial if initial is not None else tuple(np.zeros((batch, units)) for _ in range(entry.states))
    previous = np.zeros((batch, units))
    outputs = np.zeros((batch, time, units))
    for t in range(time):
        out, new_states = entry.step(layer, w, x[:, t], states)
        if mask is not None:
            keep = mask[:, t, None]
            out = np.where(keep, out, 0.0 if zero_output_for_mask else previous)
            new_states = tuple(np.where(keep, s_new, s_old) for s_new, s_old in zip(new_states, states, strict=True))
        outputs[:, t] = out
        previous, states = out, new_states
    if final is not None:
        final[:] = states
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


_VARIANT: ContextVar[str | None] = ContextVar("rnnspec_numpy_variant", default=None)
_CARRIED: ContextVar[dict[tuple[int, str], tuple[Array, ...]] | None] = ContextVar(
    "rnnspec_numpy_carried", default=None
)
"""A stateful model's carried states while it runs (:class:`NumpyModel`): ``(id(layer), direction) → states``."""
"""A porting mistake to compute on purpose (:mod:`rnnspec.testing`): ``backward_wrong_end``."""


def _recurrent(layer: Any, w: dict[str, Array], h: Array, mask: Mask) -> tuple[Array, Mask]:
    """Any recurrent cell, one direction or Keras ``Bidirectional``; the mask passes on only with sequences."""

    def direction(tag: str, go_backwards: bool, zero_output: bool) -> Array:
        leaves = {k[len(tag) :]: v for k, v in w.items() if k.startswith(tag)}
        carried = _CARRIED.get() if layer.stateful else None
        key = (id(layer), tag)
        initial = None if carried is None else carried.get(key)
        if initial is not None and initial[0].shape[0] != h.shape[0]:
            raise ValueError(
                f"a stateful layer carries {initial[0].shape[0]} samples' states; the batch has {h.shape[0]}"
            )
        final: list[Array] = []
        last, seq = _run_direction(
            layer, DirectionWeights.of(leaves), h, mask, go_backwards=go_backwards, zero_output_for_mask=zero_output,
            initial=initial, final=final,
        )  # fmt: skip
        if carried is not None:
            carried[key] = tuple(final)
        if tag == "backward/" and _VARIANT.get() == "backward_wrong_end" and not layer.return_sequences:
            return seq[:, 0]  # the backward direction after its first step (x_T), as output[:, -1] holds it
        return seq if layer.return_sequences else last

    if not layer.bidirectional:
        out = direction("", layer.go_backwards, False)
    else:
        zero = layer.return_sequences
        fwd = direction("forward/", False, zero)
        bwd = direction("backward/", True, zero)
        if layer.return_sequences:
            bwd = bwd[:, ::-1]
        out = _merge(layer.merge_mode, fwd, bwd)
    return out, mask if layer.return_sequences else None


# -- recurrent cells: one step function each ---------------------------------------------------------


@cell("simple_rnn")
def _simple_rnn_step(
    layer: Any, w: DirectionWeights, x: Array, states: tuple[Array, ...]
) -> tuple[Array, tuple[Array, ...]]:
    """``h = activation(x·W + b + h·U + b_h)``."""
    (h,) = states
    h = ACTIVATIONS[layer.activation](x @ w.kernel + w.input_bias + h @ w.recurrent_kernel + w.recurrent_bias)
    return h, (h,)


@cell("lstm", states=2)
def _lstm_step(layer: Any, w: DirectionWeights, x: Array, states: tuple[Array, ...]) -> tuple[Array, tuple[Array, ...]]:
    """Gates i, f, c, o: ``c = f·c + i·act(g)``, ``h = o·act(c)``."""
    act, gate, u = ACTIVATIONS[layer.activation], ACTIVATIONS[layer.recurrent_activation], layer.units
    h, c = states
    z = x @ w.kernel + w.input_bias + h @ w.recurrent_kernel + w.recurrent_bias
    i, f, g, o = (z[:, k * u : (k + 1) * u] for k in range(4))
    c = gate(f) * c + gate(i) * act(g)
    h = gate(o) * act(c)
    return h, (h, c)


@cell("gru")
def _gru_step(layer: Any, w: DirectionWeights, x: Array, states: tuple[Array, ...]) -> tuple[Array, tuple[Array, ...]]:
    """Gates z, r, h; ``reset_after`` applies r after the recurrent matmul (Keras 3, PyTorch), else before."""
    act, gate, u = ACTIVATIONS[layer.activation], ACTIVATIONS[layer.recurrent_activation], layer.units
    zr, hh = slice(0, 2 * u), slice(2 * u, 3 * u)
    (h,) = states
    xz = x @ w.kernel + w.input_bias
    if layer.reset_after:
        hz = h @ w.recurrent_kernel + w.recurrent_bias
        z, r = np.split(gate(xz[:, zr] + hz[:, zr]), 2, axis=1)
        candidate = act(xz[:, hh] + r * hz[:, hh])
    else:
        z, r = np.split(gate(xz[:, zr] + h @ w.recurrent_kernel[:, zr] + w.recurrent_bias[zr]), 2, axis=1)
        candidate = act(xz[:, hh] + (r * h) @ w.recurrent_kernel[:, hh] + w.recurrent_bias[hh])
    h = z * h + (1.0 - z) * candidate
    return h, (h,)


# -- the model ------------------------------------------------------------------------------------------


def forward_masked(spec: ModelSpec, weights: dict[str, Array], x: Array) -> tuple[Array, Mask]:
    """Outputs of ``spec`` with canonical ``weights`` for input ``x`` (float64) and Keras's mask on them:
    ``(batch, time)`` booleans for per-step outputs of a masked model, else None."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    h = np.asarray(x) if spec.input.vocab_size is not None else np.asarray(x, dtype=np.float64)
    mask: Mask = None
    for name, layer in spec.stack():
        fn = FORWARD.get(layer.kind, name)
        prefix = f"{name}/"
        h, mask = fn(layer, {k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)}, h, mask)
    return h, mask


def forward(spec: ModelSpec, weights: dict[str, Array], x: Array) -> Array:
    """Outputs of ``spec`` with canonical ``weights`` for input ``x``, computed in float64."""
    return forward_masked(spec, weights, x)[0]


class NumpyModel:
    """A spec plus canonical weights; calling it runs :func:`forward`."""

    def __init__(self, spec: ModelSpec):
        setattr(self, MODEL_SPEC_ATTR, spec)
        setattr(self, MODEL_BACKEND_ATTR, "numpy")
        self.spec = spec
        self.weights: dict[str, Array] = {}
        self.states: dict[tuple[int, str], tuple[Array, ...]] = {}
        """The carried states of the stateful layers (empty: zeros; :meth:`NumpyBackend.reset_states`)."""

    def __call__(self, x: Array) -> Array:
        if not self.spec.stateful:
            return forward(self.spec, self.weights, x)
        token = _CARRIED.set(self.states)
        try:
            return forward(self.spec, self.weights, x)
        finally:
            _CARRIED.reset(token)

    def __repr__(self) -> str:
        return f"NumpyModel({self.spec.name!r}, {len(self.weights)} weights)"


class NumpyBackend(Backend, ReferenceVariants):
    """The reference backend (forward only)."""

    name = "numpy"

    def build(self, spec: ModelSpec) -> NumpyModel:
        stack = spec.stack()
        FORWARD.check(stack)
        STEPS.check((name, layer) for name, layer in stack if isinstance(layer, RecurrentLayer))
        model = NumpyModel(spec)
        model.weights = {k: np.zeros(s, dtype=np.float32) for k, s in weight_shapes(spec).items()}
        return model

    def set_weights(self, model: NumpyModel, weights: dict[str, Array]) -> None:
        model.weights = {k: np.array(v, dtype=np.float32) for k, v in weights.items()}

    def forward_with(self, spec: ModelSpec, weights: dict[str, Array], x: Array, variant: str | None = None) -> Array:
        """Outputs in float64 for ``weights`` (as given, not rounded to float32), computed with the porting
        mistake ``variant`` when one is named (:mod:`rnnspec.testing.mistakes`)."""
        token = _VARIANT.set(variant)
        try:
            return forward(spec, weights, x)
        finally:
            _VARIANT.reset(token)

    def get_weights(self, model: NumpyModel) -> dict[str, Array]:
        return {k: v.copy() for k, v in model.weights.items()}

    def count_params(self, model: NumpyModel) -> dict[str, int]:
        """Parameters per layer name, every layer of the stack included (0 for weightless layers)."""
        counts = {name: 0 for name in model.spec.layer_names()}
        for key, value in model.weights.items():
            counts[key.split("/", 1)[0]] += int(value.size)
        return counts

    def predict(self, model: NumpyModel, x: Array, batch_size: int | None = None) -> Array:
        step = batch_size or max(len(x), 1)
        if len(x) <= step:
            return model(x).astype(np.float32)
        return np.concatenate([model(x[k : k + step]).astype(np.float32) for k in range(0, len(x), step)])

    def reset_states(self, model: NumpyModel) -> None:
        """Stateful layers start the next batch from zero states (Keras's ``layer.reset_state()``)."""
        model.states.clear()

    def summary(self, model: NumpyModel) -> str:
        from rnnspec.lang.analysis import analyze
        from rnnspec.lang.summary import render_summary

        return render_summary(analyze(model.spec))

    def save_artifact(self, model: NumpyModel, directory: Path) -> list[Path]:
        from rnnspec.core.weights import save_weights_file

        path = Path(directory) / f"{model.spec.name}.numpy.safetensors"
        save_weights_file(model.weights, path, model.spec)
        return [path]

    def load_artifact(self, path: Path) -> NumpyModel:
        from rnnspec.core.weights import load_weights_file, spec_from_weights_file

        model = self.build(spec_from_weights_file(path))
        self.set_weights(model, load_weights_file(path)[0])
        return model

    def notes(self, model: NumpyModel) -> list[str]:
        return ["NumPy reference: forward only, float64 arithmetic, one explicit loop per time step"]


BACKEND = NumpyBackend()
