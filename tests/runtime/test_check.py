"""`rnnspec check`: the conformance report passes on shipped specs and fails loudly on a broken backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from tests.conftest import SPECS
from tests.parity import backend_or_skip


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


def _rmsprop_epsilon_outside_sqrt(self, param, g, g2, state):
    import torch

    s = self.spec
    v = state.setdefault("v", torch.zeros_like(param))
    v.mul_(s.rho).add_(g2 * (1 - s.rho))
    param.sub_(g * s.learning_rate / (v.sqrt() + s.epsilon))  # PyTorch's form, not Keras's sqrt(v + eps)


def _adam_without_bias_correction(self, param, g, g2, state):
    import torch

    s = self.spec
    m = state.setdefault("m", torch.zeros_like(param))
    v = state.setdefault("v", torch.zeros_like(param))
    m.add_((g - m) * (1 - s.beta_1))
    v.add_((g2 - v) * (1 - s.beta_2))
    param.sub_(m * s.learning_rate / (v.sqrt() + s.epsilon))


def test_a_chaotic_spec_passes_with_the_reason(capsys: pytest.CaptureFixture[str]):
    """SimpleRNN over 500 steps amplifies float32 rounding: the curves part, within the measured noise floor."""
    assert main(["check", str(SPECS / "imdb_simplernn.yaml"), "--steps", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    curves = {name: np.array(report["batch_loss"][name]) for name in ("torch", "keras")}
    rel = np.abs(curves["torch"] - curves["keras"]) / np.abs(curves["keras"])
    assert rel.max() > 1e-3  # beyond the fixed tolerance: only the noise floor lets it pass
    assert report["parting_step"] == int(np.flatnonzero(rel > 1e-4)[0]) + 1
    assert {len(report["noise_floor"][name]) for name in ("torch", "keras")} == {10}
    assert max(max(report["noise_floor"]["torch"]), max(report["noise_floor"]["keras"])) > 1e-3
    assert any("amplifies float32 rounding" in note for note in report["notes"])


@pytest.mark.parametrize(
    ("wrong", "optimizer"), [(_rmsprop_epsilon_outside_sqrt, "rmsprop"), (_adam_without_bias_correction, "adam")]
)
def test_a_wrong_optimizer_fails_even_on_a_chaotic_spec(
    wrong, optimizer: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    train = pytest.importorskip("rnnspec_backends.torch.train")
    monkeypatch.setattr(train.KerasOptimizer, "_update", wrong)
    argv = ["check", str(SPECS / "imdb_simplernn.yaml"), "--steps", "4", "--optimizer", optimizer, "--json"]
    assert main(argv) == 1
    report = json.loads(capsys.readouterr().out)
    loss_row = next(row for row in report["rows"] if "loss keras vs torch" in row["check"])
    assert not loss_row["passed"] and "at step 2," in loss_row["value"]
    assert any("the backends disagree" in note and "step 2 " in note for note in report["notes"])


def test_training_parity_pairs_the_first_trainer_with_each_other_one(monkeypatch: pytest.MonkeyPatch):
    from rnnspec.runtime import check

    pairs: list[list[str]] = []
    monkeypatch.setattr(check, "backends_with", lambda capability: ["numpy", "torch", "keras"])
    monkeypatch.setattr(check, "_training_rows", lambda spec, report, pair, **kw: pairs.append(pair))
    spec = rnnspec.load_spec(SPECS / "stacked_simplernn.yaml")
    check.run_check(spec, steps=1, backends=("numpy", "torch", "keras"))
    assert pairs == [["numpy", "torch"], ["numpy", "keras"]]
    pairs.clear()
    check.run_check(spec, steps=0, backends=("numpy", "torch", "keras"))
    assert pairs == []
