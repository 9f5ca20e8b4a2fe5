"""Thread counts: --threads, RNNSPEC_THREADS, and the automatic choice from the CPUs not busy elsewhere."""

from __future__ import annotations

import os

import pytest

from rnnspec import util
from rnnspec.cli import main
from tests.parity import backend_or_skip


@pytest.mark.parametrize(("value", "parsed"), [("", None), ("auto", None), (" AUTO ", None), ("1", 1), ("16", 16)])
def test_thread_counts_parse(value: str, parsed: int | None):
    assert util.parse_threads(value, "--threads") == parsed


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", "5000"])
def test_bad_thread_counts_are_refused(value: str):
    with pytest.raises(
        ValueError, match=rf"^--threads must be a positive integer \(at most 4096\) or auto, not '{value}'"
    ):
        util.parse_threads(value, "--threads")


def test_the_automatic_count_leaves_the_busy_cpus_to_their_owners(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(util.THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(util, "busy_cpus", lambda interval=0.1: 1)
    assert util.choose_threads() == 3
    monkeypatch.setattr(util, "busy_cpus", lambda interval=0.1: 9)
    assert util.choose_threads() == 1  # never zero
    monkeypatch.setenv(util.THREADS_ENV, "2")
    assert util.choose_threads() == 2  # the environment wins over the measurement
    assert util.choose_threads(5) == 5  # and --threads over the environment


def test_busy_cpus_reads_the_machine():
    busy = util.busy_cpus(0.05)
    assert 0 <= busy <= (os.cpu_count() or 1)


@pytest.mark.parametrize(("argv", "env", "expected"), [(["--threads", "1"], None, 1), ([], "1", 1)])
def test_the_cli_gives_the_backend_its_threads(argv, env, expected, monkeypatch: pytest.MonkeyPatch, capsys):
    torch = pytest.importorskip("torch")
    backend_or_skip("torch")
    before = torch.get_num_threads()
    if env is not None:
        monkeypatch.setenv(util.THREADS_ENV, env)
    try:
        assert main([*argv, "build", "specs/char_rnn_hello.yaml", "--backend", "torch"]) == 0
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


def test_a_bad_thread_count_is_a_usage_error(capsys):
    assert main(["--threads", "0", "summary", "specs/char_rnn_hello.yaml"]) == 2
    assert "must be a positive integer" in capsys.readouterr().err
