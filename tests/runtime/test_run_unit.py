"""--overwrite replaces run folders only (the other run-folder cases are in test_run_folders.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from rnnspec.cli import main
from tests.conftest import REPO

SPEC = str(REPO / "specs" / "char_rnn_hello.yaml")


def _train(out: Path, *extra: str) -> int:
    return main(["train", SPEC, "-b", "torch", "--epochs", "1", "-o", str(out), *extra])


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert _train(folder, "--overwrite") == 1
    assert "not a run's (notes.txt)" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me"
