"""User mistakes found in review: each gets a clear error (exit 1, or 2 for usage), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from tests.conftest import SPECS
from tests.parity import backend_or_skip, random_inputs

CHAR_CSV = "text,label\n" + "".join(f"{'good day' if i % 2 else 'bad night'},{i % 2}\n" for i in range(40))


def _features_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec" / "chars.yaml"
    spec.parent.mkdir()
    spec.write_text(
        "rnnspec: 1\nname: chars\ninput: {features: 30}\nrecurrent:\n  - {cell: gru, units: 4}\n"
        "head: {units: 1, activation: sigmoid}\n"
        "training: {loss: binary_crossentropy, metrics: [accuracy], epochs: 1, batch_size: 8}\n"
    )
    return spec


def test_data_flag_is_relative_to_the_working_folder_and_predict_reads_the_char_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    backend_or_skip("torch")
    spec = _features_spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_text(CHAR_CSV)
    assert main(["train", str(spec), "--data", "reviews.csv", "-o", "run"]) == 0
    capsys.readouterr()
    weights = str(tmp_path / "run" / "chars.weights.safetensors")
    assert main(["predict", str(spec), "--weights", weights, "--text", "good day"]) == 0
    assert "(p = " in capsys.readouterr().out
    assert main(["predict", str(spec), "--weights", weights, "--text", ""]) == 1
    assert "--text is empty" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["build", "train", "check"])
def test_negative_seed_is_a_usage_error(command: str):
    args = [command, str(SPECS / "char_rnn_hello.yaml"), "--seed", "-1"] + (
        ["-b", "numpy"] if command == "build" else []
    )
    assert main(args) == 2


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_out_of_range_in_the_api(seed: int):
    with pytest.raises(rnnspec.RnnspecError, match=r"a seed must be an integer from 0 to 2\*\*32-1"):
        rnnspec.build(SPECS / "imdb_lstm.yaml", "numpy", seed=seed)


def test_output_that_is_a_file_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    taken = tmp_path / "taken"
    taken.write_text("x")
    assert main(["train", str(SPECS / "char_rnn_hello.yaml"), "-o", str(taken)]) == 1
    err = capsys.readouterr()
    assert "is a file" in err.err and "Epoch" not in err.out


def test_unwritable_outputs_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["schema", "-o", str(tmp_path)]) == 1
    assert main(["build", str(SPECS / "imdb_lstm.yaml"), "-b", "numpy", "-o", str(SPECS / "imdb_lstm.yaml")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 2


def test_convert_with_a_broken_embedded_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from safetensors.numpy import save_file

    spec = rnnspec.load_spec(SPECS / "char_rnn_hello.yaml")
    path = tmp_path / "w.safetensors"
    save_file(rnnspec.initial_weights(spec, 0), str(path), metadata={"format": "rnnspec-weights/1", "spec": "{not"})
    assert main(["convert", str(path), "--to", "numpy", "-o", str(tmp_path / "a")]) == 1
    assert "(embedded spec; or pass one with --spec):1:2: invalid JSON" in capsys.readouterr().err
    assert (
        main(
            [
                "convert",
                str(path),
                "--to",
                "numpy",
                "-o",
                str(tmp_path / "b"),
                "--spec",
                str(SPECS / "char_rnn_hello.yaml"),
            ]
        )
        == 0
    )


@pytest.fixture
def lstm():
    backend_or_skip("torch")
    model = rnnspec.build(SPECS / "embedding_simplernn8.yaml", "torch", seed=0)
    x = random_inputs(model.spec, 0, batch=8)
    return model, x, (np.arange(8) % 2).astype(np.float32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: (x + 1000, y), "token ids must lie in"),
        (lambda x, y: (x[:, :50], y), "expected 100 time steps"),
        (lambda x, y: (x.astype(float), y), "expected int token ids"),
        (lambda x, y: (x, np.zeros((8, 5))), "do not fit the model's outputs"),
        (lambda x, y: (x, y * np.nan), "finite numbers"),
        (lambda x, y: (x, y + 2), r"binary targets must lie in \[0, 1\]"),
        (lambda x, y: (x, np.array(["a"] * 8)), "finite numbers"),
        (lambda x, y: (x[:4], y), "one target per sample"),
    ],
    ids=[
        "ids-out-of-range",
        "seq-len",
        "float-ids",
        "target-shape",
        "nan-target",
        "binary-range",
        "string-target",
        "count-mismatch",
    ],
)
def test_fit_checks_its_data(lstm, change, message: str):
    model, x, y = lstm
    bad_x, bad_y = change(x, y)
    with pytest.raises(rnnspec.RnnspecError, match=message):
        rnnspec.fit(model, bad_x, bad_y, epochs=1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"validation_split": 1.5},
        {"epochs": 0},
        {"batch_size": 0},
        {"shuffle": "no"},
        {"seed": -2},
        {"validation_data": (1,)},
    ],
)
def test_fit_checks_its_arguments(lstm, overrides: dict):
    model, x, y = lstm
    with pytest.raises(rnnspec.RnnspecError):
        rnnspec.fit(model, x, y, **overrides)


def test_api_type_mistakes():
    with pytest.raises(rnnspec.RnnspecError, match="expected a spec"):
        rnnspec.build(3, "numpy")
    model = rnnspec.build(SPECS / "char_rnn_hello.yaml", "numpy", seed=0)
    with pytest.raises(rnnspec.WeightsError, match="dict of name"):
        rnnspec.set_weights(model, [1, 2])
    with pytest.raises(rnnspec.RnnspecError, match="no time steps"):
        rnnspec.predict(model, np.zeros((2, 0, 9), dtype=np.float32))


def test_per_step_single_unit_targets_with_a_mask_train_alike():
    backend_or_skip("torch")
    backend_or_skip("keras")
    spec = rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "tags",
            "input": {"vocab_size": 20},
            "embedding": {"output_dim": 4, "mask_zero": True},
            "recurrent": [{"cell": "simple_rnn", "units": 3, "return_sequences": True}],
            "head": {"units": 1, "activation": "sigmoid"},
            "training": {"loss": "binary_crossentropy", "batch_size": 5, "shuffle": False, "metrics": ["accuracy"]},
        }
    )
    x = random_inputs(spec, 1, batch=10, time=6)
    y = (np.arange(60).reshape(10, 6) % 2).astype(np.float32)
    histories = {b: rnnspec.fit(rnnspec.build(spec, b, seed=0), x, y) for b in ("torch", "keras")}
    assert np.allclose(histories["torch"]["batch_loss"], histories["keras"]["batch_loss"], rtol=1e-4)
    models = {b: rnnspec.build(spec, b, seed=0) for b in ("torch", "keras")}
    results = {b: rnnspec.evaluate(m, x, y) for b, m in models.items()}
    assert list(results["torch"]) == list(results["keras"]) == ["loss", "accuracy"]
    assert json.dumps(list(results["torch"]))


def test_weights_folder_and_binary_label_messages(tmp_path: Path):
    with pytest.raises(rnnspec.WeightsError, match="is a folder"):
        rnnspec.load_weights(tmp_path)
    from rnnspec.data import DataError, check_dataset, load_data

    spec = rnnspec.load_spec(SPECS / "embedding_simplernn8.yaml")
    data = load_data(spec, "builtin:sentiment", limit=10)
    wrong = type(data)(data.x, data.y * 7, data.source, data.split)
    with pytest.raises(DataError) as info:
        check_dataset(spec, wrong)
    assert "map the two labels to 0 and 1" in str(info.value)
