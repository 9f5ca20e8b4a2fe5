"""`rnnspec train`, `evaluate`, `predict` end to end on the built-in data, and fit's own behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from tests.conftest import SPECS
from tests.parity import backend_or_skip

SENTIMENT = """rnnspec: 1
name: sentiment-small
input: {vocab_size: 500, seq_len: 40}
embedding: {output_dim: 8}
recurrent:
  - {cell: gru, units: 8}
head: {units: 1, activation: sigmoid}
training:
  optimizer: {name: adam, learning_rate: 0.01}
  loss: binary_crossentropy
  metrics: [accuracy]
  batch_size: 32
  epochs: 4
  validation_split: 0.2
  data: builtin:sentiment
"""


def test_train_learns_hello_world_out_of_the_box(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    run = tmp_path / "run"
    assert main(["train", str(SPECS / "char_rnn_hello.yaml"), "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert "prediction: 'hello! world'" in out and "Epoch 100/100" in out
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 100 and history["loss"][-1] < history["loss"][0] / 2
    assert history["accuracy"][-1] == 1.0
    for name in (
        "char-rnn-hello.torch.safetensors",
        "char-rnn-hello.weights.safetensors",
        "loss.png",
        "accuracy.png",
        "vocab.json",
    ):
        assert (run / name).exists(), name
    weights = str(run / "char-rnn-hello.weights.safetensors")
    assert main(["predict", str(SPECS / "char_rnn_hello.yaml"), "--weights", weights, "--text", "hello! world"]) == 0
    assert capsys.readouterr().out.strip() == "hello! world"
    assert main(["evaluate", str(SPECS / "char_rnn_hello.yaml"), "--weights", weights, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_train_on_the_sentiment_corpus_beats_chance(backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip(backend)
    spec = tmp_path / "sentiment.yaml"
    spec.write_text(SENTIMENT)
    assert main(["train", str(spec), "-b", backend, "--limit", "600", "-o", str(tmp_path / "run")]) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.6, history


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_numpy_is_not_offered_for_training(command: str, capsys: pytest.CaptureFixture[str]):
    assert main([command, str(SPECS / "char_rnn_hello.yaml"), "-b", "numpy"]) == 2  # a usage error
    assert "the numpy backend is forward-only" in capsys.readouterr().err
    assert main([command, "--help"]) == 0
    assert "forward-only" in capsys.readouterr().out  # the help says so (wrapped at the terminal width)


def test_predict_without_vocabulary_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    spec = rnnspec.load_spec(SPECS / "imdb_lstm.yaml")
    weights = tmp_path / "w.safetensors"
    rnnspec.save_weights(rnnspec.initial_weights(spec, 0), weights, spec)
    assert main(["predict", str(SPECS / "imdb_lstm.yaml"), "--weights", str(weights), "--text", "good"]) == 1
    assert "needs the run's vocab.json" in capsys.readouterr().err


def test_interrupt_keeps_the_last_completed_epoch():
    backend_or_skip("torch")
    model = rnnspec.build(SPECS / "char_rnn_hello.yaml", "torch", seed=0)
    from rnnspec.data import load_data

    data = load_data(model.spec)
    kept = {}

    def on_epoch(epoch: int, logs: dict) -> None:
        kept["weights"] = rnnspec.get_weights(model)

    def on_batch(epoch: int, done: int, total: int) -> None:
        if epoch == 3:
            raise KeyboardInterrupt

    history = rnnspec.fit(model, data.x, data.y, epochs=10, on_epoch_end=on_epoch, on_batch_end=on_batch)
    assert history["interrupted"] and len(history["loss"]) == 3 and len(history["batch_loss"]) == 3
    now = rnnspec.get_weights(model)
    assert all(np.array_equal(now[k], kept["weights"][k]) for k in now)


def test_validation_split_takes_the_last_samples_before_shuffling():
    backend_or_skip("torch")
    spec = rnnspec.loads_spec(SENTIMENT)
    from rnnspec.data import load_data

    data = load_data(spec, limit=100)
    a = rnnspec.build(spec, "torch", seed=1)
    b = rnnspec.build(spec, "torch", seed=1)
    ha = rnnspec.fit(a, data.x, data.y, epochs=2, validation_split=0.2, seed=3)
    hb = rnnspec.fit(
        b, data.x[:80], data.y[:80], epochs=2, validation_data=(data.x[80:], data.y[80:]), seed=3, validation_split=0.0
    )
    assert ha["val_loss"] == hb["val_loss"] and ha["batch_loss"] == hb["batch_loss"]


def test_evaluate_api_matches_the_epoch_loss_definition():
    backend_or_skip("torch")
    spec = rnnspec.loads_spec(SENTIMENT)
    from rnnspec.data import load_data

    data = load_data(spec, limit=70)
    model = rnnspec.build(spec, "torch", seed=0)
    result = rnnspec.evaluate(model, data.x, data.y, batch_size=32)
    # Keras: the mean of the batch losses weighted by batch size (32, 32, 6)
    parts = [
        rnnspec.evaluate(model, data.x[i : i + 32], data.y[i : i + 32], batch_size=32)["loss"] for i in (0, 32, 64)
    ]
    expected = (parts[0] * 32 + parts[1] * 32 + parts[2] * 6) / 70
    assert abs(result["loss"] - expected) < 1e-6


def test_categorical_crossentropy_takes_integer_labels():
    backend_or_skip("torch")
    spec = rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "cce",
            "input": {"features": 3},
            "recurrent": [{"cell": "gru", "units": 4}],
            "head": {"units": 3, "activation": "softmax"},
            "training": {"loss": "categorical_crossentropy", "batch_size": 5, "shuffle": False},
        }
    )
    x = np.random.default_rng(0).normal(size=(10, 4, 3)).astype(np.float32)
    labels = np.arange(10) % 3
    a, b = rnnspec.build(spec, "torch", seed=0), rnnspec.build(spec, "torch", seed=0)
    assert rnnspec.fit(a, x, labels)["loss"] == rnnspec.fit(b, x, np.eye(3, dtype=np.float32)[labels])["loss"]
    with pytest.raises(rnnspec.RnnspecError, match=r"class labels must lie in \[0, 3\)"):
        rnnspec.fit(a, x, labels + 1)


def test_fit_without_a_seed_draws_one_and_records_it():
    backend_or_skip("torch")
    spec = rnnspec.loads_spec(
        SENTIMENT.replace("epochs: 4", "epochs: 2").replace("validation_split: 0.2", "shuffle: true")
    )
    rng = np.random.default_rng(0)
    x, y = rng.integers(1, 500, size=(64, 40)), rng.integers(0, 2, size=64)
    weights = rnnspec.initial_weights(spec, 0)
    first = rnnspec.fit(rnnspec.build(spec, "torch", weights=weights), x, y)
    again = rnnspec.fit(rnnspec.build(spec, "torch", weights=weights), x, y, seed=first["seed"])
    assert isinstance(first["seed"], int) and again["seed"] == first["seed"]
    assert again["batch_loss"] == first["batch_loss"]  # the recorded seed repeats the shuffles exactly
    other = rnnspec.fit(rnnspec.build(spec, "torch", weights=weights), x, y)
    assert other["seed"] != first["seed"]  # 1 in 2**32 to collide
    assert rnnspec.fit(rnnspec.build(spec, "torch", weights=weights), x, y, seed=7)["seed"] == 7


def test_device_cuda_without_cuda_is_refused_before_reading_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    torch = pytest.importorskip("torch")
    backend_or_skip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    spec = tmp_path / "s.yaml"
    spec.write_text(SENTIMENT.replace("builtin:sentiment", "missing.csv"))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--device", "cuda", "-o", str(run)]) == 1
    err = capsys.readouterr().err
    assert "--device cuda was asked for, but PyTorch sees no CUDA device" in err
    assert "missing.csv" not in err and not run.exists()


def test_a_sigmoid_answer_gives_the_probability_of_the_class_shown():
    from rnnspec.cli.prediction import answer, format_answer

    spec = rnnspec.loads_spec(SENTIMENT)
    classes = {"classes": ["negative", "positive"]}

    def text(p: float, saved: dict) -> str:
        return format_answer(answer(spec, np.array([p], np.float32), saved))

    assert text(0.25, classes) == "negative (p = 0.7500)"
    assert text(0.8, classes) == "positive (p = 0.8000)"
    assert text(0.125, {}) == "0 (p = 0.8750)"
    record = answer(spec, np.array([0.75], np.float32), classes)  # exact in float32: 1 - 0.75 = 0.25
    assert record == {"label": "positive", "p": 0.75, "probabilities": {"negative": 0.25, "positive": 0.75}}


def test_evaluate_and_predict_reuse_what_the_run_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    spec = tmp_path / "s.yaml"
    spec.write_text(SENTIMENT.replace("  data: builtin:sentiment\n", "").replace("epochs: 4", "epochs: 1"))
    run = tmp_path / "run"
    argv = ["train", str(spec), "--data", "builtin:sentiment", "--limit", "64", "-o", str(run)]
    assert main(argv) == 0
    capsys.readouterr()
    assert json.loads((run / "run.json").read_text()) == {"data": "builtin:sentiment", "backend": "torch", "seed": 0}
    weights = run / "sentiment-small.weights.safetensors"
    # the spec has no training.data and no --data is given: the run's source (its test split) is used
    assert main(["evaluate", str(spec), "--weights", str(weights), "--json"]) == 0
    by_spec = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(run), "--json"]) == 0  # the run folder alone: spec from its weights
    assert json.loads(capsys.readouterr().out) == by_spec
    assert set(by_spec) == {"loss", "accuracy"}
    explicit = ["evaluate", str(spec), "--weights", str(weights), "--data", "builtin:sentiment", "--json"]
    assert main(explicit) == 0
    assert json.loads(capsys.readouterr().out) == by_spec
    # ids without words: predict says so instead of asking for the vocab.json that is there
    assert main(["predict", str(run), "--text", "a fine film"]) == 1
    err = capsys.readouterr().err
    assert "trained on builtin:sentiment, which is token ids without words" in err
    # a run of an older version (no run.json): the source its vocab.json recorded serves the same way
    (run / "run.json").unlink()
    assert json.loads((run / "vocab.json").read_text())["source"] == "builtin:sentiment"
    assert main(["evaluate", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_spec
    assert main(["predict", str(run), "--text", "a fine film"]) == 1
    assert "trained on builtin:sentiment, which is token ids" in capsys.readouterr().err


def test_a_run_folder_without_one_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "no weights file in this folder (NAME.weights.safetensors" in capsys.readouterr().err
    assert main(["evaluate", str(SPECS / "char_rnn_hello.yaml")]) == 1
    assert "no weights given for" in capsys.readouterr().err


def test_a_run_on_a_text_file_is_not_evaluated_on_its_training_file(tmp_path: Path, capsys):
    backend_or_skip("torch")
    data = tmp_path / "train.csv"
    data.write_text(
        "text,label\n" + "".join(f"{'good fine' if i % 2 else 'bad awful'} film,{i % 2}\n" for i in range(40))
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(SENTIMENT.replace("  data: builtin:sentiment\n", "").replace("epochs: 4", "epochs: 1"))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--data", str(data), "-o", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 1
    err = capsys.readouterr().err
    assert f"no held-out data to evaluate on: the run in {run} trained on {data}, one file" in err and "--data" in err
    assert main(["predict", str(run), "--text", "good fine film"]) == 0  # its tokenizer is in vocab.json
    assert "(p = " in capsys.readouterr().out
