"""The budget per foreign file and the one translation of parser exceptions (rnnspec.core.budget), and the
safetensors reader that uses them: overlapping spans and absurd shapes (issue 20)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from rnnspec.core.budget import ForeignFileError, ReadBudget, cap_lines, foreign_bytes
from rnnspec.core.weights import WeightsError, check_weights, load_weights_file
from rnnspec.lang.loader import loads_spec


def _raw_safetensors(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_overlapping_spans_are_refused(tmp_path: Path) -> None:
    # 16 tensors all over the same 4 KiB: read and copied 16 times before
    header = {f"t{i}": {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]} for i in range(16)}
    path = _raw_safetensors(tmp_path / "o.safetensors", header, b"\0" * 4096)
    with pytest.raises(WeightsError, match="share bytes"):
        load_weights_file(path)


@pytest.mark.parametrize("shape", ["[1e400]", "[1e20, 1e20]", "[2.5]", "[true]", '["3"]'])
def test_shapes_that_are_not_integers_are_one_error(shape: str, tmp_path: Path) -> None:
    raw = ('{"t": {"dtype": "F32", "shape": ' + shape + ', "data_offsets": [0, 4]}}').encode()
    path = tmp_path / "s.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    with pytest.raises(WeightsError, match=r"s\.safetensors: not a readable safetensors file"):
        load_weights_file(path)


def test_a_huge_integer_shape_product_is_refused(tmp_path: Path) -> None:
    header = {"t": {"dtype": "F32", "shape": [2**62, 2**62, 2**62], "data_offsets": [0, 4]}}
    path = _raw_safetensors(tmp_path / "p.safetensors", header, b"\0" * 4)
    with pytest.raises(WeightsError, match="do not hold shape"):
        load_weights_file(path)


def test_the_budget_totals_bytes_and_counts_items(tmp_path: Path) -> None:
    budget = ReadBudget(tmp_path / "f", max_bytes=100, max_items=3)
    budget.charge(60, "a")
    with pytest.raises(ForeignFileError, match=r"f: b needs 50 B, taking the file to 110 B"):
        budget.charge(50, "b")
    with pytest.raises(ForeignFileError, match="impossible size"):
        budget.charge(float("nan"), "c")
    assert budget.once("k") and not budget.once("k")
    budget.count("members", 3)
    with pytest.raises(ForeignFileError, match="more than 3 members"):
        budget.count("members")


@pytest.mark.parametrize(
    "exc",
    [
        zlib.error("bad"),
        struct.error("short"),
        OverflowError("big"),
        RecursionError(),
        MemoryError(),
        KeyError("k"),
        NotImplementedError("That compression method is not supported"),
    ],
)
def test_every_parser_exception_becomes_a_located_error(exc: Exception, tmp_path: Path) -> None:
    with (
        pytest.raises(ForeignFileError, match=r"^.*x\.bin: not a readable thing \(.*\); fix: "),
        foreign_bytes(tmp_path / "x.bin", "thing"),
    ):
        raise exc


def test_cap_lines_lists_the_first_20_then_counts_the_rest() -> None:
    lines = [f"  - {i}" for i in range(20_000)]
    capped = cap_lines(lines)
    assert capped[:20] == lines[:20] and capped[20] == "  ... and 19,980 more" and len(capped) == 21
    assert cap_lines(lines[:20]) == lines[:20]


def test_a_weights_mismatch_list_is_capped() -> None:
    spec = loads_spec(
        "rnnspec: 1.1\nname: w\ninput: {features: 3}\nrecurrent: [{cell: lstm, units: 2}]\nhead: {units: 1}\n"
    )
    weights = {f"extra_{i}": None for i in range(500)}
    with pytest.raises(WeightsError) as info:
        check_weights(spec, weights)
    assert len(str(info.value).splitlines()) <= 25 and "more" in str(info.value)
