"""Every single-field mutation of every documented event, through the pure parsers.

Exhaustive where the Hypothesis handler tests sample: each field of each event in tests/events/
is deleted or replaced by each of a few awkward values, and the parser the handler would call
must either return or raise its documented exception (ValueError / MalformedRecord).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

import tests.fnkit  # noqa: F401  (puts the function folders on sys.path)
from tests.fnkit import EVENTS, load_event

import config_validator  # noqa: E402
import stream_processor  # noqa: E402
from monitor_logic import parse_parameter_change, parse_replication_failure  # noqa: E402
from replshared.errors import MalformedRecord  # noqa: E402
from replshared.events import event_kind  # noqa: E402
from stream_logic import plan_record  # noqa: E402

DELETE = object()
REPLACEMENTS = (DELETE, None, "", 0, -1.5, True, [], {}, "x", [None], {"S": "x"}, {"N": "x"})


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def mutations(name: str) -> Iterator[Any]:
    base = load_event(name)
    for path in _paths(base):
        for replacement in REPLACEMENTS:
            event = copy.deepcopy(base)
            parent = event
            for step in path[:-1]:
                parent = parent[step]
            if replacement is DELETE:
                if not isinstance(parent, dict):
                    continue
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(replacement)
            yield event


ALL_EVENTS = sorted(p.name for p in EVENTS.glob("*.json"))


def _check(event: Any) -> None:
    kind = event_kind(event)  # never raises
    if kind == "ssm-change":
        try:
            parse_parameter_change(event["detail"])
        except ValueError:
            pass
    elif kind == "s3-notification":
        for record in event["Records"]:
            try:
                parse_replication_failure(record)
            except ValueError:
                pass
    elif kind == "cfn-stack-status":
        status = config_validator.stack_status(event)
        assert status is None or isinstance(status, str)
        if status:
            config_validator.should_validate(status)
    if stream_processor._identifiable(event):
        for record in event["Records"]:
            try:
                plan_record(record, "dev")
            except MalformedRecord:
                pass


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_every_single_mutation_is_parsed_or_rejected_as_documented(name: str) -> None:
    count = 0
    for event in mutations(name):
        _check(event)
        count += 1
    assert count > 10


def test_the_mutations_do_reach_the_parsers() -> None:
    """Guard against a vacuous pass: many mutations must still look like their event kind."""
    kinds = [event_kind(e) for e in mutations("dynamodb_stream_batch.json")]
    assert kinds.count("dynamodb-stream") > len(kinds) * 0.8
