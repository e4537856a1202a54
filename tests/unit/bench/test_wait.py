"""The wait-latency simulation: replctl's real wait loop on the fake StackSet service and clock."""

from __future__ import annotations

import math

import pytest

from bench.wait_latency import (
    LONGEST,
    SHORTEST,
    DeliveryModel,
    durations,
    simulate_events,
    simulate_events_one,
    simulate_one,
    summarise,
)
from bench.stats import percentile
from replctl.config import WaitSettings

FIXED_30 = WaitSettings(initial_interval_seconds=30, max_interval_seconds=30, timeout_seconds=3600)
BACKOFF = WaitSettings(initial_interval_seconds=2, max_interval_seconds=20, timeout_seconds=3600)


def test_durations_are_seeded_and_within_bounds() -> None:
    first, again = durations(200), durations(200)
    assert first == again
    assert all(SHORTEST <= d <= LONGEST for d in first)
    assert durations(200, seed=9) != first
    # log-uniform: about as many operations under a minute as over five minutes
    assert 0.25 < sum(d < 60 for d in first) / 200 < 0.55


def test_fixed_poll_notices_at_the_next_multiple_of_its_interval() -> None:
    # polls at 0, 30, 60: an operation ending at 45 s is seen at 60 s
    s = simulate_one(45.0, FIXED_30)
    assert s.delay == pytest.approx(15.0)
    assert s.describes == 3
    assert s.calls == 1 + 2 * 3  # ListStackSetOperations, then Describe + results per poll


def test_backoff_polls_early_then_caps() -> None:
    # polls at 0, 2, 6, 14, 30, 50, 70, ...: 5 s is seen at 6 s, 60 s at 70 s
    assert simulate_one(5.0, BACKOFF).delay == pytest.approx(1.0)
    long = simulate_one(60.0, BACKOFF)
    assert long.delay == pytest.approx(10.0)
    assert long.describes == 7


def test_no_operation_is_noticed_later_than_one_capped_interval() -> None:
    samples = [simulate_one(d, BACKOFF) for d in durations(60)]
    assert max(s.delay for s in samples) <= BACKOFF.max_interval_seconds
    summary = summarise("x", samples)
    assert summary.median_delay <= summary.p95_delay <= summary.max_delay
    assert summary.describes_total == sum(s.describes for s in samples)


# --------------------------------------------------------------------------- by event

EVENTS = WaitSettings(initial_interval_seconds=2, max_interval_seconds=20, timeout_seconds=3600, safety_poll_seconds=60)


def test_by_event_the_notice_delay_is_the_delivery_delay_and_two_reads_confirm() -> None:
    s = simulate_events_one(45.0, EVENTS, lambda event: 1.25)
    assert s.delay == pytest.approx(1.25)
    assert (s.describes, s.reads) == (1, 2)  # one Describe + one results page
    assert s.sqs >= 3  # GetQueueUrl, the receives, a delete


def test_by_event_a_long_silent_operation_gets_one_safety_read_per_interval() -> None:
    s = simulate_events_one(150.0, EVENTS, lambda event: 0.5)
    assert s.delay == pytest.approx(0.5)
    assert s.reads == 2 + 2  # safety reads at 60.5 s and 120.5 s found it running


def test_by_event_a_lost_final_event_is_noticed_by_the_safety_read() -> None:
    s = simulate_events_one(45.0, EVENTS, lambda event: 0.5, lose_terminal=True)
    assert s.delay == pytest.approx(60.5 - 45.0)  # the start event came at 0.5 s, the read 60 s later


def test_the_delivery_model_is_seeded_and_has_its_stated_shape() -> None:
    a, b = DeliveryModel().sampler(), DeliveryModel().sampler()
    draws = [a(None) for _ in range(4000)]
    assert draws[:5] == [b(None) for _ in range(5)]
    assert min(draws) >= 0.5
    assert percentile(draws, 50) == pytest.approx(0.5 + 0.7 * math.log(2), abs=0.05)  # about 1.0 s
    assert percentile(draws, 95) == pytest.approx(0.5 + 0.7 * math.log(20), abs=0.15)  # about 2.6 s
    assert all(s.delay >= 0.5 for s in simulate_events(durations(20), EVENTS))
