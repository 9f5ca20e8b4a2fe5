"""The Keras 3 backend (TensorFlow only): a spec becomes a native ``keras.Sequential`` model.

Layers are Keras's own and carry rnnspec's layer names, so ``model.get_layer("recurrent_0")``
and ``model.summary()`` speak the spec's language. The stack is linear, so the model is a
``Sequential`` started by a ``keras.Input``: it is built at once (counts are available) and its
summary lists exactly the spec's layers, while a functional ``keras.Model`` would add the
``InputLayer`` and the ``NotEqual`` mask op under process-wide numbered names.

Every layer kind of :meth:`ModelSpec.stack() <rnnspec.lang.spec.ModelSpec.stack>` has one builder
in :data:`BUILDERS`: ``masking`` → ``Masking``, ``embedding`` → ``Embedding``, ``dropout`` →
``Dropout``, ``spatial_dropout`` → ``SpatialDropout1D``, ``dense`` → ``Dense``, ``layer_norm`` →
``LayerNormalization``, ``batch_norm`` → ``BatchNormalization``, ``activation`` → ``Activation``,
``repeat_vector`` → ``RepeatVector``, the
global poolings → ``GlobalMaxPooling1D`` / ``GlobalAveragePooling1D``, and each recurrent cell → its
Keras layer (in ``Bidirectional`` when asked). A recurrent cell is one :func:`register_cell` call: its
Keras layer and its torch-convention cell.

Conventions:

* ``keras``: native ``SimpleRNN`` / ``LSTM`` / ``GRU``.
* ``torch`` (two bias vectors, as ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``): the cells of
  :mod:`.cells`, which subclass Keras's cells and add PyTorch's ``bias_hh`` as the weight
  ``recurrent_bias``, run by ``keras.layers.RNN``. They inherit Keras's dropout masks, masking and
  serialization. A layer whose Keras cell already has the torch convention's biases (a GRU with
  ``reset_after: true``, any layer without biases) stays native.

Canonical weights map to Keras variables generically: a layer's weight leaves
(:meth:`LayerSpec.weight_shapes <rnnspec.lang.layers.LayerSpec.weight_shapes>`) are attributes of
the Keras layer, of its ``cell`` for a recurrent layer, and of its ``forward_layer`` /
``backward_layer`` for the ``forward/`` and ``backward/`` leaves of a bidirectional one.

Masking follows Keras exactly (the layers are Keras's). On a GPU, cuDNN would write zeros at
masked steps and refuse pre-padded masks, so the recurrent layers of a masked model
(``mask_zero`` or ``mask_value``) run with ``use_cudnn=False``.

TensorFlow is required; :mod:`.runtime` imports it (quietly) and refuses another Keras
backend with a fix.

In ``model.summary()`` a torch-convention layer shows as ``RNN`` (``keras.layers.RNN`` around
the cell) where rnnspec's own summary says ``SimpleRNN``/``LSTM``/``GRU``.

A ``.keras`` artifact written by :meth:`KerasBackend.save_artifact` holds the spec as JSON in the
archive member ``rnnspec-spec.json`` (Keras ignores members it does not know);
:func:`load_artifact` reads it back and loads the model with ``safe_mode=True``. Plain
``keras.saving.load_model`` works too once this module is imported (it registers the cells).
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnspec.core.backend import (
    MODEL_BACKEND_ATTR,
    MODEL_SPEC_ATTR,
    QuietTraining,
    Threads,
    TrainableBackend,
)
from rnnspec.core.builtins import TableLiveModels
from rnnspec.core.kinds import KindRegistry
from rnnspec.core.specs import spec_of
from rnnspec.core.weights import weight_shapes
from rnnspec.interop.formats import KERAS_SPEC_MEMBER
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.layers import RecurrentLayer
from rnnspec.lang.loader import spec_from_dict
from rnnspec.lang.spec import ModelSpec

from .cells import TorchGRUCell, TorchLSTMCell, TorchSimpleRNNCell
from .padding import mask_padding_id
from .runtime import keras, tf

if TYPE_CHECKING:
    from keras import Layer, Model

__all__ = [
    "BACKEND",
    "BUILDERS",
    "CELLS",
    "SPEC_MEMBER",
    "KerasBackend",
    "KerasCell",
    "TorchGRUCell",
    "TorchLSTMCell",
    "TorchSimpleRNNCell",
    "keras",
    "load_artifact",
    "register_cell",
    "tf",
]

SPEC_MEMBER = KERAS_SPEC_MEMBER
"""Archive member of a ``.keras`` file that holds the spec (``spec.to_dict()`` as JSON)."""

BUILDERS = KindRegistry("keras", "builder")
"""Layer kind → ``builder(layer_spec, name, inputs, convention) -> keras layer`` (``inputs``: features
per step entering the layer, the vocabulary size for the embedding)."""
CELLS = KindRegistry("keras", "cell")
"""Recurrent cell kind → its :class:`KerasCell` (filled by :func:`register_cell`)."""


# -- the layer kinds ---------------------------------------------------------------------------


@BUILDERS.register("masking")
def _masking(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.Masking(mask_value=layer.mask_value, name=name)


@BUILDERS.register("embedding")
def _embedding(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    embedding = keras.layers.Embedding(inputs, layer.output_dim, mask_zero=layer.mask_id == 0, name=name)
    if layer.mask_id:  # padding_idx other than 0: Keras's Embedding masks 0 only
        mask_padding_id(embedding, layer.mask_id)
    return embedding


@BUILDERS.register("dropout")
def _dropout(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.Dropout(layer.dropout, name=name)


@BUILDERS.register("spatial_dropout")
def _spatial_dropout(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.SpatialDropout1D(layer.spatial_dropout, name=name)


@BUILDERS.register("dense")
def _dense(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias, name=name)


@BUILDERS.register("layer_norm")
def _layer_norm(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.LayerNormalization(epsilon=layer.epsilon, center=layer.center, scale=layer.scale, name=name)


@BUILDERS.register("batch_norm")
def _batch_norm(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.BatchNormalization(
        momentum=layer.momentum, epsilon=layer.epsilon, center=layer.center, scale=layer.scale, name=name
    )


@BUILDERS.register("activation")
def _activation(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.Activation(layer.activation, name=name)


@BUILDERS.register("global_max_pool")
def _global_max_pool(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.GlobalMaxPooling1D(keepdims=layer.keepdims, name=name)


@BUILDERS.register("global_average_pool")
def _global_average_pool(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.GlobalAveragePooling1D(keepdims=layer.keepdims, name=name)


@BUILDERS.register("repeat_vector")
def _repeat_vector(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.RepeatVector(layer.repeat_vector, name=name)


@BUILDERS.register("flatten")
def _flatten(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.Flatten(name=name)


@BUILDERS.register("max_pool")
def _max_pool(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.MaxPooling1D(layer.pool_size, strides=layer.strides, padding=layer.padding, name=name)


@BUILDERS.register("average_pool")
def _average_pool(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.AveragePooling1D(layer.pool_size, strides=layer.strides, padding=layer.padding, name=name)


@BUILDERS.register("conv1d")
def _conv1d(layer: Any, name: str, inputs: int, convention: str) -> Layer:
    return keras.layers.Conv1D(
        layer.filters,
        layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
        activation=layer.activation,
        use_bias=layer.use_bias,
        name=name,
    )


# -- recurrent cells ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KerasCell:
    """How one recurrent cell kind compiles to Keras."""

    layer: type
    """Keras's layer (``keras.layers.LSTM``...): the keras convention, and the torch convention when its
    cell already has PyTorch's biases."""
    torch_cell: type | None = None
    """A cell with PyTorch's second bias ``recurrent_bias``, run by ``keras.layers.RNN`` (torch convention)."""


_SEQUENCE_OPTIONS = frozenset(
    {"cell", "name", "return_sequences", "go_backwards", "bidirectional", "merge_mode", "trainable", "stateful"}
)
"""Fields of a recurrent layer that are not options of its cell (the layer and Bidirectional take them)."""


def register_cell(kind: str, layer: type, torch_cell: type | None = None) -> None:
    """Register a recurrent cell kind: its Keras layer, its torch-convention cell, and the builder for it.

    The spec's other fields (``units``, ``activation``, ``recurrent_activation``...) are Keras's
    argument names, so they pass to the layer and the cell as they are. A new cell kind (say a
    hypothetical ``mgu``) is one call:

    >>> register_cell("mgu", MGU, TorchMGUCell)  # doctest: +SKIP
    """
    CELLS.add(kind, KerasCell(layer, torch_cell))
    BUILDERS.add(kind, _recurrent)


def _uses_torch_cell(layer: RecurrentLayer, convention: str) -> bool:
    """True when the torch convention gives ``layer`` a bias vector Keras's own layer lacks."""
    return convention == "torch" and layer.bias_vectors("torch") > layer.bias_vectors("keras")


def _cell_options(layer: RecurrentLayer) -> dict[str, Any]:
    """The spec's cell options under their Keras argument names (shared by Keras's layers and cells)."""
    return layer.model_dump(exclude=set(_SEQUENCE_OPTIONS))


def _one_direction(layer: RecurrentLayer, name: str, convention: str) -> Layer:
    """One Keras RNN layer for one direction of ``layer``."""
    cell = CELLS.get(layer.kind, name)
    sequence_options = {"return_sequences": layer.return_sequences, "go_backwards": layer.go_backwards, "name": name}
    if layer.stateful:
        sequence_options["stateful"] = True  # Keras keeps the final states in variables for the next batch
    if not _uses_torch_cell(layer, convention):
        return cell.layer(**_cell_options(layer), **sequence_options)
    if cell.torch_cell is None:
        raise RnnspecError(
            f"the keras backend has no torch-convention cell for {layer.kind!r} (layer {name!r}); "
            "fix: use `convention: keras`, or register a torch cell for it with register_cell"
        )
    return keras.layers.RNN(cell.torch_cell(**_cell_options(layer)), **sequence_options)


def _recurrent(layer: RecurrentLayer, name: str, inputs: int, convention: str) -> Layer:
    """The Keras layer for ``layer``: one direction, or ``Bidirectional`` (which clones it backwards) named ``name``."""
    rnn = _one_direction(layer, name, convention)
    if not layer.bidirectional:
        return rnn
    return keras.layers.Bidirectional(rnn, merge_mode=layer.merge_mode, name=name)


register_cell("simple_rnn", keras.layers.SimpleRNN, TorchSimpleRNNCell)
register_cell("lstm", keras.layers.LSTM, TorchLSTMCell)
register_cell("gru", keras.layers.GRU, TorchGRUCell)


# -- building ------------------------------------------------------------------------------------


def _input_layer(spec: ModelSpec) -> Any:
    taken = set(spec.layer_names())
    name, n = "input", 0
    while name in taken:
        n += 1
        name = f"input_{n}"
    batch = spec.input.batch_size  # Keras's batch_shape: a stateful layer's states have one row per sample
    if spec.input.vocab_size is not None:
        return keras.Input((spec.input.seq_len,), batch_size=batch, dtype="int32", name=name)
    return keras.Input((spec.input.seq_len, spec.input.features), batch_size=batch, name=name)


def _layers(spec: ModelSpec) -> list[Layer]:
    """One Keras layer per entry of ``spec.stack()``, from the builder of its kind, named as rnnspec names it."""
    stack = spec.stack()
    BUILDERS.check(stack)
    layers: list[Layer] = []
    for name, layer, inputs, *_ in spec.shapes():
        built = BUILDERS.get(layer.kind, name)(layer, name, inputs, spec.convention)
        if not layer.is_trainable():
            built.trainable = False  # Keras's frozen layer: its weights are non_trainable_weights
        layers.append(built)
    return layers


def _recurrent_layers(model: Model, spec: ModelSpec) -> list[tuple[str, RecurrentLayer, Layer]]:
    """``(name, layer spec, Keras layer)`` of every recurrent layer, bottom to top."""
    return [(name, layer, model.get_layer(name)) for name, layer in spec.stack() if isinstance(layer, RecurrentLayer)]


def _directions(layer: Any) -> list[Any]:
    """The Keras RNN layer of each direction of a recurrent layer."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    return [layer]


def _configure_runtime(model: Model, spec: ModelSpec) -> None:
    """Settings Keras does not serialize: no cuDNN behind a mask (it zeroes masked outputs, needs right padding), and
    a padding id other than 0 (``embedding.padding_idx``)."""
    if not spec.masked:
        return
    for name, layer in spec.stack():
        mask_id = getattr(layer, "mask_id", None)
        if mask_id and getattr(model.get_layer(name), "rnnspec_padding_id", None) != mask_id:
            mask_padding_id(model.get_layer(name), mask_id)
    for _, _, layer in _recurrent_layers(model, spec):
        for rnn in _directions(layer):
            if hasattr(rnn, "use_cudnn"):
                rnn.use_cudnn = False


def _cudnn_disabled(layer: Any) -> bool:
    return any(getattr(rnn, "use_cudnn", None) is False for rnn in _directions(layer))


def _attach(model: Model, spec: ModelSpec) -> None:
    setattr(model, MODEL_BACKEND_ATTR, "keras")
    setattr(model, MODEL_SPEC_ATTR, spec)


def _counts(model: Model, spec: ModelSpec) -> dict[str, int]:
    """Keras's ``count_params()`` of every layer of the stack, weightless ones (0) included."""
    return {name: int(model.get_layer(name).count_params()) for name in spec.layer_names()}


# -- weights -------------------------------------------------------------------------------------


def _variable(layer: Any, leaf: str) -> Any:
    """The Keras variable behind a canonical weight leaf of ``layer`` (``kernel``, ``forward/bias``...).

    A ``forward/`` or ``backward/`` step goes to that direction of a ``Bidirectional``; a recurrent
    layer keeps its weights in its ``cell``; the leaf is then the attribute of Keras's name.
    """
    *path, attr = leaf.split("/")
    holder = layer
    for step in path:
        holder = getattr(holder, f"{step}_layer")
    holder = getattr(holder, "cell", holder)
    variable = getattr(holder, attr, None)
    if variable is None:
        raise RnnspecError(
            f"layer {layer.name!r} ({type(layer).__name__}) has no weight {leaf!r}; the keras backend built it "
            "without the weight its spec declares (a bug in the builder of its kind)"
        )
    return variable


def _variables(model: Model, spec: ModelSpec) -> dict[str, Any]:
    """Canonical weight name → Keras variable, for every weight leaf the layer kinds declare."""
    out: dict[str, Any] = {}
    for full in weight_shapes(spec):
        name, leaf = full.split("/", 1)
        out[full] = _variable(model.get_layer(name), leaf)
    return out


def _check_names(expected: dict[str, Any], given: dict[str, np.ndarray], spec: ModelSpec) -> None:
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = [
        f"{n}: shape {tuple(np.shape(given[n]))}, expected {tuple(expected[n].shape)}"
        for n in expected
        if n in given and tuple(np.shape(given[n])) != tuple(expected[n].shape)
    ]
    problems = [f"missing {n}" for n in missing] + [f"unexpected {n}" for n in unexpected] + wrong
    if problems:
        raise RnnspecError(
            f"the weights do not fit the keras model of {spec.name!r}: " + "; ".join(problems) + "; "
            "fix: pass canonical weights of this spec (rnnspec.initial_weights / rnnspec.load_weights)"
        )


# -- artifacts -----------------------------------------------------------------------------------


def _write_model_atomic(model: Model, spec: ModelSpec, target: Path) -> None:
    """Save ``model`` with the spec inside to ``target``: a temp ``.keras`` file beside it, then a rename.

    Keras creates the temp file itself (a fresh random name), so it gets the user's usual
    permissions rather than ``mkstemp``'s 0600.
    """
    from rnnspec.util import check_output_path

    target = check_output_path(target)
    tmp = target.with_name(f".{target.stem}.{secrets.token_hex(8)}.tmp.keras")
    try:
        model.save(tmp, overwrite=True)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(SPEC_MEMBER, json.dumps(spec.to_dict(), indent=2, sort_keys=True))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_spec(path: Path) -> ModelSpec:
    try:
        with zipfile.ZipFile(path) as archive:
            if SPEC_MEMBER not in archive.namelist():
                raise RnnspecError(
                    f"{path}: this .keras file carries no rnnspec spec ({SPEC_MEMBER}); it was not written by "
                    "rnnspec. fix: load it with keras.saving.load_model, or save it again with rnnspec"
                )
            info = archive.getinfo(SPEC_MEMBER)
            if info.file_size > 1_000_000:
                raise RnnspecError(
                    f"{path}: the embedded spec ({SPEC_MEMBER}) declares {info.file_size:,} bytes; a spec is under "
                    "1 MB, so the file was altered"
                )
            raw = archive.read(SPEC_MEMBER)
    except zipfile.BadZipFile:
        raise RnnspecError(
            f"{path}: not a readable .keras archive; it may be truncated or corrupted. fix: save the model again"
        ) from None
    from rnnspec.lang.loader import loads_spec

    return loads_spec(raw.decode("utf-8", "replace"), file=f"{path} ({SPEC_MEMBER})", fmt="json")


def _check_config_matches(path: Path, spec: ModelSpec) -> None:
    """The Keras config inside must describe the embedded spec, field by field (not only in counts).

    Read without Keras by rnnspec's importer; torch-convention files hold rnnspec's own cells, which
    the importer does not read, so only their counts are compared (below).
    """
    from rnnspec.interop import rename_weights
    from rnnspec.interop.keras_files import read_keras_file
    from rnnspec.interop.keras_import import keras_to_spec

    kfile = read_keras_file(path)  # the reader's budget and size checks, before Keras sees any byte of it
    if spec.convention != "keras":
        foreign = [m for m in kfile.foreign_modules if m.split(".")[0] not in ("rnnspec", "rnnspec_backends")]
        if foreign:
            raise RnnspecError(
                f"{path}: its config names modules outside Keras and rnnspec ({', '.join(foreign[:5])}); "
                "the file was altered. fix: save the model again with rnnspec"
            )
        return
    try:
        data, weights = keras_to_spec(kfile)
        if spec.embedding is not None and spec.embedding.mask_id and "embedding" in data:
            data["embedding"]["padding_idx"] = spec.embedding.padding_idx  # Keras's config cannot say it (padding.py)
        rename_weights(spec_from_dict(data), weights, spec, str(path))
    except RnnspecError as exc:
        raise RnnspecError(
            f"{path}: the Keras model inside does not match its embedded rnnspec spec; the file was altered.\n{exc}"
        ) from None


def load_artifact(path: str | Path) -> Model:
    """Load a ``.keras`` file written by :meth:`KerasBackend.save_artifact`, spec and all.

    Loading uses ``safe_mode=True`` (no Python code is deserialized; the torch-convention cells
    are registered classes). The model's parameter counts are checked against its spec.

    >>> model = load_artifact("out/imdb-lstm.keras")  # doctest: +SKIP
    >>> rnnspec.predict(model, ids)  # doctest: +SKIP
    """
    p = Path(path)
    if not p.is_file():
        raise RnnspecError(f"{path}: no such file (expected a .keras file written by rnnspec)")
    spec = _read_spec(p)
    _check_config_matches(p, spec)
    try:
        model = keras.saving.load_model(p, safe_mode=True)
    except (ValueError, TypeError, OSError) as exc:
        raise RnnspecError(f"{path}: Keras could not load the model: {exc}") from None
    try:
        counts = _counts(model, spec)
    except ValueError:
        counts = {}
    expected = {row.name: row.params for row in analyze(spec).layers}
    if counts != expected:
        raise RnnspecError(
            f"{path}: the model inside does not match its embedded spec {spec.name!r} "
            f"(parameter counts {counts}, spec {expected}); the file was altered"
        )
    _configure_runtime(model, spec)
    _attach(model, spec)
    return model


# -- the backend ---------------------------------------------------------------------------------


class KerasBackend(TrainableBackend, Threads, QuietTraining, TableLiveModels):
    """rnnspec's Keras 3 (TensorFlow) backend: native layers, canonical weights in and out.

    >>> import rnnspec
    >>> model = rnnspec.build("specs/imdb_lstm.yaml", "keras", seed=0)  # doctest: +SKIP
    >>> model.get_layer("recurrent_0").__class__.__name__  # doctest: +SKIP
    'LSTM'
    """

    name = "keras"
    quiet_training = True
    """TensorFlow logs to file descriptor 2 while it trains; the CLI holds it back."""

    def set_threads(self, threads: int) -> None:
        """TensorFlow's intra-op threads (and inter-op: one); settable only before TensorFlow starts."""
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already running in this process: it keeps its threads
            pass

    def live(self, obj: Any) -> Any:
        """A driver of a user's own Keras model for :mod:`rnnspec.testing` (None for anything else)."""
        from .live import live

        return live(obj)

    def build(self, spec: ModelSpec) -> Model:
        """A built ``keras.Sequential`` named after the spec, layers named as rnnspec names them."""
        model = keras.Sequential([_input_layer(spec), *_layers(spec)], name=spec.name)
        _configure_runtime(model, spec)
        _attach(model, spec)
        return model

    def count_params(self, model: Model) -> dict[str, int]:
        """Keras's own ``count_params()`` of each of the spec's layers."""
        return _counts(model, spec_of(model))

    def set_weights(self, model: Model, weights: dict[str, np.ndarray]) -> None:
        """Assign canonical weights to the Keras variables (exact: float32 in, float32 stored)."""
        spec = spec_of(model)
        variables = _variables(model, spec)
        _check_names(variables, weights, spec)
        for name, variable in variables.items():
            variable.assign(np.asarray(weights[name], dtype=np.float32))

    def get_weights(self, model: Model) -> dict[str, np.ndarray]:
        """The Keras variables as canonical float32 arrays."""
        return {
            name: np.array(variable.numpy(), dtype=np.float32)
            for name, variable in _variables(model, spec_of(model)).items()
        }

    def predict(self, model: Model, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Inference outputs (dropout off): one batch through ``predict_on_batch``, several through Keras's own
        ``model.predict(x, batch_size)`` (its data pipeline runs ahead of the model)."""
        spec = spec_of(model)
        arr = np.asarray(x, dtype=np.int32 if spec.input.vocab_size is not None else np.float32)
        if arr.shape[0] == 0:
            tail = (
                (spec.output_steps(arr.shape[1]), spec.output_units) if spec.output_per_step else (spec.output_units,)
            )
            return np.zeros((0, *tail), dtype=np.float32)
        if batch_size is not None and batch_size < len(arr):
            return np.asarray(model.predict(arr, batch_size=batch_size, verbose=0), dtype=np.float32)
        return np.asarray(model.predict_on_batch(arr), dtype=np.float32)

    def reset_states(self, model: Model) -> None:
        """Stateful layers start the next batch from zero states: Keras's ``layer.reset_state()`` on each."""
        for _, layer, keras_layer in _recurrent_layers(model, spec_of(model)):
            if layer.stateful:
                keras_layer.reset_state()

    def summary(self, model: Model) -> str:
        """Keras's own ``model.summary()`` as plain text."""
        chunks: list[str] = []
        model.summary(print_fn=lambda text, **_: chunks.append(text))
        return "".join(chunk if chunk.endswith("\n") else chunk + "\n" for chunk in chunks)

    def save_artifact(self, model: Model, directory: Path) -> list[Path]:
        """Write ``DIRECTORY/<spec name>.keras`` atomically, with the spec inside (see :func:`load_artifact`)."""
        spec = spec_of(model)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{spec.name}.keras"
        _write_model_atomic(model, spec, target)
        return [target]

    def load_artifact(self, path: str | Path) -> Model:
        """See :func:`load_artifact`."""
        return load_artifact(path)

    def trainer(self, model: Model, training: Any, device: str | None = None) -> Any:
        from .train import KerasTrainer

        return KerasTrainer(model, training, device)

    def notes(self, model: Model) -> list[str]:
        """How the layers run: custom torch-convention cells, cuDNN switched off behind masks, TF32 on GPUs."""
        spec = spec_of(model)
        recurrent = _recurrent_layers(model, spec)
        notes = []
        for name, layer, _ in recurrent:
            if _uses_torch_cell(layer, spec.convention):
                cell = CELLS.get(layer.kind, name).torch_cell
                notes.append(
                    f"{name}: torch convention, two bias vectors; runs as a custom Keras cell "
                    f"({cell.__name__}) in Keras's generic step loop, never cuDNN"
                )
        uncudnn = [name for name, _, keras_layer in recurrent if _cudnn_disabled(keras_layer)]
        if uncudnn:
            source = (
                "mask_value (Masking)"
                if spec.input.mask_value is not None
                else "a Masking entry"
                if any(layer.kind == "masking" for _, layer in spec.stack())
                else "mask_zero"
            )
            notes.append(
                f"{', '.join(uncudnn)}: use_cudnn=False behind {source}, so on a GPU they keep Keras's masking "
                "(cuDNN would write zeros at masked steps and needs right-padded masks)"
            )
        if tf.config.list_physical_devices("GPU") and tf.config.experimental.tensor_float_32_execution_enabled():
            notes.append(
                "GPU: TensorFlow runs float32 matmuls in TF32; for parity to 1e-5 call "
                "tf.config.experimental.enable_tensor_float_32_execution(False)"
            )
        return notes


BACKEND = KerasBackend()
