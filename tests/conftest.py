"""Shared test setup: never reach a real AWS account, whatever the machine's environment says."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

ADMIN = "123456789012"
DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore >= 1.38 sends DynamoDB (streams) calls to account endpoints moto does not route.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID", "REPLCTL_SANDBOX",
          "REPLCTL_CONFIG", "NO_COLOR")

# What the caller had, for opt-in integration tests only.
_REAL_ENV = {k: v for k, v in os.environ.items() if k in set(_FAKE_AWS) | set(_UNSET)}
# Set at import time too: modules that build clients at import must never see real credentials.
os.environ.update(_FAKE_AWS)
for _name in _UNSET:
    os.environ.pop(_name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, so the workers of `make test` finish together instead of one waiting on
    a sandbox test picked up last; integration tests touch a real AWS account: they run only with
    REPLCTL_INTEGRATION=1."""
    items.sort(key=lambda item: "slow" not in item.keywords)  # stable: files keep their order
    if os.environ.get("REPLCTL_INTEGRATION") == "1":
        return
    skip = pytest.mark.skip(reason="real-AWS test; opt in with REPLCTL_INTEGRATION=1 and real credentials")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if "integration" in request.keywords:
        for k, v in _REAL_ENV.items():  # the caller's own credentials and profile
            monkeypatch.setenv(k, v)
        for k in _FAKE_AWS:
            if k not in _REAL_ENV:
                monkeypatch.delenv(k, raising=False)
        return
    for k, v in _FAKE_AWS.items():
        monkeypatch.setenv(k, v)
    for k in _UNSET:
        monkeypatch.delenv(k, raising=False)


@pytest.fixture(autouse=True)
def json_outputs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Every `-o json` document a command prints — through CliRunner, or as a `replctl` process the
    test runs with subprocess.run — is checked against its schema (docs/json/<command>.schema.json)
    when the test ends; an undocumented field fails the test."""
    import subprocess

    from typer.testing import CliRunner

    from replctl.cli import app
    from replctl.render import Output, _default
    from tests import jsonschemas

    printed: list[tuple[str, Any]] = []
    running: list[str] = []  # the command CliRunner is running (typer's click keeps its context private)
    emit, invoke = Output.emit_json, CliRunner.invoke

    def recording_emit(self: Output, value: Any) -> None:
        if running:
            printed.append((running[-1], json.loads(json.dumps(value, default=_default))))
        emit(self, value)

    def recording_invoke(self: CliRunner, cli: Any, args: Any = None, *a: Any, **kw: Any) -> Any:
        running.append(jsonschemas.command_of(cli, list(args or [])))
        try:
            return invoke(self, cli, args, *a, **kw)
        finally:
            running.pop()

    run = subprocess.run

    def recording_run(args: Any, *a: Any, **kw: Any) -> Any:
        done = run(args, *a, **kw)
        argv = _replctl_argv(args)
        if argv is not None and _asks_for_json(argv) and isinstance(done.stdout, str) and done.stdout.strip():
            try:
                printed.append((jsonschemas.command_of(app, argv), json.loads(done.stdout)))
            except ValueError:
                pass  # e.g. --watch prints one document per refresh; checked where it is run
        return done

    monkeypatch.setattr(Output, "emit_json", recording_emit)
    monkeypatch.setattr(CliRunner, "invoke", recording_invoke)
    monkeypatch.setattr(subprocess, "run", recording_run)
    yield printed
    problems = [p for command, value in printed for p in jsonschemas.problems(command, value)]
    if problems:
        pytest.fail("JSON output that does not match its schema:\n  " + "\n  ".join(problems[:20]), pytrace=False)


def _replctl_argv(args: Any) -> list[str] | None:
    """The replctl arguments of a `python -m replctl ...` or `.../replctl ...` command line."""
    if not isinstance(args, (list, tuple)) or not args:
        return None
    words = [str(a) for a in args]
    if len(words) >= 3 and words[1:3] == ["-m", "replctl"]:
        return words[3:]
    if Path(words[0]).name == "replctl":
        return words[1:]
    return None


def _asks_for_json(argv: list[str]) -> bool:
    pairs = zip(argv, [*argv[1:], ""])
    return any((a in ("-o", "--output") and b == "json") or a in ("-o=json", "--output=json") for a, b in pairs)
