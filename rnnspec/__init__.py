"""rnnspec: compile one declarative spec of a recurrent sequence model into equivalent
Keras 3, PyTorch and NumPy models.

>>> import rnnspec
>>> spec = rnnspec.load_spec("specs/imdb_lstm.yaml")
>>> rnnspec.analyze(spec).total_params
328353

Importing rnnspec imports no framework; backends are imported on ``build``.
"""

import os
from typing import TYPE_CHECKING, Any, Union

from rnnspec.core.registry import available_backends, get_backend
from rnnspec.lang.analysis import Analysis, LayerRow, analyze
from rnnspec.lang.errors import Issue, RnnspecError, SpecError
from rnnspec.lang.loader import load_spec as _load_spec_file
from rnnspec.lang.loader import loads_spec, spec_from_dict
from rnnspec.lang.spec import ModelSpec


def load_spec(source: Union[str, "os.PathLike[str]", dict, ModelSpec]) -> ModelSpec:
    """Load and validate a spec: a file path (YAML or JSON; errors located at file:line), or a dict or a
    :class:`ModelSpec` (as :func:`spec_from_dict`). Raises :class:`SpecError` listing every problem.

    YAML or JSON text in a string is :func:`loads_spec`'s; any other type is a TypeError that says so.
    """
    if isinstance(source, (dict, ModelSpec)):
        return spec_from_dict(source)  # type: ignore[arg-type]
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"load_spec takes a path to a spec file (str or pathlib.Path) or a dict, not {type(source).__name__}; "
            "for YAML or JSON text use rnnspec.loads_spec(text)"
        )
    return _load_spec_file(source)


if TYPE_CHECKING:
    from rnnspec.core.weights import WeightsError, initial_weights, weight_shapes
    from rnnspec.data import Dataset, load_data
    from rnnspec.runtime.exporting import export
    from rnnspec.runtime.importing import import_model
    from rnnspec.runtime.models import (
        CountMismatchError,
        build,
        get_weights,
        load_weights,
        predict,
        reset_states,
        save_weights,
        set_weights,
        spec_from_weights_file,
        spec_of,
    )
    from rnnspec.runtime.training import evaluate, fit

# Imported on first use, so that `rnnspec summary` and `validate` start fast.
_LAZY = {
    "Dataset": "data", "load_data": "data",
    **dict.fromkeys(
        ["CountMismatchError", "build", "get_weights", "load_weights", "predict", "reset_states", "save_weights",
         "set_weights", "spec_from_weights_file", "spec_of"],
        "runtime.models",
    ),
    "evaluate": "runtime.training", "fit": "runtime.training",
    "export": "runtime.exporting", "import_model": "runtime.importing",
    "WeightsError": "core.weights", "initial_weights": "core.weights", "weight_shapes": "core.weights",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnspec' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"rnnspec.{module}"), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "CountMismatchError",
    "Dataset",
    "Issue",
    "LayerRow",
    "ModelSpec",
    "RnnspecError",
    "SpecError",
    "WeightsError",
    "__version__",
    "analyze",
    "available_backends",
    "build",
    "evaluate",
    "export",
    "fit",
    "get_backend",
    "get_weights",
    "import_model",
    "initial_weights",
    "load_data",
    "load_spec",
    "load_weights",
    "loads_spec",
    "predict",
    "reset_states",
    "save_weights",
    "set_weights",
    "spec_from_dict",
    "spec_from_weights_file",
    "spec_of",
    "weight_shapes",
]
