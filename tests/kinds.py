"""Shared pieces of the per-kind test files (tests/test_<kind>.py): the Keras-style summary table read back into
rows (so each kind's file compares its summary with Keras's own), the hand-written Keras model with the spec's
weights, its counts and summary against rnnspec's, a Keras file or a PyTorch state dict imported and predicted on
every backend, the plain-PyTorch export loaded as a user loads it, that export and the ONNX one equal to the NumPy
reference, and the training parity of the torch loop with ``model.fit``."""

from __future__ import annotations

import re
from typing import Any, NamedTuple


def summary_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of a Keras-style summary table (wrapped cells joined, whitespace removed)."""
    rows: list[tuple[str, ...]] = []
    cells: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("│"):
            parts = [re.sub(r"\s+", "", p) for p in line.strip().strip("│").split("│")]
            cells = parts if cells is None else [a + b for a, b in zip(cells, parts, strict=True)]
        elif cells is not None:
            rows.append(tuple(cells))
            cells = None
    return rows


def typed_rows(table: str) -> list[tuple[str, ...]]:
    """The rows with each layer's name dropped (Keras numbers its own), its type kept."""
    return [(re.sub(r"^.*\((\w+)\)$", r"\1", name), *rest) for name, *rest in summary_rows(table)]


def keras_summary(model: Any) -> str:
    """What Keras's ``model.summary()`` prints."""
    chunks: list[str] = []
    model.summary(print_fn=lambda text, **_: chunks.append(text))
    return "\n".join(chunks)


def keras_sequential(spec: Any, layers: list[Any]) -> Any:
    """Keras's ``Sequential`` of ``layers`` on the spec's input (token ids or feature vectors; ``seq_len`` where it
    is fixed; the batch size where it is fixed, as for stateful layers), written by hand as a Keras user writes it."""
    from rnnspec_backends.keras.runtime import keras

    steps = spec.input.seq_len
    shape = (steps,) if spec.input.vocab_size is not None else (steps, spec.input.features)
    dtype = "int32" if spec.input.vocab_size else "float32"
    return keras.Sequential([keras.Input(shape, batch_size=spec.input.batch_size, dtype=dtype), *layers])


def hand_built(
    spec: Any, layers: list[Any], seed: int = 1, *, weights: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The hand-written Keras model with the spec's seeded random weights (or ``weights`` where given) set into it:
    its weights' shapes must be the spec's, in the spec's order (the counts come from Keras, not from rnnspec)."""
    import rnnspec

    from .parity import random_weights

    model = keras_sequential(spec, layers)
    weights = random_weights(spec, seed) if weights is None else weights
    names = rnnspec.weight_shapes(spec)
    assert [tuple(v.shape) for v in model.weights] == list(names.values())
    model.set_weights([weights[name] for name in names])
    return model, weights


def exported_torch_module(spec: Any, weights: dict[str, Any], folder: Any, tag: str) -> tuple[Any, Any]:
    """rnnspec's plain-PyTorch export of ``spec`` to ``folder/model.py``, that file imported as a user imports it
    (the module ``exported_<tag>``), and the path of its weights file."""
    import importlib.util

    from rnnspec_backends.torch.export import export_torch

    source, state_file = export_torch(spec, weights, folder / "model.py")
    found = importlib.util.spec_from_file_location(f"exported_{tag}", source)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module, state_file


def exported_torch_model(spec: Any, weights: dict[str, Any], folder: Any, tag: str) -> Any:
    """rnnspec's plain-PyTorch export of ``spec`` loaded as a user loads it (the file, then its state dict), in
    eval mode."""
    from safetensors.torch import load_file

    module, state_file = exported_torch_module(spec, weights, folder, tag)
    model = module.Model()
    model.load_state_dict(load_file(str(state_file)))
    return model.eval()


class Fit(NamedTuple):
    """One backend's ``rnnspec.fit`` from seed 0: the model, its batch losses, its weights before and after."""

    model: Any
    losses: Any
    start: dict[str, Any]
    end: dict[str, Any]


def fit_both(spec: Any, x: Any, y: Any, **options: Any) -> dict[str, Fit]:
    """rnnspec's torch loop and ``model.fit`` (keras backend) from the same seeded weights on the same batches
    (``options`` go to ``rnnspec.fit``)."""
    import numpy as np

    import rnnspec

    fits = {}
    for backend in ("torch", "keras"):
        model = rnnspec.build(spec, backend, seed=0)
        start = rnnspec.get_weights(model)
        history = rnnspec.fit(model, x, y, seed=0, **options)
        fits[backend] = Fit(model, np.array(history["batch_loss"]), start, rnnspec.get_weights(model))
    return fits


def fit_gaps(fits: dict[str, Fit], batches: int | None = None) -> tuple[float, float]:
    """The largest relative difference of the two backends' batch losses (``batches`` of them where given) and the
    largest absolute difference of their final weights."""
    import numpy as np

    (tl, tw), (kl, kw) = ((fits[b].losses, fits[b].end) for b in ("torch", "keras"))
    assert len(tl) == len(kl) > 0 and batches in (None, len(tl)), (len(tl), len(kl), batches)
    return float(np.max(np.abs(tl - kl) / np.abs(kl))), max(float(np.abs(tw[k] - kw[k]).max()) for k in tw)


def training_gaps(spec: Any, x: Any, y: Any, batches: int | None = None) -> tuple[float, float]:
    """``model.fit`` (keras backend) and rnnspec's torch loop from the same seeded weights on the same batches: the
    largest relative difference of their batch losses and the largest absolute difference of the final weights."""
    return fit_gaps(fit_both(spec, x, y), batches)


BACKENDS = ("keras", "torch", "numpy")
TOL = 1e-5
"""float32 forward outputs, absolute."""


def count_lines(text: str) -> list[str]:
    """The "Total / Trainable / Non-trainable params" lines of a Keras-style summary, whitespace folded."""
    return [re.sub(r"\s+", " ", m.strip()) for m in re.findall(r"(?:Total|Trainable|Non-trainable) params: .*", text)]


def assert_counts_equal_keras(
    spec: Any,
    hand: Any,
    weights: dict[str, Any],
    *,
    kind: str | None = None,
    footer: bool = False,
    backends: tuple[str, ...] = ("keras", "torch"),
) -> dict[str, Any]:
    """rnnspec's analysis of ``spec`` against the hand-written Keras model ``hand``: each layer's type and
    ``count_params()``, the summary's rows (names dropped: Keras numbers its own), a row of type ``kind`` where
    given, the Total / Trainable / Non-trainable lines where ``footer``; then each backend's per-layer counts of
    the model built with ``weights``. Returns those built models, by backend, for further checks."""
    import rnnspec
    from rnnspec.lang.analysis import analyze
    from rnnspec.lang.summary import render_summary

    from .parity import backend_or_skip

    rows = analyze(spec).layers
    assert [type(layer).__name__ for layer in hand.layers] == [row.type for row in rows]
    assert [int(layer.count_params()) for layer in hand.layers] == [row.params for row in rows]
    ours, theirs = render_summary(analyze(spec)), keras_summary(hand)
    assert typed_rows(ours) == typed_rows(theirs)
    if kind is not None:
        assert any(row[0] == kind for row in typed_rows(ours)), kind
    if footer:
        assert count_lines(ours) == count_lines(theirs)
    expected = {row.name: int(layer.count_params()) for row, layer in zip(rows, hand.layers, strict=True)}
    models = {}
    for backend in backends:
        models[backend] = rnnspec.build(spec, backend, weights=weights)
        assert backend_or_skip(backend).count_params(models[backend]) == expected, backend
    return models


def assert_backends_predict(
    spec: Any,
    weights: dict[str, Any],
    x: Any,
    expected: Any,
    *,
    backends: tuple[str, ...] = BACKENDS,
    tol: float = TOL,
    nan: bool = False,
) -> None:
    """Every backend's prediction of ``x`` with ``weights`` has ``expected``'s shape and is within ``tol`` of it
    (NaN exactly where it has NaN, where ``nan``)."""
    import numpy as np

    import rnnspec

    from .parity import backend_or_skip

    for backend in backends:
        backend_or_skip(backend)
        got = rnnspec.predict(rnnspec.build(spec, backend, weights=weights), x)
        assert got.shape == expected.shape, (backend, got.shape, expected.shape)
        assert np.allclose(got, expected, rtol=0.0, atol=tol, equal_nan=nan), (backend, np.abs(got - expected).max())


def assign_normal(model: Any, seed: int = 0, scale: float = 0.5) -> Any:
    """``model``'s weights, every one, drawn from N(0, ``scale``) (biases included: zeros hide layout bugs)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0.0, scale, size=tuple(w.shape)).astype("float32"))
    return model


class Imported(NamedTuple):
    """What an import gave (the spec and weights) and what the original model computed on the inputs."""

    spec: Any
    weights: dict[str, Any]
    expected: Any


def assert_keras_file_imports(
    model: Any, path: Any, inputs: Any, *, like: Any = None, tol: float = TOL, nan: bool = False
) -> Imported:
    """Keras's ``model.save(path)`` (its suffix picks ``.keras`` or ``.h5``), rnnspec's ``import_model`` of that file
    (the same layer kinds as the spec ``like``, where given), and every backend's prediction of ``inputs`` (an array,
    or a function of the imported spec giving one) equal to Keras's own ``model(x, training=False)``."""
    import numpy as np

    from rnnspec.runtime.importing import import_model

    model.save(path)
    spec, weights = import_model(path)
    if like is not None:
        assert [layer.kind for _, layer in spec.stack()] == [layer.kind for _, layer in like.stack()]
    x = inputs(spec) if callable(inputs) else inputs
    expected = np.asarray(model(x, training=False))
    assert_backends_predict(spec, weights, x, expected, tol=tol, nan=nan)
    return Imported(spec, weights, expected)


def assert_state_dict_imports(
    module: Any, spec_text: str, path: Any, x: Any, *, tol: float = TOL, nan: bool = False
) -> Imported:
    """A hand-written PyTorch ``module``'s state dict saved as a user saves it (``torch.save``, or safetensors'
    ``save_file`` where ``path`` ends in ``.safetensors``), imported with ``import_model(path, spec)``, and every
    backend's prediction of ``x`` equal to the module's own output (under ``torch.no_grad``, in its current mode)."""
    import torch

    import rnnspec
    from rnnspec.runtime.importing import import_model

    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    else:
        torch.save(module.state_dict(), path)
    spec, weights = import_model(path, rnnspec.loads_spec(spec_text))
    with torch.no_grad():
        expected = module(torch.as_tensor(x)).numpy()
    assert_backends_predict(spec, weights, x, expected, tol=tol, nan=nan)
    return Imported(spec, weights, expected)


def _assert_equals_reference(got: Any, expected: Any, nan: bool, where: Any) -> None:
    """``got`` has ``expected``'s shape and is within TOL of it everywhere (NaN exactly where it has NaN, where
    ``nan``; a NaN or an infinity elsewhere fails)."""
    import numpy as np

    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, (where, got.shape, expected.shape)
    if nan:
        assert np.array_equal(np.isnan(got), np.isnan(expected)), where
        got, expected = got[~np.isnan(got)], expected[~np.isnan(expected)]
    assert np.all(np.abs(got - expected) <= TOL), (where, np.abs(got - expected).max())


def _input_list(inputs: Any) -> list[Any]:
    """One input array, or a list or tuple of them, as a list."""
    return list(inputs) if isinstance(inputs, list | tuple) else [inputs]


def assert_torch_export_equals_reference(
    spec: Any, weights: dict[str, Any], inputs: Any, folder: Any, tag: str, *, nan: bool = False
) -> Any:
    """rnnspec's plain-PyTorch export of ``spec`` loaded as a user loads it (:func:`exported_torch_model`), run
    eager under ``torch.no_grad`` on ``inputs`` (an array, or a list or tuple of arrays), equal to the NumPy
    reference ``forward(spec, weights, x)`` within TOL (NaN exactly where it has NaN, where ``nan``), and
    ``torch.jit.script`` of it giving exactly the same. Returns the eager model, for the file's own checks (its
    ``model.py`` and ``model.safetensors`` lie in ``folder``)."""
    import numpy as np
    import pytest

    torch = pytest.importorskip("torch")
    from rnnspec_backends.numpy.model import forward

    model = exported_torch_model(spec, weights, folder, tag)
    scripted = torch.jit.script(model)
    for i, x in enumerate(_input_list(inputs)):
        with torch.no_grad():
            got = model(torch.from_numpy(x)).numpy()
            again = scripted(torch.from_numpy(x)).numpy()
        _assert_equals_reference(got, forward(spec, weights, x), nan, (i, x.shape))
        assert np.array_equal(again, got, equal_nan=nan), (i, x.shape)
    return model


def assert_onnx_export_equals_reference(
    spec: Any, weights: dict[str, Any], inputs: Any, folder: Any, *, nan: bool = False
) -> Any:
    """rnnspec's ONNX export of ``spec`` to ``folder/model.onnx`` run under onnxruntime (CPU) on ``inputs`` (an
    array, or a list or tuple of arrays; cast to float32 features or int64 token ids), equal to the NumPy reference
    ``forward(spec, weights, x)`` within TOL (NaN exactly where it has NaN, where ``nan``). Returns the
    ``InferenceSession``, for the file's own checks (the graph lies in ``folder/model.onnx``)."""
    import numpy as np
    import pytest

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from rnnspec_backends.numpy.model import forward
    from rnnspec_backends.onnx.export import export_onnx

    (path,) = export_onnx(spec, weights, folder / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for i, x in enumerate(_input_list(inputs)):
        (got,) = session.run(None, {"x": x.astype(np.float32) if spec.input.features else x.astype(np.int64)})
        _assert_equals_reference(got, forward(spec, weights, x), nan, (i, x.shape))
    return session
