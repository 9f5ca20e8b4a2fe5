"""``rnnspec bench SPEC``: what a spec's model costs to train and to run on this machine, per backend,
and how far the training step is from the floor that its matrix products allow.

Every backend trains a fresh model two epochs on generated data of the spec's shapes (token ids or
features, targets the loss takes; a masked spec gets pre-padded rows of random lengths) and the
second epoch is timed, so a framework's one-time tracing is left out; prediction is timed on its
second call. Throughput is in *real* tokens per second (padding not counted).

The floor is the time of the step's matrix products alone, run by the framework's own matrix
product (the backend's ``matmul_seconds``; NumPy's where it has none): per recurrent layer and
direction, the input projection of all steps at once and one recurrent product per step, and the
head; forward, then the two products of the backward pass (inputs and weights). Prediction has its own
floor: the forward products alone. Each backend's distance to the floor is a ratio, its time over the floor's
(``step / floor`` for a training step, ``predict / floor`` for a batch's forward pass): 1.0 would be a step that
is nothing but its matrix products. An RNN step can approach it only at sizes where those products dominate; at
small sizes the per-step overhead does. The floor counts every step of the batch, padding included, as a fused
kernel over the padded batch would compute it: a masked model that skips padding (rnnspec's torch backend) can
come closer to it, or go below it.

>>> report = bench(load_spec("specs/imdb_lstm.yaml"), ["torch"])  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnspec.core.backend import MatmulTiming, TrainableBackend
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.layers import Conv1DSpec, DenseSpec, RecurrentLayer
from rnnspec.lang.spec import REGRESSION_LOSSES, ModelSpec
from rnnspec.runtime.backends import load_backend as load_with_threads

__all__ = ["BenchReport", "Gemm", "bench", "gemm_flops", "step_gemms"]


@dataclass(frozen=True)
class Gemm:
    """``count`` products of an ``(m, k)`` by a ``(k, n)`` matrix in one forward pass."""

    m: int
    k: int
    n: int
    count: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n * self.count


def step_gemms(spec: ModelSpec, batch: int, steps: int) -> list[Gemm]:
    """The matrix products of one forward pass of ``spec`` on ``batch`` rows of ``steps`` steps."""
    gemms: list[Gemm] = []
    t: int | None = steps  # the steps reaching each layer: pooling, conv and repeat_vector change them
    for _name, layer, features, _steps, per_step, *_ in spec.shapes():
        after = layer.output_steps(t)
        n = t or 1
        if isinstance(layer, RecurrentLayer):
            width = layer.gates * layer.units
            for _direction in range(layer.directions):
                gemms.append(Gemm(batch * n, features, width))
                gemms.append(Gemm(batch, layer.units, width, n))
        elif isinstance(layer, DenseSpec):
            gemms.append(Gemm(batch * n if per_step else batch, features, layer.units))
        elif isinstance(layer, Conv1DSpec):  # one product over every output step's window
            gemms.append(Gemm(batch * (after or 1), layer.kernel_size * features, layer.filters))
        t = after
    return gemms


def gemm_flops(gemms: list[Gemm]) -> int:
    """Floating-point operations of a training step: forward, and the backward pass's two products each."""
    return 3 * sum(g.flops for g in gemms)


def _forward_shapes(gemms: list[Gemm]) -> list[tuple[int, int, int, int]]:
    """``(m, k, n, count)`` of every product of a forward pass (prediction)."""
    return [(g.m, g.k, g.n, g.count) for g in gemms]


def _backward_shapes(gemms: list[Gemm]) -> list[tuple[int, int, int, int]]:
    """``(m, k, n, count)`` of every product of a training step: ``A·B``, then ``dA = dC·Bᵀ``, ``dB = Aᵀ·dC``."""
    shapes = []
    for g in gemms:
        shapes += [(g.m, g.k, g.n, g.count), (g.m, g.n, g.k, g.count), (g.k, g.m, g.n, g.count)]
    return shapes


def numpy_matmul_seconds(shapes: list[tuple[int, int, int, int]], repeats: int = 3) -> float:
    """Seconds for every ``count`` products ``(m, k) @ (k, n)`` of ``shapes`` with NumPy (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    pairs = [(rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32), c) for m, k, n, c in shapes]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a, b, count in pairs:
            for _ in range(count):
                a @ b
        best = min(best, time.perf_counter() - start)
    return best


@dataclass
class BackendFigures:
    """One backend's figures: seconds per optimizer step, real tokens per second, or why not measured."""

    backend: str
    train_step_s: float | None = None
    train_tokens_per_s: float | None = None
    predict_tokens_per_s: float | None = None
    predict_step_s: float | None = None
    """Seconds of prediction per batch."""
    note: str = ""


@dataclass
class BenchReport:
    spec: str
    batch: int
    steps: int
    batches: int
    real_tokens: int
    floor_step_s: float
    floor_source: str
    step_gflop: float
    floor_forward_s: float = 0.0
    """The forward products alone: the floor of a batch's prediction."""
    backends: list[BackendFigures] = field(default_factory=list)

    def over_floor(self, seconds: float | None, floor: float) -> float | None:
        """``seconds`` as a multiple of ``floor`` (None where either is missing)."""
        return None if seconds is None or floor <= 0 else seconds / floor

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "batch_size": self.batch,
            "steps": self.steps,
            "batches": self.batches,
            "real_tokens_per_epoch": self.real_tokens,
            "gemm_floor": {
                "step_s": self.floor_step_s,
                "forward_s": self.floor_forward_s,
                "gflop_per_step": self.step_gflop,
                "measured_with": self.floor_source,
            },
            "backends": [
                {
                    "backend": b.backend,
                    "train_step_s": b.train_step_s,
                    "train_real_tokens_per_s": b.train_tokens_per_s,
                    "predict_real_tokens_per_s": b.predict_tokens_per_s,
                    "train_step_over_floor": self.over_floor(b.train_step_s, self.floor_step_s),
                    "predict_step_s": b.predict_step_s,
                    "predict_over_floor": self.over_floor(b.predict_step_s, self.floor_forward_s),
                    "note": b.note,
                }
                for b in self.backends
            ],
        }

    def render(self) -> str:
        lines = [
            f"bench {self.spec!r}: batch {self.batch}, {self.steps} steps, {self.batches} batches per epoch, "
            f"{self.real_tokens:,} real tokens per epoch",
            "",
            f"{'backend':10} {'train s/step':>13} {'train tok/s':>13} {'predict tok/s':>14} {'step / floor':>13} "
            f"{'predict / floor':>16}",
        ]
        for b in self.backends:
            if b.train_step_s is None and b.predict_tokens_per_s is None:
                lines.append(f"{b.backend:10} {b.note}")
                continue
            step = "-" if b.train_step_s is None else f"{b.train_step_s:.4f}"
            tok = "-" if b.train_tokens_per_s is None else f"{b.train_tokens_per_s:,.0f}"
            pred = "-" if b.predict_tokens_per_s is None else f"{b.predict_tokens_per_s:,.0f}"
            ratios = [self.over_floor(b.train_step_s, self.floor_step_s)]
            ratios.append(self.over_floor(b.predict_step_s, self.floor_forward_s))
            train_ratio, predict_ratio = ("-" if r is None else f"{r:.1f}x" for r in ratios)
            lines.append(
                f"{b.backend:10} {step:>13} {tok:>13} {pred:>14} {train_ratio:>13} {predict_ratio:>16}"
                + (f"  {b.note}" if b.note else "")
            )
        lines += [
            "",
            f"floor: the step's matrix products alone ({self.step_gflop:.3f} GFLOP forward + backward), "
            f"{self.floor_step_s:.4f} s with {self.floor_source} ({self.step_gflop / self.floor_step_s:.1f} GFLOP/s); "
            f"the forward products alone (prediction's floor) {self.floor_forward_s:.4f} s per batch",
            "step / floor, predict / floor: the time over the floor (1.0x: nothing but the matrix products; padding "
            "counts in the floor, so a masked model that skips it can come below)",
            "train: the second epoch of a fresh model (tracing excluded); tok/s counts real tokens, not padding",
        ]
        return "\n".join(lines)


def synthetic_data(spec: ModelSpec, n: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Inputs, targets for the spec's loss, and the number of real tokens; a masked spec gets pre-padded
    rows with lengths drawn from 20 % to 100 % of ``steps``."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(1, steps // 5), steps + 1, size=n) if spec.masked else np.full(n, steps)
    real = np.arange(steps)[None, :] >= (steps - lengths)[:, None]
    if spec.input.vocab_size is not None:
        x: np.ndarray = np.where(real, rng.integers(1, max(spec.input.vocab_size, 2), size=(n, steps)), 0)
        x = x.astype(np.int32)
    else:
        assert spec.input.features is not None
        pad = spec.input.mask_value if spec.input.mask_value is not None else 0.0
        x = rng.normal(size=(n, steps, spec.input.features)).astype(np.float32)
        x[~real] = pad
    lead = (n, steps) if spec.output_per_step else (n,)
    units = spec.output_units
    loss = spec.training.loss.name if spec.training is not None else "mse"
    if loss in REGRESSION_LOSSES:
        y = rng.normal(size=(*lead, units)).astype(np.float32)
    elif loss == "categorical_crossentropy":
        y = np.eye(units, dtype=np.float32)[rng.integers(0, units, size=lead)]
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, size=(*lead, units) if units > 1 else lead).astype(np.float32)
    else:
        y = rng.integers(0, units, size=lead)
    return x, y, int(real.sum())


def _time_backend(
    spec: ModelSpec, backend: str, impl: Any, x: np.ndarray, y: np.ndarray, batch: int, tokens: int
) -> BackendFigures:
    from rnnspec.runtime.models import build, predict
    from rnnspec.runtime.training import fit

    figures = BackendFigures(backend)
    model = build(spec, backend, seed=0)
    predict(model, x[:batch], batch)  # tracing, allocation
    start = time.perf_counter()
    predict(model, x, batch)
    seconds = time.perf_counter() - start
    figures.predict_tokens_per_s = tokens / seconds
    figures.predict_step_s = seconds / -(-len(x) // batch)
    if spec.training is None:
        figures.note = "no `training` section: training not measured"
        return figures
    if not isinstance(impl, TrainableBackend):
        figures.note = "forward-only backend: training not measured"
        return figures
    marks: list[float] = []
    fit(model, x, y, epochs=2, batch_size=batch, shuffle=False, seed=0, validation_split=0.0, device="cpu",
        on_epoch_end=lambda _epoch, _logs: marks.append(time.perf_counter()))  # fmt: skip
    seconds = marks[1] - marks[0]
    figures.train_step_s = seconds / -(-len(x) // batch)
    figures.train_tokens_per_s = tokens / seconds
    return figures


def bench(
    spec: ModelSpec,
    backends: list[str],
    *,
    load_backend: Callable[[str], Any] = load_with_threads,
    batch_size: int | None = None,
    steps: int | None = None,
    batches: int = 8,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Time ``spec`` on each of ``backends`` and measure the step's GEMM floor (see the module docstring).

    ``load_backend``: how a backend is loaded (default: with its thread count, as every command loads it)."""
    batch = batch_size or (spec.training.batch_size if spec.training is not None else 32)
    length = steps or spec.input.seq_len or 100
    if spec.input.seq_len is not None and length != spec.input.seq_len:
        raise RnnspecError(
            f"--seq-len {length} differs from the spec's input.seq_len: {spec.input.seq_len}; "
            "leave --seq-len out, or remove seq_len from the spec"
        )
    x, y, tokens = synthetic_data(spec, batch * batches, length)
    gemms = step_gemms(spec, batch, length)
    shapes = _backward_shapes(gemms)
    impls = {name: load_backend(name) for name in backends}
    floor_impl = next((impls[name] for name in backends if isinstance(impls[name], MatmulTiming)), None)
    seconds = floor_impl.matmul_seconds if floor_impl is not None else numpy_matmul_seconds
    source = f"{floor_impl.name}'s matmul" if floor_impl is not None else "NumPy's matmul"
    floor, forward = seconds(shapes), seconds(_forward_shapes(gemms))
    report = BenchReport(spec.name, batch, length, batches, tokens, floor, source, gemm_flops(gemms) / 1e9, forward)
    for name in backends:
        if progress is not None:
            progress(name)
        report.backends.append(_time_backend(spec, name, impls[name], x, y, batch, tokens))
    return report
