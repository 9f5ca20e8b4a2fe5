"""rnnspec: compile one declarative spec of a recurrent sequence model into equivalent
Keras 3, PyTorch and NumPy models.

>>> import rnnspec
>>> spec = rnnspec.load_spec("specs/imdb_lstm.yaml")
>>> rnnspec.analyze(spec).total_params
328353

Importing rnnspec imports no framework; backends are imported on ``build``.
"""

from typing import TYPE_CHECKING, Any

from .analysis import Analysis, LayerRow, analyze
from .errors import Issue, RnnspecError, SpecError
from .loader import load_spec, loads_spec, spec_from_dict
from .registry import available_backends, get_backend
from .spec import ModelSpec

if TYPE_CHECKING:
    from .data import Dataset, load_data
    from .models import (
        CountMismatchError,
        build,
        get_weights,
        load_weights,
        predict,
        save_weights,
        set_weights,
        spec_from_weights_file,
        spec_of,
    )
    from .training import evaluate, fit
    from .weights import WeightsError, initial_weights, weight_shapes

# Imported on first use, so that `rnnspec summary` and `validate` start fast.
_LAZY = {
    "Dataset": "data", "load_data": "data",
    "CountMismatchError": "models", "build": "models", "get_weights": "models", "load_weights": "models",
    "predict": "models", "save_weights": "models", "set_weights": "models", "spec_from_weights_file": "models",
    "spec_of": "models",
    "evaluate": "training", "fit": "training",
    "WeightsError": "weights", "initial_weights": "weights", "weight_shapes": "weights",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnspec' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
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
    "fit",
    "get_backend",
    "get_weights",
    "initial_weights",
    "load_data",
    "load_spec",
    "load_weights",
    "loads_spec",
    "predict",
    "save_weights",
    "set_weights",
    "spec_from_dict",
    "spec_from_weights_file",
    "spec_of",
    "weight_shapes",
]
