"""Completeness: every layer kind has an entry, or a refusal with its reason, in every table keyed by kind.

The tables are the backends' (builders and, for cells, step functions or cell classes), the
exporters' (torch code emitters, ONNX node builders and fused cells) and the importers' (Keras
converters, state-dict readers). The Keras export builds the Keras model, so it follows the keras
backend's tables. A missing pair fails naming the kind and the table. Every loss and metric the
spec accepts has an entry in each trainer, checked against Keras's own loss on a few numbers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
import pytest

from rnnspec.core.kinds import DuplicateKindError, KindRegistry, MissingKindError
from rnnspec.lang.layers import LAYER_KINDS, RECURRENT_KINDS
from rnnspec.lang.losses import LOSSES, METRICS
from rnnspec.lang.spec import LossName, MetricName


@dataclass(frozen=True)
class Table:
    """One table keyed by layer kind: where it lives and which kinds it must cover."""

    label: str
    module: str
    attribute: str
    cells_only: bool = False

    @property
    def kinds(self) -> list[str]:
        return sorted(RECURRENT_KINDS if self.cells_only else LAYER_KINDS)


TABLES = [
    Table("numpy backend: forward functions", "rnnspec_backends.numpy.model", "FORWARD"),
    Table("numpy backend: step functions", "rnnspec_backends.numpy.model", "STEPS", cells_only=True),
    Table("torch backend: builders", "rnnspec_backends.torch.model", "BUILDERS"),
    Table("torch backend: cells", "rnnspec_backends.torch.model", "CELLS", cells_only=True),
    Table("keras backend (and keras export): builders", "rnnspec_backends.keras.model", "BUILDERS"),
    Table("keras backend (and keras export): cells", "rnnspec_backends.keras.model", "CELLS", cells_only=True),
    Table("torch export: code emitters", "rnnspec_backends.torch.export", "LAYER_CODE"),
    Table("torch export: cell code", "rnnspec_backends.torch.export", "CELL_CODE", cells_only=True),
    Table("onnx export: node builders", "rnnspec_backends.onnx.export", "BUILDERS"),
    Table("onnx export: fused cells", "rnnspec_backends.onnx.export", "FUSED_CELLS", cells_only=True),
    Table("keras import: converters", "rnnspec.interop.keras_import", "KIND_CONVERTERS"),
    Table("torch import: state-dict readers", "rnnspec.interop.torch_import", "READERS"),
]


def missing_pairs(table: KindRegistry, kinds: list[str]) -> list[str]:
    """The kinds of ``kinds`` that ``table`` neither registers nor refuses with a reason."""
    refused = table.refusals()
    return [kind for kind in kinds if kind not in table and not refused.get(kind)]


def _registry(table: Table) -> KindRegistry:
    module = importlib.import_module(table.module)
    registry = getattr(module, table.attribute)
    assert isinstance(registry, KindRegistry), f"{table.module}.{table.attribute} is not a KindRegistry"
    return registry


@pytest.mark.parametrize("table", TABLES, ids=lambda t: f"{t.module.rsplit('.', 2)[-2]}.{t.attribute}")
def test_every_kind_is_registered_or_refused(table: Table):
    missing = missing_pairs(_registry(table), table.kinds)
    assert not missing, "no entry and no declared refusal: " + ", ".join(
        f"({kind}, {table.label} {table.module}.{table.attribute})" for kind in missing
    )


@pytest.mark.parametrize("table", TABLES, ids=lambda t: f"{t.module.rsplit('.', 2)[-2]}.{t.attribute}")
def test_no_table_has_an_entry_for_an_unknown_kind(table: Table):
    registry = _registry(table)
    unknown = set(registry.kinds()) | set(registry.refusals())
    assert unknown <= set(LAYER_KINDS), f"{table.label}: entries for kinds the spec does not have"


def test_a_removed_registration_is_named_with_its_table():
    """The check itself: a table that lost one kind's entry is reported as that (kind, table) pair."""
    registry = KindRegistry("demo", "builder")
    registry.register(*sorted(LAYER_KINDS))(object)
    short = KindRegistry("demo", "builder")
    short.register(*[kind for kind in sorted(LAYER_KINDS) if kind != "gru"])(object)
    assert missing_pairs(registry, sorted(LAYER_KINDS)) == []
    assert missing_pairs(short, sorted(LAYER_KINDS)) == ["gru"]
    short.refuse("gru", "no GRU here")
    assert missing_pairs(short, sorted(LAYER_KINDS)) == []


def test_a_refusal_is_said_to_the_user_and_cannot_be_doubled():
    registry = KindRegistry("onnx export", "node builder", owner="the ONNX export")
    registry.refuse("gru", "ONNX has no such op")
    with pytest.raises(MissingKindError, match=r"the ONNX export cannot take layer kind .gru. .*ONNX has no such op"):
        registry.get("gru", "recurrent_0")
    with pytest.raises(DuplicateKindError):
        registry.register("gru")(object)
    with pytest.raises(DuplicateKindError):
        registry.refuse("gru", "again")


def test_a_converter_for_a_keras_class_twice_is_refused():
    from rnnspec.interop import keras_import

    with pytest.raises(DuplicateKindError, match="two converters for Keras class Dense"):
        keras_import.converter(classes=("Dense",))(lambda layer, ctx: None)


def test_a_porting_mistake_registered_twice_is_refused():
    from rnnspec.testing.mistakes import CATALOGUE

    with pytest.raises(DuplicateKindError, match="'mask_dropped' twice"):
        CATALOGUE.register("mask_dropped")(lambda spec: [])


# -- losses and metrics ------------------------------------------------------------------------------


# What the spec language promises (docs/spec.md), written out here: the registry must give exactly these.
DOCUMENTED_LOSSES = [
    "binary_crossentropy", "sparse_categorical_crossentropy", "categorical_crossentropy", "mse", "mae", "huber"
]  # fmt: skip
DOCUMENTED_METRICS = ["accuracy", "mae", "mse", "rmse"]


def test_the_spec_accepts_exactly_the_documented_losses_and_metrics():
    assert list(LossName.__args__) == DOCUMENTED_LOSSES
    assert list(MetricName.__args__) == DOCUMENTED_METRICS


def _cases(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Outputs (probabilities; for classification losses also usable as logits) and targets for loss ``name``."""
    if name == "sparse_categorical_crossentropy":
        p = rng.dirichlet(np.ones(4), size=6)
        return p, rng.integers(0, 4, size=6)
    if name == "categorical_crossentropy":
        return rng.dirichlet(np.ones(4), size=6), np.eye(4)[rng.integers(0, 4, size=6)]
    if name == "binary_crossentropy":
        return rng.uniform(0.02, 0.98, size=(6, 1)), rng.integers(0, 2, size=(6, 1)).astype(float)
    return rng.normal(size=(6, 2)) * 2, rng.normal(size=(6, 2))


LOSS_CASES = [(name, logits) for name, kind in LOSSES.items() for logits in (False, True)[: 1 + kind.from_logits]]


@pytest.mark.parametrize(
    ("name", "from_logits"), LOSS_CASES, ids=[f"{n}-{'logits' if lg else 'p'}" for n, lg in LOSS_CASES]
)
def test_every_loss_has_the_torch_trainers_formula_equal_to_keras(name: str, from_logits: bool):
    """The torch trainer computes each loss with the registry's formula over its ops: Keras's loss is the reference."""
    torch = pytest.importorskip("torch")
    keras_train = pytest.importorskip("rnnspec_backends.keras.train")
    from rnnspec_backends.torch.ops import LossOps

    kind = LOSSES[name]
    out, y = _cases(name, np.random.default_rng(7))
    options = {"from_logits": from_logits} if kind.from_logits else {}
    if kind.delta:
        options["delta"] = 0.7
    expected = float(keras_train.KERAS_LOSSES[name](**options)(y, out))
    got = kind.elementwise(
        torch.tensor(out), torch.tensor(y), LossOps, from_logits=from_logits, delta=options.get("delta", 1.0)
    )
    assert float(got.mean()) == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", list(METRICS))
def test_every_metric_has_an_entry_in_each_trainer(name: str):
    keras_train = pytest.importorskip("rnnspec_backends.keras.train")
    kind = METRICS[name]
    assert name in keras_train.KERAS_METRICS
    # the torch trainer: a per-step formula, the root of a mean, or accuracy (chosen from the shapes as Keras does)
    assert kind.per_step is not None or kind.root or kind.keras_class is None


@pytest.mark.parametrize("name", [name for name, kind in METRICS.items() if kind.keras_class is not None])
def test_every_metric_formula_equals_kerass_metric(name: str):
    """The torch trainer's per-step formula (or the root of the squared error's mean), against ``keras.metrics``."""
    torch = pytest.importorskip("torch")
    keras_train = pytest.importorskip("rnnspec_backends.keras.train")
    from rnnspec_backends.torch.ops import LossOps

    rng = np.random.default_rng(3)
    out, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    metric = getattr(keras_train.keras.metrics, METRICS[name].keras_class)()
    metric.update_state(y, out)
    error = torch.tensor(out - y)
    kind = METRICS[name]
    got = float((error * error).mean().sqrt()) if kind.root else float(kind.per_step(error, LossOps).mean())
    assert got == pytest.approx(float(metric.result()), rel=1e-5)
