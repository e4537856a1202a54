"""Waiting on StackSet operations by event, against the scripted fake StackSet service and its queue.

GIVEN the fake StackSet service announcing each change as CloudFormation does (operation and
instance events) through a bus the test scripts (delay, loss, duplicates, order) into the
bootstrap's SQS queue, WHEN replctl rolls out or attaches, THEN a terminal event wakes the wait
and one DescribeStackSetOperation with its results confirms it; instance events drive the
per-account display with no extra calls; other operations' messages are left for their owner and
finished ones deleted; a lost event is found by the safety read; without the queue the waiter
polls as before and says once why; and a STOPPED or FAILED operation reads exactly as it does
when polling.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from replctl.cli import app
from replctl.commands import deploy
from replctl.config import Config, load_config
from replctl.deploy.plan import build_plan
from replctl.deploy.rollout import RolloutLog, apply, attach
from replctl.deploy.template import identity
from replctl.errors import DeployError
from tests.unit.deploy.fake_stacksets import (
    CONFIG,
    DEV,
    NAME,
    PROD,
    REGION,
    STAGING,
    World,
    error,
    make_artifacts,
    write_estate,
)
from tests.unit.deploy.test_rollout import Recording

CONFIRM = ("DescribeStackSetOperation", "ListStackSetOperationResults")
runner = CliRunner()


class Estate:
    """A fake AWS with the event queue (unless `events=False`) and a plan to apply to it."""

    def __init__(self, tmp_path: Path, *, events: bool = True, config: str = CONFIG, mode: str = "auto") -> None:
        self.config: Config = load_config(write_estate(tmp_path, config=config))
        self.artifacts = make_artifacts(tmp_path)
        self.world = World(events=events)
        self.reporter = Recording()
        self.mode = mode
        self.clients = self.world.clients(mode)

    def apply(self, log: RolloutLog | None = None) -> RolloutLog:
        plan = build_plan(self.config, self.clients, artifacts=self.artifacts, lint=False)
        self.world.cfn.calls.clear()
        return apply(plan, self.config, self.clients, reporter=self.reporter, sleep=self.world.clock.sleep,
                     clock=self.world.clock, log=log)

    def reads_during_waits(self) -> list[str]:
        return [api for api, _ in self.world.cfn.calls if api in CONFIRM]

    def queue_calls(self) -> list[str]:
        assert self.world.queue is not None
        return [api for api, _ in self.world.queue.calls]


@pytest.fixture()
def estate(tmp_path: Path) -> Estate:
    return Estate(tmp_path)


def ended(world: World) -> dict[str, float]:
    """When each operation ended, on the fake clock."""
    return {op.id: op.end for op in world.cfn.operations.values()}


# --------------------------------------------------------------------------- the plain case


def test_each_terminal_event_is_confirmed_by_exactly_one_read(estate: Estate) -> None:
    log = estate.apply()
    assert log.completed == ["dev", "staging", "prod", "wiring dev", "wiring staging"]
    # Five 30-second operations: no read while they ran, one Describe + one results page after each.
    assert estate.reads_during_waits() == list(CONFIRM) * 5
    assert estate.world.clock.sleeps and max(estate.world.clock.sleeps) <= 20  # long polls, never longer
    # The wait ended when the operation did (events are delivered at once here).
    finished = [s for s in estate.reporter.steps if s.startswith("finished ")]
    assert len(finished) == 5
    assert estate.world.queue is not None and estate.world.queue.pending() == []  # every message deleted


def test_instance_events_drive_the_per_account_progress_with_no_extra_call(tmp_path: Path) -> None:
    two = CONFIG.replace('account_id: "111111111111"\n', 'account_id: "111111111111"\n'
                         '    extra_account_ids: ["444444444444"]\n')
    estate = Estate(tmp_path, config=two)
    estate.world.cfn.durations = [40]
    estate.apply()
    dev_op = estate.world.cfn.calls_to("CreateStackInstances")[0]["OperationId"]
    seen = [results for op, status, results in estate.reporter.progress_seen if op == dev_op and status == "RUNNING"]
    # The display moved account by account from the events alone: PENDING → RUNNING → SUCCEEDED.
    assert ((DEV, REGION, "RUNNING"), ("444444444444", REGION, "PENDING")) in seen
    assert ((DEV, REGION, "SUCCEEDED"), ("444444444444", REGION, "RUNNING")) in seen
    assert estate.reads_during_waits() == list(CONFIRM) * 5


def test_a_delayed_event_is_noticed_when_it_arrives(estate: Estate) -> None:
    assert estate.world.bus is not None
    estate.world.bus.delay = lambda event: 2.5
    estate.world.cfn.durations = [30, 30, 30, 30, 30]
    estate.apply()
    ends = ended(estate.world)
    describes = [(kw["OperationId"], t) for (api, kw), t in zip(estate.world.cfn.calls, _times(estate))
                 if api == "DescribeStackSetOperation"]
    assert describes and all(t - ends[op] == pytest.approx(2.5) for op, t in describes)


def _times(estate: Estate) -> list[float]:
    return [kw["_at"] for _, kw in estate.world.cfn.calls]


@pytest.fixture(autouse=True)
def stamp_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fake CloudFormation call records the fake time it was made at (as `_at`)."""
    from tests.unit.deploy import fake_stacksets

    original = fake_stacksets.FakeStackSets._call

    def _call(self: Any, api: str, kwargs: dict[str, Any]) -> None:
        original(self, api, kwargs)
        kwargs.setdefault("_at", self.clock())

    monkeypatch.setattr(fake_stacksets.FakeStackSets, "_call", _call)


# --------------------------------------------------------------------------- delivery as AWS allows it


def test_duplicated_events_still_mean_one_read_and_leave_nothing_behind(estate: Estate) -> None:
    assert estate.world.bus is not None
    estate.world.bus.duplicate = lambda event: True
    estate.world.bus.duplicate_after = 3.0
    estate.apply()
    assert estate.reads_during_waits() == list(CONFIRM) * 5
    # The late copies of an operation's events arrived during the next wait and were deleted as finished.
    assert estate.world.queue is not None
    pending = [json.loads(m.body)["detail"].get("stack-set-operation-id") for m in estate.world.queue.pending()]
    last = list(estate.world.cfn.operations)[-1]
    assert set(pending) <= {last, None}  # only copies of the last operation's events may still be on their way


def test_reordered_events_terminal_first(estate: Estate) -> None:
    assert estate.world.bus is not None
    estate.world.bus.reorder = True
    estate.world.cfn.durations = [0.5] * 5  # each operation's events come in one batch, last first
    estate.apply()
    assert estate.reads_during_waits() == list(CONFIRM) * 5
    # No instance was ever shown going backwards (SUCCEEDED, then RUNNING again) in one operation.
    last: dict[tuple[str, str, str], str] = {}
    rank = {"PENDING": 0, "RUNNING": 1, "SUCCEEDED": 2, "FAILED": 2, "CANCELLED": 2}
    for op, _, results in estate.reporter.progress_seen:
        for account, region, result in results:
            before = last.get((op, account, region))
            assert before is None or rank[result] >= rank[before], (op, account, before, result)
            last[(op, account, region)] = result


def test_another_operations_events_are_left_for_their_owner(estate: Estate) -> None:
    """Someone else's operation runs beside ours (managed execution); its messages are handed back."""
    queue, bus = estate.world.queue, estate.world.bus
    assert queue is not None and bus is not None
    # Their operation's events, already on the queue when our first wait starts.
    for status in ("RUNNING", "SUCCEEDED"):
        bus.put_all([(estate.world.clock(), {
            "version": "0", "id": f"theirs-{status}", "detail-type": "CloudFormation StackSet Operation Status Change",
            "source": "aws.cloudformation", "account": "123456789012", "time": "", "region": REGION,
            "resources": [], "detail": {"stack-set-arn": estate.world.cfn.stack_set_arn(),
                                        "stack-set-operation-id": "theirs-1", "status-details": {"status": status}}})])
    estate.apply()
    theirs = [m for m in queue.messages if "theirs-1" in m.body]
    assert len(theirs) == 2 and not any(m.deleted for m in theirs)
    handed = [e for kw in queue.calls_to("ChangeMessageVisibilityBatch") for e in kw["Entries"]]
    assert handed and {e["VisibilityTimeout"] for e in handed} <= {5, 10, 20, 40, 80, 160, 300}
    # Handed back less and less often: seen about once per hand-back, not once per long poll.
    assert max(m.receive_count for m in theirs) <= 8
    assert estate.reads_during_waits() == list(CONFIRM) * 5


def test_a_lost_terminal_event_is_found_by_the_safety_read(estate: Estate) -> None:
    assert estate.world.bus is not None
    estate.world.bus.drop = lambda event: event["detail"].get("status-details", {}).get("status") == "SUCCEEDED" \
        and "stack-set-operation-id" in event["detail"]
    estate.world.cfn.durations = [90, 30, 30, 30, 30]
    estate.apply()
    ends = ended(estate.world)
    describes = [(kw["OperationId"], kw["_at"]) for api, kw in estate.world.cfn.calls if api == "DescribeStackSetOperation"]
    first = list(ends)[0]
    # dev's operation (90 s): a safety read after 60 s without a word (still running), then 60 s
    # after its last event (the instance's SUCCEEDED at 90 s), which found it finished.
    assert [t - (ends[first] - 90) for op, t in describes if op == first] == [60, 150]
    assert all(t - ends[op] == 60 for op, t in describes if t >= ends[op])
    assert estate.world.bus.dropped


# --------------------------------------------------------------------------- no queue


def flat(text: str) -> str:
    return " ".join(text.split())


def run_deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World, *, mode: str = "auto",
               config: str = CONFIG) -> Any:
    path = write_estate(tmp_path, config=config)
    artifacts = make_artifacts(tmp_path)
    monkeypatch.setattr(deploy, "runtime", lambda st: deploy.Runtime(
        world.clients(mode), lambda: artifacts, identity, world.clock.sleep, world.clock))
    result = runner.invoke(app, ["--config", str(path), "--no-color", "deploy", "--yes"], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def test_without_the_queue_the_waiter_polls_and_says_why_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(events=True)
    assert world.queue is not None
    world.queue.exists = False
    result = run_deploy(tmp_path, monkeypatch, world)
    assert result.exit_code == 0, result.output
    note = (f"waiting by polling: there is no event queue {NAME}-events in 123456789012 {REGION} (deploy "
            "cfn/stackset-administration-role.yaml with WaitByEvents=true in the home region, or set "
            "stackset.wait.mode: poll)")
    assert flat(result.stderr).count(note) == 1, result.stderr
    assert [api for api, _ in world.queue.calls] == ["GetQueueUrl"]  # looked for once, then polled
    assert len(world.cfn.calls_to("DescribeStackSetOperation")) > 5 * 3  # the backoff poller


def test_a_denied_queue_is_said_once_and_polled_around(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(events=True)
    assert world.queue is not None
    world.queue.denied = {"GetQueueUrl"}
    result = run_deploy(tmp_path, monkeypatch, world)
    assert result.exit_code == 0, result.output
    assert flat(result.stderr).count("waiting by polling: reading the event queue") == 1
    assert "is denied (AccessDenied)" in flat(result.stderr)


def test_a_receive_denied_mid_rollout_falls_back_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(events=True)
    assert world.queue is not None
    world.queue.raise_next["ReceiveMessage"] = error("AccessDenied", "not authorized: sqs:ReceiveMessage",
                                                     "ReceiveMessage", 403)
    result = run_deploy(tmp_path, monkeypatch, world)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("waiting by polling:") == 1
    assert [api for api, _ in world.queue.calls] == ["GetQueueUrl", "ReceiveMessage"]


def test_mode_events_refuses_before_anything_starts_when_the_queue_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(events=True)
    assert world.queue is not None
    world.queue.exists = False
    result = run_deploy(tmp_path, monkeypatch, world, mode="events")
    assert result.exit_code == 6, result.output
    assert "error: stackset.wait.mode is events, but there is no event queue" in flat(result.stderr)
    assert world.mutating_calls() == []


def test_mode_poll_never_looks_for_the_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(events=True)
    result = run_deploy(tmp_path, monkeypatch, world, mode="poll")
    assert result.exit_code == 0, result.output
    assert world.queue is not None and world.queue.calls == []
    assert "waiting by polling" not in result.stderr


def test_the_mode_is_read_from_the_estate_file(tmp_path: Path) -> None:
    config = load_config(write_estate(tmp_path, config=CONFIG.replace(
        "    timeout_seconds: 600\n", "    timeout_seconds: 600\n    mode: poll\n    safety_poll_seconds: 120\n")))
    assert (config.stackset.wait.mode, config.stackset.wait.safety_poll_seconds) == ("poll", 120)
    assert config.stackset.event_queue_name == f"{NAME}-events"


def test_a_stack_set_name_too_long_for_its_queue_is_refused_in_mode_events_and_polled_in_auto(tmp_path: Path) -> None:
    from replctl.errors import ConfigError

    long_name = "r" * 74
    text = CONFIG.replace("name: replctl-replication", f"name: {long_name}")
    with pytest.raises(ConfigError, match="events needs a stack set name of at most 73 characters"):
        load_config(write_estate(tmp_path, config=text.replace("    timeout_seconds: 600\n",
                                                                 "    timeout_seconds: 600\n    mode: events\n")))
    config = load_config(write_estate(tmp_path, config=text))
    assert config.stackset.event_queue_name is None  # auto: the waits poll, saying why once


# --------------------------------------------------------------------------- failures read the same


def _failing_world(kind: str, events: bool) -> World:
    world = World(events=events)
    if kind == "FAILED":
        world.cfn.failures[(STAGING, REGION)] = "Resource handler returned message: \"bucket exists\""
    return world


def _stop_staging(world: World) -> None:
    """Someone stops staging's operation 10 s after it starts (StopStackSetOperation)."""
    original = world.clock.on_sleep

    def on_sleep(_: float) -> None:
        for op in world.cfn.operations.values():
            if (STAGING, REGION) in op.targets and not op.settled and world.clock() - op.start >= 10:
                op.status, op.settled, op.reason = "STOPPED", True, "Stopped by user arn:aws:iam::123456789012:user/ops"
                for key in op.targets:
                    op.results[key] = ("CANCELLED", "Cancelled since the operation was stopped")
                    world.cfn.instances[key].status, world.cfn.instances[key].detailed = "OUTDATED", "CANCELLED"
        if original is not None:
            original(_)

    world.clock.on_sleep = on_sleep


@pytest.mark.parametrize("kind", ["FAILED", "STOPPED"])
def test_a_failed_or_stopped_operation_reads_exactly_as_when_polling(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {}
    for events in (False, True):
        world = _failing_world(kind, events)
        if kind == "STOPPED":
            _stop_staging(world)
        where = tmp_path / str(events)
        where.mkdir()
        result = run_deploy(where, monkeypatch, world)
        error_text = flat(result.stderr[result.stderr.index("error: "):])
        outputs[events] = (result.exit_code, re.sub(r"replctl-[0-9a-f-]{36}", "<op>", error_text))
        assert all(PROD not in (kw.get("Accounts") or []) for _, kw in world.cfn.calls)
        if events:
            assert world.queue is not None and world.queue.calls_to("ReceiveMessage")
    assert outputs[True] == outputs[False]
    assert outputs[True][0] == 6
    assert f"staging: CreateStackInstances operation <op> {kind}" in outputs[True][1]


# --------------------------------------------------------------------------- attach


def test_attach_waits_for_a_running_operation_by_its_events(tmp_path: Path) -> None:
    estate = Estate(tmp_path)
    world = estate.world
    world.cfn.create_stack_set(StackSetName=NAME, TemplateBody="{}", ManagedExecution={"Active": False})
    op = world.cfn.foreign_operation(45.0)
    world.cfn.calls.clear()
    outcomes = attach(estate.config, estate.clients, reporter=estate.reporter, sleep=world.clock.sleep,
                      clock=world.clock)
    assert [o.operation_id for o in outcomes] == [op] and outcomes[0].status.value == "SUCCEEDED"
    assert [api for api, _ in world.cfn.calls] == ["ListStackSetOperations", *CONFIRM]
    assert world.clock() == world.cfn.operations[op].end


def test_attach_in_mode_events_refuses_a_missing_queue_before_planning(tmp_path: Path) -> None:
    estate = Estate(tmp_path, mode="events")
    assert estate.world.queue is not None
    estate.world.queue.exists = False
    with pytest.raises(DeployError, match="stackset.wait.mode is events"):
        attach(estate.config, estate.clients, sleep=estate.world.clock.sleep, clock=estate.world.clock)
    assert estate.world.cfn.calls == []
