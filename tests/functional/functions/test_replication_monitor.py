"""ReplicationMonitorLambda against three moto accounts (dev, staging, prod), called in-process.

GIVEN an estate where each account has the metadata table and its bucket, WHEN the handler gets
an event in the shape AWS sends, THEN mirrors, items and metrics are what the contract says.
Cross-account writes go through sts:AssumeRole on the agent role, which moto grants, and the
assumed keys act in the role's account (moto-notes §2).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.fnkit import (  # noqa: F401
    ACCOUNTS,
    TABLE,
    Estate,
    FakeContext,
    bucket,
    estate,
    load_event,
    metric_series,
    metric_values,
)

import mirroring  # noqa: E402  (on sys.path through tests.fnkit)
import monitor_logic  # noqa: E402
import replication_monitor  # noqa: E402
import stream_processor  # noqa: E402
from replshared.errors import ProcessingFailed, UnhandledEvent  # noqa: E402

NAME = "/app/dev/config/db/url"


def put(e: Estate, env: str, name: str, value: str, kind: str = "String") -> int:
    return e.client(env, "ssm").put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)["Version"]


def marker(e: Estate, env: str, name: str) -> tuple[str, int, float] | None:
    found = e.client(env, "ssm").describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])["Parameters"]
    return monitor_logic.parse_mirror_description(found[0].get("Description")) if found else None


# -- SSM mirroring --------------------------------------------------------------------------


def test_parameter_created_in_dev_appears_in_staging_and_prod(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    put(estate, "dev", NAME, "postgres://db.dev:5432/app")

    result = estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")

    assert result["targets"] == ["staging", "prod"]
    for env in ("staging", "prod"):
        mirror = estate.parameter(env, NAME)
        assert mirror is not None and mirror["Value"] == "postgres://db.dev:5432/app"
        assert mirror["ARN"].split(":")[4] == ACCOUNTS[env]
        assert marker(estate, env, NAME)[:2] == ("dev", 1)
    assert metric_values(capsys.readouterr().out, "ParametersMirrored") == [({"Environment": "dev"}, 2.0)]


def test_update_propagates(estate: Estate) -> None:
    put(estate, "dev", NAME, "v1")
    estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")
    put(estate, "dev", NAME, "v2")

    estate.invoke(replication_monitor, load_event("ssm_parameter_updated.json"), "dev")

    for env in ("staging", "prod"):
        assert estate.parameter(env, NAME)["Value"] == "v2"
        assert marker(estate, env, NAME)[:2] == ("dev", 2)


def test_replayed_create_event_does_not_roll_back_a_newer_mirror(estate: Estate) -> None:
    put(estate, "dev", NAME, "v1")
    estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")
    put(estate, "dev", NAME, "v2")
    estate.invoke(replication_monitor, load_event("ssm_parameter_updated.json"), "dev")

    estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")  # late duplicate

    assert estate.parameter("staging", NAME)["Value"] == "v2"
    assert estate.parameter("staging", NAME)["Version"] == 2  # not rewritten at all


def test_stale_source_read_cannot_overwrite_a_newer_mirror(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the mirrors already hold source version 2 (written by a later invocation) ...
    put(estate, "dev", NAME, "v1")
    first_read = mirroring.read_source(estate.client("dev", "ssm"), NAME, with_decryption=False)
    put(estate, "dev", NAME, "v2")
    estate.invoke(replication_monitor, load_event("ssm_parameter_updated.json"), "dev")
    # ... WHEN an invocation that read the source earlier (version 1) gets to write
    monkeypatch.setattr(mirroring, "read_source", lambda *a, **k: first_read)
    estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")
    # THEN the newer mirror stays
    for env in ("staging", "prod"):
        assert estate.parameter(env, NAME)["Value"] == "v2"
        assert marker(estate, env, NAME)[1] == 2


def test_delete_propagates(estate: Estate) -> None:
    put(estate, "dev", NAME, "v1")
    estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")
    estate.client("dev", "ssm").delete_parameter(Name=NAME)

    estate.invoke(replication_monitor, load_event("ssm_parameter_deleted.json"), "dev")

    assert estate.parameter("staging", NAME) is None
    assert estate.parameter("prod", NAME) is None


def test_stale_delete_event_does_not_remove_a_recreated_parameter(estate: Estate) -> None:
    put(estate, "dev", NAME, "v1")
    estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")

    estate.invoke(replication_monitor, load_event("ssm_parameter_deleted.json"), "dev")  # the source still exists

    assert estate.parameter("staging", NAME)["Value"] == "v1"


def test_delete_leaves_a_parameter_replctl_did_not_write(estate: Estate) -> None:
    put(estate, "staging", NAME, "hand-made")

    estate.invoke(replication_monitor, load_event("ssm_parameter_deleted.json"), "dev")

    assert estate.parameter("staging", NAME)["Value"] == "hand-made"


def test_prod_change_never_reaches_dev_or_staging(estate: Estate) -> None:
    name = "/app/prod/config/db/url"
    put(estate, "prod", name, "postgres://db.prod:5432/app")
    event = load_event("ssm_parameter_created.json")
    event["detail"]["name"] = name
    event["account"] = ACCOUNTS["prod"]

    result = estate.invoke(replication_monitor, event, "prod")

    assert result["targets"] == []
    assert estate.parameter("dev", name) is None
    assert estate.parameter("staging", name) is None


def test_staging_change_reaches_prod_only(estate: Estate) -> None:
    name = "/app/staging/config/feature"
    put(estate, "staging", name, "on")
    event = load_event("ssm_parameter_updated.json")
    event["detail"]["name"] = name

    estate.invoke(replication_monitor, event, "staging")

    assert estate.parameter("prod", name)["Value"] == "on"
    assert estate.parameter("dev", name) is None


def test_parameter_outside_this_environments_hierarchy_is_not_mirrored(estate: Estate) -> None:
    # A mirror written into staging by dev raises a change event in staging: not staging's to send.
    put(estate, "staging", NAME, "mirror")

    result = estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "staging")

    assert result == {"mirrored": 0, "ignored": NAME}
    assert estate.parameter("prod", NAME) is None


def test_secure_string_is_skipped_unless_enabled(
    estate: Estate, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    name = "/app/dev/config/db/password"
    secret = "s3cr3t-value-never-logged"
    put(estate, "dev", name, secret, "SecureString")

    estate.invoke(replication_monitor, load_event("ssm_parameter_secure_created.json"), "dev")
    assert estate.parameter("staging", name) is None
    assert estate.parameter("prod", name) is None

    estate.invoke(replication_monitor, load_event("ssm_parameter_secure_created.json"), "dev", MIRROR_SECURE_STRINGS="true")
    for env in ("staging", "prod"):
        mirror = estate.parameter(env, name)
        assert mirror["Type"] == "SecureString" and mirror["Value"] == secret
        described = estate.client(env, "ssm").describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])["Parameters"][0]
        assert described["KeyId"] == "alias/aws/ssm"  # the target account's default key
    assert caplog.records  # the mirroring was logged ...
    assert secret not in capsys.readouterr().out and secret not in caplog.text  # ... without its value


def test_secure_string_mirror_is_removed_when_mirroring_is_switched_off(estate: Estate) -> None:
    name = "/app/dev/config/db/password"
    put(estate, "dev", name, "pw1", "SecureString")
    estate.invoke(replication_monitor, load_event("ssm_parameter_secure_created.json"), "dev", MIRROR_SECURE_STRINGS="true")
    put(estate, "dev", name, "pw2", "SecureString")

    estate.invoke(replication_monitor, load_event("ssm_parameter_secure_created.json"), "dev")

    assert estate.parameter("staging", name) is None  # no stale secret left behind


def test_no_mirror_towards_an_environment_whose_replication_is_off(estate: Estate) -> None:
    put(estate, "dev", NAME, "v1")

    result = estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev", REPLICATE_TO_PROD="false")

    assert result["targets"] == ["staging"]
    assert estate.parameter("prod", NAME) is None


def test_target_failure_is_counted_and_raised_after_the_other_targets(
    estate: Estate, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from replshared.clients import AwsClients

    put(estate, "dev", NAME, "v1")
    original = AwsClients.remote

    def remote(self: AwsClients, environment: str, service: str):  # noqa: ANN202
        if environment == "prod":
            raise RuntimeError("AccessDenied: not authorized to perform sts:AssumeRole")
        return original(self, environment, service)

    monkeypatch.setattr(AwsClients, "remote", remote)

    with pytest.raises(ProcessingFailed, match="prod"):
        estate.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")

    out = capsys.readouterr().out
    assert estate.parameter("staging", NAME)["Value"] == "v1"
    assert metric_values(out, "ParameterMirrorFailures") == [({"Environment": "dev"}, 1.0)]
    assert metric_values(out, "ParametersMirrored") == [({"Environment": "dev"}, 1.0)]


# -- S3 replication failures ----------------------------------------------------------------


def test_replication_failure_is_recorded_and_counted(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    result = estate.invoke(replication_monitor, load_event("s3_replication_failed.json"), "dev")

    assert result["recorded"] == 1
    items = estate.client("dev", "dynamodb").query(
        TableName=TABLE, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "LOCAL#S3FAILURE"}})["Items"]
    assert len(items) == 1
    item = estate.item("dev", "LOCAL#S3FAILURE", "2024-09-05T21:04:32.527Z#releases/app config v2.json")
    assert item["bucket"] == "replctl-config-dev-111111111111"
    assert item["key"] == "releases/app config v2.json"
    assert item["version_id"] == "abcdeH0Xp66ep__QDjR76LK7Gc9X4wKO"
    assert item["reason"] == "DstBucketUnversioned"
    assert item["destination_bucket"] == "arn:aws:s3:::replctl-config-staging-222222222222"
    assert datetime.fromisoformat(item["recorded_at"]).tzinfo is not None
    assert metric_values(capsys.readouterr().out, "ReplicationFailures") == [({"Environment": "dev"}, 1.0)]


def test_s3_test_event_is_acknowledged(estate: Estate) -> None:
    assert estate.invoke(replication_monitor, load_event("s3_test_event.json"), "dev") == {"ignored": "s3:TestEvent"}


@pytest.mark.parametrize("event", [
    load_event("s3_object_created.json"),
    load_event("cfn_stack_status_change.json"),
    {"hello": "world"},
    [],
    None,
])
def test_unknown_events_are_logged_counted_and_raised(
    estate: Estate, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, event  # noqa: ANN001
) -> None:
    with pytest.raises(UnhandledEvent):
        estate.invoke(replication_monitor, event, "dev", AWS_LAMBDA_FUNCTION_NAME="replctl-replication-monitor")
    out = capsys.readouterr().out
    assert metric_values(out, "UnhandledEvents") == [({"Environment": "dev", "Function": "replctl-replication-monitor"}, 1.0)]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["unhandled event"]


# -- heartbeat and lag ----------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the code sleeps; `on_sleep` runs what 'happens meanwhile'."""

    def __init__(self, start: float = 1_714_564_800.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.on_sleep: list = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for action in list(self.on_sleep):
            action(self)


def _run_schedule(e: Estate, fake: FakeTime, env: str = "dev", **kw):  # noqa: ANN202
    from replshared.clients import AwsClients
    from replshared.settings import Settings
    from replshared.telemetry import Metrics
    from tests.fnkit import ClockContext, environment, function_env

    if "context" not in kw:
        kw["context"] = ClockContext(fake.clock, 120.0)  # the template's timeout
    elif kw["context"] is None:
        del kw["context"]
    with environment({**function_env(env), **e.creds[env]}):
        settings = Settings.from_env()
        metrics = Metrics(settings.metrics_namespace)
        try:
            return replication_monitor.run_schedule(
                settings, AwsClients(settings, function="replication-monitor"), metrics,
                clock=fake.clock, sleep=fake.sleep, **kw)
        finally:
            metrics.flush()


def _stream_heartbeat_downstream(e: Estate, fake: FakeTime) -> None:
    """What the stream processor does in AWS: the dev heartbeat's stream record, processed, the
    copy written at the fake clock's time (the processor times each copy with its clock)."""
    from replshared.clients import AwsClients
    from replshared.settings import Settings
    from replshared.telemetry import Metrics
    from tests.fnkit import environment, function_env

    item = e.client("dev", "dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "HEARTBEAT"}, "sk": {"S": "dev"}}, ConsistentRead=True)["Item"]
    record = {"eventID": "1", "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
              "awsRegion": "us-east-1",
              "dynamodb": {"Keys": {"pk": item["pk"], "sk": item["sk"]}, "NewImage": item,
                           "SequenceNumber": "4200000000000000001", "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    with environment({**function_env("dev"), **e.creds["dev"]}):
        settings = Settings.from_env()
        metrics = Metrics(settings.metrics_namespace)
        stream_processor.apply_record(record, settings, AwsClients(settings, function="stream-processor"), metrics,
                                      clock=fake.clock)
        metrics.flush()


def _replicate_canary(e: Estate, target: str) -> None:
    """What S3 replication does in AWS (moto does not replicate objects)."""
    body = e.client("dev", "s3").get_object(Bucket=bucket("dev"), Key="_replctl/canary/dev.json")["Body"].read()
    e.client(target, "s3").put_object(Bucket=bucket(target), Key="_replctl/canary/dev.json", Body=body)


def _copy_heartbeat_downstream(e: Estate) -> None:
    """The heartbeat's copy appearing in staging and prod (however it got there)."""
    item = e.client("dev", "dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": "HEARTBEAT"}, "sk": {"S": "dev"}}, ConsistentRead=True)["Item"]
    for target in ("staging", "prod"):
        e.client(target, "dynamodb").put_item(TableName=TABLE, Item=item)


def test_heartbeat_lag_near_the_bound_is_measured_to_50_ms_end_to_end(
    estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the heartbeat's copy shows up downstream 0.8 s after the heartbeat (the doubling
    # poll shared with S3 recorded that as 1.55 s, over the 1 s bound and into the alarm), the
    # staging canary after 0.75 s, prod's never
    fake = FakeTime()
    start = fake.now
    done: dict[str, float] = {}

    def meanwhile(t: FakeTime) -> None:
        if t.now - start >= 0.74 and "canary" not in done:
            done["canary"] = t.now - start
            _replicate_canary(estate, "staging")
        if t.now - start >= 0.79 and "copy" not in done:
            done["copy"] = t.now - start
            _copy_heartbeat_downstream(estate)

    fake.on_sleep.append(meanwhile)

    # WHEN the schedule runs
    result = _run_schedule(estate, fake, context=None, poll_seconds=5.0)

    # THEN the end-to-end check saw the copy within 50 ms, below the 1 s bound
    copied = done["copy"]
    staging = estate.item("dev", "LOCAL#LAG", "staging")
    prod = estate.item("dev", "LOCAL#LAG", "prod")
    for lag in (staging, prod):
        assert copied - 1e-6 <= lag["metadata_lag_seconds"] <= copied + 0.05 + 1e-6 < 1.0
        assert lag["metadata_visible"] is True
    assert 0.79 <= copied <= 0.85
    assert done["canary"] - 1e-6 <= staging["s3_lag_seconds"] <= done["canary"] + 0.4 and staging["s3_visible"] is True
    assert prod["s3_visible"] is False and prod["s3_lag_seconds"] == pytest.approx(5.0)  # lower bound
    assert staging["heartbeat_version"] == 1
    assert datetime.fromisoformat(staging["measured_at"]) == datetime.fromtimestamp(start + 5.0, tz=timezone.utc)
    assert sum(fake.sleeps) == pytest.approx(5.0)  # bounded: stopped at the deadline
    assert max(fake.sleeps) <= 2.0  # backoff capped
    # ... the heartbeat carries its millisecond write time, for the stream processor ...
    heartbeat = estate.item("dev", "HEARTBEAT", "dev")
    assert heartbeat["version"] == result["heartbeat_version"] == 1
    assert heartbeat["written_at"] == pytest.approx(start) and heartbeat["origin"] == "dev"
    assert heartbeat["written_at_ms"] == round(start * 1000)
    canary = json.loads(estate.client("dev", "s3").get_object(Bucket=bucket("dev"), Key="_replctl/canary/dev.json")["Body"].read())
    assert canary["heartbeat_version"] == 1
    # ... and publishes what it saw as HeartbeatLag; the lag alarm's metric is left to the copy
    out = capsys.readouterr().out
    end_to_end = {d["Target"]: (d, v) for d, v in metric_values(out, "HeartbeatLag")}
    assert set(end_to_end) == {"staging", "prod"}
    assert end_to_end["prod"][0] == {"Environment": "dev", "Target": "prod"}
    assert all(copied - 1e-6 <= v <= copied + 0.05 + 1e-6 for _, v in end_to_end.values())
    assert metric_values(out, "MetadataReplicationLag") == []
    s3_lag = {d["Target"]: v for d, v in metric_values(out, "S3CanaryLag")}
    assert s3_lag == {"staging": pytest.approx(staging["s3_lag_seconds"]), "prod": pytest.approx(5.0)}


def test_the_stream_processor_times_the_heartbeat_copy_where_it_writes_it(
    estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the stream processor writes the heartbeat's copies 0.834 s after the heartbeat
    fake = FakeTime()
    fake.on_sleep.append(lambda t: _stream_heartbeat_downstream(estate, t) if t.now - fake_start >= 0.8 else None)
    fake_start = fake.now

    # WHEN the schedule runs
    _run_schedule(estate, fake, poll_seconds=3.0, reconcile=False)

    # THEN the copy is the source item unchanged, and its lag was measured to the millisecond
    source = estate.item("dev", "HEARTBEAT", "dev")
    assert estate.item("staging", "HEARTBEAT", "dev") == source == estate.item("prod", "HEARTBEAT", "dev")
    seen = estate.item("dev", "LOCAL#LAG", "prod")["metadata_lag_seconds"]
    out = capsys.readouterr().out
    precise = {d["Target"]: v for d, v in metric_series(out, "MetadataReplicationLag")}
    assert set(precise) == {"staging", "prod"}
    for values in precise.values():
        (value,) = values
        assert 0.8 <= value <= seen + 1e-5 and seen <= value + 0.05 + 1e-5  # the poll saw it at most 50 ms later


def test_a_heartbeat_never_seen_puts_its_lower_bound_where_the_alarm_looks(
    estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    # No copy is ever written (the stream processor is down): nothing measures at the copy, so
    # the monitor publishes the time it waited - a true lower bound - as MetadataReplicationLag.
    _run_schedule(estate, FakeTime(), poll_seconds=5.0, reconcile=False)
    out = capsys.readouterr().out
    assert {d["Target"]: v for d, v in metric_series(out, "MetadataReplicationLag")} == {
        "staging": [pytest.approx(5.0)], "prod": [pytest.approx(5.0)]}
    assert estate.item("dev", "LOCAL#LAG", "staging")["metadata_visible"] is False


def test_heartbeat_stops_polling_as_soon_as_everything_is_visible(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeTime()

    def meanwhile(t: FakeTime) -> None:
        _stream_heartbeat_downstream(estate, t)
        for target in ("staging", "prod"):
            _replicate_canary(estate, target)

    fake.on_sleep.append(meanwhile)
    result = _run_schedule(estate, fake, poll_seconds=30.0)

    assert fake.sleeps == [pytest.approx(0.05, abs=1e-6)]
    assert result["lag"]["prod"]["metadata"] == (pytest.approx(0.05), True)
    assert estate.item("staging", "HEARTBEAT", "dev")["version"] == 1
    # seen: the lag metric is the stream processor's (one per copy), not the monitor's
    assert [v for _, v in metric_series(capsys.readouterr().out, "MetadataReplicationLag")] == [
        [pytest.approx(0.05, abs=1e-3)], [pytest.approx(0.05, abs=1e-3)]]


def test_heartbeat_version_grows_on_each_run(estate: Estate) -> None:
    fake = FakeTime()
    _run_schedule(estate, fake, poll_seconds=0.0)
    result = _run_schedule(estate, fake, poll_seconds=0.0)
    assert result["heartbeat_version"] == 2
    # the downstream copy is still version 0/absent: not visible, lag is the (zero) lower bound
    assert estate.item("dev", "LOCAL#LAG", "staging")["metadata_visible"] is False


def test_prod_heartbeat_has_no_targets(estate: Estate) -> None:
    result = _run_schedule(estate, FakeTime(), env="prod", poll_seconds=5.0)
    assert result["lag"] == {}
    assert estate.item("prod", "HEARTBEAT", "prod")["version"] == 1
    assert estate.item("prod", "LOCAL#LAG", "dev") is None


def test_scheduled_event_through_the_handler(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    # 35.2 s left: 15 s are kept back and 20 s left for the reconciliation, which leaves a 0.2 s
    # poll: nothing arrives (no stream processor here).
    result = estate.invoke(replication_monitor, load_event("scheduled.json"), "dev", context=FakeContext(remaining_ms=35_200))

    assert set(result["lag"]) == {"staging", "prod"}
    assert result["lag"]["staging"]["metadata"][1] is False
    assert 0.19 <= result["lag"]["staging"]["metadata"][0] < 10.0  # lower bound: the poll budget
    out = capsys.readouterr().out
    assert {d["Target"] for d, _ in metric_values(out, "MetadataReplicationLag")} == {"staging", "prod"}


def test_schedule_backfills_parameters_that_existed_before_mirroring(estate: Estate) -> None:
    put(estate, "dev", "/app/dev/config/a", "1")
    put(estate, "dev", "/app/dev/config/nested/b", "2")
    # a mirror whose source is gone, written by an earlier run
    estate.client("prod", "ssm").put_parameter(
        Name="/app/dev/config/old", Value="x", Type="String",
        Description=monitor_logic.mirror_description("dev", 1, 1_000.0))

    _run_schedule(estate, FakeTime(), poll_seconds=0.0)

    for env in ("staging", "prod"):
        assert estate.parameter(env, "/app/dev/config/a")["Value"] == "1"
        assert estate.parameter(env, "/app/dev/config/nested/b")["Value"] == "2"
    assert estate.parameter("prod", "/app/dev/config/old") is None
