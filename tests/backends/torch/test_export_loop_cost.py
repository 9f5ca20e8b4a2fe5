"""The exported model.py's written-out loop costs time linear in the sequence length.

Slicing ``xw[:, t]`` inside the loop made backward quadratic in T: each slice's gradient is a zero tensor the size of
the whole ``xw`` (batch x time x gates·units). The loop takes every step's slice once (``xw.unbind(1)``). The fast
test reads the autograd graph (no per-step slice of a whole sequence may be in it); the slow one times the loop's
growth from T to 4T against the fused module's growth, so a quadratic path shows however noisy the machine.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
te = pytest.importorskip("rnnspec_backends.torch.export")

import rnnspec
from rnnspec.lang.spec import ModelSpec

LOOPED = (
    "recurrent:\n  - {cell: gru, units: 8, reset_after: false, return_sequences: true}\n"
    "  - {cell: simple_rnn, units: 8, activation: elu, return_sequences: true, bidirectional: true}\n"
    "  - {cell: lstm, units: 8, activation: softsign, go_backwards: true, return_sequences: true}\n"
    "  - {cell: lstm, units: 8, return_sequences: true}\n"  # masked: the fused op, bucketed
)


def _spec(body: str, masked: bool) -> ModelSpec:
    mask = ", mask_zero: true" if masked else ""
    return rnnspec.loads_spec(
        f"rnnspec: 1.2\nname: m\ninput: {{vocab_size: 50}}\nembedding: {{output_dim: 8{mask}}}\n{body}"
    )


def _exported(spec: ModelSpec, directory: Path) -> object:
    source, _ = te.export_torch(spec, rnnspec.initial_weights(spec, seed=0), directory / "model.py")
    found = importlib.util.spec_from_file_location(f"cost_{directory.name}", source)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module.load().train()


def _ids(batch: int, steps: int, holes: bool = True) -> torch.Tensor:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, size=(batch, steps))
    for row in range(batch):  # pre-padded rows of many lengths, some with a hole
        x[row, : rng.integers(0, steps)] = 0
        if holes and row % 3 == 0:
            x[row, steps // 2] = 0
    return torch.from_numpy(x)


def _slices(out: torch.Tensor, steps: int) -> tuple[int, int]:
    """Nodes of ``out``'s autograd graph that take one step (or a few) out of a whole ``(batch, steps, ...)``
    tensor, and those that take a block of a parameter: each one's gradient is a zero tensor of that whole size."""
    seen, stack, count, blocks = set(), [out.grad_fn], 0, 0
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node.name() in ("SelectBackward0", "SliceBackward0"):
            sizes = tuple(node._saved_self_sym_sizes)
            count += len(sizes) == 3 and node._saved_dim == 1 and sizes[1] == steps
            blocks += any(n is not None and n.name().endswith("AccumulateGrad") for n, _ in node.next_functions)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return count, blocks


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "plain"])
def test_the_loop_slices_the_sequence_once(masked: bool, tmp_path: Path):
    steps = 40
    model = _exported(_spec(LOOPED, masked), tmp_path)
    out = model(_ids(6, steps))
    per_step, blocks = _slices(out, steps)
    # the bucketed fused layer slices its compact input once per bucket (at most 8); a loop would per step
    assert per_step <= 8
    assert blocks <= 4  # GRU reset_after false: its recurrent weight's and bias's r, z and n blocks, once each


def _best(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.slow
def test_loop_time_grows_linearly_with_the_sequence(tmp_path: Path):
    """Train-step time of the exported loop (GRU reset_after false, masked) from T to 4T, against rnnspec's module
    on its fused kernel (LSTM, masked, no holes) over the same growth: linear growth gives about 4 (or the fused
    kernel's growth, where the machine makes that larger), a quadratic path twice that and more. The best of
    several repeats, one thread, the two models timed in alternating rounds."""
    torch.set_num_threads(1)
    looped = _exported(_spec("recurrent:\n  - {cell: gru, units: 32, reset_after: false}\n", True), tmp_path)
    fused = rnnspec.build(_spec("recurrent:\n  - {cell: lstm, units: 32}\n", True), "torch", seed=0).train()
    models = {"looped": looped, "fused": fused}
    inputs = {name: (_ids(32, 150, holes=name == "looped"), _ids(32, 600, holes=name == "looped")) for name in models}

    def step(name: str, which: int) -> float:
        return _best(lambda: models[name](inputs[name][which]).sum().backward())

    for name in models:  # warm-up
        step(name, 0)
    best = {(name, which): float("inf") for name in models for which in (0, 1)}
    for _ in range(2):
        for key in best:
            best[key] = min(best[key], step(*key))
    growth = {name: best[name, 1] / best[name, 0] for name in models}
    # linear: about 4 (less where fixed costs weigh), and no more than the fused kernel's growth, which cache
    # effects can raise above 4 too; quadratic: 8 and more at these sizes
    assert growth["looped"] <= 1.5 * max(4.0, growth["fused"]), growth
