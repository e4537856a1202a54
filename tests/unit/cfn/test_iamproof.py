"""The permission proof's evaluator follows IAM's documented evaluation rules (tests/iamproof.py).

Each case is one sentence of the IAM User Guide ("Policy evaluation logic", "Condition operators",
"Permissions boundaries") or the KMS Developer Guide ("Key policies"), as quoted in iamproof.
"""

from __future__ import annotations

import pytest

from tests.iamproof import Policy, Request, arn_like, carried_keys, cross_account_trust, decide, glob

ROLE = "arn:aws:iam::111111111111:role/replctl/fn"
TABLE = "arn:aws:dynamodb:us-east-1:111111111111:table/meta"


def policy(*statements: dict, kind: str = "identity") -> Policy:
    return Policy("p", tuple(statements), kind)


def allow(action: str = "dynamodb:GetItem", resource: str = TABLE, **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def request(action: str = "dynamodb:GetItem", resource: str = TABLE, **context: object) -> Request:
    return Request(action, resource, ROLE, context, "test")


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}
    assert decide(request(), [policy(allow(), deny)]).allowed is False


def test_nothing_is_allowed_without_an_allow() -> None:
    assert decide(request(), [policy()]).allowed is False


def test_actions_ignore_case_and_resources_do_not() -> None:
    assert decide(request(), [policy(allow("DynamoDB:getitem"))]).allowed
    assert not decide(request(), [policy(allow(resource=TABLE.upper()))]).allowed
    assert glob("arn:aws:s3:::b-*", "arn:aws:s3:::b-1/x") and not glob("arn:aws:s3:::b-?", "arn:aws:s3:::b-12")


def test_a_statement_on_an_arn_does_not_match_a_request_on_star() -> None:
    assert not decide(request("dynamodb:ListStreams", "*"), [policy(allow("dynamodb:ListStreams", TABLE))]).allowed


@pytest.mark.parametrize(("operator", "allowed"), [
    ("StringEquals", False), ("StringLike", False), ("ArnLike", False),  # absent key: the condition is false
    ("StringNotEquals", True), ("ArnNotLike", True),  # negated: "the condition is true"
    ("StringEqualsIfExists", True), ("ForAllValues:StringLike", True), ("ForAnyValue:StringLike", False),
])
def test_a_condition_on_a_key_the_request_lacks(operator: str, allowed: bool) -> None:
    # The set operators on a multivalued key, the others on a single-valued one (the only documented uses).
    key = "dynamodb:LeadingKeys" if operator.startswith("For") else "dynamodb:Select"
    statement = allow(Condition={operator: {key: "x*"}})
    assert decide(request(), [policy(statement)]).allowed is allowed


def test_for_all_values_checks_every_value() -> None:
    statement = allow(Condition={"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": ["LOCAL#*"]}})
    assert decide(request(**{"dynamodb:LeadingKeys": ("HEARTBEAT",)}), [policy(statement)]).allowed
    assert not decide(request(**{"dynamodb:LeadingKeys": ("LOCAL#LAG",)}), [policy(statement)]).allowed


def test_arn_like_compares_each_component_on_its_own() -> None:
    assert arn_like("arn:aws:lambda:*:111111111111:function:replctl-*", "arn:aws:lambda:us-east-1:111111111111:function:replctl-x")
    assert not arn_like("arn:aws:lambda:*:111111111111:function:*", "arn:aws:lambda:us-east-1:222222222222:function:x")


def test_a_request_cannot_carry_a_key_its_action_never_carries() -> None:
    """The event source mapping defect: ListTags/TagResource carry no lambda:FunctionArn."""
    assert "lambda:functionarn" in carried_keys("lambda:UpdateEventSourceMapping")
    assert "lambda:functionarn" not in carried_keys("lambda:TagResource")
    with pytest.raises(ValueError, match="never carries condition key lambda:FunctionArn"):
        Request("lambda:TagResource", "arn:aws:lambda:us-east-1:1:event-source-mapping:x", ROLE,
                {"lambda:FunctionArn": "arn:aws:lambda:us-east-1:1:function:f"}, "test")


def test_a_permissions_boundary_must_allow_too() -> None:
    granted = [policy(allow())]
    assert decide(request(), granted, boundary=[policy(allow(), kind="boundary")]).allowed
    assert not decide(request(), granted, boundary=[policy(allow("dynamodb:PutItem"), kind="boundary")]).allowed


KEY = "arn:aws:kms:us-east-1:111111111111:key/k"


def test_a_key_policy_allows_by_naming_the_role_or_delegates_to_iam() -> None:
    direct = policy({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:DescribeKey", "Resource": "*"},
                    kind="key")
    root = policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                   "Action": "kms:DescribeKey", "Resource": "*"}, kind="key")
    ask = request("kms:DescribeKey", KEY)
    assert decide(ask, [], key_policy=direct).allowed
    assert not decide(ask, [], key_policy=root).allowed  # delegation needs an IAM allow
    assert decide(ask, [policy(allow("kms:DescribeKey", KEY))], key_policy=root).allowed
    assert not decide(ask, [policy(allow("kms:DescribeKey", KEY))], key_policy=policy(kind="key")).allowed


def test_a_cross_account_trust_needs_its_conditions() -> None:
    trust = policy({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "e"}, "ArnEquals": {"aws:PrincipalArn": ROLE}}},
                   kind="trust")
    agent = "arn:aws:iam::222222222222:role/replctl/agent"
    assert cross_account_trust(request("sts:AssumeRole", agent, **{"sts:ExternalId": "e"}), trust).allowed
    assert not cross_account_trust(request("sts:AssumeRole", agent), trust).allowed


def test_a_kms_key_without_a_known_key_policy_is_never_allowed_by_iam_alone() -> None:
    """"Every KMS key must have exactly one key policy ... Without permission from the key policy, IAM
    policies that allow permissions have no effect" (KMS Developer Guide, "Key policies in AWS KMS")."""
    ask = request("kms:DescribeKey", KEY)
    assert not decide(ask, [policy(allow("kms:DescribeKey", KEY))]).allowed
    alias = "arn:aws:kms:us-east-1:111111111111:alias/a"  # an alias has no key policy: IAM alone decides
    assert decide(request("kms:CreateAlias", alias), [policy(allow("kms:CreateAlias", alias))]).allowed


def test_a_multivalued_key_without_a_set_operator_is_refused_not_guessed() -> None:
    """"Multivalued context keys require a condition set operator" (IAM User Guide): the shape the
    stream processor's events:source grant once had, which the evaluator used to allow."""
    bus = "arn:aws:events:us-east-1:111111111111:event-bus/default"
    ask = request("events:PutEvents", bus, **{"events:source": "replctl.metadata"})
    single = allow("events:PutEvents", bus, Condition={"StringEquals": {"events:source": "replctl.metadata"}})
    with pytest.raises(ValueError, match="multivalued events:source"):
        decide(ask, [policy(single)])
    with_set = allow("events:PutEvents", bus, Condition={"ForAllValues:StringEquals": {"events:source": "replctl.metadata"},
                                                         "Null": {"events:source": "false"}})
    assert decide(ask, [policy(with_set)]).allowed
