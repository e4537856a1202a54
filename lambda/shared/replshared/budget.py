"""The invocation's time budget, read from the Lambda context, and backing off inside it.

Lambda ends an invocation at its timeout without running any more of the handler: work cut off
there is an error, the errors alarm, and an async retry that repeats work already done. So work
that can outgrow the invocation (the scheduled reconciliation of a large hierarchy) asks the
budget before each call and stops cleanly, leaving the rest for the next run. The remaining time
comes from the context object: "get_remaining_time_in_millis() – Returns the number of
milliseconds left before the execution times out" (Lambda developer guide, Python context
object). A reserve is kept for what must still happen after the last call (the result, the
metrics, a call that is already in flight with the SDK's own retries).

Throttling: SSM answers a burst with `ThrottlingException` ("The request was denied due to
request throttling", SSM API reference, common errors) and PutParameter with `TooManyUpdates`
("There are concurrent updates for a resource that supports one update at a time"). The
clients already retry those (botocore adaptive mode, 5 attempts, client-side rate limiting);
`Budget.call` adds a bounded exponential backoff with jitter on top, but only while the budget
can pay for the pause and another call.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyUpdates"})
NO_CONTEXT_SECONDS = 60.0  # a caller without a Lambda context (a script) gets this much

T = TypeVar("T")


class OutOfTime(Exception):
    """Not enough of the invocation is left to start (or pause before) another call."""


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (None for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _remaining_from(context: Any) -> Callable[[], int]:
    method = getattr(context, "get_remaining_time_in_millis", None)
    if callable(method):
        return lambda: int(method())
    deadline = time.monotonic() + NO_CONTEXT_SECONDS
    return lambda: int((deadline - time.monotonic()) * 1000)


@dataclass
class Budget:
    """What is left of the invocation, less a reserve; `call` backs off on throttling within it."""

    remaining_ms: Callable[[], int]
    reserve_seconds: float
    sleep: Callable[[float], None] | None = None  # None: time.sleep, looked up when needed
    first_backoff: float = 0.5
    max_backoff: float = 8.0
    max_attempts: int = 6
    jitter: Callable[[], float] = random.random
    throttled: int = field(default=0, init=False)  # how often a call was throttled

    @classmethod
    def from_context(cls, context: Any, reserve_seconds: float, **kwargs: Any) -> Budget:
        return cls(_remaining_from(context), reserve_seconds, **kwargs)

    def left(self) -> float:
        """Seconds that may still be spent before the reserve."""
        return self.remaining_ms() / 1000.0 - self.reserve_seconds

    def allows(self, seconds: float = 0.0) -> bool:
        return self.left() > seconds

    def wait(self, seconds: float) -> None:
        """Sleep `seconds`, or raise OutOfTime when the budget cannot pay for it and a call after."""
        if not self.allows(seconds):
            raise OutOfTime(f"{seconds:.1f} s wait does not fit in the {max(0.0, self.left()):.1f} s left")
        self._sleep(seconds)

    def _sleep(self, seconds: float) -> None:
        (self.sleep or time.sleep)(seconds)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` if time is left; throttling is retried with backoff while it fits."""
        delay = self.first_backoff
        for attempt in range(1, self.max_attempts + 1):
            if not self.allows():
                raise OutOfTime(f"{max(0.0, self.left()):.1f} s left before the reserve")
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                if error_code(error) not in THROTTLING_CODES or attempt == self.max_attempts:
                    raise
                self.throttled += 1
                # Exponential backoff with jitter, so concurrent callers do not retry in step.
                pause = delay * (0.5 + 0.5 * self.jitter())
                if not self.allows(pause):
                    raise OutOfTime(f"throttled, and a {pause:.1f} s backoff does not fit") from error
                self._sleep(pause)
                delay = min(self.max_backoff, delay * 2)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
