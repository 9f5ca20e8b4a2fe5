"""The PyTorch backend: exact counts, fused kernels where possible, seed 004's nn.RNN, artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnnspec
from tests.conftest import SPECS
from tests.parity import random_inputs, random_weights

torch = pytest.importorskip("torch", reason="needs the torch extra")


def _spec(layers: list[dict], **extra) -> rnnspec.ModelSpec:
    return rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "t",
            "input": {"vocab_size": 11},
            "embedding": {"output_dim": 4, "mask_zero": True},
            "recurrent": layers,
            **extra,
        }
    )


@pytest.mark.parametrize("stem", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_module_counts_equal_the_analysis(stem: str):
    spec = rnnspec.load_spec(SPECS / f"{stem}.yaml")
    model = rnnspec.build(spec, "torch", seed=0)
    assert sum(p.numel() for p in model.parameters()) == rnnspec.analyze(spec).total_params
    # only Keras's non-trainable weights (a batch_norm's moving statistics) are outside the optimizer
    frozen = sum(row.non_trainable for row in rnnspec.analyze(spec).layers)
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) == frozen


def test_keras_convention_holds_one_bias():
    model = rnnspec.build(SPECS / "imdb_lstm.yaml", "torch", seed=0)
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "layers.embedding.embeddings",
        "layers.recurrent_0.directions.fwd.kernel",
        "layers.recurrent_0.directions.fwd.recurrent_kernel",
        "layers.recurrent_0.directions.fwd.bias",
        "layers.head.kernel",
        "layers.head.bias",
    ]


def test_seed_004_char_model_equals_nn_rnn():
    """The torch-convention spec reproduces seed 004's nn.RNN(9, 9) (batch-first, as it should have been)."""
    spec = rnnspec.load_spec(SPECS / "char_rnn_hello.yaml")
    reference = torch.nn.RNN(9, 9, batch_first=True)
    with torch.no_grad():
        for p in reference.parameters():
            p.uniform_(-0.8, 0.8)
    weights = {
        "recurrent_0/kernel": reference.weight_ih_l0.detach().numpy().T,
        "recurrent_0/recurrent_kernel": reference.weight_hh_l0.detach().numpy().T,
        "recurrent_0/bias": reference.bias_ih_l0.detach().numpy(),
        "recurrent_0/recurrent_bias": reference.bias_hh_l0.detach().numpy(),
    }
    model = rnnspec.build(spec, "torch", weights=weights)
    x = np.eye(9, dtype=np.float32)[[[7, 3, 1, 1, 4, 0, 8, 6, 4, 5, 1, 2]]]
    expected = reference(torch.as_tensor(x))[0].detach().numpy()
    assert np.abs(rnnspec.predict(model, x) - expected).max() <= 1e-6
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters()) == 180


@pytest.mark.parametrize(
    ("layer", "fused"),
    [
        ({"cell": "lstm", "units": 3}, True),
        ({"cell": "gru", "units": 3}, True),
        ({"cell": "simple_rnn", "units": 3, "activation": "relu"}, True),
        ({"cell": "gru", "units": 3, "reset_after": False}, False),
        ({"cell": "lstm", "units": 3, "activation": "relu"}, False),
        ({"cell": "lstm", "units": 3, "recurrent_activation": "hard_sigmoid"}, False),
    ],
    ids=["lstm", "gru", "rnn-relu", "gru-reset-before", "lstm-relu", "lstm-hard-sigmoid"],
)
def test_fused_kernels_where_the_spec_allows(layer: dict, fused: bool):
    spec = _spec([{**layer, "bidirectional": True}])
    model = rnnspec.build(spec, "torch", seed=0)
    rnnspec.predict(model, random_inputs(spec, 0))  # pre-padded: no holes
    assert (model.layers["recurrent_0"].loop_calls == 0) == fused
    notes = " ".join(rnnspec.get_backend("torch").notes(model))
    assert ("fused PyTorch" in notes) == fused and ("step loop (" in notes) == (not fused)


def test_masks_with_holes_fall_back_to_the_loop():
    spec = _spec([{"cell": "lstm", "units": 3}])
    model = rnnspec.build(spec, "torch", seed=0)
    x = random_inputs(spec, 0)
    rnnspec.predict(model, x)
    assert model.layers["recurrent_0"].loop_calls == 0
    x[0, 4] = 0
    rnnspec.predict(model, x)
    assert model.layers["recurrent_0"].loop_calls == 1


def test_dropout_is_identity_at_inference_and_active_in_training():
    base = [{"cell": "gru", "units": 4, "return_sequences": True}]
    drop = [{**base[0], "dropout": 0.5, "recurrent_dropout": 0.5}]
    weights = random_weights(_spec(base), 0)
    x = random_inputs(_spec(base), 1)
    plain = rnnspec.build(_spec(base), "torch", weights=weights)
    dropped = rnnspec.build(_spec(drop), "torch", weights=weights)
    assert np.array_equal(rnnspec.predict(plain, x), rnnspec.predict(dropped, x))
    dropped.train()
    torch.manual_seed(0)
    out = dropped(torch.as_tensor(x)).detach().numpy()
    assert not np.allclose(out, rnnspec.predict(plain, x))


def test_gradients_reach_the_keras_layout_parameters():
    spec = rnnspec.load_spec(SPECS / "reuters_gru.yaml").to_dict()
    spec["input"]["seq_len"] = 6
    model = rnnspec.build(spec, "torch", seed=0)
    x = torch.as_tensor(random_inputs(model.spec, 0, batch=2))
    model(x, logits=True).sum().backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for n, p in model.named_parameters()
        if not n.startswith("layers.embedding")
    )


def test_artifact_round_trip_without_pickle(tmp_path: Path):
    spec = rnnspec.load_spec(SPECS / "bidirectional_lstm.yaml")
    impl = rnnspec.get_backend("torch")
    model = rnnspec.build(spec, "torch", weights=random_weights(spec, 2))
    (path,) = impl.save_artifact(model, tmp_path)
    assert path.name == "bidirectional-lstm.torch.safetensors"
    loaded = impl.load_artifact(path)
    x = random_inputs(spec, 3)
    assert np.array_equal(rnnspec.predict(loaded, x), rnnspec.predict(model, x))


def test_logits_skip_the_head_activation():
    model = rnnspec.build(SPECS / "reuters_gru.yaml", "torch", seed=0)
    x = torch.as_tensor(random_inputs(model.spec, 0, batch=2))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(torch.softmax(model(x, logits=True), -1), model(x))
