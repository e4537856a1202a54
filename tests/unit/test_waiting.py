"""The backoff poller: injected time, capped intervals, timeouts, throttling."""

from __future__ import annotations

import pytest

from replctl.config import WaitSettings
from replctl.errors import ExitCode, WaitTimeout
from replctl.aws import is_transient
from replctl.waiting import Poll, wait_until
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
