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

from rnnspec.core.noise import ulp_perturbed

__all__ = ["run_file"]


def run_file(written: list[Path], nudge: int | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """Inference with the exported ``Model`` class and its state dict, in eval mode; with ``nudge`` (a seed), every
    float32 tensor of the state dict moved by one ulp first (the proof's noise floor)."""
    import torch
    from safetensors.torch import load

    source = next(p for p in written if p.suffix == ".py")
    weights = next(p for p in written if p.suffix == ".safetensors")
    module_spec = importlib.util.spec_from_file_location(f"_rnnspec_export_{source.stem}", source)
    assert module_spec is not None and module_spec.loader is not None
    module: Any = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    model = module.Model()
    state = load(Path(weights).read_bytes())  # any file name (load_file takes UTF-8 only)
    if nudge is not None:
        floats = {k: v.numpy() for k, v in state.items() if v.dtype == torch.float32}
        state.update({k: torch.from_numpy(v) for k, v in ulp_perturbed(floats, nudge).items()})
    model.load_state_dict(state)
    model.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    def carrying(x: np.ndarray) -> np.ndarray:
        """A stateful model (``reset_states``, ``batch_size``): ``x`` in consecutive batches from zero states."""
        model.reset_states()
        size = model.batch_size
        return np.concatenate([run(x[start : start + size]) for start in range(0, len(x), size)])

    return carrying if hasattr(model, "reset_states") else run
