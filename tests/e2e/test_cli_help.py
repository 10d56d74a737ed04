"""Every command documents itself: --help works and shows an example (docs are tested)."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from leadscore.cli.app import app


def command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: Any, prefix: list[str]) -> None:
        paths.append(prefix)
        if isinstance(getattr(command, "commands", None), dict):
            for name, sub in command.commands.items():
                walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    paths = command_paths()
    assert len(paths) >= 12
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example:" in result.output, f"`leadscore {' '.join(path)} --help` shows no example"


def test_readme_commands_exist() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    known = {" ".join(path) for path in command_paths()}
    used = [line.split("#")[0].split()[1:] for line in readme.splitlines() if line.startswith("leadscore ")]
    assert used, "the README shows no leadscore command"
    for words in used:
        command = " ".join(words[:2]) if " ".join(words[:2]) in known else words[0]
        assert command in known, f"README uses unknown command {command!r}"
