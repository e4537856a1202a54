"""Structured JSON logs and Embedded Metric Format (EMF) metrics.

Logs: aws-lambda-powertools `Logger` (JSON lines with the request id injected by the handler
decorator). Metrics: one EMF line per (metric, dimension set), serialised and validated by
powertools' `MetricManager`. Powertools would add a `service` dimension taken from
POWERTOOLS_SERVICE_NAME; the alarms in the template match the contract's dimensions exactly
(CloudWatch needs an exact dimension match), so the service dimension is switched off here.

Counts are accumulated during an invocation and flushed once at its end, so a batch of 100
stream records writes one `ItemsPropagated` line, not 100. Measured values (a lag per copy) are
kept individually and written as one document per metric and dimension set whose target member
is an array of values (EMF specification, target members; at most 100, the limit powertools
enforces), so CloudWatch still sees every value and Maximum and percentiles stay exact.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from itertools import groupby
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics.base import MetricManager

_LOGGERS: dict[str, Logger] = {}
# EMF allows 100 values per metric; powertools prints (to stdout, past our stream) and clears a
# metric on its 100th value, so a document carries at most 99.
_VALUES_PER_DOCUMENT = 99


def get_logger(default_service: str) -> Logger:
    """The function's logger (service name from POWERTOOLS_SERVICE_NAME when set)."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or default_service
    if service not in _LOGGERS:
        _LOGGERS[service] = Logger(service=service)
    return _LOGGERS[service]


class Metrics:
    """Collects metrics for one invocation and writes them as EMF lines on `flush`."""

    def __init__(self, namespace: str, *, stream: Any = None) -> None:
        self.namespace = namespace
        self._stream = stream
        self._counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._values: list[tuple[str, str, float, tuple[tuple[str, str], ...]]] = []

    def count(self, name: str, dimensions: Mapping[str, str], value: float = 1) -> None:
        """Add to a Count metric; summed until flush."""
        key = (name, tuple(sorted(dimensions.items())))
        self._counts[key] = self._counts.get(key, 0) + value

    def value(self, name: str, unit: str, value: float, dimensions: Mapping[str, str]) -> None:
        """Record one measured value (e.g. a lag in Seconds)."""
        self._values.append((name, unit, float(value), tuple(sorted(dimensions.items()))))

    def flush(self) -> list[dict[str, Any]]:
        """Write every pending metric as EMF lines; returns the documents written."""
        pending = [(n, "Count", d, [v]) for (n, d), v in sorted(self._counts.items())]
        by_metric = sorted(self._values, key=lambda m: (m[0], m[1], m[3]))
        for (name, unit, dims), group in groupby(by_metric, key=lambda m: (m[0], m[1], m[3])):
            values = [m[2] for m in group]
            for i in range(0, len(values), _VALUES_PER_DOCUMENT):
                pending.append((name, unit, dims, values[i:i + _VALUES_PER_DOCUMENT]))
        self._counts = {}
        self._values = []
        out = self._stream or sys.stdout
        written = [self._write(out, *entry) for entry in pending]
        if hasattr(out, "flush"):
            out.flush()
        return written

    def _write(self, out: Any, name: str, unit: str, dims: tuple[tuple[str, str], ...], values: list[float]) -> dict[str, Any]:
        # MetricManager, not SingleMetric: SingleMetric silently keeps only the first value. The
        # first value goes through add_metric (which checks name, unit and value); the others are
        # handed to serialize_metric_set whole, since add_metric re-formats the growing list on
        # every call (quadratic in a batch of copies).
        values = [float(v) for v in values]
        metric = MetricManager(namespace=self.namespace, service="")
        metric.add_metric(name=name, unit=unit, value=values[0])
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{name}: every value must be a finite number")
        for dim_name, dim_value in dims:
            metric.add_dimension(name=dim_name, value=dim_value)
        document = metric.serialize_metric_set(metrics={name: {**metric.metric_set[name], "Value": list(values)}})
        out.write(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")
        return document


def event_shape(event: Any) -> dict[str, Any]:
    """What an event looks like, for a log line, without any of its values."""
    shape: dict[str, Any] = {"type": type(event).__name__}
    if isinstance(event, dict):
        shape["keys"] = sorted(str(k) for k in event)[:20]
        for key in ("source", "detail-type"):
            if isinstance(event.get(key), str):
                shape[key] = event[key][:200]
        records = event.get("Records")
        if isinstance(records, list):
            shape["records"] = len(records)
            first = records[0] if records else None
            if isinstance(first, dict):
                for key in ("eventSource", "eventName", "EventSource"):
                    if isinstance(first.get(key), str):
                        shape[f"first_record_{key}"] = first[key][:200]
    return shape
