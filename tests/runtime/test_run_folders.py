"""A run folder is written as a unit: a finished run is never lost, replaced unasked, or mixed with another.

Every scenario trains seed 004's one-sample character model for an epoch or two on torch (fast).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import rnnspec
from rnnspec.cli import main
from rnnspec.lang.errors import RnnspecError
from rnnspec.runtime.runs import RunFolder
from tests.conftest import SPECS

HELLO = str(SPECS / "char_rnn_hello.yaml")
WEIGHTS = "char-rnn-hello.weights.safetensors"

FLOATS = """rnnspec: 1.1
name: floats
input: {features: 2, seq_len: 3}
recurrent: [{cell: simple_rnn, units: 2}]
head: {units: 1}
training: {loss: mse, batch_size: 4, epochs: 1}
"""


def _train(out: Path, *extra: str, spec: str = HELLO) -> int:
    return main(["train", spec, "-b", "torch", "--epochs", "1", "-o", str(out), *extra])


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _hidden(folder: Path) -> list[str]:
    """Staging or old folders left beside ``folder``."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("."))


def _interrupt_in_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int, after: int = 1) -> None:
    """Ctrl-C in the middle of epoch ``epoch`` (1-based): after its optimizer step ``after``."""
    from rnnspec_backends.torch import train as torch_train

    original = torch_train.TorchTrainer.train_epoch
    calls = {"n": 0}

    def train_epoch(self, x, y, batch_size, progress=None, **within):
        calls["n"] += 1

        def step(done: int, total: int) -> None:
            if calls["n"] == epoch and done >= after:
                raise KeyboardInterrupt
            if progress is not None:
                progress(done, total)

        return original(self, x, y, batch_size, step, **within)

    monkeypatch.setattr(torch_train.TorchTrainer, "train_epoch", train_epoch)


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """A folder holding a finished one-epoch run."""
    out = tmp_path / "run"
    assert _train(out) == 0
    return out


def test_a_finished_run_is_refused_before_training_with_the_fix(finished: Path, capsys) -> None:
    before = _contents(finished)
    capsys.readouterr()
    assert _train(finished) == 1
    printed = capsys.readouterr()
    assert f"{finished} already holds a run" in printed.err
    assert "--overwrite" in printed.err and f"-o {finished.parent / 'run-2'}" in printed.err
    assert "training" not in printed.out
    assert _contents(finished) == before and _hidden(finished) == []


def test_an_empty_folder_is_used_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert _train(out) == 0
    assert (out / WEIGHTS).exists()


def test_overwrite_never_mixes_runs_no_stale_vocab(finished: Path, tmp_path: Path) -> None:
    """The first run had a vocab.json (an alphabet); the second has none, so none may be left behind."""
    assert (finished / "vocab.json").exists()
    rng = np.random.default_rng(0)
    lines = [json.dumps({"x": rng.normal(size=(3, 2)).tolist(), "y": [float(rng.normal())]}) for _ in range(8)]
    (tmp_path / "floats.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "floats.yaml").write_text(FLOATS)
    code = _train(finished, "--overwrite", "--data", str(tmp_path / "floats.jsonl"), spec=str(tmp_path / "floats.yaml"))
    assert code == 0
    assert sorted(p.name for p in finished.iterdir()) == [
        "checkpoint.npz",
        "floats.torch.safetensors",
        "floats.weights.safetensors",
        "history.json",
        "loss.png",
        "run.json",
    ]
    assert _hidden(finished) == []


def test_ctrl_c_in_epoch_1_of_a_rerun_keeps_the_finished_run(finished: Path, monkeypatch, capsys) -> None:
    before = _contents(finished)
    _interrupt_in_epoch(monkeypatch, 1)
    assert _train(finished, "--overwrite", "--epochs", "3") == 130
    out = capsys.readouterr().out
    assert "nothing written: no epoch finished" in out and f"the run already in {finished} is untouched" in out
    assert _contents(finished) == before and _hidden(finished) == []


def test_ctrl_c_in_epoch_2_writes_the_run_of_epoch_1(finished: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    reference = tmp_path / "reference"
    assert _train(reference, "--seed", "3") == 0  # a clean one-epoch run to compare with
    _interrupt_in_epoch(monkeypatch, 2)
    assert _train(finished, "--overwrite", "--epochs", "3", "--seed", "3") == 130
    assert "keeping the weights of the last completed epoch (1)" in capsys.readouterr().out
    history = json.loads((finished / "history.json").read_text())
    assert history["interrupted"] is True and len(history["loss"]) == 1
    assert history["loss"] == json.loads((reference / "history.json").read_text())["loss"]
    kept, clean = rnnspec.load_weights(finished / WEIGHTS), rnnspec.load_weights(reference / WEIGHTS)
    assert all(np.array_equal(kept[k], clean[k]) for k in clean)
    assert _hidden(finished) == []


def test_a_full_disk_names_the_folder_and_keeps_the_old_run(finished: Path, monkeypatch, capsys) -> None:
    from rnnspec.runtime import runs

    before = _contents(finished)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "plot_history", full)
    assert _train(finished, "--overwrite") == 1
    err = capsys.readouterr().err
    assert f"cannot write the run folder {finished}: No space left on device" in err
    assert "the run already there is untouched" in err and ".partial" not in err
    # the trained epoch stays resumable, and the message says how
    assert "its last completed epoch stays beside it (.run.checkpoint.npz)" in err and "--resume" in err
    assert _contents(finished) == before and _hidden(finished) == [".run.checkpoint.npz"]


def test_a_failed_rename_into_place_puts_the_old_run_back(finished: Path, monkeypatch) -> None:
    before = _contents(finished)
    run = RunFolder(finished, overwrite=True)
    (run.staging / "history.json").write_text("{}")
    real_rename = os.rename

    def rename(src, dst):
        if Path(src) == run.staging:
            raise OSError(errno.EIO, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        run.commit()
    monkeypatch.undo()
    run.abort()
    assert _contents(finished) == before and _hidden(finished) == []


def test_an_unwritable_place_is_found_before_training(tmp_path: Path, capsys) -> None:
    if os.geteuid() == 0:  # root writes anywhere; a path under a regular file fails for root too
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out, named = blocker / "sub" / "run", f"{blocker} is a file"
    else:
        blocker = tmp_path / "locked"
        blocker.mkdir()
        blocker.chmod(0o500)
        out, named = blocker / "run", f"{blocker} is not writable"
    try:
        assert _train(out) == 1
    finally:
        blocker.chmod(0o700)
    printed = capsys.readouterr()
    assert f"cannot write the run folder {out}: {named}" in printed.err and "nothing was trained" in printed.err
    assert "training" not in printed.out


def test_a_full_disk_before_training_is_found_by_the_probe(tmp_path: Path, monkeypatch) -> None:
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(RnnspecError, match=r"No space left on device.*nothing was trained"):
        RunFolder(tmp_path / "run")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_what_kill_9_left_is_tidied_up(tmp_path: Path) -> None:
    """A kill between commit's two renames leaves the old run hidden; a kill while training, a staging folder."""
    target = tmp_path / "run"
    old = tmp_path / ".run.old-1a2b3c4d"
    old.mkdir()
    (old / "history.json").write_text('{"loss": [1.0]}')
    dead = tmp_path / f".run.partial-{2**22 + 12345}-deadbeef"  # above Linux's pid_max default: never running
    dead.mkdir()
    (dead / "loss.png").write_bytes(b"half")
    alive = tmp_path / f".run.partial-{os.getpid()}-0badcafe"
    alive.mkdir()
    run = RunFolder(target, overwrite=True)
    try:
        assert (target / "history.json").read_text() == '{"loss": [1.0]}'
        assert not old.exists() and not dead.exists() and alive.exists()
    finally:
        run.abort()


def test_the_run_folder_gets_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        assert _train(tmp_path / "run") == 0
    finally:
        os.umask(umask)
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o755


def test_kill_9_while_a_run_is_written_leaves_the_old_run(finished: Path) -> None:
    """A real ``kill -9`` of ``rnnspec train --overwrite``: the old run stays whole; the next run tidies up."""
    before = _contents(finished)
    command = [sys.executable, "-m", "rnnspec", "train", HELLO, "-b", "torch", "--epochs", "100000"]
    child = subprocess.Popen([*command, "-o", str(finished), "--overwrite"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().startswith("training")
        time.sleep(0.5)  # well into training: every staged write goes to the hidden folder
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert _contents(finished) == before
    # the staging folder, and the checkpoint of the last epoch the killed run completed (for --resume)
    # (and the lock file, holding the dead pid; perhaps the temp file of a checkpoint write cut short)
    hidden = [n for n in _hidden(finished) if not n.endswith(".tmp")]
    assert hidden[:2] == [".run.checkpoint.npz", ".run.lock"]
    assert [n.startswith(".run.partial-") for n in hidden[2:]] == [True]
    assert (finished.parent / ".run.lock").read_text().strip() == str(child.pid)
    with pytest.raises(RnnspecError, match="left a checkpoint"):
        RunFolder(finished)  # neither --resume nor --overwrite: refused, the checkpoint kept
    RunFolder(finished, overwrite=True).abort()  # --overwrite starts afresh: the stale checkpoint goes too
    assert _hidden(finished) == []


def test_the_working_folder_is_refused_as_a_run_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """Renaming the run into place would replace the folder the shell stands in."""
    monkeypatch.chdir(tmp_path)
    assert _train(Path(".")) == 1
    assert "is the working folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- one run at a time in a folder ------------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_train_into_a_folder_being_written_is_refused_with_the_holders_pid(
    tmp_path: Path, overwrite: bool
) -> None:
    """Two concurrent ``train -o run``: the second is refused (naming the first's pid) while the first holds the
    folder's lock; once the first is gone (even by kill -9), its lock no longer blocks."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "rnnspec", "train", HELLO, "-b", "torch"]
    first = subprocess.Popen([*command, "--epochs", "100000", "-o", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().startswith("training")
        second = subprocess.run(
            [*command, "--epochs", "1", "-o", str(out), *(["--overwrite"] if overwrite else [])],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1, second.stderr
        assert f"process {first.pid}" in second.stderr and "is being written by another run" in second.stderr
        assert "Traceback" not in second.stderr and "training" not in second.stdout
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert not out.exists()  # the first never finished; the second wrote nothing
    RunFolder(out, overwrite=True).abort()  # the dead process's lock file does not block
    assert _hidden(out) == []


def test_a_run_folder_that_cannot_be_replaced_is_refused_before_the_first_epoch(
    finished: Path, monkeypatch, capsys
) -> None:
    """The preflight probes the target itself (the rename that replaces it), not only its parent."""
    before = _contents(finished)
    capsys.readouterr()
    real_rename = os.rename

    def rename(src, dst):
        if Path(src) == finished:  # as an immutable folder (chattr +i) answers
            raise PermissionError(errno.EPERM, "Operation not permitted", str(src))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    assert _train(finished, "--overwrite") == 1
    printed = capsys.readouterr()
    assert "cannot replace the run folder" in printed.err and "nothing was trained" in printed.err
    assert "Epoch" not in printed.out and "training" not in printed.out
    monkeypatch.undo()
    assert _contents(finished) == before and _hidden(finished) == []
