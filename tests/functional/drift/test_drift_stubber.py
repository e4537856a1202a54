"""StackSet drift with botocore's Stubber on the admin CloudFormation client.

moto has no drift API at all (moto-notes §1), so the detection flow — DetectStackSetDrift, the
operation RUNNING then SUCCEEDED, ListStackInstances with DriftStatus, and
ListStackInstanceResourceDrifts with expected/actual values — is scripted here in the shapes the
CloudFormation API reference documents. The parity half of `drift` still reads moto's three
accounts through the observer role, so the CLI runs end to end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from replctl import cli
from replctl.aws import AwsSettings, SessionFactory
from replctl.config import load_config
from replctl.errors import WaitTimeout
from tests.conftest import DEV, PROD, STAGING
from tests.functional.drift.test_parity_moto import write_functions
from tests.functional.status.test_status_moto import CONFIG, WANTED, Seed, seed, shared_models  # noqa: F401

runner = CliRunner()
NAME = "replctl-replication"
REGION = "us-east-1"
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
PREFS = {"RegionConcurrencyType": "SEQUENTIAL", "ConcurrencyMode": "STRICT_FAILURE_TOLERANCE",
         "FailureToleranceCount": 0, "MaxConcurrentCount": 1}


@pytest.fixture()
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Stubber, list[float]]]:
    """Clean moto accounts for parity, a factory whose admin CloudFormation client is stubbed."""
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    path = tmp_path / "environments.yaml"
    path.write_text(CONFIG)
    code = write_functions(tmp_path)
    sleeps: list[float] = []
    monkeypatch.setattr("replctl.commands.drift._sleep", sleeps.append)
    with mock_aws():
        seed({e: Seed(code=code) for e in ("dev", "staging", "prod")}, stack_set=False)
        factory = SessionFactory(AwsSettings(region=REGION))
        cfn = factory.client("cloudformation", region=REGION)
        monkeypatch.setattr(cli.State, "factory", lambda self: factory)
        with Stubber(cfn) as stubber:
            yield path, stubber, sleeps


def operation(status: str, detection: str, *, drifted: int = 0, in_sync: int = 0, in_progress: int = 0,
              drift: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "DriftDetectionStatus": detection, "TotalStackInstancesCount": 3, "DriftedStackInstancesCount": drifted,
        "InSyncStackInstancesCount": in_sync, "InProgressStackInstancesCount": in_progress,
        "FailedStackInstancesCount": 0,
    }
    if drift:
        details["DriftStatus"] = drift
    return {"StackSetOperation": {"OperationId": "op-1", "StackSetId": f"{NAME}:1", "Action": "DETECT_DRIFT",
                                  "Status": status, "CreationTimestamp": T0, "StackSetDriftDetectionDetails": details}}


def instance(account: str, drift: str) -> dict[str, Any]:
    return {"StackSetId": f"{NAME}:1", "Region": REGION, "Account": account, "Status": "CURRENT",
            "StackInstanceStatus": {"DetailedStatus": "SUCCEEDED"}, "DriftStatus": drift,
            "LastDriftCheckTimestamp": T0}


def expect_detection(stubber: Stubber, *, dev_drift: str = "DRIFTED") -> None:
    stubber.add_response("detect_stack_set_drift", {"OperationId": "op-1"},
                         {"StackSetName": NAME, "OperationPreferences": PREFS, "CallAs": "SELF"})
    stubber.add_response("describe_stack_set_operation", operation("RUNNING", "IN_PROGRESS", in_progress=3),
                         {"StackSetName": NAME, "OperationId": "op-1", "CallAs": "SELF"})
    stubber.add_response("describe_stack_set_operation", operation("RUNNING", "IN_PROGRESS", in_sync=2, in_progress=1),
                         {"StackSetName": NAME, "OperationId": "op-1", "CallAs": "SELF"})
    drifted = dev_drift == "DRIFTED"
    stubber.add_response("describe_stack_set_operation",
                         operation("SUCCEEDED", "COMPLETED", drifted=int(drifted), in_sync=3 - int(drifted),
                                   drift="DRIFTED" if drifted else "IN_SYNC"),
                         {"StackSetName": NAME, "OperationId": "op-1", "CallAs": "SELF"})
    stubber.add_response("list_stack_instances", {"Summaries": [
        instance(DEV, dev_drift), instance(STAGING, "IN_SYNC"), instance(PROD, "IN_SYNC")]}, {"StackSetName": NAME, "CallAs": "SELF"})
    if drifted:
        stubber.add_response("list_stack_instance_resource_drifts", {"Summaries": [
            {"StackId": f"arn:aws:cloudformation:{REGION}:{DEV}:stack/StackSet-{NAME}-x/1",
             "LogicalResourceId": "ReplicationMonitorLambda", "PhysicalResourceId": "replctl-replication-monitor",
             "ResourceType": "AWS::Lambda::Function", "StackResourceDriftStatus": "MODIFIED", "Timestamp": T0,
             "PropertyDifferences": [
                 {"PropertyPath": "/MemorySize", "ExpectedValue": "256", "ActualValue": "512",
                  "DifferenceType": "NOT_EQUAL"},
                 {"PropertyPath": "/Timeout", "ExpectedValue": "60", "ActualValue": "300",
                  "DifferenceType": "NOT_EQUAL"}]},
            {"StackId": f"arn:aws:cloudformation:{REGION}:{DEV}:stack/StackSet-{NAME}-x/1",
             "LogicalResourceId": "EventsDLQ", "PhysicalResourceId": "replctl-events-dlq",
             "ResourceType": "AWS::SQS::Queue", "StackResourceDriftStatus": "DELETED", "Timestamp": T0},
        ]}, {"StackSetName": NAME, "StackInstanceAccount": DEV, "StackInstanceRegion": REGION, "OperationId": "op-1",
             "CallAs": "SELF",
             "StackInstanceResourceDriftStatuses": ["MODIFIED", "DELETED"]})


def expect_parameters(stubber: Stubber) -> None:
    """The admin reads behind the bucket-rule check: stack set parameters, then each instance's overrides."""
    stubber.add_response("describe_stack_set", {"StackSet": {"StackSetName": NAME, "Parameters": [
        {"ParameterKey": "ReplicateToStaging", "ParameterValue": "false"},
        {"ParameterKey": "ReplicateToProd", "ParameterValue": "false"}]}}, {"StackSetName": NAME, "CallAs": "SELF"})
    for env, account in (("dev", DEV), ("staging", STAGING), ("prod", PROD)):
        stubber.add_response("describe_stack_instance", {"StackInstance": {
            "StackSetId": f"{NAME}:1", "Region": REGION, "Account": account, "Status": "CURRENT",
            "ParameterOverrides": [{"ParameterKey": k, "ParameterValue": v} for k, v in WANTED[env].items()]}},
            {"StackSetName": NAME, "StackInstanceAccount": account, "StackInstanceRegion": REGION, "CallAs": "SELF"})


def drift(path: Path, *args: str):
    result = runner.invoke(cli.app, ["--config", str(path), "--no-color", "drift", *args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def test_detection_in_progress_then_drifted_resources_exit_30(estate) -> None:
    path, stubber, sleeps = estate
    expect_detection(stubber)
    expect_parameters(stubber)
    result = drift(path, "-o", "json")
    assert result.exit_code == 30, result.output
    stubber.assert_no_pending_responses()
    assert sleeps == [1.0, 2.0]  # backoff from the configured initial interval, doubling
    progress = result.stderr
    assert "drift detection started on replctl-replication (operation op-1)" in progress
    assert "drift detection running: 0 of 3 instances checked, 3 in progress" in progress
    assert "drift detection running: 2 of 3 instances checked, 1 in progress" in progress
    assert "drift detection succeeded: 3 of 3 instances checked, 0 in progress" in progress

    report = json.loads(result.stdout)
    s = report["stack_set"]
    assert (s["detection_available"], s["operation_id"], s["operation_status"], s["detection_status"],
            s["drift_status"]) == (True, "op-1", "SUCCEEDED", "COMPLETED", "DRIFTED")
    assert s["counts"]["DriftedStackInstancesCount"] == 1
    dev = s["instances"][0]
    assert dev["account"] == DEV and dev["drift_status"] == "DRIFTED"
    assert dev["resources"][1]["differences"] == [
        {"path": "/MemorySize", "expected": "256", "actual": "512", "type": "NOT_EQUAL"},
        {"path": "/Timeout", "expected": "60", "actual": "300", "type": "NOT_EQUAL"}]
    assert [i["drift_status"] for i in s["instances"]] == ["DRIFTED", "IN_SYNC", "IN_SYNC"]
    assert report["findings"] == [
        {"kind": "stack-resource", "environment": "dev", "account": DEV, "region": REGION,
         "resource": "EventsDLQ (AWS::SQS::Queue replctl-events-dlq)", "detail": "deleted outside CloudFormation",
         "action": "re-deploy it from the template (replctl deploy --env dev), or revert the change made outside "
                   "it; if the change is wanted, make it in cfn/replication.yaml"},
        {"kind": "stack-resource", "environment": "dev", "account": DEV, "region": REGION,
         "resource": "ReplicationMonitorLambda (AWS::Lambda::Function replctl-replication-monitor)",
         "detail": "modified: /MemorySize: expected 256, actual 512; /Timeout: expected 60, actual 300",
         "action": "re-deploy it from the template (replctl deploy --env dev), or revert the change made outside "
                   "it; if the change is wanted, make it in cfn/replication.yaml"},
    ]
    assert report["parity"]["checked"] == ["stack-set-drift", "ssm-keys", "table-schema", "function-code",
                                           "bucket-replication"]


def test_drifted_resources_render_expected_and_actual(estate) -> None:
    path, stubber, _ = estate
    expect_detection(stubber)
    expect_parameters(stubber)
    result = drift(path)
    assert result.exit_code == 30
    rows = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert any("/MemorySize │ 256 │ 512" in r for r in rows)
    assert any("/Timeout │ 60 │ 300" in r for r in rows)
    assert "StackSet drift — replctl-replication (operation op-1)" in " ".join(result.stdout.split())
    assert "stack set replctl-replication: drift DRIFTED across 3 instances" in result.stderr


def test_in_sync_exits_zero(estate) -> None:
    path, stubber, _ = estate
    expect_detection(stubber, dev_drift="IN_SYNC")
    expect_parameters(stubber)
    result = drift(path, "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["in_sync"] is True and report["stack_set"]["drift_status"] == "IN_SYNC"
    assert "in sync" not in result.stdout  # JSON only on stdout


def test_endpoint_without_drift_support_says_so_once_and_parity_still_runs(estate) -> None:
    path, stubber, sleeps = estate
    stubber.add_client_error("detect_stack_set_drift", service_error_code="UnsupportedOperation",
                             service_message="Drift detection is not supported here", http_status_code=400)
    expect_parameters(stubber)
    result = drift(path, "-o", "json")
    assert result.exit_code == 0, result.output
    stubber.assert_no_pending_responses()
    assert sleeps == []
    report = json.loads(result.stdout)
    assert report["stack_set"]["detection_available"] is False
    assert report["parity"]["checked"] == ["ssm-keys", "table-schema", "function-code", "bucket-replication"]
    note = ("StackSet drift detection is not available: the endpoint does not support DetectStackSetDrift "
            "(UnsupportedOperation). Only the parity checks ran.")
    assert report["stack_set"]["note"] == note
    assert " ".join(result.stderr.split()).count("StackSet drift detection is not available") == 1


def test_missing_stack_set_is_a_finding(estate) -> None:
    path, stubber, _ = estate
    stubber.add_client_error("detect_stack_set_drift", service_error_code="StackSetNotFoundException",
                             service_message="StackSet replctl-replication not found", http_status_code=404)
    stubber.add_client_error("describe_stack_set", service_error_code="StackSetNotFoundException",
                             service_message="StackSet replctl-replication not found", http_status_code=404)
    result = drift(path, "-o", "json")
    assert result.exit_code == 30
    report = json.loads(result.stdout)
    assert report["findings"][0] == {
        "kind": "stack-set", "environment": "", "account": "123456789012", "region": REGION,
        "resource": NAME, "detail": "the stack set does not exist",
        "action": "create it and roll it out with replctl deploy"}
    # the bucket-rule check could not know what the template wants: said, and the report is incomplete
    assert any("DescribeStackSet replctl-replication" in n for n in report["notes"])


# --------------------------------------------------------------------------- the core, with a fake clock


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[tuple[Any, SessionFactory, Stubber]]:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    path = tmp_path / "environments.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    factory = SessionFactory(AwsSettings(region=REGION))
    with Stubber(factory.client("cloudformation", region=REGION)) as stubber:
        yield config, factory, stubber


def test_operation_in_progress_waits_then_starts(core) -> None:
    from replctl.drift.fetch import detect_stackset_drift

    config, factory, stubber = core
    stubber.add_client_error("detect_stack_set_drift", service_error_code="OperationInProgressException",
                             service_message="Another Operation is in progress", http_status_code=409)
    expect_detection(stubber, dev_drift="IN_SYNC")
    fake = FakeClock()
    messages: list[str] = []
    result = detect_stackset_drift(config, factory, config.environments, sleep=fake.sleep, clock=fake.clock,
                                   progress=messages.append)
    assert result.drift is not None and result.drift.value == "IN_SYNC"
    assert fake.sleeps == [1.0, 1.0, 2.0]  # one wait to start, then the poll's own backoff
    assert messages[0] == ("another operation is running on stack set replctl-replication; "
                           "waiting to start drift detection")


def test_gives_up_after_the_configured_timeout(core) -> None:
    from replctl.drift.fetch import detect_stackset_drift

    config, factory, stubber = core
    stubber.add_response("detect_stack_set_drift", {"OperationId": "op-1"})
    for _ in range(40):
        stubber.add_response("describe_stack_set_operation", operation("RUNNING", "IN_PROGRESS", in_progress=3))
    fake = FakeClock()
    with pytest.raises(WaitTimeout) as info:
        detect_stackset_drift(config, factory, config.environments, sleep=fake.sleep, clock=fake.clock)
    assert "drift detection op-1 on replctl-replication" in info.value.message
    assert "operation op-1" in (info.value.hint or "")
    assert fake.sleeps[:4] == [1.0, 2.0, 4.0, 4.0] and fake.now == 60.0


def test_what_counts_as_an_endpoint_without_drift_support() -> None:
    from botocore.parsers import ResponseParserError

    from replctl.drift.fetch import drift_unsupported

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                           "DetectStackSetDrift")

    assert drift_unsupported(NotImplementedError("The detect_stack_set_drift action has not been implemented"))
    assert "unparseable" in (drift_unsupported(ResponseParserError("invalid XML received")) or "")
    assert drift_unsupported(client_error("InternalFailure", 500)) == \
        "the endpoint answered DetectStackSetDrift with HTTP 500 (InternalFailure)"
    assert drift_unsupported(client_error("NotImplemented", 501))
    assert drift_unsupported(client_error("AccessDenied", 403)) is None
    assert drift_unsupported(client_error("ValidationError", 400)) is None
