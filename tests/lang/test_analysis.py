"""analyze(): one analysis per spec and convention, shared by the steps of a build."""

from __future__ import annotations

import pytest

import rnnspec
from rnnspec.lang import analysis
from tests.conftest import SPECS


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    inner = analysis._analyze

    def counting(spec, conv):
        calls.append((spec.name, conv))
        return inner(spec, conv)

    monkeypatch.setattr(analysis, "_analyze", counting)
    monkeypatch.setattr(analysis, "_RECENT", type(analysis._RECENT)())
    return calls


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_build_analyzes_its_spec_once(counted: list[tuple[str, str]], backend: str) -> None:
    spec = rnnspec.load_spec(SPECS / "imdb_lstm.yaml")
    rnnspec.build(spec, backend, seed=0)
    assert counted == [("imdb-lstm", "keras")]


def test_another_spec_object_or_convention_is_analyzed_anew(counted: list[tuple[str, str]]) -> None:
    first = rnnspec.load_spec(SPECS / "imdb_lstm.yaml")
    again = rnnspec.load_spec(SPECS / "imdb_lstm.yaml")
    assert analysis.analyze(first) is analysis.analyze(first)
    assert analysis.analyze(again).total_params == 328353  # the seeds' count for this model
    assert analysis.analyze(first, "torch").total_params == 328481
    assert counted == [("imdb-lstm", "keras"), ("imdb-lstm", "keras"), ("imdb-lstm", "torch")]


def test_the_shared_analysis_cannot_be_changed_in_place() -> None:
    rows = analysis.analyze(rnnspec.load_spec(SPECS / "imdb_lstm.yaml")).layers
    assert isinstance(rows, tuple)
