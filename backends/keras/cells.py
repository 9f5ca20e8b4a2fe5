"""The torch-convention cells of the keras backend: Keras's cells plus PyTorch's second bias.

In the ``torch`` convention (two bias vectors, as ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``) a layer
whose Keras cell has one bias runs one of these cells in ``keras.layers.RNN``. Each subclasses
Keras's cell and adds PyTorch's ``bias_hh`` as the weight ``recurrent_bias``, so it inherits
Keras's dropout masks, masking and serialization. They are registered with Keras as
``rnnspec>Torch*Cell``, so ``keras.saving.load_model(..., safe_mode=True)`` rebuilds them once this
module is imported.

>>> layer = keras.layers.RNN(TorchLSTMCell(8), return_sequences=True)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .runtime import keras, ops

__all__ = ["TorchGRUCell", "TorchLSTMCell", "TorchSimpleRNNCell"]


def _add_recurrent_bias(cell: Any, size: int) -> None:
    """Give ``cell`` PyTorch's ``bias_hh`` as ``recurrent_bias`` (None without biases), built like ``bias``."""
    cell.recurrent_bias = None
    if cell.use_bias:
        cell.recurrent_bias = cell.add_weight(
            shape=(size,),
            name="recurrent_bias",
            initializer=cell.bias_initializer,
            regularizer=cell.bias_regularizer,
            constraint=cell.bias_constraint,
        )


def _dropped(x: Any, mask: Any, gates: int, training: bool) -> list[Any] | None:
    """One copy of ``x`` per gate under Keras's cached dropout mask(s); None when nothing is dropped.

    Keras caches one mask per sequence, or one per gate (a list) when ``implementation == 1``.
    """
    if not training or mask is None:
        return None
    masks = mask if isinstance(mask, (list, tuple)) else [mask] * gates
    return [x * m for m in masks]


def _gate_terms(x: Any, kernel: Any, bias: Any, copies: list[Any] | None, gates: int) -> list[Any]:
    """Each gate's share ``x·K_g + b_g`` (one fused matmul unless dropout gives the gates different inputs)."""
    if copies is None:
        z = ops.matmul(x, kernel)
        if bias is not None:
            z = z + bias
        return ops.split(z, gates, axis=-1)
    kernels = ops.split(kernel, gates, axis=-1)
    biases = ops.split(bias, gates, axis=-1) if bias is not None else [None] * gates
    terms = []
    for x_g, k_g, b_g in zip(copies, kernels, biases, strict=True):
        term = ops.matmul(x_g, k_g)
        terms.append(term if b_g is None else term + b_g)
    return terms


@keras.saving.register_keras_serializable(package="rnnspec")
class TorchSimpleRNNCell(keras.layers.SimpleRNNCell):
    """``nn.RNN``'s cell in Keras layout: ``h = activation(x·K + b + h·R + rb)``.

    Keras's ``SimpleRNNCell`` plus the second bias ``recurrent_bias`` (PyTorch's ``bias_hh``);
    dropout masks are Keras's (one for the inputs, one for the state, per sequence).
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        _add_recurrent_bias(self, self.units)

    def call(self, sequence: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        prev = states[0] if isinstance(states, (list, tuple)) else states
        inputs = _dropped(sequence, self.get_dropout_mask(sequence), 1, training)
        recurrent = _dropped(prev, self.get_recurrent_dropout_mask(prev), 1, training)
        (x_term,) = _gate_terms(sequence, self.kernel, self.bias, inputs, 1)
        (h_term,) = _gate_terms(prev, self.recurrent_kernel, self.recurrent_bias, recurrent, 1)
        output = x_term + h_term
        if self.activation is not None:
            output = self.activation(output)
        return output, [output] if isinstance(states, (list, tuple)) else output


@keras.saving.register_keras_serializable(package="rnnspec")
class TorchLSTMCell(keras.layers.LSTMCell):
    """``nn.LSTM``'s cell in Keras layout: gates (i, f, c, o) from ``x·K + b + h·R + rb``.

    Keras's ``LSTMCell`` plus ``recurrent_bias`` (PyTorch's ``bias_hh``), with Keras's dropout
    masks (one per gate when ``recurrent_dropout`` forces ``implementation=1``).
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        _add_recurrent_bias(self, 4 * self.units)

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        h_prev, c_prev = states[0], states[1]
        x_copies = _dropped(inputs, self.get_dropout_mask(inputs), 4, training)
        h_copies = _dropped(h_prev, self.get_recurrent_dropout_mask(h_prev), 4, training)
        x_terms = _gate_terms(inputs, self.kernel, self.bias, x_copies, 4)
        h_terms = _gate_terms(h_prev, self.recurrent_kernel, self.recurrent_bias, h_copies, 4)
        z_i, z_f, z_c, z_o = (x + h for x, h in zip(x_terms, h_terms, strict=True))
        c = self.recurrent_activation(z_f) * c_prev + self.recurrent_activation(z_i) * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="rnnspec")
class TorchGRUCell(keras.layers.GRUCell):
    """A GRU with the reset gate applied before the recurrent matmul and two bias vectors.

    ``z, r = σ(x·K_zr + b_zr + h·R_zr + rb_zr)``, ``hh = act(x·K_h + b_h + (r⊙h)·R_h + rb_h)``,
    ``h = z⊙h_prev + (1−z)⊙hh``: Keras's ``reset_after=False`` GRU plus ``recurrent_bias``.
    (With ``reset_after=True`` Keras's own GRU already carries both biases.)
    """

    def __init__(self, units: int, *, reset_after: bool = False, **kwargs: Any):
        if reset_after:
            raise ValueError("TorchGRUCell is the reset_after=False GRU; use keras.layers.GRUCell(reset_after=True)")
        super().__init__(units, reset_after=False, **kwargs)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        _add_recurrent_bias(self, 3 * self.units)

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        nested = isinstance(states, (list, tuple))
        h_prev = states[0] if nested else states
        u = self.units
        x_copies = _dropped(inputs, self.get_dropout_mask(inputs), 3, training)
        h_copies = _dropped(h_prev, self.get_recurrent_dropout_mask(h_prev), 3, training)
        x_z, x_r, x_h = _gate_terms(inputs, self.kernel, self.bias, x_copies, 3)
        rb_zr, rb_h = (
            (None, None)
            if self.recurrent_bias is None
            else (self.recurrent_bias[: 2 * u], self.recurrent_bias[2 * u :])
        )
        zr_copies = None if h_copies is None else h_copies[:2]
        h_z, h_r = _gate_terms(h_prev, self.recurrent_kernel[:, : 2 * u], rb_zr, zr_copies, 2)
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        h_for_candidate = h_prev if h_copies is None else h_copies[2]
        (h_h,) = _gate_terms(r * h_for_candidate, self.recurrent_kernel[:, 2 * u :], rb_h, None, 1)
        candidate = self.activation(x_h + h_h)
        h = z * h_prev + (1 - z) * candidate
        return h, [h] if nested else h
