"""The values `status` works on: verdicts, status enums, resource names, and the facts read from AWS.

Everything here is a frozen dataclass or an enum. `status.fetch` builds the facts from API
responses; `status.judge` turns them into verdicts without any I/O, which is what lets the
judging be unit-tested with hand-made facts. `drift` reads this model too: the resource names
(`Names`, from docs/contract.md), the replication rules (`RuleFact`) and `Problem`.

The status families `status` adds to replctl/statuses.py (which owns the StackSet operation and
instance statuses) are collapsed into enums here, one function per family (`drift_status`,
`alarm_state`; drift's own two live in `drift.model`), all through `parse_status`. A value this
replctl does not know raises a `ReplctlError` instead of being guessed at: AWS adds values over
time (resource drift gained `UNKNOWN` and `UNSUPPORTED`), and a verdict built on a misread status
would be a lie.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any, TypeVar

from replctl.config import Config
from replctl.errors import ConfigError, ExitCode, ReplctlError
from replctl.statuses import DetailedStatus, InstanceStatus

#: The three functions the template deploys, by their short (contract) names.
FUNCTIONS = ("replication-monitor", "config-validator", "stream-processor")
#: Metric namespace of the functions' Embedded Metric Format output (docs/contract.md).
METRICS_NAMESPACE = "ReplicationFramework"
#: IAM path of every role the template creates (docs/contract.md).
ROLE_PATH = "/replctl/"
#: Downstream order replication may flow in; a rule always points later in this tuple.
FLOW = ("dev", "staging", "prod")


# --------------------------------------------------------------------------- verdicts


class Verdict(Enum):
    """The judgement of one signal, account-region, environment or the whole estate.

    Ordered by severity; `worst` of several is the one with the highest rank. `unknown` ranks
    above `degraded`: missing data may hide anything, so it must not read as "only degraded".
    A known-bad `unhealthy` still wins over `unknown`: it is the more actionable fact.
    """

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNKNOWN = "unknown"
    UNHEALTHY = "unhealthy"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT[self]


_RANK = {Verdict.HEALTHY: 0, Verdict.DEGRADED: 1, Verdict.UNKNOWN: 2, Verdict.UNHEALTHY: 3}
_EXIT = {
    Verdict.HEALTHY: ExitCode.OK,
    Verdict.DEGRADED: ExitCode.DEGRADED,
    Verdict.UNKNOWN: ExitCode.UNKNOWN,
    Verdict.UNHEALTHY: ExitCode.UNHEALTHY,
}


def worst(verdicts: Any) -> Verdict:
    """The most severe of `verdicts`; nothing at all to judge is `unknown`, never `healthy`."""
    items = list(verdicts)
    if not items:
        return Verdict.UNKNOWN
    return max(items, key=lambda v: v.rank)


# --------------------------------------------------------------------------- AWS statuses


class DriftStatus(Enum):
    """Drift of a stack instance or a stack set (StackDriftStatus / StackSetDriftStatus)."""

    DRIFTED = "DRIFTED"
    IN_SYNC = "IN_SYNC"
    UNKNOWN = "UNKNOWN"
    NOT_CHECKED = "NOT_CHECKED"


class AlarmState(Enum):
    """MetricAlarm.StateValue."""

    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


E = TypeVar("E", bound=Enum)


def parse_status(enum: type[E], value: str, family: str) -> E:
    """`value` as a member of `enum`; a value this replctl does not know raises (never guessed)."""
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(m.value for m in enum)  # type: ignore[attr-defined]
        raise ReplctlError(
            f"AWS returned {family} '{value}', which this replctl does not know (known: {known})",
            hint="upgrade replctl; if this is the newest version, report the value",
        ) from None


def drift_status(value: str) -> DriftStatus:
    return parse_status(DriftStatus, value, "drift status")


def alarm_state(value: str) -> AlarmState:
    return parse_status(AlarmState, value, "alarm state")


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class Names:
    """Resource names from docs/contract.md, computed from environments.yaml alone."""

    stack_set: str
    resource_prefix: str
    table: str
    bucket_prefix: str
    ssm_prefix: str
    observer_role_name: str
    accounts: Mapping[str, str]  # environment -> its primary account

    def bucket(self, environment: str, account: str) -> str:
        return f"{self.bucket_prefix}-{environment}-{account}"

    def primary_bucket(self, environment: str) -> str:
        return self.bucket(environment, self.accounts[environment])

    def function(self, short: str) -> str:
        return f"{self.resource_prefix}-{short}"

    def queues(self) -> tuple[str, ...]:
        return (*(f"{self.resource_prefix}-{f}-dlq" for f in FUNCTIONS), f"{self.resource_prefix}-events-dlq")

    def alarm_prefix(self, environment: str) -> str:
        return f"{self.resource_prefix}-{environment}-"

    def observer_role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role{ROLE_PATH}{self.observer_role_name}"

    def ssm_path(self, environment: str) -> str:
        return f"{self.ssm_prefix}/{environment}/config"

    def environment_of_bucket(self, bucket: str) -> str | None:
        """Which environment a bucket name (or `arn:aws:s3:::name`) belongs to, if it is ours."""
        name = bucket.rsplit(":", 1)[-1]
        for env in FLOW:
            head = f"{self.bucket_prefix}-{env}-"
            rest = name[len(head):]
            if name.startswith(head) and len(rest) == 12 and rest.isdigit():
                return env
        return None


def names_for(config: Config) -> Names:
    """The names `status` and `drift` read; a name the contract needs but the config lacks is an error."""
    params = config.parameters
    missing = [k for k in ("DynamoDBTableName", "ReplicationBucketName") if not params.get(k)]
    if missing:
        raise ConfigError(
            f"{config.path}: parameters.{missing[0]} is not set",
            hint="status and drift find the metadata table and buckets by these parameters; "
            "set them as the template receives them",
        )
    return Names(
        stack_set=config.stackset.name,
        resource_prefix=params.get("ResourcePrefix") or "replctl",
        table=params["DynamoDBTableName"],
        bucket_prefix=params["ReplicationBucketName"],
        ssm_prefix=config.ssm_prefix,
        observer_role_name=config.observer_role_name,
        accounts=MappingProxyType({e.name: e.account_id for e in config.environments}),
    )


# --------------------------------------------------------------------------- status facts


@dataclass(frozen=True)
class Series:
    """One CloudWatch series (one statistic of one metric), newest point first."""

    stat: str
    points: tuple[tuple[datetime, float], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.points

    @property
    def latest(self) -> float | None:
        return self.points[0][1] if self.points else None

    @property
    def maximum(self) -> float | None:
        return max(v for _, v in self.points) if self.points else None

    @property
    def total(self) -> float | None:
        return sum(v for _, v in self.points) if self.points else None

    def to_dict(self) -> dict[str, Any]:
        return {"stat": self.stat, "latest": self.latest, "maximum": self.maximum, "sum": self.total,
                "datapoints": len(self.points)}


@dataclass(frozen=True)
class InstanceFact:
    """The stack instance of one account-region, as ListStackInstances reports it."""

    status: InstanceStatus
    detailed: DetailedStatus | None
    reason: str | None = None
    drift: DriftStatus | None = None
    last_drift_check: datetime | None = None


@dataclass(frozen=True)
class RuleFact:
    """One replication rule of this environment's bucket, with its AWS/S3 metrics."""

    rule_id: str
    destination_bucket: str
    target: str | None  # the environment the destination belongs to (None: not one of ours)
    enabled: bool
    metrics_enabled: bool
    latency: Series | None = None
    pending: Series | None = None
    failed: Series | None = None


@dataclass(frozen=True)
class LagFact:
    """Measured replication lag towards one downstream environment (LOCAL#LAG + metrics)."""

    target: str
    metadata_lag_seconds: float | None = None
    s3_lag_seconds: float | None = None
    metadata_visible: bool | None = None
    s3_visible: bool | None = None
    measured_at: datetime | None = None
    metadata_metric: Series | None = None
    s3_metric: Series | None = None


@dataclass(frozen=True)
class HeartbeatFact:
    origin: str
    written_at: datetime | None
    version: int | None


@dataclass(frozen=True)
class Difference:
    kind: str
    environment: str
    detail: str


@dataclass(frozen=True)
class ValidationFact:
    """The latest validation report (LOCAL#VALIDATION / latest)."""

    status: str
    generated_at: datetime | None
    differences: tuple[Difference, ...] = ()
    compared: tuple[str, ...] = ()
    trigger: str | None = None


@dataclass(frozen=True)
class FunctionFact:
    name: str
    errors: Series | None  # AWS/Lambda Errors, Sum per minute


@dataclass(frozen=True)
class QueueFact:
    name: str
    depth: int | None  # ApproximateNumberOfMessages (visible); None with `error`
    error: str | None = None


@dataclass(frozen=True)
class AlarmFact:
    name: str
    state: AlarmState
    reason: str = ""
    updated: datetime | None = None


@dataclass(frozen=True)
class Problem:
    """A signal that could not be read, and why (it makes that signal `unknown`)."""

    signal: str
    message: str


@dataclass(frozen=True)
class TargetFacts:
    """Everything `status` read for one account-region of one environment.

    A field is None when it could not be read; `problems` then says why. An empty tuple means
    "read, and there is none".
    """

    environment: str
    account: str
    region: str
    fetched_at: datetime
    bucket: str
    instance: InstanceFact | None = None
    instance_listed: bool = False  # ListStackInstances answered (so a missing instance is real)
    rules: tuple[RuleFact, ...] | None = None
    lags: tuple[LagFact, ...] | None = None
    heartbeats: tuple[HeartbeatFact, ...] | None = None
    validation: ValidationFact | None = None
    validation_read: bool = False  # the table answered (so a missing report is real)
    functions: tuple[FunctionFact, ...] | None = None
    queues: tuple[QueueFact, ...] | None = None
    alarms: tuple[AlarmFact, ...] | None = None
    alarm_prefix: str = ""
    missing: tuple[str, ...] = ()  # resources the template creates that do not exist
    problems: tuple[Problem, ...] = ()

    def problem(self, signal: str) -> str | None:
        for p in self.problems:
            if p.signal == signal:
                return p.message
        return None

    def to_dict(self) -> dict[str, Any]:
        def ser(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, tuple):
                return [ser(v) for v in value]
            if isinstance(value, Series):
                return value.to_dict()
            if isinstance(value, Enum):
                return value.value
            if isinstance(value, datetime):
                return value.isoformat()
            if hasattr(value, "__dataclass_fields__"):
                return {k: ser(getattr(value, k)) for k in value.__dataclass_fields__}
            return value

        out = {k: ser(getattr(self, k)) for k in (
            "instance", "rules", "lags", "heartbeats", "validation", "functions", "queues", "alarms")}
        out["bucket"] = self.bucket
        out["fetched_at"] = self.fetched_at.isoformat()
        out["missing"] = list(self.missing)
        out["problems"] = [asdict(p) for p in self.problems]
        return out


@dataclass(frozen=True)
class StatusFacts:
    """What one `status` run read: every selected account-region."""

    stack_set: str
    fetched_at: datetime
    targets: tuple[TargetFacts, ...]
    environments: tuple[str, ...]
