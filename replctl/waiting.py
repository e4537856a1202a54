"""Polling with backoff, injectable time, and tolerance for throttled reads.

Everything in replctl that waits goes through `wait_until`: the first poll comes after the
configured initial interval, the interval doubles up to the configured cap, and the whole wait
gives up after the configured timeout with a `WaitTimeout` that names what was being waited
for. `sleep` and `clock` are parameters, so tests drive waits with a fake clock in
microseconds. A probe that is throttled (or hits a transient network error) is not fatal: the
factory's adaptive retries come first, and if those are exhausted the poll is simply repeated
after the next backoff interval (what counts as transient is `aws.is_transient`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from replctl.aws import is_transient
from replctl.config import WaitSettings
from replctl.errors import WaitTimeout

T = TypeVar("T")


@dataclass(frozen=True)
class Poll(Generic[T]):
    """What a probe saw: whether the wait is over, and the value to hand back."""

    done: bool
    value: T


def intervals(settings: WaitSettings) -> Callable[[], float]:
    """Successive poll intervals: initial, doubling, capped at max."""
    current = [settings.initial_interval_seconds]

    def next_interval() -> float:
        value = current[0]
        current[0] = min(value * 2, settings.max_interval_seconds)
        return value

    return next_interval


def wait_until(
    probe: Callable[[], Poll[T]],
    *,
    settings: WaitSettings,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_transient: Callable[[BaseException], None] | None = None,
    hint: str | None = None,
) -> T:
    """Call `probe` until it reports done; back off between calls; give up after the timeout.

    The probe runs once immediately (an operation may already be finished). Transient errors
    (throttling) are reported to `on_transient` and retried after the next interval.
    """
    start = clock()
    next_interval = intervals(settings)
    while True:
        try:
            poll = probe()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if on_transient is not None:
                on_transient(exc)
        else:
            if poll.done:
                return poll.value
        elapsed = clock() - start
        remaining = settings.timeout_seconds - elapsed
        if remaining <= 0:
            raise WaitTimeout(
                f"gave up waiting for {what} after {elapsed:.0f}s",
                hint=hint or "it keeps running in AWS; re-run the command to attach to it",
            )
        sleep(min(next_interval(), remaining))
