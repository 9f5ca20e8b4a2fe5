"""RNNSPEC_TEST_BACKENDS (tests/conftest.py): a required backend that cannot import fails the run; others skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ONNX_TESTS = "tests/backends/onnx/test_export_onnx.py"


def _collect(tmp_path: Path, backends: str | None) -> subprocess.CompletedProcess[str]:
    # onnxruntime made unimportable for the child only, as a broken install would be
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['onnxruntime'] = None\n")
    env = {k: v for k, v in os.environ.items() if k != "RNNSPEC_TEST_BACKENDS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    if backends is not None:
        env["RNNSPEC_TEST_BACKENDS"] = backends
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "--collect-only", ONNX_TESTS]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_unset_requires_every_backend_and_a_broken_one_fails_the_run(tmp_path: Path) -> None:
    result = _collect(tmp_path, None)
    assert result.returncode != 0
    assert "backend 'onnx' is required but onnxruntime does not import" in result.stdout + result.stderr


def test_a_backend_left_out_skips_its_tests(tmp_path: Path) -> None:
    result = _collect(tmp_path, "numpy,torch")
    assert result.returncode == 5, result.stdout + result.stderr  # nothing collected: the module skipped
    assert "could not import 'onnxruntime'" in result.stdout


def test_an_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    result = _collect(tmp_path, "numpy,tensorflow")
    assert result.returncode == 4
    assert "tensorflow is not a backend or export format" in result.stderr
    assert "keras, torch, numpy, onnx" in result.stderr
