"""The parts of cfn/replication.yaml the functions depend on: the lag alarm and the SSM grants.

Rendered for concrete accounts (tests/cfnkit.py), so conditions and intrinsics are resolved as
CloudFormation would.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

import pytest

from tests.cfnkit import ACCOUNTS, instance_parameters, load, render
from tests.fnkit import LAMBDA

REGION = "us-east-1"


def _rendered(env: str) -> dict[str, Any]:
    return render(load("replication.yaml"), instance_parameters(env, True, True), ACCOUNTS[env]).resources


def _allows(role: dict[str, Any], action: str, arn: str) -> bool:
    for policy in role["Properties"].get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            if st["Effect"] == "Allow" and action in actions and any(fnmatchcase(arn, r) for r in resources):
                return True
    return False


def test_metadata_lag_alarm_is_two_of_three_periods_over_the_one_second_bound() -> None:
    resources = _rendered("dev")
    alarm = resources["MetadataLagAlarm"]["Properties"]
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (2, 3)  # M of N, M < N
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and float(alarm["Threshold"]) == 1.0
    assert alarm["TreatMissingData"] == "ignore"
    stats = [q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q]
    assert {s["Metric"]["MetricName"] for s in stats} == {"MetadataReplicationLag"}
    assert {d["Value"] for s in stats for d in s["Metric"]["Dimensions"] if d["Name"] == "Target"} == {"staging", "prod"}
    assert {s["Stat"] for s in stats} == {"Maximum"}
    # one period per heartbeat, so every period holds at least the heartbeat's copies
    assert {s["Period"] for s in stats} == {300}
    assert resources["HeartbeatScheduleRule"]["Properties"]["ScheduleExpression"] == "rate(5 minutes)"


def test_the_alarm_metric_is_the_one_the_functions_publish() -> None:
    stream = (LAMBDA / "stream_processor" / "stream_processor.py").read_text()
    monitor = (LAMBDA / "replication_monitor" / "replication_monitor.py").read_text()
    assert '"MetadataReplicationLag", "Seconds"' in stream  # measured at each copy
    assert '"MetadataReplicationLag", "Seconds"' in monitor  # the lower bound of a heartbeat never seen


# The SSM operations the monitor's mirroring makes, and where: reads of its own hierarchy in its
# own account, writes (and mirror state) in downstream accounts through the agent role.
LOCAL_SSM = {"get_parameter": "ssm:GetParameter", "get_parameters": "ssm:GetParameters",
             "get_parameters_by_path": "ssm:GetParametersByPath"}
REMOTE_SSM = {"describe_parameters": "ssm:DescribeParameters", "put_parameter": "ssm:PutParameter",
              "delete_parameter": "ssm:DeleteParameter"}


def test_the_list_of_ssm_operations_is_complete() -> None:
    source = (LAMBDA / "replication_monitor" / "mirroring.py").read_text()
    used = set(re.findall(r"ssm\.(\w+)\b", source))
    assert used == set(LOCAL_SSM) | set(REMOTE_SSM), "update LOCAL_SSM/REMOTE_SSM and the template's grants"


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_the_monitor_role_reads_its_own_hierarchy_only(env: str) -> None:
    role = _rendered(env)["ReplicationMonitorRole"]
    account = ACCOUNTS[env]
    own = f"arn:aws:ssm:{REGION}:{account}:parameter/app/{env}/config"
    for action in LOCAL_SSM.values():
        assert _allows(role, action, f"{own}/db/url"), action
    assert _allows(role, "ssm:GetParametersByPath", own)  # authorized on the path itself
    other = f"arn:aws:ssm:{REGION}:{account}:parameter/app/prod/config/db/url"
    assert not any(_allows(role, a, other) for a in LOCAL_SSM.values())


@pytest.mark.parametrize("target, sources", [("staging", ["dev"]), ("prod", ["dev", "staging"])])
def test_the_agent_role_writes_upstream_mirrors_only(target: str, sources: list[str]) -> None:
    role = _rendered(target)["ReplicationAgentRole"]
    account = ACCOUNTS[target]
    for source in sources:
        name = f"arn:aws:ssm:{REGION}:{account}:parameter/app/{source}/config/db/url"
        assert _allows(role, "ssm:PutParameter", name) and _allows(role, "ssm:DeleteParameter", name)
    assert _allows(role, "ssm:DescribeParameters", "*")  # no resource-level permissions
    own = f"arn:aws:ssm:{REGION}:{account}:parameter/app/{target}/config/db/url"
    assert not _allows(role, "ssm:PutParameter", own) and not _allows(role, "ssm:DeleteParameter", own)


def test_the_permissions_boundary_lets_the_monitor_read_in_batches() -> None:
    template = load("stackset-execution-role.yaml")
    statements = template["Resources"]["PermissionsBoundary"]["Properties"]["PolicyDocument"]["Statement"]
    actions = {a for st in statements for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert set(LOCAL_SSM.values()) | set(REMOTE_SSM.values()) <= actions
