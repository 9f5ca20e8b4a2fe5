"""The command line: exit codes, output, and that validate/summary/schema import no framework."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rnnspec.cli import main
from tests.conftest import REPO, SPECS

FRAMEWORKS = ("tensorflow", "keras", "torch", "jax")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rnnspec", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_validate_ok_exit_0(capsys: pytest.CaptureFixture[str]):
    specs = sorted(str(p) for p in SPECS.glob("*.yaml"))
    assert main(["validate", *specs]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == len(specs)


def test_validate_mixed_reports_each_file_and_exits_1(capsys: pytest.CaptureFixture[str]):
    bad = str(REPO / "tests/invalid/zero_units.yaml")
    assert main(["validate", str(SPECS / "imdb_lstm.yaml"), bad]) == 1
    captured = capsys.readouterr()
    assert "ok " in captured.out and f"{bad}:7:12" in captured.err


def test_validate_json_report(capsys: pytest.CaptureFixture[str]):
    bad = str(REPO / "tests/invalid/typo_return_sequences.yaml")
    assert main(["validate", "--json", bad]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["ok"] is False
    error = report[0]["errors"][0]
    assert (error["line"], error["column"], error["path"]) == (8, 5, "recurrent[0].retrun_sequences")


def test_summary_json_matches_the_documented_shape(capsys: pytest.CaptureFixture[str]):
    assert main(["summary", "--json", str(SPECS / "reuters_gru.yaml")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {
        "name",
        "convention",
        "layers",
        "total_params",
        "trainable_params",
        "non_trainable_params",
    }
    assert doc["total_params"] == 3_108_910 and doc["convention"] == "keras"
    assert doc["layers"][1] == {
        "name": "recurrent_0",
        "type": "GRU",
        "output_shape": [None, 300, 256],
        "params": 394_752,
    }


def test_summary_convention_flag(capsys: pytest.CaptureFixture[str]):
    assert main(["summary", "--json", "-c", "keras", str(SPECS / "char_rnn_hello.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 171


def test_summary_table_footer(capsys: pytest.CaptureFixture[str]):
    assert main(["summary", str(SPECS / "imdb_simplernn.yaml")]) == 0
    out = capsys.readouterr().out
    # Keras 3 prints exactly these footer lines for this model (reference §7).
    assert " Total params: 322,113 (1.23 MB)" in out
    assert " Trainable params: 322,113 (1.23 MB)" in out
    assert " Non-trainable params: 0 (0.00 B)" in out


@pytest.mark.parametrize(
    "args",
    [
        ["summary", "-c", "tensorflow", "specs/imdb_lstm.yaml"],
        ["summary"],
        ["frobnicate"],
        ["validate"],
        ["summary", "--no-such-flag", "specs/imdb_lstm.yaml"],
    ],
    ids=["bad-choice", "missing-arg", "unknown-command", "no-files", "unknown-flag"],
)
def test_usage_errors_exit_2(args: list[str]):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["summary", "nope.yaml"], ["summary", "specs"], ["validate", "tests/invalid/binary.yaml"]]
)
def test_user_mistakes_exit_1_without_traceback(args: list[str]):
    result = run(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_no_framework_is_imported_by_the_static_commands(tmp_path: Path):
    schema_out = tmp_path / "schema.json"
    script = f"""
import sys
from rnnspec.cli import main
codes = [
    main(["validate", "specs/imdb_lstm.yaml", "specs/reuters_gru.yaml"]),
    main(["summary", "specs/bidirectional_lstm.yaml"]),
    main(["summary", "--json", "specs/char_rnn_hello.yaml"]),
    main(["schema", "-o", {str(schema_out)!r}]),
    main(["validate", "tests/invalid/typo.json"]),
]
import rnnspec
rnnspec.analyze(rnnspec.load_spec("specs/imdb_lstm.yaml"), "torch")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FRAMEWORKS!r})
print("CODES", codes, "LOADED", loaded)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "CODES [0, 0, 0, 0, 1] LOADED []" in result.stdout, result.stdout + result.stderr


def test_python_dash_m_and_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("rnnspec ")


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("validate", "summary", "schema", "import", "export"):
        assert command in result.stdout


def test_schema_to_stdout_is_json(capsys: pytest.CaptureFixture[str]):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("rnnspec")


def test_importing_rnnspec_defers_numpy_and_the_training_modules():
    script = (
        "import sys, rnnspec\n"
        "print(sorted(m for m in ('numpy', 'rnnspec.data', 'rnnspec.runtime.training') if m in sys.modules))\n"
        "rnnspec.fit\n"
        "print('rnnspec.runtime.training' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.split("\n")[:2] == ["[]", "True"], result.stdout + result.stderr


@pytest.mark.parametrize("command", ["summary", "validate"])
def test_the_spec_commands_import_no_numpy(command: str):
    script = (
        "import sys\nfrom rnnspec.cli import main\n"
        f"code = main([{command!r}, 'specs/imdb_lstm.yaml'])\n"
        "print(code, 'numpy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.split()[-2:] == ["0", "False"], result.stdout + result.stderr
