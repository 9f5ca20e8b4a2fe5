"""A run folder is written as a unit: a finished run is never replaced unasked, never mixed, never lost."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

pytest.importorskip("torch")

from rnnspec.cli import main

SPEC = str(Path(__file__).resolve().parent.parent / "specs" / "char_rnn_hello.yaml")


def _train(out: Path, *extra: str) -> int:
    return main(["train", SPEC, "-b", "torch", "--epochs", "1", "-o", str(out), *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    assert _train(out) == 0
    return out


def test_a_finished_run_is_not_replaced_without_overwrite(finished: Path, capsys) -> None:
    before = _snapshot(finished)
    capsys.readouterr()
    assert _train(finished) == 1
    printed = capsys.readouterr()
    assert "already holds a run" in printed.err and "--overwrite" in printed.err
    assert "Epoch 1/1" not in printed.out
    assert _snapshot(finished) == before


def test_overwrite_replaces_the_whole_run_no_stale_files(finished: Path) -> None:
    (finished / "accuracy_old.png").write_bytes(b"stale")
    assert _train(finished, "--overwrite") == 0
    assert not (finished / "accuracy_old.png").exists()
    assert [p for p in finished.parent.iterdir() if p.name.startswith(".")] == []


def test_ctrl_c_in_the_first_epoch_keeps_the_old_run(finished: Path, monkeypatch, capsys) -> None:
    from rnnspec_backends import torch_train

    before = _snapshot(finished)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch_train.TorchTrainer, "train_epoch", interrupted)
    assert _train(finished, "--overwrite") == 130
    assert "nothing written" in capsys.readouterr().out
    assert _snapshot(finished) == before
    assert [p for p in finished.parent.iterdir() if p.name.startswith(".")] == []


def test_a_full_disk_while_writing_keeps_the_old_run_and_names_the_folder(finished: Path, monkeypatch, capsys) -> None:
    from rnnspec import train_cli

    before = _snapshot(finished)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_cli, "write_history", full)
    assert _train(finished, "--overwrite") == 1
    err = capsys.readouterr().err
    assert f"cannot write the run folder {finished}: No space left on device" in err
    assert _snapshot(finished) == before
    assert [p for p in finished.parent.iterdir() if p.name.startswith(".")] == []


def test_an_unwritable_output_is_found_before_training(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _train(blocker / "run") == 1
    printed = capsys.readouterr()
    assert "cannot write the run folder" in printed.err and "nothing was trained" in printed.err
    assert "Epoch" not in printed.out


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert _train(folder, "--overwrite") == 1
    assert "not a run's (notes.txt)" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me"
