"""`replctl destroy` on the sandbox, end to end: one deploy shared by the module, then destroy keeping
the data, the deploy refusal that follows, and destroy with --delete-data. destroy and deploy run
in-process (CliRunner), so their calls are proved against the shipped roles."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from replctl.cli import app
from tests.callrecord import Recording
from tests.conftest import DEV, PROD, STAGING
from tests.functional.sandbox.test_e2e import run, session

pytestmark = pytest.mark.slow
ACCOUNTS = {"dev": DEV, "staging": STAGING, "prod": PROD}
runner = CliRunner()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("sandbox-destroy")
    env = {**os.environ, "REPLCTL_SANDBOX_DIR": str(state), "COLUMNS": "200"}
    info = json.loads(run("-o", "json", "sandbox", "start", env=env).stdout)
    try:
        run("--sandbox", "deploy", "--yes", env=env)
        ep = info["endpoint"]
        session(ep, DEV).client("s3", endpoint_url=ep).put_object(
            Bucket=f"replctl-config-dev-{DEV}", Key="config/app.json", Body=b'{"timeout_ms": 1500}')
        yield {"env": env, "endpoint": ep}
    finally:
        run("sandbox", "stop", env=env)


def cli(sandbox: dict[str, Any], *args: str) -> Any:
    result = runner.invoke(app, ["--sandbox", "--no-color", *args],
                           env={"REPLCTL_SANDBOX_DIR": sandbox["env"]["REPLCTL_SANDBOX_DIR"], "COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def estate_left(ep: str) -> dict[str, Any]:
    admin = session(ep, "123456789012").client("cloudformation", endpoint_url=ep)
    try:
        admin.describe_stack_set(StackSetName="replctl-replication")
        stack_set = True
    except admin.exceptions.StackSetNotFoundException:
        stack_set = False
    left: dict[str, Any] = {"stack_set": stack_set}
    for env, account in ACCOUNTS.items():
        s = session(ep, account)
        left[env] = {
            "functions": [f["FunctionName"] for f in s.client("lambda", endpoint_url=ep).list_functions()["Functions"]],
            "stacks": [x["StackName"] for x in s.client("cloudformation", endpoint_url=ep).list_stacks()["StackSummaries"]
                       if x["StackStatus"] != "DELETE_COMPLETE" and x["StackName"].startswith("StackSet")],
            "buckets": [b["Name"] for b in s.client("s3", endpoint_url=ep).list_buckets()["Buckets"]],
            "tables": s.client("dynamodb", endpoint_url=ep).list_tables()["TableNames"],
            "alarms": [a["AlarmName"] for a in s.client("cloudwatch", endpoint_url=ep).describe_alarms()["MetricAlarms"]],
            "parameters": [p["Name"] for p in s.client("ssm", endpoint_url=ep).describe_parameters()["Parameters"]
                           if p["Name"].startswith("/app/")],
        }
    return left


def test_destroy_keeps_the_data_then_deploy_refuses_then_delete_data_leaves_nothing(
        sandbox: dict[str, Any], aws_calls: Recording) -> None:
    ep = sandbox["endpoint"]
    # destroy --yes: no instance, no stack set, no function; the bucket (with its object) and the table stay
    before = len(aws_calls.cli)
    result = cli(sandbox, "-o", "json", "destroy", "--yes")
    assert result.exit_code == 0, result.output
    # The three deletes (prod, staging, dev) were waited on by their events (each operation's
    # messages received and consumed; without them the waits end on the safety read alone, with no
    # DeleteMessageBatch), each read once to confirm.
    ops = Counter(c.operation for c in aws_calls.cli[before:])
    assert ops["DeleteStackInstances"] == 3
    assert ops["ReceiveMessage"] >= 3 and ops["DeleteMessageBatch"] == 3
    assert ops["DescribeStackSetOperation"] == ops["ListStackSetOperationResults"] == 3
    report = json.loads(result.stdout)
    assert report["result"] == "succeeded"
    assert {(r["kind"], r["account"]) for r in report["plan"]["retained"]} == {
        (k, a) for k in ("bucket", "table") for a in ACCOUNTS.values()}
    left = estate_left(ep)
    assert left["stack_set"] is False
    for env, account in ACCOUNTS.items():
        assert left[env]["functions"] == [] and left[env]["stacks"] == [] and left[env]["alarms"] == []
        assert f"replctl-config-{env}-{account}" in left[env]["buckets"]
        assert left[env]["tables"] == ["replctl-metadata"]
    body = session(ep, DEV).client("s3", endpoint_url=ep).get_object(
        Bucket=f"replctl-config-dev-{DEV}", Key="config/app.json")["Body"].read()
    assert body == b'{"timeout_ms": 1500}'
    # again: nothing to do, exit 0
    again = cli(sandbox, "-o", "json", "destroy", "--yes")
    assert again.exit_code == 0 and json.loads(again.stdout)["result"] == "nothing-to-do"

    # deploy --yes: refused before any change, naming the retained data and both ways out
    refused = cli(sandbox, "deploy", "--yes")
    assert refused.exit_code == 9, refused.output
    assert f"dev {DEV} us-east-1: bucket replctl-config-dev-{DEV}" in refused.stderr
    assert "--delete-data" in refused.stderr and "aws s3 sync" in refused.stderr
    assert estate_left(ep)["stack_set"] is False

    # destroy --yes --delete-data (prod spelled out): nothing of the estate is left in any account
    gone = cli(sandbox, "destroy", "--yes", "--delete-data", "--env", "dev", "--env", "staging", "--env", "prod")
    assert gone.exit_code == 0, gone.output
    left = estate_left(ep)
    for env in ACCOUNTS:
        assert left[env] == {"functions": [], "stacks": [], "buckets": [], "tables": [], "alarms": [], "parameters": []}

    # and the estate comes back healthy
    back = cli(sandbox, "deploy", "--yes")
    assert back.exit_code == 0, back.output
    assert all(estate_left(ep)[env]["functions"] for env in ACCOUNTS)
