"""Fuzzing the readers of foreign bytes (issue 20): mutated `.keras` zips, `.h5` files, state dicts and
safetensors headers. Each mutation is read or refused with an RnnspecError: never another exception, never
a hang, never an allocation over the file's budget (tracemalloc's peak stays small for these small files).
CI runs a brief pass; ``RNNSPEC_FUZZ_EXAMPLES=5000 python -m pytest tests/interop/test_fuzz_readers.py``
runs a long one."""

from __future__ import annotations

import io
import json
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnspec.core.weights import load_weights_file
from rnnspec.interop.keras_files import read_keras_file
from rnnspec.lang.errors import RnnspecError

EXAMPLES = int(os.environ.get("RNNSPEC_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PEAK = 256 * 1024**2
"""No mutation of these files (a few KB) may make a reader allocate more than this."""


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


def _mutations(size: int):
    """A list of (position, byte) overwrites, plus an optional truncation."""
    edit = st.tuples(st.integers(0, size - 1), st.integers(0, 255))
    return st.tuples(st.lists(edit, min_size=1, max_size=8), st.one_of(st.none(), st.integers(0, size)))


def _mutate(data: bytes, mutation) -> bytes:
    edits, cut = mutation
    out = bytearray(data)
    for at, value in edits:
        out[at] = value
    return bytes(out[:cut] if cut is not None else out)


def _read_within_budget(read, path: Path) -> None:
    tracemalloc.start()
    try:
        read(path)
    except RnnspecError as exc:
        assert str(path) in str(exc) or path.name in str(exc), str(exc)[:300]
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK, f"peak {peak:,} bytes"


KERAS, H5, SAFETENSORS = _keras_bytes(), _h5_bytes(), _safetensors_bytes()


@FUZZ
@given(mutation=_mutations(len(KERAS)))
def test_mutated_keras_zips(mutation, tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes(_mutate(KERAS, mutation))
    _read_within_budget(read_keras_file, path)


@FUZZ
@given(mutation=_mutations(len(H5)))
def test_mutated_h5_files(mutation, tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    path.write_bytes(_mutate(H5, mutation))
    _read_within_budget(read_keras_file, path)


@FUZZ
@given(mutation=_mutations(len(SAFETENSORS)))
def test_mutated_safetensors_headers(mutation, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(_mutate(SAFETENSORS, mutation))
    _read_within_budget(load_weights_file, path)


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
    _read_within_budget(load_weights_file, path)


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
    path.write_bytes(_mutate(raw, data.draw(_mutations(len(raw)))))
    _read_within_budget(read_state_dict, path)
