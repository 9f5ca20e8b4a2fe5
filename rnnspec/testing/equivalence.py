"""Are two implementations the same model? One set of weights into both, the hard inputs through both, one
backward pass through both; and when they differ, which porting mistake explains it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnspec.interop.proof import ROW_PATTERNS
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec
from rnnspec.testing.mistakes import Mistake, mistakes_for, reference
from rnnspec.testing.sides import Side, describe, keras_model_spec, make_side, model_convention, spec_in

__all__ = ["ConformanceWarning", "Report", "Row", "assert_equivalent", "compare"]


class ConformanceWarning(UserWarning):
    """What :func:`assert_equivalent` reports without failing: a fact about the optimizers, not the models, or a
    model handed over in train mode."""


OUTPUT_ATOL = 1e-5
"""Outputs: float32 models computing the same thing agree to about 1e-7 (measured at most 2.4e-7 on the hand-written
pairs of tests/testing/test_equivalence.py); 1e-5 leaves room for longer sequences and other orders of sums."""
GRADIENT_RTOL = 1e-5
"""Gradients (and the loss), relative to the largest element of that gradient: float32's 1e-5; hand-written
Keras and PyTorch models computing the same thing measured at most 2.1e-6 (tests/testing/test_equivalence.py)."""
MISTAKE_ATOL = 1e-4
"""A mistaken reference (float64) explains a model when their outputs agree this closely."""

PATTERNS = ROW_PATTERNS
"""What the hard inputs' first rows are (:data:`rnnspec.interop.proof.ROW_PATTERNS`, where they are made)."""


@dataclass
class Row:
    """One comparison: what was compared, the worst difference, the tolerance, and where the worst element is."""

    what: str
    diff: float
    tolerance: float
    where: str = ""
    note: str = ""
    warning: bool = False
    """A row that warns and does not fail: a fact about something other than the two models (their
    optimizers' rules, when no training semantics were asked for; a model handed over in train mode)."""

    @property
    def within(self) -> bool:
        """Whether the difference is within the tolerance."""
        return bool(np.isfinite(self.diff)) and self.diff <= self.tolerance

    @property
    def passed(self) -> bool:
        return self.warning or self.within

    def line(self) -> str:
        verdict = "ok" if self.within else ("WARNING" if self.warning else "DIFFERENT")
        where = f" at {self.where}" if self.where and not self.within else ""
        note = f"; {self.note}" if self.note else ""
        return f"  {self.what:<34} {self.diff:9.2e} (tolerance {self.tolerance:.0e}) {verdict}{where}{note}"


@dataclass
class Report:
    """Everything :func:`compare` found: the two sides, the rows, and the mistake that explains a difference."""

    first: str
    second: str
    spec: str
    rows: list[Row] = field(default_factory=list)
    cause: str | None = None
    """The most likely cause, in a sentence (None when the models agree, or nothing explains it)."""
    mistake: str | None = None
    """The name of the porting mistake found (``gru_gate_order``, ``mask_dropped``...)."""
    error: str | None = None
    """Why the comparison could not be run (weights that do not fit one of the models...)."""
    notes: list[str] = field(default_factory=list)
    """What was not compared, and why."""
    training: list[tuple[str, str, str, bool]] = field(default_factory=list)
    """Training parity (``steps`` > 0, both models trainable by rnnspec): ``(check, value, tolerance, passed)``,
    judged against each model's own noise floor."""
    curves: dict[str, list[float]] = field(default_factory=dict)
    """The loss of every training step, per model."""
    warnings: list[str] = field(default_factory=list)
    """What does not fail the verdict but should be read (:func:`assert_equivalent` issues each as a
    :class:`ConformanceWarning`): the optimizers' embedding rule, a model handed over in train mode."""
    also: list[str] = field(default_factory=list)
    """Other porting mistakes that explain the difference as well as :attr:`mistake` on these inputs."""

    @property
    def passed(self) -> bool:
        return self.error is None and all(row.passed for row in self.rows) and all(t[3] for t in self.training)

    def text(self) -> str:
        head = "the two models are equivalent" if self.passed else "the two models are NOT equivalent"
        lines = [f"rnnspec.testing: {head} (spec {self.spec!r})", f"  first:  {self.first}", f"  second: {self.second}"]
        if self.error:
            lines.append(f"  could not compare: {self.error}")
        lines += [row.line() for row in self.rows]
        lines += [f"  {what:<34} {value} ({tolerance}) {'ok' if ok else 'DIFFERENT'}" for what, value, tolerance, ok
                  in self.training]  # fmt: skip
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.cause:
            lines.append(f"  most likely cause: {self.cause}")
        elif not self.passed and not self.error:
            lines.append("  most likely cause: none of the known porting mistakes explains the difference")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (infinite differences as null)."""
        return {
            "passed": self.passed,
            "spec": self.spec,
            "first": self.first,
            "second": self.second,
            "rows": [
                {
                    "what": r.what,
                    "diff": r.diff if np.isfinite(r.diff) else None,
                    "tolerance": r.tolerance,
                    "passed": r.passed,
                    "where": r.where,
                    "note": r.note,
                }
                for r in self.rows
            ],
            "mistake": self.mistake,
            "cause": self.cause,
            "error": self.error,
            "notes": self.notes,
            "warnings": self.warnings,
            "also": self.also,
            "training": [{"check": c, "value": v, "tolerance": t, "passed": ok} for c, v, t, ok in self.training],
            "batch_loss": self.curves,
        }


def _probe(spec: ModelSpec, seed: int, inputs: Any) -> tuple[np.ndarray, list[str]]:
    from rnnspec.interop.proof import hard_inputs, row_names

    if inputs is None:
        x = hard_inputs(spec, seed=seed)
        return x, row_names(spec, len(x))
    # the user's rows and, always, the hard ones at the user's length: rows that look alike can hide a mask bug
    own = np.asarray(inputs)
    hard = hard_inputs(spec, seed=seed, time=own.shape[1]) if own.ndim >= 2 else own[:0]
    if hard.shape[1:] != own.shape[1:]:
        return own, [f"your row {i}" for i in range(len(own))]
    names = [f"your row {i}" for i in range(len(own))] + row_names(spec, len(hard))
    return np.concatenate([own, hard.astype(own.dtype)]), names


def _weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Initial weights, every one moved by noise: biases are no longer zero and no matrix keeps the symmetry an
    initializer may give it (a 2 x 2 orthogonal matrix can be its own transpose), so each mistake shows."""
    from rnnspec.core.weights import initial_weights

    rng = np.random.default_rng(seed + 1)
    out = initial_weights(spec_in(spec, "torch"), seed)
    for name, value in out.items():
        scale = 0.3 if name.endswith("bias") else 0.2 * max(float(np.std(value)), 0.05)
        out[name] = (value + rng.normal(0.0, scale, size=value.shape)).astype(np.float32)
    return out


def _in_torch_convention(side: Side, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical weights of ``side`` in the torch convention (a single Keras bias becomes bias_ih, bias_hh zero)."""
    from rnnspec.core.weights import weight_shapes

    if side.spec.convention == "torch":
        return dict(weights)
    out = dict(weights)
    for name, shape in weight_shapes(spec_in(side.spec, "torch")).items():
        if name not in out:
            out[name] = np.zeros(shape, dtype=np.float32)
    return out


def _shared_weights(sides: list[Side], spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """The weights both sides run with (torch convention): a model file's own, else drawn from ``seed``.

    A Keras GRU with ``reset_after: false`` has no recurrent bias (PyTorch's form keeps one inside the reset
    product): when a side is in Keras's convention that bias stays zero, so both can hold the same weights."""
    from rnnspec.lang.layers import GRUSpec

    holder = next((side for side in sides if side.own_weights), None)
    if holder is not None:
        return _in_torch_convention(holder, holder.read())
    weights = _weights(spec, seed)
    if any(side.spec.convention == "keras" for side in sides):
        for name, layer in spec.stack():
            if isinstance(layer, GRUSpec) and not layer.reset_after:
                for key in [k for k in weights if k.startswith(f"{name}/") and k.endswith("recurrent_bias")]:
                    weights[key] = np.zeros_like(weights[key])
    return weights


def _weight_rows(sides: list[Side], atol: float) -> list[Row]:
    """Two model files: their weights compared, in one convention (Keras's: a torch model's two biases summed)."""
    from rnnspec.core.weights import to_keras_convention

    values = []
    for side in sides:
        w = side.read()
        values.append(to_keras_convention(side.spec, w)[1] if side.spec.convention == "torch" else w)
    rows = []
    for name, first in values[0].items():
        second = values[1].get(name)
        if second is None or np.shape(first) != np.shape(second):
            continue
        diff, where = _worst(np.asarray(first, np.float64), np.asarray(second, np.float64))
        rows.append(Row(f"weights {name}", diff, atol, where))
    return rows


def _for_side(side: Side, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from rnnspec.core.weights import to_keras_convention

    if side.spec.convention == "keras":
        return to_keras_convention(spec_in(side.spec, "torch"), weights)[1]
    return weights


def _loss_of(spec: ModelSpec) -> dict[str, Any]:
    """The loss differentiated: the spec's (``from_logits`` and Huber's delta included), else the head's natural
    one (sigmoid: binary cross-entropy, softmax: sparse categorical cross-entropy, log_softmax: the same on the
    log-probabilities, ``from_logits``, which is PyTorch's NLLLoss; else mse)."""
    if spec.training is not None:
        loss = spec.training.loss
        return {"name": loss.name, "from_logits": bool(loss.from_logits), "delta": float(loss.huber_delta)}
    if spec.output_activation == "softmax":
        return {"name": "sparse_categorical_crossentropy"}
    if spec.output_activation == "log_softmax":
        return {"name": "sparse_categorical_crossentropy", "from_logits": True}
    if spec.output_activation == "sigmoid":
        return {"name": "binary_crossentropy"}
    return {"name": "mse"}


def _targets(spec: ModelSpec, x: np.ndarray, loss: dict[str, Any], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 2)
    lead = (len(x), spec.output_steps(x.shape[1])) if spec.output_per_step else x.shape[:1]
    units, name = spec.output_units, loss["name"]
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, units, size=lead)
    if name == "categorical_crossentropy":
        return np.eye(units)[rng.integers(0, units, size=lead)]
    if name == "binary_crossentropy":
        return rng.integers(0, 2, size=(*lead, units)).astype(np.float64)
    return rng.normal(size=(*lead, units))


def _step_weights(spec: ModelSpec, x: np.ndarray) -> np.ndarray | None:
    """Keras's loss mask for per-step outputs of a masked model: 1 on real steps, 0 on padding."""
    if not spec.output_masked:
        return None
    if spec.input.vocab_size is not None:
        return (x != 0).astype(np.float64)
    return np.any(x != spec.input.mask_value, axis=-1).astype(np.float64)


def _worst(a: np.ndarray, b: np.ndarray, rows: list[str] | None = None) -> tuple[float, str]:
    diff = np.abs(a - b)
    if not diff.size:
        return 0.0, ""
    at = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
    where = rows[at[0]] if rows is not None else f"element {tuple(int(i) for i in at)}"
    rest = tuple(int(i) for i in at[1:])
    if rows is not None and rest:
        where += f", index {rest}"
    return float(np.max(np.where(np.isnan(diff), np.inf, diff))), where + f" ({a[at]:.6g} vs {b[at]:.6g})"


def _differing_rows(a: np.ndarray, b: np.ndarray, names: list[str], atol: float) -> str:
    per_row = np.abs(a - b).reshape(len(a), -1).max(axis=1, initial=0.0)
    bad = [names[i] for i in np.flatnonzero(~(per_row <= atol))]
    good = [names[i] for i in np.flatnonzero(per_row <= atol)]
    if not bad or not good:
        return ""
    return f"differs on {', '.join(bad)}; agrees on {', '.join(good)}"


def _explain(spec: ModelSpec, weights: dict, x: np.ndarray, outputs: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """The mistakes that turn the reference into the model that departs from it, ``(name, sentence)``, in the
    catalogue's order (the first is reported; the others explain these inputs as well)."""
    torch_spec = spec_in(spec, "torch")
    truth = _masked_steps(spec, x, [reference(torch_spec, weights, x)])[0]
    found: list[tuple[str, str]] = []
    for position, out in outputs.items():
        if out.shape == truth.shape and float(np.max(np.abs(out - truth))) <= MISTAKE_ATOL:
            continue  # this one is right
        for mistake in mistakes_for(torch_spec):
            if mistake.observed is not None:
                continue
            guess = _try(torch_spec, weights, x, mistake)
            if guess is None or guess.shape != out.shape:
                continue
            guess = _masked_steps(spec, x, [guess])[0]
            if float(np.max(np.abs(guess - truth), initial=0)) <= MISTAKE_ATOL:
                continue  # the mistake would not show on these inputs
            if float(np.max(np.abs(guess - out))) <= MISTAKE_ATOL:
                found.append((mistake.name, f"the {position} model behaves as if {mistake.text}"))
        if found:
            break
    return found


def _observed(spec: ModelSpec, position: str) -> tuple[str, str] | None:
    """The catalogue's observed mistake (``dropout_at_evaluation``) for a model whose outputs are random."""
    for mistake in mistakes_for(spec_in(spec, "torch")):
        if mistake.observed == "random":
            return mistake.name, f"the {position} model behaves as if {mistake.text}"
    return None


def _clues(
    report: Report, sides: list[Side], x: np.ndarray, outs: list[np.ndarray], grads: list[dict[str, np.ndarray]]
) -> dict[str, str]:
    """What the report shows that points to a mistake, read from the models: a model whose outputs change from
    call to call (``random``: its position), a row whose outputs depend on the other rows (``batch``), a weight
    whose gradient is exactly 0 in one model only (``zero``), the padding patterns that differ (``rows``)."""
    clues: dict[str, str] = {}
    for side, out, position in zip(sides, outs, ("first", "second"), strict=True):
        again = _call(side.forward, x)
        if again is not None and again.shape == out.shape and float(np.max(np.abs(again - out))) > 0:
            clues.setdefault("random", position)
    for side, out, position in zip(sides, outs, ("first", "second"), strict=True):
        alone = _call(side.forward, x[:1]) if "random" not in clues and len(x) > 1 else None
        if alone is not None and alone.shape == out[:1].shape and float(np.max(np.abs(alone - out[:1]))) > 1e-5:
            clues.setdefault("batch", f"the {position} model's outputs for a row change with the other rows of "
                                      "the batch (its recurrent layer may run along the batch)")  # fmt: skip
    if len(grads) == 2:
        for k, position in ((0, "first"), (1, "second")):
            zero = [n for n, g in grads[k].items() if n in grads[1 - k] and not np.any(g) and np.any(grads[1 - k][n])]
            if zero:
                clues["zero"] = f"the {position} model's gradient of {', '.join(zero)} is exactly 0 (it never uses it)"
    rows = next((row.note for row in report.rows if row.what.startswith("outputs (") and row.note), "")
    if rows:
        clues["rows"] = rows
    return clues


def _call(forward: Any, x: np.ndarray) -> np.ndarray | None:
    try:
        return np.asarray(forward(x))
    except Exception:
        return None


def _mode_rows(
    report: Report,
    sides: list[Side],
    spec: ModelSpec,
    x: np.ndarray,
    shown: list[np.ndarray],
    names: list[str],
    atol: float,
) -> None:
    """A model handed over in train mode is compared in eval mode (as Keras's predict runs) and, as a warning row,
    in the mode it was handed in: dropout on at evaluation shows there. Its mode is left as it was."""
    for k, (side, position) in enumerate(zip(sides, ("first", "second"), strict=True)):
        if side.mode is None:
            continue
        if side.mode == "eval" or side.forward_as_handed is None:
            report.notes.append(f"the {position} model was handed over in {side.mode} mode and compared in it")
            continue
        handed = _call(side.forward_as_handed, x)
        if handed is None or handed.shape != shown[k].shape:
            continue
        handed = _masked_steps(spec, x, [handed])[0]
        moved = float(np.max(np.abs(handed - shown[k]), initial=0.0))
        report.notes.append(
            f"the {position} model was handed over in train mode: compared in eval mode (as Keras's predict runs) "
            f"and again in train mode, {'where its outputs differ' if moved > atol else 'the same there'}; "
            "it is left in train mode"
        )
        if moved > atol:
            diff, where = _worst(handed, shown[1 - k], names)
            report.rows.append(Row(f"outputs in train mode ({position}, as handed)", diff, atol, where, warning=True,
                                   note="dropout (or batch statistics) acts in train mode"))  # fmt: skip
            report.warnings.append(
                f"dropout_at_evaluation: the {position} model was handed over in train mode, where its outputs "
                f"differ from eval mode by up to {moved:.3g} (dropout or batch statistics act). If your evaluation "
                "calls it in this mode, that is dropout left on at evaluation: call model.eval() before predicting"
            )


_FILES_NOTE = (
    "both models are files: the check compares what rnnspec builds from each file (their architecture and "
    "weights), so it cannot see your own forward(); to check your code, call "
    "rnnspec.testing.assert_equivalent(keras_model, YourModule()) in Python"
)


def _different_weights(report: Report) -> str:
    """Two files whose weights differ in a way no conversion mistake explains (an untrained twin, another run)."""
    rows = [row for row in report.rows if row.what.startswith("weights ")]
    differ = [row.what.removeprefix("weights ") for row in rows if not row.within]
    return (
        f"these files hold different weights ({len(differ)} of {len(rows)} weights differ: "
        f"{', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''}), and no known conversion mistake turns one "
        "into the other: they are two different trainings or initialisations (an untrained twin?), not one model "
        "converted. The check compares rnnspec's builds from each file, so it cannot see your forward(): copy "
        "the Keras weights into your module (rnnspec convert, or rnnspec.testing.assert_equivalent with the live "
        "models, which shares one set of weights)"
    )


def _explain_weights(sides: list[Side]) -> tuple[str, str] | None:
    """Two model files whose weights differ only in PyTorch's second bias, where the Keras model has one bias:
    the conversion left bias_hh at its initial values."""
    first, second = (_in_torch_convention(side, side.read()) for side in sides)
    differing = [n for n in first if n in second and not np.allclose(first[n], second[n], rtol=0, atol=OUTPUT_ATOL)]
    keras_side = next((k for k, side in enumerate(sides) if side.spec.convention == "keras"), None)
    if keras_side is None or not differing or not all(n.endswith("recurrent_bias") for n in differing):
        return None
    other = ("first", "second")[1 - keras_side]
    names = ", ".join(differing)
    return "recurrent_bias_kept", (
        f"the {other} model's second bias (PyTorch's bias_hh: {names}) is not zero, while the Keras model has one "
        "bias per layer: the conversion copied Keras's bias into bias_ih and left bias_hh as it was initialised. "
        "fix: set bias_hh to zero (or split Keras's bias between the two)"
    )


def _try(spec: ModelSpec, weights: dict, x: np.ndarray, mistake: Mistake) -> np.ndarray | None:
    try:
        return reference(spec, weights, x, mistake)
    except (RnnspecError, ValueError, KeyError, IndexError):
        return None


def compare(
    a: Any,
    b: Any,
    spec: Any = None,
    *,
    inputs: Any = None,
    grads: bool = True,
    atol: float = OUTPUT_ATOL,
    rtol: float = GRADIENT_RTOL,
    weight_map: dict[str, str] | None = None,
    seed: int = 0,
    steps: int = 0,
    optimizers: tuple[Any, Any] | None = None,
    training: bool | None = None,
) -> Report:
    """Compare two implementations of one model (see :func:`assert_equivalent`); the :class:`Report`.

    ``steps`` > 0 also trains both for that many optimizer steps on the same batches (the spec's training
    section) and compares the loss curves, when rnnspec can train both (backend names, model files).
    ``training`` asks for training semantics (the default with ``optimizers`` or ``steps``): the embedding
    second-moment rule of the two optimizers then fails the check instead of warning."""
    from rnnspec.core.specs import as_spec

    given = as_spec(spec) if spec is not None and not isinstance(spec, ModelSpec) else spec
    if given is None:
        keras_side = next((m for m in (a, b) if model_convention(m) == "keras"), None)
        if keras_side is None:
            raise RnnspecError("neither model is a Keras model, whose layers give the spec: pass spec=")
        given = keras_model_spec(keras_side)
    report = Report(describe(a), describe(b), given.name)
    sides: list[Side] = []
    try:
        for obj, position in ((a, "first"), (b, "second")):
            sides.append(make_side(obj, given, position, weight_map if model_convention(obj) == "torch" else None))
    except RnnspecError as exc:
        report.error = str(exc)
        return report
    kept = [side.snapshot() for side in sides]
    try:
        semantics = training if training is not None else (optimizers is not None or steps > 0)
        _run(report, sides, given, inputs, grads, atol, rtol, seed, semantics)
        if optimizers is not None and report.error is None:
            _optimizer_rows(report, sides, given, optimizers, inputs, seed)
        if steps > 0 and report.error is None:
            _training(report, sides, steps, seed)
    finally:  # the models are left with their own weights
        for side, state in zip(sides, kept, strict=True):
            side.restore(state)
    return report


def _run(
    report: Report,
    sides: list[Side],
    given: ModelSpec,
    inputs: Any,
    grads: bool,
    atol: float,
    rtol: float,
    seed: int,
    training: bool = False,
) -> None:
    try:
        weights = _shared_weights(sides, given, seed)
        for side in sides:
            if not side.own_weights:
                side.load(_for_side(side, weights))
    except RnnspecError as exc:
        report.error = f"one set of weights does not fit both models: {exc}"
        return
    report.rows.append(_count_row(sides))
    if all(side.own_weights for side in sides):
        report.rows += _weight_rows(sides, atol)
        report.notes.append(_FILES_NOTE)
    x, names = _probe(given, seed, inputs)
    outs, x, names = _outputs(report, sides, x, names)
    if outs is None:
        return
    if outs[0].shape != outs[1].shape:
        report.rows.append(Row("outputs", float("inf"), atol, note=f"shapes {outs[0].shape} and {outs[1].shape}"))
        report.cause = _shape_cause(outs[0].shape, outs[1].shape)
        return
    shown = _masked_steps(given, x, outs)
    diff, where = _worst(shown[0], shown[1], names)
    what = "outputs (hard inputs)" if inputs is None else "outputs (your rows and the hard inputs)"
    report.rows.append(Row(what, diff, atol, where, _differing_rows(*shown, names, atol)))
    _mode_rows(report, sides, given, x, shown, names, atol)
    if given.input.seq_len is None:
        _long_row(report, sides, given, seed, atol)
    results: list = []
    if grads:
        missing = [side.label for side in sides if side.gradients is None]
        if missing:
            report.notes.append(f"gradients not compared: {' and '.join(missing)} runs forward only")
        else:
            loss = _loss_of(given)
            y = _targets(given, x, loss, seed)
            weight = _step_weights(given, x)
            results = [side.gradients(x, y, loss, weight) for side in sides]  # type: ignore[misc]
            values = [r[0] for r in results]
            relative = abs(values[0] - values[1]) / max(abs(values[0]), 1e-12)
            report.rows.append(Row(f"loss ({loss['name']})", relative, rtol))
            rows, unmatched = _gradient_rows(results[0][1], results[1][1], rtol)
            moments = _second_moment_rows(given, sides, [r[1] for r in results], rtol)
            for row in moments:
                row.warning = not training  # a fact about the optimizers, unless training semantics were asked for
            report.rows += rows + moments
            if unmatched:
                report.notes.append(f"gradients of weights only one model has, not compared: {', '.join(unmatched)}")
    failing = [row for row in report.rows if not row.within]
    if failing and all(row.what.startswith("embedding second moment") for row in failing):
        if training:
            report.mistake, report.cause = "embedding_second_moment", _SECOND_MOMENT
        else:
            report.warnings.append(
                f"embedding_second_moment: {_SECOND_MOMENT}. This does not fail the check, which is about the "
                "models: pass optimizers=, steps= or training=True to make it fail"
            )
        return
    if not report.passed:
        clues = _clues(report, sides, x, outs, [r[1] for r in results])
        found = _explain_weights(sides) if all(side.own_weights for side in sides) else None
        if found is None and "random" in clues:
            found = _observed(given, clues["random"])
        if found is None:
            matches = _explain(given, weights, x, {"first": shown[0], "second": shown[1]})
            found = matches[0] if matches else None
            report.also = [name for name, _ in matches[1:] if name != (found or ("",))[0]]
        seen = [text for key, text in clues.items() if key != "random"]
        if found is not None:
            report.mistake, report.cause = found
            if seen:
                report.cause += ". Seen: " + "; ".join(seen)
            if report.also:
                report.cause += f". Also consistent with: {', '.join(dict.fromkeys(report.also))}"
        elif all(side.own_weights for side in sides) and any(
            not row.within for row in report.rows if row.what.startswith("weights ")
        ):
            report.mistake, report.cause = "different_weights", _different_weights(report)
        elif all(row.within for row in report.rows if row.what.startswith("outputs")):
            report.cause = (
                "the outputs agree but the gradients do not: a part of one model is cut from the backward pass "
                "(.detach(), torch.no_grad(), a frozen or non-trainable weight), or its loss differs"
            )
        elif seen:
            report.cause = (
                "none of the known porting mistakes reproduces the outputs exactly, but the report shows: "
                + "; ".join(seen)
            )


OPTIMIZER_STEPS = 3
OPTIMIZER_RTOL = 1e-4
"""Weights after a few optimizer steps, relative to how far the steps moved them: float32 updates of the same
optimizer agree to about 1e-6 of the move; epsilon in another place, or another rate, shows by far more."""


def _optimizer_rows(
    report: Report, sides: list[Side], spec: ModelSpec, optimizers: tuple[Any, Any], inputs: Any, seed: int
) -> None:
    """Each side's own optimizer (Keras or torch.optim), a few steps on one batch from the same weights: their
    settings in Keras's names, where each puts epsilon, and the weights they reach."""
    from rnnspec.core.weights import to_keras_convention
    from rnnspec.testing.optimizers import setting_differences

    if any(side.train_steps is None for side in sides):
        report.notes.append("optimizers not compared: only a Keras model or torch module trains with its own")
        return
    differences, mistake = setting_differences(*optimizers)
    report.rows.append(Row("optimizer settings", 0.0 if not differences else float("inf"), 0.0,
                           note="; ".join(differences) or "the same, epsilon in the same place"))  # fmt: skip
    x, _ = _probe(spec, seed, inputs)
    loss = _loss_of(spec)
    y, weight = _targets(spec, x, loss, seed), _step_weights(spec, x)

    def keras_form(side: Side) -> dict[str, np.ndarray]:
        values = side.read()
        return to_keras_convention(side.spec, values)[1] if side.spec.convention == "torch" else values

    start = keras_form(sides[0])
    for side, optimizer in zip(sides, optimizers, strict=True):
        side.train_steps(x, y, loss, weight, optimizer, OPTIMIZER_STEPS)  # type: ignore[misc]
    ends = [keras_form(side) for side in sides]
    rows = []
    for name, first in ends[0].items():
        moved = float(np.max(np.abs(np.asarray(first, np.float64) - start[name]), initial=0.0))
        diff, where = _worst(np.asarray(first, np.float64), np.asarray(ends[1][name], np.float64))
        rows.append(Row(f"after {OPTIMIZER_STEPS} optimizer steps: {name}", diff / max(moved, 1e-12), OPTIMIZER_RTOL,
                        where))  # fmt: skip
    report.rows += rows
    model_rows = [r for r in report.rows if not r.what.startswith(("optimizer", "after "))]
    from rnnspec.core.weights import weight_shapes

    two_biases = len({str(weight_shapes(side.spec)) for side in sides}) > 1
    if not report.passed and all(r.passed for r in model_rows) and not differences and two_biases:
        report.mistake = "two_biases_step"
        report.cause = (
            "the models and their optimizers agree, but the torch module's two biases (bias_ih and bias_hh) each "
            "take the optimizer's full step: their sum, Keras's single bias, moves further (twice as far under SGD). "
            "fix: zero bias_hh and freeze it (requires_grad_(False)), or train the PyTorch side with rnnspec.fit"
        )
    if not report.passed and all(r.passed for r in model_rows) and differences:
        report.mistake = mistake or "optimizer_settings"
        report.cause = (
            "the models agree; their optimizers do not: " + "; ".join(differences)
            + (". No torch.optim setting puts epsilon where Keras does (for Adam it would have to change every "
               "step): train the PyTorch side with rnnspec.fit (Keras's form), or write the Keras-form update"
               if mistake == "optimizer_epsilon" else ". fix: give both the same settings (PyTorch's defaults "
               "are not Keras's)")
        )  # fmt: skip


def _training(report: Report, sides: list[Side], steps: int, seed: int) -> None:
    """Training parity of two models rnnspec can train, from the weights they hold now (rnnspec check's rows)."""
    from rnnspec.core.registry import backends_with
    from rnnspec.runtime.check import CheckReport, _training_spec, parity_rows

    trainers = backends_with("trains")
    if any(side.backend not in trainers for side in sides):
        report.notes.append("training parity not run: rnnspec trains backend builds and model files, not these models")
        return
    from rnnspec.core.weights import weight_shapes

    if len({side.spec.convention for side in sides}) > 1 and len({str(weight_shapes(side.spec)) for side in sides}) > 1:
        report.notes.append(
            "training parity not run: the two keep their biases differently (PyTorch's bias_ih and bias_hh each "
            "take a full optimizer step where Keras's single bias takes one), so they train apart by design"
        )
        return
    check = CheckReport(report.spec)
    runs = {}
    for side, position in zip(sides[::-1], ("second", "first"), strict=True):  # rows read "loss first vs second"
        runs[position] = (side.backend, _training_spec(side.spec, None, 8, check.notes), side.read())
    parity_rows(check, runs, steps=steps, seed=seed)
    report.training = [(r.check, r.value, r.tolerance, r.passed) for r in check.rows]
    report.curves = check.curves
    report.notes += list(dict.fromkeys(check.notes))


_SECOND_MOMENT = (
    "the models are the same, but they will not train the same: for an embedding, Keras's optimizer adds each "
    "occurrence's squared gradient to its second moment (TensorFlow's sparse update), while torch.optim squares "
    "the gradient summed over a token's occurrences in the batch. fix: train the PyTorch module with rnnspec "
    "(rnnspec.fit keeps Keras's rule), or accumulate the squares per occurrence in your optimizer"
)


def _per_occurrence(spec: ModelSpec) -> bool:
    """Whether the spec's optimizer reads an embedding's gradient per occurrence (Adam, RMSprop, any clipping)."""
    if spec.training is None or spec.embedding is None:
        return False
    optimizer = spec.training.optimizer
    name = getattr(optimizer, "name", "")
    return name in ("adam", "rmsprop") or optimizer.clipnorm is not None or optimizer.clipvalue is not None


def _second_moment_rows(spec: ModelSpec, sides: list[Side], grads: list[dict], rtol: float) -> list[Row]:
    """Keras's per-occurrence Σ g² of the embedding against what torch.optim squares, (Σ g)², for a Keras side and
    a user's torch module, where the spec's optimizer uses it."""
    kinds = [side.kind for side in sides]
    if not _per_occurrence(spec) or sorted(kinds) != ["keras", "torch"]:
        return []
    keras_at, torch_at = kinds.index("keras"), kinds.index("torch")
    squares = sides[keras_at].occurrence_squares
    if squares is None:
        return []
    rows = []
    for name, per_occurrence in squares().items():
        dense = np.asarray(grads[torch_at].get(name), dtype=np.float64) ** 2
        scale = max(float(np.max(per_occurrence, initial=0.0)), 1e-30)
        diff, where = _worst(per_occurrence, dense)
        rows.append(Row(f"embedding second moment {name}", diff / scale, rtol, where,
                        "Σ g² per occurrence (Keras) vs (Σ g)² (torch.optim)"))  # fmt: skip
    return rows


LONG = 100
"""Steps of the long-sequence probe: rounding that grows with the length shows there, and so does a state
that is reset or cut (truncated backpropagation, a fixed window)."""


def _long_row(report: Report, sides: list[Side], spec: ModelSpec, seed: int, atol: float) -> None:
    from rnnspec.interop.proof import hard_inputs

    x = hard_inputs(spec, seed=seed + 3, batch=6, time=LONG)
    padded = spec.input.vocab_size is not None or spec.input.mask_value is not None
    patterns = [*PATTERNS, "full"] if padded else ["full"] * len(x)
    names = [f"row {i} ({patterns[i]}, T={LONG})" for i in range(len(x))]
    outs, x, names = _outputs(report, sides, x, names)
    if outs is None or outs[0].shape != outs[1].shape:
        return
    shown = _masked_steps(spec, x, outs)
    diff, where = _worst(shown[0], shown[1], names)
    report.rows.append(Row(f"outputs (long sequences, T={LONG})", diff, atol, where))


def _count_row(sides: list[Side]) -> Row:
    """Each model's own parameter count against the spec's in that model's convention (Keras's one bias per
    LSTM/SimpleRNN layer, PyTorch's two)."""
    from rnnspec.lang.analysis import analyze

    parts, wrong = [], 0
    for side, position in zip(sides, ("first", "second"), strict=True):
        expected = analyze(side.spec).total_params
        held = side.count() if side.count is not None else expected
        wrong += held != expected
        parts.append(f"{position} {held:,}" + ("" if held == expected else f" (the spec: {expected:,})")
                     + f" in the {side.spec.convention} convention")  # fmt: skip
    layers = [{row.name: row.params for row in analyze(side.spec).layers if row.params} for side in sides]
    per_layer = ", ".join(
        f"{name} {count:,}" + ("" if layers[1].get(name) == count else f" vs {layers[1].get(name, 0):,}")
        for name, count in layers[0].items()
    )
    return Row("parameters", float(wrong), 0.0, note="; ".join(parts) + f"; per layer: {per_layer}")


def _outputs(
    report: Report, sides: list[Side], x: np.ndarray, names: list[str]
) -> tuple[list[np.ndarray] | None, np.ndarray, list[str]]:
    """Both sides' outputs on ``x``. A model that raises on some rows (``pack_padded_sequence`` refuses a fully
    padded row) is reported row by row, and the comparison goes on with the rows every model runs."""
    try:
        return [side.forward(x) for side in sides], x, names
    except Exception:
        pass
    good = np.ones(len(x), dtype=bool)
    for side, position in zip(sides, ("first", "second"), strict=True):
        for i in range(len(x)):
            try:
                side.forward(x[i : i + 1])
            except Exception as exc:
                good[i] = False
                text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                report.rows.append(Row(f"the {position} model runs {names[i]}", float("inf"), 0.0, note=text))
    if not good.any():
        return None, x, names
    x, names = x[good], [n for n, ok in zip(names, good, strict=True) if ok]
    return [side.forward(x) for side in sides], x, names


def _masked_steps(spec: ModelSpec, x: np.ndarray, outs: list[np.ndarray]) -> list[np.ndarray]:
    """Per-step outputs of a masked model with the padded steps set to 0 on both sides: Keras carries the last
    output there, a packed PyTorch sequence gives zeros, and nothing downstream (the loss) reads them."""
    weight = _step_weights(spec, x)
    if weight is None or outs[0].ndim != 3 or outs[0].shape[:2] != weight.shape:
        return outs
    return [np.where(weight[..., None] > 0, out, 0.0) for out in outs]


def _gradient_rows(
    first: dict[str, np.ndarray], second: dict[str, np.ndarray], rtol: float
) -> tuple[list[Row], list[str]]:
    """A row per weight both models have; PyTorch's second bias is compared with Keras's single bias, whose
    gradient it equals. Also the names of the weights only one side has."""
    rows, unmatched = [], []
    for name in [*first, *(n for n in second if n not in first)]:
        ga, gb = first.get(name), second.get(name)
        if ga is None or gb is None:  # bias_hh of one side: the same gradient as the other's bias
            partner = name.replace("/recurrent_bias", "/bias")
            ga = first.get(partner) if ga is None else ga
            gb = second.get(partner) if gb is None else gb
        if ga is None or gb is None or np.shape(ga) != np.shape(gb):
            unmatched.append(name)
            continue
        scale = max(float(np.max(np.abs(ga), initial=0.0)), float(np.max(np.abs(gb), initial=0.0)), 1e-12)
        diff, where = _worst(np.asarray(ga, dtype=np.float64), np.asarray(gb, dtype=np.float64))
        rows.append(Row(f"gradient {name}", diff / scale, rtol, where))
    return rows, unmatched


def _shape_cause(first: tuple[int, ...], second: tuple[int, ...]) -> str:
    longer, shorter = (first, second) if len(first) >= len(second) else (second, first)
    if longer[-1:] == (1,) and longer[:-1] == shorter:
        which = "first" if longer is first else "second"
        return (
            f"the {which} model keeps a last axis of size 1 that the other squeezes away ({first} and {second}): "
            "drop the .squeeze(-1), or add it on the other side"
        )
    if len(first) != len(second):
        per_step = "first" if len(first) > len(second) else "second"
        return (
            f"the {per_step} model returns one output per step and the other one per sequence: return_sequences "
            "differs on the last recurrent layer (or one side takes output[:, -1] and the other does not)"
        )
    return f"the outputs have other sizes ({first} and {second}): units, or a bidirectional merge, differ"


def assert_equivalent(
    a: Any,
    b: Any,
    spec: Any = None,
    *,
    inputs: Any = None,
    grads: bool = True,
    atol: float = OUTPUT_ATOL,
    rtol: float = GRADIENT_RTOL,
    weight_map: dict[str, str] | None = None,
    seed: int = 0,
    steps: int = 0,
    optimizers: tuple[Any, Any] | None = None,
    training: bool | None = None,
) -> Report:
    """Assert that ``a`` and ``b`` are the same model; raise ``AssertionError`` with a readable diff otherwise.

    ``a`` and ``b``: a Keras model, a ``torch.nn.Module`` of your own class (its state dict mapped to
    canonical weights by the import rules: ``nn.Embedding``, ``nn.LSTM``/``nn.GRU``/``nn.RNN``,
    ``nn.Linear``, in order; ``weight_map`` renames unusual keys to such names), a model built by rnnspec,
    or a backend name (``keras``, ``torch``, ``numpy``). ``spec`` (a spec, its file or dict) describes them;
    without it, it is read from the Keras model among them.

    One set of weights (the spec's initial weights with every bias drawn at random, from ``seed``) is copied
    into both. Then: the outputs on the hard inputs (pre- and post-padded rows, padding in the middle, a
    fully padded row, length 1; or ``inputs``) within ``atol``; and with ``grads``, the loss (the spec's, else
    the head's natural one) and its gradient for every canonical weight, relative to that gradient's largest
    element, within ``rtol``. When they differ, the known porting mistakes are tried: the message names the
    one that explains the difference. ``steps`` > 0 adds training parity where rnnspec can train both.
    ``optimizers=(opt_a, opt_b)`` (a Keras optimizer, a ``torch.optim`` optimizer bound to the module's parameters)
    compares the two training loops' optimizers: their settings, where each puts epsilon, and the weights after
    a few steps from the same start. Returns the :class:`Report` when they agree.

    The verdict is about the two models. What is about something else warns (a :class:`ConformanceWarning`
    each, and a ``warning:`` line of the report) without failing: the two optimizers' embedding second-moment
    rule, unless training semantics are asked for (``training=True``, ``optimizers=`` or ``steps=``), and a
    module handed over in train mode whose outputs differ there (dropout on).
    """
    __tracebackhide__ = True  # pytest shows the report, not this function's source
    report = compare(
        a,
        b,
        spec,
        inputs=inputs,
        grads=grads,
        atol=atol,
        rtol=rtol,
        weight_map=weight_map,
        seed=seed,
        steps=steps,
        optimizers=optimizers,
        training=training,
    )
    if not report.passed:
        raise AssertionError(report.text())
    import warnings

    for warning in report.warnings:
        warnings.warn(ConformanceWarning(warning), stacklevel=2)
    return report
