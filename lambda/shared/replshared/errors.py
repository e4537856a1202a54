"""Exceptions a handler raises deliberately.

Everything a handler raises on purpose is a `HandlerError`. For asynchronous invocations
(EventBridge, S3 notifications) raising is how a failed event reaches Lambda's retries and then
the DLQ; the work each handler does is idempotent, so a retry is always safe.
"""

from __future__ import annotations


class HandlerError(Exception):
    """Base class of every deliberate raise."""


class UnhandledEvent(HandlerError):
    """The event is not one this function understands; it was logged and counted."""


class ProcessingFailed(HandlerError):
    """Part of the work failed (logged and counted) after the rest was done; retry is safe."""


class ConfigurationError(HandlerError):
    """The function's environment variables are missing or wrong (a deployment problem)."""


class MalformedRecord(HandlerError):
    """One stream record cannot be interpreted; it is reported as a batch item failure."""
