"""StreamProcessorLambda throughput on a 1,000-record DynamoDB stream batch.

Three figures, from the inside out:
- the pure per-record part (`stream_logic.plan_record` plus the PutItem/DeleteItem request it
  leads to, and the schema event when there is one): what the function decides, no AWS;
- the whole handler (powertools batch processing, logging, metrics) with AWS clients that accept
  every call and do nothing: the function's own cost per record;
- the whole handler against moto with three accounts (dev's function writing to staging's and
  prod's tables through the assumed agent role, as `tests/fnkit.py` sets it up).

The batch is what a busy dev table's stream delivers: INSERT/MODIFY/REMOVE of items dev wrote,
a few items that reached dev from upstream (skipped), a few SCHEMA items (one EventBridge event
each), sequence numbers in order. A second "do nothing" run gives every item `written_at_ms`, so
every copy is also timed (a `MetadataReplicationLag` value per copy): the cost of measuring lag
where it happens.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

from bench.model import Section, Table
from bench.stats import fmt_seconds, median

RECORDS = 1000
REPEATS = 5


def batch(n: int = RECORDS, *, stamped: bool = False) -> dict[str, Any]:
    records = []
    for i in range(n):
        name = "REMOVE" if i % 10 == 9 else "MODIFY" if i % 5 == 1 else "INSERT"
        pk = "SCHEMA" if i % 100 == 50 else f"SERVICE#s{i:04d}"
        origin = "staging" if i % 50 == 7 else "dev"
        image = {"pk": {"S": pk}, "sk": {"S": f"config-{i}"}, "origin": {"S": origin},
                 "version": {"N": str(1 + i % 7)}, "owner": {"S": "payments"}, "replicas": {"N": "2"},
                 "settings": {"M": {"timeout": {"N": "30"}, "region": {"S": "us-east-1"}}}}
        if stamped:
            image["written_at_ms"] = {"N": str(1714564800000 + i)}
        stream: dict[str, Any] = {"ApproximateCreationDateTime": 1714564800 + i,
                                  "Keys": {"pk": image["pk"], "sk": image["sk"]},
                                  "SequenceNumber": f"{111000000000000000000 + i}", "SizeBytes": 200,
                                  "StreamViewType": "NEW_AND_OLD_IMAGES"}
        stream["OldImage" if name == "REMOVE" else "NewImage"] = image
        records.append({"eventID": f"{i:032x}", "eventName": name, "eventVersion": "1.1",
                        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": stream,
                        "eventSourceARN": "arn:aws:dynamodb:us-east-1:111111111111:table/replctl-metadata/stream/x"})
    return {"Records": records}


def pure_seconds(event: dict[str, Any]) -> float:
    """Median wall time of deciding every record of the batch (no AWS)."""
    import stream_logic
    from stream_logic import DeleteItem, PutItem, SkipRecord

    def once() -> float:
        start = time.perf_counter()
        for record in event["Records"]:
            action = stream_logic.plan_record(record, "dev")
            if isinstance(action, SkipRecord):
                continue
            for _ in ("staging", "prod"):
                if isinstance(action, PutItem):
                    stream_logic.put_request(action, "replctl-metadata")
                elif isinstance(action, DeleteItem):
                    stream_logic.delete_request(action, "replctl-metadata")
            if action.is_schema:
                stream_logic.schema_event(action, environment="dev", targets=("staging", "prod"),
                                          event_bus="default", sequence_number=record["dynamodb"]["SequenceNumber"])
        return time.perf_counter() - start

    return median([once() for _ in range(REPEATS)])


class _Accepting:
    """An AWS client that accepts every call (PutItem, DeleteItem, PutEvents) and does nothing."""

    def put_item(self, **_: Any) -> dict[str, Any]:
        return {}

    def delete_item(self, **_: Any) -> dict[str, Any]:
        return {}

    def put_events(self, **_: Any) -> dict[str, Any]:
        return {"FailedEntryCount": 0, "Entries": []}


class _AcceptingClients:
    def remote(self, target: str, service: str) -> _Accepting:
        return _Accepting()

    def local(self, service: str) -> _Accepting:
        return _Accepting()


def handler_seconds(event: dict[str, Any], *, moto: bool) -> tuple[float, dict[str, Any]]:
    """Wall time of one handler invocation on the batch, and its response."""
    from unittest import mock

    from tests import fnkit

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        import stream_processor

        if moto:
            from moto import mock_aws

            with mock_aws():
                estate = fnkit.Estate()
                start = time.perf_counter()
                response = estate.invoke(stream_processor, event, "dev")
                return time.perf_counter() - start, response
        samples = []
        response = {}
        with mock.patch.object(stream_processor, "clients_for", lambda settings, function: _AcceptingClients()), \
                fnkit.environment(fnkit.function_env("dev")):
            for _ in range(REPEATS):
                start = time.perf_counter()
                response = stream_processor.handler(event, fnkit.FakeContext())
                samples.append(time.perf_counter() - start)
        return median(samples), response


def run(repo: Path) -> Section:
    import tests.fnkit  # noqa: F401 - puts the function folders on sys.path, as the runtime does

    section = Section("stream", f"5. Stream processor: a {RECORDS:,}-record batch")
    event = batch()
    decided = sum(1 for r in event["Records"] if r["dynamodb"]["NewImage" if "NewImage" in r["dynamodb"] else
                                                             "OldImage"]["origin"]["S"] == "dev")
    pure = pure_seconds(event)
    glue, glue_response = handler_seconds(event, moto=False)
    timed, timed_response = handler_seconds(batch(stamped=True), moto=False)
    whole, response = handler_seconds(event, moto=True)
    table = Table(f"{RECORDS:,} records ({decided} from dev, sent to staging and prod; the rest skipped)",
                  ("what runs", "wall", "records / s", "failed records"))
    table.add("pure per-record part (stream_logic)", fmt_seconds(pure), f"{RECORDS / pure:,.0f}", "—")
    table.add("whole handler, AWS clients that do nothing", fmt_seconds(glue), f"{RECORDS / glue:,.0f}",
              len(glue_response.get("batchItemFailures", [])))
    table.add("same, every item carrying written_at_ms (each copy timed)", fmt_seconds(timed),
              f"{RECORDS / timed:,.0f}", len(timed_response.get("batchItemFailures", [])))
    table.add("whole handler against moto (3 accounts)", fmt_seconds(whole), f"{RECORDS / whole:,.0f}",
              len(response.get("batchItemFailures", [])))
    section.tables.append(table)
    section.headline += [
        ("stream: pure per-record, records/s", f"{RECORDS / pure:,.0f}"),
        ("stream: whole handler against moto, records/s", f"{RECORDS / whole:,.0f}"),
    ]
    if response.get("batchItemFailures") or glue_response.get("batchItemFailures"):
        section.notes.append(f"records failed: {response.get('batchItemFailures')[:3]}…")
    section.notes.append(
        f"Medians of {REPEATS} runs except against moto (one run: its tables keep the first run's items). "
        "moto answers each PutItem in-process; in AWS each is a network round trip, so the real handler is "
        "bound by DynamoDB latency, and the 'do nothing' row is the function's CPU cost per record.")
    return section
