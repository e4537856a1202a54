"""The JSON Schemas of `-o json` output: one per command, valid, versioned, and able to fail.

Every JSON document a command prints during the test suite — in-process through CliRunner, or as a
`replctl` process a test starts with subprocess.run (the sandbox tests, the wheel-install test) —
is validated against its schema by the autouse `json_outputs` fixture (tests/conftest.py). This
module checks the schemas themselves and the cheap outputs that need no AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from replctl.cli import app
from tests import jsonschemas
from tests.conftest import REPO

runner = CliRunner()


def leaf_commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):  # a group (typer ships its own click)
            found += leaf_commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def every_command() -> list[tuple[str, ...]]:
    """Every leaf command; the root loads its commands lazily, so each is loaded by name."""
    from replctl import cli

    found: list[tuple[str, ...]] = []
    for name in sorted(cli.COMMANDS):
        command = cli.load_command(name)
        found += leaf_commands(command, (name,)) if hasattr(command, "commands") else [(name,)]
    return found


COMMANDS = every_command()


def test_every_command_has_a_schema_and_every_schema_a_command() -> None:
    names = {jsonschemas.command_name(list(c)) for c in COMMANDS}
    schemas = set(jsonschemas.schema_files())
    assert names - schemas == set(), "commands without docs/json/<command>.schema.json"
    assert schemas - names == set(), "schemas of no command"


@pytest.mark.parametrize("name", sorted(jsonschemas.schema_files()))
def test_schema_is_draft_2020_12_and_versioned(name: str) -> None:
    schema = json.loads(jsonschemas.schema_files()[name].read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:replctl:json-output:v1:{name}"
    title = schema["title"]
    assert schema["description"] and title.startswith("replctl ") and title.endswith(" -o json")
    assert jsonschemas.command_name(title[len("replctl "):-len(" -o json")].split()) == name
    Draft202012Validator.check_schema(jsonschemas.strict(schema))


def test_strict_validation_rejects_an_undocumented_field_and_a_wrong_type() -> None:
    good = {"stopped": True, "pid": 42}
    assert jsonschemas.problems("sandbox-stop", good) == []
    assert jsonschemas.problems("sandbox-stop", {**good, "extra": 1}) == [
        "sandbox-stop: $: Additional properties are not allowed ('extra' was unexpected)"]
    assert jsonschemas.problems("sandbox-stop", {**good, "pid": "42"}) == [
        "sandbox-stop: $.pid: '42' is not of type 'integer', 'null'"]
    # The published schema stays open: consumers are not broken by a field added within v1.
    published = json.loads(jsonschemas.schema_files()["sandbox-stop"].read_text())
    assert list(Draft202012Validator(published).iter_errors({**good, "extra": 1})) == []


def test_the_command_of_an_argv() -> None:
    assert jsonschemas.command_of(app, ["-o", "json", "--config", "x.yaml", "sandbox", "invoke", "status"]) == \
        "sandbox-invoke"
    assert jsonschemas.command_of(app, ["status", "--env", "dev", "-o", "json"]) == "status"
    assert jsonschemas.command_of(app, ["--region", "init", "validate-accounts"]) == "validate-accounts"


def test_replctl_processes_are_recognised() -> None:
    from tests.conftest import _asks_for_json, _replctl_argv

    assert _replctl_argv(["/usr/bin/python3", "-m", "replctl", "-o", "json", "status"]) == ["-o", "json", "status"]
    assert _replctl_argv(["/venv/bin/replctl", "sandbox", "stop"]) == ["sandbox", "stop"]
    assert _replctl_argv(["/usr/bin/python3", "-m", "pip", "install"]) is None
    assert _replctl_argv("replctl status") is None  # a shell string is not parsed
    assert _asks_for_json(["--sandbox", "-o", "json", "status"]) and _asks_for_json(["status", "--output=json"])
    assert not _asks_for_json(["status", "-o", "table"])


def test_no_schema_is_a_failure_that_says_what_to_add() -> None:
    with pytest.raises(AssertionError, match=r"add json/no-such-command\.schema\.json"):
        jsonschemas.problems("no-such-command", {})


# -- outputs that need no AWS (the rest are checked where the suite runs them) ------------------


def test_the_fixture_checks_what_a_command_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   json_outputs: list[tuple[str, Any]]) -> None:
    monkeypatch.setenv("REPLCTL_SANDBOX_DIR", str(tmp_path / "sandbox"))
    status = runner.invoke(app, ["-o", "json", "sandbox", "status"])
    stop = runner.invoke(app, ["sandbox", "stop", "-o", "json"])
    assert (status.exit_code, stop.exit_code) == (40, 0)
    assert json_outputs == [("sandbox-status", {"running": False, "healthy": False}),
                            ("sandbox-stop", {"stopped": False, "pid": None})]


def test_validate_accounts_config_only_output() -> None:
    result = runner.invoke(app, ["-c", str(REPO / "environments.yaml"), "-o", "json", "validate-accounts",
                                 "--config-only"])
    assert result.exit_code == 0, result.output
    jsonschemas.check("validate-accounts", json.loads(result.stdout))


def test_init_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-o", "json", "init", str(tmp_path), "--no-input", "--eject"])
    assert result.exit_code == 0, result.output
    jsonschemas.check("init", json.loads(result.stdout))
