"""Layer names that are attributes of torch's containers (`forward`, `training`, `keys`, `to`...) are valid in
Keras and in a spec; the torch backend builds, predicts, counts and trains them (nn.ModuleDict refused them with a
KeyError traceback: found by the second hostile-files round)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnspec
from tests.parity import backend_or_skip

NAMES = [
    ("forward", "training", "keys"),
    ("to", "update", "cuda"),
    ("forward", "forward_", "items"),
    ("keys_by_name", "_modules", "training_"),  # the container's own map, set before the names
]


def _spec(names: tuple[str, str, str]) -> rnnspec.ModelSpec:
    embedding, cell, head = names
    return rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "names",
            "input": {"vocab_size": 20, "seq_len": 5},
            "embedding": {"output_dim": 4, "mask_zero": True, "name": embedding},
            "recurrent": [{"cell": "lstm", "units": 3, "name": cell}],
            "head": {"units": 1, "activation": "sigmoid", "name": head},
            "training": {"optimizer": "adam", "loss": "binary_crossentropy", "batch_size": 4, "epochs": 1},
        }
    )


@pytest.mark.parametrize("names", NAMES, ids=["-".join(n) for n in NAMES])
def test_container_attribute_names_build_predict_count_and_train(names: tuple[str, str, str]) -> None:
    torch_backend = backend_or_skip("torch")
    spec = _spec(names)
    weights = rnnspec.initial_weights(spec, seed=1)
    x = np.array([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7], [9, 8, 7, 6, 5]])
    reference = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)
    model = rnnspec.build(spec, "torch", weights=weights)
    assert np.abs(rnnspec.predict(model, x) - reference).max() <= 1e-6
    assert list(torch_backend.count_params(model)) == list(names)
    assert rnnspec.get_weights(model).keys() == weights.keys()
    rnnspec.fit(model, x, np.array([0.0, 1.0, 0.0, 1.0], np.float32), seed=0)
    trained = rnnspec.get_weights(model)
    assert any(not np.array_equal(trained[k], weights[k]) for k in weights)
