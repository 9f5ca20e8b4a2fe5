"""A ``.keras`` or ``.h5`` file opened by Keras itself, for the proofs of ``rnnspec export --format keras`` and
``rnnspec import`` (the original model against rnnspec's builds).

>>> run = run_file([Path("model.keras")])  # doctest: +SKIP
>>> run(x)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from rnnspec.core.noise import ulp_perturbed

__all__ = ["run_file"]


def run_file(written: list[Path], nudge: int | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """Inference with the Keras model in ``written[0]`` (``safe_mode``: only Keras's own classes; not compiled);
    None where Keras or TensorFlow is not installed. Where Keras 3 cannot open or run the file (a Keras 2 file, a
    model name Keras refuses as a scope), the exception Keras raised comes out of this call or of the call of the
    function it returns: the caller says why the original could not be run.

    ``nudge``: a seed; every float32 weight of the opened model is first moved by one ulp (the proofs' noise floor,
    :func:`rnnspec.core.noise.ulp_perturbed`)."""
    if find_spec("keras") is None or find_spec("tensorflow") is None:
        return None
    from .runtime import keras  # TensorFlow chosen as Keras's backend before Keras is imported

    model = keras.saving.load_model(written[0], safe_mode=True, compile=False)
    if nudge is not None:
        values = model.get_weights()
        floats = {str(i): v for i, v in enumerate(values) if v.dtype == np.float32}
        moved = ulp_perturbed(floats, nudge)
        model.set_weights([moved.get(str(i), v) for i, v in enumerate(values)])
    return lambda x: np.asarray(model.predict(x, verbose=0))
