"""The Python API over the backends: build, weights in and out, files, predict.

>>> import rnnspec
>>> model = rnnspec.build("specs/imdb_lstm.yaml", "numpy", seed=0)
>>> rnnspec.get_weights(model)["recurrent_0/kernel"].shape
(32, 128)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.backend import MODEL_BACKEND_ATTR, Backend
from rnnspec.core.registry import DEFAULT_BACKEND, backend_entry, get_backend
from rnnspec.core.specs import as_spec, backend_name_of, spec_of
from rnnspec.core.weights import (
    WeightsError,
    check_fits_memory,
    check_weights,
    initial_weights,
    load_weights_file,
    save_weights_file,
    spec_from_weights_file,
)
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec
from rnnspec.util import is_int_at_least

__all__ = [
    "CountMismatchError",
    "build",
    "check_inputs",
    "get_weights",
    "load_weights",
    "predict",
    "reset_states",
    "save_weights",
    "set_weights",
    "spec_from_weights_file",
    "spec_of",
]


class CountMismatchError(RnnspecError):
    """A built model's own parameter count differs from the analytic count (a bug, reported loudly)."""


def _as_weights(weights: Any) -> dict[str, np.ndarray]:
    if not isinstance(weights, Mapping):
        raise WeightsError(f"expected weights as a dict of name -> array, received {type(weights).__name__}")
    try:
        return {str(k): np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"weights must be numeric arrays ({exc})") from None


def _backend_of(model: Any) -> Any:
    return get_backend(backend_name_of(model))


def build(
    spec: ModelSpec | str | Path | Mapping[str, Any],
    backend: str | Backend = DEFAULT_BACKEND,
    *,
    seed: int | None = None,
    weights: Mapping[str, np.ndarray] | str | Path | None = None,
    allow_nonfinite: bool = False,
) -> Any:
    """Build ``spec`` as a native model of ``backend`` (a name: ``keras``, ``torch``, ``numpy`` or a plugin's; or
    the backend object, already loaded).

    The weights are ``weights`` (canonical dict or a weights file) or, without them, drawn once in
    NumPy with Keras's default initializers from ``seed``: the same seed gives bit-identical weights
    on every backend; a pretrained table (``embedding.weights``) then replaces the embedding's rows it gives.
    The built model's own parameter count is checked against the analytic count, per layer; a mismatch raises
    :class:`CountMismatchError`.
    """
    spec = as_spec(spec)
    name = backend if isinstance(backend, str) else backend.name
    check_fits_memory(spec, f"building the {name} model", copies=backend_entry(name).weight_copies)
    impl = get_backend(name) if isinstance(backend, str) else backend
    if weights is None:
        values = initial_weights(spec, seed)
        _pretrained_embedding(spec, values)
    elif isinstance(weights, (str, Path)):
        values = load_weights(weights, spec=spec, allow_nonfinite=allow_nonfinite)
    else:
        values = _as_weights(weights)
    check_weights(spec, values)
    model = impl.build(spec)
    _check_counts(spec, impl.count_params(model), name)
    impl.set_weights(model, values)
    return model


def _pretrained_embedding(spec: ModelSpec, values: dict[str, np.ndarray]) -> None:
    """Put the table of ``embedding.weights`` (an .npy array or a GloVe text file) into the drawn weights, and say
    how its rows were filled (a :class:`UserWarning` when some keep their initial values)."""
    if spec.embedding is None or spec.embedding.weights is None:
        return
    import warnings

    from rnnspec.data.embeddings import pretrained_table

    key = next(f"{name}/embeddings" for name, layer in spec.stack() if layer is spec.embedding)
    values[key], note = pretrained_table(spec, values[key])
    if "keep their initial values" in note:
        warnings.warn(note, UserWarning, stacklevel=3)


def _check_counts(spec: ModelSpec, counted: Mapping[str, int], backend: str) -> None:
    expected = {row.name: row.params for row in analyze(spec).layers}
    if dict(counted) != expected:
        diff = [
            f"{name}: {backend} has {counted.get(name)}, analytic {expected.get(name)}"
            for name in sorted(set(counted) | set(expected))
            if counted.get(name) != expected.get(name)
        ]
        raise CountMismatchError(
            f"the {backend} model of {spec.name!r} does not have the analytic parameter counts "
            f"({spec.convention} convention): " + "; ".join(diff)
        )


def get_weights(model: Any, spec: ModelSpec | str | Path | Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout (names ``LAYER/WEIGHT``, Keras shapes and gate order).

    ``model`` is built by rnnspec, or a plain Keras model / ``torch.nn.Module`` that ``spec``
    describes (its weights are matched to the spec's layers in order, as ``rnnspec import`` does).
    """
    if getattr(model, MODEL_BACKEND_ATTR, None) is None and spec is not None:
        from rnnspec.interop.live_models import weights_from_model

        return weights_from_model(model, as_spec(spec))
    if getattr(model, MODEL_BACKEND_ATTR, None) is None:
        raise RnnspecError(
            f"{type(model).__name__} was not built by rnnspec; pass the spec that describes it: "
            "rnnspec.get_weights(model, spec=SPEC)"
        )
    return _backend_of(model).get_weights(model)


def set_weights(model: Any, weights: Mapping[str, np.ndarray]) -> None:
    """Load canonical weights into a built model; every mismatch with its spec is reported."""
    spec = spec_of(model)
    values = _as_weights(weights)
    check_weights(spec, values)
    _backend_of(model).set_weights(model, values)


def save_weights(model_or_weights: Any, path: str | Path, spec: ModelSpec | None = None) -> None:
    """Save canonical weights as safetensors with the spec in the metadata (atomic write)."""
    if isinstance(model_or_weights, Mapping):
        save_weights_file(model_or_weights, path, spec)
    else:
        save_weights_file(get_weights(model_or_weights), path, spec or spec_of(model_or_weights))


def load_weights(
    path: str | Path, spec: ModelSpec | None = None, *, allow_nonfinite: bool = False
) -> dict[str, np.ndarray]:
    """Read canonical weights from a safetensors file; with ``spec``, check names and shapes against it.

    NaN or infinite values are refused unless ``allow_nonfinite``.
    """
    weights, _ = load_weights_file(path, allow_nonfinite=allow_nonfinite)
    if spec is not None:
        try:
            check_weights(spec, weights)
        except WeightsError as exc:
            raise WeightsError(f"{path}: {exc}") from None
    return weights


def check_inputs(spec: ModelSpec, x: Any) -> np.ndarray:
    """``x`` as the array the spec's input takes, or an :class:`RnnspecError` saying what is wrong with it.

    Token ids: integers ``(batch, time)`` in ``[0, vocab_size)``; features: finite numbers
    ``(batch, time, features)``; ``time`` equal to ``seq_len`` when the spec fixes it, and at least 1.
    """
    from rnnspec.data.lazy import OnDemandRows

    lazy = isinstance(x, OnDemandRows)  # rows read from a file when needed: checked a chunk at a time
    try:
        arr = x if lazy else np.asarray(x)
    except ValueError:
        raise RnnspecError("the inputs are ragged; pad them to one length first (rnnspec.data.pad_sequences)") from None
    if spec.input.vocab_size is not None:
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
            raise RnnspecError(
                f"expected int token ids of shape (batch, time), received {arr.dtype} of shape {arr.shape}"
            )
        if arr.size:
            known = arr.known_bounds() if lazy else None  # rows made by a tokenizer: ids known to be in range
            fits = known is not None and known[0] >= 0 and known[1] < spec.input.vocab_size
            low, high = known if fits else (arr.min(), arr.max())
            if low < 0 or high >= spec.input.vocab_size:
                raise RnnspecError(
                    f"token ids must lie in [0, {spec.input.vocab_size}); received ids from {low} to {high}"
                )
        if lazy:
            arr = arr.astype(np.int32)
    else:
        if arr.ndim != 3 or arr.shape[-1] != spec.input.features or not np.issubdtype(arr.dtype, np.number):
            raise RnnspecError(
                f"expected float features of shape (batch, time, {spec.input.features}), "
                f"received {arr.dtype} of shape {arr.shape}"
            )
        arr = arr.astype(np.float32)
        if not (arr.all_finite() if lazy else np.isfinite(arr).all()):
            raise RnnspecError("the features contain NaN or infinity; clean the data first")
    if spec.input.seq_len is not None and arr.shape[1] != spec.input.seq_len:
        raise RnnspecError(f"expected {spec.input.seq_len} time steps (input.seq_len), received {arr.shape[1]}")
    if arr.shape[1] == 0:
        raise RnnspecError("the inputs have no time steps; a sequence needs at least one")
    return arr


def predict(model: Any, x: Any, batch_size: int | None = None) -> np.ndarray:
    """Outputs of ``model`` for ``x`` (inference: dropout off), as the head defines them.

    ``x`` is int token ids ``(batch, time)`` or float features ``(batch, time, features)``;
    ``batch_size`` runs it in batches of that many samples (None: all at once), as Keras's
    ``model.predict(x, batch_size=...)`` does.

    A model with a ``stateful: true`` layer runs ``x`` in batches of ``input.batch_size`` (its length a multiple of
    it), each batch starting from the states the one before left, across calls too, as Keras's stateful layers do;
    :func:`reset_states` starts again from zeros.
    """
    if batch_size is not None and not is_int_at_least(batch_size, 1):
        raise RnnspecError(f"batch_size must be a positive integer or None; received {batch_size!r}")
    spec = spec_of(model)
    arr = check_inputs(spec, x)
    if spec.stateful:
        return _predict_stateful(model, spec, arr, batch_size)
    if batch_size is None or batch_size >= len(arr):
        return np.asarray(_backend_of(model).predict(model, arr))
    return np.asarray(_backend_of(model).predict(model, arr, batch_size))


def _predict_stateful(model: Any, spec: ModelSpec, arr: np.ndarray, batch_size: int | None) -> np.ndarray:
    fixed = spec.input.batch_size
    assert fixed is not None  # the spec's checks: a stateful layer needs input.batch_size
    if batch_size not in (None, fixed) or len(arr) == 0 or len(arr) % fixed:
        received = f"{len(arr)} samples" + (f", batch_size {batch_size}" if batch_size not in (None, fixed) else "")
        raise RnnspecError(
            f"model {spec.name!r} has a stateful layer, which predicts batches of exactly input.batch_size = "
            f"{fixed} samples (sample i of a batch continues sample i of the batch before); received {received}; "
            f"fix: pass {fixed} samples (or a multiple of {fixed}: consecutive batches), without another batch_size"
        )
    backend = _backend_of(model)
    return np.asarray(backend.predict(model, arr) if len(arr) == fixed else backend.predict(model, arr, fixed))


def reset_states(model: Any) -> None:
    """Start a stateful model's next prediction from zero states (Keras's ``model.reset_states()``: each
    stateful layer's ``reset_state()``). A model without a stateful layer is left as it is.

    >>> model = rnnspec.build(spec, "torch", seed=0)  # doctest: +SKIP
    >>> first = rnnspec.predict(model, batch_1); rnnspec.predict(model, batch_2)  # doctest: +SKIP
    >>> rnnspec.reset_states(model); np.array_equal(rnnspec.predict(model, batch_1), first)  # doctest: +SKIP
    True
    """
    spec = spec_of(model)
    if not spec.stateful:
        return
    backend = _backend_of(model)
    reset = getattr(backend, "reset_states", None)
    if reset is None:
        raise RnnspecError(f"the {backend.name} backend cannot reset a stateful model's states")
    reset(model)
