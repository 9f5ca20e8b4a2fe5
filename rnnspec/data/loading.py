"""The entry point of the data layer, :func:`load_data`: a data source (built-in, Keras's cache, a file) read,
shaped for a spec and checked against it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rnnspec.data.arrays import is_xy_npz, reads_on_demand, wants_sequence_jsonl
from rnnspec.data.dataset import Dataset, Split, check_split
from rnnspec.data.generated import BUILTINS, builtin_dataset
from rnnspec.data.keras_datasets import check_keras_name, keras_dataset_path
from rnnspec.data.sources import keras_for_spec, sequences_for_spec, streams_text, text_for_spec, xy_for_spec
from rnnspec.data.textfiles import TEXT_SUFFIXES
from rnnspec.data.tokenizer import DataError, Tokenizer
from rnnspec.data.validation import check_dataset
from rnnspec.util import is_int_at_least

if TYPE_CHECKING:
    from rnnspec.lang.spec import ModelSpec

__all__ = ["data_file", "has_test_split", "load_data"]


def load_data(
    spec: ModelSpec,
    source: str | os.PathLike[str] | None = None,
    *,
    split: Split = "train",
    seed: int = 0,
    limit: int | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    tokenizer: Tokenizer | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> Dataset:
    """Load ``source`` (default: the spec's ``training.data``) shaped for ``spec`` and checked against it.

    * ``source``: ``builtin:NAME`` (see :data:`BUILTINS`), ``keras:imdb`` / ``keras:reuters`` (Keras's
      cache), a Keras ``.npz``, or a ``.csv``/``.tsv``/``.jsonl`` file. A relative path is resolved
      against ``base_dir`` (pass the spec file's folder) or the working directory.
    * ``split``: ``train`` or ``test``. Keras files have both; built-ins generate a different sample of
      the same task for each; a text file is one split, read whole for either (pass the test file).
    * ``seed``: generation seed of built-ins. Keras files always use Keras's shuffle seed 113, so the
      splits equal Keras's; text files keep the file order (the trainer shuffles).
    * ``limit``: keep the first ``limit`` samples.
    * ``tokenizer``: for text files, reuse a fitted tokenizer (evaluation, prediction); None fits a new
      one on these texts (word level for ``vocab_size`` specs, character level one-hot for
      ``features`` specs) and returns it in :attr:`Dataset.tokenizer`. Other sources ignore it.
    * ``text_column``, ``label_column``: columns (keys) of text files.

    Keras data is read with ``num_words`` = the spec's vocabulary and pre-padded/truncated to
    ``seq_len`` (the longest sequence when the spec has none).
    """
    if limit is not None and not is_int_at_least(limit, 1):
        raise DataError("limit must be a positive integer or None", received=repr(limit))
    check_split(split)
    text = _source_of(spec, source)
    if text.startswith("builtin:"):
        dataset = builtin_dataset(text[len("builtin:") :], spec, split, seed)
        if limit is not None:
            dataset = _head(dataset, limit)
    elif text.startswith("keras:"):
        name = text[len("keras:") :]
        check_keras_name(name)
        dataset = keras_for_spec(spec, text, name, keras_dataset_path(name), split, limit)
    else:
        path = _resolve_path(text, base_dir)
        sequences = (
            spec.input.features is not None
            and path.suffix.lower() in (".jsonl", ".ndjson")
            and wants_sequence_jsonl(path, text_column)
        )
        if not _reads_on_demand(path, spec, sequences):
            _check_fits(path, text)
        if path.suffix.lower() == ".npz" and is_xy_npz(path):
            dataset = xy_for_spec(spec, text, path, split, limit)
        elif path.suffix.lower() == ".npz":
            dataset = keras_for_spec(spec, text, None, path, split, limit)
        elif path.suffix.lower() == ".npy":
            raise DataError(
                "a .npy file holds one array, but training needs inputs and targets",
                where=text,
                expected="an .npz with arrays x and y",
                fix="save both: np.savez('data.npz', x=x, y=y)",
            )
        elif sequences:
            dataset = sequences_for_spec(spec, text, path, split, limit, text_column, label_column)
        elif path.suffix.lower() in TEXT_SUFFIXES:
            dataset = text_for_spec(spec, text, path, split, limit, tokenizer, text_column, label_column)
        else:
            raise DataError(
                "unknown kind of data file",
                where=text,
                received=f"suffix {path.suffix or '(none)'!r}",
                expected=f".npz (a Keras dataset, or arrays x and y) or {', '.join(TEXT_SUFFIXES)}",
                fix="rename the file, or use builtin:" + " / builtin:".join(BUILTINS),
            )
    check_dataset(spec, dataset)
    return dataset


def data_file(source: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The file a data source names, as an absolute path (resolved as :func:`load_data` resolves it: against
    ``base_dir``, else the working folder); None for ``builtin:`` and ``keras:`` sources, which name no file.

    ``rnnspec train`` records it in ``run.json``, so the run's data is found again from any working folder."""
    text = os.fspath(source)
    if text.startswith(("builtin:", "keras:")):
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return Path(os.path.abspath(path))


def has_test_split(source: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``load_data(..., split="test")`` reads data held out from training: built-ins (a different
    sample), Keras sources and Keras ``.npz`` files (their test arrays). A text file, a JSONL of sequences or an
    ``.npz`` of arrays ``x`` and ``y`` is one split, read whole for either: the file a model trained on."""
    path = data_file(source, base_dir)
    if path is None:
        return True
    return path.suffix.lower() == ".npz" and path.is_file() and not is_xy_npz(path)


def _source_of(spec: ModelSpec, source: str | os.PathLike[str] | None) -> str:
    if source is not None:
        return os.fspath(source)
    if spec.training is not None and spec.training.data is not None:
        return spec.training.data
    raise DataError(
        f"no data source for spec {spec.name!r}",
        received="no source given and no `training.data` in the spec",
        expected="builtin:NAME, keras:imdb, keras:reuters, or a path to .npz/.csv/.tsv/.jsonl data",
        fix="pass the data source, or set `training: {data: ...}` in the spec",
    )


def _resolve_path(text: str, base_dir: str | os.PathLike[str] | None) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a FIFO, device or socket)"
        raise DataError(
            f"the data path is {kind}",
            where=text,
            received=str(path),
            expected="a regular data file (.csv, .tsv, .jsonl, .npz)",
            fix="name a file; to stream data, save it to a file first",
        )
    if not path.is_file():
        raise DataError(
            "data file not found",
            where=text,
            received=f"no file at {path}",
            fix="check the path (a relative path in a spec is relative to the spec's folder), or use builtin:"
            + " / builtin:".join(BUILTINS),
        )
    return path


def _reads_on_demand(path: Path, spec: ModelSpec, sequences: bool) -> bool:
    """Whether the file's inputs are read a batch at a time (never loaded whole): an uncompressed ``.npz``
    over ``LAZY_BYTES``, or a text file over ``STREAM_BYTES`` with one label per sample."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return reads_on_demand(path)
    return streams_text(path, spec) and not sequences


def _check_fits(path: Path, text: str) -> None:
    """A data file larger than half the memory the machine has available is refused before it is read."""
    from rnnspec.util import available_memory, human_bytes

    size, free = path.stat().st_size, available_memory()
    if free is not None and 2 * size > free:
        raise DataError(
            "the data file is too large to load into memory",
            where=text,
            received=f"{human_bytes(size)} with {human_bytes(free)} of memory available",
            expected="a file under half the available memory",
            fix="use --limit on a smaller file, or split the data",
        )


def _head(dataset: Dataset, limit: int) -> Dataset:
    return Dataset(
        dataset.x[:limit],
        dataset.y[:limit],
        dataset.source,
        dataset.split,
        tokenizer=dataset.tokenizer,
        alphabet=dataset.alphabet,
        classes=dataset.classes,
    )
