"""Reading spec files: formats, positions, and every file-level mistake as a located SpecError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rnnspec import SpecError, load_spec, loads_spec
from tests.conftest import SPECS


def _only_issue(exc: pytest.ExceptionInfo[SpecError]):
    assert len(exc.value.issues) == 1, exc.value.render()
    return exc.value.issues[0]


def test_json_and_yaml_give_the_same_spec(tmp_path: Path):
    data = yaml.safe_load((SPECS / "reuters_gru.yaml").read_text())
    path = tmp_path / "reuters.json"
    path.write_text(json.dumps(data, indent=2))
    assert load_spec(path) == load_spec(SPECS / "reuters_gru.yaml")


def test_json_positions_survive_tabs(tmp_path: Path):
    path = tmp_path / "tabs.json"
    path.write_text(
        '{\n\t"rnnspec": 1,\n\t"name": "t",\n\t"input": {"features": 3},\n'
        '\t"recurrent": [{"cell": "gru", "units": -1}]\n}\n'
    )
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    issue = _only_issue(exc)
    assert (issue.line, issue.column) == (5, 41)  # the `-1`, counting the tab as one column


def test_json_duplicate_keys_are_reported(tmp_path: Path):
    path = tmp_path / "dup.json"
    path.write_text(
        '{"rnnspec": 1, "name": "a", "name": "b", "input": {"features": 3},\n'
        ' "recurrent": [{"cell": "gru", "units": 1}]}'
    )
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    issue = _only_issue(exc)
    assert "'name' appears twice" in issue.message and issue.line == 1


def test_missing_file():
    with pytest.raises(SpecError) as exc:
        load_spec("no/such/spec.yaml")
    assert "no such file" in _only_issue(exc).message


def test_directory_names_the_specs_inside():
    with pytest.raises(SpecError) as exc:
        load_spec(SPECS)
    issue = _only_issue(exc)
    assert "is a directory" in issue.message and "bidirectional_lstm.yaml" in (issue.fix or "")


def test_non_utf8_text_is_located(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"rnnspec: 1\nname: caf\xe9\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    issue = _only_issue(exc)
    assert "not UTF-8" in issue.message and issue.line == 2


def test_oversized_file(tmp_path: Path):
    path = tmp_path / "big.yaml"
    path.write_text("# x\n" * 400_000)
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert "small text file" in _only_issue(exc).message


def test_multiple_documents_are_an_error():
    with pytest.raises(SpecError) as exc:
        loads_spec("rnnspec: 1\n---\nname: x\n")
    assert "invalid YAML" in _only_issue(exc).message


def test_python_tags_are_never_executed(tmp_path: Path):
    marker = tmp_path / "pwned"
    text = f"rnnspec: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(SpecError):
        loads_spec(text)
    assert not marker.exists()


def test_yaml_booleans_and_comments_are_plain_yaml():
    spec = loads_spec(
        "rnnspec: 1  # version\nname: x\ninput: {features: 2}\n"
        "recurrent:\n  - {cell: gru, units: 2, go_backwards: yes}\n"
    )
    assert spec.recurrent[0].go_backwards is True


def test_string_numbers_are_not_coerced():
    with pytest.raises(SpecError) as exc:
        loads_spec("rnnspec: 1\nname: x\ninput: {features: '2'}\nrecurrent: [{cell: gru, units: 2}]\n")
    assert _only_issue(exc).fix == "remove the quotes: 2"


def test_control_characters_are_located():
    with pytest.raises(SpecError) as exc:
        loads_spec("rnnspec: 1\nname: a\x01b\n")
    issue = _only_issue(exc)
    assert "control character" in issue.message and (issue.line, issue.column) == (2, 8)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1:30", "reads 1:30 as the number 90 (base 60)"),
        ("010", "reads 010 as an octal number (8)"),
        ("0x10", "reads 0x10 as the number 16 (hexadecimal)"),
    ],
)
def test_a_yaml_1_1_number_names_its_field(value: str, fragment: str):
    text = f"rnnspec: 1\nname: n\ninput: {{features: 3}}\nrecurrent:\n  - cell: gru\n    units: {value}\n"
    with pytest.raises(SpecError) as info:
        loads_spec(text)
    (issue,) = info.value.issues
    assert issue.path == ("recurrent", 0, "units") and (issue.line, issue.column) == (6, 12)
    assert f"6:12: recurrent[0].units: YAML 1.1 {fragment}" in info.value.render()
