"""What ``rnnspec predict`` runs: one text (``--text``) or a whole file (``--input``), in batches.

A file's rows are answered as ``--text`` would answer each of them alone: a model with a fixed
``seq_len`` gets every row padded to it; a masked model gets rows sorted by length and each batch
padded only to its longest row (the mask makes the padding invisible, so this only saves work); an
unmasked model without ``seq_len`` gets batches of rows of one length (padding would change its
answer). The answers come back in the file's order.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.lang.errors import RnnspecError
from rnnspec.runtime.backends import load_backend
from rnnspec.runtime.models import build, predict
from rnnspec.runtime.runs import read_run_info, resolve_run, vocab_for
from rnnspec.util import OutputPathError, StagedOutputs, printable, quiet_stderr, staged_outputs, write_text_atomic

__all__ = [
    "OUTPUT_SUFFIXES",
    "Encoder",
    "Rows",
    "answer",
    "format_answer",
    "plan_batches",
    "read_rows",
    "run_predict",
    "run_predict_file",
    "text_encoder",
]

CHUNK_BATCHES = 64
"""An array input is read and handed to the backend this many batches at a time."""

OUTPUT_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
"""Suffixes of the files ``predict --output`` writes, and their format."""


# ---------------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------------


def _f32(value: float) -> float:
    """A float32 value as the shortest decimal that reads back as it (0.4215, not 0.42149999737739563)."""
    return float(str(np.float32(value)))


def _is_regression(spec: Any) -> bool:
    from rnnspec.lang.spec import REGRESSION_LOSSES

    if spec.training is not None:
        return spec.training.loss.name in REGRESSION_LOSSES
    return spec.output_activation not in ("sigmoid", "softmax")


def _probabilities(spec: Any, out: np.ndarray) -> np.ndarray:
    """Class probabilities of one output vector (float64): a logits head (``from_logits``) goes through
    the sigmoid or softmax that its loss applies."""
    values = np.asarray(out, dtype=np.float64)
    if spec.output_activation in ("sigmoid", "softmax"):
        return values
    if values.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-values))
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def answer(spec: Any, out: np.ndarray, saved: dict[str, Any], real: np.ndarray | None = None) -> dict[str, Any]:
    """The model's answer for one sample as a record.

    Classification: ``label`` (the class name), ``p`` (its probability) and ``probabilities`` (class
    name -> p); a sigmoid unit's p is P(class 1), so the two classes get 1 - p and p. Regression:
    ``output``, the numbers. One output per step: ``output``, a list with one entry per step (the text
    itself for a character model); ``real`` selects the steps that are not padding.
    """
    classes = saved.get("classes") or ()

    def name(k: int) -> str:
        return str(classes[k]) if k < len(classes) else str(k)

    if spec.output_per_step:
        steps = out if real is None else out[real]
        if _is_regression(spec):
            return {"output": [[_f32(v) for v in np.atleast_1d(step)] for step in steps]}
        ids = np.asarray(steps).argmax(-1) if len(steps) else np.zeros(0, dtype=np.int64)
        alphabet = saved.get("alphabet")
        if alphabet:
            return {"output": "".join(alphabet[i] for i in ids)}
        return {"output": [name(int(i)) for i in ids]}
    if _is_regression(spec):
        return {"output": [_f32(v) for v in np.atleast_1d(out)]}
    probs = _probabilities(spec, out)
    if probs.shape[-1] == 1:
        probs = np.array([1.0 - probs[0], probs[0]])
    label = int(probs[1] > 0.5) if len(probs) == 2 and out.shape[-1] == 1 else int(probs.argmax())
    return {
        "label": name(label),
        "p": _f32(probs[label]),
        "probabilities": {name(k): _f32(p) for k, p in enumerate(probs)},
    }


def format_answer(record: dict[str, Any]) -> str:
    """A record of :func:`answer` as one line of text: ``positive (p = 0.8123)``, ``hello``, numbers."""
    if "label" in record:
        return f"{record['label']} (p = {record['p']:.4f})"
    output = record["output"]
    if isinstance(output, str):
        return output
    return " ".join(_cell(v) for v in output)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_cell(v) for v in value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------------
# Encoding texts for a model
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoder:
    """How a run's model reads text: ``ids`` turns a text into a 1-D id array (or raises an
    RnnspecError naming ``where``); ``inputs`` turns padded ids ``(n, steps)`` into model inputs;
    ``pads`` says whether id 0 is padding (False for a bare alphabet, where 0 is a character)."""

    ids: Callable[[str, str], np.ndarray]
    inputs: Callable[[np.ndarray], np.ndarray]
    pads: bool


def text_encoder(spec: Any, saved: dict[str, Any], weights: Path) -> Encoder:
    """The encoder of the run's ``vocab.json`` (its alphabet or tokenizer), or why there is none."""
    from rnnspec.data import inputs_for_spec, one_hot

    if spec.input.features is not None and "alphabet" in saved:
        alphabet = saved["alphabet"]
        index = {c: k for k, c in enumerate(alphabet)}

        def alphabet_ids(text: str, where: str) -> np.ndarray:
            unknown = sorted({c for c in text if c not in index})
            if unknown:
                raise RnnspecError(
                    f"{where}characters {''.join(unknown)!r} are not in the model's alphabet {''.join(alphabet)!r}"
                )
            return np.array([index[c] for c in text], dtype=np.int64)

        features = spec.input.features
        return Encoder(alphabet_ids, lambda ids: one_hot(ids, features), pads=False)
    if "tokenizer" in saved:
        tokenizer = saved["tokenizer"]
        return Encoder(
            lambda text, _where: np.asarray(tokenizer.encode([text])[0], dtype=np.int64),
            lambda ids: inputs_for_spec(ids, spec),
            pads=True,
        )
    if spec.input.features is not None:
        raise RnnspecError(
            f"spec {spec.name!r} takes float feature sequences, not text, so there is no text to encode; "
            "give the inputs as numbers: --input FILE.npy / .npz (an array x of shape "
            f"(n, steps, {spec.input.features})) or a JSONL file of sequences, or from Python: "
            "rnnspec.predict(rnnspec.build(spec, weights=...), x)"
        )
    source = read_run_info(Path(weights).parent).get("data") or saved.get("source")
    if isinstance(source, str) and source.startswith(("builtin:", "keras:")):
        raise RnnspecError(
            f"this model trained on {source}, which is token ids without words (no tokenizer), so text has "
            "nothing to encode it with; give it ids: --input FILE.npy / .npz (an array x of shape (n, steps)), "
            "or from Python: rnnspec.predict(rnnspec.build(spec, weights=...), x)"
        )
    raise RnnspecError(
        "predicting on text needs the run's vocab.json (a tokenizer for token ids, or the alphabet of a "
        "character model) beside the weights or given with --vocab; models trained on Keras .npz data take "
        "ids, not text: give them --input FILE.npy / .npz"
    )


def _check_finite(out: np.ndarray, weights: Path, where: Callable[[int], str]) -> None:
    bad = np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))
    if len(bad):
        rows = ", ".join(where(int(i)) for i in bad[:3]) + (" ..." if len(bad) > 3 else "")
        raise RnnspecError(
            f"the model's output is not finite for {len(bad)} input(s) ({rows}); the weights in {weights} "
            "overflow. fix: use the weights of an earlier epoch, or retrain with a lower learning rate"
        )


# ---------------------------------------------------------------------------------------------------
# One text
# ---------------------------------------------------------------------------------------------------


def run_predict(spec_path: Path, weights: Path | None, text: str, backend: str, *, vocab: Path | None) -> str:
    """The model's answer for one text, as text (``spec_path`` may be a run folder)."""
    from rnnspec.data import pad_for_spec

    spec, weights = resolve_run(spec_path, weights, "predict")
    saved = vocab_for(weights, vocab)
    if not text:
        raise RnnspecError("--text is empty; give the model at least one character")
    encoder = text_encoder(spec, saved, weights)
    ids = encoder.ids(text, "")
    x = encoder.inputs(pad_for_spec([ids], spec) if encoder.pads else ids[None, :])
    load_backend(backend)
    with quiet_stderr():
        out = np.asarray(predict(build(spec, backend, weights=weights), x))[0]
    _check_finite(out[None], weights, lambda _i: "this text")
    real = x[0] != 0 if x.ndim == 2 and spec.embedding is not None and spec.embedding.mask_zero else None
    return format_answer(answer(spec, out, saved, real))


# ---------------------------------------------------------------------------------------------------
# A file of inputs
# ---------------------------------------------------------------------------------------------------


@dataclass
class Rows:
    """The samples of an input file, in file order: ``where[i]`` names row i (``line`` or ``index``),
    and either ``sequences`` (unpadded: 1-D ids or ``(steps, features)`` floats) or ``array`` (padded)."""

    key: str
    where: list[int]
    sequences: list[np.ndarray] | None = None
    array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.where)


def read_rows(
    spec: Any, path: Path, saved: dict[str, Any], weights: Path, text_column: str
) -> tuple[Rows, Encoder | None]:
    """The inputs of ``path`` for ``spec``: an .npy/.npz array, JSONL feature sequences, or texts of a
    CSV/TSV/JSONL file (encoded with the run's tokenizer or alphabet; a label column may be there)."""
    from rnnspec.data import TEXT_SUFFIXES
    from rnnspec.data.arrays import read_input_array, read_sequence_jsonl, wants_sequence_jsonl
    from rnnspec.data.textfiles import read_text_file
    from rnnspec.data.tokenizer import DataError

    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        array = read_input_array(path)
        if array.ndim == 0 or len(array) == 0:
            raise DataError("the file has no samples", where=str(path), received=f"an array of shape {array.shape}")
        return Rows("index", list(range(len(array))), array=array), None
    if suffix in (".jsonl", ".ndjson") and spec.input.features is not None and wants_sequence_jsonl(path, text_column):
        x_key = text_column if text_column != "text" else "x"
        xs, _, lines = read_sequence_jsonl(
            path, features=spec.input.features, per_step=spec.output_per_step, x_key=x_key, y_key=None
        )
        return Rows("line", lines, sequences=xs), None
    if suffix in TEXT_SUFFIXES:
        encoder = text_encoder(spec, saved, weights)
        rows = read_text_file(path, text_column=text_column, label_column=None)
        sequences = []
        for text, line in zip(rows.texts, rows.lines, strict=True):
            ids = encoder.ids(text, f"{path}:{line}: ")
            if len(ids) == 0:
                raise DataError(
                    "no tokens to predict on",
                    where=f"{path}:{line}",
                    received=repr(text[:40]),
                    expected="a text with at least one word or character",
                )
            sequences.append(ids)
        return Rows("line", rows.lines, sequences=sequences), encoder
    raise DataError(
        "unknown kind of input file",
        where=str(path),
        received=f"suffix {path.suffix or '(none)'!r}",
        expected=f".npy, .npz (an array x) or {', '.join(TEXT_SUFFIXES)}",
        fix="rename the file with one of these suffixes",
    )


def plan_batches(lengths: np.ndarray, batch_size: int, *, fixed: bool, masked: bool) -> list[np.ndarray]:
    """Row indices of each batch. ``fixed`` (every row padded to one length): the file's order.
    ``masked``: rows sorted by length, so each batch pads little. Otherwise: batches of rows of one length."""
    n = len(lengths)
    if fixed:
        return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    order = np.argsort(lengths, kind="stable")
    if masked:
        return [order[start : start + batch_size] for start in range(0, n, batch_size)]
    batches = []
    for group in np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1):
        batches += [group[start : start + batch_size] for start in range(0, len(group), batch_size)]
    return batches


def _masked(spec: Any) -> bool:
    return bool(spec.embedding is not None and spec.embedding.makes_mask()) or spec.input.mask_value is not None


def _batches(
    spec: Any, rows: Rows, encoder: Encoder | None, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """``(row indices, model inputs, real-step mask or None)`` per batch (per chunk of batches for an array)."""
    from rnnspec.data import pad_sequences

    if rows.array is not None:
        array = rows.array  # in chunks of many batches: the backend batches them (Keras: model.predict)
        for index in plan_batches(np.zeros(len(rows)), batch_size * CHUNK_BATCHES, fixed=True, masked=False):
            x = _array_inputs(spec, np.asarray(array[index[0] : index[-1] + 1]))
            real = None
            if spec.embedding is not None and spec.embedding.makes_mask() and x.ndim == 2:
                real = x != spec.embedding.mask_id  # mask_zero: 0; padding_idx
            elif spec.input.mask_value is not None and x.ndim == 3:
                real = ~(x == spec.input.mask_value).all(axis=-1)
            yield index, x, real
        return
    assert rows.sequences is not None
    sequences = rows.sequences
    lengths = np.array([len(s) for s in sequences])
    seq_len = spec.input.seq_len
    pads = encoder is None or encoder.pads
    masked = _masked(spec)
    fixed = seq_len is not None and pads
    pad_value = spec.input.mask_value if spec.input.mask_value is not None else 0.0
    for index in plan_batches(lengths, batch_size, fixed=fixed, masked=masked and pads):
        group = [sequences[i] for i in index]
        if encoder is None:
            x = pad_sequences(group, seq_len, dtype="float32", value=pad_value)
        else:
            ids = pad_sequences(group, seq_len) if pads else np.stack(group)
            x = encoder.inputs(ids)
        real = None
        if masked:
            width = x.shape[1]
            kept = np.minimum(lengths[index], width)
            real = np.arange(width)[None, :] >= (width - kept)[:, None]
        yield index, x, real


def _array_inputs(spec: Any, x: np.ndarray) -> np.ndarray:
    from rnnspec.data.tokenizer import DataError

    if spec.input.vocab_size is not None:
        if not np.issubdtype(x.dtype, np.integer):
            raise DataError(
                "the spec's input is token ids, but the array holds non-integer values",
                received=f"dtype {x.dtype}",
                expected="integer ids of shape (n, steps)",
                fix="save the ids as integers: np.save(path, x.astype('int32'))",
            )
        vocab = spec.input.vocab_size
        if x.size and (x.min() < 0 or x.max() >= vocab):  # before the cast, which would wrap large ids
            raise DataError(
                "token ids out of the spec's range",
                received=f"ids from {x.min()} to {x.max()}",
                expected=f"ids in [0, {vocab})",
                fix="encode the inputs with the run's vocabulary",
            )
        return x.astype(np.int32)
    if x.ndim == 2 and spec.input.features == 1:
        x = x[..., None]
    return x.astype(np.float32)


def run_predict_file(
    spec_path: Path,
    weights: Path | None,
    input_path: Path,
    backend: str,
    *,
    output: Path | None,
    batch_size: int = 256,
    vocab: Path | None = None,
    text_column: str | None = None,
    overwrite: bool = False,
    stdout: Any = None,
) -> int:
    """Answer every sample of ``input_path``; write them to ``output`` (CSV, TSV or JSONL by suffix, atomically,
    never over an existing file unless ``overwrite``) or as CSV to ``stdout``. Returns the number of answers."""
    spec, weights = resolve_run(spec_path, weights, "predict")
    saved = vocab_for(weights, vocab)
    fmt = _output_format(output, input_path, overwrite)
    text_column = text_column or read_run_info(Path(weights).parent).get("text_column") or "text"
    rows, encoder = read_rows(spec, Path(input_path), saved, weights, text_column)
    load_backend(backend)
    with quiet_stderr():
        model = build(spec, backend, weights=weights)
    records: list[dict[str, Any] | None] = [None] * len(rows)
    for index, x, real in _batches(spec, rows, encoder, batch_size):
        from rnnspec.data.tokenizer import DataError

        try:
            with quiet_stderr():
                out = np.asarray(predict(model, x, batch_size))
        except RnnspecError as exc:
            if isinstance(exc, DataError):
                raise
            first = f"{rows.key} {rows.where[index[0]]}"
            raise RnnspecError(f"{input_path} ({first} onwards): {exc}") from None
        _check_finite(out, weights, lambda i, index=index: f"{rows.key} {rows.where[index[i]]}")
        for k, i in enumerate(index):
            records[i] = answer(spec, out[k], saved, None if real is None else real[k])
    done = [r for r in records if r is not None]
    assert len(done) == len(rows)
    _write(spec, output, fmt, rows, done, stdout or sys.stdout, inputs=(input_path, spec_path, weights))
    return len(done)


def _output_format(output: Path | None, input_path: Path, overwrite: bool) -> str:
    """The output's format, after refusing what would lose a user's file: the input itself, an existing
    file without ``overwrite``, a folder, a folder that does not exist."""
    if output is None:
        return "csv"
    fmt = OUTPUT_SUFFIXES.get(output.suffix.lower())
    if fmt is None:
        raise RnnspecError(
            f"{output}: cannot tell the output format from the suffix {output.suffix or '(none)'!r}; "
            f"name the file with one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    if output.is_dir():
        raise RnnspecError(f"{output} is a folder; give a file name for the predictions, e.g. {output / 'out.csv'}")
    try:  # the input itself (any name of it: a link, a hard link), a FIFO or a device
        StagedOutputs([input_path]).check_target(output)
    except OutputPathError as exc:
        if exc.errno == errno.EEXIST:
            shown = printable(output)
            raise RnnspecError(f"{shown} is the input file; write the predictions to another file") from None
        raise
    if output.exists() and not overwrite:
        raise RnnspecError(f"{output} exists; pass --overwrite to replace it, or write to another file")
    if not output.parent.is_dir():
        raise RnnspecError(f"{output.parent}: no such folder; create it first, or write elsewhere")
    return fmt


def _columns(spec: Any, records: list[dict[str, Any]]) -> list[str]:
    first = records[0]
    if "label" in first:
        return ["label", "p", *(f"p_{name}" for name in first["probabilities"])]
    if not spec.output_per_step and len(first["output"]) > 1:  # regression with several units
        return [f"output_{k}" for k in range(len(first["output"]))]
    return ["output"]


def _cells(spec: Any, record: dict[str, Any]) -> list[Any]:
    if "label" in record:
        return [record["label"], record["p"], *record["probabilities"].values()]
    output = record["output"]
    if not spec.output_per_step:
        return list(output)
    # one cell: the steps separated by spaces, a step's several numbers by commas
    return [output if isinstance(output, str) else " ".join(_step(v) for v in output)]


def _step(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _write(spec: Any, output: Path | None, fmt: str, rows: Rows, records: list[dict[str, Any]], stdout: Any,
           inputs: tuple[Path | None, ...] = ()) -> None:  # fmt: skip
    buffer = io.StringIO(newline="")
    if fmt == "jsonl":
        for where, record in zip(rows.where, records, strict=True):
            buffer.write(json.dumps({rows.key: where, **record}, ensure_ascii=False, allow_nan=False) + "\n")
    else:
        writer = csv.writer(buffer, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
        writer.writerow([rows.key, *_columns(spec, records)])
        for where, record in zip(rows.where, records, strict=True):
            writer.writerow([where, *_cells(spec, record)])
    if output is None:
        stdout.write(buffer.getvalue())
        return
    with staged_outputs(inputs) as out:
        write_text_atomic(out.stage(output), buffer.getvalue())
