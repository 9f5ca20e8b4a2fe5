"""Fuzzing the readers of foreign bytes (issue 20): mutated `.keras` zips, `.h5` files, state dicts and
safetensors headers. Each mutation is read or refused with an RnnspecError: never another exception, never
a hang, never an allocation over the file's budget (tests/fuzzing.py watches tracemalloc and the peak resident set).
CI runs a brief pass; ``RNNSPEC_FUZZ_EXAMPLES=5000 python -m pytest tests/interop/test_fuzz_readers.py``
runs a long one."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnspec.core.weights import load_weights_file
from rnnspec.interop.keras_files import read_keras_file
from tests.fuzzing import mutate, mutations, read_within_budget

EXAMPLES = int(os.environ.get("RNNSPEC_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _config() -> dict:
    lstm = {"module": "keras.layers", "class_name": "LSTM", "config": {"name": "lstm", "units": 2}}
    inp = {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4, 3], "name": "i"}}
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [inp, lstm]}}


def _h5_weights(f: h5py.File) -> None:
    vars_ = f.create_group("layers/lstm/cell/vars")
    vars_.attrs["name"] = "lstm"
    for k, shape in enumerate([(3, 8), (2, 8), (8,)]):
        vars_.create_dataset(str(k), data=np.ones(shape, np.float32))


def _keras_bytes() -> bytes:
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        _h5_weights(f)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(_config()))
        zf.writestr("model.weights.h5", weights.getvalue())
    return out.getvalue()


def _h5_bytes() -> bytes:
    out = io.BytesIO()
    with h5py.File(out, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(_config())
        g = f.create_group("model_weights/lstm")
        for name, shape in (("k", (3, 8)), ("r", (2, 8)), ("b", (8,))):
            g.create_dataset(name, data=np.ones(shape, np.float32))
        g.attrs["weight_names"] = [b"k", b"r", b"b"]
    return out.getvalue()


def _safetensors_bytes() -> bytes:
    header = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
              "b": {"dtype": "F16", "shape": [2], "data_offsets": [16, 20]}}  # fmt: skip
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 20


KERAS, H5, SAFETENSORS = _keras_bytes(), _h5_bytes(), _safetensors_bytes()


@FUZZ
@given(mutation=mutations(len(KERAS)))
def test_mutated_keras_zips(mutation, tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes(mutate(KERAS, mutation))
    read_within_budget(read_keras_file, path)


@FUZZ
@given(mutation=mutations(len(H5)))
def test_mutated_h5_files(mutation, tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    path.write_bytes(mutate(H5, mutation))
    read_within_budget(read_keras_file, path)


@FUZZ
@given(mutation=mutations(len(SAFETENSORS)))
def test_mutated_safetensors_headers(mutation, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(mutate(SAFETENSORS, mutation))
    read_within_budget(load_weights_file, path)


_KEYS = st.sampled_from(["dtype", "shape", "data_offsets", "a"])
_LEAVES = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
_VALUES = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4), max_leaves=12
)


@FUZZ
@given(header=_VALUES)
def test_arbitrary_safetensors_header_values(header, tmp_path: Path) -> None:
    raw = json.dumps({"a": header}).encode()
    path = tmp_path / "h.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 16)
    read_within_budget(load_weights_file, path)


@FUZZ
@given(data=st.data())
def test_mutated_state_dicts(data, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from rnnspec_backends.torch.io import read_state_dict

    good = tmp_path / "good.pt"
    if not good.exists():
        torch.save({"w": torch.ones(3, 4), "b": torch.zeros(4)}, good)
    raw = good.read_bytes()
    path = tmp_path / "m.pt"
    path.write_bytes(mutate(raw, data.draw(mutations(len(raw)))))
    read_within_budget(read_state_dict, path)
