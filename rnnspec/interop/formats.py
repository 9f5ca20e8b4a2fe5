"""Which kind of model file a path holds: a Keras ``.keras``/``.h5``, a PyTorch ``torch.save`` file or
``.safetensors`` tensors, told from its first bytes, not trusted from its name alone."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rnnspec.core.weights import WEIGHTS_FORMAT, load_weights_file
from rnnspec.interop.errors import ImportError_

__all__ = ["KERAS_SPEC_MEMBER", "foreign_safetensors", "model_format"]

KERAS_SPEC_MEMBER = "rnnspec-spec.json"
"""The member of a ``.keras`` archive that holds the spec of a model rnnspec wrote (the keras backend's artifact)."""


def model_format(path: Path) -> str:
    """``keras`` (a ``.keras`` zip or an ``.h5``), ``torch`` (a ``torch.save`` file) or ``safetensors``, from
    the file's first bytes and name; an :class:`ImportError_` for anything else."""
    if not path.is_file():
        raise ImportError_(f"{path}: no such file (expected a .keras, .h5, .pt/.pth or .safetensors model file)")
    with path.open("rb") as fh:
        head = fh.read(8)
    name = path.name.lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if head == b"\x89HDF\r\n\x1a\n":
        return "keras"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            raise ImportError_(f"{path}: a damaged zip file; it may be truncated") from None
        if "config.json" in names:
            return "keras"
        if any(n.endswith("data.pkl") for n in names):
            return "torch"
        raise ImportError_(f"{path}: a zip that is neither a .keras model nor a torch.save file")
    if name.endswith((".pt", ".pth", ".bin")) or head[:2] == b"\x80\x02":
        return "torch"
    raise ImportError_(
        f"{path}: not a model file rnnspec reads; expected a Keras .keras or .h5 model, a PyTorch state_dict "
        "(.pt/.pth from torch.save, or .safetensors)"
    )


def foreign_safetensors(path: Path) -> list[tuple[str, np.ndarray]] | None:
    """The tensors of a ``.safetensors`` file written by another tool, as ``(name, array)``; None when rnnspec
    wrote it (canonical weights, read with their spec instead)."""
    tensors, metadata = load_weights_file(path)
    if metadata.get("format") in (WEIGHTS_FORMAT,):
        return None
    return list(tensors.items())
