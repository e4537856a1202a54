"""The root command: its command table, help without value placeholders on flags, shell completion.

`replctl --help` lists commands from the table in replctl/cli.py without importing them
(tests/unit/test_startup_imports.py checks the imports); here the table is checked against the
commands themselves, every help screen is rendered, and the completion scripts and answers typer
provides are exercised for bash, zsh and fish, through the console script as a shell runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replctl.cli import COMMANDS, app, load_command

REPLCTL = Path(sys.executable).parent / "replctl"
runner = CliRunner()


def first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def every_help_screen() -> list[list[str]]:
    screens = [[]]
    for name in COMMANDS:
        screens.append([name])
        command = load_command(name)
        screens += [[name, sub] for sub in getattr(command, "commands", {})]
    return screens


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_says_what_each_command_says_of_itself(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert first_paragraph(command.help) == COMMANDS[name].summary


def test_root_help_lists_every_command_in_table_order() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    panel = result.output[result.output.index("Commands"):]
    listed = [line.split()[1] for line in panel.splitlines() if line.startswith("│ ") and line[2] != " "]
    assert listed == list(COMMANDS)
    for entry in COMMANDS.values():  # markdown renders `code` as plain text
        assert entry.summary.replace("`", "") in " ".join(panel.replace("│", " ").split())


@pytest.mark.parametrize("argv", every_help_screen(), ids=lambda a: " ".join(a) or "root")
@pytest.mark.parametrize("color", ["color", "--no-color", "NO_COLOR"])
def test_flags_show_no_value_placeholder(argv: list[str], color: str) -> None:
    env = {"COLUMNS": "160", **({"NO_COLOR": "1"} if color == "NO_COLOR" else {})}
    args = (["--no-color"] if color == "--no-color" else []) + [*argv, "--help"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output


def test_options_that_take_a_value_still_show_it() -> None:
    result = runner.invoke(app, ["deploy", "--help"], env={"COLUMNS": "160"})
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│ --")}
    assert "<str>" in rows["--env"]
    assert "<" not in rows["--yes"] and "<" not in rows["--dry-run"]
    root = runner.invoke(app, ["--help"], env={"COLUMNS": "160"}).output
    assert "<table|json>" in root and "<file>" in root


def test_an_unknown_command_is_a_usage_error_with_a_suggestion() -> None:
    result = runner.invoke(app, ["stauts"])
    assert result.exit_code == 2
    assert "No such command 'stauts'. Did you mean 'status'?" in " ".join(result.output.split())


def test_global_options_after_the_command_name() -> None:
    result = runner.invoke(app, ["validate-accounts", "--config-only", "--config", "missing.yaml", "-o", "json"])
    assert result.exit_code == 2
    assert "missing.yaml" in result.output


# --------------------------------------------------------------------------- completion


def complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The console script with a completion request, as a shell's completion function runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("_REPLCTL", "COMP_", "_TYPER"))}
    return subprocess.run([str(REPLCTL)], env={**clean, **env}, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o default -F _replctl_completion replctl"),
    ("zsh", "#compdef replctl"),
    ("fish", "complete --command replctl"),
])
def test_the_completion_script_is_printed_for_each_shell(shell: str, marker: str) -> None:
    done = complete({"_REPLCTL_COMPLETE": f"source_{shell}"})
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout
    assert "_REPLCTL_COMPLETE=complete_" in done.stdout


@pytest.mark.parametrize(("shell", "env", "expected"), [
    ("bash", {"COMP_WORDS": "replctl sta", "COMP_CWORD": "1"}, "status"),
    ("bash", {"COMP_WORDS": "replctl deploy --dr", "COMP_CWORD": "2"}, "--dry-run"),
    ("bash", {"COMP_WORDS": "replctl sandbox in", "COMP_CWORD": "2"}, "invoke"),
    ("zsh", {"_TYPER_COMPLETE_ARGS": "replctl dri"}, '"drift":"StackSet drift detection'),
    ("fish", {"_TYPER_COMPLETE_ARGS": "replctl status --en", "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
     "--env\tOnly this environment (repeatable)."),
])
def test_completion_answers_commands_and_options(shell: str, env: dict[str, str], expected: str) -> None:
    # Command names come from the table; a command's options need its module, imported on demand.
    done = complete({"_REPLCTL_COMPLETE": f"complete_{shell}", **env})
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout


def test_show_and_install_completion_in_bash(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": f"{REPLCTL.parent}:/usr/bin:/bin"}
    shown = subprocess.run(["bash", "-c", "replctl --show-completion"], env=env, capture_output=True, text=True,
                           timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _replctl_completion replctl" in shown.stdout
    installed = subprocess.run(["bash", "-c", "replctl --install-completion"], env=env, capture_output=True,
                               text=True, timeout=60, check=False)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "replctl.sh"
    assert script.read_text().strip() == shown.stdout.strip()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    # The installed function, run by bash itself, completes a command name.
    words = subprocess.run(["bash", "-c", f"source '{script}'; COMP_WORDS=(replctl dr); COMP_CWORD=1; "
                            "_replctl_completion replctl; echo \"${COMPREPLY[@]}\""], env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert words.stdout.split() == ["drift"], words.stderr
