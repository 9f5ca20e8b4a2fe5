"""A ``.keras`` or ``.h5`` file opened by Keras itself, for the proofs of ``rnnspec export --format keras`` and
``rnnspec import`` (the original model against rnnspec's builds).

>>> run = run_file([Path("model.keras")])  # doctest: +SKIP
>>> run(x)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

    with _scopes_restored():
        model = keras.saving.load_model(written[0], safe_mode=True, compile=False)
    if nudge is not None:
        values = model.get_weights()
        floats = {str(i): v for i, v in enumerate(values) if v.dtype == np.float32}
        moved = ulp_perturbed(floats, nudge)
        model.set_weights([moved.get(str(i), v) for i, v in enumerate(values)])
    inputs = getattr(model, "inputs", None) or []
    fixed = inputs[0].shape[0] if inputs else None  # a batch_shape Input (stateful layers): batches of that size

    def run(x: np.ndarray) -> np.ndarray:
        with _scopes_restored():
            return np.asarray(model.predict(x, batch_size=fixed if isinstance(fixed, int) else None, verbose=0))

    return run


@contextmanager
def _scopes_restored() -> Iterator[None]:
    """Keras's name-scope stack as it was, whatever Keras raised: a model name Keras refuses as a scope raises after
    its scope was pushed, and every variable this process made afterwards carried that name in its path (the
    optimizer's slots of an unrelated model included, which Keras then refused as scope names)."""
    from keras.src.backend.common import global_state

    stack = global_state.get_global_attribute("name_scope_stack")
    depth = len(stack) if stack else 0
    try:
        yield
    finally:
        stack = global_state.get_global_attribute("name_scope_stack")
        if stack:
            del stack[depth:]
