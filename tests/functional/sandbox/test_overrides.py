"""The sandbox keeps StackSet overrides and statuses the way AWS does, across real deploys.

GIVEN a running sandbox (moto's server, bootstrapped like `make demo`) and a copy of
environments.sandbox.yaml, WHEN a stack-set-level parameter changes and `replctl --sandbox
deploy --yes` runs, THEN every instance keeps its overrides ("During stack set updates, any
parameters overridden for a stack instance aren't updated, but retain their overridden value"),
each account's stack keeps its own Environment and gets the new value, every instance ends
CURRENT, and a second deploy makes no mutating call. The same holds for a template change
rolled out wave by wave.

The deploys run in-process (CliRunner) so every call replctl makes is counted by the factory's
listener; the emulation's own bookkeeping goes through clients of its own and is not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

import replctl.aws
from replctl.cli import app
from replctl.commands import deploy as deploy_cmd
from tests.conftest import DEV, PROD, REPO, STAGING
from tests.unit.deploy.fake_stacksets import make_artifacts

pytestmark = pytest.mark.slow

REGION = "us-east-1"
STACK_SET = "replctl-replication"
ENVS = {"dev": DEV, "staging": STAGING, "prod": PROD}
RETENTION = {"dev": "30", "staging": "90", "prod": "365"}
STACKSET_OPERATIONS = ("CreateStackSet", "UpdateStackSet", "CreateStackInstances", "UpdateStackInstances")
runner = CliRunner()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "replctl", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, f"replctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("sandbox")
    env = {**os.environ, "REPLCTL_SANDBOX_DIR": str(state), "COLUMNS": "200"}
    info = json.loads(cli("-o", "json", "sandbox", "start", env=env).stdout)
    try:
        yield {"state": state, "endpoint": info["endpoint"]}
    finally:
        cli("sandbox", "stop", env=env)


class Estate:
    """A copy of environments.sandbox.yaml and its template, deployed in-process with every call counted."""

    def __init__(self, sandbox: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sandbox = sandbox
        self.template = tmp_path / "replication.yaml"
        self.template.write_text((REPO / "cfn" / "replication.yaml").read_text())
        self.config = tmp_path / "environments.sandbox.yaml"
        self.config.write_text((REPO / "environments.sandbox.yaml").read_text().replace(
            "template: cfn/replication.yaml", f"template: {self.template}"))
        self.calls: list[Any] = []
        artifacts = make_artifacts(tmp_path)
        monkeypatch.setattr(deploy_cmd, "build_artifacts", lambda config, log: artifacts)
        calls = self.calls

        class Counting(replctl.aws.SessionFactory):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.add_listener(calls.append)

        monkeypatch.setattr(replctl.aws, "SessionFactory", Counting)

    def run(self, *args: str) -> Any:
        result = runner.invoke(app, ["--sandbox", "--config", str(self.config), "--no-color", *args],
                               env={"REPLCTL_SANDBOX_DIR": str(self.sandbox["state"]), "COLUMNS": "200"})
        assert "Traceback" not in result.output, result.output
        return result

    def deploy(self) -> list[str]:
        """`deploy --yes`; the StackSet operations it started (the stack updates in the accounts are
        the emulation playing StackSets, made through the factory as StackSets' execution role)."""
        before = len(self.calls)
        result = self.run("deploy", "--yes")
        assert result.exit_code == 0, result.output
        return [c.operation for c in self.calls[before:] if c.operation in STACKSET_OPERATIONS]

    def assert_second_deploy_changes_nothing(self) -> None:
        before = len(self.calls)
        result = self.run("deploy", "--yes")
        assert result.exit_code == 0, result.output
        assert "nothing to change" in result.stderr
        assert [c.operation for c in self.calls[before:] if c.mutating] == []

    def instances(self) -> dict[str, str]:
        """What replctl sees: each instance's STATUS/DETAILED (through the sandbox's emulation)."""
        plan = json.loads(self.run("-o", "json", "plan").stdout)["plan"]
        return {row["environment"]: row["status"] for row in plan["instances"]}


def admin(sandbox: dict[str, Any]) -> Any:
    return boto3.client("cloudformation", endpoint_url=sandbox["endpoint"], region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def overrides(sandbox: dict[str, Any], account: str) -> dict[str, str]:
    """The instance's overrides as the emulator holds them (a plain client: no emulation hooks)."""
    inst = admin(sandbox).describe_stack_instance(StackSetName=STACK_SET, StackInstanceAccount=account,
                                                  StackInstanceRegion=REGION)["StackInstance"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in inst["ParameterOverrides"]}


def stack_parameters(sandbox: dict[str, Any], account: str) -> dict[str, str]:
    endpoint = sandbox["endpoint"]
    creds = boto3.client("sts", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                         aws_secret_access_key="testing").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/check", RoleSessionName="check")["Credentials"]
    cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"])
    stacks = [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"].startswith("StackSet")]
    (stack,) = stacks
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def test_a_stack_set_parameter_change_keeps_every_instances_overrides(sandbox: dict[str, Any], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    estate = Estate(sandbox, tmp_path, monkeypatch)
    estate.deploy()
    before = {a: overrides(sandbox, a) for a in ENVS.values()}
    assert {e: before[a]["Environment"] for e, a in ENVS.items()} == {e: e for e in ENVS}

    estate.config.write_text(estate.config.read_text().replace(
        'S3ReplicationLatencyThresholdSeconds: "900"', 'S3ReplicationLatencyThresholdSeconds: "1200"'))
    started = estate.deploy()
    # One UpdateStackSet (dev, first wave); staging and prod brought forward with UpdateStackInstances.
    assert started == ["UpdateStackSet", "UpdateStackInstances", "UpdateStackInstances"]

    assert {a: overrides(sandbox, a) for a in ENVS.values()} == before
    for env, account in ENVS.items():
        deployed = stack_parameters(sandbox, account)
        assert deployed["Environment"] == env
        assert deployed["LogRetentionDays"] == RETENTION[env]
        assert deployed["S3ReplicationLatencyThresholdSeconds"] == "1200"
    assert stack_parameters(sandbox, STAGING)["ReplicateToProd"] == "true"
    assert stack_parameters(sandbox, PROD)["ReplicateToProd"] == "false"
    assert estate.instances() == {e: "CURRENT/SUCCEEDED" for e in ENVS}
    estate.assert_second_deploy_changes_nothing()


def test_a_template_change_rolled_out_wave_by_wave_ends_current(sandbox: dict[str, Any], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    estate = Estate(sandbox, tmp_path, monkeypatch)
    estate.deploy()
    text = estate.template.read_text()
    old = "  LambdaReservedConcurrency:\n    Type: Number\n    Default: 5\n"
    assert old in text
    estate.template.write_text(text.replace(old, old.replace("Default: 5", "Default: 4")))
    before = len(estate.calls)
    assert estate.deploy() == ["UpdateStackSet", "UpdateStackInstances", "UpdateStackInstances"]
    # Each wave waited by event (the sandbox publishes StackSet events; the bootstrap queued them):
    # the events were received and deleted, and each operation was read once, to confirm it.
    ops = Counter(c.operation for c in estate.calls[before:])
    assert ops["ReceiveMessage"] >= 3 and ops["DeleteMessageBatch"] >= 3
    assert ops["DescribeStackSetOperation"] == ops["ListStackSetOperationResults"] == 3
    for env, account in ENVS.items():
        deployed = stack_parameters(sandbox, account)
        assert (deployed["Environment"], deployed["LambdaReservedConcurrency"]) == (env, "4")
    assert estate.instances() == {e: "CURRENT/SUCCEEDED" for e in ENVS}
    estate.assert_second_deploy_changes_nothing()
