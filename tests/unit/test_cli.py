"""The `wijkmatch` dispatcher: every listed sub-command resolves to a function of its owner's module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from services.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_resolves_to_a_callable(name: str) -> None:
    module_name, func_name = COMMANDS[name][0].split(":")
    assert callable(getattr(importlib.import_module(module_name), func_name))


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in COMMANDS)


def test_unknown_command_exits_2_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_module_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "solve" in done.stdout
