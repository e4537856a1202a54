"""The JSON Schemas of `-o json` output (docs/json/), and checking outputs against them.

One schema per command, found by name: `replctl status` -> `status.schema.json`, `replctl sandbox
invoke` -> `sandbox-invoke.schema.json`. The published schemas are open (a field added within a
version does not break a consumer's validation); the tests validate against a strict copy in which
every object that lists its properties and says nothing else allows no other property, so a field
the code emits but the schema does not document fails the test that printed it.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "json"
SUFFIX = ".schema.json"


def schema_files() -> dict[str, Path]:
    """command name -> schema file."""
    return {p.name[: -len(SUFFIX)]: p for p in sorted(SCHEMAS.glob(f"*{SUFFIX}"))}


def command_name(path: list[str]) -> str:
    """`["sandbox", "invoke"]` -> `sandbox-invoke`."""
    return "-".join(path)


def command_of(app: Any, argv: list[str]) -> str:
    """The command an argv runs (`-o json sandbox invoke x` -> `sandbox-invoke`), by walking the
    app's command tree past the global options."""
    import typer

    from replctl.cli import _VALUE_OPTIONS, COMMANDS, load_command

    group: Any = typer.main.get_command(app) if isinstance(app, typer.Typer) else app
    path: list[str] = []
    args = iter(argv)
    for token in args:
        if token in _VALUE_OPTIONS:
            next(args, None)
        elif not path and token in COMMANDS:  # the root loads its commands lazily (replctl.cli)
            path.append(token)
            group = load_command(token)
        elif hasattr(group, "commands") and token in group.commands:
            path.append(token)
            group = group.commands[token]
    return command_name(path)


def strict(schema: Any) -> Any:
    """A copy of `schema` where objects that list properties and say nothing of others allow none."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            types = node.get("type")
            is_object = types == "object" or (isinstance(types, list) and "object" in types)
            if is_object and "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@lru_cache(maxsize=None)
def validator(command: str) -> Draft202012Validator:
    path = schema_files().get(command)
    if path is None:
        raise AssertionError(f"no JSON Schema for `replctl {command.replace('-', ' ')} -o json`: "
                             f"add {SCHEMAS.name}/{command}{SUFFIX}")
    return Draft202012Validator(strict(json.loads(path.read_text())), format_checker=FormatChecker())


def problems(command: str, value: Any) -> list[str]:
    """Every way `value` breaks the command's schema, each with its JSON path."""
    found = sorted(validator(command).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{command}: {e.json_path}: {e.message}" for e in found]


def check(command: str, value: Any) -> None:
    found = problems(command, value)
    assert not found, "the JSON output does not match its schema:\n  " + "\n  ".join(found[:20])
