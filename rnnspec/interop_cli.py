"""``rnnspec import`` and ``rnnspec export``: what they run and the numbers they print."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.interop.proof import Agreement, agreement, hard_inputs
from rnnspec.lang.spec import ModelSpec

__all__ = ["run_export", "run_import"]

Echo = Callable[[str], None]


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def _predictor(spec: ModelSpec, weights: dict[str, np.ndarray], backend: str) -> Callable[[np.ndarray], np.ndarray]:
    from rnnspec.runtime.models import build, predict

    model = build(spec, backend, weights=weights)
    return lambda x: predict(model, x)


def _builds(spec: ModelSpec, weights: dict[str, np.ndarray]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    out = {"numpy": _predictor(spec, weights, "numpy")}
    for name, module in (("torch", "torch"), ("keras", "keras")):
        if _installed(module):
            out[name] = _predictor(spec, weights, name)
    return out


def _original_keras(path: Path) -> Callable[[np.ndarray], np.ndarray] | None:
    """The file opened by Keras itself (safe_mode; every class was checked to be a Keras built-in)."""
    if not _installed("keras") or not _installed("tensorflow"):
        return None
    from rnnspec.core.registry import get_backend

    get_backend("keras")  # selects TensorFlow as Keras's backend before Keras is imported
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception:
        return None
    return lambda x: np.asarray(model.predict(x, verbose=0))


def run_import(source: Path, output: Path, spec_path: Path | None, name: str | None, overwrite: bool,
               echo: Echo) -> bool:  # fmt: skip
    """Import ``source`` into ``output``; print what was read, what was written and the proof. True if it agrees."""
    from rnnspec.runtime.importing import import_model, write_import
    from rnnspec.lang.analysis import analyze
    from rnnspec.util import quiet_stderr

    with quiet_stderr():
        spec, weights = import_model(source, spec_path, name=name)
    x = hard_inputs(spec)
    rows: list[Agreement] = []
    with quiet_stderr():
        builds = _builds(spec, weights)
        original = _original_keras(source) if source.suffix.lower() in (".keras", ".h5", ".hdf5") else None
        if original is not None:
            rows = [agreement(f"original Keras model vs rnnspec {b}", original, fn, x) for b, fn in builds.items()]
        else:
            ref = builds["numpy"]
            rows = [agreement(f"rnnspec numpy vs rnnspec {b}", ref, fn, x) for b, fn in builds.items() if b != "numpy"]
    written = write_import(spec, weights, output, str(source.name), overwrite=overwrite)
    layers = analyze(spec).layers
    params = sum(r.params for r in layers)
    echo(f"read {source}: {len(layers)} layers, {params:,} parameters ({spec.convention} convention)")
    for path in written:
        echo(f"wrote {path}")
    what = "the original model" if original is not None else "each other"
    echo(f"proof: {len(x)} inputs (pre-/post-padded, a hole, fully padded, length 1), compared with {what}:")
    if original is None and source.suffix.lower() in (".keras", ".h5", ".hdf5"):
        echo("  (Keras 3 could not open the original file itself: a Keras 2 file or no Keras installed)")
    for row in rows:
        echo(row.line())
    echo(f"next: rnnspec build {written[0]} --backend torch --weights {written[1]}")
    return all(r.passed for r in rows)


def run_export(spec: ModelSpec, weights: dict[str, np.ndarray], fmt: str, output: Path, echo: Echo) -> bool:
    """Export; then run the exported file on the hard inputs and compare with rnnspec's NumPy reference."""
    from rnnspec.core.registry import get_exporter
    from rnnspec.util import quiet_stderr

    exporter = get_exporter(fmt)
    with quiet_stderr():
        written = exporter(spec, weights, output)
    for path in written:
        echo(f"wrote {path}")
    x = hard_inputs(spec)
    with quiet_stderr():
        reference = _predictor(spec, weights, "numpy")
        runner = _exported_runner(fmt, written)
        row = agreement(f"exported {fmt} vs rnnspec numpy", reference, runner, x) if runner else None
    if row is None:
        echo(f"proof skipped: the {fmt} runtime is not installed here")
        return True
    echo(f"proof: {len(x)} inputs (pre-/post-padded, a hole, fully padded, length 1):")
    echo(row.line())
    return row.passed


def _exported_runner(fmt: str, written: list[Path]) -> Callable[[np.ndarray], np.ndarray] | None:
    if fmt == "onnx":
        if not _installed("onnxruntime"):
            return None
        import onnxruntime

        session = onnxruntime.InferenceSession(str(written[0]), providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]
    if fmt == "keras":
        return _original_keras(written[0])
    return _plain_torch(written)


def _plain_torch(written: list[Path]) -> Callable[[np.ndarray], np.ndarray]:
    import importlib.util

    import torch
    from safetensors.torch import load_file

    source = next(p for p in written if p.suffix == ".py")
    weights = next(p for p in written if p.suffix == ".safetensors")
    module_spec = importlib.util.spec_from_file_location(f"_rnnspec_export_{source.stem}", source)
    assert module_spec is not None and module_spec.loader is not None
    module: Any = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(load_file(str(weights)))
    model.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    return run
