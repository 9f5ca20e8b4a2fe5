"""Hostile and broken files given to `rnnspec import`: a clear error, exit 1, nothing written, no traceback."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from rnnspec.cli import main


def _import(path: Path, tmp_path: Path, capsys) -> str:
    out = tmp_path / "out"
    code = main(["import", str(path), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    assert not out.exists()
    return err


def _keras_zip(path: Path, config: object, *, weights: bytes = b"", compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", config if isinstance(config, (str, bytes)) else json.dumps(config))
        zf.writestr("model.weights.h5", weights)
    return path


def test_a_config_that_inflates_a_thousandfold_is_refused_before_reading(tmp_path: Path, capsys) -> None:
    bomb = b'{"a": "' + b" " * (50 * 1024 * 1024) + b'"}'
    path = _keras_zip(tmp_path / "bomb.keras", bomb, compress=zipfile.ZIP_DEFLATED)
    assert "decompression bomb" in _import(path, tmp_path, capsys)


def test_deeply_nested_json_is_an_error_not_a_crash(tmp_path: Path, capsys) -> None:
    path = _keras_zip(tmp_path / "deep.keras", "[" * 100000 + "]" * 100000)
    assert "not valid JSON" in _import(path, tmp_path, capsys)


@pytest.mark.parametrize(
    "config",
    [
        {"class_name": "Sequential"},
        {"class_name": "Sequential", "config": {"layers": "no"}},
        {"class_name": "Sequential", "config": {"layers": [3]}},
        [1, 2],
    ],
    ids=["no_config", "layers_not_a_list", "layer_not_an_object", "not_an_object"],
)
def test_malformed_configs_are_errors(config: object, tmp_path: Path, capsys) -> None:
    path = _keras_zip(tmp_path / "m.keras", config)
    assert "m.keras" in _import(path, tmp_path, capsys)


def test_weights_that_are_not_hdf5(tmp_path: Path, capsys) -> None:
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
    path = _keras_zip(tmp_path / "m.keras", config, weights=b"not hdf5 at all")
    assert "not a readable HDF5 file" in _import(path, tmp_path, capsys)


def test_truncated_and_foreign_files(tmp_path: Path, capsys) -> None:
    good = _keras_zip(tmp_path / "g.keras", {"class_name": "Sequential", "config": {"layers": []}})
    (tmp_path / "cut.keras").write_bytes(good.read_bytes()[:40])
    assert "cut.keras" in _import(tmp_path / "cut.keras", tmp_path, capsys)
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a model file rnnspec reads" in _import(tmp_path / "notes.txt", tmp_path, capsys)
    assert "no such file" in _import(tmp_path / "missing.keras", tmp_path, capsys)
