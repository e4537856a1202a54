"""Pure per-record decisions of StreamProcessorLambda (no AWS calls here).

A DynamoDB stream record becomes one of:
- `PutItem`: an INSERT/MODIFY of an item this environment wrote; it is written to each
  downstream table only if the item there is absent or older
  (`attribute_not_exists(pk) OR version < :v`);
- `DeleteItem`: a REMOVE of such an item; deleted downstream only if the copy there is not newer
  (`version <= :v`);
- `SkipRecord`: not ours to send: the item's `origin` is another environment (it reached us
  from upstream; sending it on would loop) or its `pk` starts with `LOCAL#` (describes this
  account only).

Anything that cannot be interpreted raises `MalformedRecord`; the handler reports that record's
sequence number as a batch item failure and carries on with the others.

Lag is measured where the copy is written: an item that carries `written_at_ms` (epoch
milliseconds, written with the source item: the monitor's heartbeat does, applications may)
is timed from then to the moment its downstream copy is written. The stream record's own
`ApproximateCreationDateTime` cannot serve: it is "rounded down to the closest second"
(DynamoDB Streams API reference, StreamRecord), which alone can add up to a second to a lag
whose bound is one second. A malformed `written_at_ms` only means no measurement: the item is
still propagated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from replshared.errors import MalformedRecord

LOCAL_PREFIX = "LOCAL#"
WRITTEN_AT_MS = "written_at_ms"
SCHEMA = "SCHEMA"
PUT_CONDITION = "attribute_not_exists(pk) OR #version < :v"
DELETE_CONDITION = "#version <= :v"
EVENT_SOURCE = "replctl.metadata"
SCHEMA_DETAIL_TYPE = "Metadata Schema Change"


@dataclass(frozen=True)
class PutItem:
    pk: str
    sk: str
    item: dict[str, Any]  # attribute-value form, exactly as in the stream's NewImage
    version: str  # the N string, passed through unchanged
    is_schema: bool
    written_at_ms: int | None = None  # when the source item was written, if it says so


@dataclass(frozen=True)
class DeleteItem:
    pk: str
    sk: str
    version: str
    is_schema: bool


@dataclass(frozen=True)
class SkipRecord:
    reason: str


Action = PutItem | DeleteItem | SkipRecord


def _string_attr(image: dict[str, Any], name: str, *, where: str) -> str:
    value = image.get(name)
    if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str) or not value["S"]:
        raise MalformedRecord(f"{where}: attribute {name!r} is not a non-empty string")
    return value["S"]


def _version(image: dict[str, Any], *, where: str) -> str:
    value = image.get("version")
    if not isinstance(value, dict) or set(value) != {"N"} or not isinstance(value["N"], str):
        raise MalformedRecord(f"{where}: attribute 'version' is missing or not a number")
    try:
        number = Decimal(value["N"])
    except (InvalidOperation, ValueError):
        raise MalformedRecord(f"{where}: attribute 'version' is not a number") from None
    if not number.is_finite() or not math.isfinite(float(number)):
        raise MalformedRecord(f"{where}: attribute 'version' is not a finite number")
    return value["N"]


def written_at_ms(image: dict[str, Any]) -> int | None:
    """The item's `written_at_ms` (a whole, positive number of epoch milliseconds), else None."""
    value = image.get(WRITTEN_AT_MS)
    if not isinstance(value, dict) or set(value) != {"N"} or not isinstance(value["N"], str):
        return None
    try:
        number = Decimal(value["N"])
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number <= 0 or number != number.to_integral_value():
        return None
    return int(number)


def copy_lag_seconds(written_ms: int, copied_at: float) -> float:
    """Seconds from the source write to the copy (clock skew can make it negative: 0 then)."""
    return max(0.0, copied_at - written_ms / 1000.0)


def _is_schema(pk: str, image: dict[str, Any]) -> bool:
    kind = image.get("type")
    return pk == SCHEMA or (isinstance(kind, dict) and kind.get("S") == SCHEMA)


def plan_record(record: Any, environment: str) -> Action:
    """Decide what one stream record means for the downstream tables of `environment`."""
    if not isinstance(record, dict):
        raise MalformedRecord("record is not an object")
    if record.get("eventSource") != "aws:dynamodb":
        raise MalformedRecord("record is not a DynamoDB stream record")
    name = record.get("eventName")
    stream = record.get("dynamodb")
    if not isinstance(stream, dict):
        raise MalformedRecord("record has no 'dynamodb' section")
    keys = stream.get("Keys")
    if not isinstance(keys, dict):
        raise MalformedRecord("record has no Keys")
    pk = _string_attr(keys, "pk", where="Keys")
    sk = _string_attr(keys, "sk", where="Keys")
    if name in ("INSERT", "MODIFY"):
        image = stream.get("NewImage")
        where = "NewImage"
    elif name == "REMOVE":
        image = stream.get("OldImage")
        where = "OldImage"
    else:
        raise MalformedRecord(f"unknown eventName {name!r}")
    if not isinstance(image, dict):
        raise MalformedRecord(f"{name} record has no {where} (the stream must be NEW_AND_OLD_IMAGES)")
    if (
        _string_attr(image, "pk", where=where) != pk
        or _string_attr(image, "sk", where=where) != sk
    ):
        raise MalformedRecord(f"{where} keys do not match the record's Keys")
    if pk.startswith(LOCAL_PREFIX):
        return SkipRecord(f"{LOCAL_PREFIX} items describe this account only")
    origin = _string_attr(image, "origin", where=where)
    if origin != environment:
        return SkipRecord(f"origin is {origin}, not {environment}: not sent on")
    version = _version(image, where=where)
    if name == "REMOVE":
        return DeleteItem(pk=pk, sk=sk, version=version, is_schema=_is_schema(pk, image))
    return PutItem(pk=pk, sk=sk, item=image, version=version, is_schema=_is_schema(pk, image),
                   written_at_ms=written_at_ms(image))


def put_request(action: PutItem, table: str) -> dict[str, Any]:
    """PutItem arguments: never replace a newer (or equal) version downstream."""
    return {
        "TableName": table,
        "Item": action.item,
        "ConditionExpression": PUT_CONDITION,
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":v": {"N": action.version}},
    }


def delete_request(action: DeleteItem, table: str) -> dict[str, Any]:
    """DeleteItem arguments: delete only a copy that is not newer than the deleted item."""
    return {
        "TableName": table,
        "Key": {"pk": {"S": action.pk}, "sk": {"S": action.sk}},
        "ConditionExpression": DELETE_CONDITION,
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":v": {"N": action.version}},
    }


def schema_event(
    action: PutItem | DeleteItem,
    *,
    environment: str,
    targets: tuple[str, ...],
    event_bus: str,
    sequence_number: str,
) -> dict[str, Any]:
    """The PutEvents entry announcing a change to an item of type SCHEMA."""
    import json

    detail = {
        "environment": environment,
        "change": "REMOVE" if isinstance(action, DeleteItem) else "UPSERT",
        "pk": action.pk,
        "sk": action.sk,
        "version": action.version,
        "targets": list(targets),
        "sequenceNumber": sequence_number,
    }
    return {
        "Source": EVENT_SOURCE,
        "DetailType": SCHEMA_DETAIL_TYPE,
        "Detail": json.dumps(detail, sort_keys=True),
        "EventBusName": event_bus,
    }
