"""The data layer: turn a data source into arrays shaped for a spec, without any framework.

One entry point, :func:`load_data`, reads what ``rnnspec train`` (and evaluation, prediction) needs:

* ``builtin:NAME`` -- generated data, no file: ``hello`` (seed 004's "hello! world" character task),
  ``sentiment`` (an IMDB-shaped binary task that a model can learn), ``topics`` (a Reuters-shaped
  multi-class task);
* ``keras:imdb`` / ``keras:reuters`` -- Keras's cached dataset files, found like Keras finds them;
* a ``.npz`` path -- a Keras ``imdb.npz`` or ``reuters.npz`` file (recognised by its keys), or any
  ``.npz`` with arrays ``x`` and ``y`` (:mod:`rnnspec.data.arrays`);
* a ``.csv`` / ``.tsv`` / ``.jsonl`` path -- a text column and a label column, tokenized with a
  :class:`~rnnspec.data.tokenizer.Tokenizer` that is returned for reuse at evaluation and prediction;
  or, for ``features`` specs, a ``.jsonl`` of float sequences ``{"x": [[...], ...], "y": ...}``.

Labels follow the spec's loss: numbers for ``mse``/``mae``/``huber`` (never class names), class ids
for the cross-entropies, one per step (a JSONL list, or space-separated in a CSV cell) when the model
returns sequences, padded and truncated like the inputs.

The result, a :class:`Dataset`, is checked against the spec (token ids ``< vocab_size``, feature size,
sequence length, per-step or per-sample labels, label range against the head) and every mismatch is a
:class:`DataError` that says what was received, what was expected and how to fix it.

Keras's ``.npz`` files store ragged sequences as pickled object arrays. Loading them never calls
``np.load(allow_pickle=True)``: the pickle stream is read by an unpickler that can build nothing but
NumPy arrays (the same guard Keras 3.15 itself uses), after checking that the file is a zip archive with
exactly the expected members and a bounded size, and every array is then checked for the expected
structure (lists of non-negative Python ints, integer labels). A hostile file can still cost memory and
time up to its size limit; it cannot run code. Files are never downloaded.

Only NumPy and the standard library are imported here (rnnspec's core is framework-free).

The modules: :mod:`~rnnspec.data.loading` (:func:`load_data`, the entry point),
:mod:`~rnnspec.data.dataset` (:class:`Dataset`), :mod:`~rnnspec.data.generated` (the built-ins),
:mod:`~rnnspec.data.sources` (each kind of file shaped for a spec), :mod:`~rnnspec.data.validation`
(:func:`check_dataset`), and the readers below them: :mod:`~rnnspec.data.keras_datasets`,
:mod:`~rnnspec.data.arrays`, :mod:`~rnnspec.data.npy`, :mod:`~rnnspec.data.lazy`,
:mod:`~rnnspec.data.textfiles`, :mod:`~rnnspec.data.textstream`, :mod:`~rnnspec.data.labels`,
:mod:`~rnnspec.data.sequences`, :mod:`~rnnspec.data.tokenizer`.
"""

from rnnspec.data.dataset import Dataset
from rnnspec.data.dataset import Split as Split  # importable here, not in __all__
from rnnspec.data.generated import (
    BUILTINS,
    HELLO_TEXT,
    hello_data,
    sentiment_data,
    topics_data,
)
from rnnspec.data.generated import generated_bytes as generated_bytes  # importable here, not in __all__
from rnnspec.data.keras_datasets import (
    IMDB_CLASSES,
    KERAS_DATASETS,
    MAX_NPZ_BYTES,
    REUTERS_CLASSES,
    keras_dataset_path,
    load_keras_dataset,
    read_keras_npz,
)
from rnnspec.data.loading import data_file, has_test_split, load_data
from rnnspec.data.sequences import MAX_ONE_HOT_BYTES, inputs_for_spec, one_hot, pad_for_spec, pad_sequences
from rnnspec.data.textfiles import TEXT_SUFFIXES, TextRows, read_text_file
from rnnspec.data.tokenizer import OOV_ID, PAD_ID, DataError, Tokenizer
from rnnspec.data.validation import check_dataset

__all__ = [
    "BUILTINS",
    "HELLO_TEXT",
    "IMDB_CLASSES",
    "KERAS_DATASETS",
    "MAX_NPZ_BYTES",
    "MAX_ONE_HOT_BYTES",
    "OOV_ID",
    "PAD_ID",
    "REUTERS_CLASSES",
    "TEXT_SUFFIXES",
    "DataError",
    "Dataset",
    "TextRows",
    "Tokenizer",
    "check_dataset",
    "data_file",
    "has_test_split",
    "hello_data",
    "inputs_for_spec",
    "keras_dataset_path",
    "load_data",
    "load_keras_dataset",
    "one_hot",
    "pad_for_spec",
    "pad_sequences",
    "read_keras_npz",
    "read_text_file",
    "sentiment_data",
    "topics_data",
]
