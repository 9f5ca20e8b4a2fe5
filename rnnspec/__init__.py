"""rnnspec: compile one declarative spec of a recurrent sequence model into equivalent
Keras 3, PyTorch and NumPy models.

>>> import rnnspec
>>> spec = rnnspec.load_spec("specs/imdb_lstm.yaml")
>>> rnnspec.analyze(spec).total_params
328353

Importing rnnspec imports no framework; backends are imported on ``build``.
"""

from .analysis import Analysis, LayerRow, analyze
from .data import Dataset, load_data
from .errors import Issue, RnnspecError, SpecError
from .loader import load_spec, loads_spec, spec_from_dict
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
from .registry import available_backends, get_backend
from .spec import ModelSpec
from .training import evaluate, fit
from .weights import WeightsError, initial_weights, weight_shapes

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
