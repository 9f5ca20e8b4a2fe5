"""``rnnspec import``, ``export`` and ``convert``: models in and out of rnnspec, and between frameworks;
what they run and the numbers they print."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import BACKENDS_HELP, AllowNonfinite, SpecArg, backend_name
from rnnspec.cli.output import write_outputs

if TYPE_CHECKING:
    import numpy as np

    from rnnspec.interop.proof import Agreement
    from rnnspec.lang.spec import ModelSpec

__all__ = ["ExportFormat", "convert", "export", "import_", "run_export", "run_import"]

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
    import numpy as np

    return lambda x: np.asarray(model.predict(x, verbose=0))


def run_import(source: Path, output: Path, spec_path: Path | None, name: str | None, overwrite: bool,
               echo: Echo) -> bool:  # fmt: skip
    """Import ``source`` into ``output``; print what was read, what was written and the proof. True if it agrees."""
    from rnnspec.interop.proof import agreement, hard_inputs
    from rnnspec.lang.analysis import analyze
    from rnnspec.runtime.importing import import_model, write_import
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
    from rnnspec.interop.proof import agreement, hard_inputs
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


class ExportFormat(str, Enum):
    onnx = "onnx"
    torch = "torch"
    keras = "keras"


@user_errors
def import_(
    source: Annotated[
        Path,
        typer.Argument(
            help="A Keras model (.keras, or a legacy .h5 from tf.keras/Keras 2) or a PyTorch state_dict "
            "(.pt/.pth from torch.save, or .safetensors; needs --spec).",
            show_default=False,
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for spec.yaml and weights.safetensors.")],
    spec: Annotated[
        Optional[Path],
        typer.Option("--spec", help="The architecture: required for a state dict; for a Keras file, its names."),
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="Name of the imported spec (default: the model's name)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace spec.yaml/weights.safetensors in -o.")
    ] = False,
) -> None:
    """Import a trained Keras model or PyTorch state dict: writes a spec and canonical weights, then proves them.

    Nothing in the file is executed. A state dict needs --spec (it holds no activations or head).

    Proof: hard inputs (pre-/post-padded, holes, length 1) through the original and rnnspec's builds.

    Exit 1 if they differ, or if the model has layers the spec cannot express (all are listed).
    """
    if not run_import(source, output, spec, name, overwrite, typer.echo):
        raise typer.Exit(1)


@user_errors
def export(
    spec: SpecArg,
    weights: Annotated[Path, typer.Option("--weights", help="Canonical weights (.safetensors) of the spec.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="onnx, torch (plain PyTorch) or keras.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The file to write: model.onnx, model.py (+ model.safetensors), m.keras."),
    ],
) -> None:
    """Export a spec and its weights as ONNX, plain PyTorch (source + state dict) or a plain .keras file.

    The exported model needs no rnnspec to run. Proof: it is run on hard inputs and compared with rnnspec.

    Exit 1 if they differ.
    """
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.models import load_weights

    model_spec = load_spec(spec)
    values = load_weights(weights, spec=model_spec)
    if not run_export(model_spec, values, fmt.value, output, typer.echo):
        raise typer.Exit(1)


@user_errors
def convert(
    source: Annotated[
        Path,
        typer.Argument(
            help="Canonical weights (.weights.safetensors), a torch artifact (.torch.safetensors) or a .keras file.",
            show_default=False,
        ),
    ],
    to: Annotated[str, typer.Option("--to", callback=backend_name, help=f"Framework to convert to: {BACKENDS_HELP}.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the converted artifact and weights.")],
    spec: Annotated[
        Optional[Path],
        typer.Option("--spec", help="The spec, when the source file does not carry one."),
    ] = None,
    allow_nonfinite: AllowNonfinite = False,
) -> None:
    """Move trained weights between frameworks (through the canonical layout)."""
    from rnnspec.runtime.backends import load_backend
    from rnnspec.runtime.convert import read_any
    from rnnspec.runtime.models import build as build_model
    from rnnspec.util import quiet_stderr

    model_spec, values = read_any(source, spec, allow_nonfinite=allow_nonfinite)
    impl = load_backend(to)
    with quiet_stderr():
        model = build_model(model_spec, to, weights=values)
    typer.echo(f"read {source}: spec {model_spec.name!r}, {len(values)} weights")
    write_outputs(impl, model, output)
