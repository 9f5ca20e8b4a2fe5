"""The two things being compared, each seen the same way: canonical weights in, outputs and canonical
gradients out.

A side is a user's own Keras model or ``torch.nn.Module`` (its tensors mapped to canonical names by
the import rules), a model built by rnnspec, or a backend name (``keras``, ``torch``, ``numpy`` or a plugin's:
the spec built there). Frameworks are reached through the backends that declare ``live_models`` (their
``owns`` and ``live``), so this module imports none and names no backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnspec.core.backend import LiveModels, OccurrenceSquares
from rnnspec.core.registry import available_backends, backend_for_convention, backend_owning, get_backend
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec
from rnnspec.testing.params import Items, ParameterMap

__all__ = ["Side", "framework_of", "make_side", "model_convention", "spec_in"]


def framework_of(obj: Any) -> str | None:
    """The backend whose framework ``obj`` is a model of (``keras`` or ``torch`` for the built-ins: read from its
    classes' modules, so no framework is imported to find out), else None."""
    return backend_owning(obj)


def model_convention(obj: Any) -> str | None:
    """The weight convention a user's own model is read in (``keras``: its layers also give its spec; ``torch``:
    its state dict is matched to a spec), declared by the backend that owns it; None for anything else."""
    owner = backend_owning(obj)
    return _live(owner).convention if owner is not None else None


def _live(name: str) -> LiveModels:
    backend = get_backend(name)
    if not isinstance(backend, LiveModels):
        raise RnnspecError(f"the {name} backend does not drive models of its framework (it declares no live_models)")
    return backend


def spec_in(spec: ModelSpec, convention: str) -> ModelSpec:
    """``spec`` in the ``keras`` or ``torch`` weight convention."""
    if spec.convention == convention:
        return spec
    from rnnspec.lang.loader import spec_from_dict

    return spec_from_dict({**spec.to_dict(), "convention": convention})


@dataclass
class Side:
    """One of the two models: what it is called, its spec in its own weight convention, and how to drive it."""

    label: str
    spec: ModelSpec
    forward: Callable[[np.ndarray], np.ndarray]
    load: Callable[[dict[str, np.ndarray]], None]
    read: Callable[[], dict[str, np.ndarray]]
    gradients: Callable[[np.ndarray, np.ndarray, Any, np.ndarray | None], tuple[float, dict[str, np.ndarray]]] | None
    own_weights: bool = False
    """A model file: it is compared with the weights it holds (not given the other side's)."""
    backend: str | None = None
    """For a model built by rnnspec (a backend name, a model file): its backend, so that rnnspec can train it."""
    kind: str = ""
    """``keras``, ``torch`` (a user's module), ``rnnspec-torch`` or ``numpy``: whose optimizer semantics apply."""
    occurrence_squares: Callable[[], dict[str, np.ndarray]] | None = None
    """After a gradient pass: per embedding, Σ over occurrences of each row's squared gradient (Keras's sparse
    update; None where the side's optimizer squares the summed gradient instead)."""
    count: Callable[[], int] | None = None
    """The number of parameters the model itself holds (its own tensors)."""
    train_steps: Callable[..., None] | None = None
    """``(x, y, loss, weight, optimizer, steps)``: updates by the user's own optimizer (live models)."""
    mode: str | None = None
    """``train`` or ``eval``: the mode a user's module was handed over in (None: a model without one)."""
    forward_as_handed: Callable[[np.ndarray], np.ndarray] | None = None
    """The outputs in the mode it was handed over in, where that is train mode (dropout on)."""
    snapshot: Callable[[], Any] = lambda: None
    """The model's own values now, for :attr:`restore` to put back (a user's model is left as it was found)."""
    restore: Callable[[Any], None] = lambda _state: None


def _driver(obj: Any, framework: str) -> Any:
    driver = _live(framework).live(obj)
    if driver is None:
        raise RnnspecError(f"the {framework} backend cannot drive a {type(obj).__name__}")
    return driver


def _keras_layers(obj: Any, arrays: dict[int, list[np.ndarray]] | None = None) -> Any:
    """The Keras file view of a live model (its layers' classes, configs and weights) for the importer."""
    from pathlib import Path

    from rnnspec.interop.keras_files import KerasFile, KerasLayer

    layers = []
    for i, layer in enumerate(obj.layers):
        values = arrays[i] if arrays is not None else [np.asarray(w.numpy()) for w in layer.weights]
        layers.append(KerasLayer(type(layer).__name__, layer.get_config(), list(values)))
    shape = [None, *list(obj.inputs[0].shape[1:])] if getattr(obj, "inputs", None) else None
    return KerasFile(Path(str(obj.name)), "live", "3", "Sequential", str(obj.name), layers, build_input_shape=shape)


def keras_model_spec(obj: Any) -> ModelSpec:
    """The spec of a live Keras model, read by the importer (what ``rnnspec import`` reads from its file)."""
    from rnnspec.interop.keras_import import keras_to_spec
    from rnnspec.lang.loader import spec_from_dict

    data, _ = keras_to_spec(_keras_layers(obj))
    return spec_from_dict(data)


def _keras_canonical(obj: Any, spec: ModelSpec, label: str) -> Callable[[Items], dict[str, np.ndarray]]:
    from rnnspec.interop import rename_weights
    from rnnspec.interop.keras_import import keras_to_spec
    from rnnspec.lang.loader import spec_from_dict

    def to_canonical(items: Items) -> dict[str, np.ndarray]:
        arrays: dict[int, list[np.ndarray]] = {i: [] for i in range(len(obj.layers))}
        for key, value in items:
            arrays[int(key.split("/")[0])].append(np.asarray(value))
        data, weights = keras_to_spec(_keras_layers(obj, arrays))
        return rename_weights(spec_from_dict(data), weights, spec, label)

    return to_canonical


def _torch_canonical(spec: ModelSpec, label: str) -> Callable[[Items], dict[str, np.ndarray]]:
    from rnnspec.interop.torch_import import state_dict_to_weights

    return lambda items: state_dict_to_weights(items, spec, label)[1]


def _built_canonical(model: Any, driver: Any) -> Callable[[Items], dict[str, np.ndarray]]:
    """For a model built by rnnspec: put the tensors in, read the canonical weights out (the backend's own map)."""
    from rnnspec.runtime.models import get_weights

    def to_canonical(items: Items) -> dict[str, np.ndarray]:
        saved = driver.tensors()
        driver.assign(items)
        try:
            return get_weights(model)
        finally:  # the model keeps its own values (items may be gradients)
            driver.assign(saved)

    return to_canonical


def _mapped(label: str, spec: ModelSpec, driver: Any, to_canonical: Callable[[Items], dict]) -> Side:
    tensors = driver.tensors()
    params = ParameterMap([k for k, _ in tensors], [np.shape(v) for _, v in tensors], to_canonical)
    driver.assign(tensors)  # the probing above may have written into the model: put its own values back

    def load(weights: dict[str, np.ndarray]) -> None:
        driver.assign(params.tensors(weights, driver.tensors()))

    def gradients(x: np.ndarray, y: np.ndarray, loss: str, weight: np.ndarray | None) -> tuple[float, dict]:
        value, grads = driver.gradients(x, y, loss, weight)
        return value, params.canonical(grads)

    def occurrence_squares() -> dict[str, np.ndarray]:
        squares = dict(driver.occurrence_squares)
        items = [(k, squares.get(k, np.zeros(np.shape(v)))) for k, v in driver.tensors()]
        canonical = params.canonical(items)
        return {name: canonical[name] for name in canonical if name.endswith("embeddings")}

    return Side(
        label, spec, driver.forward, load, lambda: params.canonical(driver.tensors()), gradients,
        snapshot=driver.tensors, restore=driver.assign,
        occurrence_squares=occurrence_squares if isinstance(driver, OccurrenceSquares) else None,
        train_steps=driver.train_steps,
        count=lambda: sum(int(np.size(v)) for _, v in driver.tensors()),
    )  # fmt: skip


def is_model_file(obj: Any) -> bool:
    """Whether ``obj`` names a model file (a path, not a backend name)."""
    from pathlib import Path

    return isinstance(obj, (str, Path)) and str(obj) not in available_backends()


def describe(obj: Any) -> str:
    """What ``obj`` is, in words (for reports)."""
    if is_model_file(obj):
        return f"the model file {obj} (as rnnspec imports it)"
    if isinstance(obj, str):
        return f"rnnspec's {obj} build of the spec"
    from rnnspec.core.specs import spec_of

    try:
        spec_of(obj)
        return f"the rnnspec-built {type(obj).__name__}"
    except RnnspecError:
        pass
    return _label(obj, model_convention(obj))


def _label(obj: Any, convention: str | None) -> str:
    """A user's model in words: a Keras model by its name, a torch module by its class."""
    if convention == "keras":
        return f"the Keras model {obj.name!r}"
    if convention == "torch":
        return f"the torch module {type(obj).__name__}"
    return type(obj).__name__


def make_side(obj: Any, spec: ModelSpec | None, position: str, weight_map: dict[str, str] | None = None) -> Side:
    """The side for ``obj`` (``position``: ``first`` or ``second``, for messages); ``spec`` describes it."""
    from rnnspec.runtime.models import build, spec_of

    if is_model_file(obj):
        return _file_side(obj, spec)
    if isinstance(obj, str) and obj in available_backends():
        if spec is None:
            raise RnnspecError(f"the {position} model is the backend name {obj!r}: pass the spec it should build")
        model = build(spec, obj, seed=0)  # in the spec's own weight convention
        return _built(model, f"rnnspec's {obj} build of {spec.name!r}")
    try:
        spec_of(obj)
        return _built(obj, f"the rnnspec-built {type(obj).__name__}")
    except RnnspecError:
        pass
    framework = framework_of(obj)
    if framework is None:
        raise RnnspecError(
            f"the {position} model is a {type(obj).__name__}: expected a Keras model, a torch.nn.Module, a model "
            f"built by rnnspec, or a backend name ({', '.join(available_backends())})"
        )
    driver = _driver(obj, framework)
    convention = _live(framework).convention
    label = _label(obj, convention)
    if convention == "keras":
        own = spec_in(spec, convention) if spec is not None else keras_model_spec(obj)
        side = _mapped(label, own, driver, _keras_canonical(obj, own, label))
        side.kind = convention  # trained by Keras's own optimizers
        return side
    if spec is None:
        raise RnnspecError(f"the {position} model is a torch module, which holds no architecture: pass spec=")
    own = spec_in(spec, convention)
    to_canonical = _torch_canonical(own, label)
    if weight_map:
        plain = to_canonical
        unknown = sorted(set(weight_map) - {k for k, _ in driver.tensors()})
        if unknown:
            raise RnnspecError(f"weight_map names keys the module does not have: {', '.join(unknown)}")

        def renamed(items: Items) -> dict[str, np.ndarray]:
            return plain([(weight_map.get(k, k), v) for k, v in items])

        to_canonical = renamed
    side = _mapped(label, own, driver, to_canonical)
    side.kind = convention  # trained by torch.optim
    handed = getattr(driver, "handed_training", None)  # the module's own mode, where its framework has one
    if handed is not None:
        side.mode = "train" if handed else "eval"
        side.forward_as_handed = (lambda x: driver.forward(x, training=True)) if handed else None
    return side


def _file_side(path: Any, spec: ModelSpec | None) -> Side:
    """A .keras/.h5 model or a PyTorch state dict, read by the importer and built by rnnspec with its weights
    (the file's architecture is checked against ``spec``, in the file's own weight convention)."""
    from pathlib import Path

    from rnnspec.interop.formats import model_format
    from rnnspec.runtime.importing import import_model
    from rnnspec.runtime.models import build

    if spec is not None and model_format(Path(path)) == "keras":
        spec = spec_in(spec, "keras")
    found, weights = import_model(path, spec)
    backend = backend_for_convention(found.convention)
    side = _built(build(found, backend, weights=weights), describe(path))
    side.own_weights = True
    return side


def _built(model: Any, label: str) -> Side:
    from rnnspec.runtime.models import _backend_of, get_weights, predict, set_weights, spec_of

    spec = spec_of(model)
    impl = _backend_of(model)
    name = impl.name
    if isinstance(impl, LiveModels):
        driver = _driver(model, name)
        side = _mapped(label, spec, driver, _built_canonical(model, driver))
        side.forward = lambda x: np.asarray(predict(model, x), dtype=np.float64)
        # rnnspec's keras trainer is Keras's own; its other trainers keep Keras's rule, not their framework's
        side.kind = "keras" if impl.convention == "keras" else f"rnnspec-{impl.convention}"
        side.backend = name
        return side
    return Side(
        label, spec, lambda x: np.asarray(predict(model, x), dtype=np.float64),
        lambda w: set_weights(model, w), lambda: get_weights(model), None,
        snapshot=lambda: get_weights(model), restore=lambda w: set_weights(model, w), kind=name,
        count=lambda: sum(int(np.size(v)) for v in get_weights(model).values()),
    )  # fmt: skip
