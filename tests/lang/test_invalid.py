"""The corpus of invalid specs: every file gets located errors with the expected message, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rnnspec import SpecError, load_spec
from rnnspec.cli import main
from rnnspec.lang.errors import format_path
from tests.conftest import TESTS

HERE = TESTS / "invalid"
EXPECTED: dict[str, list[dict[str, str]]] = yaml.safe_load((HERE / "expected.yaml").read_text())


def _parse(line: str) -> tuple[tuple[int, int] | None, str, str]:
    where, path, fragment = (part.strip() for part in line.split("|", 2))
    pos = None if where == "-" else tuple(int(n) for n in where.split(":"))
    return pos, path, fragment


def test_corpus_and_expectations_match():
    files = sorted(p.name for p in HERE.iterdir() if p.name != "expected.yaml")
    assert files == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_spec_is_located(name: str):
    with pytest.raises(SpecError) as info:
        load_spec(HERE / name)
    issues = info.value.issues
    assert len(issues) == len(EXPECTED[name]), info.value.render()
    for issue, want in zip(issues, EXPECTED[name], strict=True):
        pos, path, fragment = _parse(want["at"])
        assert (issue.line, issue.column) == (pos or (None, None)), issue.render()
        assert format_path(issue.path) == path, issue.render()
        assert fragment in issue.message, issue.render()
        assert issue.file == str(HERE / name)
        # the whole of what the user reads: what was received, what was expected, how to fix it
        assert (issue.received, issue.expected, issue.fix) == (
            want.get("received"),
            want.get("expected"),
            want.get("fix"),
        ), issue.render()
        assert issue.fix, issue.render()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_reports_invalid_spec_with_exit_1(name: str, capsys: pytest.CaptureFixture[str]):
    code = main(["validate", str(HERE / name)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    pos, _, fragment = _parse(EXPECTED[name][0]["at"])
    location = f"{HERE / name}:{pos[0]}:{pos[1]}" if pos else str(HERE / name)
    assert location in err
    assert fragment in err


def test_all_errors_of_a_file_are_reported(tmp_path: Path):
    spec = tmp_path / "many.yaml"
    spec.write_text(
        "rnnspec: 1\nname: many\ninput: {vocab_size: 0}\nembedding: {output_dim: -1}\n"
        "recurrent:\n  - {cell: lstm, units: 0, dropout: 2}\n  - {cell: gru, unitz: 3}\n"
        "head: {units: 2, activation: softmaxx}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    paths = [".".join(map(str, i.path)) for i in info.value.issues]
    assert paths == [
        "input.vocab_size",
        "embedding.output_dim",
        "recurrent.0.units",
        "recurrent.0.dropout",
        "recurrent.1.units",
        "recurrent.1.unitz",
        "head.activation",
    ]
    lines = [i.line for i in info.value.issues]
    assert lines == sorted(lines)
