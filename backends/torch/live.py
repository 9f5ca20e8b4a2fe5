"""A user's own ``torch.nn.Module``, as :mod:`rnnspec.testing` drives it: its tensors in and out, its outputs,
and one backward pass of a loss computed as Keras computes it (on the outputs, masked steps left out)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rnnspec.lang.losses import LOSSES, elementwise_loss

from .ops import LossOps as _TorchOps

Items = list[tuple[str, np.ndarray]]


class TorchLive:
    """Drive ``module``: ``tensors``/``assign`` its state dict, ``forward`` in eval mode, ``gradients``."""

    def __init__(self, module: Any):
        self.module = module
        self.handed_training = bool(module.training)
        """The mode the module was handed over in (rnnspec.testing compares it in both when that is train mode)."""

    def _device(self) -> torch.device:
        first = next(iter(self.module.parameters()), None)
        return first.device if first is not None else torch.device("cpu")

    def tensors(self) -> Items:
        return [(k, v.detach().cpu().numpy().copy()) for k, v in self.module.state_dict().items()]

    def assign(self, items: Items) -> None:
        state = self.module.state_dict()
        new = {k: torch.as_tensor(np.asarray(v), dtype=state[k].dtype, device=state[k].device) for k, v in items}
        self.module.load_state_dict(new, strict=True)

    def _input(self, x: np.ndarray) -> torch.Tensor:
        arr = np.asarray(x)
        dtype = torch.long if np.issubdtype(arr.dtype, np.integer) else torch.float32
        return torch.as_tensor(arr, dtype=dtype, device=self._device())

    def _outputs(self, x: np.ndarray) -> torch.Tensor:
        out = self.module(self._input(x))
        if isinstance(out, (tuple, list)):  # (outputs, state) as nn.LSTM returns: the outputs
            out = out[0]
        return out

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        was = self.module.training
        self.module.train(training)
        try:
            with torch.no_grad():
                return self._outputs(x).detach().cpu().double().numpy()
        finally:
            self.module.train(was)

    def gradients(
        self, x: np.ndarray, y: np.ndarray, loss: dict, weight: np.ndarray | None, keep_grads: bool = False
    ) -> tuple[float, Items]:
        """The loss (Keras's formula, masked steps weighted 0) and its gradient for every tensor of the state dict
        (zeros for buffers), in eval mode (dropout off). The parameters' ``.grad`` are left as they were."""
        was = self.module.training
        self.module.eval()
        params = dict(self.module.named_parameters())
        kept = {k: p.grad for k, p in params.items()}
        try:
            for p in params.values():
                p.grad = None
            with torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN backward refuses eval mode
                out = self._outputs(x)
            sparse = LOSSES[loss["name"]].integer_labels
            target = torch.as_tensor(np.asarray(y), device=out.device)
            target = target.long() if sparse else target.to(out.dtype)
            if not sparse and target.dim() == out.dim() - 1:
                target = target.unsqueeze(-1)
            per = elementwise_loss(loss, out, target, _TorchOps)
            if weight is not None:
                w = torch.as_tensor(weight, dtype=per.dtype, device=per.device)
                value = (per * w).sum() / w.sum().clamp_min(1.0)
            else:
                value = per.mean()
            value.backward()
            items = []
            for key, tensor in self.module.state_dict().items():
                grad = params[key].grad if key in params and params[key].grad is not None else None
                items.append(
                    (key, np.zeros(tuple(tensor.shape)) if grad is None else grad.detach().cpu().double().numpy())
                )
            return float(value.detach()), items
        finally:
            if not keep_grads:
                for k, p in params.items():
                    p.grad = kept[k]
            self.module.train(was)

    def train_steps(
        self, x: np.ndarray, y: np.ndarray, loss: dict, weight: np.ndarray | None, optimizer: Any, steps: int
    ) -> None:
        """``steps`` updates of the user's ``optimizer`` (bound to this module's parameters) on the batch, dropout
        off; the optimizer's state is put back afterwards (the weights are restored by the caller)."""
        import copy

        own = {id(p) for p in self.module.parameters()}
        if not all(id(p) in own for group in optimizer.param_groups for p in group["params"]):
            raise ValueError("the torch optimizer holds parameters that are not this module's")
        saved = copy.deepcopy(optimizer.state_dict())
        try:
            for _ in range(steps):
                optimizer.zero_grad(set_to_none=True)
                self.gradients(x, y, loss, weight, keep_grads=True)
                optimizer.step()
        finally:
            optimizer.load_state_dict(saved)
            optimizer.zero_grad(set_to_none=True)


def live(obj: Any) -> TorchLive | None:
    """The driver of ``obj`` when it is a ``torch.nn.Module``, else None."""
    return TorchLive(obj) if isinstance(obj, torch.nn.Module) else None
