"""DynamoDB attribute values <-> Python values, for the low-level client.

Floats are stored through `Decimal(str(x))` (DynamoDB numbers are decimal; the serializer
refuses floats), and read back as `int` when whole, `float` otherwise.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


def _to_decimals(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("DynamoDB cannot store NaN or infinity")
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: _to_decimals(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_decimals(v) for v in value]
    return value


def _from_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_decimals(v) for v in value]
    if isinstance(value, set):
        return {_from_decimals(v) for v in value}
    return value


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Python dict -> DynamoDB item (attribute-value form)."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {k: serializer.serialize(_to_decimals(v)) for k, v in values.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB item (attribute-value form) -> Python dict."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {k: _from_decimals(deserializer.deserialize(v)) for k, v in item.items()}
