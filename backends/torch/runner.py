"""An exported plain-PyTorch model (``model.py`` + ``model.safetensors``) imported and run as its users would, for
the proof of ``rnnspec export --format torch``.

>>> run = run_file([Path("out/model.py"), Path("out/model.safetensors")])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_file"]


def run_file(written: list[Path]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Inference with the exported ``Model`` class and its state dict, in eval mode."""
    import torch
    from safetensors.torch import load

    source = next(p for p in written if p.suffix == ".py")
    weights = next(p for p in written if p.suffix == ".safetensors")
    module_spec = importlib.util.spec_from_file_location(f"_rnnspec_export_{source.stem}", source)
    assert module_spec is not None and module_spec.loader is not None
    module: Any = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(load(Path(weights).read_bytes()))  # any file name (load_file takes UTF-8 only)
    model.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    return run
