"""The sandbox's template adaptation: each substitution listed and tested; the file itself untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replctl import cfnyaml
from replctl.sandbox.adapt import NotEmulated
from replctl.sandbox.adapt.skipped import _alarm_api, _replication_api
from replctl.sandbox.adapt.stacksets import merged_parameters, without_denies
from replctl.sandbox.adapt.template import adapt
from tests.conftest import REPO

TEMPLATE = REPO / "cfn" / "replication.yaml"


def test_every_substitution_is_listed() -> None:
    original = TEMPLATE.read_text()
    result = adapt(original)
    assert result.substitutions == (
        "MetadataTable: AWS::DynamoDB::GlobalTable -> AWS::DynamoDB::Table (replicas dropped)",
        "MetadataStreamMapping: AWS::Lambda::EventSourceMapping removed (played by `sandbox invoke`)",
        "AlarmTopicKey: KeyPolicy passed as a JSON string",
        "AlarmTopicKey: Tags given as TagKey/TagValue (moto reads the API's tag shape)",
    )
    assert TEMPLATE.read_text() == original  # the template stays written for AWS


def test_global_table_becomes_a_table_with_the_same_schema() -> None:
    before = cfnyaml.load(TEMPLATE.read_text())["Resources"]["MetadataTable"]["Properties"]
    after = json.loads(adapt(TEMPLATE.read_text()).text)["Resources"]["MetadataTable"]
    assert after["Type"] == "AWS::DynamoDB::Table"
    for key in ("TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "StreamSpecification"):
        assert after["Properties"][key] == before[key]
    assert "Replicas" not in after["Properties"]


def test_event_source_mapping_and_references_are_gone() -> None:
    adapted = adapt(TEMPLATE.read_text()).text
    doc = json.loads(adapted)
    assert not [r for r in doc["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert "MetadataStreamMapping" not in adapted


def test_adapted_template_is_long_form_json() -> None:
    # moto mis-evaluates the short `!Condition` tag; the adapted JSON has no tags at all.
    adapted = adapt(TEMPLATE.read_text()).text
    doc = json.loads(adapted)
    assert doc["Conditions"]
    assert "!Condition" not in adapted and "!Ref" not in adapted


def test_kms_key_policy_is_a_json_string_or_rendered() -> None:
    key = json.loads(adapt(TEMPLATE.read_text()).text)["Resources"]["AlarmTopicKey"]["Properties"]
    policy = key["KeyPolicy"]
    assert isinstance(policy, str) or set(policy) == {"Fn::ToJsonString"}
    assert all(set(t) == {"TagKey", "TagValue"} for t in key.get("Tags", []))


def test_overrides_merge_like_aws() -> None:
    base = [{"ParameterKey": "Environment", "ParameterValue": "dev"},
            {"ParameterKey": "ResourcePrefix", "ParameterValue": "replctl"}]
    got = merged_parameters(base, [{"ParameterKey": "Environment", "ParameterValue": "prod"}])
    assert got == [{"ParameterKey": "Environment", "ParameterValue": "prod"},
                   {"ParameterKey": "ResourcePrefix", "ParameterValue": "replctl"}]


def test_cfn_replication_rules_become_api_rules() -> None:
    rc = {"Role": "arn:aws:iam::1:role/r", "Rules": [{"Id": "to-prod", "Priority": 2, "Filter": {},
                                                     "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::b"},
                                                     "DeleteMarkerReplication": {"Status": "Enabled"}}]}
    api = _replication_api(rc)
    assert api["Rules"][0]["ID"] == "to-prod" and api["Rules"][0]["Filter"] == {"Prefix": ""}


def test_alarm_properties_become_api_arguments() -> None:
    api = _alarm_api({"AlarmName": "a", "Threshold": "1", "Period": "60", "EvaluationPeriods": 1,
                      "ComparisonOperator": "GreaterThanThreshold", "Namespace": "N", "MetricName": "M",
                      "Statistic": "Maximum", "Tags": []})
    assert api["Threshold"] == 1.0 and api["Period"] == 60 and "Tags" not in api


def test_evaluator_resolves_conditions_per_environment() -> None:
    template = cfnyaml.load(TEMPLATE.read_text())
    common = {"AccountIdDev": "111111111111", "AccountIdStaging": "222222222222", "AccountIdProd": "333333333333",
              "AdminAccountId": "123456789012", "ArtifactBucketName": "b", "ReplicationMonitorCodeKey": "k",
              "ConfigValidatorCodeKey": "k", "StreamProcessorCodeKey": "k"}
    for env, downstream in (("dev", True), ("staging", True), ("prod", False)):
        ev = cfnyaml.Evaluator(template, {**common, "Environment": env, "ReplicateToStaging": "true",
                                          "ReplicateToProd": "true"}, account="111111111111", region="us-east-1")
        assert ev.condition("HasDownstream") is downstream


def test_the_emulator_gets_bucket_policies_without_deny_statements() -> None:
    allow = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::b/*"}
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    params = {"Bucket": "b", "Policy": json.dumps({"Version": "2012-10-17", "Statement": [allow, deny]})}
    without_denies(params)
    assert json.loads(params["Policy"])["Statement"] == [allow]


def test_the_stream_mapping_is_played_only_where_the_template_creates_it() -> None:
    from replctl.sandbox.invoke import has_downstream

    def env(name: str, staging: str, prod: str) -> dict[str, str]:
        return {"ENVIRONMENT": name, "REPLICATE_TO_STAGING": staging, "REPLICATE_TO_PROD": prod}

    assert has_downstream(env("dev", "true", "false")) and has_downstream(env("staging", "false", "true"))
    assert not has_downstream(env("dev", "false", "false"))
    assert not has_downstream(env("staging", "true", "false"))  # staging never replicates to itself
    assert not has_downstream(env("prod", "true", "true"))


# --------------------------------------------------------------------------- EventBridge section


def test_only_an_enabled_rule_with_an_event_pattern_takes_events() -> None:
    from replctl.sandbox.adapt.eventbridge import rule_takes_events

    assert rule_takes_events(has_pattern=True, state="ENABLED")
    assert rule_takes_events(has_pattern=True, state=None)  # rules are enabled by default (PutRule)
    assert not rule_takes_events(has_pattern=False, state="ENABLED")  # a schedule rule self-triggers only
    assert not rule_takes_events(has_pattern=True, state="DISABLED")


def test_lambda_targets_are_recognised_by_their_arn() -> None:
    from replctl.sandbox.adapt.eventbridge import lambda_function_of

    assert lambda_function_of("arn:aws:lambda:us-east-1:111111111111:function:replctl-config-validator") == (
        "replctl-config-validator")
    assert lambda_function_of("arn:aws:lambda:us-east-1:111111111111:function:f:live") == "f"
    assert lambda_function_of("arn:aws:sqs:us-east-1:111111111111:q") is None
    assert lambda_function_of("arn:aws:events:us-east-1:111111111111:event-bus/default") is None


def test_the_delivered_event_has_the_documented_envelope() -> None:
    from replctl.sandbox.adapt.eventbridge import delivered_event

    moto_event = {"version": "0", "id": "i", "detail-type": "T", "source": "s", "account": "111111111111",
                  "time": 1714564800.5, "region": "us-east-1", "resources": [], "detail": {"a": 1},
                  "ingestion-time": 1714564800.6}
    assert delivered_event(moto_event, {"Id": "t", "Arn": "arn"}) == {
        "version": "0", "id": "i", "detail-type": "T", "source": "s", "account": "111111111111",
        "time": "2024-05-01T12:00:00Z", "region": "us-east-1", "resources": [], "detail": {"a": 1}}
    assert delivered_event(moto_event, {"Id": "t", "Arn": "arn", "Input": '{"k": "v"}'}) == {"k": "v"}
    with pytest.raises(NotEmulated, match="InputPath / InputTransformer on a Lambda target is not emulated"):
        delivered_event(moto_event, {"Id": "t", "Arn": "arn", "InputPath": "$.detail"})


def test_service_events_have_the_documented_shapes() -> None:
    from replctl.sandbox.adapt.eventbridge import parameter_change_entry, stack_status_entry

    ssm = parameter_change_entry("/app/dev/config/x", "SecureString", "Delete", None)
    assert (ssm["Source"], ssm["DetailType"], ssm["EventBusName"]) == ("aws.ssm", "Parameter Store Change", "default")
    assert json.loads(ssm["Detail"]) == {"name": "/app/dev/config/x", "type": "SecureString", "operation": "Delete",
                                         "description": ""}
    stack_id = "arn:aws:cloudformation:us-east-1:111111111111:stack/StackSet-x/1"
    cfn = stack_status_entry(stack_id, "UPDATE_COMPLETE", None)
    assert (cfn["Source"], cfn["DetailType"], cfn["Resources"]) == (
        "aws.cloudformation", "CloudFormation Stack Status Change", [stack_id])
    assert json.loads(cfn["Detail"]) == {"stack-id": stack_id, "client-request-token": "",
                                         "status-details": {"status": "UPDATE_COMPLETE", "status-reason": ""}}


def test_the_file_queue_hands_each_function_its_own_events_once(tmp_path: Path) -> None:
    from replctl.sandbox.asyncinvoke import FileQueue, QueuedEvent

    server, cli = FileQueue(tmp_path), FileQueue(tmp_path)  # two processes share the folder
    first = QueuedEvent("111111111111", "us-east-1", "replctl-replication-monitor", "r", {"n": 1})
    other = QueuedEvent("111111111111", "us-east-1", "replctl-config-validator", "r", {"n": 2})
    second = QueuedEvent("111111111111", "us-east-1", "replctl-replication-monitor", "r", {"n": 3})
    for item in (first, other, second):
        server.put(item)

    assert cli.peek("111111111111", "us-east-1", "replctl-replication-monitor") == [first, second]
    assert cli.take("111111111111", "us-east-1", "replctl-replication-monitor") == [first, second]
    assert cli.take("111111111111", "us-east-1", "replctl-replication-monitor") == []
    assert cli.take("222222222222", "us-east-1", "replctl-config-validator") == []
    assert cli.take("111111111111", "us-east-1", "replctl-config-validator") == [other]
