"""Canonical weights: seeded Keras initialisation, safetensors files, and every mismatch reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec import WeightsError
from rnnspec.runtime.models import CountMismatchError
from tests.conftest import SPECS
from tests.parity import backend_or_skip, random_weights

LSTM = SPECS / "imdb_lstm.yaml"


def test_initializers_follow_keras_defaults():
    spec = rnnspec.load_spec(SPECS / "bidirectional_lstm.yaml")
    w = rnnspec.initial_weights(spec, 0)
    emb = w["embedding/embeddings"]
    assert emb.dtype == np.float32 and -0.05 <= emb.min() < -0.049 and 0.049 < emb.max() <= 0.05
    kernel = w["recurrent_0/forward/kernel"]  # glorot uniform over the whole (32, 128) matrix
    limit = np.sqrt(6 / (32 + 128))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    rec = w["recurrent_0/backward/recurrent_kernel"].astype(np.float64)  # orthogonal: rows orthonormal
    assert np.allclose(rec @ rec.T, np.eye(32), atol=1e-5)
    bias = w["recurrent_0/forward/bias"]  # zeros, forget gate (i, f, c, o) at 1
    assert np.array_equal(bias, np.r_[np.zeros(32), np.ones(32), np.zeros(64)].astype(np.float32))


def test_seed_is_reproducible_and_seeds_differ():
    spec = rnnspec.load_spec(LSTM)
    a, b, c = (rnnspec.initial_weights(spec, s) for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["recurrent_0/kernel"], c["recurrent_0/kernel"])


def test_torch_convention_has_recurrent_bias_names():
    spec = rnnspec.load_spec(SPECS / "char_rnn_hello.yaml")
    assert rnnspec.weight_shapes(spec) == {
        "recurrent_0/kernel": (9, 9),
        "recurrent_0/recurrent_kernel": (9, 9),
        "recurrent_0/bias": (9,),
        "recurrent_0/recurrent_bias": (9,),
    }


def test_file_round_trip_carries_the_spec(tmp_path: Path):
    spec = rnnspec.load_spec(SPECS / "reuters_gru.yaml")
    weights = random_weights(spec, 0)
    path = tmp_path / "w.safetensors"
    rnnspec.save_weights(weights, path, spec)
    loaded = rnnspec.load_weights(path, spec=spec)
    assert all(np.array_equal(loaded[k], weights[k]) for k in weights)
    assert rnnspec.spec_from_weights_file(path) == spec
    assert path.read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle: a safetensors header length
    header = json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")])
    assert header["__metadata__"]["format"] == "rnnspec-weights/1"


def test_every_mismatch_is_reported():
    spec = rnnspec.load_spec(LSTM)
    weights = rnnspec.initial_weights(spec, 0)
    weights["recurrent_0/kernel"] = weights["recurrent_0/kernel"][:, :64]
    del weights["head/bias"]
    weights["recurrent_1/kernel"] = np.zeros(3, np.float32)
    with pytest.raises(WeightsError) as info:
        rnnspec.build(spec, "numpy", weights=weights)
    text = str(info.value)
    assert "recurrent_0/kernel: shape (32, 64), expected (32, 128)" in text
    assert "missing head/bias (expected shape (1,))" in text
    assert "unexpected recurrent_1/kernel" in text


def test_weights_of_another_spec_are_refused(tmp_path: Path):
    path = tmp_path / "gru.safetensors"
    gru = rnnspec.load_spec(SPECS / "reuters_gru.yaml")
    rnnspec.save_weights(rnnspec.initial_weights(gru, 0), path, gru)
    with pytest.raises(WeightsError, match="do not fit spec 'imdb-lstm'"):
        rnnspec.load_weights(path, spec=rnnspec.load_spec(LSTM))


@pytest.mark.parametrize("damage", ["truncate", "garbage-header", "empty", "not-safetensors"])
def test_damaged_files_give_clear_errors(tmp_path: Path, damage: str):
    spec = rnnspec.load_spec(LSTM)
    path = tmp_path / "w.safetensors"
    rnnspec.save_weights(rnnspec.initial_weights(spec, 0), path, spec)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage-header":
        path.write_bytes(raw[:8] + b"{not json" + raw[17:])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"\x80\x04\x95 a pickle, not weights")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        rnnspec.load_weights(path)


def test_missing_file():
    with pytest.raises(WeightsError, match="no such weights file"):
        rnnspec.load_weights("nowhere.safetensors")


def test_build_refuses_a_model_whose_count_differs(monkeypatch: pytest.MonkeyPatch):
    impl = rnnspec.get_backend("numpy")
    monkeypatch.setattr(
        type(impl), "count_params", lambda self, model: {"embedding": 1, "recurrent_0": 8320, "head": 33}
    )
    with pytest.raises(CountMismatchError, match="embedding: numpy has 1, analytic 320000"):
        rnnspec.build(LSTM, "numpy", seed=0)


def test_round_trip_keras_torch_keras_is_exact():
    backend_or_skip("keras")
    backend_or_skip("torch")
    spec = rnnspec.load_spec(SPECS / "bidirectional_lstm.yaml")
    start = random_weights(spec, 4)
    keras_model = rnnspec.build(spec, "keras", weights=start)
    torch_model = rnnspec.build(spec, "torch", weights=rnnspec.get_weights(keras_model))
    back = rnnspec.build(spec, "keras", weights=rnnspec.get_weights(torch_model))
    final = rnnspec.get_weights(back)
    assert all(np.array_equal(final[k], start[k]) for k in start)


def test_set_weights_checks_against_the_spec():
    model = rnnspec.build(LSTM, "numpy", seed=0)
    with pytest.raises(WeightsError, match="missing"):
        rnnspec.set_weights(model, {"head/bias": np.zeros(1)})
