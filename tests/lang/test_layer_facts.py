"""The facts each layer kind declares (rnnspec/lang/layers.py) and what derives from them."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from rnnspec.core.weights import permute_gates
from rnnspec.lang.layers import (
    FRAMEWORKS,
    KINDS,
    LAYER_KINDS,
    PLACEMENTS,
    RECURRENT_KINDS,
    DenseSpec,
    DropoutSpec,
    GRUSpec,
    HeadEntry,
    LSTMSpec,
    RecurrentEntry,
    SimpleRNNSpec,
    SpatialDropoutSpec,
    entry_kind,
    entry_kinds,
)


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.kind)
def test_every_kind_declares_where_it_goes_and_its_framework_classes(cls):
    assert cls.keras_class and LAYER_KINDS[cls.kind] is cls
    assert cls.placements and set(cls.placements) <= set(PLACEMENTS)
    in_lists = bool({"recurrent", "head"} & cls.placements)
    assert (cls.entry_key is not None) == in_lists
    assert (cls.entry_form != "") == in_lists


@pytest.mark.parametrize("cls", RECURRENT_KINDS.values(), ids=lambda c: c.kind)
def test_every_cell_declares_a_gate_order_per_framework(cls):
    assert len(cls.gate_names) == cls.gates
    assert set(cls.gate_orders) == set(FRAMEWORKS)
    assert cls.gate_orders["keras"] == tuple(range(cls.gates))
    for order in cls.gate_orders.values():
        assert sorted(order) == list(range(cls.gates))


def test_the_gate_orders_are_the_frameworks_documented_ones():
    """PyTorch: nn.LSTM i, f, g, o and nn.GRU r, z, n; ONNX: LSTM i, o, f, c and GRU z, r, h (the operator docs)."""

    def names(cls, framework):
        return [cls.gate_names[k] for k in cls.gate_orders[framework]]

    assert names(LSTMSpec, "torch") == ["i", "f", "c", "o"]
    assert names(LSTMSpec, "onnx") == ["i", "o", "f", "c"]
    assert names(GRUSpec, "torch") == ["r", "z", "h"]
    assert names(GRUSpec, "onnx") == ["z", "r", "h"]
    assert names(SimpleRNNSpec, "torch") == ["h"]


def test_permute_gates_moves_whole_blocks_and_inverts():
    gru = GRUSpec(cell="gru", units=2)
    kernel = np.arange(3 * 6).reshape(3, 6)  # columns z z r r h h
    torch_order = permute_gates(kernel, gru, "torch")
    assert torch_order[:, :2].tolist() == kernel[:, 2:4].tolist()  # r first
    assert torch_order[:, 2:4].tolist() == kernel[:, :2].tolist()
    assert np.array_equal(permute_gates(torch_order, gru, "torch", inverse=True), kernel)
    lstm = LSTMSpec(cell="lstm", units=1)
    rows = np.array([[1], [2], [3], [4]])  # i f c o
    assert permute_gates(rows, lstm, "onnx", axis=0).ravel().tolist() == [1, 4, 2, 3]


@pytest.mark.parametrize(
    ("entry", "placement", "kind"),
    [
        ({"cell": "gru", "units": 3}, None, "gru"),
        ({"cell": "nope"}, None, None),
        ({"dropout": 0.1}, None, "dropout"),
        ({"spatial_dropout": 0.1}, "recurrent", "spatial_dropout"),
        ({"spatial_dropout": 0.1}, "head", None),
        ({"units": 2, "dropout": 0.1}, "head", "dense"),  # a Dense with a stray option stays a Dense
        ({"units": 2}, "recurrent", None),
        ({"name": "x"}, None, None),
        ("lstm", None, None),
    ],
)
def test_one_entry_sniffer(entry, placement, kind):
    found = entry_kind(entry, placement)
    assert (found.kind if found else None) == kind


@pytest.mark.parametrize(("union", "placement"), [(RecurrentEntry, "recurrent"), (HeadEntry, "head")])
def test_the_list_unions_are_built_from_the_kinds(union, placement):
    members = typing.get_args(typing.get_args(union)[0])
    assert [typing.get_args(m)[0] for m in members] == entry_kinds(placement)
    assert DenseSpec in entry_kinds("head") and DropoutSpec in entry_kinds("recurrent")
    assert SpatialDropoutSpec not in entry_kinds("head")
