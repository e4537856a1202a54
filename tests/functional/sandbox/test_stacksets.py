"""The sandbox's StackSet emulation answers as AWS documents, one rule per test (moto in-process).

moto keeps StackSet metadata only (reference/moto-notes.md §1): it reports every instance
CURRENT, never updates a deployed stack, and an UpdateStackSet that names instances overwrites
their overrides with the stack set's parameters. `replctl.sandbox.adapt.StackSetEmulation`
corrects that through botocore hooks on the admin CloudFormation client; each test below names
the API reference sentence the emulation quotes where it implements it.

GIVEN moto with a stack set deployed to dev, staging and prod (each overriding Environment),
and the emulation installed on the admin client, WHEN a StackSet API is called, THEN the
instances' overrides, statuses and deployed stacks are what AWS would show.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from replctl.sandbox.adapt.stacksets import StackSetEmulation, StatusBook
from tests.conftest import DEV, PROD, STAGING

REGION = "us-east-1"
NAME = "ss"
ACCOUNTS = (DEV, STAGING, PROD)
T1 = """\
Parameters:
  Environment: {Type: String}
  Colour: {Type: String, Default: blue}
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties: {Name: !Sub "/app/${Environment}/colour", Type: String, Value: !Ref Colour}
"""
T2 = T1.replace("Value: !Ref Colour}", "Value: !Sub 'v2-${Colour}'}")
BROKEN = T1.replace("Resources:", "  Size: {Type: String}\nResources:")  # a parameter nobody gives a value


def pairs(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def session(account: str) -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/exec", RoleSessionName="test")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


class Sandbox:
    """The admin client with the emulation installed, and what each account's stack holds."""

    def __init__(self, book: StatusBook) -> None:
        self.cfn = boto3.client("cloudformation", region_name=REGION)
        self.emulation = StackSetEmulation(lambda account, region: session(account),
                                           lambda client: boto3.client("cloudformation", region_name=REGION), book)
        self.emulation.install(self.cfn)

    def overrides(self, account: str) -> dict[str, str]:
        inst = self.cfn.describe_stack_instance(StackSetName=NAME, StackInstanceAccount=account,
                                                StackInstanceRegion=REGION)["StackInstance"]
        return {p["ParameterKey"]: p["ParameterValue"] for p in inst["ParameterOverrides"]}

    def status(self) -> dict[str, str]:
        rows = self.cfn.list_stack_instances(StackSetName=NAME)["Summaries"]
        return {r["Account"]: f"{r['Status']}/{r['StackInstanceStatus']['DetailedStatus']}" for r in rows}

    def stack(self, account: str) -> dict[str, str]:
        """The deployed stack's parameters and the value its template wrote."""
        (stack,) = session(account).client("cloudformation").describe_stacks()["Stacks"]
        values = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        ssm = session(account).client("ssm").get_parameter(Name=f"/app/{values['Environment']}/colour")
        return {**values, "written": ssm["Parameter"]["Value"]}


@pytest.fixture()
def sandbox() -> Iterator[Sandbox]:
    with mock_aws():
        box = Sandbox(StatusBook())
        box.cfn.create_stack_set(StackSetName=NAME, TemplateBody=T1, Parameters=pairs(Environment="dev", Colour="blue"))
        for account, env in zip(ACCOUNTS, ("dev", "staging", "prod")):
            box.cfn.create_stack_instances(StackSetName=NAME, Accounts=[account], Regions=[REGION],
                                           ParameterOverrides=pairs(Environment=env))
        yield box


def test_create_merges_overrides_and_reports_only_those_sent(sandbox: Sandbox) -> None:
    """CreateStackInstances: overrides apply on top of the stack set's values (moto would replace them)."""
    assert sandbox.overrides(STAGING) == {"Environment": "staging"}
    assert sandbox.stack(STAGING) == {"Environment": "staging", "Colour": "blue", "written": "blue"}
    assert sandbox.status() == {a: "CURRENT/SUCCEEDED" for a in ACCOUNTS}


def test_a_stack_set_update_keeps_every_instances_overrides(sandbox: Sandbox) -> None:
    """UpdateStackInstances: "During stack set updates, any parameters overridden for a stack
    instance aren't updated, but retain their overridden value." moto had overwritten dev's."""
    sandbox.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T1, Parameters=pairs(Environment="dev", Colour="red"),
                                 Accounts=[DEV], Regions=[REGION])
    assert [sandbox.overrides(a) for a in ACCOUNTS] == [{"Environment": e} for e in ("dev", "staging", "prod")]
    assert sandbox.stack(DEV) == {"Environment": "dev", "Colour": "red", "written": "red"}


def test_a_template_update_marks_every_instance_outdated_and_deploys_the_named(sandbox: Sandbox) -> None:
    """UpdateStackSet, Accounts: "If the stack set update includes changes to the template ..., or
    the Parameters property, CloudFormation marks all stack instances with a status of OUTDATED
    prior to updating the stack instances in the specified accounts"."""
    sandbox.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Parameters=pairs(Environment="dev", Colour="blue"),
                                 Accounts=[DEV], Regions=[REGION])
    assert sandbox.status() == {DEV: "CURRENT/SUCCEEDED", STAGING: "OUTDATED/SUCCEEDED", PROD: "OUTDATED/SUCCEEDED"}
    inst = sandbox.cfn.describe_stack_instance(StackSetName=NAME, StackInstanceAccount=PROD,
                                               StackInstanceRegion=REGION)["StackInstance"]
    assert inst["Status"] == "OUTDATED"
    assert sandbox.stack(DEV)["written"] == "v2-blue" and sandbox.stack(STAGING)["written"] == "blue"


def test_an_update_without_template_or_parameters_leaves_the_others_alone(sandbox: Sandbox) -> None:
    """"If the stack set update does not include changes to the template or parameters, ...
    leaving all other stack instances with their existing stack instance status.\""""
    sandbox.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Accounts=[DEV], Regions=[REGION])
    sandbox.cfn.update_stack_set(StackSetName=NAME, UsePreviousTemplate=True, Accounts=[STAGING], Regions=[REGION])
    assert sandbox.status() == {DEV: "CURRENT/SUCCEEDED", STAGING: "CURRENT/SUCCEEDED", PROD: "OUTDATED/SUCCEEDED"}


def test_an_update_without_accounts_reaches_every_instance(sandbox: Sandbox) -> None:
    """"To update all the stack instances associated with this stack set, don't specify the
    Accounts or Regions properties.\" (moto updates none)"""
    sandbox.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Parameters=pairs(Environment="dev", Colour="red"))
    assert sandbox.status() == {a: "CURRENT/SUCCEEDED" for a in ACCOUNTS}
    assert [sandbox.stack(a)["written"] for a in ACCOUNTS] == ["v2-red"] * 3


def test_update_stack_instances_brings_the_named_forward_and_leaves_the_rest(sandbox: Sandbox) -> None:
    """UpdateStackInstances deploys the stack set's current template to the named instances only."""
    sandbox.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Parameters=pairs(Environment="dev", Colour="blue"),
                                 Accounts=[DEV], Regions=[REGION])
    sandbox.cfn.update_stack_instances(StackSetName=NAME, Accounts=[STAGING], Regions=[REGION],
                                       ParameterOverrides=pairs(Environment="staging"))
    assert sandbox.status() == {DEV: "CURRENT/SUCCEEDED", STAGING: "CURRENT/SUCCEEDED", PROD: "OUTDATED/SUCCEEDED"}
    assert sandbox.stack(STAGING) == {"Environment": "staging", "Colour": "blue", "written": "v2-blue"}


def test_the_override_list_semantics(sandbox: Sandbox) -> None:
    """ParameterOverrides: a listed value overrides; "UsePreviousValue" keeps; a parameter left
    out of a list takes the stack set's value; no list at all keeps every override."""
    cfn = sandbox.cfn
    cfn.update_stack_instances(StackSetName=NAME, Accounts=[DEV], Regions=[REGION],
                               ParameterOverrides=pairs(Environment="dev", Colour="green"))
    assert sandbox.stack(DEV)["written"] == "green"
    cfn.update_stack_instances(StackSetName=NAME, Accounts=[DEV], Regions=[REGION],
                               ParameterOverrides=[{"ParameterKey": "Environment", "UsePreviousValue": True}])
    assert sandbox.overrides(DEV) == {"Environment": "dev"} and sandbox.stack(DEV)["written"] == "blue"
    cfn.update_stack_instances(StackSetName=NAME, Accounts=[DEV], Regions=[REGION])
    assert sandbox.overrides(DEV) == {"Environment": "dev"}


def test_only_parameters_the_stack_set_has_can_be_overridden(sandbox: Sandbox) -> None:
    """"You can only override the parameter values that are specified in the stack set" (moto takes any)."""
    with pytest.raises(ClientError) as info:
        sandbox.cfn.update_stack_instances(StackSetName=NAME, Accounts=[DEV], Regions=[REGION],
                                           ParameterOverrides=pairs(Environment="dev", Size="l"))
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_a_stack_update_that_fails_leaves_the_instance_failed(sandbox: Sandbox) -> None:
    """The operation fails in the account: the instance is OUTDATED/FAILED with the stack's error."""
    sandbox.cfn.update_stack_set(StackSetName=NAME, TemplateBody=BROKEN, Accounts=[DEV], Regions=[REGION])
    row = next(r for r in sandbox.cfn.list_stack_instances(StackSetName=NAME)["Summaries"] if r["Account"] == DEV)
    assert (row["Status"], row["StackInstanceStatus"]["DetailedStatus"]) == ("OUTDATED", "FAILED")
    assert "Missing parameter Size" in row["StatusReason"]


def test_an_override_the_template_does_not_declare_fails_the_stack(sandbox: Sandbox) -> None:
    """A stack is validated against its template: "Parameters: [X] do not exist in the template"."""
    sandbox.cfn.update_stack_instances(StackSetName=NAME, Accounts=[DEV], Regions=[REGION],
                                       ParameterOverrides=pairs(Environment="dev", Colour="green"))
    without = T1.replace("  Colour: {Type: String, Default: blue}\n", "").replace("!Ref Colour", "fixed")
    sandbox.cfn.update_stack_set(StackSetName=NAME, TemplateBody=without, Parameters=pairs(Environment="dev"),
                                 Accounts=[DEV], Regions=[REGION])
    row = next(r for r in sandbox.cfn.list_stack_instances(StackSetName=NAME)["Summaries"] if r["Account"] == DEV)
    assert row["StatusReason"] == "Parameters: [Colour] do not exist in the template"


def test_the_status_record_outlives_the_process(tmp_path: Path) -> None:
    """A later replctl process (a new emulation reading the same file) sees what an earlier one left."""
    with mock_aws():
        first = Sandbox(StatusBook(tmp_path / "stackset-status.json"))
        first.cfn.create_stack_set(StackSetName=NAME, TemplateBody=T1, Parameters=pairs(Environment="dev"))
        for account in ACCOUNTS:
            first.cfn.create_stack_instances(StackSetName=NAME, Accounts=[account], Regions=[REGION],
                                             ParameterOverrides=pairs(Environment=account))
        first.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Parameters=pairs(Environment="dev"),
                                   Accounts=[DEV], Regions=[REGION])
        later = Sandbox(StatusBook(tmp_path / "stackset-status.json"))
        assert later.status() == {DEV: "CURRENT/SUCCEEDED", STAGING: "OUTDATED/SUCCEEDED", PROD: "OUTDATED/SUCCEEDED"}
