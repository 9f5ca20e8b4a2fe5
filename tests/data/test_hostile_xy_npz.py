"""An .npz of x/y whose .npy header declares a shape far beyond the bytes it stores, given to
`rnnspec train --data` (issue 20, left open by round 1): refused from the header, before NumPy allocates."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

SPEC = (
    "rnnspec: 1.1\nname: t\ninput: {features: 10}\nrecurrent: [{cell: gru, units: 2}]\n"
    "head: {units: 1, activation: sigmoid}\n"
    "training: {optimizer: adam, loss: binary_crossentropy}\n"
)


def _npy(shape: tuple[int, ...], payload: bytes, descr: str = "<f4") -> bytes:
    fp = io.BytesIO()
    np.lib.format.write_array_header_1_0(fp, {"descr": descr, "fortran_order": False, "shape": shape})
    return fp.getvalue() + payload


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_a_huge_header_shape_is_refused_on_the_train_path(compression: int, tmp_path: Path) -> None:
    path = tmp_path / "xy.npz"
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr("x.npy", _npy((10**11, 10), b"\0" * 64))
        zf.writestr("y.npy", _npy((2,), b"\0" * 8))
    assert path.stat().st_size < 1024
    (tmp_path / "s.yaml").write_text(SPEC)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnspec",
            "train",
            str(tmp_path / "s.yaml"),
            "--data",
            str(path),
            "-o",
            str(tmp_path / "run"),
            "--epochs",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "xy.npz" in result.stderr and "header does not match its data" in result.stderr


def _patch_headers(path: Path, local: dict[int, bytes], central: dict[int, bytes]) -> None:
    data = bytearray(path.read_bytes())
    for signature, fields in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = data.find(signature)
        while at >= 0:
            for offset, value in fields.items():
                data[at + offset : at + offset + len(value)] = value
            at = data.find(signature, at + 1)
    path.write_bytes(bytes(data))


def _corrupt_stream(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = data.find(b"x.npy") + len("x.npy")
    data[start + 200 : start + 260] = b"\xff" * 60
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: _patch_headers(p, {8: struct.pack("<H", 9)}, {10: struct.pack("<H", 9)}),  # deflate64
        lambda p: _patch_headers(p, {6: struct.pack("<H", 1)}, {8: struct.pack("<H", 1)}),  # encrypted
        _corrupt_stream,
    ],
    ids=["deflate64", "encrypted", "corrupt_deflate"],
)
def test_zip_defects_in_an_xy_npz_are_data_errors(damage, tmp_path: Path) -> None:
    from rnnspec.data import DataError
    from rnnspec.data.arrays import read_xy_npz

    path = tmp_path / "xy.npz"
    np.savez_compressed(path, x=np.arange(4000, dtype=np.float32).reshape(400, 10), y=np.zeros(400))
    damage(path)
    with pytest.raises(DataError, match=r"xy\.npz: not a readable \.npz file"):
        read_xy_npz(path)


def test_a_corrupt_member_of_a_keras_dataset_file_is_a_data_error(tmp_path: Path) -> None:
    from rnnspec.data import DataError
    from rnnspec.data.keras_datasets import read_keras_npz

    path = tmp_path / "reuters.npz"
    np.savez_compressed(path, x=np.arange(4000, dtype=np.int64), y=np.zeros(4000, np.int64))
    _corrupt_stream(path)
    with pytest.raises(DataError, match=r"reuters\.npz: not a readable \.npz file"):
        read_keras_npz(path)
