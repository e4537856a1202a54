"""Arbitrary and mutated events never crash a handler.

A handler either returns, or raises one of its documented, deliberate exceptions: every raise is
a `HandlerError` -- `UnhandledEvent` for an event it does not understand (logged, counted, and
sent to the DLQ / failed batch on purpose), `ProcessingFailed` when part of the work failed after
the rest was done. Never a KeyError, TypeError, botocore validation error or the like. For the
stream processor a returned response only ever names sequence numbers from the batch.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fnkit import Estate, FakeContext, load_event

import config_validator  # noqa: E402
import replication_monitor  # noqa: E402
import stream_processor  # noqa: E402
from replshared.errors import HandlerError, ProcessingFailed, UnhandledEvent  # noqa: E402

EVENT_FILES = (
    "ssm_parameter_created.json", "ssm_parameter_updated.json", "ssm_parameter_deleted.json",
    "ssm_parameter_secure_created.json", "s3_replication_failed.json", "s3_test_event.json",
    "s3_object_created.json", "scheduled.json", "cfn_stack_status_change.json",
    "cfn_stack_status_in_progress.json", "dynamodb_stream_batch.json",
)
BASES = {name: load_event(name) for name in EVENT_FILES}
KEYS = ("source", "detail-type", "detail", "Records", "eventSource", "eventName", "dynamodb", "name",
        "operation", "status-details", "status", "SequenceNumber", "Keys", "NewImage", "OldImage", "S", "N")

scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)
# Plausible strings for the fields the handlers branch on.
field_values = st.sampled_from([
    "aws.ssm", "aws.events", "aws.cloudformation", "aws:s3", "aws:dynamodb", "Parameter Store Change",
    "Scheduled Event", "CloudFormation Stack Status Change", "INSERT", "MODIFY", "REMOVE", "Create", "Delete",
    "/app/dev/config/db/url", "/app/dev/config/x y", "/app/staging/config/a", "/app/dev/config/-", "UPDATE_COMPLETE",
    "Replication:OperationFailedReplication", "LOCAL#LAG", "SCHEMA", "dev", "prod", "", "1", "NaN",
]) | json_values


def _mutate(draw: st.DrawFn, value: Any) -> Any:
    """Delete or replace 1-3 fields of `value` (shallow fields more often)."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, 3))):
        parent, node = None, value
        key: Any = None
        while isinstance(node, (dict, list)) and node:
            children = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(children))
            node = parent[key]
            if draw(st.booleans()):
                break
        if parent is None:
            break
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(field_values)
    return value


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A documented event with a few fields deleted or replaced."""
    return _mutate(draw, BASES[draw(st.sampled_from(EVENT_FILES))])


@st.composite
def mutated_stream_records(draw: st.DrawFn) -> Any:
    """One record of the documented stream batch, intact or mutated."""
    record = draw(st.sampled_from(BASES["dynamodb_stream_batch.json"]["Records"]))
    return _mutate(draw, record) if draw(st.booleans()) else copy.deepcopy(record)


any_event = json_values | mutated_events()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def world() -> Iterator[Estate]:
    from moto import mock_aws

    with mock_aws():
        estate = Estate()
        estate.wire_replication()
        estate.client("dev", "ssm").put_parameter(Name="/app/dev/config/db/url", Value="v", Type="String")
        estate.client("dev", "ssm").put_parameter(Name="/app/dev/config/db/password", Value="s", Type="SecureString")
        yield estate


BUG_TYPES = (KeyError, TypeError, AttributeError, IndexError, NameError, AssertionError)


def _deliberate(error: HandlerError) -> bool:
    """UnhandledEvent, or ProcessingFailed caused by AWS -- not a bug dressed up as one."""
    if isinstance(error, UnhandledEvent):
        return True
    if not isinstance(error, ProcessingFailed):
        return False
    if isinstance(error.__cause__, BUG_TYPES):
        return False
    return not any(t.__name__ in str(error) for t in BUG_TYPES)


def _call(world: Estate, module: Any, event: Any) -> Any:
    # 20 s left leaves no lag-poll budget: a scheduled heartbeat returns without sleeping.
    return world.invoke(module, event, "dev", context=FakeContext(remaining_ms=20_000))


@FUZZ
@given(event=any_event)
def test_replication_monitor_never_crashes(world: Estate, event: Any) -> None:
    try:
        result = _call(world, replication_monitor, event)
    except HandlerError as error:
        assert _deliberate(error), repr(error)
    else:
        assert isinstance(result, dict)


@FUZZ
@given(event=any_event)
def test_config_validator_never_crashes(world: Estate, event: Any) -> None:
    try:
        result = _call(world, config_validator, event)
    except HandlerError as error:
        assert _deliberate(error), repr(error)
    else:
        assert isinstance(result, dict)


def _sequence_numbers(event: Any) -> set[Any]:
    records = event.get("Records") if isinstance(event, dict) else None
    numbers = set()
    for r in records if isinstance(records, list) else []:
        stream = r.get("dynamodb") if isinstance(r, dict) else None
        if isinstance(stream, dict) and isinstance(stream.get("SequenceNumber"), str):
            numbers.add(stream["SequenceNumber"])
    return numbers


@FUZZ
@given(event=any_event)
def test_stream_processor_never_crashes_and_names_only_its_records(world: Estate, event: Any) -> None:
    try:
        result = _call(world, stream_processor, event)
    except HandlerError as error:
        # a batch it cannot report per record is raised whole, deliberately
        assert isinstance(error, UnhandledEvent)
    else:
        failures = result["batchItemFailures"]
        assert {f["itemIdentifier"] for f in failures} <= _sequence_numbers(event)
        assert all(isinstance(f["itemIdentifier"], str) and f["itemIdentifier"] for f in failures)


@FUZZ
@given(records=st.lists(mutated_stream_records(), min_size=1, max_size=6))
def test_stream_batches_of_mutated_records(world: Estate, records: list[Any]) -> None:
    batch = {"Records": records}
    for i, record in enumerate(records):
        if isinstance(record, dict) and isinstance(record.get("dynamodb"), dict):
            record["dynamodb"]["SequenceNumber"] = f"9{i:020d}"
    reportable = stream_processor._identifiable(batch)
    try:
        result = _call(world, stream_processor, batch)
    except UnhandledEvent:
        assert not reportable
    else:
        assert reportable
        assert {f["itemIdentifier"] for f in result["batchItemFailures"]} <= _sequence_numbers(batch)
