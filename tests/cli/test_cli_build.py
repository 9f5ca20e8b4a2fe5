"""`rnnspec build` and `rnnspec convert` end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.core import registry
from rnnspec.core.registry import BackendEntry
from tests.conftest import REPO, SPECS
from tests.parity import backend_or_skip, random_inputs


@pytest.mark.parametrize("backend", ["numpy", "torch", "keras"])
def test_build_prints_the_summary_and_writes_artifacts(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    backend_or_skip(backend)
    assert main(["build", str(SPECS / "imdb_lstm.yaml"), "--backend", backend, "--seed", "3", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "328,353" in out and f"parameter counts: {backend} model 328,353 = analytic 328,353" in out
    weights = tmp_path / "imdb-lstm.weights.safetensors"
    assert f"wrote {weights}" in out
    loaded = rnnspec.load_weights(weights)
    expected = rnnspec.initial_weights(rnnspec.load_spec(SPECS / "imdb_lstm.yaml"), 3)
    assert all(np.array_equal(loaded[k], expected[k]) for k in expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_build_with_weights_file_and_convert_between_frameworks(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    spec = rnnspec.load_spec(SPECS / "reuters_gru.yaml")
    assert (
        main(["build", str(SPECS / "reuters_gru.yaml"), "-b", "torch", "--seed", "5", "-o", str(tmp_path / "t")]) == 0
    )
    artifact = tmp_path / "t" / "reuters-gru.torch.safetensors"
    targets = ["numpy", "torch"] + (["keras"] if _has("keras") else [])
    for target in targets:
        assert main(["convert", str(artifact), "--to", target, "-o", str(tmp_path / target)]) == 0
        converted = rnnspec.load_weights(tmp_path / target / "reuters-gru.weights.safetensors", spec=spec)
        expected = rnnspec.initial_weights(spec, 5)
        assert all(np.array_equal(converted[k], expected[k]) for k in expected), target
    if "keras" in targets:
        keras_file = tmp_path / "keras" / "reuters-gru.keras"
        assert main(["convert", str(keras_file), "--to", "torch", "-o", str(tmp_path / "back")]) == 0
        back = rnnspec.load_weights(tmp_path / "back" / "reuters-gru.weights.safetensors")
        assert all(np.array_equal(back[k], rnnspec.initial_weights(spec, 5)[k]) for k in back)
    capsys.readouterr()
    assert (
        main(
            [
                "build",
                str(SPECS / "reuters_gru.yaml"),
                "-b",
                "numpy",
                "--weights",
                str(tmp_path / "numpy" / "reuters-gru.weights.safetensors"),
            ]
        )
        == 0
    )


def _has(backend: str) -> bool:
    try:
        backend_or_skip(backend)
    except pytest.skip.Exception:
        return False
    return True


def test_build_with_mismatched_weights_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    weights = tmp_path / "w.safetensors"
    rnnspec.save_weights(rnnspec.initial_weights(rnnspec.load_spec(SPECS / "imdb_lstm.yaml"), 0), weights)
    assert main(["build", str(SPECS / "reuters_gru.yaml"), "-b", "numpy", "--weights", str(weights)]) == 1
    err = capsys.readouterr().err
    assert "do not fit spec 'reuters-gru'" in err and "Traceback" not in err


def test_convert_refuses_a_foreign_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    junk = tmp_path / "x.safetensors"
    junk.write_bytes(b"junk")
    assert main(["convert", str(junk), "--to", "numpy", "-o", str(tmp_path / "o")]) == 1
    assert "not a readable safetensors file" in capsys.readouterr().err


def test_missing_framework_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setitem(
        registry.BUILTIN_BACKENDS,
        "torch",
        BackendEntry("no_such_framework_abc.backend:BACKEND", "torch", ("no_such_framework_abc",)),
    )
    assert main(["build", str(SPECS / "imdb_lstm.yaml"), "-b", "torch"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'rnnspec[torch]'" in err


def test_build_keras_keeps_the_terminal_clean():
    backend_or_skip("keras")
    result = subprocess.run(
        [sys.executable, "-m", "rnnspec", "build", "specs/imdb_simplernn.yaml", "-b", "keras"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "322,113" in result.stdout


def test_predict_checks_its_input():
    model = rnnspec.build(SPECS / "imdb_lstm.yaml", "numpy", seed=0)
    with pytest.raises(rnnspec.RnnspecError, match="token ids must lie in"):
        rnnspec.predict(model, np.full((1, 500), 10_000))
    with pytest.raises(rnnspec.RnnspecError, match="expected 500 time steps"):
        rnnspec.predict(model, np.ones((1, 20), dtype=np.int64))
    assert rnnspec.predict(model, random_inputs(model.spec, 0, batch=2)).shape == (2, 1)


def test_written_files_get_ordinary_permissions(tmp_path: Path):
    import os

    from rnnspec.util import write_text_atomic

    write_text_atomic(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_build_resolves_its_backend_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    loads: list[str] = []
    load = registry._load

    def counting(name, entry, what, target=None):
        loads.append(f"{what} {name}")
        return load(name, entry, what, target)

    monkeypatch.setattr(registry, "_load", counting)
    assert main(["build", str(SPECS / "imdb_lstm.yaml"), "--backend", "numpy"]) == 0
    assert loads == ["backend numpy"]


def test_convert_refuses_an_artifact_holding_nan_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("keras")
    spec_path = SPECS / "reuters_gru.yaml"
    weights = rnnspec.initial_weights(rnnspec.load_spec(spec_path), 5)
    name = sorted(weights)[0]
    weights[name].flat[:2] = np.nan
    rnnspec.save_weights(weights, tmp_path / "nan.safetensors", rnnspec.load_spec(spec_path))
    build = ["build", str(spec_path), "-b", "keras", "--weights", str(tmp_path / "nan.safetensors"), "-o"]
    assert main([*build, str(tmp_path / "k"), "--allow-nonfinite"]) == 0
    artifact = tmp_path / "k" / "reuters-gru.keras"  # a Keras artifact: read by Keras, not as a weights file
    capsys.readouterr()
    assert main(["convert", str(artifact), "--to", "numpy", "-o", str(tmp_path / "n")]) == 1
    err = capsys.readouterr().err
    assert f"1 weight(s) hold NaN or infinite values: {name} (2 of {weights[name].size:,} values)" in err, err
    assert not (tmp_path / "n").exists()
    assert main(["convert", str(artifact), "--to", "numpy", "-o", str(tmp_path / "n"), "--allow-nonfinite"]) == 0
