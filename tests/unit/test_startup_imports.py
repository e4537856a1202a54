"""`replctl --help` and the commands' `--help` import nothing they do not need.

The SDK (boto3/botocore and the models they load), moto, YAML, cfn-lint and the command cores are
imported inside the commands, so asking for help costs only typer and rich (BENCHMARKS.md,
start-up). Each case runs the CLI in a fresh interpreter, as `python -m replctl` does, and lists
the modules it ended up with.
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
         "replctl.drift.fetch", "replctl.package", "replctl.deploy.template", "replctl.sandbox.adapt")


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


@pytest.mark.parametrize("argv", [("--help",), ("status", "--help"), ("deploy", "--help")])
def test_help_does_not_build_option_validators(argv: tuple[str, ...]) -> None:
    # typer coerces options through pydantic; global options left at their defaults must not pay for
    # it when the command only prints its help.
    code, modules, text = modules_after(*argv)
    assert code == 0, text
    assert "pydantic" not in modules


def test_help_still_lists_the_global_options_and_their_defaults() -> None:
    code, _, text = modules_after("--help")
    assert code == 0
    flat = " ".join(text.split())
    assert "--output" in flat and "table" in flat and "--endpoint-url" in flat
