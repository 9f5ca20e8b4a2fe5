"""The losses :mod:`rnnspec.testing` differentiates on a user's own model: the loss registry's formulas.

Kept for its names; each loss's formula is written once, in :mod:`rnnspec.lang.losses`, over an ops
namespace each framework's driver passes (``backends/torch/ops.py``'s ``LossOps``, the Keras driver's).
"""

from __future__ import annotations

from rnnspec.lang.losses import EPSILON, elementwise_loss

__all__ = ["EPSILON", "elementwise_loss"]
