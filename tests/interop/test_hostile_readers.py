"""Round 2 of hostile files for the readers of foreign bytes (issue 20): each file is read within a
budget per file, and every parser exception becomes one located error (exit 1, no traceback)."""

from __future__ import annotations

import io
import json
import re
import struct
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from rnnspec.cli import main
from rnnspec.interop.keras_files import KerasFileError, read_keras_file


def _import(path: Path, tmp_path: Path, capsys) -> str:
    out = tmp_path / "out"
    code = main(["import", str(path), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    assert not out.exists()
    return err


def _lstm(name: str = "lstm", units: int = 4, **extra: object) -> dict:
    cfg = {"name": name, "units": units, "return_sequences": False, "activation": "tanh", "use_bias": True,
           "recurrent_activation": "sigmoid", **extra}  # fmt: skip
    return {"module": "keras.layers", "class_name": "LSTM", "config": cfg}


def _config(layers: list[dict]) -> dict:
    inp = {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 5, 3], "name": "in"}}
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [inp, *layers]}}


def _h5_bytes(build) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


def _keras_zip(path: Path, config: object, weights: bytes | None = None, version: str = "3.15.1") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": version}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", _h5_bytes(lambda f: None) if weights is None else weights)
    return path


# -- datasets counted once ----------------------------------------------------------------------


def test_a_dataset_hard_linked_16_times_is_read_and_charged_once(tmp_path: Path) -> None:
    def build(f: h5py.File) -> None:
        vars_ = f.create_group("layers/lstm/cell/vars")
        vars_.attrs["name"] = "lstm"
        vars_.create_dataset("0", data=np.zeros((4 * 1024, 1024), np.float64), compression="gzip")  # 32 MiB
        for k in range(1, 16):
            vars_[str(k)] = vars_["0"]  # hard links to the same dataset

    path = _keras_zip(tmp_path / "links.keras", _config([_lstm()]), _h5_bytes(build))
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        kfile = read_keras_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kfile.layers[1].weights) == 16
    assert peak < 100 * 1024**2, f"peak {peak:,} bytes: the linked dataset was read more than once"


def test_repeated_weight_names_in_an_h5_are_read_once(tmp_path: Path) -> None:
    path = tmp_path / "rep.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(_config([_lstm()]))
        g = f.create_group("model_weights/lstm")
        g.create_dataset("k", data=np.zeros((4 * 1024, 1024), np.float64), compression="gzip")
        g.attrs["weight_names"] = [b"k"] * 16
    tracemalloc.start()
    try:
        kfile = read_keras_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kfile.layers[1].weights) == 16
    assert peak < 100 * 1024**2


def test_the_file_total_is_budgeted_not_each_dataset(tmp_path: Path) -> None:
    from rnnspec.core.budget import ReadBudget
    from rnnspec.interop import keras_files

    def build(f: h5py.File) -> None:
        vars_ = f.create_group("layers/lstm/cell/vars")
        vars_.attrs["name"] = "lstm"
        for k in range(4):  # four distinct datasets of 8 MiB: 32 MiB in all
            vars_.create_dataset(str(k), data=np.zeros((1024, 1024), np.float64), compression="gzip")

    path = _keras_zip(tmp_path / "many.keras", _config([_lstm()]), _h5_bytes(build))
    with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5"))) as h5:
        kfile = keras_files._kfile(path, "keras", "3", _config([_lstm()]))
        budget = ReadBudget(path, max_bytes=20 * 1024**2, error=KerasFileError)
        with pytest.raises(KerasFileError, match=r"over the 20\.0 MiB one file may use"):
            keras_files._attach_zip_weights(kfile, h5, budget)


# -- parser exceptions located ------------------------------------------------------------------


def _patch_member(path: Path, name: str, local: dict[int, bytes], central: dict[int, bytes]) -> None:
    """Overwrite fields of ``name``'s local header and central directory entry (offsets from each signature)."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, fields, name_at in ((b"PK\x03\x04", local, 30), (b"PK\x01\x02", central, 46)):
        at = data.find(signature)
        while data[at + name_at : at + name_at + len(encoded)] != encoded:
            at = data.find(signature, at + 1)
        for offset, value in fields.items():
            data[at + offset : at + offset + len(value)] = value
    path.write_bytes(bytes(data))


def _deflate64(path: Path) -> None:
    _patch_member(path, "config.json", {8: struct.pack("<H", 9)}, {10: struct.pack("<H", 9)})


def _encrypted(path: Path) -> None:
    _patch_member(path, "config.json", {6: struct.pack("<H", 1)}, {8: struct.pack("<H", 1)})


def _bad_crc(path: Path) -> None:
    _patch_member(path, "config.json", {14: b"\x01\x02\x03\x04"}, {16: b"\x01\x02\x03\x04"})


def _corrupt_deflate(path: Path) -> None:
    config = json.dumps(_config([_lstm()])).encode() * 20
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", config)
        zf.writestr("model.weights.h5", b"")
    data = bytearray(path.read_bytes())
    start = 30 + len("config.json")
    data[start + 5 : start + 40] = b"\xff" * 35  # the deflate stream, not the headers
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_deflate64, _encrypted, _bad_crc, _corrupt_deflate])
def test_zip_defects_are_one_located_error(damage, tmp_path: Path, capsys) -> None:
    path = _keras_zip(tmp_path / "bad.keras", _config([_lstm()]))
    damage(path)
    err = _import(path, tmp_path, capsys)
    assert "bad.keras" in err
    assert len(err.strip().splitlines()) == 1, err


def test_an_odd_keras_version_is_not_a_crash(tmp_path: Path, capsys) -> None:
    path = _keras_zip(tmp_path / "v.keras", _config([{"module": "keras.layers", "class_name": "Foo", "config": {}}]),
                      version="\u00b2.1")  # fmt: skip
    assert "v.keras" in _import(path, tmp_path, capsys)
    assert read_keras_file(path).keras_major == 2


def test_an_hdf5_hard_link_cycle_is_refused(tmp_path: Path, capsys) -> None:
    def build(f: h5py.File) -> None:
        layer = f.create_group("layers/lstm")
        layer.create_group("vars").attrs["name"] = "lstm"
        layer["cell"] = layer  # a hard link back to the layer's own group

    path = _keras_zip(tmp_path / "cycle.keras", _config([_lstm()]), _h5_bytes(build))
    err = _import(path, tmp_path, capsys)
    assert "cycle.keras" in err and "cycle" in err.split("cycle.keras", 1)[1]


def test_anything_but_numbered_weights_in_a_vars_group_is_refused(tmp_path: Path, capsys) -> None:
    """A link in a layer's vars group (here a cycle back to the file's root), which Keras itself refuses to load,
    was skipped by the reader and the file imported (found by the re-attack)."""

    def build(f: h5py.File) -> None:
        vars_ = f.create_group("layers/lstm/cell/vars")
        vars_.attrs["name"] = "lstm"
        for k, shape in enumerate([(3, 16), (4, 16), (16,)]):
            vars_.create_dataset(str(k), data=np.zeros(shape, np.float32))
        vars_["loop"] = f["/"]

    path = _keras_zip(tmp_path / "loop.keras", _config([_lstm()]), _h5_bytes(build))
    err = _import(path, tmp_path, capsys)
    assert "/layers/lstm/cell/vars holds 'loop', not only the numbered weights" in err


def test_a_module_key_nested_80_deep_is_found(tmp_path: Path, capsys) -> None:
    nested: dict = {"module": "evil_pkg.payload", "class_name": "X", "config": {}}
    for _ in range(80):
        nested = {"inner": nested}
    layer = _lstm()
    layer["config"]["kernel_initializer"] = nested
    kfile = read_keras_file(_keras_zip(tmp_path / "deep.keras", _config([layer])))
    assert kfile.foreign_modules == ["evil_pkg.payload"]
    assert "evil_pkg.payload" in _import(tmp_path / "deep.keras", tmp_path, capsys)


def test_a_registered_custom_activation_is_a_refusal(tmp_path: Path, capsys) -> None:
    activation = {
        "module": "builtins",
        "class_name": "function",
        "config": "my_act",
        "registered_name": "Custom>my_act",
    }
    path = _keras_zip(tmp_path / "act.keras", _config([_lstm(activation=activation)]))
    err = _import(path, tmp_path, capsys)
    assert "Custom>my_act" in err


def test_a_20000_layer_refusal_is_short(tmp_path: Path, capsys) -> None:
    layers = [{"module": "keras.layers", "class_name": "Foo", "config": {"name": f"f{i}"}} for i in range(20000)]
    err = _import(_keras_zip(tmp_path / "wide.keras", _config(layers)), tmp_path, capsys)
    assert len(err.strip().splitlines()) <= 25, err[:2000]
    assert re.search(r"\.\.\. and 19,98\d more", err), err[:3000]
