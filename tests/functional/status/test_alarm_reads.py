"""`status` and the deploy gate read alarms the same way, composite alarms included.

moto has no composite alarms (put_composite_alarm is not implemented), so botocore's Stubber plays
CloudWatch with the documented response shape: DescribeAlarms returns `MetricAlarms` and
`CompositeAlarms`, and "If you omit this parameter [AlarmTypes], only metric alarms are returned"
(CloudWatch API reference, DescribeAlarms).
"""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
from botocore.stub import Stubber

from replctl.status.fetch import describe_alarms, read_alarms
from replctl.deploy.rollout import _alarms_in_alarm

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def metric(name: str, state: str) -> dict:
    return {"AlarmName": name, "StateValue": state, "StateReason": f"{state} reason", "StateUpdatedTimestamp": NOW}


def composite(name: str, state: str) -> dict:
    return {"AlarmName": name, "AlarmRule": "ALARM(a)", "StateValue": state, "StateReason": f"{state} reason",
            "StateUpdatedTimestamp": NOW}


def stubbed(*pages: dict, state: str | None = None) -> tuple[object, Stubber]:
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    stub = Stubber(cw)
    expected = {"AlarmNamePrefix": "replctl-dev-", "AlarmTypes": ["CompositeAlarm", "MetricAlarm"]}
    if state:
        expected["StateValue"] = state
    for i, page in enumerate(pages):
        params = dict(expected, **({"NextToken": f"t{i}"} if i else {}))
        stub.add_response("describe_alarms", {**page, **({"NextToken": f"t{i + 1}"} if i + 1 < len(pages) else {})},
                          params)
    stub.activate()
    return cw, stub


def test_a_composite_alarm_in_alarm_fails_the_gate() -> None:
    cw, stub = stubbed({"MetricAlarms": [], "CompositeAlarms": [composite("replctl-dev-rollup", "ALARM")]},
                       state="ALARM")
    assert [a["AlarmName"] for a in _alarms_in_alarm(cw, "replctl-dev-")] == ["replctl-dev-rollup"]
    stub.assert_no_pending_responses()


def test_status_sees_the_alarms_the_gate_sees_across_pages() -> None:
    pages = ({"MetricAlarms": [metric("replctl-dev-lag", "OK")], "CompositeAlarms": []},
             {"MetricAlarms": [], "CompositeAlarms": [composite("replctl-dev-rollup", "ALARM")]})
    cw, stub = stubbed(*pages)
    assert [(a.name, a.state.value) for a in read_alarms(cw, "replctl-dev-")] == [
        ("replctl-dev-lag", "OK"), ("replctl-dev-rollup", "ALARM")]
    stub.assert_no_pending_responses()


def test_the_gate_never_fails_on_an_alarm_that_is_not_in_alarm() -> None:
    """Some endpoints ignore StateValue with a prefix (moto returns every alarm): filter again."""
    cw, _ = stubbed({"MetricAlarms": [metric("replctl-dev-lag", "OK")], "CompositeAlarms": []}, state="ALARM")
    assert describe_alarms(cw, "replctl-dev-", state="ALARM") == []
