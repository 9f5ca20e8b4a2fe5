"""The work behind ``rnnspec train`` and ``evaluate`` (kept out of cli.py so it stays a thin layer)."""

from __future__ import annotations

import io
import math
import os
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.loader import load_spec
from rnnspec.runtime.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from rnnspec.runtime.models import build, predict
from rnnspec.runtime.runs import (
    CHECKPOINT_FILE,
    VOCAB_FILE,
    RunFolder,
    checkpoint_to_resume,
    plot_history,
    read_run_info,
    read_vocab,
    write_history,
    write_model_files,
    write_run_info,
    write_vocab,
)
from rnnspec.runtime.training import NonFiniteLossError, evaluate, fit, training_of
from rnnspec.util import quiet_stderr

__all__ = ["recorded_data", "resolve_run", "run_evaluate", "run_train", "vocab_for"]

LoadBackend = Callable[[str], Any]


def _base_dir(spec_path: Path, data: str | None) -> Path | None:
    """A path written in the spec is relative to the spec's folder; one given with --data, to the working folder."""
    return Path(spec_path).parent if data is None else None


def _trainable(impl: Any) -> None:
    """Refuse a backend without a trainer (the Backend protocol's optional ``trainer``), naming those that have one."""
    if not callable(getattr(impl, "trainer", None)):
        raise RnnspecError(
            f"the {impl.name} backend is forward-only (it has no trainer); "
            "train with --backend torch or --backend keras"
        )


def _epoch_line(epoch: int, epochs: int, batches: int, seconds: float, logs: dict[str, float]) -> str:
    metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
    return f"Epoch {epoch + 1}/{epochs}\n{batches}/{batches} - {seconds:.0f}s - {metrics}"


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
    load_backend: LoadBackend,
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
    columns = columns or {}
    from rnnspec.data import load_data

    impl = load_backend(backend)
    _trainable(impl)
    check_device = getattr(impl, "check_device", None)
    if callable(check_device):  # --device cuda without CUDA is refused before the data is read
        check_device(device)
    rank = _join_process_group(impl, device)
    spec = load_spec(spec_path)
    training = training_of(spec, epochs=epochs, batch_size=batch_size)
    target = output or Path("runs") / f"{spec.name}-{backend}"
    # the run folder first: a finished run there, or an unwritable place, is refused before any work;
    # in a process group rank 0 alone writes it (the others train the same steps and keep quiet)
    run = RunFolder(target, overwrite=overwrite, resume=resume) if rank == 0 else _Silent(target, resume)
    try:
        checkpoint = load_checkpoint(run.resume_from) if resume else None
        if seed is None:
            seed = int(checkpoint.fingerprint.get("seed", 0)) if checkpoint is not None else 0
        dataset = load_data(
            spec, data, split="train", seed=seed, limit=limit, base_dir=_base_dir(spec_path, data), **columns
        )
        console = Console(highlight=False) if rank == 0 else Console(file=io.StringIO())
        console.print(
            f"training {spec.name!r} on {backend} with {dataset.source}: {len(dataset)} samples, "
            f"{training.epochs} epochs, batch size {training.batch_size}"
            + (f"; resuming after {checkpoint.position}" if checkpoint is not None else "")
        )
        code = _train_into(
            run, spec, backend, impl, training, dataset, seed, device, console, checkpoint, checkpoint_every
        )
        _leave_process_group(impl)
        return code
    finally:
        run.abort()


def _checkpoint_writer(run: RunFolder | _Silent) -> Callable[[Checkpoint], None] | None:
    """Write each epoch's checkpoint beside the run folder (rank 0; the other ranks only gather their part)."""
    path = run.checkpoint
    if path is None:  # another rank: it takes part in gathering the state, rank 0 writes it
        return lambda _state: None
    return lambda state: save_checkpoint(state, path)


def _join_process_group(impl: Any, device: str) -> int:
    """This process's rank when torchrun started several (``WORLD_SIZE`` > 1), else 0."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return 0
    join = getattr(impl, "init_distributed", None)
    if not callable(join):
        raise RnnspecError(
            f"the {impl.name} backend trains in one process; data-parallel training (torchrun, --nproc) runs on "
            "the torch backend"
        )
    rank, _world = join(device)
    _stop_once_on_signals()
    return int(rank)


def _leave_process_group(impl: Any) -> None:
    """Every rank leaves the group together once its work is done (a no-op in one process)."""
    finish = getattr(impl, "finish_distributed", None)
    if callable(finish) and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        finish()


def _stop_once_on_signals() -> None:
    """Under torchrun a Ctrl-C reaches each process as SIGINT and then SIGTERM: the first becomes the
    KeyboardInterrupt that keeps the last completed epoch, the next ones are ignored so rank 0 can write."""

    def stop(_signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


class _Silent:
    """What a rank other than 0 has in place of the run folder: it reads the checkpoint to resume, writes
    nothing."""

    def __init__(self, target: Path, resume: bool):
        self.target = Path(target)
        self.resuming = resume
        self.checkpoint = None
        self.resume_from = checkpoint_to_resume(self.target) if resume else None

    def abort(self) -> None:
        pass


def launch_processes(backend: str, nproc: int, args: list[str], *, load_backend: LoadBackend) -> int:
    """``rnnspec train --nproc N``: the same command in N processes through the backend's launcher."""
    impl = load_backend(backend)
    launch = getattr(impl, "launch", None)
    if not callable(launch):
        raise RnnspecError(f"the {backend} backend trains in one process; --nproc runs on the torch backend (-b torch)")
    return int(launch(nproc, args))


def _train_into(run: RunFolder | _Silent, spec: Any, backend: str, impl: Any, training: Any, dataset: Any, seed: int,
                device: str, console: Console, checkpoint: Checkpoint | None,
                checkpoint_every: int | None = None) -> int:  # fmt: skip
    with quiet_stderr():
        model = build(spec, backend, seed=seed)
    started = [time.perf_counter()]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
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
        # a backend whose framework logs to fd 2 while it trains (TensorFlow) says so with `quiet_training`
        stopped: NonFiniteLossError | None = None
        with quiet_stderr() if getattr(impl, "quiet_training", False) else nullcontext():
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
                    on_checkpoint=_checkpoint_writer(run),
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
    if isinstance(run, _Silent):  # not rank 0: rank 0 writes the run
        return 0 if stopped is None and not interrupted else (130 if interrupted else 1)
    if not history["loss"]:
        kept = f"; the run already in {run.target} is untouched" if run.replaces else ""
        if run.checkpoint.is_file():  # a checkpoint within the first epoch
            kept += f"; its checkpoint stays beside it ({run.checkpoint.name}): the same command with --resume goes on"
        console.print(f"nothing written: no epoch finished{kept}", soft_wrap=True)
        return 130 if interrupted else 1
    for path in _write_run(run, impl, model, history, dataset, spec.name, backend, seed):
        console.print(f"wrote {run.final(path)}", soft_wrap=True)
    if stopped is not None:
        return 1
    return 130 if interrupted else 0


def _write_run(run: RunFolder, impl: Any, model: Any, history: dict[str, Any], dataset: Any, title: str,
               backend: str, seed: int) -> list[Path]:  # fmt: skip
    """Write the run into the staging folder and move it into place; the files written (staging paths).

    An error names the user's folder, never the staging one, and leaves a previous run there whole.
    """
    directory = run.staging
    try:
        written = write_model_files(impl, model, directory)
        written.append(write_history(directory, history))
        written += plot_history(directory, history, title)
        vocab = write_vocab(directory, dataset)
        if vocab is not None:
            written.append(vocab)
        written.append(write_run_info(directory, data=dataset.source, backend=backend, seed=seed))
        if run.checkpoint.is_file():  # commit moves it in: the state after the last epoch, for --resume
            written.append(directory / CHECKPOINT_FILE)
        run.commit()
    except OSError as exc:
        kept = "the run already there is untouched" if run.replaces else "nothing was created"
        if run.checkpoint.is_file():  # the trained epochs stay resumable
            kept += (
                f"; the checkpoint of its last completed epoch stays beside it ({run.checkpoint.name}): "
                "the same command with --resume writes the run once there is space"
            )
        raise RnnspecError(
            f"cannot write the run folder {run.target}: {exc.strerror or exc}; the run folder was not written and "
            f"{kept}. fix: free disk space or choose another folder with -o"
        ) from None
    return written


def resolve_run(spec_arg: Path, weights: Path | None) -> tuple[Any, Path]:
    """``(spec, weights)`` from a spec file and ``--weights``, or from a run folder alone (its
    ``NAME.weights.safetensors`` carries the spec)."""
    from rnnspec.runtime.models import spec_from_weights_file

    if Path(spec_arg).is_dir():
        folder = Path(spec_arg)
        if weights is None:
            found = sorted(folder.glob("*.weights.safetensors"))
            if len(found) != 1:
                what = "no" if not found else f"{len(found)}"
                raise RnnspecError(
                    f"{folder}: {what} weights files (*.weights.safetensors) in this folder; a run folder written by "
                    "rnnspec train has one. fix: pass the spec file and --weights FILE"
                )
            weights = found[0]
        return spec_from_weights_file(weights), weights
    if weights is None:
        raise RnnspecError(
            f"no weights given for {spec_arg}; pass --weights FILE, or give the run folder instead of the spec "
            "(rnnspec evaluate runs/NAME-BACKEND)"
        )
    return load_spec(spec_arg), weights


def recorded_data(spec: Any, weights: Path, data: str | None, saved: dict[str, Any]) -> str | None:
    """The data to evaluate on: ``--data``, else the spec's ``training.data``, else what the run recorded
    in ``run.json`` (or, for older runs, ``vocab.json``: ``saved``) — built-in and Keras sources, whose test
    split is known; a file it trained on is not test data."""
    if data is not None or (spec.training is not None and spec.training.data is not None):
        return data
    folder = Path(weights).parent
    recorded = read_run_info(folder).get("data") or saved.get("source")
    if not isinstance(recorded, str):
        return None
    if recorded.startswith(("builtin:", "keras:")):
        return recorded
    raise RnnspecError(
        f"the run in {folder} trained on {recorded}; rnnspec does not evaluate on the training file. "
        "fix: pass the test data with --data FILE"
    )


def vocab_for(weights: Path, vocab: Path | None) -> dict[str, Any]:
    path = vocab or Path(weights).parent / VOCAB_FILE
    if vocab is not None and not path.exists():
        raise RnnspecError(f"{path}: no such vocabulary file")
    return read_vocab(path) if path.exists() else {}


def run_evaluate(
    spec_path: Path,
    weights: Path | None,
    backend: str,
    *,
    data: str | None,
    vocab: Path | None,
    load_backend: LoadBackend,
    columns: dict[str, str] | None = None,
) -> tuple[dict[str, float], int]:
    """Loss and the spec's metrics of trained weights on the test split (``spec_path`` may be a run folder),
    and this process's rank (in a process group every rank evaluates its shard of each batch)."""
    from rnnspec.data import load_data

    impl = load_backend(backend)
    _trainable(impl)
    rank = _join_process_group(impl, "auto")
    spec, weights = resolve_run(spec_path, weights)
    saved = vocab_for(weights, vocab)
    base = None if Path(spec_path).is_dir() else _base_dir(spec_path, data)
    dataset = load_data(
        spec,
        recorded_data(spec, weights, data, saved),
        split="test",
        tokenizer=saved.get("tokenizer"),
        base_dir=base,
        **(columns or {}),
    )
    with quiet_stderr():
        model = build(spec, backend, weights=weights)
        result = evaluate(model, dataset.x, dataset.y)
    _leave_process_group(impl)
    bad = {k: v for k, v in result.items() if not math.isfinite(v)}
    if bad:
        raise RnnspecError(
            f"the evaluation is not finite ({', '.join(f'{k} = {v}' for k, v in bad.items())}); the weights in "
            f"{weights} overflow on this data. fix: use the weights of an earlier epoch, or retrain with a lower "
            "learning rate"
        )
    return result, rank
