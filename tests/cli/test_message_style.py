"""One way to fail: every command's usage error reads ``error: ...`` like its other errors; a spec typo in
``train`` is reported before a framework is imported; a missing column names the command line's flag;
``rnnspec.load_spec`` takes a dict too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.data import DataError, load_data

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize(
    "args",
    [
        ["train", str(SPECS / "char_rnn_hello.yaml"), "--epochs", "0"],
        ["predict", str(SPECS)],  # neither --text nor --input
        ["summary", "-c", "tensorflow", str(SPECS / "imdb_lstm.yaml")],
        ["frobnicate"],
        ["evaluate"],
    ],
    ids=["train-range", "predict-choice", "summary-choice", "unknown-command", "missing-argument"],
)
def test_usage_errors_read_like_every_other_error(args: list[str], capsys: pytest.CaptureFixture[str]):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: "), err
    assert "Error" not in err and "╭" not in err and "Try 'rnnspec" in err


def test_the_usage_line_names_the_argument(capsys: pytest.CaptureFixture[str]):
    assert main(["evaluate"]) == 2
    assert "error: Missing argument 'RUN_DIR|SPEC'." in capsys.readouterr().err


def test_a_spec_typo_in_train_fails_before_a_framework_is_imported(tmp_path: Path):
    typo = tmp_path / "typo.yaml"
    typo.write_text((SPECS / "char_rnn_hello.yaml").read_text().replace("units:", "unitz:", 1))
    probe = (
        "import sys; from rnnspec.cli import main; code = main(sys.argv[1:]); "
        "loaded = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
        "print('loaded:', loaded); sys.exit(code)"
    )
    for extra in ([], ["--nproc", "2"]):
        argv = [sys.executable, "-c", probe, "train", str(typo), "-b", "torch", "-o", str(tmp_path / "run"), *extra]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stderr
        assert "unknown key `unitz`" in result.stderr and "loaded: []" in result.stdout, (extra, result.stdout)


def test_a_missing_column_names_the_flag_and_the_keyword(tmp_path: Path):
    data = tmp_path / "reviews.csv"
    data.write_text("review,rating\ngood film,1\nbad film,0\n")
    spec = rnnspec.load_spec(SPECS / "tf_text_classification.yaml")
    with pytest.raises(DataError) as info:
        load_data(spec, data)
    assert "--text-column review on the command line (text_column='review' from Python)" in str(info.value)
    with pytest.raises(DataError) as info:
        load_data(spec, data, text_column="review")
    assert "--label-column rating on the command line (label_column='rating' from Python)" in str(info.value)
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text('{"review": "good film", "rating": 1}\n')
    with pytest.raises(DataError) as info:
        load_data(spec, jsonl)
    assert "--text-column review on the command line" in str(info.value)


def test_load_spec_takes_a_dict_and_says_what_it_takes():
    spec = rnnspec.load_spec(SPECS / "imdb_lstm.yaml")
    assert rnnspec.load_spec(spec.to_dict()) == spec
    assert rnnspec.load_spec(spec) is spec
    with pytest.raises(TypeError, match=r"takes a path to a spec file .* or a dict, not int; .* rnnspec.loads_spec"):
        rnnspec.load_spec(3)  # type: ignore[arg-type]


def test_the_onnx_export_says_which_integer_type_its_input_takes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    spec = rnnspec.load_spec(SPECS / "embedding_simplernn8.yaml")
    weights = tmp_path / "w.weights.safetensors"
    rnnspec.save_weights(rnnspec.build(spec, "numpy", seed=0), weights)
    spec_file = str(SPECS / "embedding_simplernn8.yaml")
    model = tmp_path / "m.onnx"
    assert main(["export", spec_file, "--weights", str(weights), "--format", "onnx", "-o", str(model)]) == 0
    assert "input x: int64 token ids [batch, time]" in capsys.readouterr().out
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    ids = np.array([[0, 3, 4]], dtype=np.int32)  # what Keras's pad_sequences returns
    with pytest.raises(Exception, match="Unexpected input data type"):  # what the line tells the user
        session.run(None, {"x": ids})
    session.run(None, {"x": ids.astype("int64")})
