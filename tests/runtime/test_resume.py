"""Checkpoint and resume: 2 epochs, stop, resume to 4 equals an uninterrupted 4-epoch run (bit for bit on
torch, within 1e-6 on keras); a checkpoint of another run is refused, naming what differs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.lang.errors import RnnspecError
from rnnspec.runtime.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from tests.conftest import SPECS
from tests.parity import backend_or_skip

# dropout everywhere (spatial, between layers, before the head) and Adam: every kind of state a resume needs
DROPOUT = SPECS / "bilstm_dropout.yaml"


SMALL = """rnnspec: 1.1
name: small-dropout
input: {vocab_size: 60, seq_len: 12}
embedding: {output_dim: 6, mask_zero: true}
recurrent:
  - {spatial_dropout: 0.2}
  - {cell: gru, units: 6, dropout: 0.2}
head:
  - {dropout: 0.5}
  - {units: 1, activation: sigmoid}
training: {optimizer: adam, loss: binary_crossentropy, metrics: [accuracy], validation_split: 0.25}
"""


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 60, size=(n, 12)).astype(np.int32)
    for row, pad in enumerate(rng.integers(0, 6, size=n)):
        x[row, :pad] = 0
    return x, rng.integers(0, 2, size=n).astype(np.float32)


def _spec():
    """Dropout of three kinds (spatial, a cell's input, before the head) and Adam."""
    return rnnspec.loads_spec(SMALL)


def _fit_in_two(backend: str, spec, x, y, tmp_path: Path, **options) -> tuple[dict, dict, Checkpoint]:
    """Train 2 epochs writing checkpoints, then a fresh model resumes from the file to 4."""
    weights = rnnspec.initial_weights(spec, 0)
    first = rnnspec.build(spec, backend, weights=weights)
    path = tmp_path / "checkpoint.npz"
    rnnspec.fit(first, x, y, epochs=2, batch_size=8, seed=3, on_checkpoint=lambda c: save_checkpoint(c, path))
    checkpoint = load_checkpoint(path)
    assert checkpoint.epochs_done == 2
    second = rnnspec.build(spec, backend, seed=99)  # other initial weights: the checkpoint's must win
    history = rnnspec.fit(second, x, y, epochs=4, batch_size=8, seed=3, resume=checkpoint, **options)
    return history, rnnspec.get_weights(second), checkpoint


@pytest.mark.parametrize(("backend", "tolerance"), [("torch", 0.0), ("keras", 1e-6)])
def test_resume_equals_the_uninterrupted_run(backend: str, tolerance: float, tmp_path: Path):
    backend_or_skip(backend)
    spec = _spec()
    x, y = _data()
    whole = rnnspec.build(spec, backend, weights=rnnspec.initial_weights(spec, 0))
    uninterrupted = rnnspec.fit(whole, x, y, epochs=4, batch_size=8, seed=3)
    resumed, weights, _ = _fit_in_two(backend, spec, x, y, tmp_path)
    assert list(resumed) == list(uninterrupted)  # the same series, in Keras's order, seed last
    assert len(resumed["batch_loss"]) == 4 * 4 and len(resumed["loss"]) == 4
    for key in ("batch_loss", "loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed[key], uninterrupted[key], rtol=tolerance, atol=0)
    for name, value in rnnspec.get_weights(whole).items():
        np.testing.assert_allclose(weights[name], value, rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    "backend",
    ["torch", pytest.param("keras", marks=pytest.mark.slow)],  # keras: covered by the resume test
)
def test_the_same_seed_repeats_dropout(backend: str):
    """The seed seeds the dropout masks too: without it, a resumed run could not match the uninterrupted one."""
    backend_or_skip(backend)
    spec = _spec()
    x, y = _data()
    weights = rnnspec.initial_weights(spec, 0)
    runs = [rnnspec.fit(rnnspec.build(spec, backend, weights=weights), x, y, epochs=1, seed=s) for s in (5, 5, 6)]
    assert runs[0]["batch_loss"] == runs[1]["batch_loss"]
    assert runs[0]["batch_loss"] != runs[2]["batch_loss"]


def test_a_checkpoint_of_another_run_is_refused_with_what_differs(tmp_path: Path):
    backend_or_skip("torch")
    backend_or_skip("keras")
    spec = _spec()
    x, y = _data()
    checkpoints: list[Checkpoint] = []
    rnnspec.fit(rnnspec.build(spec, "torch", seed=0), x, y, epochs=1, batch_size=8, seed=3,
                on_checkpoint=checkpoints.append)  # fmt: skip
    checkpoint = checkpoints[0]

    def refused(*, spec=spec, x=x, y=y, seed=3, batch_size=8, backend="torch") -> str:
        model = rnnspec.build(spec, backend, seed=0)
        with pytest.raises(RnnspecError, match="cannot resume") as info:
            rnnspec.fit(model, x, y, epochs=3, batch_size=batch_size, seed=seed, resume=checkpoint)
        return str(info.value)

    changed = x.copy()
    changed[7, -1] += 1
    assert "data.sha256:" in refused(x=changed)
    assert "seed: 3 in the checkpoint, 4 now" in refused(seed=4)
    assert "training.batch_size: 8 in the checkpoint, 4 now" in refused(batch_size=4)
    other = spec.to_dict()
    other["recurrent"][1]["units"] = 7
    assert "spec.recurrent:" in refused(spec=rnnspec.spec_from_dict(other))
    assert 'backend: "torch" in the checkpoint, "keras" now' in refused(backend="keras")
    model = rnnspec.build(spec, "torch", seed=0)
    with pytest.raises(RnnspecError, match=r"nothing to resume: the run is finished \(1 epochs done, 1 asked for\)"):
        rnnspec.fit(model, x, y, epochs=1, batch_size=8, seed=3, resume=checkpoint)


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(RnnspecError, match="not a readable rnnspec checkpoint"):
        load_checkpoint(path)
    np.savez(path, meta=np.frombuffer(b'{"format": "other"}', np.uint8))
    with pytest.raises(RnnspecError, match="not a readable rnnspec checkpoint"):
        load_checkpoint(path)
    np.savez(path, meta=np.array([{"a": 1}], dtype=object))  # a pickled object is never loaded
    with pytest.raises(RnnspecError, match="not a readable rnnspec checkpoint"):
        load_checkpoint(path)


# -- the command line -------------------------------------------------------------------------------------


def _train(out: Path, epochs: int, *extra: str) -> int:
    return main(["train", str(DROPOUT), "-b", "torch", "--epochs", str(epochs), "-o", str(out), *extra])


def test_train_then_resume_equals_training_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    backend_or_skip("torch")
    assert _train(tmp_path / "once", 3, "--seed", "2") == 0
    assert _train(tmp_path / "twice", 1, "--seed", "2") == 0
    assert (tmp_path / "twice" / "checkpoint.npz").is_file()
    capsys.readouterr()
    assert _train(tmp_path / "twice", 3, "--resume") == 0  # the seed comes from the run
    out = capsys.readouterr().out
    assert "resuming after epoch 1" in out and "Epoch 2/3" in out and "Epoch 1/3" not in out
    for name in ("history.json", "run.json"):
        assert (tmp_path / "twice" / name).read_bytes() == (tmp_path / "once" / name).read_bytes(), name
    # the weights bit for bit (not the files' bytes: safetensors writes its metadata in a random order)
    resumed, once = (
        rnnspec.load_weights(tmp_path / d / "bilstm-dropout.weights.safetensors") for d in ("twice", "once")
    )
    assert resumed.keys() == once.keys() and all(np.array_equal(resumed[k], once[k]) for k in once)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["once", "twice"]  # no checkpoint left beside them


def test_a_killed_run_resumes_from_the_checkpoint_beside_its_folder(tmp_path: Path, capsys):
    """What a kill -9 after epoch 1 leaves: no run folder, its checkpoint beside where it would be."""
    backend_or_skip("torch")
    assert _train(tmp_path / "done", 1) == 0
    run = tmp_path / "run"
    shutil.move(tmp_path / "done" / "checkpoint.npz", tmp_path / ".run.checkpoint.npz")
    capsys.readouterr()
    assert _train(run, 2) == 1
    assert "an unfinished run into" in capsys.readouterr().err and not run.exists()
    assert _train(run, 2, "--resume") == 0
    assert (
        json.loads((run / "history.json").read_text())["loss"][0]
        == json.loads((tmp_path / "done" / "history.json").read_text())["loss"][0]
    )
    assert not (tmp_path / ".run.checkpoint.npz").exists() and (run / "checkpoint.npz").is_file()


def test_resume_without_a_checkpoint_or_with_other_data_is_refused(tmp_path: Path, capsys):
    backend_or_skip("torch")
    assert _train(tmp_path / "empty", 2, "--resume") == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert _train(tmp_path / "run", 1) == 0
    capsys.readouterr()
    assert _train(tmp_path / "run", 2, "--resume", "--limit", "100") == 1
    err = capsys.readouterr().err
    assert "cannot resume" in err and "data.samples: 480 in the checkpoint, 100 now" in err
    assert _train(tmp_path / "run", 1, "--resume") == 1
    captured = capsys.readouterr()
    assert "is finished (1 epochs done, 1 asked for)" in captured.err and "resuming" not in captured.out


def test_a_resume_stopped_before_its_first_epoch_keeps_the_checkpoint(tmp_path: Path, monkeypatch, capsys):
    from .test_run_folders import _interrupt_in_epoch

    backend_or_skip("torch")
    run = tmp_path / "run"
    assert _train(run, 1) == 0
    _interrupt_in_epoch(monkeypatch, 1)  # Ctrl-C in the first epoch of the resumed run
    assert _train(run, 3, "--resume") == 130
    monkeypatch.undo()
    assert (run / "checkpoint.npz").is_file()  # the run still resumes from epoch 1
    capsys.readouterr()
    assert _train(run, 2, "--resume") == 0
    assert "resuming after epoch 1" in capsys.readouterr().out


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_a_checkpoint_within_an_epoch_resumes_exactly(backend: str, tmp_path: Path):
    """checkpoint_every=2: checkpoints after batches 2 and 4 (the epoch's end) of every 4-batch epoch; resuming
    from one in the middle of an epoch trains the rest of its batches with the epoch's sums so far."""
    backend_or_skip(backend)
    spec = _spec()
    x, y = _data()  # 30 training samples (0.25 for validation), batches of 8: 4 per epoch
    weights = rnnspec.initial_weights(spec, 0)
    checkpoints: list[Checkpoint] = []
    model = rnnspec.build(spec, backend, weights=weights)
    whole = rnnspec.fit(
        model, x, y, epochs=3, batch_size=8, seed=3, on_checkpoint=checkpoints.append, checkpoint_every=2
    )
    assert [(c.epochs_done, c.steps_done) for c in checkpoints] == [(0, 2), (1, 0), (1, 2), (2, 0), (2, 2), (3, 0)]
    assert checkpoints[2].position == "epoch 1 and 2 batches" and len(checkpoints[2].history["loss"]) == 1
    final = rnnspec.get_weights(model)
    for checkpoint in (checkpoints[0], checkpoints[4]):  # in the first epoch, and in the last
        save_checkpoint(checkpoint, tmp_path / "c.npz")
        resumed_model = rnnspec.build(spec, backend, seed=99)
        resumed = rnnspec.fit(
            resumed_model, x, y, epochs=3, batch_size=8, seed=3, resume=load_checkpoint(tmp_path / "c.npz")
        )
        assert resumed == whole  # bit for bit: batch losses, the epoch's loss and accuracy, validation
        assert all(np.array_equal(rnnspec.get_weights(resumed_model)[k], v) for k, v in final.items())


def test_checkpoint_every_needs_a_positive_count_and_a_receiver():
    backend_or_skip("torch")
    spec = _spec()
    x, y = _data()
    model = rnnspec.build(spec, "torch", seed=0)
    for every, receiver in ((0, print), (2, None)):
        with pytest.raises(RnnspecError, match="checkpoint_every must be a positive number of batches"):
            rnnspec.fit(model, x, y, epochs=1, checkpoint_every=every, on_checkpoint=receiver)


def test_a_run_killed_within_an_epoch_resumes_from_its_last_batches(tmp_path: Path, monkeypatch, capsys):
    from .test_run_folders import _interrupt_in_epoch

    backend_or_skip("torch")
    assert _train(tmp_path / "once", 2) == 0
    run = tmp_path / "run"
    _interrupt_in_epoch(monkeypatch, 2, after=3)  # Ctrl-C after batch 3 of epoch 2: checkpoint after batch 2
    assert _train(run, 2, "--checkpoint-every", "2") == 130
    monkeypatch.undo()
    assert load_checkpoint(run / "checkpoint.npz").position == "epoch 1 and 2 batches"
    capsys.readouterr()
    assert _train(run, 2, "--resume") == 0
    assert "resuming after epoch 1 and 2 batches" in capsys.readouterr().out
    for name in ("history.json", "run.json"):
        assert (run / name).read_bytes() == (tmp_path / "once" / name).read_bytes(), name


def test_a_run_killed_in_its_first_epoch_keeps_its_checkpoint(tmp_path: Path, monkeypatch, capsys):
    from .test_run_folders import _interrupt_in_epoch

    backend_or_skip("torch")
    run = tmp_path / "run"
    _interrupt_in_epoch(monkeypatch, 1, after=3)
    assert _train(run, 1, "--checkpoint-every", "2") == 130
    monkeypatch.undo()
    out = capsys.readouterr().out
    assert "nothing written: no epoch finished" in out and "--resume" in out and not run.exists()
    assert load_checkpoint(tmp_path / ".run.checkpoint.npz").position == "epoch 0 and 2 batches"
    assert _train(run, 1, "--resume") == 0 and (run / "history.json").is_file()
