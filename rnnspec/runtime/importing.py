"""Importing the models people already have: :func:`import_model` reads a Keras ``.keras``/``.h5`` file, a
PyTorch state dict (``.pt``/``.pth``, read through the torch backend with ``torch.load(weights_only=True)``) or
``.safetensors`` tensors into a spec and canonical weights; :func:`write_import` saves them as a folder
``rnnspec`` reads (``spec.yaml``, ``weights.safetensors``); :func:`run_user_module` runs the user's own
``torch.nn.Module`` (named with ``--module``) with the state dict loaded, for the proof of a state-dict import.

>>> spec, weights = import_model("tutorial.keras")  # doctest: +SKIP
>>> spec, weights = import_model("model.pt", spec="spec.yaml")  # doctest: +SKIP

The files are read and mapped by :mod:`rnnspec.interop` (no framework); this module adds what needs the
runtime: the torch backend for ``torch.save`` files and rnnspec's own weights files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.backend import LiveModels, StateDictReader
from rnnspec.core.emit import yaml_document, yaml_scalar
from rnnspec.core.noise import ulp_perturbed
from rnnspec.core.registry import backend_entry, backend_owning, backends_with, get_backend
from rnnspec.core.specs import as_spec
from rnnspec.core.weights import check_finite, check_weights, save_weights_file, spec_from_weights_file
from rnnspec.interop.errors import ImportError_
from rnnspec.interop.formats import foreign_safetensors, model_format
from rnnspec.interop.keras_files import read_keras_file
from rnnspec.interop.keras_import import keras_to_spec
from rnnspec.interop.proof import Agreement, Outputs, agreement, run_side
from rnnspec.interop.renaming import rename_weights
from rnnspec.interop.torch_import import state_dict_to_weights
from rnnspec.lang.loader import spec_from_dict
from rnnspec.lang.spec import ModelSpec
from rnnspec.runtime.models import load_weights
from rnnspec.runtime.usercode import UserCodeError, failure, instantiate, load_class, parse_kwargs, parse_reference
from rnnspec.util import printable, staged_outputs, write_text_atomic

__all__ = ["ModuleRun", "import_model", "import_targets", "run_user_module", "spec_yaml", "write_import"]


def import_model(
    path: str | Path,
    spec: ModelSpec | str | Path | Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    allow_nonfinite: bool = False,
    notes: list[str] | None = None,
) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """The spec and canonical weights of a Keras model file or a PyTorch state dict (see :func:`_import_model`).

    Weights holding NaN or infinite values are refused, each named with its count of such values, unless
    ``allow_nonfinite`` (the check every path weights enter by makes: :func:`rnnspec.core.weights.check_finite`).
    What a Keras file says that the spec cannot keep (frozen layers, compile settings) is added to ``notes``."""
    found, weights = _import_model(path, spec, name=name, notes=notes)
    if not allow_nonfinite:
        check_finite(weights, str(path))
    return found, weights


def _import_model(
    path: str | Path,
    spec: ModelSpec | str | Path | Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    notes: list[str] | None = None,
) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """The spec and canonical weights of a Keras model file or a PyTorch state dict.

    Keras files carry their architecture; ``spec`` (optional) then renames the layers and must
    describe the same model. A state dict holds no architecture: ``spec`` is required, and the
    returned spec is in the torch convention (both biases kept).
    """
    p = Path(path)
    given = None if spec is None else as_spec(spec)
    kind = model_format(p)
    if kind == "keras":
        data, weights = keras_to_spec(read_keras_file(p), name=name, notes=notes)
        imported = spec_from_dict(data)
        check_weights(imported, weights)
        if given is not None:
            return given, rename_weights(imported, weights, given, str(p))
        return imported, weights
    if kind == "safetensors":
        items = foreign_safetensors(p)
        if items is None:  # canonical weights written by rnnspec
            found = given or spec_from_weights_file(p)
            return found, load_weights(p, spec=found, allow_nonfinite=True)  # checked by import_model
    else:
        items = _state_dict_reader().read_state_dict(p)
    if given is None:
        raise ImportError_(
            f"{p}: a PyTorch state dict holds the weights but not the architecture (activations, head); "
            "pass the spec that describes the module: --spec SPEC (Python: spec=...)"
        )
    found, weights = state_dict_to_weights(items, given, str(p))
    if name:
        found = found.model_copy(update={"name": name})
    check_weights(found, weights)
    return found, weights


def spec_yaml(spec: ModelSpec, origin: str) -> str:
    """A readable YAML file of ``spec``: defaults left out, one line per layer."""
    data = spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data = {"rnnspec": data.pop("rnnspec", 1.1), "name": data.pop("name", spec.name), **data}
    for section in ("embedding", "recurrent", "head"):
        if isinstance(data.get(section), dict):
            data[section] = _leading_keys(data[section])
        elif isinstance(data.get(section), list):
            data[section] = [_leading_keys(entry) for entry in data[section]]
    if spec_from_dict(data) != spec:
        data = spec.to_dict()
    # the origin (a file name: any character) is a quoted YAML scalar inside the comment, never a line of its own
    return yaml_document(data, comment=f"Imported by rnnspec from {yaml_scalar(origin)}")


def _leading_keys(entry: dict[str, Any]) -> dict[str, Any]:
    first = [k for k in ("name", "cell", "units") if k in entry]
    return {**{k: entry[k] for k in first}, **{k: v for k, v in entry.items() if k not in first}}


def write_import(spec: ModelSpec, weights: dict[str, np.ndarray], directory: Path, origin: str, *,
                 overwrite: bool = False, inputs: tuple[Path | None, ...] = ()) -> list[Path]:  # fmt: skip
    """Write ``DIR/spec.yaml`` and ``DIR/weights.safetensors`` as one unit (both or neither, never over one of the
    command's ``inputs``); existing files need ``overwrite``."""
    targets = import_targets(directory, overwrite=overwrite)
    text = spec_yaml(spec, origin)
    with staged_outputs(inputs) as out:
        save_weights_file(weights, out.stage(targets[1]), spec)
        write_text_atomic(out.stage(targets[0]), text)
    return targets


def import_targets(directory: Path, *, overwrite: bool = False) -> list[Path]:
    """``DIR/spec.yaml`` and ``DIR/weights.safetensors``, once it is sure they may be written (existing files need
    ``overwrite``; ``DIR`` must be a folder or nothing): the import checks this before it proves anything."""
    from rnnspec.runtime.runs import IMPORT_WEIGHTS

    targets = [directory / "spec.yaml", directory / IMPORT_WEIGHTS]
    existing = [printable(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise ImportError_(
            f"{', '.join(existing)} already exist; nothing was written. fix: choose another -o folder, "
            "or pass --overwrite to replace them"
        )
    if directory.exists() and not directory.is_dir():
        raise ImportError_(f"{printable(directory)} is a file, not a folder; choose a folder for -o")
    return targets


def _state_dict_reader() -> StateDictReader:
    """The first backend that declares it reads PyTorch state dict files (``state_dicts``); its framework is loaded."""
    readers = backends_with("state_dicts")
    if not readers:
        raise ImportError_("no registered backend reads a PyTorch state dict (none declares state_dicts)")
    reader = get_backend(readers[0])
    assert isinstance(reader, StateDictReader), f"the {readers[0]} backend declares state_dicts"
    return reader


# -- the user's own module: the proof of a state-dict import against its forward ---------------------------------


@dataclass(frozen=True)
class ModuleRun:
    """The user's module run on the proof's inputs with the state dict loaded."""

    label: str
    """``your module CLASS``."""
    outputs: Outputs
    """Its outputs and its noise floor (None where its forward is not deterministic: no floor can be measured)."""
    rerun: Agreement
    """Its forward run twice on the same inputs, compared with itself (fails where the two runs differ: a random
    initial state, dropout that eval mode does not turn off)."""


def run_user_module(source: Path, reference: str, args: str | None, x: np.ndarray) -> ModuleRun:
    """Load the class ``reference`` (``FILE.py:CLASS``) from the user's file (this RUNS that file), make it with the
    JSON keyword arguments ``args``, load the state dict ``source`` into it (strict), and run its forward in eval mode
    on ``x``: twice (is it deterministic?) and once more with every float32 tensor moved by one ulp (its noise floor).
    Every failure of the user's code is one paragraph (:class:`~rnnspec.runtime.usercode.UserCodeError`)."""
    path, name = parse_reference(reference)
    kwargs = parse_kwargs(args)
    items = _module_state_dict(source)
    module = instantiate(load_class(path, name), kwargs, path)
    where = f"--module {printable(path)}:{name}"
    owner = backend_owning(module)
    impl = get_backend(owner) if owner is not None and backend_entry(owner).model_convention == "torch" else None
    driver = impl.live(module) if isinstance(impl, LiveModels) else None
    if driver is None:
        raise UserCodeError(
            f"{where}: {name}(...) made a {type(module).__module__}.{type(module).__name__}; expected a "
            f"torch.nn.Module, whose state dict {printable(source)} is. fix: name the module's class"
        )
    own = driver.tensors()
    _check_fits(own, items, where, source)
    try:
        driver.assign(items)
    except Exception as exc:
        raise UserCodeError(
            f"{where}: load_state_dict(strict=True) of {printable(source)} failed: {failure(exc, path)}"
        ) from None
    what = f"a {'int64' if np.issubdtype(x.dtype, np.integer) else 'float32'} batch of shape {tuple(x.shape)}"
    try:
        first = np.asarray(driver.forward(x), dtype=np.float64)
        second = np.asarray(driver.forward(x), dtype=np.float64)
        float32 = {k for k, v in own if np.asarray(v).dtype == np.float32}  # the module's, not the file's dtypes
        floats = {k: v for k, v in items if k in float32}
        moved = ulp_perturbed(floats)
        driver.assign([(k, moved.get(k, v)) for k, v in items])
        nudged = np.asarray(driver.forward(x), dtype=np.float64)
    except Exception as exc:
        raise UserCodeError(
            f"{where}: its forward failed on the proof's inputs ({what}: the hard inputs, rows padded before, "
            f"after and inside, fully padded, of length 1): {failure(exc, path)}. fix: forward(x) must take the "
            "batch the spec's input describes and return its outputs (or a tuple whose first item they are)"
        ) from None
    finally:
        driver.assign(items)
    label = f"your module {name}"
    rerun = agreement(f"{label}, run twice", Outputs(first, None), Outputs(second, None))
    outputs = run_side(lambda _: first, x, (lambda _: nudged) if rerun.passed else None)
    return ModuleRun(label, outputs, rerun)


def _module_state_dict(source: Path) -> list[tuple[str, np.ndarray]]:
    """The tensors of the state dict ``source`` under the module's own keys (``--module`` proves a state dict)."""
    kind = model_format(source)
    if kind == "keras":
        raise ImportError_(
            f"--module proves a PyTorch state dict against the module that saved it; {printable(source)} is a Keras "
            "model file, which carries its own architecture and is proven against Keras itself. fix: drop --module"
        )
    if kind == "safetensors":
        items = foreign_safetensors(source)
        if items is None:
            raise ImportError_(
                f"--module: {printable(source)} holds rnnspec's canonical weights, not your module's state dict "
                "(its keys are rnnspec's). fix: import the file the module saved (torch.save(model.state_dict()))"
            )
        return items
    return _state_dict_reader().read_state_dict(source)


def _named(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _check_fits(own: list[tuple[str, Any]], items: list[tuple[str, np.ndarray]], where: str, source: Path) -> None:
    """What ``load_state_dict(strict=True)`` checks, said at once: keys missing, left over, of another shape."""
    mine = {k: np.shape(v) for k, v in own}
    given = {k: np.shape(v) for k, v in items}
    parts = []
    missing = [k for k in mine if k not in given]
    extra = [k for k in given if k not in mine]
    shapes = [
        f"{k} {given[k]} in the file, {mine[k]} in the module" for k in mine if k in given and given[k] != mine[k]
    ]
    if missing:
        parts.append(f"missing from the file: {_named(missing)}")
    if extra:
        parts.append(f"in the file but not in the module: {_named(extra)}")
    if shapes:
        parts.append(f"shapes differ: {_named(shapes, 4)}")
    if parts:
        raise UserCodeError(
            f"{where}: the state dict {printable(source)} does not fit the module (load_state_dict(strict=True)): "
            f"{'; '.join(parts)}. fix: pass the constructor arguments the module was saved with (--args JSON), "
            f"or name the class that saved the file"
        )
