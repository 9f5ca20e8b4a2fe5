"""The Keras 3 backend (TensorFlow only): a spec becomes a native ``keras.Sequential`` model.

Layers are Keras's own and carry rnnspec's layer names, so ``model.get_layer("recurrent_0")``
and ``model.summary()`` speak the spec's language. The stack is linear, so the model is a
``Sequential`` started by a ``keras.Input``: it is built at once (counts are available) and its
summary lists exactly the spec's layers, while a functional ``keras.Model`` would add the
``InputLayer`` and the ``NotEqual`` mask op under process-wide numbered names.

Conventions:

* ``keras``: native ``SimpleRNN`` / ``LSTM`` / ``GRU``.
* ``torch`` (two bias vectors, as ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``): the cells below, which
  subclass Keras's cells and add PyTorch's ``bias_hh`` as the weight ``recurrent_bias``, run by
  ``keras.layers.RNN``. They inherit Keras's dropout masks, masking and serialization. A GRU with
  ``reset_after: true`` already has both biases in Keras (its ``(2, 3·units)`` bias) and stays
  native, as does any layer without biases.

Masking follows Keras exactly (the layers are Keras's). On a GPU, cuDNN would write zeros at
masked steps and refuse pre-padded masks, so layers behind ``mask_zero`` run with
``use_cudnn=False``.

TensorFlow is required: Keras fixes its backend when first imported, so this module checks
``KERAS_BACKEND`` (and an already imported Keras) before importing it, and fails with a
:class:`~rnnspec.lang.errors.RnnspecError` naming the fix; an unset or empty ``KERAS_BACKEND`` is set
to ``tensorflow`` (over ``~/.keras/keras.json``). It also silences TensorFlow's start-up log
lines unless ``TF_CPP_MIN_LOG_LEVEL`` is set to ``0``.

In ``model.summary()`` a torch-convention layer shows as ``RNN`` (``keras.layers.RNN`` around
the cell) where rnnspec's own summary says ``SimpleRNN``/``LSTM``/``GRU``.

A ``.keras`` artifact written by :meth:`KerasBackend.save_artifact` holds the spec as JSON in the
archive member ``rnnspec-spec.json`` (Keras ignores members it does not know);
:func:`load_artifact` reads it back and loads the model with ``safe_mode=True``. Plain
``keras.saving.load_model`` works too once this module is imported (it registers the cells).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import secrets
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.loader import spec_from_dict
from rnnspec.lang.spec import GRUSpec, LSTMSpec, ModelSpec, SimpleRNNSpec
from rnnspec.runtime.backend import MODEL_BACKEND_ATTR, MODEL_SPEC_ATTR
from rnnspec.util import quiet_stderr

if TYPE_CHECKING:
    from keras import Layer, Model

__all__ = [
    "BACKEND",
    "SPEC_MEMBER",
    "KerasBackend",
    "TorchGRUCell",
    "TorchLSTMCell",
    "TorchSimpleRNNCell",
    "load_artifact",
]

SPEC_MEMBER = "rnnspec-spec.json"
"""Archive member of a ``.keras`` file that holds the spec (``spec.to_dict()`` as JSON)."""

# -- TensorFlow, quietly --------------------------------------------------------------------------


def _require_tensorflow_backend() -> None:
    """Make Keras pick TensorFlow, or raise if another backend is already chosen."""
    loaded = sys.modules.get("keras")
    if loaded is not None:
        found = _loaded_keras_backend(loaded)
        if found != "tensorflow":
            raise RnnspecError(
                f"keras is already imported with the {found!r} backend, but rnnspec's keras backend needs "
                "TensorFlow; fix: unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow before Python starts "
                "(or use the torch or numpy backend)"
            )
        return
    requested = os.environ.get("KERAS_BACKEND", "")
    if requested and requested != "tensorflow":
        raise RnnspecError(
            f"KERAS_BACKEND is {requested!r}, but rnnspec's keras backend needs TensorFlow; "
            "fix: unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow (or use the torch or numpy backend)"
        )
    # An empty or absent KERAS_BACKEND lets keras.json choose; rnnspec's choice wins over that file.
    os.environ["KERAS_BACKEND"] = "tensorflow"


def _loaded_keras_backend(module: ModuleType) -> str:
    try:
        return str(module.backend.backend())
    except AttributeError:
        return os.environ.get("KERAS_BACKEND") or "unknown"


def _log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def _import_tensorflow_keras() -> tuple[ModuleType, ModuleType]:
    """Import TensorFlow then Keras, quietly unless the user asked for TensorFlow's logs.

    TensorFlow logs its oneDNN notice through absl before ``TF_CPP_MIN_LOG_LEVEL`` applies, so
    the import also runs with file descriptor 2 held back (replayed if the import fails).
    """
    _require_tensorflow_backend()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet = _log_level() >= 1
    with quiet_stderr() if quiet else contextlib.nullcontext():
        tf_module = importlib.import_module("tensorflow")
        keras_module = importlib.import_module("keras")
    if quiet:
        importlib.import_module("absl.logging").set_verbosity("error")
        tf_module.get_logger().setLevel("ERROR")
    found = _loaded_keras_backend(keras_module)
    if found != "tensorflow":
        raise RnnspecError(
            f"keras runs on the {found!r} backend, but rnnspec's keras backend needs TensorFlow; "
            "fix: unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow"
        )
    return tf_module, keras_module


tf, keras = _import_tensorflow_keras()
ops = keras.ops


# -- torch-convention cells ---------------------------------------------------------------------


def _add_recurrent_bias(cell: Any, size: int) -> None:
    """Give ``cell`` PyTorch's ``bias_hh`` as ``recurrent_bias`` (None without biases), built like ``bias``."""
    cell.recurrent_bias = None
    if cell.use_bias:
        cell.recurrent_bias = cell.add_weight(
            shape=(size,),
            name="recurrent_bias",
            initializer=cell.bias_initializer,
            regularizer=cell.bias_regularizer,
            constraint=cell.bias_constraint,
        )


def _dropped(x: Any, mask: Any, gates: int, training: bool) -> list[Any] | None:
    """One copy of ``x`` per gate under Keras's cached dropout mask(s); None when nothing is dropped.

    Keras caches one mask per sequence, or one per gate (a list) when ``implementation == 1``.
    """
    if not training or mask is None:
        return None
    masks = mask if isinstance(mask, (list, tuple)) else [mask] * gates
    return [x * m for m in masks]


def _gate_terms(x: Any, kernel: Any, bias: Any, copies: list[Any] | None, gates: int) -> list[Any]:
    """Each gate's share ``x·K_g + b_g`` (one fused matmul unless dropout gives the gates different inputs)."""
    if copies is None:
        z = ops.matmul(x, kernel)
        if bias is not None:
            z = z + bias
        return ops.split(z, gates, axis=-1)
    kernels = ops.split(kernel, gates, axis=-1)
    biases = ops.split(bias, gates, axis=-1) if bias is not None else [None] * gates
    terms = []
    for x_g, k_g, b_g in zip(copies, kernels, biases, strict=True):
        term = ops.matmul(x_g, k_g)
        terms.append(term if b_g is None else term + b_g)
    return terms


@keras.saving.register_keras_serializable(package="rnnspec")
class TorchSimpleRNNCell(keras.layers.SimpleRNNCell):
    """``nn.RNN``'s cell in Keras layout: ``h = activation(x·K + b + h·R + rb)``.

    Keras's ``SimpleRNNCell`` plus the second bias ``recurrent_bias`` (PyTorch's ``bias_hh``);
    dropout masks are Keras's (one for the inputs, one for the state, per sequence).
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        _add_recurrent_bias(self, self.units)

    def call(self, sequence: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        prev = states[0] if isinstance(states, (list, tuple)) else states
        inputs = _dropped(sequence, self.get_dropout_mask(sequence), 1, training)
        recurrent = _dropped(prev, self.get_recurrent_dropout_mask(prev), 1, training)
        (x_term,) = _gate_terms(sequence, self.kernel, self.bias, inputs, 1)
        (h_term,) = _gate_terms(prev, self.recurrent_kernel, self.recurrent_bias, recurrent, 1)
        output = x_term + h_term
        if self.activation is not None:
            output = self.activation(output)
        return output, [output] if isinstance(states, (list, tuple)) else output


@keras.saving.register_keras_serializable(package="rnnspec")
class TorchLSTMCell(keras.layers.LSTMCell):
    """``nn.LSTM``'s cell in Keras layout: gates (i, f, c, o) from ``x·K + b + h·R + rb``.

    Keras's ``LSTMCell`` plus ``recurrent_bias`` (PyTorch's ``bias_hh``), with Keras's dropout
    masks (one per gate when ``recurrent_dropout`` forces ``implementation=1``).
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        _add_recurrent_bias(self, 4 * self.units)

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        h_prev, c_prev = states[0], states[1]
        x_copies = _dropped(inputs, self.get_dropout_mask(inputs), 4, training)
        h_copies = _dropped(h_prev, self.get_recurrent_dropout_mask(h_prev), 4, training)
        x_terms = _gate_terms(inputs, self.kernel, self.bias, x_copies, 4)
        h_terms = _gate_terms(h_prev, self.recurrent_kernel, self.recurrent_bias, h_copies, 4)
        z_i, z_f, z_c, z_o = (x + h for x, h in zip(x_terms, h_terms, strict=True))
        c = self.recurrent_activation(z_f) * c_prev + self.recurrent_activation(z_i) * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="rnnspec")
class TorchGRUCell(keras.layers.GRUCell):
    """A GRU with the reset gate applied before the recurrent matmul and two bias vectors.

    ``z, r = σ(x·K_zr + b_zr + h·R_zr + rb_zr)``, ``hh = act(x·K_h + b_h + (r⊙h)·R_h + rb_h)``,
    ``h = z⊙h_prev + (1−z)⊙hh``: Keras's ``reset_after=False`` GRU plus ``recurrent_bias``.
    (With ``reset_after=True`` Keras's own GRU already carries both biases.)
    """

    def __init__(self, units: int, *, reset_after: bool = False, **kwargs: Any):
        if reset_after:
            raise ValueError("TorchGRUCell is the reset_after=False GRU; use keras.layers.GRUCell(reset_after=True)")
        super().__init__(units, reset_after=False, **kwargs)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        _add_recurrent_bias(self, 3 * self.units)

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, Any]:
        nested = isinstance(states, (list, tuple))
        h_prev = states[0] if nested else states
        u = self.units
        x_copies = _dropped(inputs, self.get_dropout_mask(inputs), 3, training)
        h_copies = _dropped(h_prev, self.get_recurrent_dropout_mask(h_prev), 3, training)
        x_z, x_r, x_h = _gate_terms(inputs, self.kernel, self.bias, x_copies, 3)
        rb_zr, rb_h = (
            (None, None)
            if self.recurrent_bias is None
            else (self.recurrent_bias[: 2 * u], self.recurrent_bias[2 * u :])
        )
        zr_copies = None if h_copies is None else h_copies[:2]
        h_z, h_r = _gate_terms(h_prev, self.recurrent_kernel[:, : 2 * u], rb_zr, zr_copies, 2)
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        h_for_candidate = h_prev if h_copies is None else h_copies[2]
        (h_h,) = _gate_terms(r * h_for_candidate, self.recurrent_kernel[:, 2 * u :], rb_h, None, 1)
        candidate = self.activation(x_h + h_h)
        h = z * h_prev + (1 - z) * candidate
        return h, [h] if nested else h


# -- building ------------------------------------------------------------------------------------

RecurrentLayerSpec = SimpleRNNSpec | LSTMSpec | GRUSpec

_NATIVE_LAYERS: dict[str, Callable[..., Any]] = {
    "simple_rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}
_TORCH_CELLS: dict[str, Callable[..., Any]] = {
    "simple_rnn": TorchSimpleRNNCell,
    "lstm": TorchLSTMCell,
    "gru": TorchGRUCell,
}


def _uses_torch_cell(layer: RecurrentLayerSpec, convention: str) -> bool:
    """True when the torch convention adds a bias Keras's own layer lacks."""
    if convention != "torch" or not layer.use_bias:
        return False
    return not (isinstance(layer, GRUSpec) and layer.reset_after)


def _cell_options(layer: RecurrentLayerSpec) -> dict[str, Any]:
    """The spec's cell options under their Keras argument names (shared by Keras's layers and cells)."""
    options: dict[str, Any] = {
        "units": layer.units,
        "activation": layer.activation,
        "use_bias": layer.use_bias,
        "dropout": layer.dropout,
        "recurrent_dropout": layer.recurrent_dropout,
    }
    if isinstance(layer, (LSTMSpec, GRUSpec)):
        options["recurrent_activation"] = layer.recurrent_activation
    if isinstance(layer, LSTMSpec):
        options["unit_forget_bias"] = layer.unit_forget_bias
    if isinstance(layer, GRUSpec):
        options["reset_after"] = layer.reset_after
    return options


def _one_direction(layer: RecurrentLayerSpec, name: str, convention: str) -> Layer:
    """One Keras RNN layer for one direction of ``layer``."""
    if layer.cell not in _NATIVE_LAYERS:
        raise RnnspecError(
            f"the keras backend cannot build cell {layer.cell!r} (layer {name!r}); "
            f"it builds: {', '.join(sorted(_NATIVE_LAYERS))}"
        )
    sequence_options = {"return_sequences": layer.return_sequences, "go_backwards": layer.go_backwards, "name": name}
    if _uses_torch_cell(layer, convention):
        cell = _TORCH_CELLS[layer.cell](**_cell_options(layer))
        return keras.layers.RNN(cell, **sequence_options)
    return _NATIVE_LAYERS[layer.cell](**_cell_options(layer), **sequence_options)


def _recurrent_layer(layer: RecurrentLayerSpec, name: str, convention: str) -> Layer:
    """The Keras layer for ``layer``: one direction, or ``Bidirectional`` (which clones it backwards) named ``name``."""
    rnn = _one_direction(layer, name, convention)
    if not layer.bidirectional:
        return rnn
    return keras.layers.Bidirectional(rnn, merge_mode=layer.merge_mode, name=name)


def _input_layer(spec: ModelSpec) -> Any:
    taken = set(spec.layer_names())
    name, n = "input", 0
    while name in taken:
        n += 1
        name = f"input_{n}"
    if spec.input.vocab_size is not None:
        return keras.Input((spec.input.seq_len,), dtype="int32", name=name)
    return keras.Input((spec.input.seq_len, spec.input.features), name=name)


def _layers(spec: ModelSpec) -> list[Layer]:
    names = iter(spec.layer_names())
    layers: list[Layer] = []
    if spec.embedding is not None:
        assert spec.input.vocab_size is not None
        layers.append(
            keras.layers.Embedding(
                spec.input.vocab_size, spec.embedding.output_dim, mask_zero=spec.embedding.mask_zero, name=next(names)
            )
        )
    layers += [_recurrent_layer(layer, next(names), spec.convention) for layer in spec.recurrent]
    if spec.head is not None:
        head = spec.head
        layers.append(
            keras.layers.Dense(head.units, activation=head.activation, use_bias=head.use_bias, name=next(names))
        )
    return layers


def _masked(spec: ModelSpec) -> bool:
    return spec.embedding is not None and spec.embedding.mask_zero


def _directions(layer: Any) -> list[tuple[str, Any]]:
    """``(canonical prefix, Keras RNN layer)`` per direction of a recurrent layer."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [("forward/", layer.forward_layer), ("backward/", layer.backward_layer)]
    return [("", layer)]


def _recurrent_names(spec: ModelSpec) -> list[str]:
    start = 1 if spec.embedding is not None else 0
    return spec.layer_names()[start : start + len(spec.recurrent)]


def _configure_runtime(model: Model, spec: ModelSpec) -> None:
    """Settings Keras does not serialize: no cuDNN behind a mask (it zeroes masked outputs, needs right padding)."""
    if not _masked(spec):
        return
    for name in _recurrent_names(spec):
        for _, rnn in _directions(model.get_layer(name)):
            if hasattr(rnn, "use_cudnn"):
                rnn.use_cudnn = False


def _cudnn_disabled(layer: Any) -> bool:
    return any(getattr(rnn, "use_cudnn", None) is False for _, rnn in _directions(layer))


def _attach(model: Model, spec: ModelSpec) -> None:
    setattr(model, MODEL_BACKEND_ATTR, "keras")
    setattr(model, MODEL_SPEC_ATTR, spec)


def _spec_of(model: Any) -> ModelSpec:
    spec = getattr(model, MODEL_SPEC_ATTR, None)
    if not isinstance(spec, ModelSpec):
        raise RnnspecError(f"{type(model).__name__} was not built by rnnspec's keras backend (no spec attached)")
    return spec


def _counts(model: Model, spec: ModelSpec) -> dict[str, int]:
    return {name: int(model.get_layer(name).count_params()) for name in spec.layer_names()}


# -- weights -------------------------------------------------------------------------------------


def _variables(model: Model, spec: ModelSpec) -> dict[str, Any]:
    """Canonical weight name → Keras variable: the one place that knows Keras's weight layout."""
    out: dict[str, Any] = {}
    names = iter(spec.layer_names())
    if spec.embedding is not None:
        name = next(names)
        out[f"{name}/embeddings"] = model.get_layer(name).embeddings
    for _ in spec.recurrent:
        name = next(names)
        for prefix, rnn in _directions(model.get_layer(name)):
            cell = rnn.cell
            for leaf in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
                variable = getattr(cell, leaf, None)
                if variable is not None:
                    out[f"{name}/{prefix}{leaf}"] = variable
    if spec.head is not None:
        name = next(names)
        dense = model.get_layer(name)
        out[f"{name}/kernel"] = dense.kernel
        if dense.bias is not None:
            out[f"{name}/bias"] = dense.bias
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
            raw = archive.read(SPEC_MEMBER)
    except zipfile.BadZipFile:
        raise RnnspecError(
            f"{path}: not a readable .keras archive; it may be truncated or corrupted. fix: save the model again"
        ) from None
    try:
        return spec_from_dict(json.loads(raw))
    except json.JSONDecodeError:
        raise RnnspecError(
            f"{path}: the embedded spec ({SPEC_MEMBER}) is not valid JSON; the file is corrupted"
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


class KerasBackend:
    """rnnspec's Keras 3 (TensorFlow) backend: native layers, canonical weights in and out.

    >>> import rnnspec
    >>> model = rnnspec.build("specs/imdb_lstm.yaml", "keras", seed=0)  # doctest: +SKIP
    >>> model.get_layer("recurrent_0").__class__.__name__  # doctest: +SKIP
    'LSTM'
    """

    name = "keras"

    def build(self, spec: ModelSpec) -> Model:
        """A built ``keras.Sequential`` named after the spec, layers named as rnnspec names them."""
        model = keras.Sequential([_input_layer(spec), *_layers(spec)], name=spec.name)
        _configure_runtime(model, spec)
        _attach(model, spec)
        return model

    def count_params(self, model: Model) -> dict[str, int]:
        """Keras's own ``count_params()`` of each of the spec's layers."""
        return _counts(model, _spec_of(model))

    def set_weights(self, model: Model, weights: dict[str, np.ndarray]) -> None:
        """Assign canonical weights to the Keras variables (exact: float32 in, float32 stored)."""
        spec = _spec_of(model)
        variables = _variables(model, spec)
        _check_names(variables, weights, spec)
        for name, variable in variables.items():
            variable.assign(np.asarray(weights[name], dtype=np.float32))

    def get_weights(self, model: Model) -> dict[str, np.ndarray]:
        """The Keras variables as canonical float32 arrays."""
        return {
            name: np.array(variable.numpy(), dtype=np.float32)
            for name, variable in _variables(model, _spec_of(model)).items()
        }

    def predict(self, model: Model, x: np.ndarray) -> np.ndarray:
        """Inference outputs (dropout off) through ``predict_on_batch``, which traces once per model."""
        spec = _spec_of(model)
        arr = np.asarray(x, dtype=np.int32 if spec.input.vocab_size is not None else np.float32)
        if arr.shape[0] == 0:
            tail = (arr.shape[1], spec.output_units) if spec.output_per_step else (spec.output_units,)
            return np.zeros((0, *tail), dtype=np.float32)
        return np.asarray(model.predict_on_batch(arr), dtype=np.float32)

    def summary(self, model: Model) -> str:
        """Keras's own ``model.summary()`` as plain text."""
        chunks: list[str] = []
        model.summary(print_fn=lambda text, **_: chunks.append(text))
        return "".join(chunk if chunk.endswith("\n") else chunk + "\n" for chunk in chunks)

    def save_artifact(self, model: Model, directory: Path) -> list[Path]:
        """Write ``DIRECTORY/<spec name>.keras`` atomically, with the spec inside (see :func:`load_artifact`)."""
        spec = _spec_of(model)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{spec.name}.keras"
        _write_model_atomic(model, spec, target)
        return [target]

    def load_artifact(self, path: str | Path) -> Model:
        """See :func:`load_artifact`."""
        return load_artifact(path)

    def trainer(self, model: Model, training: Any, device: str | None = None) -> Any:
        from .keras_train import KerasTrainer

        return KerasTrainer(model, training, device)

    def notes(self, model: Model) -> list[str]:
        """How the layers run: custom torch-convention cells, cuDNN switched off behind masks, TF32 on GPUs."""
        spec = _spec_of(model)
        notes = []
        for name, layer in zip(_recurrent_names(spec), spec.recurrent, strict=True):
            if _uses_torch_cell(layer, spec.convention):
                notes.append(
                    f"{name}: torch convention, two bias vectors; runs as a custom Keras cell "
                    f"({_TORCH_CELLS[layer.cell].__name__}) in Keras's generic step loop, never cuDNN"
                )
        uncudnn = [name for name in _recurrent_names(spec) if _cudnn_disabled(model.get_layer(name))]
        if uncudnn:
            notes.append(
                f"{', '.join(uncudnn)}: use_cudnn=False behind mask_zero, so on a GPU they keep Keras's masking "
                "(cuDNN would write zeros at masked steps and needs right-padded masks)"
            )
        if tf.config.list_physical_devices("GPU") and tf.config.experimental.tensor_float_32_execution_enabled():
            notes.append(
                "GPU: TensorFlow runs float32 matmuls in TF32; for parity to 1e-5 call "
                "tf.config.experimental.enable_tensor_float_32_execution(False)"
            )
        return notes


BACKEND = KerasBackend()
