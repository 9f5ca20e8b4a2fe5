"""``rnnspec evaluate``: the loss and the spec's metrics of trained weights on the test split of the data."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import (
    DataOption,
    LabelColumn,
    RunArg,
    TextColumn,
    TrainBackendName,
    VocabOption,
    WeightsOption,
)
from rnnspec.core.registry import DEFAULT_BACKEND

__all__ = ["evaluate", "run_evaluate"]


@user_errors
def evaluate(
    spec: RunArg,
    weights: WeightsOption = None,
    data: DataOption = None,
    backend: TrainBackendName = DEFAULT_BACKEND,
    vocab: VocabOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    text_column: TextColumn = None,
    label_column: LabelColumn = None,
    nproc: Annotated[
        int,
        typer.Option("--nproc", min=1, max=1024, help="Evaluate in N data-parallel processes (torch; sums reduced)."),
    ] = 1,
) -> None:
    """Loss and the spec's metrics of trained weights on held-out data: the test split of the run's data, or
    --data FILE (a run is not evaluated on the file it trained on)."""
    from rnnspec.cli.invocation import arguments, without_nproc
    from rnnspec.runtime.distributed import launch_processes

    if nproc > 1:
        from rnnspec.runtime.runs import resolve_run

        check = partial(resolve_run, spec, weights)  # the spec and weights read once, before any process starts
        code = launch_processes(backend, nproc, without_nproc(arguments()), check)
        if code:
            raise typer.Exit(code)
        return
    columns = {"text_column": text_column, "label_column": label_column}
    result, rank = run_evaluate(spec, weights, backend, data=data, vocab=vocab, columns=columns)
    if rank == 0:  # in a process group (torchrun, --nproc) rank 0 alone prints
        typer.echo(json.dumps(result) if as_json else " - ".join(f"{k}: {v:.4f}" for k, v in result.items()))


def run_evaluate(
    spec_path: Path,
    weights: Path | None,
    backend: str,
    *,
    data: str | None,
    vocab: Path | None,
    columns: dict[str, str | None] | None = None,
) -> tuple[dict[str, float], int]:
    """Loss and the spec's metrics of trained weights on the test split (``spec_path`` may be a run folder),
    and this process's rank (in a process group every rank evaluates its shard of each batch)."""
    import math

    from rnnspec.data import load_data
    from rnnspec.lang.errors import RnnspecError
    from rnnspec.runtime.backends import load_backend, require_trainer
    from rnnspec.runtime.distributed import join_process_group, leave_process_group
    from rnnspec.runtime.models import build
    from rnnspec.runtime.runs import evaluation_data, resolve_run, vocab_for
    from rnnspec.runtime.training import evaluate as evaluate_model
    from rnnspec.util import printable, quiet_stderr

    # what to evaluate and on what first: a wrong file is named before a framework is imported
    spec, weights = resolve_run(spec_path, weights)
    saved = vocab_for(weights, vocab)
    chosen = evaluation_data(spec, spec_path, weights, data, columns, saved)
    impl = load_backend(backend)
    require_trainer(impl)
    rank = join_process_group(impl, "auto")
    if chosen.note is not None and rank == 0:
        typer.echo(printable(chosen.note), err=True)
    dataset = load_data(
        spec,
        chosen.source,
        split="test",
        tokenizer=saved.get("tokenizer"),
        base_dir=chosen.base_dir,
        **chosen.columns,
    )
    with quiet_stderr():
        model = build(spec, backend, weights=weights)
        result = evaluate_model(model, dataset.x, dataset.y)
    leave_process_group(impl)
    bad = {k: v for k, v in result.items() if not math.isfinite(v)}
    if bad:
        raise RnnspecError(
            f"the evaluation is not finite ({', '.join(f'{k} = {v}' for k, v in bad.items())}); the weights in "
            f"{weights} overflow on this data. fix: use the weights of an earlier epoch, or retrain with a lower "
            "learning rate"
        )
    return result, rank
