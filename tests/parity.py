"""Shared helpers of the parity tests: available backends, random weights and pre-padded inputs."""

from __future__ import annotations

import importlib.util
import itertools
import random

import numpy as np
import pytest

import rnnspec
from rnnspec import ModelSpec
from rnnspec.core.registry import BackendNotFoundError, MissingFrameworkError

from .conftest import required_backends

FRAMEWORK = {"numpy": "numpy", "torch": "torch", "keras": "tensorflow"}


def backend_or_skip(name: str):
    """The backend ``name``; a test of a backend left out of RNNSPEC_TEST_BACKENDS skips when it is missing."""
    if name in required_backends():
        return rnnspec.get_backend(name)  # required: a missing or broken framework fails the test
    if importlib.util.find_spec(FRAMEWORK[name]) is None:
        pytest.skip(f"{FRAMEWORK[name]} is not installed (pip install 'rnnspec[{name}]')")
    try:
        return rnnspec.get_backend(name)
    except (BackendNotFoundError, MissingFrameworkError) as exc:
        pytest.skip(str(exc))


def random_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Random weights, biases included (constant weights hide gate-order and transpose bugs)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in rnnspec.weight_shapes(spec).items():
        # kernels scaled by 1/sqrt(fan_in) keep wide layers (GRU 256) out of chaotic saturation, where
        # float32 rounding alone would grow past any tolerance
        scale = 1.0 / np.sqrt(shape[0]) if name.endswith("kernel") else 0.5
        out[name] = rng.normal(0.0, scale, size=shape).astype(np.float32)
        if name.endswith("/moving_variance"):  # a batch_norm's variance is positive
            out[name] = (np.abs(out[name]) + 0.2).astype(np.float32)
    return out


def random_inputs(spec: ModelSpec, seed: int, batch: int = 5, time: int = 9) -> np.ndarray:
    """Token ids pre-padded with 0 to variable lengths (one row empty, one full), or features."""
    rng = np.random.default_rng(seed)
    time = spec.input.seq_len or time
    if spec.input.vocab_size is None:
        x = rng.normal(size=(batch, time, spec.input.features)).astype(np.float32)
        if spec.input.mask_value is not None:
            # pre-padded with the mask value (one row full, one empty), a hole in the last row, and a step
            # where only some features equal the mask value (not masked)
            lengths = [time, 0, *rng.integers(1, time + 1, size=batch - 2)]
            for row, length in enumerate(lengths):
                x[row, : time - length] = spec.input.mask_value
            x[-1, time // 2] = spec.input.mask_value
            x[0, 0, 0] = spec.input.mask_value
        return x
    ids = (
        rng.integers(1, spec.input.vocab_size, size=(batch, time))
        if spec.input.vocab_size > 1
        else np.ones((batch, time), dtype=np.int64)
    )
    lengths = [time, 0, *rng.integers(1, time + 1, size=batch - 2)]
    for row, length in enumerate(lengths):
        ids[row, : time - length] = 0
    return ids


AXES = {
    "cell": ["simple_rnn", "lstm", "gru"],
    "convention": ["keras", "torch"],
    "bidirectional": [False, True],
    "merge_mode": ["concat", "sum", "mul", "ave"],
    "return_sequences": [False, True],
    "mask_zero": [False, True],
    "go_backwards": [False, True],
    "head": ["none", "sigmoid", "softmax", "linear", "stack"],
    "depth": [1, 2],
    "input": ["ids", "masked_features"],
    "dropout_layers": [False, True],
}


def matrix_spec(case: dict) -> ModelSpec:
    """A spec for one point of the parity matrix."""
    top = {
        "cell": case["cell"],
        "units": 4,
        "return_sequences": case["return_sequences"],
        "bidirectional": case["bidirectional"],
        "merge_mode": case["merge_mode"],
        "go_backwards": case["go_backwards"] and not case["bidirectional"],
    }
    if case["cell"] == "gru":
        top["reset_after"] = case.get("reset_after", True)
    stack = [top]
    if case["depth"] == 2:
        other = {"simple_rnn": "gru", "lstm": "simple_rnn", "gru": "lstm"}[case["cell"]]
        stack.insert(
            0,
            {
                "cell": other,
                "units": 3,
                "return_sequences": True,
                "bidirectional": case["bidirectional"],
                "merge_mode": case["merge_mode"],
            },
        )
    if case.get("dropout_layers"):
        # inference: identity, so parity holds with any rate; the names shift nothing
        stack = [{"spatial_dropout": 0.3}, *stack, {"dropout": 0.5}]
    data: dict = {
        "rnnspec": 1.1,
        "name": "matrix",
        "convention": case["convention"],
        "recurrent": stack,
    }
    if case.get("input", "ids") == "ids":
        data["input"] = {"vocab_size": 13}
        data["embedding"] = {"output_dim": 5, "mask_zero": case["mask_zero"]}
    else:
        data["input"] = {"features": 5, "mask_value": 0.0}
    head = case["head"]
    if head == "stack":
        data["head"] = [{"units": 4, "activation": "gelu"}, {"dropout": 0.2}, {"units": 3, "activation": "softmax"}]
    elif head != "none":
        data["head"] = {"units": 1 if head == "sigmoid" else 3, "activation": head}
    return rnnspec.spec_from_dict(data)


def matrix_cases(full: bool, sample: int = 28, seed: int = 7) -> list[dict]:
    """Every point of the matrix, or a fixed sample that still covers every value of every axis."""
    keys = list(AXES)
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*AXES.values())]
    points = [p for p in points if p["bidirectional"] or p["merge_mode"] == "concat"]
    points = [p for p in points if p["input"] == "ids" or not p["mask_zero"]]
    if full:
        return points
    rng = random.Random(seed)
    chosen: list[dict] = []
    for key, values in AXES.items():
        for value in values:
            chosen.append(rng.choice([p for p in points if p[key] == value]))
    chosen += rng.sample(points, max(0, sample - len(chosen)))
    unique = {tuple(p.values()): p for p in chosen}
    return list(unique.values())


def case_id(case: dict) -> str:
    parts = [
        case["cell"],
        case["convention"],
        "bi-" + case["merge_mode"] if case["bidirectional"] else "uni",
        "seq" if case["return_sequences"] else "last",
        "mask" if case["mask_zero"] else "nomask",
        "back" if case["go_backwards"] else "fwd",
        f"head-{case['head']}",
        f"depth{case['depth']}",
    ]
    if case.get("input") == "masked_features":
        parts[4] = "maskvalue"
    if case.get("dropout_layers"):
        parts.append("dropouts")
    return "-".join(parts)
