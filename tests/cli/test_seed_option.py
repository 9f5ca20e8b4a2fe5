"""Every ``--seed`` is bounded where it is parsed: 0..2**32-1 (what NumPy and Keras take), a usage error (exit 2)
otherwise, before anything is read or built."""

from __future__ import annotations

import pytest
import typer

from rnnspec.cli import app, main
from tests.conftest import SPECS

SPEC = str(SPECS / "bilstm_dropout.yaml")


def _commands_with_a_seed() -> list[str]:
    command = typer.main.get_command(app)
    return sorted(
        name
        for name, sub in command.commands.items()  # type: ignore[attr-defined]
        if any("--seed" in getattr(param, "opts", []) for param in sub.params)
    )


def test_every_command_taking_a_seed_is_tested_here():
    assert _commands_with_a_seed() == ["build", "check", "train"]


@pytest.mark.parametrize("command", ["build", "check", "train"])
@pytest.mark.parametrize("seed", ["-1", str(2**32), str(2**64), str(10**30)])
def test_a_seed_out_of_range_is_a_usage_error(command: str, seed: str, capsys):
    assert main([command, SPEC, "--seed", seed]) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and ("less than or equal to 4294967295" in err or "greater than or equal to 0" in err)
    assert "Traceback" not in err
