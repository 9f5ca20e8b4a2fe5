"""Importing the models people already have: :func:`import_model` reads a Keras ``.keras``/``.h5`` file, a
PyTorch state dict (``.pt``/``.pth``, read through the torch backend with ``torch.load(weights_only=True)``) or
``.safetensors`` tensors into a spec and canonical weights; :func:`write_import` saves them as a folder
``rnnspec`` reads (``spec.yaml``, ``weights.safetensors``).

>>> spec, weights = import_model("tutorial.keras")  # doctest: +SKIP
>>> spec, weights = import_model("model.pt", spec="spec.yaml")  # doctest: +SKIP

The files are read and mapped by :mod:`rnnspec.interop` (no framework); this module adds what needs the
runtime: the torch backend for ``torch.save`` files and rnnspec's own weights files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.backend import StateDictReader
from rnnspec.core.emit import yaml_document, yaml_scalar
from rnnspec.core.registry import backends_with, get_backend
from rnnspec.core.specs import as_spec
from rnnspec.core.weights import check_finite, check_weights, save_weights_file, spec_from_weights_file
from rnnspec.interop.errors import ImportError_
from rnnspec.interop.formats import foreign_safetensors, model_format
from rnnspec.interop.keras_files import read_keras_file
from rnnspec.interop.keras_import import keras_to_spec
from rnnspec.interop.renaming import rename_weights
from rnnspec.interop.torch_import import state_dict_to_weights
from rnnspec.lang.loader import spec_from_dict
from rnnspec.lang.spec import ModelSpec
from rnnspec.runtime.models import load_weights
from rnnspec.util import printable, staged_outputs, write_text_atomic

__all__ = ["import_model", "import_targets", "spec_yaml", "write_import"]


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
    targets = [directory / "spec.yaml", directory / "weights.safetensors"]
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
