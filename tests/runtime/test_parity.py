"""Forward parity: keras vs torch vs numpy on the shipped specs and a generated matrix.

Random weights (biases included) and random pre-padded inputs; max abs difference <= 1e-5 in
float32 (the NumPy reference computes in float64). `pytest --full-matrix` runs every point of the
matrix instead of a covering sample.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnspec
from tests.conftest import SPECS
from tests.parity import backend_or_skip, matrix_spec, random_inputs, random_weights

TOL = 1e-5
PAIRS = [("numpy", "torch"), ("numpy", "keras"), ("torch", "keras")]
SHIPPED = sorted(p.stem for p in SPECS.glob("*.yaml"))


def _outputs(spec, backend: str, weights, x) -> np.ndarray:
    backend_or_skip(backend)
    model = rnnspec.build(spec, backend, weights=weights)
    return rnnspec.predict(model, x)


def _shrunk(stem: str) -> rnnspec.ModelSpec:
    """The shipped spec with a shorter fixed length (same structure), to keep the suite fast."""
    data = rnnspec.load_spec(SPECS / f"{stem}.yaml").to_dict()
    if data["input"].get("seq_len"):
        data["input"]["seq_len"] = min(data["input"]["seq_len"], 40)
    return rnnspec.spec_from_dict(data)


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_spec_parity(stem: str, pair: tuple[str, str]):
    spec = _shrunk(stem)
    weights, x = random_weights(spec, 1), random_inputs(spec, 2, batch=3)
    a, b = (_outputs(spec, name, weights, x) for name in pair)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= TOL


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_matrix_parity(matrix_case: dict, pair: tuple[str, str]):
    spec = matrix_spec(matrix_case)
    weights, x = random_weights(spec, 3), random_inputs(spec, 4)
    a, b = (_outputs(spec, name, weights, x) for name in pair)
    assert np.abs(a - b).max() <= TOL


@pytest.mark.parametrize("backend", ["numpy", "torch", "keras"])
@pytest.mark.parametrize("stem", ["reuters_gru", "bidirectional_lstm", "char_rnn_hello"])
def test_same_seed_same_weights_on_every_backend(stem: str, backend: str):
    backend_or_skip(backend)
    spec = rnnspec.load_spec(SPECS / f"{stem}.yaml")
    got = rnnspec.get_weights(rnnspec.build(spec, backend, seed=11))
    expected = rnnspec.initial_weights(spec, 11)
    assert list(got) == list(expected)
    for name in expected:
        assert np.array_equal(got[name], expected[name]), name


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_other_activations_and_no_bias(cell: str, pair: tuple[str, str]):
    layer = {"cell": cell, "units": 4, "activation": "softsign", "use_bias": False, "return_sequences": True}
    if cell != "simple_rnn":
        layer["recurrent_activation"] = "hard_sigmoid"
    spec = rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "acts",
            "input": {"features": 3},
            "recurrent": [layer, {"cell": cell, "units": 2, "activation": "relu"}],
            "head": {"units": 2, "activation": "tanh", "use_bias": False},
        }
    )
    weights, x = random_weights(spec, 5), random_inputs(spec, 6)
    a, b = (_outputs(spec, name, weights, x) for name in pair)
    assert np.abs(a - b).max() <= TOL


@pytest.mark.parametrize("convention", ["keras", "torch"])
@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_gru_reset_before(convention: str, pair: tuple[str, str]):
    spec = rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "gru-v2",
            "convention": convention,
            "input": {"vocab_size": 9},
            "embedding": {"output_dim": 4, "mask_zero": True},
            "recurrent": [{"cell": "gru", "units": 5, "reset_after": False, "return_sequences": True}],
        }
    )
    weights, x = random_weights(spec, 7), random_inputs(spec, 8)
    a, b = (_outputs(spec, name, weights, x) for name in pair)
    assert np.abs(a - b).max() <= TOL


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_masks_with_holes(pair: tuple[str, str]):
    spec = rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "holes",
            "input": {"vocab_size": 9},
            "embedding": {"output_dim": 4, "mask_zero": True},
            "recurrent": [
                {"cell": "lstm", "units": 3, "return_sequences": True, "bidirectional": True},
                {"cell": "gru", "units": 3, "go_backwards": True},
            ],
        }
    )
    x = random_inputs(spec, 9, batch=4, time=8)
    x[0, 3] = 0
    x[2, 5:] = 0  # post-padding
    x[3, ::2] = 0
    weights = random_weights(spec, 10)
    a, b = (_outputs(spec, name, weights, x) for name in pair)
    assert np.abs(a - b).max() <= TOL


def _cuda_or_skip():
    torch = pytest.importorskip("torch", reason="needs the torch extra")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (CI and this project's machines are CPU-only)")
    return torch


# On a GPU: TF32 is switched off so float32 means float32; cuDNN's kernels still sum in another order,
# so the forward budget stays 1e-5 and training gets 1e-3 relative (cuDNN vs TensorFlow on the CPU).
GPU_TRAIN_TOL = 1e-3


@pytest.mark.parametrize("stem", ["reuters_gru", "bidirectional_lstm", "char_rnn_hello"])
def test_torch_on_cuda_matches_numpy(stem: str):
    torch = _cuda_or_skip()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    spec = _shrunk(stem)
    weights, x = random_weights(spec, 1), random_inputs(spec, 2, batch=3)
    model = rnnspec.build(spec, "torch", weights=weights).to("cuda")
    assert np.abs(rnnspec.predict(model, x) - _outputs(spec, "numpy", weights, x)).max() <= TOL


def test_training_on_cuda_tracks_keras():
    torch = _cuda_or_skip()
    backend_or_skip("keras")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    spec = _shrunk("imdb_lstm")
    x = random_inputs(spec, 3, batch=64)
    y = (np.arange(64) % 2).astype(np.float32)
    losses = {}
    for backend in ("torch", "keras"):
        model = rnnspec.build(spec, backend, seed=0)
        device = {"device": "cuda"} if backend == "torch" else {}
        losses[backend] = np.array(
            rnnspec.fit(model, x, y, epochs=1, batch_size=8, shuffle=False, **device)["batch_loss"]
        )
    assert np.max(np.abs(losses["torch"] - losses["keras"]) / losses["keras"]) <= GPU_TRAIN_TOL
