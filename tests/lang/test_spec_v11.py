"""Spec 1.1: the layer kinds, names, the stack, and the per-backend kind registries (no framework needed)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnspec
from rnnspec.core.kinds import DuplicateKindError, KindRegistry, MissingKindError
from rnnspec.lang.layers import LAYER_KINDS, RECURRENT_KINDS, DropoutSpec
from tests.conftest import SPECS

BASE = {
    "rnnspec": 1.1,
    "name": "m",
    "input": {"vocab_size": 50, "seq_len": 7},
    "embedding": {"output_dim": 4, "mask_zero": True},
}


def spec_of(**parts):
    return rnnspec.spec_from_dict({**BASE, **parts})


def test_version_one_files_keep_their_names_and_meaning():
    spec = rnnspec.load_spec(SPECS / "reuters_gru.yaml")
    assert spec.rnnspec == 1
    assert spec.layer_names() == ["embedding", "recurrent_0", "recurrent_1", "head"]
    assert [layer.kind for _, layer in spec.stack()] == ["embedding", "gru", "gru", "dense"]


def test_default_names_count_each_kind():
    spec = spec_of(
        recurrent=[
            {"spatial_dropout": 0.1},
            {"cell": "lstm", "units": 3, "return_sequences": True},
            {"dropout": 0.2},
            {"cell": "gru", "units": 3},
            {"dropout": 0.3, "name": "late"},
        ],
        head=[{"units": 5, "activation": "relu"}, {"dropout": 0.4}, {"units": 2, "activation": "softmax"}],
    )
    assert spec.layer_names() == [
        "embedding",
        "spatial_dropout_0",
        "recurrent_0",
        "dropout_0",
        "recurrent_1",
        "late",
        "head_0",
        "dropout_2",
        "head_1",
    ]
    assert spec.output_units == 2 and spec.output_activation == "softmax"
    assert [type(c).__name__ for c in spec.cells] == ["LSTMSpec", "GRUSpec"]


def test_masking_layer_comes_from_mask_value():
    spec = rnnspec.spec_from_dict(
        {
            "rnnspec": 1.1,
            "name": "m",
            "input": {"features": 3, "mask_value": -1.0},
            "recurrent": [{"cell": "lstm", "units": 4, "return_sequences": True}],
            "head": {"units": 1},
        }
    )
    rows = rnnspec.analyze(spec).layers
    assert [(r.name, r.type, r.params) for r in rows] == [
        ("masking", "Masking", 0),
        ("recurrent_0", "LSTM", 4 * (4 * (3 + 4) + 4)),
        ("head", "Dense", 5),
    ]
    assert spec.masked and spec.output_masked and spec.output_per_step


def test_analysis_of_weightless_layers_and_head_stack():
    spec = spec_of(
        recurrent=[{"spatial_dropout": 0.1}, {"cell": "simple_rnn", "units": 6}, {"dropout": 0.5}],
        head=[{"units": 4, "activation": "gelu"}, {"units": 1, "activation": "sigmoid"}],
    )
    rows = rnnspec.analyze(spec).layers
    assert [(r.type, r.output_shape, r.params) for r in rows] == [
        ("Embedding", (None, 7, 4), 200),
        ("SpatialDropout1D", (None, 7, 4), 0),
        ("SimpleRNN", (None, 6), 6 * (4 + 6) + 6),
        ("Dropout", (None, 6), 0),
        ("Dense", (None, 4), 6 * 4 + 4),
        ("Dense", (None, 1), 5),
    ]


def test_dropout_entries_do_not_change_the_seeded_weights():
    plain = spec_of(recurrent=[{"cell": "lstm", "units": 3}], head={"units": 1, "activation": "sigmoid"})
    with_dropout = spec_of(
        recurrent=[{"spatial_dropout": 0.2}, {"cell": "lstm", "units": 3}, {"dropout": 0.5}],
        head={"units": 1, "activation": "sigmoid"},
    )
    a, b = rnnspec.initial_weights(plain, seed=3), rnnspec.initial_weights(with_dropout, seed=3)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_spec_dict_round_trip_keeps_every_new_field():
    spec = spec_of(
        recurrent=[{"cell": "gru", "units": 3, "return_sequences": True}, {"dropout": 0.25}],
        head=[{"units": 4, "activation": "elu"}, {"units": 3, "activation": "softmax", "name": "tags"}],
        training={"loss": {"name": "huber", "delta": 2.0}, "metrics": ["mae", "rmse"]},
    )
    again = rnnspec.spec_from_dict(spec.to_dict())
    assert again == spec
    assert again.training.loss.huber_delta == 2.0
    assert rnnspec.spec_from_dict({**spec.to_dict(), "training": {"loss": "huber"}}).training.loss.huber_delta == 1.0


def test_every_kind_declares_keras_class_and_shapes():
    for kind, cls in LAYER_KINDS.items():
        assert cls.kind == kind and cls.keras_class
    for cls in RECURRENT_KINDS.values():
        assert cls.gates in (1, 3, 4)
    assert DropoutSpec(dropout=0.5).weight_shapes(8, "keras") == {}


def test_registry_refuses_a_duplicate_kind():
    registry = KindRegistry("demo")
    registry.register("dropout")(lambda: None)
    with pytest.raises(DuplicateKindError, match="two builders for layer kind 'dropout'"):
        registry.register("dropout")(lambda: None)


def test_registry_names_the_missing_kind_layer_and_known_kinds():
    registry = KindRegistry("demo", "builder")
    registry.register("embedding", "lstm")(object)
    spec = spec_of(recurrent=[{"cell": "lstm", "units": 3}, {"dropout": 0.1}], head={"units": 1})
    with pytest.raises(MissingKindError) as info:
        registry.check(spec.stack())
    text = str(info.value)
    assert "'dropout' (layer 'dropout_0')" in text and "'dense' (layer 'head')" in text
    assert "it has: embedding, lstm" in text
    with pytest.raises(MissingKindError, match="not a layer kind of the spec language"):
        registry.get("conv2d", "c")  # a kind the spec language does not have


@pytest.mark.parametrize(
    ("written", "suggested"),
    [("LSTM", "lstm"), ("GRU", "gru"), ("SimpleRNN", "simple_rnn"), ("CuDNNLSTM", "lstm"), ("lstmm", "lstm")],
)
def test_keras_class_names_and_near_misses_suggest_the_cell(written: str, suggested: str):
    with pytest.raises(rnnspec.SpecError, match=rf"unknown cell '{written}'; did you mean '{suggested}'\?"):
        spec_of(recurrent=[{"cell": written, "units": 3}])


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("mean_squared_error", "mse"),
        ("mean_absolute_error", "mae"),
        ("huber_loss", "huber"),
        ("MeanSquaredError", "mse"),
        ({"name": "BinaryCrossentropy", "from_logits": True}, "binary_crossentropy"),
    ],
)
def test_keras_loss_names_are_read_as_rnnspec_names(written, read: str):
    spec = spec_of(recurrent=[{"cell": "gru", "units": 3}], head={"units": 1}, training={"loss": written})
    assert spec.training.loss.name == read and spec.to_dict()["training"]["loss"]["name"] == read


def test_keras_metric_names_are_read_as_rnnspec_names():
    written = ["acc", "mean_absolute_error", "MSE", "RootMeanSquaredError"]
    training = {"loss": "mse", "metrics": written}
    spec = spec_of(recurrent=[{"cell": "gru", "units": 3}], head={"units": 1}, training=training)
    assert spec.training.metrics == ["accuracy", "mae", "mse", "rmse"]
    with pytest.raises(rnnspec.SpecError, match=r"did you mean 'accuracy'\?"):
        spec_of(
            recurrent=[{"cell": "gru", "units": 3}], head={"units": 1}, training={"loss": "mse", "metrics": ["acuracy"]}
        )


def test_mask_flow_is_folded_from_the_layer_kinds():
    per_step = spec_of(recurrent=[{"cell": "gru", "units": 3, "return_sequences": True}, {"dropout": 0.1}])
    last = spec_of(recurrent=[{"cell": "gru", "units": 3}], head={"units": 1})
    plain = rnnspec.load_spec(SPECS / "reuters_gru.yaml")
    assert (per_step.masked, per_step.output_masked) == (True, True)
    assert (last.masked, last.output_masked) == (True, False)  # the recurrent layer drops the mask
    assert (plain.masked, plain.output_masked) == (False, False)
