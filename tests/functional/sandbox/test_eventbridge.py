"""The sandbox's EventBridge adaptation against moto in-process (replctl.sandbox.adapt).

Each test first shows what moto 5.2.5 does without the adaptation where that is the point (so a
moto upgrade that changes it is noticed), then what the adapted emulator does, which is what the
AWS documentation cited in replctl/sandbox/adapt/eventbridge.py says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from replctl.sandbox.adapt.eventbridge import emulator_adaptations
from replctl.sandbox.asyncinvoke import MemoryQueue
from tests.conftest import ADMIN

REGION = "us-east-1"
FUNCTION = "replctl-replication-monitor"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ADMIN}:function:{FUNCTION}"
SCHEMA_EVENT = {"Source": "replctl.metadata", "DetailType": "Metadata Schema Change",
                "Detail": json.dumps({"pk": "SCHEMA", "sk": "orders"})}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def queue(aws: None) -> Iterator[MemoryQueue]:
    q = MemoryQueue()
    with emulator_adaptations(q.put):
        yield q


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def schedule_rule_with_lambda_target(name: str = "replctl-dev-heartbeat") -> None:
    events = client("events")
    events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)")
    events.put_targets(Rule=name, Targets=[{"Id": "monitor", "Arn": FUNCTION_ARN}])


def pattern_rule(name: str, pattern: dict[str, Any], target_arn: str, **target: Any) -> None:
    events = client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "t", "Arn": target_arn, **target}])


def sqs_observer(pattern: dict[str, Any]) -> str:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern_rule("observer", pattern, arn)
    return url


def observed(url: str) -> list[dict[str, Any]]:
    messages = client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_unadapted_moto_matches_a_schedule_rule_with_every_event_and_fails_the_call(aws: None) -> None:
    # moto-notes §9: the reason the adaptation exists (fails loudly if moto ever fixes it).
    schedule_rule_with_lambda_target()
    with pytest.raises(NotImplementedError, match="Expr not defined"):
        client("events").put_events(Entries=[SCHEMA_EVENT])


def test_a_schedule_rule_never_matches_put_events(queue: MemoryQueue) -> None:
    schedule_rule_with_lambda_target()
    url = sqs_observer({"source": ["replctl.metadata"]})

    result = client("events").put_events(Entries=[SCHEMA_EVENT])

    assert result["FailedEntryCount"] == 0
    assert queue.items == []  # the schedule rule's Lambda target got nothing
    assert [e["detail"] for e in observed(url)] == [{"pk": "SCHEMA", "sk": "orders"}]  # SQS still delivered


def test_a_matching_rule_queues_the_event_for_its_lambda_target(queue: MemoryQueue) -> None:
    pattern_rule("schema", {"source": ["replctl.metadata"]}, FUNCTION_ARN)

    client("events").put_events(Entries=[SCHEMA_EVENT])

    (item,) = queue.items
    assert (item.account, item.region, item.function, item.rule) == (ADMIN, REGION, FUNCTION, "schema")
    event = item.event
    assert (event["source"], event["detail-type"], event["account"], event["region"]) == (
        "replctl.metadata", "Metadata Schema Change", ADMIN, REGION)
    assert event["detail"] == {"pk": "SCHEMA", "sk": "orders"}
    assert isinstance(event["time"], str) and event["time"].endswith("Z")  # ISO-8601, as AWS delivers it
    assert "ingestion-time" not in event


def test_a_disabled_rule_matches_nothing(queue: MemoryQueue) -> None:
    pattern_rule("schema", {"source": ["replctl.metadata"]}, FUNCTION_ARN)
    client("events").disable_rule(Name="schema")

    client("events").put_events(Entries=[SCHEMA_EVENT])

    assert queue.items == []


def test_a_target_input_replaces_the_event(queue: MemoryQueue) -> None:
    pattern_rule("schema", {"source": ["replctl.metadata"]}, FUNCTION_ARN, Input='{"constant": 1}')

    client("events").put_events(Entries=[SCHEMA_EVENT])

    assert [i.event for i in queue.items] == [{"constant": 1}]


def test_parameter_store_publishes_create_update_label_and_delete(queue: MemoryQueue) -> None:
    pattern_rule("parameter-change", {"source": ["aws.ssm"], "detail-type": ["Parameter Store Change"],
                                      "detail": {"name": [{"prefix": "/app/dev/config/"}]}}, FUNCTION_ARN)
    ssm = client("ssm")
    name = "/app/dev/config/checkout/timeout-ms"

    ssm.put_parameter(Name=name, Value="2000", Type="String", Description="checkout timeout")
    ssm.put_parameter(Name=name, Value="1500", Type="String", Overwrite=True)
    ssm.label_parameter_version(Name=name, Labels=["released"])
    ssm.delete_parameters(Names=[name, "/app/dev/config/never-existed"])
    ssm.put_parameter(Name="/app/dev/config/secret", Value="s", Type="SecureString")
    ssm.delete_parameter(Name="/app/dev/config/secret")
    ssm.put_parameter(Name="/app/prod/config/other", Value="x", Type="String")  # outside the pattern

    details = [i.event["detail"] for i in queue.items]
    assert [(d["name"], d["operation"], d["type"]) for d in details] == [
        (name, "Create", "String"), (name, "Update", "String"), (name, "LabelParameterVersion", "String"),
        (name, "Delete", "String"),
        ("/app/dev/config/secret", "Create", "SecureString"), ("/app/dev/config/secret", "Delete", "SecureString"),
    ]
    assert details[0]["description"] == "checkout timeout"
    assert all("value" not in d for d in details)  # the event never carries the value
    assert {i.event["source"] for i in queue.items} == {"aws.ssm"}


def test_a_failed_parameter_call_publishes_nothing(queue: MemoryQueue) -> None:
    pattern_rule("parameter-change", {"source": ["aws.ssm"]}, FUNCTION_ARN)
    ssm = client("ssm")
    ssm.put_parameter(Name="/app/dev/config/a", Value="1", Type="String")
    queue.items.clear()

    with pytest.raises(ssm.exceptions.ParameterAlreadyExists):
        ssm.put_parameter(Name="/app/dev/config/a", Value="2", Type="String")
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.delete_parameter(Name="/app/dev/config/missing")

    assert queue.items == []


def test_cloudformation_publishes_the_stack_status_changes_of_its_stack(queue: MemoryQueue) -> None:
    cfn = client("cloudformation")
    template = {"Resources": {"StackStatusRule": {"Type": "AWS::Events::Rule", "Properties": {
        "Name": "stack-status", "State": "ENABLED",
        "EventPattern": {"source": ["aws.cloudformation"], "detail-type": ["CloudFormation Stack Status Change"],
                         "detail": {"stack-id": [{"Ref": "AWS::StackId"}]}},
        "Targets": [{"Id": "validator", "Arn": FUNCTION_ARN}]}}}}
    stack_id = cfn.create_stack(StackName="replctl", TemplateBody=json.dumps(template))["StackId"]
    cfn.create_stack(StackName="another", TemplateBody=json.dumps({"Resources": {"P": {
        "Type": "AWS::SSM::Parameter", "Properties": {"Name": "/x", "Type": "String", "Value": "v"}}}}))

    statuses = [(i.event["detail"]["stack-id"], i.event["detail"]["status-details"]["status"]) for i in queue.items]
    assert statuses == [(stack_id, "CREATE_COMPLETE")]  # the rule exists once the stack's resources do
    assert queue.items[0].event["resources"] == [stack_id]


def test_uninstalling_gives_moto_back(aws: None) -> None:
    q = MemoryQueue()
    with emulator_adaptations(q.put):
        pass
    schedule_rule_with_lambda_target()
    with pytest.raises(NotImplementedError):
        client("events").put_events(Entries=[SCHEMA_EVENT])
