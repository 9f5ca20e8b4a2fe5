"""The torch backend's prediction paths: inference mode where nothing outlives the call, and the masked layers'
gathers of whole feature vectors (``_take_steps``) equal to advanced indexing, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tm = pytest.importorskip("rnnspec_backends.torch.model")

import rnnspec

SPEC = (
    "rnnspec: 1.2\nname: m\ninput: {{vocab_size: 12{batch}}}\nembedding: {{output_dim: 4, mask_zero: true}}\n"
    "recurrent:\n  - {{cell: lstm, units: 3{stateful}}}\nhead: {{units: 1}}\n"
)


def _modes_seen(stateful: bool) -> tuple[list[bool], object]:
    spec = rnnspec.loads_spec(
        SPEC.format(batch=", batch_size: 2" if stateful else "", stateful=", stateful: true" if stateful else "")
    )
    model = rnnspec.build(spec, "torch", seed=0)
    seen: list[bool] = []
    model.layers["recurrent_0"].register_forward_hook(lambda *_: seen.append(torch.is_inference_mode_enabled()))
    rnnspec.predict(model, np.array([[0, 3, 4], [5, 0, 6]]))
    return seen, model


def test_predict_runs_in_inference_mode():
    seen, model = _modes_seen(stateful=False)
    assert seen == [True]
    assert model.training  # left as it was


def test_a_stateful_model_predicts_without_inference_tensors():
    """A stateful layer's states outlive the call: they must not be inference tensors (autograd refuses them)."""
    seen, model = _modes_seen(stateful=True)
    assert seen == [False]
    states = model.layers["recurrent_0"].carried["fwd"]
    assert not any(state.is_inference() for state in states)


def test_take_steps_is_advanced_indexing_forward_and_backward():
    x = torch.randn(4, 6, 5, requires_grad=True)
    rows = torch.tensor([2, 0, 3, 1])[:, None]
    steps = torch.tensor([[1, 2, 3], [0, 0, 5], [4, 5, 5], [2, 3, 4]])
    pull = torch.randn(4, 3, 5)
    got = tm._take_steps(x, rows, steps)
    (grad_got,) = torch.autograd.grad((got * pull).sum(), x)
    want = x[rows, steps]
    (grad_want,) = torch.autograd.grad((want * pull).sum(), x)
    assert torch.equal(got, want) and torch.equal(grad_got, grad_want)
