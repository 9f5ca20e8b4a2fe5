"""The exported model.py under a mask: outputs and gradients equal rnnspec's own torch module.

rnnspec's module is the reference here (it is checked against Keras elsewhere); the exported module takes its own
paths (a masked layer whose cell PyTorch has runs its fused op on each row's valid steps, moved to the front; other
cells loop over time), so every cell, direction and kind of row is compared, forward and backward, within 1e-5.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

torch = pytest.importorskip("torch")
te = pytest.importorskip("rnnspec_backends.torch.export")

import rnnspec
from rnnspec.lang.layers import RecurrentLayer
from rnnspec.lang.spec import ModelSpec

TOL = 1e-5
BATCH, TIME = 9, 7

CELLS = {
    "simple_rnn": "{cell: simple_rnn, units: 3",
    "lstm": "{cell: lstm, units: 3",
    "gru": "{cell: gru, units: 3",
    "gru_reset_before": "{cell: gru, units: 3, reset_after: false",  # no fused op: the written-out loop
}
DIRECTIONS = {"forward": "", "go_backwards": ", go_backwards: true", "bidirectional": ", bidirectional: true"}


def _spec(cell: str, direction: str, sequences: bool) -> ModelSpec:
    layer = f"{CELLS[cell]}{DIRECTIONS[direction]}, return_sequences: {str(sequences).lower()}}}"
    return rnnspec.loads_spec(
        "rnnspec: 1.2\nname: m\ninput: {vocab_size: 12}\nembedding: {output_dim: 4, mask_zero: true}\n"
        f"recurrent:\n  - {layer}\n"
    )


def _ids(seed: int = 0) -> np.ndarray:
    """One row of each kind: unpadded, pre- and post-padded, with holes (alone and after pre-padding), fully
    padded, and length 1 at the end and at the start."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 12, size=(BATCH, TIME)).astype(np.int64)
    x[1, :3] = 0  # pre-padded
    x[2, 4:] = 0  # post-padded
    x[3, 2:4] = 0  # a hole
    x[4, :2] = 0  # pre-padded with a hole
    x[4, 3] = 0
    x[5] = 0  # fully padded
    x[6, :-1] = 0  # length 1, pre-padded
    x[7, 1:] = 0  # length 1, post-padded
    x[8, [0, 2, 4, 6]] = 0  # every other step
    return x


def _load(spec: ModelSpec, weights: dict[str, np.ndarray], directory: Path) -> tuple[ModuleType, object]:
    source, _ = te.export_torch(spec, weights, directory / "model.py")
    found = importlib.util.spec_from_file_location(f"masked_{directory.name}", source)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module, module.load().train()


def _weights(spec: ModelSpec) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    weights = rnnspec.initial_weights(spec, seed=0)
    for key, value in weights.items():  # non-zero biases
        if key.endswith("bias"):
            weights[key] = (value + rng.normal(0.0, 0.5, size=value.shape)).astype(np.float32)
    return weights


def _reference_grads(spec: ModelSpec, canonical: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """rnnspec's gradients (canonical layout) in the exported state dict's names and layouts. A spec whose layer
    has one bias (Keras's LSTM, SimpleRNN) exports it as ``bias_ih`` plus a ``bias_hh`` of zeros: both get its
    gradient."""
    _, state = te._source(spec, "model", canonical)
    layer = next(layer for _, layer in spec.stack() if isinstance(layer, RecurrentLayer))
    one_bias = layer.use_bias and all(
        not k.endswith("recurrent_bias") and (not k.endswith("bias") or v.ndim == 1) for k, v in canonical.items()
    )
    if one_bias:
        state |= {k: state[k.replace("bias_hh", "bias_ih")] for k in state if "bias_hh" in k}
    return state


@pytest.mark.parametrize("sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_outputs_and_gradients_equal_rnnspecs_module(cell: str, direction: str, sequences: bool, tmp_path: Path):
    spec = _spec(cell, direction, sequences)
    weights = _weights(spec)
    reference = rnnspec.build(spec, "torch", weights=weights).train()
    _, exported = _load(spec, weights, tmp_path)
    ids = torch.from_numpy(_ids())
    want, got = reference(ids), exported(ids)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= TOL, (got - want).abs().max().item()
    # the rows' outputs weighted at random, so every step and unit has its own gradient
    pull = torch.from_numpy(np.random.default_rng(2).normal(size=tuple(want.shape)).astype(np.float32))
    (want * pull).sum().backward()
    (got * pull).sum().backward()
    canonical = {name: reference.parameter_of(name).grad.numpy() for name in weights}
    want_grads = _reference_grads(spec, canonical)
    got_grads = {name: p.grad.numpy() for name, p in exported.named_parameters()}
    assert set(got_grads) == set(want_grads)
    for name, grad in got_grads.items():
        diff = np.abs(grad - want_grads[name]).max()
        assert diff <= TOL, (name, diff)


def test_each_layer_takes_the_path_its_docstring_names(tmp_path: Path):
    """A masked layer PyTorch has an op for is a MaskedLayer on it; another cell loops; the header says which."""
    spec = rnnspec.loads_spec(
        "rnnspec: 1.2\nname: m\ninput: {vocab_size: 12}\nembedding: {output_dim: 4, mask_zero: true}\n"
        "recurrent:\n  - {cell: lstm, units: 3, return_sequences: true}\n"
        "  - {cell: gru, units: 3, reset_after: false, return_sequences: true}\n"
        "  - {cell: simple_rnn, units: 3, activation: relu, return_sequences: true}\n"
        "  - {cell: simple_rnn, units: 3, activation: elu}\n"
    )
    module, model = _load(spec, _weights(spec), tmp_path)
    kinds = {name: type(child).__name__ for name, child in model.named_children()}
    assert kinds == {
        "embedding": "Embedding",
        "recurrent_0": "Recurrent0Masked",
        "recurrent_1": "Recurrent1Steps",  # reset_after false: no fused op computes it
        "recurrent_2": "Recurrent2Masked",  # relu: nn.RNN's
        "recurrent_3": "Recurrent3Steps",  # elu: no fused op
    }
    assert isinstance(model.recurrent_0, module.MaskedLayer)
    doc = module.__doc__
    assert "Recurrent0Masked" in doc and "nn.LSTM's fused op on each row's valid steps" in doc
    assert "Recurrent1Steps" in doc and "written out step by step" in doc


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_and_torch_export_take_the_masked_layers(tmp_path: Path):
    """TorchScript runs the bucketed path, torch.export the one whose shapes do not depend on the mask: both give
    the eager outputs."""
    spec = rnnspec.loads_spec(
        "rnnspec: 1.2\nname: m\ninput: {vocab_size: 12}\nembedding: {output_dim: 4, mask_zero: true}\n"
        "recurrent:\n  - {cell: simple_rnn, units: 3, activation: relu, return_sequences: true, go_backwards: true}\n"
        "  - {cell: gru, units: 3, bidirectional: true, merge_mode: sum}\n"
    )
    _, model = _load(spec, _weights(spec), tmp_path)
    model.eval()
    ids = torch.from_numpy(_ids())
    with torch.no_grad():
        want = model(ids)
        scripted = torch.jit.script(model)(ids)
        exported = torch.export.export(model, (ids,)).module()(ids)
    assert torch.equal(scripted, want)
    assert (exported - want).abs().max().item() <= TOL
