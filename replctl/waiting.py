"""Waiting: polling with backoff, or listening for an event and reading once to confirm.

Everything in replctl that waits goes through `wait_until` or `wait_by_event`. `wait_until`
polls: the probe runs at once, then after the configured initial interval, the interval doubling
up to the configured cap. `wait_by_event` listens instead (a `listen(seconds)` that blocks until
something is heard or the time is up, such as an SQS long poll) and runs the probe only when an
event says the wait may be over — the probe, a read of AWS, stays the authority — and, in case
an event is lost or late, once every safety interval anyway; if the event source goes away it
carries on exactly like `wait_until`. Both give up after the configured timeout with a
`WaitTimeout` that names what was being waited for. `sleep` and `clock` are parameters, so tests
drive waits with a fake clock in microseconds. A probe that is throttled (or hits a transient
network error) is not fatal: the factory's adaptive retries come first, and if those are
exhausted the probe is simply repeated at the next read (what counts as transient is
`aws.is_transient`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
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
        poll = _probe(probe, on_transient)
        if poll is not None and poll.done:
            return poll.value
        elapsed = clock() - start
        remaining = settings.timeout_seconds - elapsed
        if remaining <= 0:
            raise _timeout(what, elapsed, hint)
        sleep(min(next_interval(), remaining))


class Woke(str, Enum):
    """Why `listen` returned."""

    QUIET = "quiet"  # the time was up, or nothing was heard of the awaited operation
    HEARD = "heard"  # the operation's events came, none ends the wait: the source works
    EVENT = "event"  # an event says the wait may be over: read to confirm
    GONE = "gone"  # the event source is unusable from now on: poll as wait_until does


def wait_by_event(
    listen: Callable[[float], Woke],
    probe: Callable[[], Poll[T]],
    *,
    settings: WaitSettings,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_transient: Callable[[BaseException], None] | None = None,
    hint: str | None = None,
) -> T:
    """Listen until an event says the wait may be over, then confirm it with `probe`.

    No probe runs until an event asks for one, or `settings.safety_poll_seconds` passed without
    a word of the operation (a lost or late event; hearing its other events shows the source
    works, so the safety read moves on), or the timeout is reached (the last chance). A
    probe that disagrees with an event (AWS's read can lag its event) is repeated with the
    backoff of `wait_until` until it agrees. When `listen` reports the source gone, the wait
    goes on exactly as `wait_until` would: read now, then back off.
    """
    start = clock()
    deadline = start + settings.timeout_seconds
    next_read = min(start + settings.safety_poll_seconds, deadline)
    backoff: Callable[[], float] | None = None  # once an event's read disagreed, or the source went away
    listening = True
    while True:
        now = clock()
        if now >= next_read:
            poll = _probe(probe, on_transient)
            if poll is not None and poll.done:
                return poll.value
            if clock() >= deadline:
                raise _timeout(what, clock() - start, hint)
            step = backoff() if backoff is not None else settings.safety_poll_seconds
            next_read = min(clock() + step, deadline)
            continue
        if not listening:
            sleep(next_read - now)
            continue
        woke = listen(next_read - now)
        if woke is Woke.HEARD and backoff is None:
            next_read = min(clock() + settings.safety_poll_seconds, deadline)
        elif woke in (Woke.EVENT, Woke.GONE):
            next_read = clock()
            backoff = backoff or intervals(settings)
            listening = woke is Woke.EVENT


def _probe(probe: Callable[[], Poll[T]], on_transient: Callable[[BaseException], None] | None) -> Poll[T] | None:
    """The probe's answer; None when it was throttled or the connection dropped (tried again later)."""
    try:
        return probe()
    except Exception as exc:
        if not is_transient(exc):
            raise
        if on_transient is not None:
            on_transient(exc)
        return None


def _timeout(what: str, elapsed: float, hint: str | None) -> WaitTimeout:
    return WaitTimeout(
        f"gave up waiting for {what} after {elapsed:.0f}s",
        hint=hint or "it keeps running in AWS; re-run the command to attach to it",
    )
