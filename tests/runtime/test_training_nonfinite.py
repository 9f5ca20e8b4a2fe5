"""Training that reaches a NaN or infinite loss stops with a clear error and keeps the last finite epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnspec
from rnnspec.cli import main
from rnnspec.runtime.training import NonFiniteLossError

SPEC = """
rnnspec: 1.1
name: boom
input: {features: 2, seq_len: 4}
recurrent: [{cell: simple_rnn, units: 3}]
head: {units: 1}
training: {loss: mse, optimizer: {name: sgd, learning_rate: 1000.0}, batch_size: 4, epochs: 3}
"""


def _data(scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4, 2)).astype(np.float32), (scale * rng.normal(size=(8, 1))).astype(np.float32)


def test_a_loss_that_overflows_in_the_first_epoch_keeps_the_initial_weights() -> None:
    model = rnnspec.build(rnnspec.loads_spec(SPEC), "torch", seed=0)
    before = rnnspec.get_weights(model)
    x, y = _data(1e30)
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1") as info:
        rnnspec.fit(model, x, y)
    assert info.value.history["loss"] == [] and "non-finite loss at epoch 1" in info.value.history["stopped"]
    after = rnnspec.get_weights(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_a_later_non_finite_epoch_keeps_the_last_finite_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnspec_backends.torch import train as torch_train

    model = rnnspec.build(rnnspec.loads_spec(SPEC.replace("1000.0", "0.01")), "torch", seed=0)
    original = torch_train.TorchTrainer.train_epoch
    calls = {"n": 0}
    kept: dict[str, np.ndarray] = {}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        result = original(self, *args, **kwargs)
        if calls["n"] == 1:
            kept.update(rnnspec.get_weights(model))
        if calls["n"] == 2:
            result = {**result, "loss": float("nan")}
        return result

    monkeypatch.setattr(torch_train.TorchTrainer, "train_epoch", poisoned)
    with pytest.raises(NonFiniteLossError, match="epoch 2") as info:
        rnnspec.fit(model, *_data(1.0))
    assert len(info.value.history["loss"]) == 1 and np.isfinite(info.value.history["loss"][0])
    after = rnnspec.get_weights(model)
    assert all(np.array_equal(kept[k], after[k]) for k in kept)


def test_the_cli_exits_1_and_writes_nothing_without_a_finite_epoch(tmp_path: Path, capsys) -> None:
    x, y = _data(1e30)
    lines = [json.dumps({"x": xi.tolist(), "y": yi.tolist()}) for xi, yi in zip(x, y, strict=True)]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    out = tmp_path / "run"
    code = main(["train", str(tmp_path / "spec.yaml"), "-b", "torch", "--data", str(tmp_path / "data.jsonl"),
                 "-o", str(out)])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 1
    assert "training stopped: the loss became NaN or infinite" in printed.out + printed.err
    assert not (out / "history.json").exists()
