"""A run folder remembers its data (the file, absolute, and its columns), so ``evaluate RUN`` works from any
working folder, and never evaluates on the file the run trained on without saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnspec.cli import main
from tests.parity import backend_or_skip

SPEC = """\
rnnspec: 1.2
name: tiny
input: {vocab_size: 50, seq_len: 8}
embedding: {output_dim: 4}
recurrent:
  - {cell: lstm, units: 4}
head: {units: 1, activation: sigmoid}
training: {optimizer: adam, loss: binary_crossentropy, metrics: [accuracy], batch_size: 16, epochs: 1%s}
"""


def _reviews(path: Path, n: int) -> Path:
    rows = "".join(f"{'good fine' if i % 2 else 'bad awful'} film {i % 5},{i % 2}\n" for i in range(n))
    path.write_text("review,rating\n" + rows)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``project/`` with a spec naming ``data/train.csv`` (relative to the spec), a held-out ``data/test.csv``
    (columns ``review`` and ``rating``), and a run trained from inside it with relative paths."""
    backend_or_skip("torch")
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    _reviews(root / "data" / "train.csv", 32)
    _reviews(root / "data" / "test.csv", 16)
    (root / "spec.yaml").write_text(SPEC % ", data: data/train.csv")
    monkeypatch.chdir(root)
    argv = ["train", "spec.yaml", "-b", "torch", "--text-column", "review", "--label-column", "rating", "-o", "run"]
    assert main(argv) == 0
    monkeypatch.chdir(tmp_path)  # every check below runs from another working folder
    return root


def test_run_json_records_the_file_absolute_and_its_columns(project: Path):
    info = json.loads((project / "run" / "run.json").read_text())
    assert info["data"] == "data/train.csv"  # as the spec wrote it
    assert info["data_file"] == str(project / "data" / "train.csv")
    assert (info["text_column"], info["label_column"]) == ("review", "rating")


def test_evaluate_a_run_from_another_folder(project: Path, capsys: pytest.CaptureFixture[str]):
    run = str(project / "run")
    capsys.readouterr()
    # no held-out data: said plainly (it used to ask for a column 'text', or evaluate on the training file)
    assert main(["evaluate", run]) == 1
    err = capsys.readouterr().err
    assert f"no held-out data to evaluate on: the run in {run} trained on {project / 'data' / 'train.csv'}" in err
    assert "--data FILE" in err and "--text-column review --label-column rating" in err
    assert "no column" not in err
    # the spec with its weights (the spec's training.data is the training file): refused the same way
    spec, weights = str(project / "spec.yaml"), str(project / "run" / "tiny.weights.safetensors")
    assert main(["evaluate", spec, "--weights", weights, "--json"]) == 1
    assert "no held-out data to evaluate on" in capsys.readouterr().err
    # held-out data: the recorded columns are used, no flag needed
    assert main(["evaluate", run, "--data", str(project / "data" / "test.csv"), "--json"]) == 0
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)) == {"loss", "accuracy"} and captured.err == ""
    # the training file asked for by name: evaluated, and the note says what it is
    assert main(["evaluate", run, "--data", str(project / "data" / "train.csv"), "--json"]) == 0
    assert "is the file this run trained on; these numbers are on its training data" in capsys.readouterr().err
    # a column given on the command line still wins over the recorded one
    assert main(["evaluate", run, "--data", str(project / "data" / "test.csv"), "--text-column", "text"]) == 1
    assert "no column 'text'" in capsys.readouterr().err


def test_predict_reads_the_recorded_text_column(project: Path, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    assert main(["predict", str(project / "run"), "-i", str(project / "data" / "test.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("line,label,p") and len(lines) == 17
