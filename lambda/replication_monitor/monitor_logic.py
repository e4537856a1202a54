"""Pure decisions of ReplicationMonitorLambda (no AWS calls here).

SSM mirroring. Parameter Store has no conditional write, so each mirror carries the version and
last-modified time of the source it was copied from, in its Description
(`replctl-mirror source=dev version=3 modified=1714564800.123456`). A mirror is replaced only by
a strictly newer source (later LastModifiedDate, or the same time and a higher version), so a
stale or replayed event can never win. The event itself is only a trigger: the handler re-reads
the source (the event carries no value anyway), so Create, Update, Delete and a late duplicate
all converge on the source's current state. (Two invocations racing between DescribeParameters
and PutParameter can still land the older value; the scheduled reconciliation repairs that.)

A mirror whose type differs from its source's cannot be overwritten: "Parameter Store doesn't
support changing a parameter type in a hierarchy. For example, you can't change a parameter from
a String type to a SecureString type. You must create a new, unique parameter."
(HierarchyTypeMismatchException, SSM API reference, PutParameter errors). Such a mirror is
replaced: deleted, then written again no sooner than DeleteParameter allows ("After deleting a
parameter, wait for at least 30 seconds to create a parameter with the same name").

S3 replication failures are turned into `LOCAL#S3FAILURE` items. The heartbeat's end-to-end
check is a bounded poll with an injectable clock and sleep; each probe has its own schedule, so
the metadata probe looks every 50 ms while the lag is near its 1 s bound and the slow S3 probe
backs off on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

MIRROR_MARK = "replctl-mirror"
_MARK_RE = re.compile(
    r"^replctl-mirror source=(?P<source>[a-z]+) version=(?P<version>\d+) modified=(?P<modified>\d+(?:\.\d+)?)$"
)
# SSM parameter names: letters, digits and . - _ / ; at most 2048 characters with the path.
_NAME_RE = re.compile(r"^/[A-Za-z0-9_.\-/]{1,2047}$")
SECURE = "SecureString"
PARAMETER_TYPES = ("String", "StringList", SECURE)
FAILED_REPLICATION = "Replication:OperationFailedReplication"
CANARY_PREFIX = "_replctl/canary"


# -- SSM mirroring --------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterChange:
    """What a Parameter Store Change event says (it never carries the value)."""

    name: str
    operation: str
    type: str | None


@dataclass(frozen=True)
class SourceParameter:
    name: str
    type: str
    # May be a decrypted SecureString: never in a repr or log. None when the value was not read
    # (a SecureString listed without decryption: what came back is ciphertext, never written).
    value: str | None = field(repr=False)
    version: int
    modified: float  # epoch seconds of LastModifiedDate


@dataclass(frozen=True)
class MirrorState:
    name: str
    description: str | None
    type: str | None = None  # DescribeParameters' Type; None when not known

    @property
    def marker(self) -> tuple[str, int, float] | None:
        return parse_mirror_description(self.description)


@dataclass(frozen=True)
class PutMirror:
    reason: str


@dataclass(frozen=True)
class DeleteMirror:
    reason: str


@dataclass(frozen=True)
class KeepMirror:
    reason: str


@dataclass(frozen=True)
class ReplaceMirror:
    """Delete the mirror, wait REPLACE_WAIT_SECONDS, then put it with the source's type."""

    reason: str


MirrorAction = PutMirror | DeleteMirror | KeepMirror | ReplaceMirror
# DeleteParameter: "After deleting a parameter, wait for at least 30 seconds to create a
# parameter with the same name." (SSM API reference)
REPLACE_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class MirrorWork:
    """One mirror to change in one target environment."""

    name: str
    target: str
    action: MirrorAction


def parse_parameter_change(detail: Any) -> ParameterChange:
    """Read the `detail` of a Parameter Store Change event; ValueError when unusable."""
    if not isinstance(detail, dict):
        raise ValueError("detail is not an object")
    name, operation, kind = detail.get("name"), detail.get("operation"), detail.get("type")
    if not isinstance(name, str) or not _NAME_RE.match(name) or "//" in name:
        raise ValueError("detail.name is not a parameter name with a path")
    if not isinstance(operation, str) or not operation:
        raise ValueError("detail.operation is missing")
    return ParameterChange(name=name, operation=operation, type=kind if isinstance(kind, str) else None)


def error_text(error: BaseException, source: SourceParameter | None, code: str | None = None) -> str:
    """`Type: message` of a failed call, for logs and the raised error, never quoting a secret.

    AWS validation errors quote the offending input ("Value '...' at 'value' failed to satisfy
    constraint"), so a failed PutParameter can carry the value being written. For a SecureString
    whose value (or its first 8 characters, in case AWS truncated it) appears in the message,
    only the error type and code are kept.
    """
    text = f"{type(error).__name__}: {error}"
    if source is None or source.type != SECURE or not source.value:
        return text
    probe = source.value[:8] if len(source.value) >= 8 else source.value
    if probe in text:
        return f"{type(error).__name__} ({code or 'no code'}): message withheld, it quotes the parameter's value"
    return text


def in_hierarchy(name: str, hierarchy: str) -> bool:
    """True when `name` is below `hierarchy` (not the hierarchy node itself)."""
    return name.startswith(hierarchy.rstrip("/") + "/")


def mirror_description(source_env: str, version: int, modified: float) -> str:
    return f"{MIRROR_MARK} source={source_env} version={int(version)} modified={modified:.6f}"


def parse_mirror_description(description: str | None) -> tuple[str, int, float] | None:
    """(source environment, source version, source modified) of a mirror, or None."""
    if not description:
        return None
    match = _MARK_RE.match(description.strip())
    if not match:
        return None
    return match["source"], int(match["version"]), float(match["modified"])


def decide_mirror(
    source: SourceParameter | None,
    mirror: MirrorState | None,
    *,
    source_env: str,
    mirror_secure_strings: bool,
) -> MirrorAction:
    """What to do with one downstream mirror given the source's current state."""
    marker = mirror.marker if mirror is not None else None
    ours = marker is not None and marker[0] == source_env
    if source is None:
        if ours:
            return DeleteMirror("source parameter no longer exists")
        if mirror is not None:
            return KeepMirror("source is gone but the target parameter is not a mirror written by replctl")
        return KeepMirror("source and mirror are both absent")
    if source.type == SECURE and not mirror_secure_strings:
        if ours:
            return DeleteMirror("source is a SecureString and MIRROR_SECURE_STRINGS is off: stale mirror removed")
        return KeepMirror("SecureString not mirrored (MIRROR_SECURE_STRINGS is off)")
    if mirror is None:
        return PutMirror("mirror does not exist")
    if not ours:
        put = PutMirror("target parameter is not a replctl mirror of this environment")
    else:
        assert marker is not None
        _, mirror_version, mirror_modified = marker
        if (round(source.modified, 6), source.version) <= (mirror_modified, mirror_version):
            return KeepMirror(f"mirror already holds source version {mirror_version} (source is {source.version})")
        put = PutMirror(f"source version {source.version} is newer than mirrored version {mirror_version}")
    if mirror.type is not None and mirror.type != source.type:
        # PutParameter cannot change a type (HierarchyTypeMismatchException): replace instead.
        return ReplaceMirror(f"{put.reason}; its type changed from {mirror.type} to {source.type}")
    return put


def plan_mirrors(
    sources: Mapping[str, SourceParameter],
    mirrors: Mapping[str, Mapping[str, MirrorState]],
    *,
    source_env: str,
    mirror_secure_strings: bool,
) -> list[MirrorWork]:
    """Every mirror that must change, by name then target (targets in the order given)."""
    work = []
    names = sorted(set(sources).union(*(set(m) for m in mirrors.values())))
    for name in names:
        for target, found in mirrors.items():
            action = decide_mirror(sources.get(name), found.get(name), source_env=source_env,
                                   mirror_secure_strings=mirror_secure_strings)
            if not isinstance(action, KeepMirror):
                work.append(MirrorWork(name, target, action))
    return work


def put_mirror_request(source: SourceParameter, source_env: str) -> dict[str, Any]:
    """PutParameter arguments for a mirror (SecureString: the target's default aws/ssm key)."""
    if source.value is None:
        raise ValueError(f"{source.name}: the value was not read (listed without decryption)")
    return {
        "Name": source.name,
        "Value": source.value,
        "Type": source.type,
        "Overwrite": True,
        # Standard when the value fits, Advanced only when the source needs it (> 4 KB).
        "Tier": "Intelligent-Tiering",
        "Description": mirror_description(source_env, source.version, source.modified),
    }


# -- S3 replication failures ----------------------------------------------------------------


@dataclass(frozen=True)
class ReplicationFailure:
    bucket: str
    key: str
    version_id: str | None
    reason: str
    event_time: str
    rule_id: str | None
    destination_bucket: str | None
    operation: str | None


def parse_replication_failure(record: Any) -> ReplicationFailure | None:
    """An S3 notification record -> failure; None for other event names; ValueError if broken."""
    if not isinstance(record, dict):
        raise ValueError("record is not an object")
    name = record.get("eventName")
    if name != FAILED_REPLICATION:
        return None
    s3 = record.get("s3")
    data = record.get("replicationEventData")
    if not isinstance(s3, dict) or not isinstance(data, dict):
        raise ValueError("record has no s3 / replicationEventData section")
    bucket = s3.get("bucket")
    obj = s3.get("object")
    if not isinstance(bucket, dict) or not isinstance(obj, dict):
        raise ValueError("record has no bucket / object")
    bucket_name, key = bucket.get("name"), obj.get("key")
    if not isinstance(bucket_name, str) or not bucket_name or not isinstance(key, str) or not key:
        raise ValueError("record has no bucket name or object key")
    event_time = record.get("eventTime")
    if not isinstance(event_time, str) or not event_time:
        raise ValueError("record has no eventTime")

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    return ReplicationFailure(
        bucket=bucket_name,
        # Keys in S3 notifications are URL-encoded (spaces as '+').
        key=unquote_plus(key),
        version_id=text(obj.get("versionId")),
        reason=text(data.get("failureReason")) or "unknown",
        event_time=event_time,
        rule_id=text(data.get("replicationRuleId")),
        destination_bucket=text(data.get("destinationBucket")),
        operation=text(data.get("s3Operation")),
    )


def failure_item(failure: ReplicationFailure, *, environment: str, recorded_at: str, version: int) -> dict[str, Any]:
    """The LOCAL#S3FAILURE item for one failure (Python values)."""
    item: dict[str, Any] = {
        "pk": "LOCAL#S3FAILURE",
        "sk": f"{failure.event_time}#{failure.key}",
        "bucket": failure.bucket,
        "key": failure.key,
        "version_id": failure.version_id,
        "reason": failure.reason,
        "recorded_at": recorded_at,
        "origin": environment,
        "version": version,
        "rule_id": failure.rule_id,
        "destination_bucket": failure.destination_bucket,
        "operation": failure.operation,
    }
    return {k: v for k, v in item.items() if v is not None}


# -- heartbeat and lag ----------------------------------------------------------------------


def canary_key(environment: str) -> str:
    return f"{CANARY_PREFIX}/{environment}.json"


@dataclass(frozen=True)
class PollSchedule:
    """When a probe looks again: every `first` seconds until `fine_for` seconds after the start,
    then at intervals doubling up to `cap`."""

    first: float
    cap: float
    fine_for: float = 0.0

    def step_after(self, step: float, elapsed: float) -> float:
        """The interval to use after a look `elapsed` seconds into the poll, given the last one."""
        return self.first if elapsed < self.fine_for else min(self.cap, step * 2)


# The metadata bound is 1 s: look every 50 ms for twice that long, so a lag near the bound is
# measured to within 50 ms plus one GetItem (a doubling series records 0.8 s as >= 1.55 s).
METADATA_POLL = PollSchedule(first=0.05, cap=2.0, fine_for=2.0)
# S3 without RTC replicates "most objects within 15 minutes": back off from the start.
S3_POLL = PollSchedule(first=0.05, cap=2.0)


def poll_until_visible(
    probes: Mapping[str, tuple[Callable[[], bool], PollSchedule]],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    start: float,
    deadline: float,
) -> dict[str, float | None]:
    """Call each probe on its own schedule until it returns True or `deadline` passes.

    Returns, per probe, the clock time at which it was first seen (None: not seen in time). A
    probe that raises is treated as not seen for that look.
    """
    seen: dict[str, float | None] = {name: None for name in probes}
    due = {name: start for name in probes}
    step = {name: schedule.first for name, (_, schedule) in probes.items()}
    while True:
        for name, (probe, schedule) in probes.items():
            now = clock()
            if seen[name] is not None or due[name] > now:
                continue
            try:
                visible = probe()
            except Exception:  # noqa: BLE001 - a failing probe is "not visible yet"
                visible = False
            if visible:
                seen[name] = clock()
                continue
            due[name] = now + step[name]
            step[name] = schedule.step_after(step[name], now - start)
        now = clock()
        waiting = [due[name] for name in probes if seen[name] is None]
        if not waiting or now >= deadline:
            return seen
        sleep(max(0.0, min(min(waiting), deadline) - now))


def lag_seconds(written_at: float, seen_at: float | None, now: float) -> tuple[float, bool]:
    """(lag, visible): the measured lag, or a lower bound (`now - written_at`) when not seen."""
    if seen_at is None:
        return max(0.0, now - written_at), False
    return max(0.0, seen_at - written_at), True


def lag_item(
    *,
    target: str,
    environment: str,
    metadata: tuple[float, bool],
    s3: tuple[float, bool],
    measured_at: str,
    heartbeat_version: int,
) -> dict[str, Any]:
    """The LOCAL#LAG item for one downstream environment (Python values)."""
    return {
        "pk": "LOCAL#LAG",
        "sk": target,
        "metadata_lag_seconds": round(metadata[0], 6),
        "s3_lag_seconds": round(s3[0], 6),
        "metadata_visible": metadata[1],
        "s3_visible": s3[1],
        "measured_at": measured_at,
        "heartbeat_version": heartbeat_version,
        "origin": environment,
        "version": heartbeat_version,
    }
