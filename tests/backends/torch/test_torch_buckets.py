"""The torch backend's length buckets under hole-free masks: the same outputs and gradients as the step
loop (Keras's equations, step by step) and the NumPy reference, for every kind of contiguous block."""

from __future__ import annotations

import numpy as np
import pytest

import rnnspec
from tests.parity import backend_or_skip, random_weights

torch = pytest.importorskip("torch")
tb = pytest.importorskip("rnnspec_backends.torch.model")

MASK = 0.25
BLOCKS = [(0, 0), (0, 17), (5, 17), (0, 6), (3, 9), (16, 17), (8, 8), (1, 14), (0, 1), (2, 17), (10, 15)]
"""(start, end) of each row's real steps in T = 17: empty, full, pre-padded, post-padded, in the middle."""


def _inputs(features: int) -> np.ndarray:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(len(BLOCKS), 17, features)).astype(np.float32)
    for row, (start, end) in enumerate(BLOCKS):
        x[row, :start] = MASK
        x[row, end:] = MASK
    return x


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize(
    "layer",
    [
        {"return_sequences": False},
        {"return_sequences": True},
        {"return_sequences": False, "go_backwards": True},
        {"return_sequences": True, "bidirectional": True},
        {"return_sequences": False, "bidirectional": True},
    ],
    ids=["last", "sequences", "backwards", "bi-sequences", "bi-last"],
)
def test_buckets_equal_the_step_loop_and_numpy(cell: str, layer: dict, monkeypatch: pytest.MonkeyPatch):
    backend_or_skip("torch")
    spec = rnnspec.spec_from_dict(
        {
            "rnnspec": 1,
            "name": "b",
            "input": {"features": 3, "mask_value": MASK},
            "recurrent": [{"cell": cell, "units": 5, **layer}],
            "head": {"units": 2},
        }
    )
    weights = random_weights(spec, 1)
    x = _inputs(3)
    reference = rnnspec.predict(rnnspec.build(spec, "numpy", weights=weights), x)

    def run(model):
        model.train()  # the fused kernels' training path, as in fit (no dropout here)
        xt = torch.as_tensor(x)
        out = model(xt, logits=True)
        out.pow(2).sum().backward()
        return out.detach().numpy(), {n: p.grad.numpy().copy() for n, p in model.named_parameters()}

    bucketed = rnnspec.build(spec, "torch", weights=weights)
    out_b, grads_b = run(bucketed)
    assert sum(m.loop_calls for m in bucketed.modules() if hasattr(m, "loop_calls")) == 0  # buckets ran
    monkeypatch.setattr(tb, "_contiguous", lambda mask: (False, None, None))  # force Keras's step loop
    looped = rnnspec.build(spec, "torch", weights=weights)
    out_l, grads_l = run(looped)
    np.testing.assert_allclose(out_b, out_l, atol=1e-5)
    np.testing.assert_allclose(out_b, reference, atol=1e-5)
    for name in grads_l:
        np.testing.assert_allclose(grads_b[name], grads_l[name], atol=1e-5, err_msg=name)


def test_bucket_bounds_follow_where_rows_end():
    assert tb._bucket_bounds([9, 9, 9, 9]) == [0, 9]
    # ranks 2, 4, 6 of 8 rows: lengths 9, 6 and 0 (no bucket of zero steps)
    assert tb._bucket_bounds([17, 12, 9, 6, 6, 1, 0, 0], buckets=4) == [0, 6, 9, 17]
    bounds = tb._bucket_bounds(list(range(100, 0, -1)))
    assert bounds[0] == 0 and bounds[-1] == 100 and len(bounds) == tb.BUCKETS + 1
