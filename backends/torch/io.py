"""Reading a user's PyTorch ``state_dict`` file (``torch.save``) without running code from it."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnspec.core.budget import ReadBudget, foreign_bytes
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
    budget = ReadBudget(p)
    with foreign_bytes(p, "torch.save file", "fix: save it again with `torch.save(model.state_dict(), 'model.pt')`"):
        _check_archive(p, budget)
        value = _load(p)
        state = _find_state(value)  # a checkpoint nested deeper than Python recurses is a located error too
    if state is None:
        raise RnnspecError(
            f"{p}: holds a {type(value).__name__} without tensors at its top level or under "
            f"{', '.join(_NESTED_KEYS)}; expected a state dict (`torch.save(model.state_dict(), path)`)"
        )
    out = []
    for key, tensor in state.items():
        if _batch_counter(key, tensor):
            continue  # nn.BatchNorm1d's num_batches_tracked: PyTorch's count of training batches, not a weight
        _check_kind(p, str(key), tensor)
        budget.count("tensors")
        budget.charge(tensor.numel() * 4, f"tensor {str(key)[:80]!r} of shape {tuple(tensor.shape)}")
        with foreign_bytes(p, f"tensor {str(key)[:80]!r}"):
            out.append((str(key), np.ascontiguousarray(tensor.detach().to(torch.float32).numpy())))
    return out


def _check_archive(p: Path, budget: ReadBudget) -> None:
    """The bytes a ``torch.save`` zip will make torch allocate, charged before it loads anything.

    torch writes its members stored (uncompressed, 64-byte aligned); a compressed member would inflate
    while loading, so it is refused. A file in the old (non-zip) format is charged its own size.
    """
    if not zipfile.is_zipfile(p):
        budget.charge(p.stat().st_size, "the file")
        return
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        budget.count("zip members", len(infos))
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise RnnspecError(
                    f"{p}: member {info.filename} is compressed (method {info.compress_type}); torch.save writes "
                    "its members uncompressed, and a compressed one may inflate far beyond the file's size. "
                    "fix: save it again with `torch.save(model.state_dict(), 'model.pt')`"
                )
            budget.charge(info.file_size, f"member {info.filename}")


def _batch_counter(key: object, tensor: Any) -> bool:
    """Whether ``key`` is a batch-norm module's ``num_batches_tracked``: one integer, read by no layer."""
    return (
        str(key).rpartition(".")[2] == "num_batches_tracked"
        and isinstance(tensor, torch.Tensor)
        and tensor.dim() == 0
        and tensor.dtype == torch.int64
    )


def _check_kind(p: Path, key: str, tensor: torch.Tensor) -> None:
    """Dense real floating-point tensors only (docs/safety.md): the rest is refused, naming the tensor."""
    kind = None
    if getattr(tensor, "is_nested", False):
        kind = "a nested tensor"
    elif tensor.layout != torch.strided:
        kind = f"a {str(tensor.layout).removeprefix('torch.')} tensor (sparse)"
    elif tensor.is_quantized:
        kind = f"a quantized tensor ({tensor.dtype})"
    elif tensor.is_complex():
        kind = f"a complex tensor ({tensor.dtype}); its imaginary part would be lost"
    elif not tensor.is_floating_point():
        kind = f"a {str(tensor.dtype).removeprefix('torch.')} tensor; weights are real numbers"
    if kind is not None:
        raise RnnspecError(
            f"{p}: {key!r} is {kind}. expected: dense floating-point tensors (float32, float16, bfloat16, "
            "float64). fix: save the model's float weights, `torch.save(model.state_dict(), path)`"
        )


def _load(p: Path) -> Any:
    try:
        with warnings.catch_warnings():  # a mutated file's pickle-protocol warning is not the user's business
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RnnspecError(
            f"{p}: not a plain state dict; torch.load(weights_only=True) refused it "
            f"({str(exc).splitlines()[0][:160]}). A pickled nn.Module can only be loaded by running code from "
            "the file, which rnnspec never does. fix: save the weights only, "
            "`torch.save(model.state_dict(), 'model.pt')` (or safetensors.torch.save_file)"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise RnnspecError(f"{p}: not a readable torch.save file ({str(exc).splitlines()[0][:160]})") from None


def _find_state(value: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        return value
    if isinstance(value, dict):
        for key in _NESTED_KEYS:
            found = _find_state(value.get(key))
            if found is not None:
                return found
    return None
