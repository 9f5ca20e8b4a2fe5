"""NaN is never saved as a result: specs that can only train to NaN are refused, training stops at a
non-finite loss keeping the last finite epoch, and the files and answers rnnspec writes hold finite numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.lang.errors import SpecError
from tests.conftest import SPECS

HELLO = str(SPECS / "char_rnn_hello.yaml")
WEIGHTS = "char-rnn-hello.weights.safetensors"

TINY = """rnnspec: {version}
name: tiny
input: {{features: 2, seq_len: 3}}
recurrent: [{{cell: simple_rnn, units: {units}}}]
head: {{units: 1}}
training:
  loss: {loss}
  validation_split: {split}
  optimizer: {optimizer}
"""


def _tiny(version: str = "1.1", units: str = "2", loss: str = "mse", split: str = "0.0", optimizer: str = "sgd") -> str:
    return TINY.format(version=version, units=units, loss=loss, split=split, optimizer=optimizer)


def _strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


# -- the spec refuses what can only train to NaN ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "fragment"),
    [
        ("optimizer", "{name: sgd, learning_rate: .nan}", "finite"),
        ("optimizer", "{name: sgd, learning_rate: 0}", "greater than 0"),
        ("optimizer", "{name: sgd, clipvalue: .inf}", "finite"),
        ("optimizer", "{name: sgd, momentum: .nan}", "at most 1.0"),
        ("optimizer", "{name: adam, beta_1: 1.0}", "less than 1.0"),
        ("optimizer", "{name: adam, beta_2: .nan}", "less than 1.0"),
        ("optimizer", "{name: rmsprop, rho: -.inf}", "at least 0"),
        ("optimizer", "{name: adam, epsilon: .inf}", "finite"),
        ("loss", "{name: huber, delta: .inf}", "finite"),
        ("split", ".nan", "validation_split"),
        ("version", "true", "expected: 1, 1.1 or 1.2"),
        ("version", "1.0", "expected: 1, 1.1 or 1.2"),
        ("units", "0x10", "hexadecimal"),
        ("units", "1_000", "underscores"),
        ("units", "1:30", "base 60"),
    ],
)
def test_values_that_only_train_to_nan_or_read_loosely_are_refused(field: str, text: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        rnnspec.loads_spec(_tiny(**{field: text}))
    rendered = info.value.render()
    assert fragment in rendered and "fix:" in rendered


@pytest.mark.parametrize("version", ["1", "1.1"])
def test_the_format_versions_are_still_read(version: str) -> None:
    assert rnnspec.loads_spec(_tiny(version=version)).rnnspec == float(version)


# -- training stops at a non-finite loss ------------------------------------------------------------------


@pytest.fixture
def poisoned_epoch_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second epoch's first optimizer step reports a NaN loss (what a diverging model does)."""
    pytest.importorskip("torch")
    from rnnspec_backends.torch import train as torch_train

    original = torch_train.TorchTrainer.train_epoch
    calls: dict[int, int] = {}  # per trainer: each training run counts its own epochs

    def train_epoch(self, *args, **kwargs):
        calls[id(self)] = calls.get(id(self), 0) + 1
        result = original(self, *args, **kwargs)
        if calls[id(self)] == 2:
            result = {**result, "loss": float("nan"), "batch_loss": [float("nan"), *result["batch_loss"][1:]]}
        return result

    monkeypatch.setattr(torch_train.TorchTrainer, "train_epoch", train_epoch)


def test_the_cli_stops_at_a_nan_and_writes_the_last_finite_epoch(tmp_path: Path, poisoned_epoch_2, capsys) -> None:
    reference = tmp_path / "reference"
    run = tmp_path / "run"
    assert main(["train", HELLO, "--epochs", "1", "-o", str(reference)]) == 0
    assert main(["train", HELLO, "--epochs", "3", "-o", str(run)]) == 1
    printed = capsys.readouterr().out
    assert "the loss became NaN or infinite at epoch 2, step 1" in printed
    assert "keeps the weights of the last finite epoch (1)" in printed and "fix: lower the learning rate" in printed
    history = _strict_json(run / "history.json")
    assert history["loss"] == _strict_json(reference / "history.json")["loss"]
    assert history["stopped"].startswith("non-finite loss at epoch 2, step 1")
    assert (run / "loss.png").exists() and (run / "accuracy.png").exists()
    kept, clean = rnnspec.load_weights(run / WEIGHTS), rnnspec.load_weights(reference / WEIGHTS)
    assert all(np.array_equal(kept[k], clean[k]) for k in clean)


def test_after_a_nan_the_next_fit_starts_with_a_fresh_optimizer() -> None:
    """Adam's moments hold the NaN steps; fitting the same model again must not inherit them."""
    pytest.importorskip("torch")
    spec = rnnspec.loads_spec(_tiny(optimizer="{name: adam, learning_rate: 0.01}"))
    model = rnnspec.build(spec, "torch", seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3, 2)).astype(np.float32)
    with pytest.raises(rnnspec.RnnspecError, match="epoch 1, step 1"):
        rnnspec.fit(model, x, np.full((8, 1), 1e30, np.float32), batch_size=4)
    history = rnnspec.fit(model, x, rng.normal(size=(8, 1)).astype(np.float32), batch_size=4, epochs=2)
    assert all(np.isfinite(history["batch_loss"])) and len(history["loss"]) == 2


# -- what is written and answered is finite ---------------------------------------------------------------


def test_the_history_of_an_interrupted_run_is_strict_json(tmp_path: Path, monkeypatch) -> None:
    from rnnspec.runtime.runs import write_history

    path = write_history(tmp_path, {"loss": [0.5], "batch_loss": [0.5], "interrupted": True})
    assert _strict_json(path)["interrupted"] is True
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_history(tmp_path, {"loss": [float("inf")]})
    assert _strict_json(path)["loss"] == [0.5]


def _overflowing_weights(tmp_path: Path) -> Path:
    """Finite weights whose outputs are NaN: x·W + b overflows to +inf and h·U to -inf."""
    spec = rnnspec.load_spec(HELLO)
    weights = rnnspec.initial_weights(spec, seed=0)
    big = np.float32(3e38)
    weights["recurrent_0/kernel"][:] = big
    weights["recurrent_0/bias"][:] = big
    weights["recurrent_0/recurrent_kernel"][:] = -big
    path = tmp_path / WEIGHTS
    rnnspec.save_weights(weights, path, spec)
    (tmp_path / "vocab.json").write_text(json.dumps({"alphabet": sorted(set("hello! world"))}))
    return path


def test_predict_refuses_nan_outputs(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    weights = _overflowing_weights(tmp_path)
    assert main(["predict", HELLO, "--weights", str(weights), "--text", "hello"]) == 1
    printed = capsys.readouterr()
    assert "not finite" in printed.err and "p = nan" not in printed.out


def test_evaluate_refuses_a_non_finite_loss(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    weights = _overflowing_weights(tmp_path)
    assert main(["evaluate", HELLO, "--weights", str(weights), "--json"]) == 1
    printed = capsys.readouterr()
    assert "the evaluation is not finite (loss = nan" in printed.err and "NaN" not in printed.out
