"""A spec from any of the forms the API accepts, and the spec (and backend) a built model carries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnnspec.core.backend import MODEL_BACKEND_ATTR, MODEL_SPEC_ATTR
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.loader import load_spec, spec_from_dict
from rnnspec.lang.spec import ModelSpec

__all__ = ["as_spec", "backend_name_of", "spec_of"]


def as_spec(spec: ModelSpec | str | Path | Mapping[str, Any]) -> ModelSpec:
    """``spec`` as a :class:`ModelSpec`: a ModelSpec as it is, a path loaded, a mapping validated."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    if isinstance(spec, Mapping):
        return spec_from_dict(dict(spec))
    raise RnnspecError(f"expected a spec (ModelSpec, a path or a dict), received {type(spec).__name__}")


def spec_of(model: Any) -> ModelSpec:
    """The spec a model was built from."""
    spec = getattr(model, MODEL_SPEC_ATTR, None)
    if not isinstance(spec, ModelSpec):
        raise RnnspecError(f"{type(model).__name__} was not built by rnnspec (no spec attached); use rnnspec.build")
    return spec


def backend_name_of(model: Any) -> str:
    """The name of the backend that built ``model``."""
    name = getattr(model, MODEL_BACKEND_ATTR, None)
    if not isinstance(name, str):
        raise RnnspecError(f"{type(model).__name__} was not built by rnnspec; use rnnspec.build")
    return name
