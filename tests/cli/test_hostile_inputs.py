"""Hostile and careless spec files and output paths: a clear error, bounded time and memory, nothing replaced.

Each case is one member of a class from the hostile-input review: YAML alias expansion, files that
are not regular files (FIFO, device), oversized or endless files, YAML 1.1 number forms that read as
something else, integers too long to read, and output paths that are not regular files.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rnnspec.cli import main
from tests.conftest import REPO

BASE = "rnnspec: 1\nname: x\ninput: {features: 3}\nrecurrent: [{cell: lstm, units: 4}]\n"


def _cli(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rnnspec", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 10], ids=["9^6", "9^10"])
def test_billion_laughs_is_refused_quickly(levels: int, tmp_path: Path) -> None:
    (tmp_path / "laughs.yaml").write_text(_laughs(levels))
    result = _cli(["validate", str(tmp_path / "laughs.yaml")], timeout=30)
    assert result.returncode == 1
    assert "expands to more than" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    text = (
        "rnnspec: 1\nname: x\ninput: {features: 3}\n"
        "recurrent: [&l {cell: lstm, units: 4, return_sequences: true}, *l, {cell: gru, units: 2}]\n"
    )
    (tmp_path / "a.yaml").write_text(text)
    assert main(["validate", str(tmp_path / "a.yaml")]) == 0


def test_a_fifo_as_the_spec_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    result = _cli(["validate", str(fifo)], timeout=30)
    assert result.returncode == 1 and "FIFO" in result.stdout + result.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_the_spec_is_refused_before_reading(device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"{device} is absent")
    result = _cli(["validate", device], timeout=30)
    assert result.returncode == 1 and "character device" in result.stdout + result.stderr


def test_a_huge_sparse_spec_is_refused_from_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(9 * 1024**3)  # sparse: no disk used
    result = _cli(["summary", str(path)], timeout=30)
    assert result.returncode == 1 and "9,663,676,416 bytes" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1:30", "as the number 90 (base 60)"),
        ("0x10", "as the number 16 (hexadecimal)"),
        ("1_000", "as the number 1000 (underscores ignored)"),
        ("010", "as an octal number (8)"),
        ("0b11", "as the number 3 (binary)"),
        ("9" * 5000, "a number with 5,000 digits"),
    ],
    ids=["sexagesimal", "hex", "underscores", "octal", "binary", "5000_digits"],
)
def test_yaml_1_1_numbers_and_huge_integers_are_located_errors(
    value: str, fragment: str, tmp_path: Path, capsys
) -> None:
    (tmp_path / "s.yaml").write_text(BASE.replace("units: 4", f"units: {value}"))
    assert main(["validate", str(tmp_path / "s.yaml")]) == 1
    err = capsys.readouterr().err
    assert fragment in err and "s.yaml:4:" in err


def test_json_with_a_huge_integer_is_an_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "s.json").write_text('{"rnnspec": 1, "name": "x", "units": ' + "7" * 5000 + "}")
    assert main(["validate", str(tmp_path / "s.json")]) == 1
    assert "4300 digits" in capsys.readouterr().err


def test_plain_decimals_still_read() -> None:
    from rnnspec import loads_spec

    spec = loads_spec(BASE.replace("units: 4", "units: 40").replace("features: 3", "features: +3"))
    assert spec.cells[0].units == 40 and spec.input.features == 3


# -- output paths --------------------------------------------------------------------------------------


def test_a_fifo_at_the_output_path_is_not_replaced(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "schema.json"
    os.mkfifo(fifo)
    assert main(["schema", "-o", str(fifo)]) == 1
    assert "FIFO" in capsys.readouterr().err
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_device_at_the_output_path_is_not_replaced(capsys) -> None:
    before = os.stat("/dev/null")
    assert main(["schema", "-o", "/dev/null"]) == 1
    assert "character device" in capsys.readouterr().err
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert main(["schema", "-o", str(link)]) == 0
    assert link.is_symlink() and real.read_text().startswith("{")


def test_a_symlink_to_a_fifo_is_refused(tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "link.json").symlink_to(fifo)
    assert main(["schema", "-o", str(tmp_path / "link.json")]) == 1
    assert "FIFO" in capsys.readouterr().err and stat.S_ISFIFO(fifo.stat().st_mode)


def test_write_errors_name_the_users_path_not_the_temp_file(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker / "schema.json"  # a path under a regular file fails even for root
    assert main(["schema", "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert str(target) in err or str(blocker) in err
    assert ".tmp" not in err


def test_an_empty_output_path_is_a_usage_error(capsys) -> None:
    assert main(["schema", "-o", ""]) == 2
    assert "-o/--output is empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("recurrent:\n  - cell: lstm\nunits: 4\n", "units", 6),
        ("recurrent:\n  - cell: lstm\n    units: 4\nreturn_sequences: true\n", "return_sequences", 7),
        ("recurrent: [{cell: lstm, units: 4}]\nhead:\n  units: 1\nactivation: sigmoid\n", "activation", 7),
    ],
    ids=["units_out_of_recurrent", "return_sequences_out_of_recurrent", "activation_out_of_head"],
)
def test_a_dedented_key_is_told_to_go_back_where_it_was(text: str, key: str, line: int, tmp_path: Path, capsys) -> None:
    (tmp_path / "d.yaml").write_text("rnnspec: 1\nname: x\ninput: {features: 3}\n" + text)
    assert main(["validate", str(tmp_path / "d.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"d.yaml:{line}:1: {key}: `{key}` is not indented" in err
    assert "belongs in `head`" not in err


@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_an_unknown_device_is_a_usage_error_on_every_backend(backend: str, capsys) -> None:
    assert main(["train", "specs/char_rnn_hello.yaml", "-b", backend, "--device", "bogus"]) == 2
    assert "'bogus' is not a device" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "shown"), [("true", "true (boolean)"), ("1.0", "1.0 (number)"), ("yes", "true (boolean)")]
)
def test_a_version_that_only_equals_1_is_refused(value: str, shown: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "v.yaml").write_text(BASE.replace("rnnspec: 1", f"rnnspec: {value}"))
    assert main(["validate", str(tmp_path / "v.yaml")]) == 1
    err = capsys.readouterr().err
    assert "v.yaml:1:10: rnnspec: unsupported spec format version" in err and f"received: {shown}" in err


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("learning_rate", ".inf", "must be a finite number"),
        ("learning_rate", "1e300", "must be at most 1000.0"),
        ("learning_rate", ".nan", "must be a finite number"),
        ("epsilon", "1.0e-300", "must be at least 1e-12"),
        ("clipnorm", ".inf", "must be a finite number"),
        ("clipvalue", ".nan", "must be a finite number"),
    ],
)
def test_optimizer_values_that_can_only_produce_nan_are_refused(
    field: str, value: str, fragment: str, tmp_path: Path, capsys
) -> None:
    text = BASE + f"head: {{units: 1}}\ntraining: {{loss: mse, optimizer: {{name: adam, {field}: {value}}}}}\n"
    (tmp_path / "o.yaml").write_text(text)
    assert main(["validate", str(tmp_path / "o.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"training.optimizer.{field}: " in err and fragment in err


def test_an_exponent_without_a_dot_is_a_number() -> None:
    from rnnspec import loads_spec

    text = BASE + "head: {units: 1}\ntraining: {loss: mse, optimizer: {name: adam, learning_rate: 5e-4}}\n"
    assert loads_spec(text).training.optimizer.learning_rate == 5e-4
