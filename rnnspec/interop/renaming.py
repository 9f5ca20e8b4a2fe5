"""Canonical weights of an imported model put under the layer names of the spec that describes it."""

from __future__ import annotations

import numpy as np

from rnnspec.core.budget import cap_lines
from rnnspec.interop.errors import ImportError_
from rnnspec.lang.spec import ModelSpec

__all__ = ["rename_weights"]


def rename_weights(
    imported: ModelSpec, weights: dict[str, np.ndarray], target: ModelSpec, source: str
) -> dict[str, np.ndarray]:
    """``weights`` of ``imported`` under ``target``'s layer names, after checking both describe one model."""
    ours = imported.stack()
    theirs = target.stack()
    problems: list[str] = []
    if len(ours) != len(theirs):
        problems.append(
            f"{len(ours)} layers in the file ({', '.join(n for n, _ in ours)}), "
            f"{len(theirs)} in the spec ({', '.join(n for n, _ in theirs)})"
        )
    for (a_name, a), (b_name, b) in zip(ours, theirs, strict=False):
        # a pretrained table's file (embedding.weights) says how the weights started, not what the layer computes
        a_fields = a.model_dump(exclude={"name", *a.initialisation_fields})
        b_fields = b.model_dump(exclude={"name", *b.initialisation_fields})
        if type(a) is not type(b):
            problems.append(f"{a_name} is a {a.keras_class} in the file, {b_name} a {b.keras_class} in the spec")
        elif a_fields != b_fields:
            diff = [f"{k}: {a_fields[k]!r} in the file, {b_fields.get(k)!r} in the spec"
                    for k in a_fields if a_fields[k] != b_fields.get(k)]  # fmt: skip
            problems.append(f"{a_name} / {b_name}: " + "; ".join(diff))
    if imported.input != target.input and not problems:
        problems.append(f"input {imported.input.model_dump()} in the file, {target.input.model_dump()} in the spec")
    if problems:
        raise ImportError_(
            f"{source}: the spec does not describe the model in the file:\n  "
            + "\n  ".join(cap_lines(problems, indent=""))
            + "\n  fix: import without --spec to use the file's own architecture"
        )
    renamed = {}
    for (a_name, _), (b_name, _) in zip(ours, theirs, strict=True):
        prefix = f"{a_name}/"
        renamed |= {f"{b_name}/{k[len(prefix) :]}": v for k, v in weights.items() if k.startswith(prefix)}
    if target.convention != imported.convention:
        raise ImportError_(f"{source}: the spec is in the {target.convention} convention; Keras files are in keras")
    return renamed
