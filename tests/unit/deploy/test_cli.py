"""`replctl plan` / `replctl deploy` through CliRunner, against the fake StackSet service.

The command's one seam (`replctl.commands.deploy.runtime`) is replaced by the fake world; the
template is still linted and the plan built and applied by the real code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replctl.cli import app
from replctl.commands import deploy
from replctl.deploy.template import identity
from tests.unit.deploy.fake_stacksets import CONFIG, DEV, PROD, REGION, STAGING, TEMPLATE, World, make_artifacts, write_estate

runner = CliRunner()


def flat(text: str) -> str:
    """Output without table borders, on one line."""
    return " ".join(text.translate(str.maketrans("│┃", "  ")).split())


class Cli:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = write_estate(tmp_path)
        self.world = World()
        artifacts = make_artifacts(tmp_path)
        monkeypatch.setattr(deploy, "runtime", lambda st: deploy.Runtime(
            self.world.clients(), lambda: artifacts, identity, self.world.clock.sleep, self.world.clock))
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, input: str | None = None):
        result = runner.invoke(app, ["--config", str(self.path), "--no-color", *args], input=input,
                               env={"COLUMNS": "200"})
        assert "Traceback" not in result.output, result.output
        return result

    def interactive(self, yes: bool = True) -> None:
        self.monkeypatch.setattr(deploy, "stdin_is_interactive", lambda: yes)

    def prod_touched(self) -> bool:
        return any(PROD in (kw.get("Accounts") or []) for _, kw in self.world.cfn.calls)


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(tmp_path, monkeypatch)


def test_plan_shows_everything_and_changes_nothing(cli: Cli) -> None:
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 10, result.output
    out = flat(result.stdout)
    assert "Stack set replctl-replication (SELF_MANAGED, us-east-1) will be created" in out
    assert "Template: new" in out
    assert "stack set AccountIdDev — 111111111111" in out
    assert "dev ReplicateToStaging — true switched on after its target exists" in out
    assert f"prod {PROD} us-east-1 missing create" in out
    assert "upload" in out and "create stack set replctl-replication (SELF_MANAGED)" in out
    assert f"dev: update overrides of {DEV} × us-east-1 (enable replication to staging, prod)" in out
    assert cli.world.mutating_calls() == []


def test_plan_json(cli: Cli) -> None:
    result = cli("--output", "json", "plan")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["result"] == "plan" and report["changes"] is True
    waves = report["plan"]["waves"]
    assert [(w["environment"], w["kind"], [s["api"] for s in w["steps"]]) for w in waves] == [
        ("dev", "rollout", ["CreateStackInstances"]), ("staging", "rollout", ["CreateStackInstances"]),
        ("prod", "rollout", ["CreateStackInstances"]), ("dev", "wiring", ["UpdateStackInstances"]),
        ("staging", "wiring", ["UpdateStackInstances"]),
    ]
    assert waves[0]["steps"][0]["overrides"] == {"Environment": "dev", "LogRetentionDays": "30",
                                                 "ReplicateToProd": "false", "ReplicateToStaging": "false"}
    assert report["plan"]["template"]["changed"] is True


def test_dry_run_is_the_same_plan(cli: Cli) -> None:
    plan = json.loads(cli("--output", "json", "plan").stdout)["plan"]
    dry = cli("--output", "json", "deploy", "--dry-run", "--detailed-exitcode")
    assert dry.exit_code == 10
    report = json.loads(dry.stdout)
    assert report["result"] == "dry-run" and report["plan"] == plan
    assert cli.world.mutating_calls() == []


def test_confirmed_at_the_prompt(cli: Cli) -> None:
    cli.interactive()
    result = cli("deploy", input="y\n")
    assert result.exit_code == 0, result.output
    assert "Apply these changes to replctl-replication (dev → staging → prod), starting with dev?" in result.stderr
    assert "deployed: dev, staging, prod, wiring dev, wiring staging" in result.stderr
    assert cli.world.cfn.instances[(PROD, REGION)].status == "CURRENT"


def test_declined_at_the_prompt(cli: Cli) -> None:
    cli.interactive()
    result = cli("deploy", input="n\n")
    assert result.exit_code == 8
    assert "not deploying: the plan was not confirmed" in result.stderr
    assert cli.world.mutating_calls() == []


def test_no_terminal_and_no_yes_refuses(cli: Cli) -> None:
    result = cli("deploy")  # CliRunner's stdin is not a TTY
    assert result.exit_code == 8
    assert "not deploying: confirmation is needed and stdin is not a terminal" in result.stderr
    assert "re-run with --yes" in result.stderr
    assert cli.world.mutating_calls() == []


def test_yes_skips_the_prompt_and_a_second_deploy_is_a_no_op(cli: Cli) -> None:
    assert cli("deploy", "--yes").exit_code == 0
    before = len(cli.world.cfn.calls)
    again = cli("deploy", "--yes")
    assert again.exit_code == 0
    assert "nothing to change" in again.stderr
    assert [api for api, _ in cli.world.cfn.calls[before:] if api.startswith(("Create", "Update"))] == []
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_staging_failure_exits_6_names_the_account_and_never_touches_prod(cli: Cli) -> None:
    cli.world.cfn.failures[(STAGING, REGION)] = "Resource handler returned message: \"Role replctl-x exists\""
    result = cli("deploy", "--yes")
    assert result.exit_code == 6
    err = " ".join(result.stderr.split())
    assert f"staging {STAGING} {REGION}: FAILED — Resource handler returned message: \"Role replctl-x exists\"" in err
    assert "error: staging: CreateStackInstances operation" in err and "later environments were not touched" in err
    assert not cli.prod_touched()

    rerun = cli("deploy", "--yes")
    assert rerun.exit_code == 0, rerun.output
    assert f"staging: bring {STAGING} × us-east-1 to the stack set's template" in rerun.stderr
    assert "dev: create instances" not in rerun.stderr


def test_failure_as_json(cli: Cli) -> None:
    cli.world.cfn.failures[(STAGING, REGION)] = "boom"
    result = cli("--output", "json", "deploy", "--yes")
    assert result.exit_code == 6
    report = json.loads(result.stdout)
    assert report["result"] == "failed" and report["error"]["exit_code"] == 6
    assert report["completed"] == ["dev"]
    assert report["operations"][-1]["status"] == "FAILED"
    assert report["operations"][-1]["instances"] == [
        {"account": STAGING, "region": REGION, "status": "FAILED", "reason": "boom"}]


def test_timeout_exits_7_with_the_operation_id(cli: Cli) -> None:
    cli.world.cfn.durations = [10_000]
    result = cli("deploy", "--yes")
    assert result.exit_code == 7
    op_id = cli.world.cfn.calls_to("CreateStackInstances")[0]["OperationId"]
    assert f"gave up waiting for dev: CreateStackInstances (operation {op_id}" in result.stderr
    assert f"dev: operation {op_id} RUNNING (0/1 instances done)" in result.stderr
    assert f"dev {DEV} us-east-1: RUNNING" in result.stderr


def test_ctrl_c_exits_130_and_a_rerun_attaches(cli: Cli) -> None:
    clock = cli.world.clock

    def interrupt(_: float) -> None:
        clock.on_sleep = None
        raise KeyboardInterrupt

    clock.on_sleep = interrupt
    result = cli("deploy", "--yes")
    assert result.exit_code == 130
    rerun = cli("deploy", "--yes")
    assert rerun.exit_code == 0, rerun.output
    assert "is still running on replctl-replication; waiting for it" in rerun.stderr
    assert len(cli.world.cfn.calls_to("CreateStackInstances")) == 3


def test_env_alone_is_refused_unless_forced(cli: Cli) -> None:
    result = cli("deploy", "--env", "staging", "--yes")
    assert result.exit_code == 9
    assert "refusing to deploy staging on its own: the stack set does not exist yet" in " ".join(result.stderr.split())
    assert cli.world.mutating_calls() == []
    forced = cli("deploy", "--env", "staging", "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert set(cli.world.cfn.instances) == {(STAGING, REGION)}


def test_env_alone_after_upstream_is_current(cli: Cli) -> None:
    assert cli("deploy", "--yes").exit_code == 0
    cli.path.write_text(CONFIG.replace('LogRetentionDays: "365"', 'LogRetentionDays: "400"'))
    since = len(cli.world.cfn.calls)
    result = cli("deploy", "--env", "prod", "--yes")
    assert result.exit_code == 0, result.output
    assert [(api, kw["Accounts"]) for api, kw in cli.world.cfn.calls[since:] if api == "UpdateStackInstances"] == [
        ("UpdateStackInstances", [PROD])]


def test_unknown_env_is_a_usage_error(cli: Cli) -> None:
    result = cli("plan", "--env", "qa")
    assert result.exit_code == 2
    assert "unknown environment 'qa'" in result.stderr


def test_template_lint_failure_stops_before_any_aws_call(cli: Cli) -> None:
    (cli.path.parent / "t.yaml").write_text(TEMPLATE.replace("      Type: String\n      Value: !Sub ${AccountIdDev}",
                                                             "      Typo: String\n      Value: !Sub ${AccountIdDev}"))
    result = cli("deploy", "--yes")
    assert result.exit_code == 5
    assert "cfn-lint found" in result.stderr and "E3002" in result.stderr
    assert cli.world.cfn.calls == [] and cli.world.s3.calls == []


def test_broken_yaml_is_a_template_error(cli: Cli) -> None:
    (cli.path.parent / "t.yaml").write_text("Resources: [\n")
    result = cli("plan")
    assert result.exit_code == 5
    assert "t.yaml: not valid YAML (line 2)" in result.stderr
    assert cli.world.cfn.calls == []
