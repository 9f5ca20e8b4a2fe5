"""The options of the command line, each defined once: the global ones (``--version``, ``--threads``) and
those several commands share (the spec argument, ``--backend``, ``--convention``, the data and run options)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from rnnspec import __version__
from rnnspec.core.registry import BUILTIN_BACKENDS, ENTRY_POINT_GROUP, backends_with

__all__ = [
    "BACKENDS_HELP",
    "SEED_MAX",
    "AllowNonfinite",
    "BackendName",
    "Convention",
    "ConventionName",
    "DataOption",
    "Device",
    "LabelColumn",
    "RunArg",
    "SpecArg",
    "TextColumn",
    "TrainBackendName",
    "VocabOption",
    "WeightsOption",
    "backend_name",
    "data_base_dir",
    "root",
    "seed_option",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnspec {__version__}")
        raise typer.Exit()


def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
    threads: Annotated[
        Optional[str],
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
    from rnnspec.runtime.backends import request_threads
    from rnnspec.util import parse_threads

    try:
        request_threads(parse_threads(threads or "", "--threads"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc).replace("--threads must", "must"), param_hint="--threads") from None


AllowNonfinite = Annotated[
    bool, typer.Option("--allow-nonfinite", help="Accept weights holding NaN or inf (refused by default).")
]
SpecArg = Annotated[
    Path, typer.Argument(help="A spec file (.yaml, .yml or .json).", show_default=False, metavar="SPEC")
]

SEED_MAX = 2**32 - 1
"""The largest seed: NumPy's legacy generator and Keras take seeds 0..2**32-1 (torch's ``manual_seed`` fails
past 2**64); every ``--seed`` is bounded where it is parsed (a usage error, exit 2)."""


def seed_option(help: str, show_default: bool = True) -> typer.models.OptionInfo:
    """The ``--seed`` option of every command that takes one: an integer from 0 to :data:`SEED_MAX`."""
    return typer.Option("--seed", min=0, max=SEED_MAX, help=help, show_default=show_default)


class ConventionName(str, Enum):
    keras = "keras"
    torch = "torch"


Convention = Annotated[
    Optional[ConventionName],
    typer.Option(
        "--convention",
        "-c",
        help="Count parameters in this convention (default: the spec's own).",
        show_default=False,
    ),
]


def backend_name(value: str | None) -> str | None:
    """Any registered backend: built in (keras, torch, numpy) or from the `rnnspec.backends` entry points."""
    from rnnspec.core.registry import available_backends

    known = available_backends()
    if value is not None and value not in known:
        raise typer.BadParameter(f"unknown backend {value!r}; available: {', '.join(known)}")
    return value


BACKENDS_HELP = f"{', '.join(BUILTIN_BACKENDS)}, or a backend registered in the `{ENTRY_POINT_GROUP}` entry-point group"
BackendName = Annotated[
    str, typer.Option("--backend", "-b", callback=backend_name, help=f"Framework: {BACKENDS_HELP}.")
]


_TRAINERS = backends_with("trains", plugins=False)
"""The built-in backends that train (torch, keras); the others are forward-only (numpy)."""
_FORWARD_ONLY = [name for name in BUILTIN_BACKENDS if name not in _TRAINERS]


def _trainable_backend_name(value: str | None) -> str | None:
    """A backend that can train: a forward-only built-in (numpy) is refused here, so train and evaluate do not
    offer it; a plugin without a trainer is refused when it is loaded."""
    value = backend_name(value)
    if value in _FORWARD_ONLY:
        raise typer.BadParameter(
            f"the {value} backend is forward-only (it cannot train or evaluate); use {' or '.join(_TRAINERS)}"
        )
    return value


TrainBackendName = Annotated[
    str,
    typer.Option(
        "--backend",
        "-b",
        callback=_trainable_backend_name,
        help=f"Framework: {', '.join(_TRAINERS)}, or a registered backend with a trainer "
        f"({', '.join(_FORWARD_ONLY)} {'is' if len(_FORWARD_ONLY) == 1 else 'are'} forward-only).",
    ),
]

TextColumn = Annotated[
    Optional[str],
    typer.Option(
        "--text-column",
        help="Text files: the column (JSONL: key) of the texts; JSONL sequences: of x [default: text; evaluate "
        "and predict: the one the run recorded].",
        show_default=False,
    ),
]
LabelColumn = Annotated[
    Optional[str],
    typer.Option(
        "--label-column",
        help="Text files: the column (JSONL: key) of the labels; JSONL sequences: y [default: label; evaluate: "
        "the one the run recorded].",
        show_default=False,
    ),
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
    Optional[str],
    typer.Option(
        "--data",
        help="builtin:NAME, keras:imdb|reuters, a Keras .npz or an .npz with arrays x and y, a CSV/TSV/JSONL "
        'text file, or a JSONL of float sequences {"x": [[...]], "y": ...} (default: the spec\'s training.data).',
    ),
]


def data_base_dir(spec_path: Path, data: str | None) -> Path | None:
    """A path written in the spec is relative to the spec's folder; one given with --data, to the working folder."""
    return Path(spec_path).parent if data is None else None


RunArg = Annotated[
    Path,
    typer.Argument(
        help="A run folder written by rnnspec train (its weights carry the spec), or a spec file with --weights.",
        show_default=False,
        metavar="RUN_DIR|SPEC",
    ),
]
WeightsOption = Annotated[
    Optional[Path],
    typer.Option("--weights", help="Canonical weights (.weights.safetensors); not needed with a run folder."),
]
VocabOption = Annotated[
    Optional[Path],
    typer.Option("--vocab", help="The run's vocab.json (default: beside the weights)."),
]
