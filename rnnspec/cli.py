"""The ``rnnspec`` command line.

Exit codes: 0 ok, 1 invalid input or a failed check, 2 usage error. A user mistake never
prints a Python traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from rnnspec.lang.errors import RnnspecError, SpecError

from . import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="rnnspec",
    help="Compile one declarative spec of a recurrent sequence model into equivalent Keras, PyTorch and "
    "NumPy models.\n\nExit codes: 0 ok, 1 invalid input or failed check, 2 usage error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn rnnspec's user-facing errors into a message on stderr and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            raise _fail(exc.render()) from None
        except RnnspecError as exc:
            raise _fail(f"error: {exc}") from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise _fail(f"error: {where}{exc.strerror or exc}; check the path and its permissions") from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnspec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer reads the annotation at run time
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
    threads: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--threads",
            envvar="RNNSPEC_THREADS",
            help="CPU threads for training and prediction (default auto: the CPUs not busy with other work).",
        ),
    ] = None,
) -> None:
    """Compile one declarative spec of a recurrent sequence model into equivalent Keras, PyTorch and NumPy
    models.

    Exit codes: 0 ok, 1 invalid input or failed check, 2 usage error.
    """
    from rnnspec.util import parse_threads

    try:
        _THREADS["requested"] = parse_threads(threads or "", "--threads")
    except ValueError as exc:
        raise typer.BadParameter(str(exc).replace("--threads must", "must"), param_hint="--threads") from None


AllowNonfinite = Annotated[
    bool, typer.Option("--allow-nonfinite", help="Accept weights holding NaN or inf (refused by default).")
]
SpecArg = Annotated[Path, typer.Argument(help="A spec file (.yaml, .yml or .json).", show_default=False)]


class ConventionName(str, Enum):
    keras = "keras"
    torch = "torch"


Convention = Annotated[
    Optional[ConventionName],  # noqa: UP045
    typer.Option(
        "--convention",
        "-c",
        help="Count parameters in this convention (default: the spec's own).",
        show_default=False,
    ),
]


@app.command()
@user_errors
def validate(
    specs: Annotated[list[Path], typer.Argument(help="One or more spec files.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report.")] = False,
) -> None:
    """Check spec files; print `ok` or every located error per file. Exit 1 if any is invalid."""
    from rnnspec.lang.loader import load_spec

    report: list[dict[str, Any]] = []
    failed = False
    for path in specs:
        try:
            load_spec(path)
        except SpecError as exc:
            failed = True
            report.append({"file": str(path), "ok": False, "errors": [i.to_dict() for i in exc.issues]})
            if not as_json:
                typer.echo(exc.render(), err=True)
            continue
        report.append({"file": str(path), "ok": True, "errors": []})
        if not as_json:
            typer.echo(f"ok {path}")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    if failed:
        raise typer.Exit(1)


@app.command()
@user_errors
def summary(
    spec: SpecArg,
    convention: Convention = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Print a Keras-style table of layers, output shapes and parameter counts (no framework is imported)."""
    from rnnspec.lang.analysis import analyze
    from rnnspec.lang.loader import load_spec
    from rnnspec.lang.summary import render_summary

    result = analyze(load_spec(spec), convention.value if convention else None)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(render_summary(result), nl=False)


@app.command()
@user_errors
def schema(
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the schema to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of the spec (for editor completion and validation)."""
    from rnnspec.lang.schema import spec_schema
    from rnnspec.util import write_text_atomic

    text = json.dumps(spec_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text_atomic(output, text)
        typer.echo(f"wrote {output}")


def _backend_name(value: str | None) -> str | None:
    """Any registered backend: built in (keras, torch, numpy) or from the `rnnspec.backends` entry points."""
    from rnnspec.core.registry import available_backends

    known = available_backends()
    if value is not None and value not in known:
        raise typer.BadParameter(f"unknown backend {value!r}; available: {', '.join(known)}")
    return value


_BACKENDS_HELP = "keras, torch, numpy, or a backend registered in the `rnnspec.backends` entry-point group"
BackendName = Annotated[
    str, typer.Option("--backend", "-b", callback=_backend_name, help=f"Framework: {_BACKENDS_HELP}.")
]


def _trainable_backend_name(value: str | None) -> str | None:
    """A backend that can train: the numpy backend is forward-only, so train and evaluate do not offer it."""
    value = _backend_name(value)
    if value == "numpy":
        raise typer.BadParameter("the numpy backend is forward-only (it cannot train or evaluate); use torch or keras")
    return value


TrainBackendName = Annotated[
    str,
    typer.Option(
        "--backend",
        "-b",
        callback=_trainable_backend_name,
        help="Framework: torch, keras, or a registered backend with a trainer (numpy is forward-only).",
    ),
]


_THREADS: dict[str, int | None] = {"requested": None}
"""``--threads`` as given to the root command (None: RNNSPEC_THREADS, else chosen from the free CPUs)."""


def _load_backend(name: str) -> Any:
    """Import a backend with TensorFlow's import-time log lines kept off the user's terminal, and give it
    its thread count (a backend without ``set_threads`` keeps its framework's default)."""
    from rnnspec.core.registry import get_backend
    from rnnspec.util import choose_threads, quiet_stderr

    with quiet_stderr():
        impl = get_backend(name)
        set_threads = getattr(impl, "set_threads", None)
        if callable(set_threads):
            # --threads / RNNSPEC_THREADS were read by the root command; auto is measured once per process (0.1 s)
            key = f"chosen:{_THREADS['requested']}"
            if key not in _THREADS:
                _THREADS[key] = choose_threads(_THREADS["requested"])
            set_threads(_THREADS[key])
    return impl


def _print_model(impl: Any, model: Any, spec: Any, backend: str) -> None:
    from rnnspec.lang.analysis import analyze

    typer.echo(impl.summary(model), nl=False)
    counts = impl.count_params(model)
    total = sum(counts.values())
    typer.echo(
        f"parameter counts: {backend} model {total:,} = analytic {analyze(spec).total_params:,} "
        f"({spec.convention} convention), per layer too"
    )
    for note in impl.notes(model):
        typer.echo(f"note: {note}")


def _write_outputs(impl: Any, model: Any, directory: Path) -> None:
    from rnnspec.runtime.runs import write_model_files

    for path in write_model_files(impl, model, directory):
        typer.echo(f"wrote {path}")


@app.command()
@user_errors
def build(
    spec: SpecArg,
    backend: BackendName,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the native artifact and the canonical weights into this folder."),
    ] = None,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--seed", min=0, help="Seed of the initial weights (the same on every backend)."),
    ] = None,
    weights: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--weights", help="Start from these canonical weights (.safetensors) instead of a seed."),
    ] = None,
    allow_nonfinite: AllowNonfinite = False,
) -> None:
    """Compile a spec to a native model, check its parameter counts, print its summary; -o writes it."""
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.models import build as build_model

    model_spec = load_spec(spec)
    impl = _load_backend(backend)
    from rnnspec.util import quiet_stderr

    with quiet_stderr():
        model = build_model(model_spec, backend, seed=seed, weights=weights, allow_nonfinite=allow_nonfinite)
    _print_model(impl, model, model_spec, backend)
    if output is not None:
        _write_outputs(impl, model, output)


@app.command()
@user_errors
def convert(
    source: Annotated[
        Path,
        typer.Argument(
            help="Canonical weights (.weights.safetensors), a torch artifact (.torch.safetensors) or a .keras file.",
            show_default=False,
        ),
    ],
    to: Annotated[
        str, typer.Option("--to", callback=_backend_name, help=f"Framework to convert to: {_BACKENDS_HELP}.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the converted artifact and weights.")],
    spec: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--spec", help="The spec, when the source file does not carry one."),
    ] = None,
    allow_nonfinite: AllowNonfinite = False,
) -> None:
    """Move trained weights between frameworks (through the canonical layout)."""
    from rnnspec.runtime.convert import read_any

    model_spec, values = read_any(source, spec, _load_backend, allow_nonfinite=allow_nonfinite)
    from rnnspec.runtime.models import build as build_model
    from rnnspec.util import quiet_stderr

    impl = _load_backend(to)
    with quiet_stderr():
        model = build_model(model_spec, to, weights=values)
    typer.echo(f"read {source}: spec {model_spec.name!r}, {len(values)} weights")
    _write_outputs(impl, model, output)


class ExportFormat(str, Enum):
    onnx = "onnx"
    torch = "torch"
    keras = "keras"


@app.command("import")
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
        Optional[Path],  # noqa: UP045
        typer.Option("--spec", help="The architecture: required for a state dict; for a Keras file, its names."),
    ] = None,
    name: Annotated[
        Optional[str],  # noqa: UP045
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
    from rnnspec.interop_cli import run_import

    if not run_import(source, output, spec, name, overwrite, typer.echo):
        raise typer.Exit(1)


@app.command()
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
    from rnnspec.interop_cli import run_export
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.models import load_weights

    model_spec = load_spec(spec)
    values = load_weights(weights, spec=model_spec)
    if not run_export(model_spec, values, fmt.value, output, typer.echo):
        raise typer.Exit(1)


TextColumn = Annotated[
    str,
    typer.Option("--text-column", help="Text files: the column (JSONL: key) of the texts; JSONL sequences: of x."),
]
LabelColumn = Annotated[
    str, typer.Option("--label-column", help="Text files: the column (JSONL: key) of the labels; JSONL sequences: y.")
]


def _device_name(value: str) -> str:
    if value not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter(f"{value!r} is not a device; use auto, cpu or cuda")
    return value


Device = Annotated[
    str,
    typer.Option(
        "--device", callback=_device_name, help="torch: auto, cpu or cuda (keras uses what TensorFlow finds)."
    ),
]
DataOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--data",
        help="builtin:NAME, keras:imdb|reuters, a Keras .npz or an .npz with arrays x and y, a CSV/TSV/JSONL "
        'text file, or a JSONL of float sequences {"x": [[...]], "y": ...} (default: the spec\'s training.data).',
    ),
]


@app.command()
@user_errors
def train(
    spec: SpecArg,
    backend: TrainBackendName = "torch",
    data: DataOption = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Override training.epochs.")] = None,  # noqa: UP045
    batch_size: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--batch-size", min=1, help="Override training.batch_size."),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--limit", min=1, help="Train on the first N samples only."),
    ] = None,
    seed: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--seed",
            min=0,
            help="Seed of the initial weights, the shuffles, dropout and built-in data [default: 0; with --resume, "
            "the run's].",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--output", "-o", help="Folder for the model, weights, history and plots (default: runs/NAME-BACKEND)."
        ),
    ] = None,
    device: Device = "auto",
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the run already in the -o folder (refused otherwise).")
    ] = False,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            max=1024,
            help="Data-parallel training in N processes on this machine (torch backend; torchrun's launcher). "
            "batch_size stays the global batch; the history equals one process's.",
        ),
    ] = 1,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in the -o folder from its last checkpoint up to --epochs (same spec, data, "
            "settings, seed and backend; what differs is named).",
        ),
    ] = False,
    checkpoint_every: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--checkpoint-every",
            min=1,
            metavar="K",
            help="Also checkpoint after every K batches within an epoch (long epochs: a kill loses at most K).",
        ),
    ] = None,
) -> None:
    """Train with the spec's training section (Keras semantics on both backends); Ctrl-C keeps the last epoch.

    Every epoch ends with a checkpoint (and every K batches with --checkpoint-every K); --resume continues
    a stopped or finished run exactly.
    """
    from rnnspec.train_cli import launch_processes, run_train

    if nproc > 1:
        code = launch_processes(backend, nproc, _without_nproc(_ARGV), load_backend=_load_backend)
        if code:
            raise typer.Exit(code)
        return
    code = run_train(
        spec,
        backend,
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        limit=limit,
        seed=seed,
        output=output,
        device=device,
        load_backend=_load_backend,
        columns={"text_column": text_column, "label_column": label_column},
        overwrite=overwrite,
        resume=resume,
        checkpoint_every=checkpoint_every,
    )
    if code:
        raise typer.Exit(code)


RunArg = Annotated[
    Path,
    typer.Argument(
        help="A run folder written by rnnspec train (its weights carry the spec), or a spec file with --weights.",
        show_default=False,
    ),
]
WeightsOption = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--weights", help="Canonical weights (.weights.safetensors); not needed with a run folder."),
]


@app.command()
@user_errors
def evaluate(
    spec: RunArg,
    weights: WeightsOption = None,
    data: DataOption = None,
    backend: TrainBackendName = "torch",
    vocab: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--vocab", help="The run's vocab.json (default: beside the weights)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    nproc: Annotated[
        int,
        typer.Option("--nproc", min=1, max=1024, help="Evaluate in N data-parallel processes (torch; sums reduced)."),
    ] = 1,
) -> None:
    """Loss and the spec's metrics of trained weights on the test split of the data."""
    from rnnspec.train_cli import launch_processes, run_evaluate

    if nproc > 1:
        code = launch_processes(backend, nproc, _without_nproc(_ARGV), load_backend=_load_backend)
        if code:
            raise typer.Exit(code)
        return
    columns = {"text_column": text_column, "label_column": label_column}
    result, rank = run_evaluate(
        spec, weights, backend, data=data, vocab=vocab, load_backend=_load_backend, columns=columns
    )
    if rank == 0:  # in a process group (torchrun, --nproc) rank 0 alone prints
        typer.echo(json.dumps(result) if as_json else " - ".join(f"{k}: {v:.4f}" for k, v in result.items()))


def _output_file(value: Optional[Path]) -> Optional[Path]:  # noqa: UP045
    from rnnspec.predict_cli import OUTPUT_SUFFIXES

    if value is not None and value.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(
            f"{str(value)!r}: name the file with one of {', '.join(OUTPUT_SUFFIXES)} (the format follows the suffix)"
        )
    return value


@app.command()
@user_errors
def predict(
    spec: RunArg,
    text: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--text", help="One text to run the model on; its answer is printed."),
    ] = None,
    input_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--input",
            "-i",
            help="A file of inputs: texts (.csv/.tsv/.jsonl, a label column is ignored), ids or features "
            "(.npy, or an .npz array x), or JSONL feature sequences. One answer per row.",
        ),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--output",
            "-o",
            callback=_output_file,
            help="With --input: write the answers here (.csv, .tsv or .jsonl); default: CSV on stdout.",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1_000_000, help="With --input: samples per batch.")
    ] = 256,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the --output file if it exists.")] = False,
    weights: WeightsOption = None,
    backend: BackendName = "torch",
    vocab: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--vocab", help="The run's vocab.json (default: beside the weights)."),
    ] = None,
    text_column: TextColumn = "text",
) -> None:
    """Run trained weights on a text (--text) or on every row of a file (--input, in batches).

    Prints the predicted characters, or the class and its probability. A file gets one answer per row.
    """
    from rnnspec.predict_cli import run_predict, run_predict_file

    if (text is None) == (input_file is None):
        raise typer.BadParameter("give exactly one of --text TEXT and --input FILE", param_hint="--text / --input")
    if input_file is None and output is not None:
        raise typer.BadParameter("--output goes with --input FILE; --text prints its answer", param_hint="--output")
    if text is not None:
        typer.echo(run_predict(spec, weights, text, backend, vocab=vocab, load_backend=_load_backend))
        return
    assert input_file is not None
    count = run_predict_file(
        spec,
        weights,
        input_file,
        backend,
        output=output,
        batch_size=batch_size,
        vocab=vocab,
        text_column=text_column,
        overwrite=overwrite,
        load_backend=_load_backend,
    )
    if output is not None:
        typer.echo(f"wrote {count} predictions to {output}")


def _bench_backends(values: Optional[list[str]]) -> Optional[list[str]]:  # noqa: UP045
    for value in values or []:
        _backend_name(value)
    return values


@app.command()
@user_errors
def bench(
    spec: SpecArg,
    backends: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--backend", "-b", callback=_bench_backends, help="A backend to time (repeat it; default: torch and keras)."
        ),
    ] = None,
    batch_size: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--batch-size", min=1, max=65_536, help="Rows per batch (default: the spec's training batch size)."
        ),
    ] = None,
    seq_len: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--seq-len", min=1, max=100_000, help="Steps per row (default: the spec's seq_len, else 100)."),
    ] = None,
    batches: Annotated[int, typer.Option("--batches", min=1, max=10_000, help="Batches per timed epoch.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Time a spec's model on this machine: training and prediction per backend, and the GEMM floor.

    Generated data of the spec's shapes; the second epoch of a fresh model is timed. The floor is the
    time of the training step's matrix products alone, with the framework's own matmul.
    """
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.bench import bench as run_bench
    from rnnspec.util import quiet_stderr

    model_spec = load_spec(spec)
    names = backends or ["torch", "keras"]
    report = None
    with quiet_stderr():
        report = run_bench(
            model_spec,
            names,
            load_backend=_load_backend,
            batch_size=batch_size,
            steps=seq_len,
            batches=batches,
        )
    typer.echo(json.dumps(report.to_dict(), allow_nan=False) if as_json else report.render())


@app.command()
@user_errors
def check(
    spec: SpecArg,
    steps: Annotated[
        int,
        typer.Option("--steps", min=0, max=100_000, help="Optimizer steps of the training-parity run (<= 100,000)."),
    ] = 50,
    optimizer: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--optimizer", help="Train with this optimizer (sgd, adam, rmsprop) instead of the spec's."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of weights, inputs and targets.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    plot: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--plot", help="Write the keras and torch loss curves, overlaid, to this PNG."),
    ] = None,
    models: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--model",
            metavar="A",
            help="Compare two implementations instead (give it twice): a .keras/.h5 model, a PyTorch state dict "
            "(.pt/.pth/.safetensors), or a backend name (keras, torch, numpy). Outputs on the hard inputs, the "
            "gradient of every weight, and the porting mistake that explains a difference.",
        ),
    ] = None,
    html_out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--html", metavar="FILE", help="Also write the report as one self-contained HTML page."),
    ] = None,
    junit_out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--junit", metavar="FILE", help="Also write the report as JUnit XML (one test case per row)."),
    ] = None,
) -> None:
    """Conformance report: counts, forward differences and training parity across keras, torch and numpy.

    With --model A --model B: are A and B the same model (outputs, gradients; the porting mistake that
    explains a difference)? Exit 1 if any row fails its tolerance.
    """
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.check import plot_curves, run_check

    if optimizer is not None and optimizer not in ("sgd", "adam", "rmsprop"):
        raise _fail(f"error: --optimizer must be sgd, adam or rmsprop, not {optimizer!r}", 2)
    if models:
        if optimizer is not None or plot is not None:
            raise _fail("error: --optimizer and --plot belong to the training-parity check; not with --model", 2)
        _check_models(load_spec(spec), models, seed, steps, as_json, (html_out, junit_out))
        return
    model_spec = load_spec(spec)
    for name in ("torch", "keras"):
        _load_backend(name)
    from rnnspec.util import quiet_stderr

    with quiet_stderr():
        report = run_check(model_spec, steps=steps, seed=seed, optimizer=optimizer)
    if plot is not None and report.curves:
        plot_curves(report, str(plot))
    from rnnspec.testing.pages import from_check_report

    _write_pages(from_check_report(report), (html_out, junit_out))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        _print_report(report, plot)
    if not report.passed:
        raise typer.Exit(1)


def _write_pages(verdict: Any, targets: tuple[Path | None, Path | None]) -> None:
    """``--html`` and ``--junit``: the report written atomically (after it is computed: a failed check still
    writes them)."""
    from rnnspec.testing.pages import html_page, junit_xml
    from rnnspec.util import write_text_atomic

    for target, render in zip(targets, (html_page, junit_xml), strict=True):
        if target is None:
            continue
        if target.is_dir():
            raise _fail(f"error: {target} is a folder; give a file name for the report", 2)
        write_text_atomic(target, render(verdict))
        typer.echo(f"wrote {target}", err=True)


def _frameworks_of(models: list[str]) -> set[str]:
    """The backends two ``--model`` values need: a backend name itself, torch for a state dict, keras for a
    Keras file (read without Keras, but built by the keras backend)."""
    needed = set()
    for model in models:
        lower = model.lower()
        if model in ("keras", "torch", "numpy"):
            needed.add(model)
        elif lower.endswith((".keras", ".h5", ".hdf5")):
            needed.add("keras")
        else:
            needed.add("torch")
    return needed


def _check_models(
    model_spec: Any, models: list[str], seed: int, steps: int, as_json: bool, pages: tuple[Path | None, Path | None]
) -> None:
    """``check SPEC --model A --model B``: rnnspec.testing's comparison, printed; exit 1 unless equivalent."""
    if len(models) != 2:
        raise _fail(f"error: --model is given twice (the two models to compare), not {len(models)} time(s)", 2)
    from rnnspec.testing import compare
    from rnnspec.util import quiet_stderr

    for name in _frameworks_of(models):  # a missing framework is one clear line, before any work
        _load_backend(name)
    with quiet_stderr():
        report = compare(models[0], models[1], model_spec, seed=seed, steps=steps)
    from rnnspec.testing.pages import from_equivalence

    _write_pages(from_equivalence(report), pages)
    typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False) if as_json else report.text())
    if not report.passed:
        raise typer.Exit(1)


def _print_report(report: Any, plot: Path | None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rnnspec check: {report.spec}", box=box.SIMPLE_HEAVY)
    for column in ("check", "value", "tolerance", "result"):
        table.add_column(column)
    for row in report.rows:
        table.add_row(row.check, row.value, row.tolerance, "pass" if row.passed else "FAIL")
    console = Console(highlight=False)
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}")
    if plot is not None and report.curves:
        console.print(f"wrote {plot}")
    console.print("all checks passed" if report.passed else "some checks FAILED")


def _empty_output(argv: list[str]) -> bool:
    """Whether ``-o ""`` (or ``--output=``) was given: Path("") would silently mean the working folder."""
    for k, arg in enumerate(argv):
        if arg in ("-o", "--output") and k + 1 < len(argv) and argv[k + 1] == "":
            return True
        if arg in ("--output=", "-o="):
            return True
    return False


_ARGV: list[str] = []
"""The arguments of this invocation (``train --nproc`` runs them again in each process)."""


def _without_nproc(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m rnnspec``."""
    if _empty_output(sys.argv[1:] if argv is None else argv):
        message = 'error: -o/--output is empty (""); name a file or folder (use -o . for the working folder)'
        typer.echo(message, err=True)
        return 2
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, prog_name="rnnspec", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
