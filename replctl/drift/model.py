"""The values `drift` works on: StackSet drift results and the facts behind the parity checks.

Frozen dataclasses and enums only. `drift.fetch` builds them from API responses and
`drift.judge` turns them into findings without I/O. Resource names (`Names`), the replication
rules (`RuleFact`) and unreadable signals (`Problem`) are shared with `status` and come from
its model; the two drift status families below are parsed the same way (unknown values raise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from replctl.status.model import DriftStatus, Problem, RuleFact, parse_status
from replctl.statuses import OperationStatus


class ResourceDriftStatus(Enum):
    """StackInstanceResourceDriftsSummary.StackResourceDriftStatus."""

    IN_SYNC = "IN_SYNC"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    NOT_CHECKED = "NOT_CHECKED"
    UNKNOWN = "UNKNOWN"
    UNSUPPORTED = "UNSUPPORTED"

    @property
    def drifted(self) -> bool:
        return self in (ResourceDriftStatus.MODIFIED, ResourceDriftStatus.DELETED)


class DetectionStatus(Enum):
    """StackSetDriftDetectionDetails.DriftDetectionStatus."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    IN_PROGRESS = "IN_PROGRESS"
    STOPPED = "STOPPED"


def resource_drift_status(value: str) -> ResourceDriftStatus:
    return parse_status(ResourceDriftStatus, value, "resource drift status")


def detection_status(value: str) -> DetectionStatus:
    return parse_status(DetectionStatus, value, "drift detection status")


@dataclass(frozen=True)
class PropertyDiff:
    path: str
    expected: str | None
    actual: str | None
    kind: str  # ADD | REMOVE | NOT_EQUAL


@dataclass(frozen=True)
class ResourceDrift:
    logical_id: str
    physical_id: str | None
    resource_type: str
    status: ResourceDriftStatus
    differences: tuple[PropertyDiff, ...] = ()


@dataclass(frozen=True)
class InstanceDrift:
    account: str
    region: str
    drift: DriftStatus | None
    reason: str | None = None
    resources: tuple[ResourceDrift, ...] = ()


@dataclass(frozen=True)
class StackSetDrift:
    """The outcome of DetectStackSetDrift (or why it could not run)."""

    stack_set: str
    available: bool
    note: str | None = None  # why detection is not available (once, plainly)
    operation_id: str | None = None
    operation: OperationStatus | None = None
    detection: DetectionStatus | None = None
    drift: DriftStatus | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    instances: tuple[InstanceDrift, ...] = ()
    missing: bool = False  # the stack set does not exist


@dataclass(frozen=True)
class TableSchema:
    """The parts of DescribeTable that must be identical in every environment."""

    keys: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, str], ...]
    global_indexes: tuple[str, ...]
    local_indexes: tuple[str, ...]
    stream: str  # view type, or "disabled"
    billing: str


@dataclass(frozen=True)
class ParityTarget:
    """What `drift` read in one account-region for the parity checks (None: could not read)."""

    environment: str
    account: str
    region: str
    ssm_keys: frozenset[str] | None = None
    table: TableSchema | None = None
    table_missing: bool = False
    code: Mapping[str, str | None] | None = None  # short function name -> CodeSha256 (None: no function)
    rules: tuple[RuleFact, ...] | None = None  # read in the environment's first region only
    bucket: str | None = None
    bucket_missing: bool = False
    parameters: Mapping[str, str] | None = None  # the instance's effective stack set parameters
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class ParityFacts:
    """What `drift` read for the cross-environment comparison."""

    environments: tuple[str, ...]
    targets: tuple[ParityTarget, ...]
    built_code: Mapping[str, str]  # short function name -> CodeSha256 of this checkout's ZIP
