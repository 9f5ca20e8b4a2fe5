"""rnnspec: compile one declarative spec of a recurrent sequence model into equivalent
Keras 3, PyTorch and NumPy models.

>>> import rnnspec
>>> spec = rnnspec.load_spec("specs/imdb_lstm.yaml")
>>> rnnspec.analyze(spec).total_params
328353

Importing rnnspec imports no framework; backends are imported on ``build``.
"""

from typing import TYPE_CHECKING, Any

from rnnspec.core.registry import available_backends, get_backend
from rnnspec.lang.analysis import Analysis, LayerRow, analyze
from rnnspec.lang.errors import Issue, RnnspecError, SpecError
from rnnspec.lang.loader import load_spec, loads_spec, spec_from_dict
from rnnspec.lang.spec import ModelSpec

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
