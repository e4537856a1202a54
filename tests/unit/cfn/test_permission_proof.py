"""The offline permission proof, part 1: CloudFormation's handlers against the execution role.

moto evaluates no IAM, so nothing else in the suite notices a grant the StackSet execution role
lacks. GIVEN the replication template rendered for a concrete account in every environment and
replication setting (and with DR replicas), and the bootstrap template's execution role for that
account, WHEN every permission CloudFormation's resource handlers call for every resource the
template creates (tests/permproof.py: create/read/update/delete/list, plus the tagging permissions
where CloudFormation tags the resource itself) is evaluated against that resource's ARN with the
request context AWS would see (tests/iamproof.py), THEN nothing is denied — except the features the
template does not use, listed once in EXCLUDED with the reason.

Each defect this proof was built to catch has a regression test at the bottom: it removes (or
re-scopes) one grant in a copy of the bootstrap template and shows the proof fails on exactly that
call. (Calls of the CLI and of the functions are proved in tests/functional/test_permission_proof_calls.py.)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pytest

from tests import cfnkit, permproof
from tests.iamproof import Question, Request, answer, is_action

ACCOUNTS, ADMIN = cfnkit.ACCOUNTS, cfnkit.ADMIN

# Handler permissions for features the template does not use, by (resource type, permission) —
# "*" for any type. Each row says why the call never happens for these resources.
EXCLUDED: dict[tuple[str, str], str] = {
    **dict.fromkeys(
        [("AWS::S3::Bucket", p) for p in (
            "s3:createbucketmetadatatableconfiguration", "s3:getbucketmetadatatableconfiguration",
            "s3:deletebucketmetadatatableconfiguration", "s3:updatebucketmetadataannotationtableconfiguration",
            "s3:updatebucketmetadatainventorytableconfiguration", "s3:updatebucketmetadatajournaltableconfiguration",
            "s3tables:createnamespace", "s3tables:createtable", "s3tables:createtablebucket", "s3tables:gettable",
            "s3tables:gettablemetadatalocation", "s3tables:puttablebucketpolicy", "s3tables:puttableencryption",
            "s3tables:puttablepolicy", "s3tables:updatetablemetadatalocation")],
        "S3 Metadata tables (MetadataTableConfiguration) are not configured",
    ),
    ("AWS::S3::Bucket", "s3:putbucketabac"): "bucket ABAC (AbacStatus) is not configured",
    ("AWS::S3::Bucket", "s3:putobjectacl"): "object ACLs: ACLs are disabled (BucketOwnerEnforced), none is set",
    ("AWS::S3::Bucket", "s3:deleteobject"): "objects are never deleted by CloudFormation: the bucket is retained "
                                            "(DeletionPolicy Retain) and the template writes no object",
    **dict.fromkeys(
        [("AWS::Lambda::Function", p) for p in (
            "ec2:describesecuritygroups", "ec2:describesubnets", "ec2:describevpcs", "ec2:describenetworkinterfaces",
            "elasticfilesystem:describemounttargets", "s3files:listmounttargets")],
        "the functions are attached to no VPC and no file system",
    ),
    **dict.fromkeys(
        [("AWS::Lambda::Function", p) for p in (
            "lambda:getcodesigningconfig", "lambda:putfunctioncodesigningconfig",
            "lambda:deletefunctioncodesigningconfig", "lambda:getlayerversion", "lambda:passcapacityprovider",
            "lambda:putfunctionscalingconfig", "lambda:getfunctionscalingconfig", "lambda:publishversion",
            "lambda:putruntimemanagementconfig", "lambda:putfunctionrecursionconfig", "lambda:associateruntimealias")],
        "no code signing, layers, capacity providers, scaling config, versions, runtime management, "
        "recursion setting or runtime alias",
    ),
    **dict.fromkeys(
        [("AWS::Lambda::Function", p) for p in ("kms:creategrant", "kms:decrypt", "kms:encrypt", "kms:generatedatakey",
                                                 "kms:describekey")],
        "no KmsKeyArn: Lambda encrypts the environment with an AWS owned key, which needs no permission",
    ),
    **dict.fromkeys(
        [("AWS::Lambda::EventSourceMapping", p) for p in ("kms:decrypt", "kms:describekey", "kms:generatedatakey")],
        "no KMSKeyArn: the mapping's filter criteria are not encrypted with a customer key",
    ),
    **dict.fromkeys(
        [("AWS::DynamoDB::GlobalTable", p) for p in (
            "application-autoscaling:deletescalingpolicy", "application-autoscaling:deletescheduledaction",
            "application-autoscaling:deregisterscalabletarget", "application-autoscaling:describe*",
            "application-autoscaling:putscalingpolicy", "application-autoscaling:putscheduledaction",
            "application-autoscaling:registerscalabletarget", "cloudwatch:putmetricdata")],
        "BillingMode PAY_PER_REQUEST: no auto scaling (and none of its metrics)",
    ),
    **dict.fromkeys(
        [("AWS::DynamoDB::GlobalTable", p) for p in (
            "dynamodb:enablekinesisstreamingdestination", "dynamodb:disablekinesisstreamingdestination",
            "dynamodb:updatekinesisstreamingdestination", "kinesis:describestream", "kinesis:liststreams",
            "kinesis:putrecords")],
        "no KinesisStreamSpecification on any replica",
    ),
    **dict.fromkeys(
        [("AWS::DynamoDB::GlobalTable", p) for p in (
            "dynamodb:putresourcepolicy", "dynamodb:deleteresourcepolicy", "dynamodb:disassociatetablereplica")],
        "no ResourcePolicy and no multi-account replica (GlobalTableSourceArn): cross-account sync is the "
        "stream processor's one-way propagation",
    ),
    ("AWS::DynamoDB::GlobalTable", "dynamodb:describe*"): "expanded: the Describe calls on the table are proved "
                                                          "one by one (EXPANDED)",
    **dict.fromkeys(
        [("AWS::Logs::LogGroup", p) for p in (
            "logs:associatekmskey", "logs:disassociatekmskey", "logs:createlogdelivery", "logs:putdataprotectionpolicy",
            "logs:deletedataprotectionpolicy", "logs:putindexpolicy", "logs:deleteindexpolicy",
            "logs:describeindexpolicies", "logs:putresourcepolicy", "logs:deleteresourcepolicy",
            "logs:putbearertokenauthentication", "logs:putloggroupdeletionprotection", "firehose:tagdeliverystream")],
        "log groups set no KmsKeyId, data protection, field index, resource policy, delivery, bearer token "
        "or deletion protection",
    ),
    ("AWS::Logs::LogGroup", "s3:rest.put.object"): "not an IAM action (an S3 access-log operation name): "
                                                   "log groups export nothing to S3",
    ("AWS::SNS::Topic", "sns:putdataprotectionpolicy"): "the topic has no DataProtectionPolicy",
    ("AWS::SQS::Queue", "sqs:listqueues"): "list handler: every queue is named, CloudFormation never lists them",
    **dict.fromkeys(
        [("AWS::IAM::Policy", p) for p in ("iam:putuserpolicy", "iam:getuserpolicy", "iam:deleteuserpolicy",
                                           "iam:putgrouppolicy", "iam:getgrouppolicy", "iam:deletegrouppolicy")],
        "the template's AWS::IAM::Policy names Roles only (no Users, no Groups)",
    ),
    **dict.fromkeys(
        [("AWS::IAM::Role", p) for p in ("iam:attachrolepolicy", "iam:detachrolepolicy",
                                         "iam:deleterolepermissionsboundary")],
        "roles carry inline policies only (no ManagedPolicyArns) and never lose their permissions boundary",
    ),
}

# Wildcard handler permissions, proved as the concrete calls they stand for on this resource.
EXPANDED: dict[tuple[str, str], tuple[str, ...]] = {
    ("AWS::DynamoDB::GlobalTable", "dynamodb:describe*"): (
        "dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups", "dynamodb:DescribeContributorInsights",
        "dynamodb:DescribeTimeToLive", "dynamodb:DescribeKinesisStreamingDestination",
        "dynamodb:DescribeTableReplicaAutoScaling"),
}


def scenarios() -> Iterator[tuple[str, dict[str, str]]]:
    """Every environment, every replication switch, with and without two DR replicas."""
    for env in ACCOUNTS:
        for to_staging in (False, True):
            for to_prod in (False, True):
                for extra in ("", "us-west-2,eu-west-1"):
                    params = cfnkit.instance_parameters(env, to_staging, to_prod, AlarmEmail="oncall@example.com",
                                                        ExtraReplicaRegions=extra)
                    yield f"{env},staging={to_staging},prod={to_prod},dr={extra or 'none'}", params


@dataclass
class Outcome:
    denied: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    excluded: set[tuple[str, str]] = field(default_factory=set)
    checked: int = 0


def _requests(rendered: cfnkit.Rendered, logical: str, rtype: str, phase: str, permission: str,
              account: str, outcome: Outcome) -> list[Request]:
    lowered = permission.lower()
    for key in ((rtype, lowered), ("*", lowered)):
        if key in EXCLUDED:
            outcome.excluded.add(key)
            if key not in EXPANDED:
                return []
    actions = EXPANDED.get((rtype, lowered))
    if actions is None:
        action = permproof.iam_action(permission)
        if action is None:
            outcome.unresolved.append(f"{rtype} {permission}: not an IAM action, and not mapped in permproof.API_TO_IAM")
            return []
        actions = (action,)
    found: list[Request] = []
    for action in actions:
        try:
            found += permproof.handler_requests(rendered, logical, phase, action, account)
        except permproof.Unresolved as exc:
            outcome.unresolved.append(f"{rtype} {logical} {phase} {permission}: {exc}")
    return found


def questions(replication: dict[str, Any], bootstrap: dict[str, Any],
              outcome: Outcome) -> Iterator[tuple[str, Question]]:
    """(scenario, question) for every handler request of every scenario, as the execution role; the
    exclusions used and the permissions that could not be placed are noted in `outcome`."""
    for scenario, params in scenarios():
        account = ACCOUNTS[params["Environment"]]
        rendered = cfnkit.render(replication, params, account)
        identity = tuple(permproof.execution_policies(cfnkit.render(bootstrap, {"AdminAccountId": ADMIN}, account)))
        keys = permproof.key_policies(rendered, account)
        for logical, res in rendered.resources.items():
            for phase, permission in permproof.permissions(res["Type"]):
                for request in _requests(rendered, logical, res["Type"], phase, permission, account, outcome):
                    yield scenario, Question(request, identity, key_policy=keys.get(request.resource))


def prove(replication: dict[str, Any], bootstrap: dict[str, Any]) -> Outcome:
    """Evaluate every handler request of every scenario; collect denials and unresolved permissions."""
    outcome = Outcome()
    for scenario, question in questions(replication, bootstrap, outcome):
        outcome.checked += 1
        decision = answer(question)
        if not decision.allowed:
            request = question.request
            outcome.denied.append(f"[{scenario}] {request.why}: {request.action} on {request.resource}: "
                                  f"{decision.reason}")
    return outcome


@lru_cache(maxsize=1)
def shipped() -> Outcome:
    return prove(cfnkit.load("replication.yaml"), cfnkit.load("stackset-execution-role.yaml"))


# ----------------------------------------------------------------------------- the proof


def test_every_handler_call_of_every_resource_is_allowed_for_the_execution_role() -> None:
    outcome = shipped()
    assert outcome.unresolved == []
    assert sorted(set(outcome.denied)) == []
    assert outcome.checked > 5_000


def test_every_exclusion_is_used_and_names_a_handler_permission() -> None:
    outcome = shipped()
    assert sorted(set(EXCLUDED) - outcome.excluded) == []
    for (rtype, permission), reason in EXCLUDED.items():
        known = {p.lower() for _, p in permproof.permissions(rtype)} if rtype != "*" else set()
        assert permission in known and len(reason) > 20, (rtype, permission)


def test_expansions_are_real_actions() -> None:
    for actions in EXPANDED.values():
        assert all(is_action(a) for a in actions)


def test_the_handler_permission_sources_agree() -> None:
    """The reference file is a subset of cfn-lint's bundled schemas for every type both have: the
    proof takes their union, so neither source can hide a permission the other lists."""
    import json

    reference = json.loads(permproof.DATA.read_text())
    for rtype in (k for k in reference if not k.startswith("_")):
        union = permproof.handlers(rtype)
        for phase in permproof.PHASES:
            assert set(reference[rtype].get(phase, [])) <= union.phases[phase], (rtype, phase)


# ----------------------------------------------------------------------------- regression: each defect


def _statement(template: dict[str, Any], resource: str, sid: str) -> dict[str, Any]:
    props = template["Resources"][resource]["Properties"]
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])] or [props["PolicyDocument"]]
    return next(s for d in documents for s in d["Statement"] if s.get("Sid") == sid)


def _drop_actions(resource: str, sid: str, actions: set[str]) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        statement = _statement(template, resource, sid)
        statement["Action"] = [a for a in statement["Action"] if a not in actions]
    return mutate


def _esm_tags_back_under_function_condition(template: dict[str, Any]) -> None:
    """The shape before the fix: the tag actions inside the statement conditioned on lambda:FunctionArn."""
    tags = _statement(template, "ExecutionRole", "StreamMappingTags")
    _statement(template, "ExecutionRole", "StreamMappings")["Action"] += tags["Action"]
    tags["Action"] = ["lambda:ListEventSourceMappings"]
    tags["Resource"] = "*"


def _key_actions_back_under_tag_condition(template: dict[str, Any]) -> None:
    """The shape before the fix: post-create key actions only with aws:ResourceTag/replctl-managed."""
    statement = _statement(template, "ExecutionRoleServicesPolicy", "ManageKeysRightAfterCreate")
    statement["Condition"] = {"StringEquals": {"aws:ResourceTag/replctl-managed": "true"}}


def _drop_statement(resource: str, sid: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        props = template["Resources"][resource]["Properties"]
        for document in [p["PolicyDocument"] for p in props.get("Policies", [])] or [props["PolicyDocument"]]:
            document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
    return mutate


DEFECTS = {
    "1 dashboard tagging": (
        _drop_actions("ExecutionRoleServicesPolicy", "Dashboards",
                      {"cloudwatch:TagResource", "cloudwatch:UntagResource", "cloudwatch:ListTagsForResource"}),
        "Dashboard (AWS::CloudWatch::Dashboard) create: cloudwatch:TagResource on arn:aws:cloudwatch::"),
    "2 event source mapping tagging": (
        _esm_tags_back_under_function_condition,
        "MetadataStreamMapping (AWS::Lambda::EventSourceMapping) create: lambda:TagResource on "
        "arn:aws:lambda:us-east-1:"),
    "5 KMS post-create actions wait for tag propagation": (
        _key_actions_back_under_tag_condition,
        "AlarmTopicKey (AWS::KMS::Key) create: kms:EnableKeyRotation on arn:aws:kms:us-east-1:"),
    "8 bucket update handler calls": (
        _drop_statement("ExecutionRole", "ConfigurationBucketUpdates"),
        "ReplicationBucket (AWS::S3::Bucket) update: s3:PutBucketCORS on arn:aws:s3:::replctl-config-"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_the_proof_fails_when_a_fixed_grant_is_removed(defect: str) -> None:
    mutate, expected = DEFECTS[defect]
    bootstrap = copy.deepcopy(cfnkit.load("stackset-execution-role.yaml"))
    mutate(bootstrap)
    outcome = prove(cfnkit.load("replication.yaml"), bootstrap)
    assert outcome.unresolved == []
    assert any(expected in line for line in outcome.denied), outcome.denied[:5]
