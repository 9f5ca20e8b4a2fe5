"""A .keras file that carries rnnspec's embedded spec is still foreign bytes (issue 20): `rnnspec convert`
and `load_artifact` read it through the reader's budget and checks before Keras sees it, whatever the
spec's convention (the torch convention skipped every check)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import rnnspec
from rnnspec.cli import main

keras_backend = pytest.importorskip("rnnspec_backends.keras.model", reason="the keras backend needs the keras extra")
pytest.importorskip("tensorflow")

SPEC = (
    "rnnspec: 1.1\nname: t\nconvention: torch\ninput: {features: 3}\nrecurrent: [{cell: gru, units: 2}]\n"
    "head: {units: 1}\n"
)


def _artifact(tmp_path: Path) -> Path:
    spec = rnnspec.loads_spec(SPEC)
    model = rnnspec.build(spec, "keras")
    (path,) = keras_backend.BACKEND.save_artifact(model, tmp_path / "out")
    return path


def _rewrite(path: Path, target: Path, config_json: bytes | None = None, extra: dict | None = None) -> Path:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json" and config_json is not None:
                data = config_json
            elif info.filename == "config.json" and extra is not None:
                config = json.loads(data)
                config["config"].update(extra)
                data = json.dumps(config).encode()
            dst.writestr(info.filename, data)
    return target


@pytest.mark.filterwarnings("ignore")
def test_a_deflated_config_bomb_in_a_torch_convention_artifact_is_refused(tmp_path: Path, capsys) -> None:
    path = _artifact(tmp_path)
    with zipfile.ZipFile(path) as zf:
        config = zf.read("config.json")
    bomb = _rewrite(path, tmp_path / "bomb.keras", config_json=config + b" " * (40 * 1024 * 1024))
    assert bomb.stat().st_size < 1_000_000
    code = main(["convert", str(bomb), "--to", "numpy", "-o", str(tmp_path / "conv")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "bomb.keras" in err and "decompression bomb" in err


@pytest.mark.filterwarnings("ignore")
def test_a_foreign_module_in_a_torch_convention_artifact_is_refused(tmp_path: Path) -> None:
    path = _artifact(tmp_path)
    altered = _rewrite(path, tmp_path / "mod.keras", extra={"x": {"module": "evil_pkg", "class_name": "Y"}})
    with pytest.raises(rnnspec.RnnspecError, match=r"mod\.keras: its config names modules outside .*evil_pkg"):
        keras_backend.load_artifact(altered)
