"""The PyTorch backend: a native, batch-first ``nn.Module`` with Keras-layout parameters.

Parameters are stored in the canonical (Keras) layout, so ``sum(p.numel())`` equals the
analytic count of the spec's convention and weights copy 1:1. :func:`_torch_layout` is the one
place that transposes kernels and reorders GRU gates (Keras z, r, h → PyTorch r, z, n) to call
PyTorch's fused RNN kernels (``nn.RNN``/``nn.LSTM``/``nn.GRU``'s own ops; cuDNN on a GPU).

Where the kernels cannot express the spec (activations other than tanh/sigmoid — relu for
SimpleRNN —, GRU ``reset_after: false``, recurrent dropout while training, masks with holes) a
step loop written from Keras's equations runs instead. Masks without holes (pre- or
post-padding, Keras's ``pad_sequences`` default included) stay on the fused kernels: each row is
left-aligned, run unpacked, and gathered back, which is exact because an RNN is causal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnspec.lang.analysis import GATES, analyze
from rnnspec.lang.spec import GRUSpec, LSTMSpec, ModelSpec, SimpleRNNSpec
from rnnspec.runtime.backend import MODEL_BACKEND_ATTR, MODEL_SPEC_ATTR
from rnnspec.runtime.weights import weight_shapes

__all__ = ["BACKEND", "RnnspecModule", "TorchBackend", "load_artifact"]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": F.hardsigmoid,
    "relu": torch.relu,
    "elu": F.elu,
    "selu": lambda x: _SELU_SCALE * torch.where(x > 0, x, _SELU_ALPHA * torch.expm1(torch.clamp(x, max=0.0))),
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "exponential": torch.exp,
}


_KEYS = {"forward": "fwd", "backward": "bwd"}


def _fusable(layer: Any) -> bool:
    """Whether PyTorch's fused kernels compute exactly this cell."""
    if isinstance(layer, SimpleRNNSpec):
        return layer.activation in ("tanh", "relu")
    if layer.activation != "tanh" or layer.recurrent_activation != "sigmoid":
        return False
    return not (isinstance(layer, GRUSpec) and not layer.reset_after)


class _Direction(nn.Module):
    """One direction of a recurrent layer: Keras-layout parameters and the cell's step."""

    def __init__(self, layer: Any, shapes: dict[str, tuple[int, ...]]):
        super().__init__()
        self.layer = layer
        self.units = layer.units
        self.kernel = nn.Parameter(torch.zeros(shapes["kernel"]))
        self.recurrent_kernel = nn.Parameter(torch.zeros(shapes["recurrent_kernel"]))
        self.bias = nn.Parameter(torch.zeros(shapes["bias"])) if "bias" in shapes else None
        self.recurrent_bias = (
            nn.Parameter(torch.zeros(shapes["recurrent_bias"])) if "recurrent_bias" in shapes else None
        )
        self.act = ACTIVATIONS[layer.activation]
        self.gate = ACTIVATIONS[getattr(layer, "recurrent_activation", "sigmoid")]

    def biases(self) -> tuple[Tensor | None, Tensor | None]:
        """(input bias, recurrent bias) as flat vectors; None where the cell has none."""
        if self.bias is None:
            return None, None
        if self.bias.dim() == 2:
            return self.bias[0], self.bias[1]
        return self.bias, self.recurrent_bias

    # -- fused kernels ------------------------------------------------------------------------------

    def _torch_layout(self) -> list[Tensor]:
        """Weights as PyTorch's RNN ops take them: transposed, GRU gates reordered, bias_hh filled."""
        kernel, recurrent = self.kernel, self.recurrent_kernel
        b_in, b_rec = self.biases()
        if isinstance(self.layer, GRUSpec):
            u = self.units
            order = torch.cat([torch.arange(u, 2 * u), torch.arange(0, u), torch.arange(2 * u, 3 * u)])
            order = order.to(kernel.device)
            kernel, recurrent = kernel[:, order], recurrent[:, order]
            b_in = None if b_in is None else b_in[order]
            b_rec = None if b_rec is None else b_rec[order]
        params = [kernel.t(), recurrent.t()]
        if b_in is not None:
            params += [b_in, b_rec if b_rec is not None else torch.zeros_like(b_in)]
        return params

    def run_fused(self, x: Tensor) -> Tensor:
        """All outputs ``(batch, time, units)`` of the fused kernel on unmasked input."""
        batch = x.shape[0]
        h0 = x.new_zeros(1, batch, self.units)
        params = self._torch_layout()
        has_bias = self.bias is not None
        args = (params, has_bias, 1, 0.0, self.training, False, True)
        if isinstance(self.layer, LSTMSpec):
            return torch._VF.lstm(x, (h0, h0), *args)[0]
        if isinstance(self.layer, GRUSpec):
            return torch._VF.gru(x, h0, *args)[0]
        op = torch._VF.rnn_tanh if self.layer.activation == "tanh" else torch._VF.rnn_relu
        return op(x, h0, *args)[0]

    # -- the step loop -------------------------------------------------------------------------------

    def step(
        self, xk: Tensor, states: tuple[Tensor, ...], rec_masks: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One step of Keras's cell; ``xk`` is the input already multiplied by the kernel (plus bias)."""
        u = self.units
        h = states[0]
        recurrent = self.recurrent_kernel
        _, b_rec = self.biases()
        if isinstance(self.layer, (SimpleRNNSpec, LSTMSpec)):
            z = xk + _project(h, recurrent, rec_masks)
            if b_rec is not None:
                z = z + b_rec
            if isinstance(self.layer, SimpleRNNSpec):
                out = self.act(z)
                return out, (out,)
            i, f, g, o = z.split(u, dim=1)
            c = self.gate(f) * states[1] + self.gate(i) * self.act(g)
            out = self.gate(o) * self.act(c)
            return out, (out, c)
        assert isinstance(self.layer, GRUSpec)
        if self.layer.reset_after:
            hz = _project(h, recurrent, rec_masks)
            if b_rec is not None:
                hz = hz + b_rec
            z, r = self.gate(xk[:, : 2 * u] + hz[:, : 2 * u]).split(u, dim=1)
            candidate = self.act(xk[:, 2 * u :] + r * hz[:, 2 * u :])
        else:
            zr_masks = None if rec_masks is None else rec_masks[:2] if len(rec_masks) == 3 else rec_masks
            hz = _project(h, recurrent[:, : 2 * u], zr_masks)
            if b_rec is not None:
                hz = hz + b_rec[: 2 * u]
            z, r = self.gate(xk[:, : 2 * u] + hz).split(u, dim=1)
            h_h = h if rec_masks is None else h * rec_masks[-1]
            hh = (r * h_h) @ recurrent[:, 2 * u :]
            if b_rec is not None:
                hh = hh + b_rec[2 * u :]
            candidate = self.act(xk[:, 2 * u :] + hh)
        out = z * h + (1 - z) * candidate
        return out, (out,)

    def run_loop(
        self, x: Tensor, mask: Tensor | None, zero_output: bool, in_masks: Tensor | None, rec_masks: Tensor | None
    ) -> Tensor:
        """Keras's ``rnn`` loop (masked steps keep the state) over input in processing order."""
        batch, time = x.shape[0], x.shape[1]
        b_in, _ = self.biases()
        xk = _project(x, self.kernel, in_masks)
        if b_in is not None:
            xk = xk + b_in
        zeros = x.new_zeros(batch, self.units)
        states: tuple[Tensor, ...] = (zeros, zeros) if isinstance(self.layer, LSTMSpec) else (zeros,)
        previous = zeros
        outputs = []
        for t in range(time):
            out, new_states = self.step(xk[:, t], states, rec_masks)
            if mask is not None:
                keep = mask[:, t, None]
                out = torch.where(keep, out, zeros if zero_output else previous)
                new_states = tuple(torch.where(keep, n, s) for n, s in zip(new_states, states, strict=True))
            outputs.append(out)
            previous, states = out, new_states
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


def _run_aligned(direction: _Direction, x: Tensor, mask: Tensor, zero_output: bool) -> Tensor:
    """Fused kernel under a hole-free mask: left-align each row, run, and put the outputs back."""
    batch, time = mask.shape
    _, starts, lengths = _contiguous(mask)
    steps = torch.arange(time, device=x.device).expand(batch, time)
    source = (starts[:, None] + steps).clamp(max=time - 1)
    aligned = x.gather(1, source[..., None].expand(-1, -1, x.shape[2]))
    out = direction.run_fused(aligned)
    back = (steps - starts[:, None]).clamp(min=0)
    back = torch.minimum(back, (lengths - 1).clamp(min=0)[:, None])
    restored = out.gather(1, back[..., None].expand(-1, -1, out.shape[2]))
    # before the block: zeros; after it: the last valid output (Keras), or zeros (zero_output_for_mask)
    keep = mask if zero_output else (steps >= starts[:, None]) & (lengths > 0)[:, None]
    return restored * keep[..., None].to(restored.dtype)


class _Recurrent(nn.Module):
    """One recurrent layer (both directions when bidirectional), with Keras's masking semantics."""

    def __init__(self, layer: Any, name: str, shapes: dict[str, tuple[int, ...]]):
        super().__init__()
        self.layer = layer
        tags = ["forward", "backward"] if layer.bidirectional else ["forward"]
        prefix = {t: f"{name}/{t}/" if layer.bidirectional else f"{name}/" for t in tags}
        # ModuleDict keys cannot be "forward" (nn.Module.forward), hence fwd / bwd.
        self.directions = nn.ModuleDict(
            {
                _KEYS[t]: _Direction(
                    layer, {k[len(prefix[t]) :]: v for k, v in shapes.items() if k.startswith(prefix[t])}
                )
                for t in tags
            }
        )
        self.fused = _fusable(layer)
        self.loop_calls = 0

    def _dropout_masks(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Keras's RNN dropout: masks drawn once per sequence, shaped ``(copies, batch, [1,] size)``.

        With ``recurrent_dropout`` Keras's LSTM and GRU switch to ``implementation=1``: one input
        mask and one state mask per gate. Otherwise one input mask serves all gates.
        """
        if not self.training:
            return None, None
        layer = self.layer
        p, q = layer.dropout, layer.recurrent_dropout
        copies = GATES[layer.cell] if q > 0 and not isinstance(layer, SimpleRNNSpec) else 1
        batch = x.shape[0]
        in_masks = F.dropout(x.new_ones(copies, batch, 1, x.shape[2]), p) if p > 0 else None
        rec_masks = F.dropout(x.new_ones(copies, batch, layer.units), q) if q > 0 else None
        return in_masks, rec_masks

    def _direction(self, d: _Direction, x: Tensor, mask: Tensor | None, backwards: bool, zero: bool) -> Tensor:
        in_masks, rec_masks = self._dropout_masks(x)
        if backwards:
            x = x.flip(1)
            mask = None if mask is None else mask.flip(1)
        if mask is not None and bool(mask.all()):
            mask = None
        if self.fused and rec_masks is None and x.shape[1] > 0:
            if in_masks is not None:
                x = x * in_masks[0]
            if mask is None:
                return d.run_fused(x)
            if _contiguous(mask)[0]:
                return _run_aligned(d, x, mask, zero)
            in_masks = None
        self.loop_calls += 1
        return d.run_loop(x, mask, zero, in_masks, rec_masks)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        layer = self.layer
        if not layer.bidirectional:
            out = self._direction(self.directions["fwd"], x, mask, layer.go_backwards, False)
            return out if layer.return_sequences else out[:, -1]
        zero = layer.return_sequences
        fwd = self._direction(self.directions["fwd"], x, mask, False, zero)
        bwd = self._direction(self.directions["bwd"], x, mask, True, zero)
        if layer.return_sequences:
            bwd = bwd.flip(1)
        else:
            fwd, bwd = fwd[:, -1], bwd[:, -1]
        mode = layer.merge_mode
        if mode == "concat":
            return torch.cat([fwd, bwd], dim=-1)
        if mode == "sum":
            return fwd + bwd
        if mode == "mul":
            return fwd * bwd
        return (fwd + bwd) / 2


class _Embedding(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(shape))

    def forward(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.embeddings)


class _Dense(nn.Module):
    def __init__(self, kernel: tuple[int, ...], bias: tuple[int, ...] | None):
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(kernel))
        self.bias = nn.Parameter(torch.zeros(bias)) if bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        out = x @ self.kernel
        return out + self.bias if self.bias is not None else out


class RnnspecModule(nn.Module):
    """A spec compiled to PyTorch. ``forward(x)`` gives the outputs as the head defines them
    (probabilities for sigmoid/softmax); ``forward(x, logits=True)`` the pre-activation."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        setattr(self, MODEL_SPEC_ATTR, spec)
        setattr(self, MODEL_BACKEND_ATTR, "torch")
        self.spec = spec
        shapes = weight_shapes(spec)
        names = iter(spec.layer_names())
        layers: dict[str, nn.Module] = {}
        self.embedding_name = self.head_name = None
        if spec.embedding is not None:
            self.embedding_name = next(names)
            layers[self.embedding_name] = _Embedding(shapes[f"{self.embedding_name}/embeddings"])
        self.recurrent_names = []
        for layer in spec.recurrent:
            name = next(names)
            self.recurrent_names.append(name)
            layers[name] = _Recurrent(layer, name, {k: v for k, v in shapes.items() if k.split("/", 1)[0] == name})
        if spec.head is not None:
            self.head_name = next(names)
            layers[self.head_name] = _Dense(shapes[f"{self.head_name}/kernel"], shapes.get(f"{self.head_name}/bias"))
        self.layers = nn.ModuleDict(layers)
        self.capture_embedding = False
        self.embedded: Tensor | None = None
        self.embedded_ids: Tensor | None = None

    def forward(self, x: Tensor, logits: bool = False) -> Tensor:
        mask = None
        if self.embedding_name is not None:
            ids = x.long()
            h = self.layers[self.embedding_name](ids)
            if self.capture_embedding and h.requires_grad:
                # the trainer reads the gradient per token occurrence (TensorFlow's IndexedSlices)
                h.retain_grad()
                self.embedded, self.embedded_ids = h, ids
            if self.spec.embedding.mask_zero:
                mask = ids != 0
        else:
            h = x.to(next(self.parameters()).dtype)
        for name, layer in zip(self.recurrent_names, self.spec.recurrent, strict=True):
            h = self.layers[name](h, mask)
            if not layer.return_sequences:
                mask = None
        if self.head_name is not None:
            h = self.layers[self.head_name](h)
            if not logits:
                act = self.spec.head.activation
                h = torch.softmax(h, dim=-1) if act == "softmax" else ACTIVATIONS[act](h)
        return h

    def parameter_of(self, canonical: str) -> nn.Parameter:
        """The parameter behind a canonical weight name (``recurrent_0/forward/kernel``...)."""
        parts = canonical.split("/")
        module = self.layers[parts[0]]
        if isinstance(module, _Recurrent):
            module = module.directions[_KEYS[parts[1]] if len(parts) == 3 else "fwd"]
        param = getattr(module, parts[-1])
        assert isinstance(param, nn.Parameter), canonical
        return param


class TorchBackend:
    """Builds :class:`RnnspecModule` and moves canonical weights in and out of it."""

    name = "torch"

    def build(self, spec: ModelSpec) -> RnnspecModule:
        return RnnspecModule(spec)

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
        return {name: sum(p.numel() for p in module.parameters()) for name, module in model.layers.items()}

    def predict(self, model: RnnspecModule, x: np.ndarray) -> np.ndarray:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(torch.as_tensor(x, device=device))
        finally:
            model.train(was_training)
        return out.cpu().numpy()

    def summary(self, model: RnnspecModule) -> str:
        from rnnspec.lang.analysis import LayerRow
        from rnnspec.lang.summary import render_rows

        spec = model.spec
        time = spec.input.seq_len or 3
        x = torch.ones((1, time), dtype=torch.long) if spec.embedding else torch.zeros((1, time, spec.input.features))
        shapes: dict[str, tuple[int | None, ...]] = {}
        hooks = [
            module.register_forward_hook(
                lambda _m, _i, out, name=name: shapes.__setitem__(
                    name,
                    (
                        None,
                        *(
                            None if (d == time and spec.input.seq_len is None and k == 0) else d
                            for k, d in enumerate(out.shape[1:])
                        ),
                    ),
                )
            )
            for name, module in model.layers.items()
        ]
        try:
            self.predict(model, x.numpy())
        finally:
            for hook in hooks:
                hook.remove()
        types = {row.name: row.type for row in analyze(spec).layers}
        counts = self.count_params(model)
        rows = [LayerRow(name, f"{types[name]}, torch", shapes[name], counts[name], "", 0) for name in model.layers]
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        return render_rows(spec.name, rows, trainable=trainable, non_trainable=frozen, note="torch.nn.Module")

    def notes(self, model: RnnspecModule) -> list[str]:
        out = []
        for name, layer in zip(model.recurrent_names, model.spec.recurrent, strict=True):
            if _fusable(layer):
                extra = ""
                if layer.recurrent_dropout > 0:
                    extra = " (a step loop while training, for recurrent_dropout)"
                out.append(f"{name}: fused PyTorch {layer.cell} kernel{extra}; masks with holes use a step loop")
            else:
                why = _loop_reason(layer)
                out.append(f"{name}: step loop ({why}); PyTorch's fused kernels cannot express it")
        return out

    def trainer(self, model: RnnspecModule, training: Any, device: str | None = None) -> Any:
        from .torch_train import TorchTrainer

        return TorchTrainer(model, training, device)

    def load_artifact(self, path: Path) -> RnnspecModule:
        return load_artifact(path)

    def save_artifact(self, model: RnnspecModule, directory: Path) -> list[Path]:
        from safetensors.torch import save

        from rnnspec.util import write_bytes_atomic

        path = Path(directory) / f"{model.spec.name}.torch.safetensors"
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        metadata = {"format": "rnnspec-torch-state-dict/1", "spec": json.dumps(model.spec.to_dict(), sort_keys=True)}
        write_bytes_atomic(path, save(state, metadata=metadata))
        return [path]


def _loop_reason(layer: Any) -> str:
    if isinstance(layer, GRUSpec) and not layer.reset_after:
        return "GRU reset_after: false"
    if isinstance(layer, SimpleRNNSpec):
        return f"activation {layer.activation}"
    return f"activation {layer.activation}, recurrent_activation {layer.recurrent_activation}"


def load_artifact(path: str | Path) -> RnnspecModule:
    """Load a ``.torch.safetensors`` artifact written by ``rnnspec build -o`` (no unpickling)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from rnnspec.lang.loader import spec_from_dict

    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata() or {}
    spec = spec_from_dict(json.loads(metadata["spec"]))
    model = RnnspecModule(spec)
    model.load_state_dict(load_file(str(path)))
    return model


BACKEND = TorchBackend()
