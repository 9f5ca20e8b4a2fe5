"""``rnnspec import``, ``export`` and ``convert``: models in and out of rnnspec, and between frameworks;
what they run and the numbers they print."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import BACKENDS_HELP, AllowNonfinite, SpecArg, backend_name
from rnnspec.cli.output import write_outputs
from rnnspec.core.registry import DEFAULT_BACKEND, EXPORT_FORMATS, format_of_file

if TYPE_CHECKING:
    import numpy as np

    from rnnspec.interop.proof import Agreement, Outputs
    from rnnspec.lang.spec import ModelSpec
    from rnnspec.runtime.importing import ModuleRun

__all__ = ["ExportFormat", "convert", "export", "import_", "run_export", "run_import"]

Echo = Callable[[str], None]


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def _predictor(spec: ModelSpec, weights: dict[str, np.ndarray], backend: str) -> Callable[[np.ndarray], np.ndarray]:
    from rnnspec.runtime.models import build, predict

    model = build(spec, backend, weights=weights)
    return lambda x: predict(model, x)


def _side(spec: ModelSpec, weights: dict[str, np.ndarray], backend: str, x: np.ndarray) -> Outputs:
    """rnnspec's build on ``backend`` run on ``x``, and its noise floor (the build from weights nudged by one ulp)."""
    from rnnspec.core.noise import ulp_perturbed
    from rnnspec.interop.proof import run_side

    nudged = _predictor(spec, ulp_perturbed(weights), backend)
    return run_side(_predictor(spec, weights, backend), x, nudged)


def _builds(spec: ModelSpec, weights: dict[str, np.ndarray], x: np.ndarray) -> dict[str, Outputs]:
    """rnnspec's build on the reference and on every built-in backend whose framework is installed, run on ``x``."""
    from rnnspec.core.registry import BUILTIN_BACKENDS, compared_backends, reference_backend

    reference = reference_backend()
    out = {reference: _side(spec, weights, reference, x)}
    for name in compared_backends():
        entry = BUILTIN_BACKENDS.get(name)
        if name != reference and entry is not None and all(map(_installed, entry.framework_modules)):
            out[name] = _side(spec, weights, name, x)
    return out


def _original(path: Path, x: np.ndarray) -> tuple[Outputs | None, str | None]:
    """The file opened by its own framework (a .keras/.h5 by Keras: safe_mode, every class checked to be a Keras
    built-in), through the runner of the export format it is, run on ``x`` (and opened again with its weights nudged,
    for its noise floor); else None and why it could not be (None: the file is not one a runner opens)."""
    from rnnspec.core.noise import NUDGE_SEED
    from rnnspec.core.registry import get_runner
    from rnnspec.interop.proof import run_side

    fmt = format_of_file(str(path))
    if fmt is None:
        return None, None
    runner = get_runner(fmt)  # rnnspec's own code: its errors are not the file's
    try:
        run = runner([path])
        if run is None:
            return None, f"{fmt}'s runtime is not installed"
        return run_side(run, x, runner([path], nudge=NUDGE_SEED)), None
    except Exception as exc:  # the framework's own failure on a file it wrote or was given: said, not raised
        return None, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"


def _proof_lines(rows: list[Agreement], echo: Echo) -> None:
    """The rows, and what the noise floor means where it raised an allowance."""
    from rnnspec.core.noise import floor_note

    for row in rows:
        echo(row.line())
    if any(row.raised for row in rows):
        echo(f"  ({floor_note('output on that input row')})")


UNSEEN_FORWARD = (
    "  this proof cannot see your module's forward(): a state dict holds weights only, so it compares rnnspec's\n"
    "  builds of the spec with each other, and a spec that does not describe the module (a missing log_softmax,\n"
    "  another padding id, another bidirectional order) passes it. To prove the module itself, name its class:\n"
    "  --module my_model.py:MyModule [--args JSON] (this runs that file), or from Python:\n"
    "  rnnspec.testing.assert_equivalent(module, 'numpy', spec=SPEC)"
)
"""What a state-dict import's proof says it cannot see."""


def _module_verdict(mine: ModuleRun, rows: list[Agreement], builds: dict[str, Outputs], spec: ModelSpec,
                    spec_path: Path | None, echo: Echo) -> None:  # fmt: skip
    """Where the user's module and the spec's builds part (rows, steps, outputs), and what may explain it."""
    from rnnspec.interop.proof import differences, row_names
    from rnnspec.util import printable

    names = row_names(spec, len(mine.outputs.values))
    if not mine.rerun.passed:
        bad = [names[i] for i, d in enumerate(mine.rerun.diffs) if not d <= mine.rerun.allowed[i]]
        echo(
            f"  {mine.label}'s forward is not deterministic: two runs on the same inputs differ on {len(bad)} of "
            f"{len(names)} rows, by up to {mine.rerun.max_diff:.1e} (a random initial state, torch.randn in "
            "forward, or dropout that eval mode does not turn off; rnnspec's recurrent layers start from zeros)"
        )
    for row, (backend, side) in zip(rows[1:], builds.items(), strict=True):
        if not row.passed:
            echo(f"  {mine.label} vs rnnspec {backend}:")
            for line in differences(row, mine.outputs, side, names, ("your module", f"rnnspec {backend}")):
                echo(line)
            break
    spec_arg = f"'{printable(spec_path)}'" if spec_path is not None else "SPEC"
    echo(
        f"  the spec does not describe {mine.label}'s forward (a log_softmax the head lacks, a bidirectional\n"
        "  concat in another order, another padding id or packed sequences, an initial state that is not zeros...).\n"
        "  For a diagnosis by the catalogue of porting mistakes, run from Python, with the state dict loaded:\n"
        f"  rnnspec.testing.assert_equivalent(module, 'numpy', spec={spec_arg})"
    )


def run_import(source: Path, output: Path, spec_path: Path | None, name: str | None, overwrite: bool,
               echo: Echo, allow_nonfinite: bool = False, module: str | None = None,
               args: str | None = None) -> bool:  # fmt: skip
    """Import ``source`` into ``output``; print what was read, the proof and what was written. True if it agrees;
    where it does not, nothing is written. ``module`` (``FILE.py:CLASS``, with the JSON keyword arguments ``args``):
    a state dict is proven against that module's own forward, which RUNS the user's file."""
    from rnnspec.interop.proof import agreement, hard_inputs
    from rnnspec.lang.analysis import analyze
    from rnnspec.runtime.importing import import_model, import_targets, run_user_module, write_import
    from rnnspec.util import printable, quiet_stderr

    notes: list[str] = []  # what the file says that the spec does not keep (frozen layers, compile settings)
    with quiet_stderr():
        spec, weights = import_model(source, spec_path, name=name, allow_nonfinite=allow_nonfinite, notes=notes)
    targets = import_targets(output, overwrite=overwrite)
    x = hard_inputs(spec)
    with quiet_stderr():  # the user's module first: its file's own errors come before any build
        mine = run_user_module(source, module, args, x) if module is not None else None
        builds = _builds(spec, weights, x)
        original, unrun = _original(source, x) if module is None else (None, None)
    if mine is not None:
        rows = [mine.rerun] + [agreement(f"{mine.label} vs rnnspec {b}", mine.outputs, s) for b, s in builds.items()]
    elif original is not None:
        rows = [agreement(f"original Keras model vs rnnspec {b}", original, side) for b, side in builds.items()]
    else:
        (ref, first), *others = builds.items()
        rows = [agreement(f"rnnspec {ref} vs rnnspec {b}", first, side) for b, side in others]
    layers = analyze(spec).layers
    params = sum(r.params for r in layers)
    echo(f"read {printable(source)}: {len(layers)} layers, {params:,} parameters ({spec.convention} convention)")
    for note in notes:
        echo(note if note.startswith("WARNING") else f"note: {note}")
    what = "the original model" if original is not None else "each other"
    if mine is not None:
        what = f"{mine.label}'s own forward (--module, run in eval mode with the state dict loaded)"
    echo(f"proof: {len(x)} inputs (pre-/post-padded, a hole, fully padded, length 1), compared with {what}:")
    if mine is None and original is None:
        if unrun is not None:
            echo(f"  (Keras could not run the original file itself ({printable(unrun)}): rnnspec's builds are compared")
            echo("  with each other, not with the original model)")
        else:
            echo(UNSEEN_FORWARD)
    _proof_lines(rows, echo)
    if mine is not None and not all(r.passed for r in rows):
        _module_verdict(mine, rows, builds, spec, spec_path, echo)
    if not all(r.passed for r in rows):
        why = "the copy differs beyond what float32 rounding explains"
        if mine is not None:
            why = (
                f"rnnspec's build of the spec differs from {mine.label}'s forward beyond what float32 rounding explains"
            )
        echo(f"proof failed: nothing was written ({', '.join(printable(t) for t in targets)} left as they were); {why}")
        return False
    written = write_import(spec, weights, output, str(source.name), overwrite=overwrite, inputs=(source, spec_path))
    for path in written:
        echo(f"wrote {printable(path)}")
    echo(f"next: rnnspec build {printable(written[0])} --backend {DEFAULT_BACKEND} --weights {printable(written[1])}")
    return True


class _ProofFailed(Exception):
    """Raised inside the staging of an export whose proof failed, so that nothing staged is committed."""


def run_export(spec: ModelSpec, weights: dict[str, np.ndarray], fmt: str, output: Path, echo: Echo,
               inputs: tuple[Path | None, ...] = ()) -> bool:  # fmt: skip
    """Export (every file as one unit, none of them over one of ``inputs``), after running the staged files on the
    hard inputs and comparing them with rnnspec's NumPy reference: where they differ, nothing is written."""
    from rnnspec.core.noise import NUDGE_SEED
    from rnnspec.core.registry import get_exporter, get_runner, reference_backend
    from rnnspec.interop.proof import agreement, hard_inputs, run_side
    from rnnspec.util import printable, quiet_stderr, staged_outputs

    exporter = get_exporter(fmt)
    x = hard_inputs(spec)
    ref = reference_backend()
    row = None
    unrun: str | None = None
    try:
        with staged_outputs(inputs) as out:
            staged = out.stage(output)
            with quiet_stderr():
                files = exporter(spec, weights, staged)
                runner = get_runner(fmt)
                try:
                    run = runner(files)
                    if run is not None:
                        exported = run_side(run, x, runner(files, nudge=NUDGE_SEED))
                        row = agreement(f"exported {fmt} vs rnnspec {ref}", exported, _side(spec, weights, ref, x))
                except Exception as exc:  # the format's own runtime could not open or run what was written
                    unrun = (
                        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
                    )
            if unrun is not None or (row is not None and not row.passed):
                raise _ProofFailed
            written = [out.final(p) for p in files]
    except _ProofFailed:
        if unrun is not None:
            echo(f"proof: the {fmt} runtime could not open or run the exported file ({printable(unrun)})")
        else:
            assert row is not None
            echo(f"proof: {len(x)} inputs (pre-/post-padded, a hole, fully padded, length 1):")
            _proof_lines([row], echo)
        echo(
            f"proof failed: nothing was written ({printable(output)} left as it was); the exported model "
            + ("could not be run" if unrun is not None else "differs beyond what float32 rounding explains")
        )
        return False
    if row is None:
        echo(f"proof skipped: the {fmt} runtime is not installed here")
    else:
        echo(f"proof: {len(x)} inputs (pre-/post-padded, a hole, fully padded, length 1):")
        _proof_lines([row], echo)
    for path in written:
        echo(f"wrote {printable(path)}")
    if fmt == "onnx" and spec.input.vocab_size is not None:  # one input type: onnxruntime refuses any other
        echo(
            "input x: int64 token ids [batch, time]; Keras's pad_sequences returns int32: feed x.astype('int64') "
            "(onnxruntime refuses int32 with 'Unexpected input data type')"
        )
    return True


ExportFormat = Enum("ExportFormat", {name: name for name in EXPORT_FORMATS}, type=str)
"""``--format``: the registry's export formats (onnx, torch, keras)."""


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
    allow_nonfinite: AllowNonfinite = False,
    module: Annotated[
        Optional[str],
        typer.Option(
            "--module",
            metavar="FILE.py:CLASS",
            help="A state dict's own torch.nn.Module class: the proof runs its forward. This RUNS the code in FILE.py "
            "(only the file you name here).",
        ),
    ] = None,
    args: Annotated[
        Optional[str],
        typer.Option(
            "--args", metavar="JSON", help='With --module: the constructor\'s keyword arguments, {"hidden": 8}.'
        ),
    ] = None,
) -> None:
    """Import a trained Keras model or PyTorch state dict: writes a spec and canonical weights, then proves them.

    Nothing in the model file is executed. A state dict needs --spec (it holds no activations or head).

    Proof: hard inputs (pre-/post-padded, holes, length 1) through the original and rnnspec's builds, each row
    within 1e-5 or 100 x its noise floor (each side's own change when every weight moves by one float32 ulp). A state
    dict has no forward() to run: its proof compares rnnspec's builds with each other, unless --module names the
    module's class: then rnnspec RUNS that Python file, makes the module (--args), loads the state dict into it
    (strict), and compares its forward in eval mode with rnnspec's builds.

    Exit 1, writing nothing, if they differ, or if the model has layers the spec cannot express (all are listed).
    """
    if args is not None and module is None:
        raise typer.BadParameter("--args gives --module's constructor arguments; pass --module FILE.py:CLASS too")
    if not run_import(source, output, spec, name, overwrite, typer.echo, allow_nonfinite, module, args):
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

    The exported model needs no rnnspec to run. Proof: it is run on hard inputs and compared with rnnspec (within 1e-5
    or 100 x the noise floor), before any file is put in place.

    Exit 1, writing nothing, if they differ.
    """
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.models import load_weights

    model_spec = load_spec(spec)
    values = load_weights(weights, spec=model_spec)
    if not run_export(model_spec, values, fmt.value, output, typer.echo, inputs=(spec, weights)):
        raise typer.Exit(1)
    if model_spec.stateful and fmt.value == "onnx":
        carried = [name for name, layer in model_spec.stack() if getattr(layer, "stateful", False)]
        typer.echo(
            f"note: the graph carries the states of {', '.join(carried)} (stateful): inputs LAYER.h_0 (and an LSTM's "
            f"LAYER.c_0), [directions, {model_spec.input.batch_size}, units], zeros for the first batch; feed each "
            "batch the LAYER.h_n / LAYER.c_n outputs of the batch before, as Keras carries them"
        )


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
    from rnnspec.util import printable, quiet_stderr

    model_spec, values = read_any(source, spec, allow_nonfinite=allow_nonfinite)
    impl = load_backend(to)
    with quiet_stderr():
        model = build_model(model_spec, to, weights=values)
    typer.echo(f"read {printable(source)}: spec {model_spec.name!r}, {len(values)} weights")
    write_outputs(impl, model, output, inputs=(source, spec))
