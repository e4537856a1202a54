"""Test helpers that make moto's StackSets answer the way AWS does, for what replctl relies on.

moto 5.2.5 differs from AWS in ways that matter to a planner that compares what is deployed
with what it wants (reference/moto-notes.md §1):

- `ParameterOverrides` *replace* the stack set's parameters instead of merging with them
  ("Missing parameter ..."). The hook fills in the stack set's other parameters before
  Create/UpdateStackInstances is sent, so moto deploys what AWS would.
- Because of that, moto would then report the filled-in list as the instance's overrides. AWS
  reports only the parameters actually overridden; the hook remembers them and trims
  DescribeStackInstance's answer to them.
- An UpdateStackSet that names instances overwrites their overrides with the stack set's
  parameters; AWS keeps them ("During stack set updates, any parameters overridden for a stack
  instance aren't updated, but retain their overridden value"), so the hook puts them back.
- `ManagedExecution` is always reported `{"Active": False}`; the hook echoes the value last set.

The hooks' own calls go through a plain client (not the factory's), so recorded call counts are
what replctl itself sends. moto still reports every instance CURRENT and never updates a
deployed stack: tests of statuses and propagation use the sandbox's emulation
(tests/functional/sandbox/test_stacksets.py) or the scripted fake.

The product code uses AWS's semantics only; these hooks live in tests (and are attached to the
admin CloudFormation client through the factory's client hook).

Also here: `adapt_for_moto`, the one change the real template needs to deploy in moto
(AWS::DynamoDB::GlobalTable → AWS::DynamoDB::Table), passed as the planner's
`template_transform`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from replctl.aws import Call, SessionFactory
from replctl.sandbox.adapt.stacksets import without_denies
from replctl.sandbox.adapt.template import adapt_template_for_sandbox


class AwsSemantics:
    """botocore hooks on one admin CloudFormation client (see the module docstring)."""

    def __init__(self, plain: Callable[[], Any] | None = None) -> None:
        self.overridden: dict[tuple[str, str, str], list[str]] = {}  # (stack set, account, region) -> keys
        self.managed: dict[str, bool] = {}
        self._plain = plain or (lambda: boto3.client("cloudformation", region_name="us-east-1"))

    def install(self, cfn: Any) -> None:
        events = cfn.meta.events
        for op in ("CreateStackInstances", "UpdateStackInstances"):
            events.register(f"before-parameter-build.cloudformation.{op}", self._merge)
        for op in ("CreateStackSet", "UpdateStackSet"):
            events.register(f"before-parameter-build.cloudformation.{op}", self._remember_managed)
        events.register("before-parameter-build.cloudformation.UpdateStackSet", self._remember_overrides)
        events.register("after-call.cloudformation.UpdateStackSet", self._restore_overrides)
        # after-call handlers do not receive the request; keep it in the request context.
        for op in ("DescribeStackInstance", "DescribeStackSet"):
            events.register(f"before-parameter-build.cloudformation.{op}", self._keep_params)
        events.register("after-call.cloudformation.DescribeStackInstance", self._trim)
        events.register("after-call.cloudformation.DescribeStackSet", self._echo_managed)

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["request_params"] = dict(params)

    def _merge(self, params: dict[str, Any], **_: Any) -> None:
        name = params["StackSetName"]
        given = {p["ParameterKey"]: p for p in params.get("ParameterOverrides", [])}
        for account in params.get("Accounts", []):
            for region in params.get("Regions", []):
                self.overridden[(name, account, region)] = list(given)
        stack_set = self._plain().describe_stack_set(StackSetName=name)["StackSet"]
        merged = [given.get(p["ParameterKey"], {"ParameterKey": p["ParameterKey"],
                                                 "ParameterValue": p.get("ParameterValue", "")})
                  for p in stack_set.get("Parameters", [])]
        merged += [p for k, p in given.items() if k not in {m["ParameterKey"] for m in merged}]
        params["ParameterOverrides"] = merged

    def _remember_overrides(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        plain, name, kept = self._plain(), params["StackSetName"], {}
        for account in params.get("Accounts", []):
            for region in params.get("Regions", []):
                inst = plain.describe_stack_instance(StackSetName=name, StackInstanceAccount=account,
                                                     StackInstanceRegion=region)["StackInstance"]
                kept[(account, region)] = inst.get("ParameterOverrides") or []
        context["kept_overrides"] = (name, kept)

    def _restore_overrides(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error") or "kept_overrides" not in context:
            return
        name, kept = context["kept_overrides"]
        for (account, region), overrides in kept.items():
            self._plain().update_stack_instances(StackSetName=name, Accounts=[account], Regions=[region],
                                                 ParameterOverrides=overrides)  # metadata only in moto

    def _trim(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params = context.get("request_params", {})
        instance = parsed.get("StackInstance")
        if not instance:
            return
        keys = self.overridden.get((params["StackSetName"], params["StackInstanceAccount"],
                                    params["StackInstanceRegion"]))
        if keys is not None:
            instance["ParameterOverrides"] = [p for p in instance.get("ParameterOverrides", [])
                                              if p["ParameterKey"] in keys]

    def _remember_managed(self, params: dict[str, Any], **_: Any) -> None:
        if "ManagedExecution" in params:
            self.managed[params["StackSetName"]] = bool(params["ManagedExecution"].get("Active"))

    def _echo_managed(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params = context.get("request_params", {})
        stack_set = parsed.get("StackSet")
        if stack_set and params.get("StackSetName") in self.managed:
            stack_set["ManagedExecution"] = {"Active": self.managed[params["StackSetName"]]}


@dataclass
class Recorder:
    """Every API call (through the factory listener) and the StackSet calls' targets, in order."""

    calls: list[Call] = field(default_factory=list)
    stackset_calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    semantics: AwsSemantics = field(default_factory=AwsSemantics)
    #: bucket policies as replctl sent them (before the emulator's copy loses its Deny statements)
    bucket_policies: list[dict[str, Any]] = field(default_factory=list)

    def mutating(self, since: int = 0) -> list[Call]:
        return [c for c in self.calls[since:] if c.mutating]

    def client_hook(self, service: str, account: str | None, client: Any) -> None:
        if service == "s3":
            def keep(params: dict[str, Any], **_: Any) -> None:
                self.bucket_policies.append(json.loads(params["Policy"]))

            client.meta.events.register("provide-client-params.s3.PutBucketPolicy", keep)
            client.meta.events.register("provide-client-params.s3.PutBucketPolicy", without_denies)
        if service != "cloudformation" or account is not None:
            return
        self.semantics.install(client)

        def record(params: dict[str, Any], model: Any = None, **_: Any) -> None:
            self.stackset_calls.append((model.name, tuple(params.get("Accounts", []))))

        for op in ("CreateStackInstances", "UpdateStackInstances", "UpdateStackSet"):
            client.meta.events.register(f"before-parameter-build.cloudformation.{op}", record)


def recording_factory(recorder: Recorder) -> type[SessionFactory]:
    """A SessionFactory subclass that reports to `recorder`; monkeypatch it over replctl.aws's."""

    class RecordingFactory(SessionFactory):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.add_listener(recorder.calls.append)
            self.add_client_hook(recorder.client_hook)

    return RecordingFactory


# --------------------------------------------------------------------------- the real template


def adapt_for_moto(text: str) -> str:
    """The template as moto 5.2.5 can deploy it: the sandbox's adapter, the one place that knows
    moto's gaps (replctl.sandbox.adapt; each substitution is listed and tested there)."""
    return adapt_template_for_sandbox(text)
