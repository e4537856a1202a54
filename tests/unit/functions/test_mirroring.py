"""SSM mirroring against a fake Parameter Store that answers as the SSM API reference says.

moto lets PutParameter change a parameter's type and never throttles, so the rules that matter
here run against tests.fnkit.FakeSSM, each rule citing its sentence (checked first, below). Time
is a fake clock: every SSM call costs `latency` seconds of it, the Lambda context's remaining
time runs down with it, and sleeps only move it forward.

GIVEN a source hierarchy and its mirrors, WHEN the monitor syncs one parameter or reconciles the
hierarchy, THEN mirrors match the source without ever overwriting a newer mirror, type changes
are replaced (delete, 30 s, put), and the run stops before the deadline saying what it left.
"""

from __future__ import annotations

import pytest

from tests.fnkit import ClockContext, FakeClients, FakeSSM, function_env

import mirroring  # noqa: E402  (on sys.path through tests.fnkit)
from monitor_logic import mirror_description, parse_mirror_description  # noqa: E402
from replshared.budget import Budget  # noqa: E402
from replshared.settings import Settings  # noqa: E402
from replshared.telemetry import Metrics  # noqa: E402

T0 = 1_714_564_800.0
NAME = "/app/dev/config/db/url"


class FakeTime:
    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class World:
    """dev (the source) and its two downstream environments, on one fake clock."""

    def __init__(self, latency: float = 0.0, seconds: float = 120.0, secure: bool = False) -> None:
        self.time = FakeTime()
        self.ssm = {env: FakeSSM(self.time, latency) for env in ("dev", "staging", "prod")}
        self.settings = Settings.from_env(function_env("dev", MIRROR_SECURE_STRINGS="true" if secure else "false"))
        self.metrics = Metrics("ReplicationFramework")
        self.context = ClockContext(self.time.clock, seconds)

    def run(self, *, schedule: bool, reserve: float = 15.0) -> mirroring.MirrorRun:
        budget = Budget.from_context(self.context, reserve, sleep=self.time.sleep, jitter=lambda: 1.0,
                                     max_attempts=6 if schedule else 1)
        return mirroring.MirrorRun(self.settings, FakeClients(self.ssm), self.metrics, budget,
                                   "schedule" if schedule else "event:Update", stop_when_throttled=schedule)

    def mirror(self, env: str, name: str = NAME) -> dict | None:
        return self.ssm[env].params.get(name)

    def marker(self, env: str, name: str = NAME) -> tuple[str, int, float] | None:
        found = self.mirror(env, name)
        return parse_mirror_description(found["Description"]) if found else None


# -- the fake answers as documented ---------------------------------------------------------


def test_fake_refuses_a_type_change_and_a_duplicate_create() -> None:
    ssm = FakeSSM()
    ssm.put_parameter(Name=NAME, Value="a", Type="String")
    for kind in ("SecureString", "StringList"):
        with pytest.raises(Exception, match="HierarchyTypeMismatchException"):
            ssm.put_parameter(Name=NAME, Value="b", Type=kind, Overwrite=True)
    with pytest.raises(Exception, match="ParameterAlreadyExists"):
        ssm.put_parameter(Name=NAME, Value="b", Type="String")
    assert ssm.put_parameter(Name=NAME, Value="b", Type="String", Overwrite=True)["Version"] == 2
    assert ssm.put_parameter(Name=NAME, Value="c", Overwrite=True)["Version"] == 3  # type may be omitted on update
    with pytest.raises(Exception, match="ValidationException"):
        ssm.put_parameter(Name="/app/dev/config/new", Value="x")  # but not on create


def test_fake_pages_and_batches_within_the_api_maxima() -> None:
    ssm = FakeSSM()
    for i in range(23):
        ssm.put_parameter(Name=f"/app/dev/config/p{i:02d}", Value=str(i), Type="SecureString" if i % 2 else "String")
    page = ssm.get_parameters_by_path(Path="/app/dev/config", Recursive=True, MaxResults=10)
    assert len(page["Parameters"]) == 10 and page["NextToken"]
    assert page["Parameters"][1]["Value"].startswith("AQICAH")  # a SecureString, not decrypted
    with pytest.raises(Exception, match="ValidationException"):
        ssm.get_parameters_by_path(Path="/app/dev/config", MaxResults=11)
    with pytest.raises(Exception, match="ValidationException"):
        ssm.get_parameters(Names=[f"/app/dev/config/p{i:02d}" for i in range(11)])
    got = ssm.get_parameters(Names=["/app/dev/config/p01", "/app/dev/config/gone"], WithDecryption=True)
    assert [p["Value"] for p in got["Parameters"]] == ["1"] and got["InvalidParameters"] == ["/app/dev/config/gone"]
    assert "Value" not in ssm.describe_parameters(MaxResults=50)["Parameters"][0]


def test_fake_records_a_recreate_sooner_than_30_seconds_after_a_delete() -> None:
    time = FakeTime()
    ssm = FakeSSM(time)
    ssm.put_parameter(Name=NAME, Value="a", Type="String")
    ssm.delete_parameter(Name=NAME)
    time.now += 29.0
    ssm.put_parameter(Name=NAME, Value="b", Type="SecureString")
    assert ssm.early_recreates == [NAME]
    with pytest.raises(Exception, match="ParameterNotFound"):
        ssm.delete_parameter(Name="/app/dev/config/never")


# -- a type change (String <-> StringList <-> SecureString) ----------------------------------


def _mirrored(world: World, kind: str, value: str = "v1", version: int = 1) -> None:
    world.ssm["dev"].seed(NAME, value, kind, version=version, modified=T0 - 100)
    for env in ("staging", "prod"):
        world.ssm[env].seed(NAME, value, kind, mirror_description("dev", version, T0 - 100))


@pytest.mark.parametrize("old, new", [("String", "SecureString"), ("SecureString", "String"),
                                      ("String", "StringList"), ("StringList", "SecureString")])
def test_an_event_replaces_a_mirror_whose_type_changed(old: str, new: str) -> None:
    # GIVEN mirrors of a parameter that was re-created in dev with another type
    world = World(secure=True)
    _mirrored(world, old)
    world.ssm["dev"].seed(NAME, "v2", new, version=1, modified=T0)

    # WHEN its change event is handled
    out = mirroring.sync_parameter(world.run(schedule=False), NAME)

    # THEN each mirror is deleted, and written with the new type 30 s later, never overwritten in place
    assert out.failures == [] and out.left == 0 and out.written == 2
    for env in ("staging", "prod"):
        mirror = world.mirror(env)
        assert (mirror["Type"], mirror["Value"]) == (new, "v2")
        assert world.marker(env)[:2] == ("dev", 1)
        ops = [op for op, _ in world.ssm[env].calls if op in ("PutParameter", "DeleteParameter")]
        assert ops == ["DeleteParameter", "PutParameter"]
        assert world.ssm[env].early_recreates == []
    assert world.time.sleeps == [30.0]  # one wait for both targets


def test_a_replacement_rechecks_and_keeps_a_newer_mirror_written_meanwhile() -> None:
    world = World()
    _mirrored(world, "String")
    world.ssm["dev"].seed(NAME, "v2", "StringList", version=1, modified=T0)
    newer = mirror_description("dev", 2, T0 + 10)

    def another_writer(seconds: float) -> None:  # during the 30 s, a later event wrote version 2
        FakeTime.sleep(world.time, seconds)
        world.ssm["staging"].seed(NAME, "v3", "StringList", newer)

    world.time.sleep = another_writer  # type: ignore[method-assign]
    out = mirroring.sync_parameter(world.run(schedule=False), NAME)

    assert out.failures == []
    assert world.mirror("staging")["Value"] == "v3" and world.mirror("staging")["Description"] == newer
    assert world.mirror("prod")["Value"] == "v2"


def test_an_event_without_time_for_the_wait_leaves_the_type_change_to_the_schedule() -> None:
    world = World(seconds=35.0)  # less than the 30 s wait and its margin
    _mirrored(world, "String")
    world.ssm["dev"].seed(NAME, "v2", "StringList", version=1, modified=T0)

    out = mirroring.sync_parameter(world.run(schedule=False, reserve=0.0), NAME)

    assert out.failures == [] and out.left == 2 and "30 s wait" in out.stopped
    assert world.mirror("staging")["Value"] == "v1"  # untouched, not half-replaced
    assert world.ssm["staging"].count("DeleteParameter") == 0


def test_mirroring_switched_off_removes_a_mirror_whose_source_became_a_secure_string() -> None:
    world = World(secure=False)
    _mirrored(world, "String")
    world.ssm["dev"].seed(NAME, "secret", "SecureString", version=1, modified=T0)

    out = mirroring.sync_parameter(world.run(schedule=False), NAME)

    assert out.failures == [] and world.mirror("staging") is None and world.mirror("prod") is None
    assert world.ssm["staging"].count("PutParameter") == 0


# -- the scheduled reconciliation: batches, budget, throttling -------------------------------


def _hierarchy(world: World, n: int, kind: str = "String") -> list[str]:
    names = [f"/app/dev/config/p{i:03d}" for i in range(n)]
    for i, name in enumerate(names):
        world.ssm["dev"].seed(name, f"value-{i}", kind, version=1, modified=T0 - 50)
    return names


def test_reconcile_reads_in_batches_and_reuses_the_listing() -> None:
    world = World()
    names = _hierarchy(world, 25)

    out = mirroring.reconcile(world.run(schedule=True))

    assert out.failures == [] and out.left == 0 and out.stopped is None and out.written == 50
    dev = world.ssm["dev"]
    assert dev.count("GetParametersByPath") == 3  # 25 parameters, 10 per page
    assert all(kw["MaxResults"] == 10 and kw["WithDecryption"] is False for op, kw in dev.calls
               if op == "GetParametersByPath")
    assert dev.count("GetParameter") == 0 and dev.count("GetParameters") == 0  # values reused
    for env in ("staging", "prod"):
        assert world.ssm[env].count("DescribeParameters") == 1 and world.ssm[env].count("PutParameter") == 25
        assert [world.mirror(env, n)["Value"] for n in names] == [f"value-{i}" for i in range(25)]


def test_reconcile_decrypts_only_the_secure_strings_it_writes_ten_per_call() -> None:
    world = World(secure=True)
    names = _hierarchy(world, 23, kind="SecureString")
    for env in ("staging", "prod"):  # the first three are mirrored already
        for name in names[:3]:
            world.ssm[env].seed(name, "x", "SecureString", mirror_description("dev", 1, T0 - 50))

    out = mirroring.reconcile(world.run(schedule=True))

    assert out.failures == [] and out.written == 40
    asked = [kw for op, kw in world.ssm["dev"].calls if op == "GetParameters"]
    assert [len(kw["Names"]) for kw in asked] == [10, 10] and all(kw["WithDecryption"] for kw in asked)
    assert not {n for kw in asked for n in kw["Names"]} & set(names[:3])
    assert world.mirror("prod", names[10])["Value"] == "value-10"  # the plaintext, not the listed ciphertext


def test_reconcile_stops_before_the_deadline_and_the_next_run_continues(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN 200 parameters to backfill and calls that take 0.2 s each: more than one run can do
    world = World(latency=0.2, seconds=60.0)
    names = _hierarchy(world, 200)

    first = mirroring.reconcile(world.run(schedule=True))

    # THEN it stopped cleanly with time to spare, and said how much it left
    assert first.failures == [] and first.stopped and first.left > 0
    assert first.written + first.left == 400
    assert world.context.get_remaining_time_in_millis() >= 15_000 - 200  # the reserve (less one call in flight)
    done = [n for n in names if world.mirror("staging", n) is not None]
    assert done == names[:len(done)]  # in order, so the next run picks up after it

    # WHEN the next runs come (each with a fresh invocation)
    for _ in range(10):
        world.context = ClockContext(world.time.clock, 60.0)
        out = mirroring.reconcile(world.run(schedule=True))
        if out.left == 0:
            break
    # THEN everything was mirrored, none of it twice
    assert out.left == 0 and out.stopped is None
    assert all(world.mirror(env, n)["Version"] == 1 for env in ("staging", "prod") for n in names)


def test_reconcile_backs_off_on_throttling_within_the_budget() -> None:
    world = World()
    _hierarchy(world, 3)
    world.ssm["staging"].throttle["PutParameter"] = 3

    out = mirroring.reconcile(world.run(schedule=True))

    assert out.failures == [] and out.left == 0 and out.written == 6
    assert world.time.sleeps == [0.5, 1.0, 2.0]  # exponential (jitter pinned at its top)
    assert world.ssm["staging"].count("PutParameter") == 6


def test_reconcile_stops_cleanly_when_throttling_persists() -> None:
    world = World(seconds=30.0)
    _hierarchy(world, 3)
    world.ssm["staging"].throttle["PutParameter"] = 1_000

    out = mirroring.reconcile(world.run(schedule=True))

    assert out.failures == [] and out.left == 6 and "throttled" in out.stopped
    assert sum(world.time.sleeps) < 15.0  # never slept past what the budget allowed
    assert world.ssm["prod"].count("PutParameter") == 0  # and did not press on elsewhere


def test_reconcile_replaces_type_changes_after_the_other_work() -> None:
    world = World()
    names = _hierarchy(world, 3)
    for env in ("staging", "prod"):
        world.ssm[env].seed(names[1], "old", "StringList", mirror_description("dev", 1, T0 - 500))

    out = mirroring.reconcile(world.run(schedule=True))

    assert out.failures == [] and out.left == 0 and out.written == 6
    assert world.time.sleeps == [30.0]
    assert world.mirror("prod", names[1])["Type"] == "String"
    assert all(s.early_recreates == [] for s in world.ssm.values())


def test_a_stale_listing_never_rolls_a_mirror_back() -> None:
    world = World()
    world.ssm["dev"].seed(NAME, "v1", "String", version=1, modified=T0 - 10)
    for env in ("staging", "prod"):  # an event already mirrored a later version
        world.ssm[env].seed(NAME, "v2", "String", mirror_description("dev", 2, T0))

    out = mirroring.reconcile(world.run(schedule=True))

    assert out.written == 0 and world.mirror("staging")["Value"] == "v2"
