"""The template as the sandbox uploads it: the substitutions moto needs, each listed (see the package).

`cfn/replication.yaml` stays written for AWS; `adapt` returns the adapted text (JSON long form)
with one line per substitution, and `adapt_template_for_sandbox` is the `template_transform`
`deploy --sandbox` passes to planning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from replctl import cfnyaml


@dataclass(frozen=True)
class Adapted:
    text: str
    substitutions: tuple[str, ...]


def adapt_template_for_sandbox(text: str) -> str:
    """The template as the sandbox uploads it (see the module docstring for each substitution)."""
    return adapt(text).text


def adapt(text: str) -> Adapted:
    template = cfnyaml.load(text)
    subs: list[str] = []
    resources: dict[str, Any] = template.get("Resources") or {}
    for logical, res in list(resources.items()):
        rtype = res.get("Type")
        props = res.get("Properties") or {}
        if rtype == "AWS::DynamoDB::GlobalTable":
            table = {k: v for k, v in props.items() if k in (
                "TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "StreamSpecification",
                "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TimeToLiveSpecification")}
            if "SSESpecification" in props:
                table["SSESpecification"] = {"SSEEnabled": props["SSESpecification"].get("SSEEnabled", True)}
            home = _home_replica(props.get("Replicas"))
            for key in ("PointInTimeRecoverySpecification", "DeletionProtectionEnabled"):
                if key in home:
                    table[key] = home[key]
            res["Type"] = "AWS::DynamoDB::Table"
            res["Properties"] = table
            subs.append(f"{logical}: AWS::DynamoDB::GlobalTable -> AWS::DynamoDB::Table (replicas dropped)")
        elif rtype == "AWS::Lambda::EventSourceMapping":
            del resources[logical]
            _drop_references(template, logical)
            subs.append(f"{logical}: AWS::Lambda::EventSourceMapping removed (played by `sandbox invoke`)")
        elif rtype == "AWS::KMS::Key":
            if isinstance(props.get("KeyPolicy"), dict):
                props["KeyPolicy"] = {"Fn::ToJsonString": props["KeyPolicy"]} if _has_intrinsics(
                    props["KeyPolicy"]) else json.dumps(props["KeyPolicy"])
                subs.append(f"{logical}: KeyPolicy passed as a JSON string")
            if isinstance(props.get("Tags"), list):
                props["Tags"] = [{"TagKey": t.get("Key"), "TagValue": t.get("Value")} for t in props["Tags"]]
                subs.append(f"{logical}: Tags given as TagKey/TagValue (moto reads the API's tag shape)")
    return Adapted(cfnyaml.dump_json(template), tuple(subs))


def _home_replica(replicas: Any) -> dict[str, Any]:
    """The replica in the stack's own region (the last branch of an Fn::If list holds the single one)."""
    if isinstance(replicas, dict) and "Fn::If" in replicas:
        return _home_replica(replicas["Fn::If"][2])
    for replica in replicas or []:
        if isinstance(replica, dict) and replica.get("Region") == {"Ref": "AWS::Region"}:
            return replica
    return {}


def _has_intrinsics(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k == "Ref" or k.startswith("Fn::") or _has_intrinsics(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_intrinsics(v) for v in value)
    return False


def _refers_to(value: Any, logical: str) -> bool:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and v == logical:
                return True
            if k == "Fn::GetAtt" and (v[0] if isinstance(v, list) else str(v).split(".")[0]) == logical:
                return True
            if k == "Fn::Sub" and ("${" + logical) in json.dumps(v):
                return True
            if _refers_to(v, logical):
                return True
    elif isinstance(value, list):
        return any(_refers_to(v, logical) for v in value)
    return False


def _drop_references(template: dict[str, Any], logical: str) -> None:
    for res in (template.get("Resources") or {}).values():
        deps = res.get("DependsOn")
        if deps == logical:
            del res["DependsOn"]
        elif isinstance(deps, list) and logical in deps:
            res["DependsOn"] = [d for d in deps if d != logical]
    outputs = template.get("Outputs") or {}
    for name in [n for n, o in outputs.items() if _refers_to(o, logical)]:
        del outputs[name]
