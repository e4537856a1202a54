"""The sandbox publishes CloudFormation's StackSet events, and the bootstrap's rule queues them.

GIVEN moto in-process with the administration bootstrap (cfn/stackset-administration-role.yaml,
deployed as the sandbox deploys it: the queue and its rule) and the StackSet emulation on the
admin client, WHEN StackSet operations run, THEN the queue holds, per operation, the operation's
RUNNING and final status events and one instance event per target, in the shapes the
CloudFormation User Guide documents (event-detail-stackset-operation-status-change.html,
event-detail-stackset-stack-instance-status-change.html) — read back with replctl's own reader —
and nothing about another stack set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from replctl.config import load_config
from replctl.deploy.events import InstanceEvent, OperationEvent, read_event
from replctl.resources import bundle
from replctl.sandbox.adapt.stacksets import StackSetEmulation, StatusBook
from replctl.sandbox.bootstrap import ADMIN_STACK, bootstrap_parameters
from tests.conftest import DEV, PROD, REPO, STAGING

REGION = "us-east-1"
NAME = "replctl-replication"
T = """\
Parameters:
  Environment: {Type: String}
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties: {Name: !Sub "/app/${Environment}/colour", Type: String, Value: blue}
"""


def session(account: str) -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/exec", RoleSessionName="test")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


@pytest.fixture()
def admin() -> Iterator[dict[str, Any]]:
    config = load_config(REPO / "environments.sandbox.yaml")
    template = bundle().bootstrap_template("stackset-administration-role.yaml")
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=ADMIN_STACK, TemplateBody=template.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"],
            Parameters=bootstrap_parameters(config, template))
        cfn = boto3.client("cloudformation", region_name=REGION)
        StackSetEmulation(lambda account, region: session(account),
                          lambda client: boto3.client("cloudformation", region_name=REGION), StatusBook(),
                          events_client=lambda client: boto3.client("events", region_name=REGION)).install(cfn)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.get_queue_url(QueueName=f"{NAME}-events")["QueueUrl"]
        yield {"cfn": cfn, "sqs": sqs, "url": url}


def drain(admin: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    while True:
        got = admin["sqs"].receive_message(QueueUrl=admin["url"], MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            admin["sqs"].delete_message(QueueUrl=admin["url"], ReceiptHandle=m["ReceiptHandle"])


def test_each_operation_is_announced_on_the_event_queue(admin: dict[str, Any]) -> None:
    cfn = admin["cfn"]
    cfn.create_stack_set(StackSetName=NAME, TemplateBody=T, Parameters=[{"ParameterKey": "Environment",
                                                                         "ParameterValue": "dev"}])
    op = cfn.create_stack_instances(StackSetName=NAME, Accounts=[DEV, STAGING], Regions=[REGION])["OperationId"]
    events = drain(admin)
    assert [e["detail-type"] for e in events] == [
        "CloudFormation StackSet Operation Status Change", "CloudFormation StackSet StackInstance Status Change",
        "CloudFormation StackSet StackInstance Status Change", "CloudFormation StackSet Operation Status Change"]
    assert {e["source"] for e in events} == {"aws.cloudformation"}
    read = [read_event(json.dumps(e)) for e in events]
    assert read[0] == OperationEvent(NAME, op, "RUNNING") and read[-1] == OperationEvent(NAME, op, "SUCCEEDED")
    assert {(e.account, e.region, e.detailed) for e in read[1:3] if isinstance(e, InstanceEvent)} == {
        (DEV, REGION, "SUCCEEDED"), (STAGING, REGION, "SUCCEEDED")}
    assert events[1]["detail"]["action"] == "CREATE" and events[1]["detail"]["status-details"]["status"] == "CURRENT"


def test_a_failed_instance_is_announced_with_its_reason(admin: dict[str, Any]) -> None:
    cfn = admin["cfn"]
    cfn.create_stack_set(StackSetName=NAME, TemplateBody=T, Parameters=[{"ParameterKey": "Environment",
                                                                         "ParameterValue": "dev"}])
    cfn.create_stack_instances(StackSetName=NAME, Accounts=[PROD], Regions=[REGION])
    drain(admin)
    # A stack set parameter the template does not declare: the stack update fails, as AWS reports it.
    cfn.update_stack_set(StackSetName=NAME, TemplateBody=T, Parameters=[
        {"ParameterKey": "Environment", "ParameterValue": "prod"}, {"ParameterKey": "Size", "ParameterValue": "1"}],
        Accounts=[PROD], Regions=[REGION])
    (instance,) = [read_event(json.dumps(e)) for e in drain(admin)
                   if e["detail-type"] == "CloudFormation StackSet StackInstance Status Change"]
    assert isinstance(instance, InstanceEvent) and instance.detailed == "FAILED"
    assert instance.reason == "Parameters: [Size] do not exist in the template"


def test_another_stack_sets_events_never_reach_the_queue(admin: dict[str, Any]) -> None:
    cfn = admin["cfn"]
    cfn.create_stack_set(StackSetName="someone-else", TemplateBody=T,
                         Parameters=[{"ParameterKey": "Environment", "ParameterValue": "dev"}])
    cfn.create_stack_instances(StackSetName="someone-else", Accounts=[DEV], Regions=[REGION])
    assert drain(admin) == []
