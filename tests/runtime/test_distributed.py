"""Data-parallel training on the torch backend: N processes (gloo; nccl on GPUs) train exactly as one
process does with the same global batch and seed — Keras's semantics, including the embedding's
per-occurrence second moment and clipnorm over every occurrence — and only rank 0 writes the run."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnspec
from rnnspec.cli import main

EMBEDDING = """rnnspec: 1
name: embedding-OPT
input: {vocab_size: 50}
embedding: {output_dim: 8, mask_zero: true}
recurrent:
  - {cell: lstm, units: 16}
head: {units: 1, activation: sigmoid}
training:
  optimizer: {name: OPT, learning_rate: 0.01, clipnorm: 0.01}
  loss: binary_crossentropy
  metrics: [accuracy]
"""

TAGGER = """rnnspec: 1
name: masked-tagger
input: {vocab_size: 40}
embedding: {output_dim: 6, mask_zero: true}
recurrent:
  - {cell: simple_rnn, units: 8, return_sequences: true}
head: {units: 5, activation: softmax}
training:
  optimizer: {name: rmsprop, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
"""

BIGRU = """rnnspec: 1
name: bigru
input: {features: 3}
recurrent:
  - {cell: gru, units: 6, bidirectional: true}
head: {units: 2}
training:
  optimizer: {name: adam, learning_rate: 0.01}
  loss: mse
  metrics: [mae]
"""

# each case: spec, and whether y is per step (the tagger's masked per-step loss)
CASES = {
    "embedding-adam-clipnorm": EMBEDDING.replace("OPT", "adam"),
    "embedding-rmsprop-clipnorm": EMBEDDING.replace("OPT", "rmsprop"),
    "masked-per-step": TAGGER,
    "bidirectional-gru": BIGRU,
}
OPTIONS = {"epochs": 2, "batch_size": 15, "seed": 1, "validation_split": 0.2}  # 36 train = 15 + 15 + 6; 8/7 shards


def _data(case: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(len(case))
    n, steps = 46, 12
    if case == "bidirectional-gru":
        return rng.normal(size=(n, steps, 3)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)
    vocab = 40 if case == "masked-per-step" else 50
    x = rng.integers(1, vocab, size=(n, steps)).astype(np.int32)
    for row, pad in enumerate(rng.integers(0, 8, size=n)):
        x[row, :pad] = 0  # pre-padding of many lengths: the shards hold different numbers of valid steps
    if case == "masked-per-step":
        return x, rng.integers(0, 5, size=(n, steps))
    return x, rng.integers(0, 2, size=n).astype(np.float32)


def _train(case: str) -> tuple[dict, dict[str, np.ndarray]]:
    spec = rnnspec.loads_spec(CASES[case])
    model = rnnspec.build(spec, "torch", seed=0)
    history = rnnspec.fit(model, *_data(case), **OPTIONS)
    return history, rnnspec.get_weights(model)


def _worker(rank: int, world: int, port: int, out: str, device: str) -> None:
    """One rank: every case, then a batch too small to share; rank 0 writes what it saw."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    if device == "cuda":
        torch.cuda.set_device(rank)
    results = {}
    for case in CASES:
        history, weights = _train(case)
        results[case] = {"history": history, "weights": {k: v.tolist() for k, v in weights.items()}}
    # resume with dropout: every process's own mask generator is in the checkpoint
    dropout = rnnspec.loads_spec(BIGRU.replace("head: {units: 2}", "head: [{dropout: 0.5}, {units: 2}]"))
    x, y = _data("bidirectional-gru")
    whole = rnnspec.fit(rnnspec.build(dropout, "torch", seed=0), x, y, epochs=3, batch_size=16, seed=2)
    saved = []
    rnnspec.fit(rnnspec.build(dropout, "torch", seed=0), x, y, epochs=1, batch_size=16, seed=2,
                on_checkpoint=saved.append)  # fmt: skip
    resumed = rnnspec.fit(rnnspec.build(dropout, "torch", seed=5), x, y, epochs=3, batch_size=16, resume=saved[0])
    results["dropout-resume"] = [whole["batch_loss"], resumed["batch_loss"]]
    spec = rnnspec.loads_spec(CASES["bidirectional-gru"])
    try:  # 37 samples in batches of 12: the last batch holds 1, and 2 processes cannot share it
        x, y = _data("bidirectional-gru")
        rnnspec.fit(rnnspec.build(spec, "torch", seed=0), x[:37], y[:37], epochs=1, batch_size=12, seed=0)
        results["too-small"] = "trained"
    except rnnspec.RnnspecError as exc:
        results["too-small"] = str(exc)
    if rank == 0:
        Path(out).write_text(json.dumps(results))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ddp") / "results.json"
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(out), "cpu"), nprocs=2)
    return json.loads(out.read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_two_gloo_processes_equal_one_process(two_processes: dict, case: str):
    torch.set_num_threads(1)
    history, weights = _train(case)
    got = two_processes[case]
    for key in ("batch_loss", "loss", "val_loss"):
        want = np.array(history[key])
        # float32 sums in another order: the reference measured 6.9e-7; 1e-5 is the bound
        np.testing.assert_allclose(np.array(got["history"][key]), want, rtol=1e-5, atol=0)
    metric = "mae" if case == "bidirectional-gru" else "accuracy"
    np.testing.assert_allclose(got["history"][metric], history[metric], rtol=1e-5, atol=1e-7)
    for name, value in weights.items():
        np.testing.assert_allclose(np.array(got["weights"][name], dtype=np.float32), value, rtol=0, atol=1e-5)


def test_resuming_a_data_parallel_run_with_dropout_equals_the_uninterrupted_one(two_processes: dict):
    whole, resumed = two_processes["dropout-resume"]
    assert resumed == whole  # bit for bit: each process's dropout generator was saved and restored


def test_a_batch_smaller_than_the_processes_is_refused(two_processes: dict):
    assert "a batch of 1 sample(s) cannot be shared by 2 processes" in two_processes["too-small"]


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_two_nccl_processes_equal_one_process(tmp_path: Path):
    """On GPUs (nccl). Tolerance as on CPU: 1e-5 relative per step (cuDNN is not used by these kernels)."""
    out = tmp_path / "results.json"
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(out), "cuda"), nprocs=2)
    results = json.loads(out.read_text())
    history, _ = _train("embedding-adam-clipnorm")
    got = results["embedding-adam-clipnorm"]["history"]["batch_loss"]
    np.testing.assert_allclose(got, history["batch_loss"], rtol=1e-5)


# -- the command line ---------------------------------------------------------------------------------------

SENTIMENT = """rnnspec: 1
name: ddp-cli
input: {vocab_size: 500, seq_len: 40}
embedding: {output_dim: 8, mask_zero: true}
recurrent:
  - {cell: gru, units: 8}
head: {units: 1, activation: sigmoid}
training:
  optimizer: {name: adam, learning_rate: 0.01, clipnorm: 0.1}
  loss: binary_crossentropy
  metrics: [accuracy]
  batch_size: 30
  epochs: 2
  validation_split: 0.2
  data: builtin:sentiment
"""


def test_train_nproc_2_writes_one_run_equal_to_one_process(tmp_path: Path, capfd: pytest.CaptureFixture[str]):
    spec = tmp_path / "s.yaml"
    spec.write_text(SENTIMENT)
    assert main(["train", str(spec), "--limit", "200", "--nproc", "2", "-o", str(tmp_path / "two")]) == 0
    out = capfd.readouterr()
    assert out.out.count("Epoch 2/2") == 1  # rank 0 alone prints
    assert out.out.count("batch size 30, in 2 data-parallel processes") == 1  # and says how many ran
    assert main(["train", str(spec), "--limit", "200", "-o", str(tmp_path / "one")]) == 0
    two, one = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("two", "one"))
    assert list(two) == list(one)
    np.testing.assert_allclose(two["batch_loss"], one["batch_loss"], rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "s.yaml", "two"]  # nothing else written
    capfd.readouterr()
    # evaluate sharded over 2 processes (each its part of every batch, the sums reduced), printed once
    assert main(["evaluate", str(tmp_path / "two"), "--json", "--nproc", "2"]) == 0
    printed = capfd.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert main(["evaluate", str(tmp_path / "two"), "--json"]) == 0
    alone = json.loads(capfd.readouterr().out)
    shared = json.loads(printed[0])
    assert shared.keys() == alone.keys()
    for key, value in alone.items():
        assert shared[key] == pytest.approx(value, rel=1e-6), key


def test_nproc_on_the_keras_backend_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    spec = tmp_path / "s.yaml"
    spec.write_text(SENTIMENT)
    assert main(["train", str(spec), "-b", "keras", "--nproc", "2", "-o", str(tmp_path / "k")]) == 1
    assert "--nproc runs on the torch backend" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


KILLED = """rnnspec: 1
name: killed
input: {vocab_size: 2000, seq_len: 60}
embedding: {output_dim: 16}
recurrent:
  - {cell: lstm, units: 32}
head: {units: 1, activation: sigmoid}
training: {optimizer: adam, loss: binary_crossentropy, batch_size: 16, epochs: 4, data: "builtin:sentiment"}
"""


def _ranks_of(marker: str) -> dict[int, int]:
    """LOCAL_RANK -> pid of the processes started by torchrun's launcher in the environment marked ``marker``."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = dict(
                item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in item
            )
        except OSError:
            continue
        if env.get(b"RNNSPEC_TEST_MARKER") == marker.encode() and b"LOCAL_RANK" in env:
            found[int(env[b"LOCAL_RANK"])] = int(pid)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the processes through /proc (Linux)")
def test_a_process_killed_mid_run_stops_the_group_and_the_last_epoch_is_written(tmp_path: Path):
    """kill -9 of rank 1 in epoch 2: rank 0 stops without a traceback and writes epoch 1; the launcher names
    the process that failed."""
    import signal
    import subprocess
    import sys
    import time
    import uuid

    from rnnspec.runtime.checkpoint import load_checkpoint

    (tmp_path / "s.yaml").write_text(KILLED)
    marker = uuid.uuid4().hex
    env = {**os.environ, "RNNSPEC_TEST_MARKER": marker}
    command = [sys.executable, "-m", "rnnspec", "train", "s.yaml", "--nproc", "2", "-o", "run"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / ".run.checkpoint.npz").exists():  # epoch 1 is done
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first epoch"
            time.sleep(0.05)
        os.kill(_ranks_of(marker)[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, (out, err)
    assert "process 1 of 2 failed (exit -9)" in err and "Traceback" not in out + err, (out, err)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert 1 <= len(history["loss"]) < 4 and history["interrupted"] is True
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").epochs_done == len(history["loss"])


def test_nproc_reads_the_spec_once_before_any_process_starts(tmp_path: Path, capfd: pytest.CaptureFixture[str]):
    missing = tmp_path / "missing.yaml"
    assert main(["train", str(missing), "--nproc", "3", "-o", str(tmp_path / "run")]) == 1
    out = capfd.readouterr()
    assert out.err.count("no such file") == 1 and str(missing) in out.err
    assert "torch.distributed" not in out.err and "Traceback" not in out.err
    bad_data = tmp_path / "s.yaml"
    bad_data.write_text(SENTIMENT)
    assert main(["train", str(bad_data), "--data", str(tmp_path / "none.npz"), "--nproc", "2"]) == 1
    out = capfd.readouterr()
    assert out.err.count("error:") == 1 and "data file not found" in out.err and "process 0 of 2" not in out.err
    assert main(["evaluate", str(tmp_path / "norun"), "--nproc", "2"]) == 1
    assert "process 0 of 2" not in capfd.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]
    (tmp_path / ".run.checkpoint.npz").write_bytes(b"PK\x03\x04 edited")  # a damaged checkpoint to resume
    assert main(["train", str(bad_data), "--nproc", "2", "-o", str(tmp_path / "run"), "--resume"]) == 1
    out = capfd.readouterr()
    assert out.err.count("not a readable rnnspec checkpoint") == 1 and "process 0 of 2" not in out.err


def test_a_stray_world_size_without_a_launcher_trains_in_one_process(tmp_path: Path, monkeypatch, capsys):
    from rnnspec.util import launched_world_size

    spec = tmp_path / "s.yaml"
    spec.write_text(SENTIMENT.replace("epochs: 2", "epochs: 1"))
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched_world_size() == 1
    assert main(["train", str(spec), "--limit", "40", "-o", str(tmp_path / "run")]) == 0
    assert "Traceback" not in capsys.readouterr().err and (tmp_path / "run" / "history.json").is_file()
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert launched_world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert launched_world_size() == 2  # what torchrun sets: a process group
