"""``rnnspec train``: Keras-style epoch lines under a progress bar, and the run folder written as a unit."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import (
    DataOption,
    Device,
    LabelColumn,
    SpecArg,
    TextColumn,
    TrainBackendName,
    data_base_dir,
    seed_option,
)
from rnnspec.core.registry import DEFAULT_BACKEND

if TYPE_CHECKING:
    from rich.console import Console

    from rnnspec.runtime.checkpoint import Checkpoint
    from rnnspec.runtime.runs import RunFolder, SilentRunFolder

__all__ = ["run_train", "train"]


@user_errors
def train(
    spec: SpecArg,
    backend: TrainBackendName = DEFAULT_BACKEND,
    data: DataOption = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Override training.epochs.")] = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option("--batch-size", min=1, help="Override training.batch_size."),
    ] = None,
    limit: Annotated[
        Optional[int],
        typer.Option("--limit", min=1, help="Train on the first N samples only."),
    ] = None,
    seed: Annotated[
        Optional[int],
        seed_option(
            "Seed of the initial weights, the shuffles, dropout and built-in data [default: 0; with --resume, "
            "the run's].",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Optional[Path],
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
        Optional[int],
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
    from rnnspec.cli.invocation import arguments, without_nproc
    from rnnspec.runtime.distributed import launch_processes

    if nproc > 1:
        columns = {"text_column": text_column, "label_column": label_column}
        check = partial(
            check_before_launch, spec, data, epochs=epochs, batch_size=batch_size, limit=limit, columns=columns,
            resume_in=(output, backend) if resume else None,
        )  # fmt: skip
        code = launch_processes(backend, nproc, without_nproc(arguments()), check)
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
        columns={"text_column": text_column, "label_column": label_column},
        overwrite=overwrite,
        resume=resume,
        checkpoint_every=checkpoint_every,
    )
    if code:
        raise typer.Exit(code)


def _epoch_line(epoch: int, epochs: int, batches: int, seconds: float, logs: dict[str, float]) -> str:
    metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
    return f"Epoch {epoch + 1}/{epochs}\n{batches}/{batches} - {seconds:.0f}s - {metrics}"


def check_before_launch(
    spec_path: Path,
    data: str | None,
    *,
    epochs: int | None,
    batch_size: int | None,
    limit: int | None,
    columns: dict[str, str],
    resume_in: tuple[Path | None, str] | None = None,
) -> None:
    """``--nproc N``: the spec, its training settings, the checkpoint to resume (``resume_in``: ``-o`` and the
    backend) and the data are read once, here, before any process starts (a bad input is then refused once,
    without the launcher's noise, not once per process)."""
    from rnnspec.data import load_data
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.checkpoint import load_checkpoint
    from rnnspec.runtime.runs import checkpoint_to_resume
    from rnnspec.runtime.training import check_resumable, training_of

    spec = load_spec(spec_path)
    training = training_of(spec, epochs=epochs, batch_size=batch_size)
    if resume_in is not None:
        output, backend = resume_in
        target = output or Path("runs") / f"{spec.name}-{backend}"
        check_resumable(load_checkpoint(checkpoint_to_resume(target)), training.epochs, f"the run in {target}")
    load_data(spec, data, split="train", seed=0, limit=limit, base_dir=data_base_dir(spec_path, data), **columns)


def run_train(
    spec_path: Path,
    backend: str,
    *,
    data: str | None,
    epochs: int | None,
    batch_size: int | None,
    limit: int | None,
    seed: int | None,
    output: Path | None,
    device: str,
    columns: dict[str, str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_every: int | None = None,
) -> int:
    """Train, print Keras-style epoch lines under a progress bar, write the run folder; the exit code.

    ``columns``: ``text_column`` / ``label_column`` of text and JSONL files. ``seed`` None: 0, or the
    resumed run's. ``resume``: continue the run in the output folder from its checkpoint.
    ``checkpoint_every``: also checkpoint after every that many batches of an epoch.
    """
    import io

    from rich.console import Console

    from rnnspec.data import data_file, load_data
    from rnnspec.lang.loader import load_spec
    from rnnspec.runtime.backends import check_device, load_backend, require_trainer
    from rnnspec.runtime.checkpoint import load_checkpoint
    from rnnspec.runtime.distributed import join_process_group, leave_process_group
    from rnnspec.runtime.runs import RunFolder, SilentRunFolder
    from rnnspec.runtime.training import check_resumable, training_of
    from rnnspec.util import launched_world_size

    columns = columns or {}
    # the spec and its training settings first: a typo is reported before a framework is imported (seconds)
    spec = load_spec(spec_path)
    training = training_of(spec, epochs=epochs, batch_size=batch_size)
    impl = load_backend(backend)
    require_trainer(impl)
    check_device(impl, device)  # --device cuda without CUDA is refused before the data is read
    rank = join_process_group(impl, device)
    world = launched_world_size()
    target = output or Path("runs") / f"{spec.name}-{backend}"
    # the run folder first: a finished run there, or an unwritable place, is refused before any work;
    # in a process group rank 0 alone writes it (the others train the same steps and keep quiet)
    run = RunFolder(target, overwrite=overwrite, resume=resume) if rank == 0 else SilentRunFolder(target, resume)
    try:
        checkpoint = load_checkpoint(run.resume_from) if resume else None
        if checkpoint is not None:  # a finished run is said once, before any work
            check_resumable(checkpoint, training.epochs, f"the run in {target}")
        if seed is None:
            seed = int(checkpoint.fingerprint.get("seed", 0)) if checkpoint is not None else 0
        base = data_base_dir(spec_path, data)
        dataset = load_data(spec, data, split="train", seed=seed, limit=limit, base_dir=base, **columns)
        console = Console(highlight=False) if rank == 0 else Console(file=io.StringIO())
        console.print(
            f"training {spec.name!r} on {backend} with {dataset.source}: {len(dataset)} samples, "
            f"{training.epochs} epochs, batch size {training.batch_size}"
            + (f", in {world} data-parallel processes" if world > 1 else "")
            + (f"; resuming after {checkpoint.position}" if checkpoint is not None else ""),
            soft_wrap=True,
        )
        file = data_file(dataset.source, base)  # run.json: the file (absolute) and its columns, read again later
        recorded = {"data_file": file, "columns": columns if file is not None else None}
        code = _train_into(
            run, spec, backend, impl, training, dataset, seed, device, console, checkpoint, checkpoint_every, recorded
        )
        leave_process_group(impl)
        return code
    finally:
        run.abort()


def _train_into(run: RunFolder | SilentRunFolder, spec: Any, backend: str, impl: Any, training: Any, dataset: Any,
                seed: int, device: str, console: Console, checkpoint: Checkpoint | None,
                checkpoint_every: int | None = None, recorded: dict[str, Any] | None = None) -> int:  # fmt: skip
    import time
    from contextlib import nullcontext

    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.progress import TextColumn as Description

    from rnnspec.runtime.backends import trains_quietly
    from rnnspec.runtime.models import build, predict
    from rnnspec.runtime.runs import SilentRunFolder, checkpoint_writer, write_run
    from rnnspec.runtime.training import NonFiniteLossError, fit
    from rnnspec.util import printable, quiet_stderr

    with quiet_stderr():
        model = build(spec, backend, seed=seed)
    started = [time.perf_counter()]
    columns = (Description("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("epoch 1", total=None)

        def on_batch(epoch: int, done: int, total: int) -> None:
            progress.update(task, description=f"epoch {epoch + 1}/{training.epochs}", completed=done, total=total)

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            batches = -(-int(len(dataset) * (1 - training.validation_split)) // training.batch_size)
            line = _epoch_line(epoch, training.epochs, batches, time.perf_counter() - started[0], logs)
            progress.console.print(line, soft_wrap=True)
            started[0] = time.perf_counter()

        options = {"device": device}
        stopped: NonFiniteLossError | None = None
        with quiet_stderr() if trains_quietly(impl) else nullcontext():
            try:
                history = fit(
                    model,
                    dataset.x,
                    dataset.y,
                    epochs=training.epochs,
                    batch_size=training.batch_size,
                    seed=seed,
                    on_epoch_end=on_epoch,
                    on_batch_end=on_batch,
                    resume=checkpoint,
                    on_checkpoint=checkpoint_writer(run),
                    checkpoint_every=checkpoint_every,
                    **options,
                )
            except NonFiniteLossError as exc:
                stopped, history = exc, exc.history
    if stopped is not None:
        console.print(f"error: {stopped}", soft_wrap=True)
        if not history["loss"]:
            console.print("nothing written: no epoch finished with a finite loss")
            return 1
    interrupted = bool(history.get("interrupted"))
    if interrupted:
        console.print(f"interrupted: keeping the weights of the last completed epoch ({len(history['loss'])})")
    if dataset.alphabet is not None and spec.output_per_step:
        ids = np.asarray(predict(model, dataset.x[:1])).argmax(-1)[0]
        console.print(
            f"prediction: {dataset.text_of(ids)!r} (target {dataset.text_of(dataset.y[0])!r})", soft_wrap=True
        )
    if isinstance(run, SilentRunFolder):  # not rank 0: rank 0 writes the run
        return 0 if stopped is None and not interrupted else (130 if interrupted else 1)
    if not history["loss"]:
        kept = f"; the run already in {run.target} is untouched" if run.replaces else ""
        if run.checkpoint.is_file():  # a checkpoint within the first epoch
            kept += f"; its checkpoint stays beside it ({run.checkpoint.name}): the same command with --resume goes on"
        console.print(f"nothing written: no epoch finished{kept}", soft_wrap=True)
        return 130 if interrupted else 1
    for path in write_run(run, impl, model, history, dataset, spec.name, backend, seed, **(recorded or {})):
        console.print(f"wrote {printable(run.final(path))}", soft_wrap=True, markup=False)
    if stopped is not None:
        return 1
    return 130 if interrupted else 0
