"""CloudFormation YAML read into plain values, and the parts of a template evaluable offline.

Short-form intrinsics (`!Ref`, `!Sub`, ...) become their long form; `Evaluator` resolves
Conditions and Ref/Sub/If/Join/... for concrete parameters.

The CLI needs this without cfn-lint at run time: to read a template's parameters, to adapt it
for the sandbox, and to resolve alarm definitions the emulator skips.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

_TAGS = {
    "Ref": "Ref", "Condition": "Condition", "Sub": "Fn::Sub", "GetAtt": "Fn::GetAtt", "If": "Fn::If",
    "Equals": "Fn::Equals", "And": "Fn::And", "Or": "Fn::Or", "Not": "Fn::Not", "Join": "Fn::Join",
    "Select": "Fn::Select", "Split": "Fn::Split", "FindInMap": "Fn::FindInMap", "Base64": "Fn::Base64",
    "ImportValue": "Fn::ImportValue", "GetAZs": "Fn::GetAZs", "Cidr": "Fn::Cidr", "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString", "Transform": "Fn::Transform",
}


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = _TAGS.get(suffix)
    if key is None:
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{suffix}", node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_Loader.add_multi_constructor("!", _construct)
# CloudFormation reads YAML 1.1 booleans as strings in many places; keep them as YAML does.


def load(text: str) -> dict[str, Any]:
    """Parse a CloudFormation template (YAML or JSON) into long-form values."""
    doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(doc, dict):
        raise ValueError("a template must be a mapping")
    return doc


def dump_json(template: Mapping[str, Any]) -> str:
    return json.dumps(template, indent=1, sort_keys=False, default=str)


NO_VALUE = object()


class Evaluator:
    """Evaluates Conditions and intrinsics for one stack: parameters, pseudo parameters, and
    the physical ids of its resources (from DescribeStackResources) when known."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str], *, account: str,
                 region: str, stack_name: str = "stack", physical: Mapping[str, str] | None = None,
                 attributes: Mapping[tuple[str, str], str] | None = None) -> None:
        self.template = template
        self.account, self.region, self.stack_name = account, region, stack_name
        self.physical = dict(physical or {})
        self.attributes = dict(attributes or {})
        self.params: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            value = parameters.get(name, (spec or {}).get("Default"))
            if value is None:
                raise KeyError(f"parameter {name} has no value")
            if (spec or {}).get("Type") == "CommaDelimitedList":
                value = [v.strip() for v in str(value).split(",")] if str(value) else []
            self.params[name] = value if isinstance(value, list) else str(value)
        self._conditions: dict[str, bool] = {}

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/0",
            "AWS::NoValue": NO_VALUE, "AWS::NotificationARNs": [],
        }[name]

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            expr = (self.template.get("Conditions") or {})[name]
            self._conditions[name] = bool(self.value(expr))
        return self._conditions[name]

    def active(self, resource: Mapping[str, Any]) -> bool:
        cond = resource.get("Condition")
        return True if cond is None else self.condition(cond)

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            out = [self.value(x) for x in v]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            match k:
                case "Ref":
                    if arg in self.params:
                        return self.params[arg]
                    if arg.startswith("AWS::"):
                        return self.pseudo(arg)
                    return self.physical.get(arg, arg)
                case "Condition":
                    return self.condition(arg)
                case "Fn::Equals":
                    a, b = (self.value(x) for x in arg)
                    return str(a) == str(b)
                case "Fn::And":
                    return all(self.value(x) for x in arg)
                case "Fn::Or":
                    return any(self.value(x) for x in arg)
                case "Fn::Not":
                    return not self.value(arg[0])
                case "Fn::If":
                    cond, yes, no = arg
                    return self.value(yes if self.condition(cond) else no)
                case "Fn::Join":
                    sep, items = arg
                    return str(sep).join(str(x) for x in self.value(items))
                case "Fn::Select":
                    idx, items = arg
                    return self.value(items)[int(self.value(idx))]
                case "Fn::Split":
                    sep, s = arg
                    return str(self.value(s)).split(sep)
                case "Fn::Sub":
                    return self._sub(arg)
                case "Fn::GetAtt":
                    logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                    return self.attributes.get((logical, attr), f"{logical}.{attr}")
                case "Fn::FindInMap":
                    m, k1, k2 = (self.value(x) for x in arg)
                    return self.template["Mappings"][m][k1][k2]
                case "Fn::ToJsonString":
                    return json.dumps(self.value(arg))
        return {k: x for k, x in ((k, self.value(x)) for k, x in v.items()) if x is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, extra = arg[0], {k: self.value(x) for k, x in arg[1].items()}
        else:
            text, extra = arg, {}

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name and name.split(".", 1)[0] not in self.params:
                logical, attr = name.split(".", 1)
                return str(self.attributes.get((logical, attr), name))
            return str(self.value({"Ref": name}))

        return re.sub(r"\$\{([^}]+)\}", repl, text)
