"""Reading a user's PyTorch ``state_dict`` file (``torch.save``) without running code from it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnspec.lang.errors import RnnspecError

__all__ = ["read_state_dict"]

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")
"""Keys under which training checkpoints commonly keep the model's state dict."""


def read_state_dict(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """The ``(key, array)`` pairs of a ``torch.save``-d state dict, in the file's order.

    Read with ``torch.load(weights_only=True)``: only tensors and plain containers are unpickled.
    A whole pickled ``nn.Module`` is refused (unpickling it would run code); a checkpoint dict is
    searched for its state dict under ``state_dict``, ``model_state_dict``, ``model`` or ``net``.
    """
    p = Path(path)
    try:
        value = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RnnspecError(
            f"{p}: not a plain state dict; torch.load(weights_only=True) refused it "
            f"({str(exc).splitlines()[0][:160]}). A pickled nn.Module can only be loaded by running code from "
            "the file, which rnnspec never does. fix: save the weights only, "
            "`torch.save(model.state_dict(), 'model.pt')` (or safetensors.torch.save_file)"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise RnnspecError(f"{p}: not a readable torch.save file ({str(exc).splitlines()[0][:160]})") from None
    state = _find_state(value)
    if state is None:
        raise RnnspecError(
            f"{p}: holds a {type(value).__name__} without tensors at its top level or under "
            f"{', '.join(_NESTED_KEYS)}; expected a state dict (`torch.save(model.state_dict(), path)`)"
        )
    return [(str(k), v.detach().to(torch.float32).numpy()) for k, v in state.items()]


def _find_state(value: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        return value
    if isinstance(value, dict):
        for key in _NESTED_KEYS:
            found = _find_state(value.get(key))
            if found is not None:
                return found
    return None
