"""`replctl --help` and the commands' `--help` import nothing they do not need.

The SDK (boto3/botocore and the models they load), moto, YAML, cfn-lint and the command cores are
imported inside the commands, and a command's module only when that command runs, so asking for
help costs only typer and rich (BENCHMARKS.md, start-up). Each case runs the CLI in a fresh
interpreter, as `python -m replctl` does, and lists the modules it ended up with.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

MARKER = "@@modules@@"
SCRIPT = f"""
import json, runpy, sys
sys.argv = ["replctl", *json.loads(sys.argv[1])]
code = 0
try:
    runpy.run_module("replctl", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code or 0
print({MARKER!r} + json.dumps({{"exit": code, "modules": sorted(sys.modules)}}))
"""

#: Top-level packages no `--help` may import.
HEAVY = ("boto3", "botocore", "s3transfer", "moto", "yaml", "cfnlint", "jmespath", "dateutil", "werkzeug")
#: replctl modules that pull in the SDK or YAML, or are the cores of commands.
CORES = ("replctl.aws", "replctl.config", "replctl.deploy.plan", "replctl.deploy.rollout", "replctl.status.fetch",
         "replctl.drift.fetch", "replctl.package", "replctl.deploy.template", "replctl.sandbox.adapt.template", "replctl.sandbox.adapt.stacksets",
         "replctl.accounts.fetch", "replctl.status.judge", "replctl.drift.judge")


def modules_after(*argv: str) -> tuple[int, set[str], str]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(list(argv))], capture_output=True, text=True,
                         timeout=120, check=False, env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"})
    head, _, tail = out.stdout.rpartition(MARKER)
    assert tail, out.stderr
    found = json.loads(tail)
    return found["exit"], set(found["modules"]), head


@pytest.mark.parametrize("argv", [("--help",), ("status", "--help"), ("deploy", "--help"), ("plan", "--help"),
                                  ("drift", "--help"), ("validate-accounts", "--help"), ("--version",)])
def test_help_imports_no_sdk_yaml_or_command_core(argv: tuple[str, ...]) -> None:
    code, modules, text = modules_after(*argv)
    assert code == 0, text
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], f"replctl {' '.join(argv)} imported {heavy[:8]}"
    cores = sorted(m for m in CORES if m in modules)
    assert cores == [], f"replctl {' '.join(argv)} imported {cores}"


@pytest.mark.parametrize(("argv", "module"), [(("--help",), None), (("--version",), None),
                                              (("status", "--help"), "status"), (("deploy", "--help"), "deploy"),
                                              (("sandbox", "start", "--help"), "sandbox")])
def test_only_the_invoked_command_module_is_imported(argv: tuple[str, ...], module: str | None) -> None:
    code, modules, text = modules_after(*argv)
    assert code == 0, text
    loaded = sorted(m for m in modules if m.startswith("replctl.commands."))
    assert loaded == ([f"replctl.commands.{module}"] if module else [])


def test_root_help_does_not_build_option_validators() -> None:
    # typer 0.29 coerces every option it processes (flags aside) through a pydantic TypeAdapter, and
    # the first one imports pydantic. `replctl --help` is answered before any option is processed.
    # `<command> --help` processes the root's global options first and pays for it: with typer's
    # public API there is no way around (BENCHMARKS.md, start-up, says what it costs).
    code, modules, text = modules_after("--help")
    assert code == 0, text
    assert "pydantic" not in modules


def test_help_still_lists_the_global_options_and_their_defaults() -> None:
    code, _, text = modules_after("--help")
    assert code == 0
    flat = " ".join(text.split())
    assert "--output" in flat and "table" in flat and "--endpoint-url" in flat
