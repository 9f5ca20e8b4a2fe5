"""Fuzzing the data readers (issue 20): mutated `.npz` files of `x`/`y` (read whole, and read a batch at a time
from the file, where no CRC is checked) and mutated `.npy`/`.npz` inputs to predict on. Each is read or refused
with an RnnspecError: never another exception, never a hang, never an allocation over the budget. CI runs a brief
pass; ``RNNSPEC_FUZZ_EXAMPLES=5000`` runs a long one (docs/development.md)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnspec.data import arrays as arrays_module
from rnnspec.data.arrays import read_input_array, read_xy_npz
from tests.fuzzing import mutate, mutations, read_within_budget

FUZZ = settings(
    max_examples=int(os.environ.get("RNNSPEC_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _npz(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


X = np.arange(6 * 5, dtype=np.int32).reshape(6, 5)
XY = _npz(x=X, y=np.arange(6, dtype=np.float32))
NPY = io.BytesIO()
np.save(NPY, X.astype(np.float32))


def _every_row(read):
    """The reader, then every row it gives (rows read on demand are only read here)."""

    def run(path: Path) -> None:
        result = read(path)
        for part in result if isinstance(result, tuple) else (result,):
            np.asarray(part[: len(part)])

    return run


@FUZZ
@given(mutation=mutations(len(XY)), on_demand=st.booleans())
def test_mutated_xy_npz(mutation, on_demand: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if on_demand:  # x read a batch at a time from the file, as a large x is
        monkeypatch.setattr(arrays_module, "LAZY_BYTES", 1)
    path = tmp_path / "d.npz"
    path.write_bytes(mutate(XY, mutation))
    read_within_budget(_every_row(read_xy_npz), path)


@FUZZ
@given(mutation=mutations(len(NPY.getvalue())), zipped=st.booleans())
def test_mutated_inputs_to_predict_on(mutation, zipped: bool, tmp_path: Path) -> None:
    raw = _npz(x=X.astype(np.float32)) if zipped else NPY.getvalue()
    path = tmp_path / ("i.npz" if zipped else "i.npy")
    path.write_bytes(mutate(raw, (mutation[0], mutation[1]))[: len(raw)])
    read_within_budget(_every_row(read_input_array), path)


def test_an_on_demand_member_whose_sizes_disagree_is_refused(tmp_path: Path, monkeypatch) -> None:
    """The rows of a large x are read straight from the file, where no CRC is checked: a directory entry whose
    stored size was edited (zipfile itself only notices at the member's end) is refused, not read."""
    from rnnspec.lang.errors import RnnspecError

    monkeypatch.setattr(arrays_module, "LAZY_BYTES", 1)
    raw = bytearray(XY)
    entry = raw.index(b"PK\x01\x02")  # the directory entry of the first member, x.npy
    assert raw[entry + 46 : entry + 51] == b"x.npy"
    raw[entry + 20 : entry + 24] = (int.from_bytes(raw[entry + 20 : entry + 24], "little") + 8).to_bytes(4, "little")
    path = tmp_path / "d.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(RnnspecError, match="local header disagrees"):
        read_xy_npz(path)


def test_an_npy_header_numpy_cannot_tokenize_is_refused(tmp_path: Path) -> None:
    """Found by the fuzzer: a zero byte inside the header dict made NumPy's parser raise tokenize.TokenError."""
    from rnnspec.lang.errors import RnnspecError

    raw = bytearray(NPY.getvalue())
    raw[10] = 0
    path = tmp_path / "i.npy"
    path.write_bytes(bytes(raw))
    with pytest.raises(RnnspecError, match=r"not a valid \.npy array"):
        read_input_array(path)
