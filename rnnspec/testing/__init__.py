"""Conformance testing of the models people write by hand: is my Keras model the same as my PyTorch module?

>>> from rnnspec.testing import assert_equivalent
>>> assert_equivalent(keras_model, MyTorchModule(), "spec.yaml")  # doctest: +SKIP

One set of weights goes into both; the outputs on the inputs that break ports (padding before, after and
inside a row, a fully padded row, length 1) and the gradient of every weight are compared; a difference is
explained by the porting mistake that reproduces it (:mod:`rnnspec.testing.mistakes`). No framework is
imported here: the models are driven through the backends.
"""

from __future__ import annotations

from rnnspec.testing.equivalence import ConformanceWarning, Report, Row, assert_equivalent, compare

__all__ = ["ConformanceWarning", "Report", "Row", "assert_equivalent", "compare"]
