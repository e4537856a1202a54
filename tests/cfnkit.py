"""Render a CloudFormation template the way CloudFormation would, for tests (pure, no AWS).

`render(template, parameters, account_id)` validates the parameters against their constraints,
evaluates the Conditions (Fn::Equals/And/Or/Not/Condition, with Ref/Select/Split/Sub/Join inside),
drops the resources and outputs whose condition is false, and resolves every intrinsic of the
rest to concrete values: Fn::If picks its branch (AWS::NoValue removes the key or list element),
Ref/Fn::GetAtt of resources become the physical names and ARNs CloudFormation would produce from
the names the template sets. Used by the condition and least-privilege tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[1]
CFN = REPO / "cfn"
REGION = "us-east-1"
STACK_NAME = "StackSet-replctl-replication-0a1b2c3d"
KEY_ID = "0a1b2c3d-1111-2222-3333-444455556666"
STREAM_LABEL = "2026-01-01T00:00:00.000"

_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(AssertionError):
    """The template (or the parameters given to it) is not what CloudFormation would accept."""


def load(name: str) -> dict[str, Any]:
    """A template from cfn/ as plain JSON-like data (intrinsics in long form)."""
    template, matches = decode(str(CFN / name))
    if matches:
        raise TemplateError(f"{name} does not parse: {matches}")
    return json.loads(json.dumps(template))


@dataclass(frozen=True)
class Rendered:
    parameters: Mapping[str, str]
    conditions: Mapping[str, bool]
    resources: Mapping[str, dict[str, Any]]  # created resources, properties fully resolved
    outputs: Mapping[str, Any]  # outputs whose condition holds, values resolved

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if r["Type"] == resource_type}

    def properties(self, name: str) -> dict[str, Any]:
        return self.resources[name].get("Properties", {})


def parameter_values(template: dict[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Defaults plus `given`, checked like CloudFormation checks them."""
    specs = template.get("Parameters", {})
    unknown = set(given) - set(specs)
    if unknown:
        raise TemplateError(f"unknown parameters {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in specs.items():
        if name in given:
            value = str(given[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"missing parameter {name}")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise TemplateError(f"{name}={value!r} not in {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise TemplateError(f"{name}={value!r} does not match {spec['AllowedPattern']}")
        if spec.get("Type") == "Number":
            number = float(value)
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"{name}={value} below {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"{name}={value} above {spec['MaxValue']}")
        values[name] = value
    return values


def evaluate_conditions(template: dict[str, Any], parameters: Mapping[str, str], account_id: str) -> dict[str, bool]:
    """Every condition's value for these parameters (a pure evaluator of the condition functions)."""
    definitions = template.get("Conditions", {})
    resolver = _Resolver(template, parameters, account_id, conditions={})
    results: dict[str, bool] = {}
    visiting: set[str] = set()

    def condition(name: str) -> bool:
        if name in results:
            return results[name]
        if name not in definitions:
            raise TemplateError(f"unknown condition {name}")
        if name in visiting:
            raise TemplateError(f"condition cycle through {name}")
        visiting.add(name)
        results[name] = evaluate(definitions[name])
        visiting.discard(name)
        return results[name]

    def evaluate(expression: Any) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise TemplateError(f"not a condition: {expression!r}")
        (function, args), = expression.items()
        if function == "Condition":
            return condition(args)
        if function == "Fn::Equals":
            left, right = (resolver.resolve(a) for a in args)
            return str(left) == str(right)
        if function == "Fn::And":
            if not 2 <= len(args) <= 10:
                raise TemplateError("Fn::And takes 2 to 10 conditions")
            return all(evaluate(a) for a in args)
        if function == "Fn::Or":
            if not 2 <= len(args) <= 10:
                raise TemplateError("Fn::Or takes 2 to 10 conditions")
            return any(evaluate(a) for a in args)
        if function == "Fn::Not":
            (only,) = args
            return not evaluate(only)
        raise TemplateError(f"{function} is not a condition function")

    for name in definitions:
        condition(name)
    return results


def render(template: dict[str, Any], parameters: Mapping[str, str], account_id: str) -> Rendered:
    values = parameter_values(template, parameters)
    conditions = evaluate_conditions(template, values, account_id)
    kept = {
        name: resource
        for name, resource in template.get("Resources", {}).items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }
    resolver = _Resolver({**template, "Resources": kept}, values, account_id, conditions)
    resources = {}
    for name, resource in kept.items():
        rendered = {k: v for k, v in resource.items() if k != "Properties"}
        rendered["Properties"] = resolver.resolve(resource.get("Properties", {}))
        resources[name] = rendered
    outputs = {
        name: resolver.resolve(output["Value"])
        for name, output in template.get("Outputs", {}).items()
        if "Condition" not in output or conditions[output["Condition"]]
    }
    return Rendered(values, conditions, resources, outputs)


class _Resolver:
    def __init__(self, template: dict[str, Any], parameters: Mapping[str, str], account_id: str,
                 conditions: Mapping[str, bool]) -> None:
        self.template = template
        self.parameters = parameters
        self.account = account_id
        self.conditions = conditions
        self.pseudo = {
            "AWS::AccountId": account_id,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{account_id}:stack/{STACK_NAME}/"
                            "11111111-2222-3333-4444-555555555555",
        }

    # -- values ---------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            resolved = [self.resolve(v) for v in value]
            return [v for v in resolved if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, args), = value.items()
            if key == "Ref":
                return self.ref(args)
            if key.startswith("Fn::") or key == "Condition":
                return self.function(key, args)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def function(self, name: str, args: Any) -> Any:
        if name == "Fn::If":
            condition, when_true, when_false = args
            if condition not in self.conditions:
                raise TemplateError(f"Fn::If on unknown condition {condition}")
            return self.resolve(when_true if self.conditions[condition] else when_false)
        if name == "Fn::Sub":
            return self.sub(args)
        if name == "Fn::GetAtt":
            resource, attribute = args if isinstance(args, list) else args.split(".", 1)
            return self.get_att(resource, attribute)
        if name == "Fn::Select":
            index, items = args
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Fn::Split":
            separator, text = args
            return str(self.resolve(text)).split(separator)
        if name == "Fn::Join":
            separator, items = args
            return separator.join(str(i) for i in self.resolve(items))
        raise TemplateError(f"unsupported intrinsic {name}")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.get("Resources", {}):
            return self.physical_id(name)
        raise TemplateError(f"Ref to unknown or uncreated {name}")

    def sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
        local = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    # -- resources ------------------------------------------------------------------------------

    def _props(self, name: str) -> dict[str, Any]:
        resources = self.template.get("Resources", {})
        if name not in resources:
            raise TemplateError(f"reference to unknown or uncreated resource {name}")
        return self.resolve(resources[name].get("Properties", {}))

    def physical_id(self, name: str) -> str:
        rtype = self.template["Resources"][name]["Type"]
        props = self._props(name)
        region, account = REGION, self.account
        by_type = {
            "AWS::IAM::Role": lambda: props.get("RoleName", name),
            "AWS::IAM::ManagedPolicy": lambda: f"arn:aws:iam::{account}:policy{props.get('Path', '/')}{props.get('ManagedPolicyName', name)}",
            # Ref of an OIDC provider is its ARN (CloudFormation template reference, AWS::IAM::OIDCProvider).
            "AWS::IAM::OIDCProvider": lambda: f"arn:aws:iam::{account}:oidc-provider/{props['Url'].removeprefix('https://')}",
            "AWS::S3::Bucket": lambda: props.get("BucketName", name.lower()),
            "AWS::SQS::Queue": lambda: f"https://sqs.{region}.amazonaws.com/{account}/{props.get('QueueName', name)}",
            "AWS::SNS::Topic": lambda: f"arn:aws:sns:{region}:{account}:{props.get('TopicName', name)}",
            "AWS::KMS::Key": lambda: KEY_ID,
            "AWS::Lambda::Function": lambda: props.get("FunctionName", name),
            "AWS::Logs::LogGroup": lambda: props.get("LogGroupName", name),
            "AWS::Events::Rule": lambda: props.get("Name", name),
            "AWS::CloudWatch::Dashboard": lambda: props.get("DashboardName", name),
            "AWS::DynamoDB::GlobalTable": lambda: props.get("TableName", name),
            "AWS::DynamoDB::Table": lambda: props.get("TableName", name),
        }
        return by_type[rtype]() if rtype in by_type else name

    def get_att(self, name: str, attribute: str) -> str:
        rtype = self.template["Resources"][name]["Type"]
        props = self._props(name)
        region, account = REGION, self.account
        table = props.get("TableName", name)
        arns = {
            ("AWS::IAM::Role", "Arn"): lambda: f"arn:aws:iam::{account}:role{props.get('Path', '/')}{props.get('RoleName', name)}",
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:aws:s3:::{self.physical_id(name)}",
            ("AWS::SQS::Queue", "Arn"): lambda: f"arn:aws:sqs:{region}:{account}:{props.get('QueueName', name)}",
            ("AWS::SQS::Queue", "QueueName"): lambda: props.get("QueueName", name),
            ("AWS::Lambda::Function", "Arn"): lambda: f"arn:aws:lambda:{region}:{account}:function:{props.get('FunctionName', name)}",
            ("AWS::Events::Rule", "Arn"): lambda: f"arn:aws:events:{region}:{account}:rule/{props.get('Name', name)}",
            ("AWS::Logs::LogGroup", "Arn"): lambda: f"arn:aws:logs:{region}:{account}:log-group:{props.get('LogGroupName', name)}:*",
            ("AWS::KMS::Key", "Arn"): lambda: f"arn:aws:kms:{region}:{account}:key/{KEY_ID}",
            ("AWS::DynamoDB::GlobalTable", "Arn"): lambda: f"arn:aws:dynamodb:{region}:{account}:table/{table}",
            ("AWS::DynamoDB::GlobalTable", "StreamArn"): lambda: f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{STREAM_LABEL}",
            ("AWS::DynamoDB::Table", "StreamArn"): lambda: f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{STREAM_LABEL}",
        }
        if (rtype, attribute) not in arns:
            raise TemplateError(f"GetAtt {name}.{attribute} ({rtype}) not modelled")
        return arns[(rtype, attribute)]()


ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
ADMIN = "123456789012"


def instance_parameters(env: str, to_staging: bool, to_prod: bool, **extra: str) -> dict[str, str]:
    """The parameters replctl gives one stack instance of replication.yaml (test values)."""
    return {
        "Environment": env,
        "AccountIdDev": ACCOUNTS["dev"],
        "AccountIdStaging": ACCOUNTS["staging"],
        "AccountIdProd": ACCOUNTS["prod"],
        "ArtifactBucketName": f"replctl-artifacts-{ADMIN}-us-east-1",
        "ReplicationMonitorCodeKey": "replctl/replication_monitor-0123.zip",
        "ConfigValidatorCodeKey": "replctl/config_validator-0123.zip",
        "StreamProcessorCodeKey": "replctl/stream_processor-0123.zip",
        "ReplicateToStaging": str(to_staging).lower(),
        "ReplicateToProd": str(to_prod).lower(),
        **extra,
    }
