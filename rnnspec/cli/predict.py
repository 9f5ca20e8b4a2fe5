"""``rnnspec predict``: trained weights run on one text (``--text``) or on every row of a file (``--input``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rnnspec.cli.errors import user_errors
from rnnspec.cli.options import BackendName, RunArg, TextColumn, VocabOption, WeightsOption
from rnnspec.core.registry import DEFAULT_BACKEND

__all__ = ["predict"]


def _output_file(value: Optional[Path]) -> Optional[Path]:
    from rnnspec.cli.prediction import OUTPUT_SUFFIXES

    if value is not None and value.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(
            f"{str(value)!r}: name the file with one of {', '.join(OUTPUT_SUFFIXES)} (the format follows the suffix)"
        )
    return value


@user_errors
def predict(
    spec: RunArg,
    text: Annotated[
        Optional[str],
        typer.Option("--text", help="One text to run the model on; its answer is printed."),
    ] = None,
    input_file: Annotated[
        Optional[Path],
        typer.Option(
            "--input",
            "-i",
            help="A file of inputs: texts (.csv/.tsv/.jsonl, a label column is ignored), ids or features "
            "(.npy, or an .npz array x), or JSONL feature sequences. One answer per row.",
        ),
    ] = None,
    output: Annotated[
        Optional[Path],
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
    backend: BackendName = DEFAULT_BACKEND,
    vocab: VocabOption = None,
    text_column: TextColumn = None,
) -> None:
    """Run trained weights on a text (--text) or on every row of a file (--input, in batches).

    Prints the predicted characters, or the class and its probability. A file gets one answer per row.
    """
    from rnnspec.cli.prediction import run_predict, run_predict_file
    from rnnspec.util import printable

    if (text is None) == (input_file is None):
        raise typer.BadParameter("give exactly one of --text TEXT and --input FILE", param_hint="--text / --input")
    if input_file is None and output is not None:
        raise typer.BadParameter("--output goes with --input FILE; --text prints its answer", param_hint="--output")
    if text is not None:
        typer.echo(run_predict(spec, weights, text, backend, vocab=vocab))
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
    )
    if output is not None:
        typer.echo(f"wrote {count} predictions to {printable(output)}")
