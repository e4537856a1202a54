"""The waiters: the backoff poller (injected time, capped intervals, timeouts, throttling) and the
event waiter (listen, confirm once, safety reads, falling back to the poller)."""

from __future__ import annotations

import pytest

from replctl.config import WaitSettings
from replctl.errors import ExitCode, WaitTimeout
from replctl.aws import is_transient
from replctl.waiting import Poll, Woke, wait_by_event, wait_until
from tests.unit.deploy.fake_stacksets import FakeClock, error

SETTINGS = WaitSettings(initial_interval_seconds=2, max_interval_seconds=10, timeout_seconds=60)


def test_polls_immediately_then_backs_off_to_the_cap() -> None:
    clock = FakeClock()
    answers = iter([False] * 6 + [True])
    value = wait_until(lambda: Poll(next(answers), "done"), settings=SETTINGS, what="x", sleep=clock.sleep, clock=clock)
    assert value == "done"
    assert clock.sleeps == [2, 4, 8, 10, 10, 10]


def test_times_out_with_what_it_waited_for() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: Poll(False, None), settings=SETTINGS, what="dev: operation op-1", sleep=clock.sleep,
                   clock=clock, hint="re-run to attach")
    assert info.value.exit_code == ExitCode.TIMEOUT
    assert info.value.message == "gave up waiting for dev: operation op-1 after 60s"
    assert info.value.hint == "re-run to attach"
    assert sum(clock.sleeps) == 60  # the last sleep is cut to the deadline


def test_throttling_is_retried_and_reported() -> None:
    clock = FakeClock()
    seen: list[str] = []
    calls = iter([error("Throttling", "Rate exceeded", "DescribeStackSetOperation"),
                  error("TooManyRequestsException", "slow down", "DescribeStackSetOperation")])

    def probe() -> Poll[str]:
        exc = next(calls, None)
        if exc is not None:
            raise exc
        return Poll(True, "ok")

    assert wait_until(probe, settings=SETTINGS, what="x", sleep=clock.sleep, clock=clock,
                      on_transient=lambda e: seen.append(e.response["Error"]["Code"])) == "ok"
    assert seen == ["Throttling", "TooManyRequestsException"] and clock.sleeps == [2, 4]


def test_other_errors_are_not_swallowed() -> None:
    clock = FakeClock()

    def probe() -> Poll[None]:
        raise error("AccessDenied", "no", "DescribeStackSetOperation", 403)

    with pytest.raises(Exception, match="AccessDenied"):
        wait_until(probe, settings=SETTINGS, what="x", sleep=clock.sleep, clock=clock)
    assert clock.sleeps == []


def test_is_transient() -> None:
    assert is_transient(error("Throttling", "", "X"))
    assert is_transient(error("RequestLimitExceeded", "", "X"))
    assert not is_transient(error("ValidationError", "", "X"))
    assert not is_transient(ValueError("x"))


# --------------------------------------------------------------------------- waiting by event

EVENTS = WaitSettings(initial_interval_seconds=2, max_interval_seconds=10, timeout_seconds=600, safety_poll_seconds=60)


class Script:
    """A listener that hears what the test scripts at given times, and a probe that answers
    done from a given time on; both on the fake clock, both counted."""

    def __init__(self, clock: FakeClock, *, events: dict[float, Woke], done_at: float) -> None:
        self.clock, self.events, self.done_at = clock, dict(events), done_at
        self.listened: list[float] = []
        self.reads: list[float] = []

    def listen(self, seconds: float) -> Woke:
        self.listened.append(seconds)
        now = self.clock()
        due = [t for t in self.events if now <= t <= now + seconds]
        if not due:
            self.clock.sleep(seconds)
            return Woke.QUIET
        t = min(due)
        self.clock.sleep(t - now)
        return self.events.pop(t)

    def probe(self) -> Poll[float]:
        self.reads.append(self.clock())
        return Poll(self.clock() >= self.done_at, self.clock())


def run(script: Script, clock: FakeClock, settings: WaitSettings = EVENTS) -> float:
    return wait_by_event(script.listen, script.probe, settings=settings, what="x", sleep=clock.sleep, clock=clock)


def test_the_terminal_event_wakes_the_wait_and_one_read_confirms_it() -> None:
    clock = FakeClock(start=0)
    script = Script(clock, events={42.5: Woke.EVENT}, done_at=42.5)
    assert run(script, clock) == 42.5
    assert script.reads == [42.5]  # no read before the event, one after it


def test_without_events_a_safety_read_comes_every_interval() -> None:
    clock = FakeClock(start=0)
    script = Script(clock, events={}, done_at=150)
    assert run(script, clock) == 180
    assert script.reads == [60, 120, 180]


def test_hearing_the_operation_moves_the_safety_read_on() -> None:
    # Events of the operation show the source works: the safety read waits for a silence.
    clock = FakeClock(start=0)
    script = Script(clock, events={30: Woke.HEARD, 70: Woke.HEARD, 100: Woke.EVENT}, done_at=100)
    assert run(script, clock) == 100
    assert script.reads == [100]


def test_a_read_that_disagrees_with_the_event_is_repeated_with_backoff() -> None:
    # AWS's read can lag its event: the confirmation is retried at 2, 4, 8 s, not after 60 s.
    clock = FakeClock(start=0)
    script = Script(clock, events={10: Woke.EVENT}, done_at=23)
    assert run(script, clock) == 24
    assert script.reads == [10, 12, 16, 24]


def test_a_source_that_goes_away_leaves_the_backoff_poller() -> None:
    clock = FakeClock(start=0)
    script = Script(clock, events={5: Woke.GONE}, done_at=30)
    assert run(script, clock) == 39
    assert script.reads == [5, 7, 11, 19, 29, 39]  # read at once, then 2, 4, 8, 10 (capped), 10 ...
    assert len(script.listened) == 1  # never listened again


def test_the_event_wait_times_out_after_a_last_read() -> None:
    clock = FakeClock(start=0)
    script = Script(clock, events={}, done_at=10_000)
    with pytest.raises(WaitTimeout) as info:
        wait_by_event(script.listen, script.probe, settings=EVENTS, what="dev: operation op-1",
                      sleep=clock.sleep, clock=clock)
    assert info.value.message == "gave up waiting for dev: operation op-1 after 600s"
    assert script.reads[-1] == 600 and len(script.reads) == 10


def test_a_throttled_confirmation_is_read_again() -> None:
    clock = FakeClock(start=0)
    answers = iter([error("Throttling", "Rate exceeded", "DescribeStackSetOperation"), None])
    script = Script(clock, events={3: Woke.EVENT}, done_at=3)

    def probe() -> Poll[float]:
        exc = next(answers)
        if exc is not None:
            raise exc
        return script.probe()

    assert wait_by_event(script.listen, probe, settings=EVENTS, what="x", sleep=clock.sleep, clock=clock) == 5
