"""``rnnspec check``: the conformance report of one spec across every backend (keras, torch, numpy and any plugin).

Rows: parameter counts (analytic, each framework's own: Keras's ``count_params()``, PyTorch's ``numel()``);
the forward max abs difference for each pair of backends on random weights (biases included) and random
pre-padded inputs; training parity over N steps of the first two backends that train, from the same seeded
weights on the same batches (per-step loss difference, final weight difference), judged against each
backend's own noise floor (the same training from starting weights moved by one float32 ulp; see
docs/training.md). Each row passes or fails against a stated tolerance. Dropout is switched off for
the training run: the two frameworks' random masks can never agree, so a parity run with dropout would measure
the random streams, not rnnspec.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rnnspec.core.noise import FLOOR_FACTOR, allowance, ulp_perturbed
from rnnspec.core.registry import backend_entry, backends_with, compared_backends, get_backend
from rnnspec.core.weights import weight_shapes
from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.loader import base_dir_of, set_base_dir, spec_from_dict
from rnnspec.lang.spec import REGRESSION_LOSSES, ModelSpec
from rnnspec.runtime.models import build, get_weights, predict, set_weights
from rnnspec.runtime.training import fit

__all__ = ["CheckReport", "CheckRow", "run_check"]

FORWARD_TOL = 1e-5
LOSS_TOL = 1e-4
WEIGHT_TOL = 1e-4


@dataclass
class CheckRow:
    check: str
    value: str
    tolerance: str
    passed: bool


@dataclass
class CheckReport:
    spec: str
    rows: list[CheckRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)
    floor: dict[str, list[float]] = field(default_factory=dict)
    parting_step: int | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "passed": self.passed,
            "rows": [asdict(r) for r in self.rows],
            "notes": self.notes,
            "batch_loss": {name: [_finite(v) for v in curve] for name, curve in self.curves.items()},
            "noise_floor": {name: [_finite(v) for v in curve] for name, curve in self.floor.items()},
            "parting_step": self.parting_step,
        }


def _finite(value: float) -> float | None:
    """Strict JSON: a non-finite number is written as null."""
    return value if np.isfinite(value) else None


def _random_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0.0, 1.0 / np.sqrt(shape[0]) if name.endswith("kernel") else 0.5, size=shape).astype(
            np.float32
        )
        for name, shape in weight_shapes(spec).items()
    }


def _scale(name: str, shape: tuple[int, ...]) -> float:
    """Kernels ~ 1/sqrt(fan_in): wide layers stay out of chaotic saturation, where float32 rounding would grow."""
    return 1.0 / np.sqrt(shape[0]) if name.endswith("kernel") else 0.5


def _inputs(spec: ModelSpec, rng: np.random.Generator, n: int, time: int) -> np.ndarray:
    time = spec.input.seq_len or time
    if spec.input.vocab_size is None:
        x = rng.normal(size=(n, time, spec.input.features)).astype(np.float32)
        if spec.input.mask_value is not None:  # pre-padded with the mask value, one row fully padded
            for row in range(n):
                x[row, : time if row == n - 1 else rng.integers(0, time)] = spec.input.mask_value
        return x
    vocab = spec.input.vocab_size
    ids = rng.integers(1, vocab, size=(n, time)) if vocab > 1 else np.zeros((n, time), dtype=np.int64)
    for row in range(n):  # pre-padded to variable lengths, as Keras's pad_sequences does
        ids[row, : rng.integers(0, time)] = 0
    return ids


def _targets(spec: ModelSpec, rng: np.random.Generator, n: int, time: int) -> np.ndarray:
    assert spec.training is not None
    units, loss = spec.output_units, spec.training.loss.name
    shape = (n, time) if spec.output_per_step else (n,)
    if loss in REGRESSION_LOSSES:
        return rng.normal(size=(*shape, units)).astype(np.float32)
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, size=(*shape, units)).astype(np.float32)
    labels = rng.integers(0, units, size=shape)
    return np.eye(units, dtype=np.float32)[labels] if loss == "categorical_crossentropy" else labels


def _default_loss(spec: ModelSpec) -> str:
    act = spec.output_activation
    if act == "sigmoid":
        return "binary_crossentropy"
    if act == "softmax":
        return "sparse_categorical_crossentropy"
    return "mse"


def _training_spec(spec: ModelSpec, optimizer: str | None, batch_size: int, notes: list[str]) -> ModelSpec:
    data = spec.to_dict()
    training = data.get("training") or {"loss": _default_loss(spec)}
    if "training" not in data:
        notes.append(f"the spec has no training section; checked with loss {training['loss']} and rmsprop")
    if optimizer is not None:
        training["optimizer"] = optimizer
    training.update({"batch_size": batch_size, "epochs": 1, "shuffle": False, "validation_split": 0.0})
    training.pop("data", None)
    data["training"] = training
    entries = [*data["recurrent"], *(data["head"] if isinstance(data.get("head"), list) else [])]
    rates = ("dropout", "recurrent_dropout", "spatial_dropout")
    if any(entry.get(key) for entry in entries for key in rates):
        notes.append("dropout rates are 0 for the training-parity run (random masks can't agree)")
        for entry in entries:
            for key in rates:
                if key in entry:
                    entry[key] = 0.0
    derived = spec_from_dict(data)
    set_base_dir(derived, base_dir_of(spec))  # a pretrained table's relative path still starts from the spec's folder
    return derived


def run_check(
    spec: ModelSpec,
    *,
    steps: int = 50,
    seed: int = 0,
    optimizer: str | None = None,
    batch_size: int = 8,
    time: int = 12,
    backends: tuple[str, ...] | None = None,
) -> CheckReport:
    """Compare ``backends`` (default: every known backend, the reference first) on ``spec``; every row carries
    its tolerance and verdict. Training parity runs between the first of them that trains and each other one."""
    if backends is None:
        backends = tuple(compared_backends())
    report = CheckReport(spec=spec.name)
    rng = np.random.default_rng(seed)
    analytic = {row.name: row.params for row in analyze(spec).layers}
    total = sum(analytic.values())
    models = {}
    for name in backends:
        impl = get_backend(name)
        model = build(spec, name, seed=seed)
        models[name] = model
        if backend_entry(name).role != "reference":  # the reference counts the spec's own weights
            counts = impl.count_params(model)
            report.rows.append(
                CheckRow(
                    f"params analytic vs {name}",
                    f"{total:,} vs {sum(counts.values()):,}",
                    "equal per layer",
                    counts == analytic,
                )
            )
    weights = _random_weights(spec, seed + 1)
    fixed = spec.input.batch_size  # a stateful model: two consecutive batches, the states carried between them
    x = _inputs(spec, rng, 6 if fixed is None else 2 * fixed, time)
    outputs = {}
    for name, model in models.items():
        set_weights(model, weights)
        outputs[name] = predict(model, x)
    names = list(models)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diff = float(np.abs(outputs[a] - outputs[b]).max())
            report.rows.append(
                CheckRow(f"forward {a} vs {b}", f"max abs {diff:.2e}", f"<= {FORWARD_TOL:g}", diff <= FORWARD_TOL)
            )
    trainers = [name for name in models if name in backends_with("trains")]
    if spec.stateful and steps > 0:
        steps = 0
        report.notes.append("no training parity: stateful layers are for prediction only (training is refused)")
    for other in trainers[1:] if steps > 0 else []:  # each further trainer against the first
        _training_rows(
            spec, report, [trainers[0], other], steps=steps, seed=seed, optimizer=optimizer, batch_size=batch_size,
            time=time,
        )  # fmt: skip
    return report


def _relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
    return np.where(np.isfinite(rel), rel, np.inf)


@dataclass
class _Run:
    losses: np.ndarray
    weights: dict[str, np.ndarray]


def _train(
    spec: ModelSpec,
    backend: str,
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    perturb: int | None,
    weights: dict[str, np.ndarray] | None = None,
) -> _Run:
    model = build(spec, backend, seed=seed, weights=weights)
    if perturb is not None:
        set_weights(model, ulp_perturbed(get_weights(model), perturb))
    history = fit(model, x, y, seed=seed)
    return _Run(np.asarray(history["batch_loss"], dtype=np.float64), get_weights(model))


def _training_rows(
    spec: ModelSpec,
    report: CheckReport,
    pair: list[str],
    *,
    steps: int,
    seed: int,
    optimizer: str | None,
    batch_size: int,
    time: int,
) -> None:
    """Loss and final-weight parity, judged against each backend's own noise floor.

    The floor of a backend is how far its own training moves when every starting weight moves by one
    float32 ulp. Float32 rounding differs between the frameworks at every step, so where training
    amplifies rounding (a chaotic model) the two curves part even when both are right; where it does
    not, the floor stays tiny and the fixed tolerance decides. A step passes when the cross-backend
    difference is within ``max(LOSS_TOL, FLOOR_FACTOR x floor)``, the floor taken as the largest
    self-difference of either backend up to that step.
    """
    train_spec = _training_spec(spec, optimizer, batch_size, report.notes)
    sides = {name: (name, train_spec, None) for name in pair}
    parity_rows(report, sides, steps=steps, seed=seed, batch_size=batch_size, time=time)


def parity_rows(
    report: CheckReport,
    sides: dict[str, tuple[str, ModelSpec, dict[str, np.ndarray] | None]],
    *,
    steps: int,
    seed: int,
    batch_size: int = 8,
    time: int = 12,
) -> None:
    """Training parity of two builds, ``{label: (backend, training spec, starting weights or None)}``: the same
    batches for ``steps`` steps, loss and final weights judged against each side's own noise floor (rows, curves,
    notes added to ``report``). The specs are the same model (possibly in two weight conventions)."""
    (first, (b1, spec1, w1)), (second, (b2, spec2, w2)) = sides.items()
    rng = np.random.default_rng(seed + 2)
    n = steps * batch_size
    x = _inputs(spec1, rng, n, time)
    y = _targets(spec1, rng, n, x.shape[1])
    runs = {first: _train(spec1, b1, x, y, seed, None, w1), second: _train(spec2, b2, x, y, seed, None, w2)}
    shaken = {first: _train(spec1, b1, x, y, seed, 1000, w1), second: _train(spec2, b2, x, y, seed, 1001, w2)}
    tl, kl = runs[first].losses, runs[second].losses
    report.curves.update({first: tl.tolist(), second: kl.tolist()})
    cross = _relative(tl, kl)
    own = {name: _relative(shaken[name].losses, runs[name].losses) for name in runs}
    floor = np.maximum.accumulate(np.maximum(own[first], own[second]))
    allowed = allowance(LOSS_TOL, floor)
    bad = np.flatnonzero(~(cross <= allowed))
    parts = np.flatnonzero(cross > LOSS_TOL)
    report.floor = {name: own[name].tolist() for name in own}
    report.parting_step = int(parts[0]) + 1 if parts.size else None
    opt = spec1.training.optimizer.name  # type: ignore[union-attr]
    if bad.size:
        s = int(bad[0])
        value = f"rel {_fmt(cross[s])} at step {s + 1}, over {_fmt(allowed[s])} (noise floor {_fmt(floor[s])})"
    else:
        s = int(np.argmax(cross))
        value = f"max rel {_fmt(cross[s])} at step {s + 1}; own noise floor {_fmt(floor[s])}"
    report.rows.append(
        CheckRow(
            f"train {steps} steps ({opt}): loss {second} vs {first}",
            value,
            f"rel <= {LOSS_TOL:g}, or <= {FLOOR_FACTOR:g} x noise floor",
            not bad.size,
        )
    )
    common = [k for k in runs[first].weights if k in runs[second].weights]  # a torch-convention extra bias aside
    wcross = max(float(np.abs(runs[first].weights[k] - runs[second].weights[k]).max()) for k in common)
    wfloor = max(
        float(np.abs(shaken[name].weights[k] - runs[name].weights[k]).max())
        for name in runs
        for k in runs[name].weights
    )
    wcross = wcross if np.isfinite(wcross) else float("inf")
    report.rows.append(
        CheckRow(
            f"train {steps} steps ({opt}): final weights",
            f"max abs {_fmt(wcross)}; own noise floor {_fmt(wfloor)}",
            f"<= {WEIGHT_TOL:g}, or <= {FLOOR_FACTOR:g} x noise floor",
            bool(wcross <= allowance(WEIGHT_TOL, wfloor)),
        )
    )
    report.notes.extend(_verdict(cross, floor, allowed, bad, parts))


def _fmt(value: float) -> str:
    return f"{value:.2e}" if np.isfinite(value) else "non-finite"


def _verdict(
    cross: np.ndarray, floor: np.ndarray, allowed: np.ndarray, bad: np.ndarray, parts: np.ndarray
) -> list[str]:
    """One or two sentences that say why the loss row passed or failed."""
    if bad.size:
        s = int(bad[0])
        return [
            f"the loss curves part at step {s + 1} (relative difference {_fmt(cross[s])}), beyond what float32 "
            f"rounding explains there: a one-ulp change of the starting weights moves either backend by at most "
            f"{_fmt(floor[s])}, so the allowance was {_fmt(allowed[s])}; the backends disagree"
        ]
    if not parts.size:
        return [f"the loss curves agree within {LOSS_TOL:g} at every step"]
    s = int(parts[0])
    return [
        f"the loss curves part at step {s + 1} (relative difference {_fmt(cross[s])}), but a one-ulp change of "
        f"the starting weights moves either backend by up to {_fmt(floor[s])} by then: this training amplifies "
        f"float32 rounding (a chaotic model), and the difference stays within {FLOOR_FACTOR:g} x that noise floor "
        f"at every step; the backends agree as far as float32 can tell"
    ]


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or one line naming the extra to install."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise RnnspecError(
            "plots need matplotlib, which is not installed; install it with: pip install 'rnnspec[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(report: CheckReport) -> bytes:
    """The two loss curves overlaid, as PNG bytes (each backend in its declared line style); the command writes
    them with its other outputs, as one unit."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(report.curves)
    for name in names:
        curve = report.curves[name]
        ax.plot(range(1, len(curve) + 1), curve, backend_entry(name).plot_style, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("batch loss")
    ax.set_title(f"{report.spec}: training loss, {' vs '.join(names)}")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
