"""Property-based fuzzing of what rnnspec reads: spec bytes, safetensors headers, data files, .npz members.

The property: any input ends in a result or in rnnspec's own error (never another exception,
never a hang). CI runs a brief pass; ``RNNSPEC_FUZZ_EXAMPLES=5000 python -m pytest tests/lang/test_fuzz.py``
runs a long one.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnspec import ModelSpec, RnnspecError
from rnnspec.core.weights import load_weights_file
from rnnspec.lang.loader import loads_spec
from rnnspec.lang.source import parse_bytes
from tests.conftest import REPO

EXAMPLES = int(os.environ.get("RNNSPEC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SEED_SPEC = (REPO / "specs" / "bilstm_dropout.yaml").read_bytes()

_yaml_atoms = st.sampled_from(
    [b"rnnspec: 1\n", b"name: x\n", b"input: {features: 3}\n", b"recurrent: [{cell: lstm, units: 4}]\n",
     b"head: {units: 1}\n", b"&a [1, *a]\n", b"!!python/object:os.system\n", b"- ", b": ", b"{", b"}", b"[", b"]",
     b"\t", b"\x00", b"\xff", b"1:30", b"0x10", b"9" * 60, b".nan", b"'", b'"', b"*a", b"&a ", b"---\n", b"...\n"]
)  # fmt: skip


def _spec_or_error(raw: bytes) -> None:
    try:
        source = parse_bytes(raw, file="fuzz.yaml")
        result = loads_spec(raw.decode("utf-8", "replace"), file="fuzz.yaml") if source.data is not None else None
    except RnnspecError:
        return
    assert result is None or isinstance(result, ModelSpec)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_as_a_spec(raw: bytes) -> None:
    _spec_or_error(raw)


@FUZZ
@given(st.lists(_yaml_atoms, max_size=30))
def test_yaml_shaped_garbage_as_a_spec(parts: list[bytes]) -> None:
    _spec_or_error(b"".join(parts))


@FUZZ
@given(st.integers(0, len(SEED_SPEC) - 1), st.binary(min_size=1, max_size=8))
def test_a_shipped_spec_with_a_few_bytes_replaced(at: int, junk: bytes) -> None:
    _spec_or_error(SEED_SPEC[:at] + junk + SEED_SPEC[at + len(junk) :])


_dtype = st.sampled_from(["F32", "F16", "BF16", "F64", "I64", "BOOL", "U8", "F8_E4M3", "X"])
_shape = st.lists(st.integers(-2, 6), max_size=3)
_entry = st.fixed_dictionaries(
    {"dtype": _dtype, "shape": _shape, "data_offsets": st.lists(st.integers(-4, 64), min_size=0, max_size=3)}
)
_header = st.dictionaries(st.text(max_size=6), st.one_of(_entry, st.integers(), st.text(max_size=4)), max_size=4)


@FUZZ
@given(_header, st.binary(max_size=64), st.integers(-8, 8))
def test_safetensors_headers(tmp_path_factory, header: dict, payload: bytes, length_error: int) -> None:
    raw = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("st") / "w.safetensors"
    path.write_bytes(struct.pack("<Q", max(0, len(raw) + length_error)) + raw + payload)
    try:
        tensors, metadata = load_weights_file(path)
    except RnnspecError:
        return
    assert all(t.dtype.name == "float32" for t in tensors.values()) and isinstance(metadata, dict)


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9])
def test_tiny_files_as_weights(size: int, tmp_path: Path) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"\xff" * size)
    with pytest.raises(RnnspecError):
        load_weights_file(tmp_path / "w.safetensors")


_FEATURES = "rnnspec: 1.1\nname: f\ninput: {features: 2}\nrecurrent: [{cell: lstm, units: 2}]\nhead: {units: 1}\n"
_TEXT = (
    "rnnspec: 1.1\nname: t\ninput: {vocab_size: 30, seq_len: 4}\nembedding: {output_dim: 2}\n"
    "recurrent: [{cell: lstm, units: 2}]\nhead: {units: 1, activation: sigmoid}\n"
    "training: {loss: binary_crossentropy}\n"
)
_jsonl_atoms = st.sampled_from(
    ['{"x": [[1, 2]], "y": 1}', '{"text": "good", "label": 1}', '{"x": [[1e400, 2]], "y": 0}', '{"x": [', "[]",
     '{"label": 99999999999999999999, "text": "a"}', '{"x": [[1, 2], [3]], "y": 1}', '{"y": "NaN", "x": [[1,2]]}',
     "\ufeff", "\x00", '{"text": 5, "label": "b"}', "text,label", "a,0.5", '"', ",", "\n"]
)  # fmt: skip


@FUZZ
@given(
    st.lists(_jsonl_atoms, max_size=12), st.sampled_from([(".jsonl", _FEATURES), (".jsonl", _TEXT), (".csv", _TEXT)])
)
def test_data_files(tmp_path_factory, parts: list[str], kind: tuple[str, str]) -> None:
    import rnnspec

    suffix, spec_text = kind
    path = tmp_path_factory.mktemp("d") / f"data{suffix}"
    path.write_text("\n".join(parts), encoding="utf-8")
    try:
        rnnspec.load_data(rnnspec.loads_spec(spec_text), str(path))
    except RnnspecError:
        return


_RECONSTRUCT = (np._core.multiarray if hasattr(np, "_core") else np.core.multiarray)._reconstruct


class _State:
    """Pickles like a NumPy array whose state (shape, dtype, items) is whatever the fuzzer drew."""

    def __init__(self, shape: tuple[int, ...], dtype: str, items: object):
        self.shape, self.dtype, self.items = shape, np.dtype(dtype), items

    def __reduce__(self):
        return (_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.items))


_shapes = st.lists(st.sampled_from([0, 1, 2, 3, 7, 10**6, 10**12, -1]), max_size=3).map(tuple)
_items = st.recursive(
    st.one_of(st.integers(-(2**70), 2**70), st.none(), st.text(max_size=3), st.binary(max_size=8), st.floats()),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)
_members = st.one_of(
    st.binary(max_size=64),  # raw garbage after a valid header
    st.builds(
        lambda s, d, i: pickle.dumps(_State(s, d, i), protocol=2), _shapes, st.sampled_from(["O", "<i8", "<f4"]), _items
    ),
)


@FUZZ
@given(_shapes, st.sampled_from(["|O", "<i8", "<i4", "<f4", "|b1", ">i4", "<U3"]), _members, st.booleans())
def test_keras_npz_members(tmp_path_factory, header_shape, descr: str, payload: bytes, as_x: bool) -> None:
    """A Keras-dataset .npz whose x or y member is a fuzzed .npy: a result or a DataError, never a crash."""
    import io
    import zipfile

    from rnnspec.data.keras_datasets import read_keras_npz

    fp = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        fp, {"descr": descr, "fortran_order": False, "shape": tuple(max(d, 0) for d in header_shape)}
    )
    fuzzed = fp.getvalue() + payload
    good = io.BytesIO()
    np.save(good, np.arange(2, dtype=np.int64))
    path = tmp_path_factory.mktemp("npz") / "reuters.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", fuzzed if as_x else good.getvalue())
        zf.writestr("y.npy", good.getvalue() if as_x else fuzzed)
    try:
        read_keras_npz(path, "reuters")
    except RnnspecError:
        return
