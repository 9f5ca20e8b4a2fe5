"""A padding id other than 0 (``embedding.padding_idx``) on Keras's own ``Embedding``.

Keras's ``Embedding(mask_zero=True)`` masks id 0 only. For PyTorch's padding id (torchtext's ``<pad>`` is 1) the
layer stays Keras's ``Embedding`` (``mask_zero=False``, so the same weights and config), and its ``compute_mask``
is replaced on the instance by ``ids != padding_idx``: every layer after it sees the mask as Keras computes it
from ``mask_zero``. Keras does not serialize the replacement; :func:`mask_padding_id` is applied again when rnnspec
loads its own artifact (the spec inside says the id), and a plain ``.keras`` export of such a spec is refused.
"""

from __future__ import annotations

from typing import Any

from .runtime import ops

__all__ = ["mask_padding_id"]


def mask_padding_id(layer: Any, padding_id: int) -> Any:
    """Make the Keras ``Embedding`` ``layer`` mask the steps whose id is ``padding_id``; returns ``layer``."""

    def compute_mask(inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs, padding_id)

    layer.compute_mask = compute_mask
    layer.supports_masking = True
    layer.rnnspec_padding_id = padding_id
    return layer
