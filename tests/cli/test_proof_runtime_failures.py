"""A proof whose original or exported file its own runtime cannot run says so (found by the re-attack: a Keras
model named with a quote and a line break, which Keras saves but cannot run, gave a traceback from the import's
proof; a file Keras could not open was compared with rnnspec's builds only, without a word)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.core.weights import save_weights_file
from tests.conftest import SPECS


def test_an_original_keras_cannot_run_is_said_and_the_builds_compared(tmp_path: Path, capsys) -> None:
    pytest.importorskip("tensorflow")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    model = keras.Sequential(
        [keras.Input((5,), dtype="int32"), keras.layers.Embedding(20, 4), keras.layers.LSTM(3), keras.layers.Dense(1)],
        name='m"""\nrnnspec: 9',
    )
    path = tmp_path / "named.keras"
    model.save(path)
    code = main(["import", str(path), "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Keras could not run the original file itself (ValueError" in captured.out  # Keras's own refusal:
    assert "is not a valid root scope name" in captured.out or 'ValueError: \'m"""' in captured.out
    assert "rnnspec numpy vs rnnspec torch" in captured.out and "Traceback" not in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["spec.yaml", "weights.safetensors"]
    # Keras's own state is as before: a model made afterwards has clean variable paths (the failed run once left
    # its scope pushed, so every later variable of the process carried the bad name)
    later = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="later")])
    assert [v.path.split("/", 1)[1] for v in later.weights] == ["later/kernel", "later/bias"]
    assert all(v.path.startswith(later.name + "/") for v in later.weights)


def test_an_export_its_runtime_cannot_run_fails_its_proof_and_writes_nothing(tmp_path: Path, monkeypatch, capsys):
    pytest.importorskip("onnx")
    import rnnspec.core.registry as registry

    spec = tmp_path / "model.yaml"
    shutil.copyfile(SPECS / "char_rnn_hello.yaml", spec)
    loaded = rnnspec.load_spec(spec)
    weights = tmp_path / "W.safetensors"
    save_weights_file(rnnspec.initial_weights(loaded, seed=3), weights, loaded)

    def broken_runner(fmt: str):
        def run(files, nudge=None):
            raise RuntimeError("the runtime cannot load this model")

        return run

    monkeypatch.setattr(registry, "get_runner", broken_runner)
    before = sorted(os.listdir(tmp_path))
    code = main(["export", str(spec), "--weights", str(weights), "-f", "onnx", "-o", str(tmp_path / "m.onnx")])
    out = capsys.readouterr().out
    assert code == 1
    assert "could not open or run the exported file (RuntimeError: the runtime cannot load this model)" in out
    assert "proof failed: nothing was written" in out
    assert sorted(os.listdir(tmp_path)) == before
