"""TensorFlow and Keras 3, imported once and quietly, for every module of the keras backend.

Keras fixes its backend when first imported, so this module checks ``KERAS_BACKEND`` (and an
already imported Keras) before importing it, and fails with a
:class:`~rnnspec.lang.errors.RnnspecError` naming the fix; an unset or empty ``KERAS_BACKEND`` is
set to ``tensorflow`` (over ``~/.keras/keras.json``). It also silences TensorFlow's start-up log
lines unless ``TF_CPP_MIN_LOG_LEVEL`` is set to ``0``.

The other modules of the backend (:mod:`.model`, :mod:`.cells`, :mod:`.train`, ...) take
``tf``, ``keras`` and ``ops`` from here, so none of them imports another to reach Keras.

>>> from rnnspec_backends.keras.runtime import keras  # doctest: +SKIP
>>> keras.backend.backend()  # doctest: +SKIP
'tensorflow'
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from types import ModuleType

from rnnspec.lang.errors import RnnspecError
from rnnspec.util import quiet_stderr

__all__ = ["keras", "ops", "tf"]


def _require_tensorflow_backend() -> None:
    """Make Keras pick TensorFlow, or raise if another backend is already chosen."""
    loaded = sys.modules.get("keras")
    if loaded is not None:
        found = _loaded_keras_backend(loaded)
        if found != "tensorflow":
            raise RnnspecError(
                f"keras is already imported with the {found!r} backend, but rnnspec's keras backend needs "
                "TensorFlow; fix: unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow before Python starts "
                "(or use the torch or numpy backend)"
            )
        return
    requested = os.environ.get("KERAS_BACKEND", "")
    if requested and requested != "tensorflow":
        raise RnnspecError(
            f"KERAS_BACKEND is {requested!r}, but rnnspec's keras backend needs TensorFlow; "
            "fix: unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow (or use the torch or numpy backend)"
        )
    # An empty or absent KERAS_BACKEND lets keras.json choose; rnnspec's choice wins over that file.
    os.environ["KERAS_BACKEND"] = "tensorflow"


def _loaded_keras_backend(module: ModuleType) -> str:
    try:
        return str(module.backend.backend())
    except AttributeError:
        return os.environ.get("KERAS_BACKEND") or "unknown"


def _log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def _import_tensorflow_keras() -> tuple[ModuleType, ModuleType]:
    """Import TensorFlow then Keras, quietly unless the user asked for TensorFlow's logs.

    TensorFlow logs its oneDNN notice through absl before ``TF_CPP_MIN_LOG_LEVEL`` applies, so
    the import also runs with file descriptor 2 held back (replayed if the import fails).
    """
    _require_tensorflow_backend()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet = _log_level() >= 1
    with quiet_stderr() if quiet else contextlib.nullcontext():
        tf_module = importlib.import_module("tensorflow")
        keras_module = importlib.import_module("keras")
    if quiet:
        importlib.import_module("absl.logging").set_verbosity("error")
        tf_module.get_logger().setLevel("ERROR")
    found = _loaded_keras_backend(keras_module)
    if found != "tensorflow":
        raise RnnspecError(
            f"keras runs on the {found!r} backend, but rnnspec's keras backend needs TensorFlow; "
            "fix: unset KERAS_BACKEND or set KERAS_BACKEND=tensorflow"
        )
    return tf_module, keras_module


tf, keras = _import_tensorflow_keras()
ops = keras.ops
