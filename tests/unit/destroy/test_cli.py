"""`replctl destroy` through CliRunner against the fake StackSet service and data fakes: the plan,
confirmation, the prod data guard, exit codes and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replctl.cli import app
from replctl.commands import destroy
from tests.unit.deploy.fake_stacksets import DEV, PROD, REGION, STAGING
from tests.unit.deploy.test_cli import flat
from tests.unit.destroy.conftest import Teardown

runner = CliRunner()


class Cli:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.t = Teardown(tmp_path)
        world = self.t.world
        monkeypatch.setattr(destroy, "runtime", lambda st: destroy.Runtime(self.t.estate.clients(),
                                                                             world.clock.sleep, world.clock))
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, input: str | None = None):
        result = runner.invoke(app, ["--config", str(self.t.config.path), "--no-color", *args], input=input,
                               env={"COLUMNS": "200"})
        assert "Traceback" not in result.output, result.output
        return result

    def interactive(self, yes: bool = True) -> None:
        self.monkeypatch.setattr(destroy, "stdin_is_interactive", lambda: yes)


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(tmp_path, monkeypatch)


def test_dry_run_shows_the_plan_and_changes_nothing(cli: Cli) -> None:
    before = cli.t.estate.mutating_calls()
    result = cli("destroy", "--env", "prod", "--dry-run")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "Destroy prod: stack set replctl-replication (us-east-1) exists" in out
    assert f"dev: update overrides of {DEV} × us-east-1 (stop replicating and mirroring to prod)" in out
    assert f"prod: delete the stack instances in {PROD} × us-east-1" in out
    assert f"replctl-config-prod-{PROD}" in out and "replctl destroy --env prod --delete-data" in out
    assert cli.t.estate.mutating_calls() == before


def test_without_a_terminal_and_without_yes_it_refuses_with_exit_8(cli: Cli) -> None:
    cli.interactive(False)
    result = cli("destroy")
    assert result.exit_code == 8
    assert "stdin is not a terminal" in result.stderr
    assert cli.t.instances() == {(DEV, REGION), (STAGING, REGION), (PROD, REGION)}


def test_declined_at_the_prompt_is_exit_8_and_nothing_changes(cli: Cli) -> None:
    cli.interactive(True)
    result = cli("destroy", input="n\n")
    assert result.exit_code == 8 and "not confirmed" in result.stderr
    assert len(cli.t.instances()) == 3


def test_yes_destroys_and_lists_the_retained_data_then_a_rerun_is_a_no_op(cli: Cli) -> None:
    result = cli("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert cli.t.instances() == set() and cli.t.world.cfn.stack_set is None
    out = flat(result.stdout)
    assert f"replctl-config-dev-{DEV}" in out and "replctl-metadata" in out
    before = cli.t.estate.mutating_calls()
    again = cli("-o", "json", "destroy", "--yes")
    assert again.exit_code == 0
    report = json.loads(again.stdout)
    assert report["result"] == "nothing-to-do" and report["changes"] is False
    assert {(r["kind"], r["account"]) for r in report["plan"]["retained"]} == {
        (k, a) for k in ("bucket", "table") for a in (DEV, STAGING, PROD)}
    assert cli.t.estate.mutating_calls() == before


def test_yes_alone_never_deletes_prods_data(cli: Cli) -> None:
    result = cli("destroy", "--yes", "--delete-data")
    assert result.exit_code == 9
    assert "--delete-data --env prod" in result.stderr
    assert len(cli.t.instances()) == 3 and cli.t.estate.at(PROD).buckets


def test_prods_data_with_its_name_spelled_out(cli: Cli) -> None:
    result = cli("-o", "json", "destroy", "--yes", "--delete-data", "--env", "dev", "--env", "staging", "--env", "prod")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["result"] == "succeeded"
    assert cli.t.estate.at(PROD).buckets == {} and cli.t.estate.at(PROD).tables == {}


def test_prods_data_at_the_prompt_needs_the_name_typed(cli: Cli) -> None:
    cli.interactive(True)
    wrong = cli("destroy", "--delete-data", "--env", "prod", input="yes\n")
    assert wrong.exit_code == 8 and "'prod' was not typed" in wrong.stderr
    assert cli.t.estate.at(PROD).buckets
    right = cli("destroy", "--delete-data", "--env", "prod", input="prod\n")
    assert right.exit_code == 0, right.output
    assert cli.t.estate.at(PROD).buckets == {} and (PROD, REGION) not in cli.t.instances()


def test_a_failed_delete_is_exit_6_with_the_accounts_reason_in_json(cli: Cli) -> None:
    cli.t.world.cfn.failures[(PROD, REGION)] = "Role is not authorized"
    result = cli("-o", "json", "destroy", "--yes")
    assert result.exit_code == 6
    report = json.loads(result.stdout)
    assert report["result"] == "failed" and report["error"]["exit_code"] == 6
    assert report["operations"][0]["instances"][0]["reason"] == "Role is not authorized"
    assert (STAGING, REGION) in cli.t.instances()


def test_unknown_environment_is_a_usage_error(cli: Cli) -> None:
    result = cli("destroy", "--env", "qa")
    assert result.exit_code == 2 and "unknown environment(s) qa" in result.stderr


def test_a_dry_run_lists_the_replicas_delete_data_removes_and_makes_no_mutating_call(cli: Cli) -> None:
    cli.t.estate.global_table(PROD, REGION, "replctl-metadata", ("us-west-2", "eu-west-1"))
    before = cli.t.estate.mutating_calls()
    result = cli("destroy", "--delete-data", "--env", "prod", "--dry-run")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    for region in ("eu-west-1", "us-west-2"):
        assert (f"remove the replica of table replctl-metadata in {region} (UpdateTable from us-east-1) "
                f"({PROD} {region})") in out
    assert out.index("in us-west-2 (UpdateTable") < out.index("turn off deletion protection of table replctl-metadata")
    report = json.loads(cli("-o", "json", "destroy", "--delete-data", "--env", "prod", "--dry-run").stdout)
    steps = [s for p in report["plan"]["phases"] for s in p["steps"] if s["step"] == "RemoveReplica"]
    assert [(s["region"], s["replica_region"]) for s in steps] == [(REGION, "eu-west-1"), (REGION, "us-west-2")]
    assert cli.t.estate.mutating_calls() == before
    assert cli.t.estate.at(PROD, "us-west-2").tables and cli.t.estate.at(PROD, "eu-west-1").tables


def test_a_data_keeping_destroy_lists_the_replicas_with_the_command_that_removes_them(cli: Cli) -> None:
    cli.t.estate.global_table(PROD, REGION, "replctl-metadata", ("us-west-2",))
    result = cli("-o", "json", "destroy", "--yes", "--env", "prod")
    assert result.exit_code == 0, result.output
    retained = json.loads(result.stdout)["plan"]["retained"]
    assert {"environment": "prod", "account": PROD, "region": "us-west-2", "kind": "replica",
            "name": "replctl-metadata", "remove": "replctl destroy --env prod --delete-data"} in retained
    assert cli.t.estate.at(PROD, "us-west-2").tables  # kept
    text = flat(cli("destroy", "--dry-run").stdout)
    assert "us-west-2" in text and "replica" in text
