"""``--weights`` (and the spec argument) given the wrong kind of file: what it is and what to pass instead; a
folder holding weights just works; one naming rule for canonical weights files (``import`` and ``train``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.runtime.runs import is_weights_name

SPEC = """\
rnnspec: 1.2
name: tiny
input: {vocab_size: 50, seq_len: 8}
embedding: {output_dim: 4}
recurrent:
  - {cell: lstm, units: 4}
head: {units: 1, activation: sigmoid}
"""


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A folder shaped like a run: canonical weights, history.json, a checkpoint, a .keras and a torch artifact."""
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    folder = tmp_path / "run"
    folder.mkdir()
    rnnspec.save_weights(
        rnnspec.build(rnnspec.load_spec(spec_path), "numpy", seed=0), folder / "tiny.weights.safetensors"
    )
    (folder / "history.json").write_text('{\n  "loss": [0.69]\n}\n')
    np.savez(folder / "checkpoint.npz", a=np.zeros(1))
    with zipfile.ZipFile(folder / "tiny.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    (folder / "tiny.torch.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    np.save(tmp_path / "ids.npy", np.arange(16).reshape(2, 8))
    return folder


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("history.json", "a JSON file (the training history of a run)"),
        ("tiny.keras", "a Keras model file"),
        ("checkpoint.npz", "a training checkpoint"),
        ("tiny.torch.safetensors", "a torch artifact"),
    ],
)
def test_a_file_of_another_kind_is_named_with_what_to_pass(run: Path, name: str, kind: str, capsys):
    spec = str(run.parent / "spec.yaml")
    assert main(["evaluate", spec, "--weights", str(run / name), "--data", "builtin:sentiment"]) == 1
    err = capsys.readouterr().err
    assert f"--weights {run / name} is {kind}" in err, err
    assert f"--weights {run / 'tiny.weights.safetensors'}, or the folder alone: rnnspec evaluate {run}" in err
    assert "header claims" not in err and "rnnspec convert" not in err


def test_a_model_file_alone_says_to_import_it(tmp_path: Path, run: Path, capsys):
    lone = tmp_path / "lone"
    lone.mkdir()
    (run / "tiny.keras").rename(lone / "model.keras")
    (lone / "model.pt").write_bytes(b"\x80\x02}q\x00.")
    assert main(["predict", str(lone / "model.keras"), "--text", "good"]) == 1
    err = capsys.readouterr().err
    assert f"{lone / 'model.keras'} is a Keras model file, not a spec or a run folder" in err
    assert "the spec" not in err.replace("a spec or", "").replace("a spec file", "")
    assert f"rnnspec import {lone / 'model.keras'} -o imported" in err and "rnnspec predict imported" in err
    assert main(["evaluate", str(run.parent / "spec.yaml"), "--weights", str(lone / "model.pt")]) == 1
    err = capsys.readouterr().err
    assert "is a PyTorch file (a state dict or a pickled model)" in err and "--spec SPEC -o imported" in err


def test_a_folder_or_a_weights_file_just_works(run: Path, capsys):
    ids = str(run.parent / "ids.npy")
    assert main(["predict", str(run), "-i", ids, "-b", "numpy"]) == 0
    by_folder = capsys.readouterr().out
    assert by_folder.startswith("index,label,p")
    spec = str(run.parent / "spec.yaml")
    assert main(["predict", spec, "--weights", str(run), "-i", ids, "-b", "numpy"]) == 0  # --weights FOLDER
    assert capsys.readouterr().out == by_folder
    weights = str(run / "tiny.weights.safetensors")
    assert main(["predict", weights, "-i", ids, "-b", "numpy"]) == 0  # weights alone: they carry the spec
    assert capsys.readouterr().out == by_folder


def test_import_and_train_names_follow_one_rule(run: Path, capsys):
    from rnnspec.runtime.importing import import_targets

    written = import_targets(run.parent / "imported")
    assert all(is_weights_name(path.name) for path in written if path.suffix == ".safetensors")
    assert is_weights_name("tiny.weights.safetensors") and not is_weights_name("tiny.torch.safetensors")
    imported = run.parent / "imported"
    imported.mkdir()
    (run / "tiny.weights.safetensors").rename(imported / "weights.safetensors")  # as rnnspec import names it
    ids = str(run.parent / "ids.npy")
    assert main(["predict", str(imported), "-i", ids, "-b", "numpy"]) == 0
    assert capsys.readouterr().out.startswith("index,label,p")
    (imported / "tiny.weights.safetensors").write_bytes((imported / "weights.safetensors").read_bytes())
    assert main(["predict", str(imported), "-i", ids, "-b", "numpy"]) == 1
    err = capsys.readouterr().err
    assert "2 weights files in this folder (tiny.weights.safetensors, weights.safetensors)" in err
