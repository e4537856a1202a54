"""Every `status` verdict rule, on hand-made facts: no AWS, no clock.

GIVEN the facts of one account-region (a healthy baseline with one thing changed), WHEN judged,
THEN the signal, its verdict and the reason text are as documented in docs/status-and-drift.md.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replctl.config import Thresholds, parse_config
from replctl.errors import ConfigError, ExitCode, ReplctlError
from replctl.status.judge import judge, judge_environment, judge_target, seconds
from replctl.status.model import (
    AlarmFact,
    AlarmState,
    Difference,
    DriftStatus,
    FunctionFact,
    HeartbeatFact,
    InstanceFact,
    LagFact,
    Problem,
    QueueFact,
    RuleFact,
    Series,
    StatusFacts,
    TargetFacts,
    ValidationFact,
    Verdict,
    alarm_state,
    drift_status,
    names_for,
    worst,
)
from replctl.statuses import DetailedStatus, InstanceStatus

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
T = Thresholds()  # metadata lag 1 s, S3 900 s, heartbeat 900 s, validation 7200 s, lookback 30 min
STACK_SET = "replctl-replication"


def ago(seconds_: float) -> datetime:
    return NOW - timedelta(seconds=seconds_)


def series(stat: str, *values: float) -> Series:
    return Series(stat, tuple((ago(60 * (i + 1)), v) for i, v in enumerate(values)))


def rule(target: str = "staging", **kw) -> RuleFact:
    base = dict(rule_id=f"to-{target}", destination_bucket=f"replctl-config-{target}-222222222222", target=target,
                enabled=True, metrics_enabled=True, latency=series("Maximum", 30.0), pending=series("Maximum", 0.0),
                failed=series("Sum", 0.0, 0.0))
    base.update(kw)
    return RuleFact(**base)


def lag(target: str = "staging", **kw) -> LagFact:
    base = dict(target=target, metadata_lag_seconds=0.4, s3_lag_seconds=40.0, metadata_visible=True, s3_visible=True,
                measured_at=ago(60), metadata_metric=series("Maximum", 0.4), s3_metric=series("Maximum", 40.0))
    base.update(kw)
    return LagFact(**base)


def facts(**kw) -> TargetFacts:
    """A healthy dev account-region; keyword arguments change one thing."""
    base = dict(
        environment="dev", account="111111111111", region="us-east-1", fetched_at=NOW,
        bucket="replctl-config-dev-111111111111",
        instance=InstanceFact(InstanceStatus.CURRENT, DetailedStatus.SUCCEEDED), instance_listed=True,
        rules=(rule(),), lags=(lag(),),
        heartbeats=(HeartbeatFact("dev", ago(60), 42),),
        validation=ValidationFact("consistent", ago(600)), validation_read=True,
        functions=tuple(FunctionFact(f"replctl-{f}", series("Sum", 0.0, 0.0))
                        for f in ("replication-monitor", "config-validator", "stream-processor")),
        queues=(QueueFact("replctl-events-dlq", 0),),
        alarms=(AlarmFact("replctl-dev-metadata-lag", AlarmState.OK),), alarm_prefix="replctl-dev-",
    )
    base.update(kw)
    return TargetFacts(**base)


def verdict_of(f: TargetFacts, t: Thresholds = T) -> tuple[Verdict, tuple[str, ...]]:
    v = judge_target(f, t, STACK_SET)
    return v.verdict, v.reasons


def signal(f: TargetFacts, name: str, t: Thresholds = T):
    (s,) = [s for s in judge_target(f, t, STACK_SET).signals if s.signal == name]
    return s


# --------------------------------------------------------------------------- baseline and ordering


def test_healthy_baseline() -> None:
    v = judge_target(facts(), T, STACK_SET)
    assert v.verdict is Verdict.HEALTHY and v.reasons == ()
    assert [s.signal for s in v.signals] == [
        "stack-instance", "s3-replication", "metadata-lag", "s3-canary-lag", "heartbeat", "validation",
        "function-errors", "function-errors", "function-errors", "dlq", "alarms"]


def test_verdict_order_and_exit_codes() -> None:
    assert worst([Verdict.HEALTHY, Verdict.DEGRADED]) is Verdict.DEGRADED
    assert worst([Verdict.DEGRADED, Verdict.UNKNOWN]) is Verdict.UNKNOWN
    assert worst([Verdict.UNKNOWN, Verdict.UNHEALTHY]) is Verdict.UNHEALTHY
    assert worst([]) is Verdict.UNKNOWN  # nothing to judge is never healthy
    assert [v.exit_code for v in Verdict] == [ExitCode.OK, ExitCode.DEGRADED, ExitCode.UNKNOWN, ExitCode.UNHEALTHY]
    assert [int(v.exit_code) for v in Verdict] == [0, 20, 22, 21]


@given(st.lists(st.sampled_from(list(Verdict)), min_size=1))
def test_worst_is_the_most_severe_and_ignores_order(verdicts: list[Verdict]) -> None:
    assert worst(verdicts).rank == max(v.rank for v in verdicts)
    assert worst(reversed(verdicts)) is worst(verdicts)


# --------------------------------------------------------------------------- stack instance


@pytest.mark.parametrize(("status", "detailed", "value"), [
    (InstanceStatus.OUTDATED, DetailedStatus.SUCCEEDED, "OUTDATED / SUCCEEDED"),
    (InstanceStatus.OUTDATED, DetailedStatus.RUNNING, "OUTDATED / RUNNING"),
    (InstanceStatus.CURRENT, DetailedStatus.FAILED, "CURRENT / FAILED"),
    (InstanceStatus.INOPERABLE, DetailedStatus.INOPERABLE, "INOPERABLE / INOPERABLE"),
])
def test_instance_not_current_and_succeeded_is_unhealthy(status, detailed, value) -> None:
    s = signal(facts(instance=InstanceFact(status, detailed, reason="ResourceLogicalId:Bucket, ...")), "stack-instance")
    assert (s.verdict, s.value) == (Verdict.UNHEALTHY, value)
    assert s.reason == (f"stack instance is {value} (ResourceLogicalId:Bucket, ...): finish or re-run the rollout "
                        "(replctl deploy --env dev)")


def test_instance_without_detailed_status_is_judged_by_its_status() -> None:
    assert signal(facts(instance=InstanceFact(InstanceStatus.CURRENT, None)), "stack-instance").verdict is Verdict.HEALTHY


def test_missing_instance_is_unhealthy_unless_the_listing_failed() -> None:
    missing = signal(facts(instance=None), "stack-instance")
    assert missing.verdict is Verdict.UNHEALTHY
    assert missing.reason == ("no stack instance of replctl-replication for account 111111111111 in us-east-1: "
                              "deploy it (replctl deploy --env dev)")
    unread = signal(facts(instance=None, instance_listed=False,
                          problems=(Problem("stack-instance", "ListStackInstances failed: AccessDenied"),)),
                    "stack-instance")
    assert (unread.verdict, unread.reason) == (Verdict.UNKNOWN, "ListStackInstances failed: AccessDenied")


def test_drifted_instance_degrades() -> None:
    s = signal(facts(instance=InstanceFact(InstanceStatus.CURRENT, DetailedStatus.SUCCEEDED,
                                           drift=DriftStatus.DRIFTED)), "stack-instance")
    assert (s.verdict, s.value) == (Verdict.DEGRADED, "CURRENT / SUCCEEDED, drift DRIFTED")
    assert s.reason == "stack instance has drifted from the template: see replctl drift"


# --------------------------------------------------------------------------- S3 replication


@pytest.mark.parametrize(("latency", "verdict"), [(899.0, Verdict.HEALTHY), (900.0, Verdict.HEALTHY),
                                                  (901.0, Verdict.DEGRADED)])
def test_s3_latency_against_its_own_bound(latency: float, verdict: Verdict) -> None:
    s = signal(facts(rules=(rule(latency=series("Maximum", latency, 10.0)),)), "s3-replication")
    assert s.verdict is verdict
    if verdict is Verdict.DEGRADED:
        assert s.reason == "S3 replication latency for rule to-staging is 15 min, above the 15 min bound"


def test_s3_latency_judges_the_latest_point_not_an_old_spike() -> None:
    s = signal(facts(rules=(rule(latency=series("Maximum", 20.0, 5000.0)),)), "s3-replication")
    assert (s.verdict, s.value) == (Verdict.HEALTHY, "latency 20 s, pending 0, failed 0")


def test_failed_replication_is_unhealthy() -> None:
    s = signal(facts(rules=(rule(failed=series("Sum", 0.0, 2.0, 1.0)),)), "s3-replication")
    assert s.verdict is Verdict.UNHEALTHY
    assert s.reason.startswith("3 replication operations failed in the last 30 min for rule to-staging "
                               "(towards replctl-config-staging-222222222222)")


def test_pending_operations_alone_do_not_change_the_verdict() -> None:
    s = signal(facts(rules=(rule(pending=series("Maximum", 120.0)),)), "s3-replication")
    assert (s.verdict, s.value) == (Verdict.HEALTHY, "latency 30 s, pending 120, failed 0")


@pytest.mark.parametrize(("change", "verdict", "start"), [
    ({"latency": None, "pending": None, "failed": None}, Verdict.UNKNOWN, "no AWS/S3 replication metrics"),
    ({"latency": Series("Maximum"), "pending": Series("Maximum"), "failed": Series("Sum")}, Verdict.UNKNOWN,
     "no AWS/S3 replication metrics for rule to-staging in the last 30 min"),
    ({"metrics_enabled": False}, Verdict.UNKNOWN, "rule to-staging has replication metrics disabled"),
    ({"enabled": False}, Verdict.DEGRADED, "replication rule to-staging towards replctl-config-staging-222222222222 "
                                           "is disabled"),
])
def test_rules_without_data_or_switched_off(change, verdict, start) -> None:
    s = signal(facts(rules=(rule(**change),)), "s3-replication")
    assert s.verdict is verdict and s.reason.startswith(start)


def test_no_rules_is_reported_not_judged() -> None:
    s = signal(facts(rules=()), "s3-replication")
    assert (s.verdict, s.value) == (Verdict.HEALTHY, "no replication rules on this bucket")


def test_unreadable_rules_are_unknown() -> None:
    s = signal(facts(rules=None, problems=(Problem("s3-replication", "GetBucketReplication: AccessDenied"),)),
               "s3-replication")
    assert (s.verdict, s.reason) == (Verdict.UNKNOWN, "GetBucketReplication: AccessDenied")


# --------------------------------------------------------------------------- metadata lag


@pytest.mark.parametrize(("value", "bound", "verdict"), [
    (0.4, 1.0, Verdict.HEALTHY), (1.0, 1.0, Verdict.HEALTHY), (1.01, 1.0, Verdict.DEGRADED),
    (2.5, 1.0, Verdict.DEGRADED), (2.5, 5.0, Verdict.HEALTHY),
])
def test_metadata_lag_bound_comes_from_the_thresholds(value: float, bound: float, verdict: Verdict) -> None:
    t = replace(T, metadata_lag_seconds=bound)
    s = signal(facts(lags=(lag(metadata_lag_seconds=value, metadata_metric=None),)), "metadata-lag", t)
    assert s.verdict is verdict
    if verdict is Verdict.DEGRADED:
        assert s.reason == f"metadata replication lag dev → staging is {seconds(value)}, above the {seconds(bound)} bound"


def test_lag_falls_back_to_the_metric_when_there_is_no_item() -> None:
    f = facts(lags=(LagFact("staging", metadata_metric=series("Maximum", 3.0, 0.2)),))
    s = signal(f, "metadata-lag")
    assert (s.verdict, s.value) == (Verdict.DEGRADED, "3 s")


def test_no_lag_measurement_is_unknown() -> None:
    s = signal(facts(lags=(LagFact("prod"),)), "metadata-lag")
    assert s.verdict is Verdict.UNKNOWN
    assert s.reason == ("no metadata lag measurement towards prod (no LOCAL#LAG item and no MetadataReplicationLag "
                        "datapoints in the last 30 min)")


def test_heartbeat_not_seen_downstream_is_a_lower_bound() -> None:
    above = signal(facts(lags=(lag(metadata_lag_seconds=30.0, metadata_visible=False, metadata_metric=None),)),
                   "metadata-lag")
    assert above.value.startswith("≥ 30 s")
    assert above.reason.endswith("(the heartbeat was not seen there at all: this is a lower bound)")
    below = signal(facts(lags=(lag(metadata_lag_seconds=0.5, metadata_visible=False),)), "metadata-lag")
    assert (below.verdict, below.reason) == (Verdict.DEGRADED, "the last heartbeat was not seen in staging within the poll")


def test_stale_lag_measurement_degrades() -> None:
    s = signal(facts(lags=(lag(measured_at=ago(1800)),)), "metadata-lag")
    assert s.verdict is Verdict.DEGRADED
    assert s.reason == ("the last lag measurement towards staging is 30 min old (bound 15 min): "
                        "is the monitor's schedule running?")


def test_peak_in_the_window_is_shown_but_not_judged() -> None:
    s = signal(facts(lags=(lag(metadata_metric=series("Maximum", 0.4, 2.0)),)), "metadata-lag")
    assert (s.verdict, s.value) == (Verdict.HEALTHY, "0.4 s (max 2 s), measured 60 s ago")


def test_s3_canary_lag_against_the_s3_bound() -> None:
    s = signal(facts(lags=(lag(s3_lag_seconds=1200.0),)), "s3-canary-lag")
    assert (s.verdict, s.reason) == (Verdict.DEGRADED,
                                     "the S3 canary took 20 min to reach staging, above the 15 min bound")


# --------------------------------------------------------------------------- heartbeat and validation


@pytest.mark.parametrize(("age", "verdict"), [(60, Verdict.HEALTHY), (900, Verdict.HEALTHY), (901, Verdict.DEGRADED)])
def test_heartbeat_age(age: float, verdict: Verdict) -> None:
    assert signal(facts(heartbeats=(HeartbeatFact("dev", ago(age), 7),)), "heartbeat").verdict is verdict


def test_only_the_own_heartbeat_counts() -> None:
    s = signal(facts(heartbeats=(HeartbeatFact("staging", ago(10), 1),)), "heartbeat")
    assert s.verdict is Verdict.UNKNOWN
    assert s.reason.startswith("no heartbeat from dev in table items (HEARTBEAT/dev)")


def test_validation_inconsistent_is_unhealthy_with_the_differences() -> None:
    v = ValidationFact("inconsistent", ago(60), (Difference("ssm", "prod", "missing /app/prod/config/x"),
                                                Difference("table", "staging", "stream NEW_IMAGE")))
    s = signal(facts(validation=v), "validation")
    assert s.verdict is Verdict.UNHEALTHY
    assert s.reason == ("validation found 2 differences: prod ssm: missing /app/prod/config/x; "
                        "staging table: stream NEW_IMAGE")


@pytest.mark.parametrize(("v", "verdict", "reason"), [
    (None, Verdict.UNKNOWN, "no validation report yet (LOCAL#VALIDATION/latest): the config validator has not run here"),
    (ValidationFact("consistent", ago(7201)), Verdict.DEGRADED,
     "the last validation report is 2 h old (bound 2 h): is the validator's schedule running?"),
    (ValidationFact("pending", ago(60)), Verdict.UNKNOWN,
     "the validation report has status 'pending', neither consistent nor inconsistent"),
    (ValidationFact("consistent", None), Verdict.UNKNOWN, "the validation report has no readable generated_at time"),
])
def test_validation_missing_stale_or_odd(v, verdict, reason) -> None:
    s = signal(facts(validation=v), "validation")
    assert (s.verdict, s.reason) == (verdict, reason)


def test_unreadable_table_makes_its_three_signals_unknown() -> None:
    msg = "reading table replctl-metadata: AccessDenied"
    f = facts(lags=None, heartbeats=None, validation=None, validation_read=False,
              problems=tuple(Problem(s, msg) for s in ("metadata-lag", "heartbeat", "validation")))
    v = judge_target(f, T, STACK_SET)
    assert v.verdict is Verdict.UNKNOWN and v.reasons == (msg, msg, msg)


def test_missing_resources_are_unhealthy_and_replace_their_signals() -> None:
    f = facts(lags=None, heartbeats=None, validation=None, validation_read=False,
              missing=("table replctl-metadata",))
    v = judge_target(f, T, STACK_SET)
    assert v.verdict is Verdict.UNHEALTHY
    assert v.reasons == ("table replctl-metadata does not exist (the template creates it): re-deploy "
                         "(replctl deploy --env dev)",)


# --------------------------------------------------------------------------- functions, queues, alarms


def test_function_errors_degrade_and_no_data_is_unknown() -> None:
    f = facts(functions=(FunctionFact("replctl-stream-processor", series("Sum", 0.0, 3.0)),
                         FunctionFact("replctl-config-validator", None)))
    got = [(s.subject, s.verdict, s.reason) for s in judge_target(f, T, STACK_SET).signals
           if s.signal == "function-errors"]
    assert got == [
        ("replctl-stream-processor", Verdict.DEGRADED,
         "replctl-stream-processor reported 3 errors in the last 30 min: see its log group "
         "/aws/lambda/replctl-stream-processor"),
        ("replctl-config-validator", Verdict.UNKNOWN,
         "no AWS/Lambda Errors datapoints for replctl-config-validator in the last 30 min: it has not run, "
         "or its metrics do not reach CloudWatch"),
    ]


def test_a_stream_processor_without_downstream_has_no_trigger_so_silence_is_not_unknown() -> None:
    quiet = (FunctionFact("replctl-stream-processor", None), FunctionFact("replctl-config-validator", None))
    prod = facts(rules=(), functions=quiet)
    got = {s.subject: (s.verdict, s.value) for s in judge_target(prod, T, STACK_SET).signals
           if s.signal == "function-errors"}
    assert got["replctl-stream-processor"] == (Verdict.HEALTHY, "not triggered here (no downstream targets)")
    assert got["replctl-config-validator"][0] is Verdict.UNKNOWN  # it runs on a schedule everywhere
    unread = facts(rules=None, functions=quiet)  # rules unknown: no exemption
    assert {s.subject: s.verdict for s in judge_target(unread, T, STACK_SET).signals
            if s.signal == "function-errors"}["replctl-stream-processor"] is Verdict.UNKNOWN


def test_dlq_depth() -> None:
    s = signal(facts(queues=(QueueFact("replctl-events-dlq", 1),)), "dlq")
    assert (s.verdict, s.value) == (Verdict.UNHEALTHY, "1 messages")
    assert s.reason == ("1 message in dead-letter queue replctl-events-dlq: events failed after every retry; "
                        "inspect them and redrive")
    s = signal(facts(queues=(QueueFact("replctl-events-dlq", None, "AccessDenied"),)), "dlq")
    assert (s.verdict, s.reason) == (Verdict.UNKNOWN, "AccessDenied")


def test_alarm_in_alarm_is_unhealthy_insufficient_data_is_not() -> None:
    alarms = (AlarmFact("replctl-dev-metadata-lag", AlarmState.ALARM, "Threshold Crossed: 1 datapoint [2.5]"),
              AlarmFact("replctl-dev-s3-failed-prod", AlarmState.INSUFFICIENT_DATA),
              AlarmFact("replctl-dev-errors-config-validator", AlarmState.OK))
    verdict, reasons = verdict_of(facts(alarms=alarms))
    assert verdict is Verdict.UNHEALTHY
    assert reasons == ("alarm replctl-dev-metadata-lag is in ALARM: Threshold Crossed: 1 datapoint [2.5]",)
    s = signal(facts(alarms=alarms[1:]), "alarms")
    assert (s.verdict, s.value) == (Verdict.HEALTHY, "1 OK, 1 INSUFFICIENT_DATA")


def test_no_alarms_is_unknown() -> None:
    s = signal(facts(alarms=()), "alarms")
    assert (s.verdict, s.reason) == (Verdict.UNKNOWN, "no alarms named replctl-dev-* in 111111111111 us-east-1: "
                                                      "the template's alarms are missing")


def test_an_account_that_cannot_be_read_is_unknown_in_one_reason() -> None:
    f = TargetFacts("prod", "333333333333", "us-east-1", NOW, "b", instance=InstanceFact(InstanceStatus.CURRENT, None),
                    instance_listed=True, problems=(Problem("access", "cannot assume arn:...:role/replctl/obs"),))
    v = judge_target(f, T, STACK_SET)
    assert v.verdict is Verdict.UNKNOWN
    assert v.reasons == ("cannot read account 333333333333 in us-east-1: cannot assume arn:...:role/replctl/obs",)


# --------------------------------------------------------------------------- environments and overall


def test_overall_is_the_worst_environment_and_reasons_name_the_place() -> None:
    dev = facts()
    staging = facts(environment="staging", account="222222222222", lags=(lag("prod", metadata_lag_seconds=2.5),),
                    heartbeats=(HeartbeatFact("staging", ago(30), 1),))
    staging_eu = replace(staging, region="eu-west-1")
    prod = facts(environment="prod", account="333333333333", rules=(), lags=(),
                 heartbeats=(HeartbeatFact("prod", ago(30), 1),), validation=None)
    report = judge(StatusFacts(STACK_SET, NOW, (dev, staging, staging_eu, prod), ("dev", "staging", "prod")), T)
    assert [(e.name, e.verdict) for e in report.environments] == [
        ("dev", Verdict.HEALTHY), ("staging", Verdict.DEGRADED), ("prod", Verdict.UNKNOWN)]
    assert report.verdict is Verdict.UNKNOWN and report.verdict.exit_code == ExitCode.UNKNOWN
    assert report.environments[1].reasons == (
        "222222222222 us-east-1: metadata replication lag staging → prod is 2.5 s, above the 1 s bound",
        "222222222222 eu-west-1: metadata replication lag staging → prod is 2.5 s, above the 1 s bound")
    d = report.to_dict()
    assert list(d) == ["stack_set", "generated_at", "verdict", "exit_code", "reasons", "thresholds", "environments"]
    assert d["exit_code"] == 22 and d["thresholds"]["metadata_lag_seconds"] == 1.0
    target = d["environments"][1]["targets"][0]
    assert list(target) == ["account", "region", "verdict", "reasons", "signals", "facts"]
    assert target["facts"]["lags"][0]["metadata_lag_seconds"] == 2.5


def test_an_environment_with_nothing_to_judge_is_unknown() -> None:
    assert judge_environment("dev", []).verdict is Verdict.UNKNOWN


# --------------------------------------------------------------------------- small pieces


@pytest.mark.parametrize(("value", "text"), [(0.42, "0.42 s"), (1.0, "1 s"), (2.5, "2.5 s"), (12.3, "12 s"),
                                             (900, "15 min"), (7200, "2 h"), (5400, "90 min"), (12600, "3.5 h")])
def test_durations_for_people(value: float, text: str) -> None:
    assert seconds(value) == text


def test_unknown_aws_status_values_raise() -> None:
    assert alarm_state("ALARM") is AlarmState.ALARM and drift_status("IN_SYNC") is DriftStatus.IN_SYNC
    with pytest.raises(ReplctlError, match="alarm state 'FIRING', which this replctl does not know"):
        alarm_state("FIRING")


def test_names_come_from_the_config(tmp_path: Path) -> None:
    from tests.unit.test_config import VALID

    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    with pytest.raises(ConfigError, match="parameters.DynamoDBTableName is not set"):
        names_for(parse_config(VALID, tmp_path / "environments.yaml"))
    text = VALID.replace("  ResourcePrefix: replctl\n", "  ResourcePrefix: acme\n  DynamoDBTableName: meta\n"
                         "  ReplicationBucketName: cfg\n")
    names = names_for(parse_config(text, tmp_path / "environments.yaml"))
    assert names.bucket("dev", "111111111111") == "cfg-dev-111111111111"
    assert names.primary_bucket("prod") == "cfg-prod-333333333333"
    assert names.queues() == ("acme-replication-monitor-dlq", "acme-config-validator-dlq",
                              "acme-stream-processor-dlq", "acme-events-dlq")
    assert names.observer_role_arn("222222222222") == "arn:aws:iam::222222222222:role/replctl/replctl-observer"
    assert names.alarm_prefix("staging") == "acme-staging-"
    assert names.environment_of_bucket("arn:aws:s3:::cfg-staging-222222222222") == "staging"
    assert names.environment_of_bucket("cfg-staging-2222") is None
    assert names.environment_of_bucket("other-prod-333333333333") is None
