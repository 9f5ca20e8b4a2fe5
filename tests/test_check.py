"""`rnnspec check`: the conformance report passes on shipped specs and fails loudly on a broken backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main

from .conftest import SPECS
from .parity import backend_or_skip


@pytest.fixture(autouse=True)
def _frameworks():
    backend_or_skip("torch")
    backend_or_skip("keras")


@pytest.mark.parametrize("stem", ["char_rnn_hello", "embedding_simplernn8"])
def test_check_passes_and_plots(stem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    plot = tmp_path / "curves.png"
    code = main(["check", str(SPECS / f"{stem}.yaml"), "--steps", "20", "--json", "--plot", str(plot)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"]
    checks = [row["check"] for row in report["rows"]]
    assert "params analytic vs torch" in checks and "forward torch vs keras" in checks
    assert any(c.startswith("train 20 steps") for c in checks)
    assert len(report["batch_loss"]["torch"]) == len(report["batch_loss"]["keras"]) == 20
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_without_training_section_notes_its_choice(capsys: pytest.CaptureFixture[str]):
    assert main(["check", str(SPECS / "bidirectional_lstm.yaml"), "--steps", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any("no training section" in note for note in report["notes"])


def test_a_broken_backend_fails_the_check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    impl = rnnspec.get_backend("torch")
    original = type(impl).predict
    monkeypatch.setattr(type(impl), "predict", lambda self, model, x: original(self, model, x) + np.float32(1e-3))
    assert main(["check", str(SPECS / "char_rnn_hello.yaml"), "--steps", "0"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "some checks FAILED" in out


def test_unknown_optimizer_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert main(["check", str(SPECS / "char_rnn_hello.yaml"), "--optimizer", "adagrad"]) == 2
