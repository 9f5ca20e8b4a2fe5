"""The spec 1.1 example specs train from their shipped files through `rnnspec train`, on both backends,
with the same loss curve (dropout rates set to 0 where they have dropout: random masks cannot agree)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rnnspec.cli import main
from tests.conftest import SPECS
from tests.parity import backend_or_skip

NEW_SPECS = ["tf_text_classification", "bilstm_dropout", "weather_regression", "pos_tagger"]
# float32 on both sides, 7 optimizer steps from the same weights and batches (docs/training.md: 1e-4)
TOLERANCE = 1e-4


def _without_dropout(stem: str, folder: Path) -> Path:
    data = yaml.safe_load((SPECS / f"{stem}.yaml").read_text(encoding="utf-8"))
    for entry in [*data["recurrent"], *(data["head"] if isinstance(data.get("head"), list) else [])]:
        for key in ("dropout", "recurrent_dropout", "spatial_dropout"):
            if key in entry:
                entry[key] = 0.0
    data["training"]["data"] = str(SPECS / data["training"]["data"])
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _train(spec: Path, backend: str, out: Path) -> dict:
    code = main(
        ["train", str(spec), "-b", backend, "--epochs", "1", "--batch-size", "16", "--limit", "128", "-o", str(out)]
    )
    assert code == 0
    return json.loads((out / "history.json").read_text())


@pytest.mark.parametrize("stem", NEW_SPECS)
def test_new_spec_trains_on_both_backends_with_one_curve(stem: str, tmp_path: Path, capsys):
    backend_or_skip("torch")
    backend_or_skip("keras")
    spec = _without_dropout(stem, tmp_path)
    torch_history = _train(spec, "torch", tmp_path / "torch")
    keras_history = _train(spec, "keras", tmp_path / "keras")
    capsys.readouterr()
    a, b = np.array(torch_history["batch_loss"]), np.array(keras_history["batch_loss"])
    assert len(a) == len(b) == 7  # 102 training samples (the last 20% of 128 validate) in batches of 16
    assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-8)) <= TOLERANCE
    assert torch_history.keys() == keras_history.keys()
    for key in torch_history:
        if key not in ("batch_loss",):
            np.testing.assert_allclose(torch_history[key], keras_history[key], rtol=TOLERANCE, atol=1e-6)


def test_shipped_dropout_spec_trains_as_shipped(tmp_path: Path, capsys):
    backend_or_skip("torch")
    history = _train(SPECS / "bilstm_dropout.yaml", "torch", tmp_path / "run")
    assert np.isfinite(history["loss"]).all() and "val_accuracy" in history


def test_regression_run_reports_its_metric_and_predict_refuses_text(tmp_path: Path, capsys):
    backend_or_skip("torch")
    run = tmp_path / "run"
    history = _train(SPECS / "weather_regression.yaml", "torch", run)
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(history)
    assert (run / "mae.png").exists()
    out = capsys.readouterr().out
    assert " - mae: " in out and " - val_mae: " in out
    weights = str(run / "weather-regression.weights.safetensors")
    code = main(["predict", str(SPECS / "weather_regression.yaml"), "--weights", weights, "--text", "x"])
    assert code == 1
    assert "takes float feature sequences, not text" in capsys.readouterr().err


def test_tagger_predicts_tag_names(tmp_path: Path, capsys):
    backend_or_skip("torch")
    run = tmp_path / "run"
    _train(SPECS / "pos_tagger.yaml", "torch", run)
    capsys.readouterr()
    weights = str(run / "pos-tagger.weights.safetensors")
    assert main(["predict", str(SPECS / "pos_tagger.yaml"), "--weights", weights, "--text", "the dog sees a cat"]) == 0
    tags = capsys.readouterr().out.split()
    assert len(tags) == 5 and set(tags) <= {"ADJ", "ADV", "DET", "NOUN", "PREP", "PRON", "VERB"}
