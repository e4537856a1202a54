"""The permission proof runs on every functional test.

Each test's AWS calls are recorded (tests/callrecord.py: the CLI through the factory's listeners, the
functions through their clients) and, when the test ends, each is evaluated against the policy of
the identity it ran as (tests/callproof.py). A call the shipped roles would deny fails the test that
made it, naming the call, the role and the missing grant; a call the proof cannot map fails it too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import callproof
from tests.callrecord import Recording, start_recording


@pytest.fixture(autouse=True)
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    """Every AWS call of the test; proved against the shipped roles when it ends."""
    recording = start_recording(monkeypatch)
    yield recording
    denied = callproof.denials(callproof.prove(recording))
    if denied:
        pytest.fail("the shipped roles would deny calls this test made:\n  " + "\n  ".join(denied), pytrace=False)
