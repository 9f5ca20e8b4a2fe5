"""Data larger than memory: an .npz's x read a batch at a time trains exactly as the array in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.cli import main
from rnnspec.data import DataError, load_data
from rnnspec.data import arrays as arrays_module
from rnnspec.data import lazy as lazy_module
from rnnspec.data.lazy import LazyRows, lazy_npy, lazy_npz_member
from tests.parity import backend_or_skip

SPEC = """rnnspec: 1
name: lazy
input: {vocab_size: 300, seq_len: 16}
embedding: {output_dim: 6, mask_zero: true}
recurrent:
  - {cell: gru, units: 6}
head: {units: 1, activation: sigmoid}
training:
  optimizer: adam
  loss: binary_crossentropy
  metrics: [accuracy]
  batch_size: 16
  epochs: 2
  validation_split: 0.25
"""


def _arrays(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 300, size=(n, 16)).astype(np.int16)  # cast to int32 as rows are read
    for row, pad in enumerate(rng.integers(0, 10, size=n)):
        x[row, :pad] = 0
    return x, rng.integers(0, 2, size=n).astype(np.float32)


def test_rows_read_on_demand_equal_the_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    x, _ = _arrays(57)
    np.save(tmp_path / "x.npy", x)
    rows = lazy_npy(tmp_path / "x.npy")
    assert isinstance(rows, LazyRows) and rows.shape == x.shape and rows.dtype == np.int16 and len(rows) == 57
    index = np.random.default_rng(1).permutation(57)[:20]
    assert np.array_equal(rows[index], x[index])  # any order, runs of neighbours read together
    assert np.array_equal(rows[[3, 4, 5, 9, 4]], x[[3, 4, 5, 9, 4]])
    view = rows[10:30]
    assert isinstance(view, LazyRows) and len(view) == 20 and np.array_equal(np.asarray(view), x[10:30])
    assert np.array_equal(view[[0, 19]], x[[10, 29]]) and np.array_equal(rows[-1], x[-1])
    assert rows.astype(np.int32)[index].dtype == np.int32
    monkeypatch.setattr(lazy_module, "CHUNK_BYTES", 100)  # many chunks: the range checks see every one
    assert len(list(rows.chunks())) > 10 and (rows.min(), rows.max()) == (x.min(), x.max())
    with pytest.raises(IndexError):
        rows[[57]]


def test_an_npz_member_is_read_in_place_unless_compressed(tmp_path: Path):
    x, y = _arrays(30)
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=y)
    rows = lazy_npz_member(tmp_path / "plain.npz", "x")
    assert rows is not None and np.array_equal(np.asarray(rows), x)
    assert lazy_npz_member(tmp_path / "packed.npz", "x") is None


def test_a_header_that_claims_more_rows_than_stored_is_refused(tmp_path: Path):
    np.save(tmp_path / "x.npy", np.ones((4, 10), np.int32))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(data.replace(b"(4, 10)", b"(9999999999, 10)"))
    with pytest.raises(DataError, match="its header does not match its data"):
        lazy_npy(tmp_path / "x.npy")


@pytest.fixture
def lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every uncompressed x is read on demand (the threshold is 256 MiB otherwise)."""
    monkeypatch.setattr(arrays_module, "LAZY_BYTES", 0)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_training_from_the_file_equals_training_from_memory(backend: str, tmp_path: Path, lazily: None):
    backend_or_skip(backend)
    spec = rnnspec.loads_spec(SPEC)
    x, y = _arrays()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    dataset = load_data(spec, tmp_path / "data.npz")
    assert isinstance(dataset.x, LazyRows)
    weights = rnnspec.initial_weights(spec, 0)
    histories, finals = [], []
    for inputs in (dataset.x, x.astype(np.int32)):
        model = rnnspec.build(spec, backend, weights=weights)
        histories.append(rnnspec.fit(model, inputs, y, seed=4))
        finals.append(rnnspec.get_weights(model))
    assert histories[0] == histories[1]  # the same batches: bit for bit
    assert all(np.array_equal(finals[0][k], finals[1][k]) for k in finals[1])


def test_train_from_a_large_npz_on_the_command_line(tmp_path: Path, lazily: None, capsys):
    backend_or_skip("torch")
    (tmp_path / "s.yaml").write_text(SPEC)
    x, y = _arrays()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=y)  # read whole, as before
    for name in ("data", "packed"):
        out = tmp_path / f"run-{name}"
        assert main(["train", str(tmp_path / "s.yaml"), "--data", str(tmp_path / f"{name}.npz"), "-o", str(out)]) == 0
    lazy, whole = (json.loads((tmp_path / f"run-{n}" / "history.json").read_text()) for n in ("data", "packed"))
    assert lazy == whole


def test_an_id_out_of_range_is_found_in_whichever_chunk_it_is(tmp_path: Path, lazily: None, monkeypatch):
    monkeypatch.setattr(lazy_module, "CHUNK_BYTES", 64)  # two rows per chunk
    spec = rnnspec.loads_spec(SPEC)
    x, y = _arrays()
    x[77, 5] = 300
    np.savez(tmp_path / "data.npz", x=x, y=y)
    with pytest.raises(DataError) as info:
        load_data(spec, tmp_path / "data.npz")
    assert "id 300 at sample 77, step 5 (ids span [0, 300])" in str(info.value)


def test_a_file_larger_than_memory_is_refused_only_when_it_would_be_loaded(tmp_path: Path, lazily: None, monkeypatch):
    import rnnspec.util

    spec = rnnspec.loads_spec(SPEC)
    x, y = _arrays()
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=y)
    monkeypatch.setattr(rnnspec.util, "available_memory", lambda: 100)  # a machine with 100 bytes free
    assert isinstance(load_data(spec, tmp_path / "plain.npz").x, LazyRows)
    with pytest.raises(DataError, match="too large to load into memory"):
        load_data(spec, tmp_path / "packed.npz")


def test_a_two_dimensional_features_file_stays_on_disk(tmp_path: Path, lazily: None):
    spec = rnnspec.loads_spec(
        "rnnspec: 1\nname: f\ninput: {features: 1}\nrecurrent: [{cell: lstm, units: 3}]\nhead: {units: 1}\n"
        "training: {loss: mse}\n"
    )
    x = np.random.default_rng(0).normal(size=(20, 9)).astype(np.float32)  # (n, steps): one feature per step
    np.savez(tmp_path / "f.npz", x=x, y=np.zeros(20, np.float32))
    rows = load_data(spec, tmp_path / "f.npz").x
    assert isinstance(rows, LazyRows) and rows.shape == (20, 9, 1)
    assert np.array_equal(rows[[4, 2]], x[[4, 2]][..., None])
