"""monitor_logic: mirror decisions, S3 failure records, bounded lag polling (no AWS)."""

from __future__ import annotations

import pytest

import tests.fnkit  # noqa: F401  (puts the function folders on sys.path)
from tests.fnkit import load_event

from monitor_logic import (  # noqa: E402
    METADATA_POLL,
    S3_POLL,
    DeleteMirror,
    KeepMirror,
    MirrorState,
    MirrorWork,
    PutMirror,
    ReplaceMirror,
    SourceParameter,
    canary_key,
    decide_mirror,
    failure_item,
    in_hierarchy,
    lag_item,
    lag_seconds,
    mirror_description,
    parse_mirror_description,
    parse_parameter_change,
    parse_replication_failure,
    plan_mirrors,
    poll_until_visible,
    put_mirror_request,
)

T0 = 1_714_564_800.123456


def source(version: int = 2, modified: float = T0, kind: str = "String") -> SourceParameter:
    return SourceParameter(name="/app/dev/config/x", type=kind, value="v", version=version, modified=modified)


def mirror_of(version: int, modified: float, env: str = "dev", kind: str | None = "String") -> MirrorState:
    return MirrorState(name="/app/dev/config/x", description=mirror_description(env, version, modified), type=kind)


def decide(src: SourceParameter | None, mirror: MirrorState | None, secure: bool = False):  # noqa: ANN201
    return decide_mirror(src, mirror, source_env="dev", mirror_secure_strings=secure)


def test_description_round_trip() -> None:
    text = mirror_description("dev", 7, T0)
    assert text == "replctl-mirror source=dev version=7 modified=1714564800.123456"
    assert parse_mirror_description(text) == ("dev", 7, T0)
    assert parse_mirror_description("Database URL") is None
    assert parse_mirror_description(None) is None


@pytest.mark.parametrize("src, mirror, expected", [
    (source(), None, PutMirror),
    (source(), MirrorState("/app/dev/config/x", "hand made"), PutMirror),
    (source(version=3), mirror_of(2, T0), PutMirror),  # same time, higher version
    (source(version=1, modified=T0 + 5), mirror_of(9, T0), PutMirror),  # re-created: later time wins
    (source(version=2), mirror_of(2, T0), KeepMirror),  # already there
    (source(version=2), mirror_of(3, T0), KeepMirror),  # mirror newer: a stale read cannot win
    (source(version=5, modified=T0 - 1), mirror_of(2, T0), KeepMirror),  # older time loses
    (None, mirror_of(2, T0), DeleteMirror),
    (None, MirrorState("/app/dev/config/x", "hand made"), KeepMirror),
    (None, mirror_of(2, T0, env="staging"), KeepMirror),  # not written from this environment
    (None, None, KeepMirror),
    (source(kind="SecureString"), None, KeepMirror),
    (source(kind="SecureString"), mirror_of(1, T0 - 10), DeleteMirror),
])
def test_decide_mirror(src, mirror, expected) -> None:  # noqa: ANN001
    assert isinstance(decide(src, mirror), expected)


@pytest.mark.parametrize("old, new", [
    ("String", "SecureString"), ("SecureString", "String"), ("String", "StringList"), ("StringList", "String"),
    ("StringList", "SecureString"), ("SecureString", "StringList"),
])
def test_a_newer_source_of_another_type_replaces_the_mirror(old: str, new: str) -> None:
    # PutParameter cannot change a type ("Parameter Store doesn't support changing a parameter
    # type in a hierarchy", HierarchyTypeMismatchException): the mirror is replaced instead.
    action = decide(source(version=3, kind=new), mirror_of(2, T0, kind=old), secure=True)
    assert isinstance(action, ReplaceMirror) and f"from {old} to {new}" in action.reason


def test_a_type_change_never_lets_an_older_source_win() -> None:
    # A stale read of another type is still older: the newer mirror stays, whatever its type.
    assert isinstance(decide(source(version=1, kind="String"), mirror_of(2, T0, kind="SecureString"), secure=True),
                      KeepMirror)
    # A hand-made parameter of another type is replaced like it would be overwritten.
    hand_made = MirrorState("/app/dev/config/x", "hand made", "StringList")
    assert isinstance(decide(source(), hand_made), ReplaceMirror)
    # Mirroring switched off: a SecureString source only ever removes the old mirror.
    assert isinstance(decide(source(version=3, kind="SecureString"), mirror_of(2, T0, kind="String")), DeleteMirror)
    # Unknown mirror type (not described): decided as before.
    assert isinstance(decide(source(version=3), mirror_of(2, T0, kind=None)), PutMirror)


def test_plan_lists_only_what_changes_by_name_then_target() -> None:
    sources = {"/app/dev/config/a": SourceParameter("/app/dev/config/a", "String", "1", 1, T0),
               "/app/dev/config/b": SourceParameter("/app/dev/config/b", "String", "2", 2, T0)}
    mirrors = {
        "staging": {"/app/dev/config/a": MirrorState("/app/dev/config/a", mirror_description("dev", 1, T0), "String"),
                    "/app/dev/config/old": MirrorState("/app/dev/config/old", mirror_description("dev", 1, T0), "String")},
        "prod": {"/app/dev/config/b": MirrorState("/app/dev/config/b", mirror_description("dev", 1, T0), "StringList")},
    }
    plan = plan_mirrors(sources, mirrors, source_env="dev", mirror_secure_strings=False)
    assert [(w.name, w.target, type(w.action)) for w in plan] == [
        ("/app/dev/config/a", "prod", PutMirror),
        ("/app/dev/config/b", "staging", PutMirror),
        ("/app/dev/config/b", "prod", ReplaceMirror),
        ("/app/dev/config/old", "staging", DeleteMirror),
    ]
    assert all(isinstance(w, MirrorWork) for w in plan)


def test_an_unread_value_is_never_written() -> None:
    listed = SourceParameter(name="/app/dev/config/x", type="SecureString", value=None, version=1, modified=T0)
    with pytest.raises(ValueError, match="not read"):
        put_mirror_request(listed, "dev")


def test_secure_string_mirrored_when_enabled() -> None:
    assert isinstance(decide(source(kind="SecureString"), None, secure=True), PutMirror)
    request = put_mirror_request(source(kind="SecureString"), "dev")
    assert request["Type"] == "SecureString" and "KeyId" not in request  # the target's default key
    assert request["Overwrite"] is True and request["Description"].startswith("replctl-mirror source=dev version=2")


def test_parse_parameter_change() -> None:
    change = parse_parameter_change(load_event("ssm_parameter_updated.json")["detail"])
    assert (change.name, change.operation, change.type) == ("/app/dev/config/db/url", "Update", "String")
    for bad in ({}, {"name": "no-slash", "operation": "Create"}, {"name": "/a//b", "operation": "Create"},
                {"name": "/a/b c", "operation": "Create"}, {"name": "/a/b"}, "detail"):
        with pytest.raises(ValueError):
            parse_parameter_change(bad)


def test_in_hierarchy() -> None:
    assert in_hierarchy("/app/dev/config/x", "/app/dev/config")
    assert in_hierarchy("/app/dev/config/a/b", "/app/dev/config/")
    assert not in_hierarchy("/app/dev/config", "/app/dev/config")
    assert not in_hierarchy("/app/dev/configuration/x", "/app/dev/config")
    assert not in_hierarchy("/app/staging/config/x", "/app/dev/config")


def test_parse_replication_failure_and_item() -> None:
    record = load_event("s3_replication_failed.json")["Records"][0]
    failure = parse_replication_failure(record)
    assert failure.key == "releases/app config v2.json"  # URL-decoded
    assert failure.reason == "DstBucketUnversioned" and failure.rule_id == "to-staging"
    item = failure_item(failure, environment="dev", recorded_at="2024-09-05T21:05:00+00:00", version=5)
    assert item["pk"] == "LOCAL#S3FAILURE"
    assert item["sk"] == "2024-09-05T21:04:32.527Z#releases/app config v2.json"
    assert {k: item[k] for k in ("bucket", "key", "version_id", "reason", "recorded_at")} == {
        "bucket": "replctl-config-dev-111111111111", "key": "releases/app config v2.json",
        "version_id": "abcdeH0Xp66ep__QDjR76LK7Gc9X4wKO", "reason": "DstBucketUnversioned",
        "recorded_at": "2024-09-05T21:05:00+00:00"}


def test_replication_failure_other_event_and_broken_records() -> None:
    assert parse_replication_failure(load_event("s3_object_created.json")["Records"][0]) is None
    record = load_event("s3_replication_failed.json")["Records"][0]
    del record["replicationEventData"]
    with pytest.raises(ValueError):
        parse_replication_failure(record)
    with pytest.raises(ValueError):
        parse_replication_failure("record")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_s3_poll_backs_off_to_a_cap_and_stops_at_the_deadline() -> None:
    clock = Clock()
    seen = poll_until_visible({"never": (lambda: False, S3_POLL)}, clock=clock, sleep=clock.sleep,
                              start=100.0, deadline=110.0)
    assert seen == {"never": None}
    assert clock.sleeps[:6] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6])
    assert max(clock.sleeps) == pytest.approx(2.0)
    assert clock.now == pytest.approx(110.0)


def test_metadata_poll_looks_every_50_ms_near_the_bound_then_backs_off() -> None:
    clock = Clock()
    looks: list[float] = []

    def never() -> bool:
        looks.append(clock.now - 100.0)
        return False

    poll_until_visible({"metadata": (never, METADATA_POLL)}, clock=clock, sleep=clock.sleep, start=100.0, deadline=110.0)
    near_bound = [t for t in looks if t < 1.999]
    assert len(near_bound) == 40  # 0, 0.05, ... 1.95
    assert max(b - a for a, b in zip(near_bound, near_bound[1:])) == pytest.approx(0.05)
    gaps = [round(b - a, 6) for a, b in zip(looks, looks[1:]) if a > 2.01]
    assert gaps[:5] == [0.05, 0.1, 0.2, 0.4, 0.8] and max(gaps) == 2.0  # then backs off to the cap
    assert clock.now == pytest.approx(110.0)


@pytest.mark.parametrize("arrival", [0.12, 0.5, 0.8, 0.97, 1.03, 1.4])
def test_a_lag_near_the_bound_is_measured_to_50_ms(arrival: float) -> None:
    # The doubling series shared with S3 saw an arrival at 0.8 s only at 1.55 s.
    clock = Clock()
    seen = poll_until_visible({"metadata": (lambda: clock.now - 100.0 >= arrival, METADATA_POLL)},
                              clock=clock, sleep=clock.sleep, start=100.0, deadline=160.0)
    measured = seen["metadata"] - 100.0
    assert arrival <= measured <= arrival + 0.05 + 1e-9


def test_probes_keep_their_own_schedules() -> None:
    clock = Clock()
    s3_looks: list[float] = []

    def s3() -> bool:
        s3_looks.append(round(clock.now - 100.0, 6))
        return False

    seen = poll_until_visible({"metadata": (lambda: clock.now - 100.0 >= 0.81, METADATA_POLL), "s3": (s3, S3_POLL)},
                              clock=clock, sleep=clock.sleep, start=100.0, deadline=102.0)
    assert 100.81 <= seen["metadata"] <= 100.86
    assert s3_looks[:5] == [0.0, 0.05, 0.15, 0.35, 0.75]  # S3's doubling, untouched by the 50 ms looks


def test_poll_records_when_each_probe_became_visible() -> None:
    clock = Clock()
    calls = {"n": 0}

    def later() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    def broken() -> bool:
        raise RuntimeError("throttled")

    seen = poll_until_visible({"now": (lambda: True, S3_POLL), "later": (later, S3_POLL), "broken": (broken, S3_POLL)},
                              clock=clock, sleep=clock.sleep, start=100.0, deadline=101.0)
    assert seen["now"] == 100.0
    assert seen["later"] == pytest.approx(100.15)
    assert seen["broken"] is None


def test_lag_seconds_and_item() -> None:
    assert lag_seconds(10.0, 10.4, 50.0) == (pytest.approx(0.4), True)
    assert lag_seconds(10.0, None, 50.0) == (40.0, False)
    item = lag_item(target="prod", environment="dev", metadata=(0.4, True), s3=(40.0, False),
                    measured_at="2024-05-01T00:00:00+00:00", heartbeat_version=3)
    assert item["pk"] == "LOCAL#LAG" and item["sk"] == "prod"
    assert item["metadata_lag_seconds"] == 0.4 and item["s3_lag_seconds"] == 40.0
    assert item["heartbeat_version"] == 3 and item["measured_at"] == "2024-05-01T00:00:00+00:00"
    assert canary_key("dev") == "_replctl/canary/dev.json"
