"""`stackset.call_as`: loaded strictly, and passed as CallAs on the StackSets calls of status and drift.

A delegated administrator that leaves CallAs out acts on its own account, where the stack set
does not exist (CallAs, API reference: "If you are signed in to a delegated administrator
account, specify DELEGATED_ADMIN"). plan and rollout are covered against the fake service in
test_rollout.py (every call carries it); status and drift read through botocore clients, so
they are checked here with botocore's Stubber, which asserts each request's parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from replctl.drift import fetch as drift_fetch
from replctl.status import fetch as status_fetch
from replctl.config import Config, load_config
from replctl.errors import ConfigError
from tests.unit.deploy.fake_stacksets import CONFIG, DEV, PROD, REGION, STAGING, write_estate

NAME = "replctl-replication"


def delegated(config: str = CONFIG, permission_model: str = "SERVICE_MANAGED", call_as: str = "DELEGATED_ADMIN") -> str:
    text = config.replace("  managed_execution: false\n", f"  managed_execution: false\n"
                          f"  permission_model: {permission_model}\n  call_as: {call_as}\n")
    for env, ou in (("dev", "ou-ab12-devdev01"), ("staging", "ou-ab12-stgstg01"), ("prod", "ou-ab12-prdprd01")):
        text = text.replace(f"    ssm_path: /app/{env}/config\n", f"    ssm_path: /app/{env}/config\n"
                            f"    organizational_unit_id: {ou}\n")
    return text


def test_call_as_defaults_to_self(tmp_path: Path) -> None:
    assert load_config(write_estate(tmp_path)).stackset.call_as == "SELF"


def test_delegated_admin_is_loaded_for_a_service_managed_stack_set(tmp_path: Path) -> None:
    assert load_config(write_estate(tmp_path, config=delegated())).stackset.call_as == "DELEGATED_ADMIN"


@pytest.mark.parametrize(("permission_model", "call_as", "problem"), [
    ("SELF_MANAGED", "DELEGATED_ADMIN", "stackset.call_as (line 11): DELEGATED_ADMIN applies to SERVICE_MANAGED "
                                        "stack sets only; a SELF_MANAGED stack set is called as SELF"),
    ("SERVICE_MANAGED", "DELEGATED", "stackset.call_as (line 11): 'DELEGATED' is not one of SELF, DELEGATED_ADMIN; "
                                     "did you mean 'DELEGATED_ADMIN'?"),
])
def test_call_as_problems_name_the_key(tmp_path: Path, permission_model: str, call_as: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_estate(tmp_path, config=delegated(permission_model=permission_model, call_as=call_as)))
    assert problem in info.value.problems


class StubbedFactory:
    """The one method of SessionFactory the readers use, answering with a stubbed client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.settings = type("S", (), {"endpoint_url": None})()

    def client(self, service: str, **_: Any) -> Any:
        assert service == "cloudformation"
        return self._client


@pytest.fixture()
def stubbed() -> Any:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        yield StubbedFactory(client), stubber
        stubber.assert_no_pending_responses()


@pytest.fixture()
def config(tmp_path: Path) -> Config:
    return load_config(write_estate(tmp_path, config=delegated()))


def summary(account: str) -> dict[str, Any]:
    return {"Account": account, "Region": REGION, "Status": "CURRENT",
            "StackInstanceStatus": {"DetailedStatus": "SUCCEEDED"}}


def test_status_lists_instances_as_the_delegated_admin(stubbed: Any) -> None:
    factory, stubber = stubbed
    stubber.add_response("list_stack_instances", {"Summaries": [summary(DEV)]},
                         {"StackSetName": NAME, "CallAs": "DELEGATED_ADMIN"})
    listing = status_fetch.list_instances(factory, NAME, REGION, "DELEGATED_ADMIN")
    assert list(listing.instances) == [(DEV, REGION)]


def test_drift_reads_parameters_as_the_delegated_admin(stubbed: Any, config: Config) -> None:
    factory, stubber = stubbed
    stubber.add_response("describe_stack_set", {"StackSet": {"StackSetName": NAME, "Parameters": [
        {"ParameterKey": "Environment", "ParameterValue": "dev"}]}}, {"StackSetName": NAME, "CallAs": "DELEGATED_ADMIN"})
    for account in (DEV, STAGING, PROD):
        stubber.add_response("describe_stack_instance", {"StackInstance": {"Account": account, "Region": REGION}},
                             {"StackSetName": NAME, "StackInstanceAccount": account, "StackInstanceRegion": REGION,
                              "CallAs": "DELEGATED_ADMIN"})
    parameters, problem = drift_fetch.read_parameters(factory, config, config.environments)
    assert problem is None and set(parameters) == {(a, REGION) for a in (DEV, STAGING, PROD)}


def test_drift_detection_runs_as_the_delegated_admin(stubbed: Any, config: Config) -> None:
    factory, stubber = stubbed
    as_admin = {"StackSetName": NAME, "CallAs": "DELEGATED_ADMIN"}
    prefs = config.stackset.operation_preferences.to_api(config.regions)
    stubber.add_response("detect_stack_set_drift", {"OperationId": "op-1"}, {**as_admin, "OperationPreferences": prefs})
    stubber.add_response("describe_stack_set_operation", {"StackSetOperation": {
        "OperationId": "op-1", "Status": "SUCCEEDED", "StackSetDriftDetectionDetails": {
            "DriftStatus": "DRIFTED", "DriftDetectionStatus": "COMPLETED", "TotalStackInstancesCount": 1,
            "DriftedStackInstancesCount": 1}}}, {**as_admin, "OperationId": "op-1"})
    stubber.add_response("list_stack_instances", {"Summaries": [{**summary(DEV), "DriftStatus": "DRIFTED"}]}, as_admin)
    stubber.add_response("list_stack_instance_resource_drifts", {"Summaries": []}, {
        **as_admin, "StackInstanceAccount": DEV, "StackInstanceRegion": REGION, "OperationId": "op-1",
        "StackInstanceResourceDriftStatuses": ["MODIFIED", "DELETED"]})
    result = drift_fetch.detect_stackset_drift(config, factory, config.environments, sleep=lambda s: None,
                                               clock=lambda: 0.0)
    assert result.operation_id == "op-1" and [i.account for i in result.instances] == [DEV]
