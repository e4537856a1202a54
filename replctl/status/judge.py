"""Pure verdicts for `status`: facts in, one verdict per signal, account-region, environment, estate.

No I/O and no clock: "now" is the time the facts were read. Every rule is listed in
docs/status-and-drift.md; in short, per account-region:

| signal | unhealthy | degraded | unknown |
|---|---|---|---|
| stack-instance | missing, or not CURRENT/SUCCEEDED | drift status DRIFTED | listing failed |
| resource | a bucket/table/DLQ the template creates does not exist | | |
| s3-replication (per rule) | OperationsFailedReplication Sum > 0 | latency > s3 bound; rule disabled | no metrics; metrics off |
| metadata-lag (per target) | | lag > metadata bound; not seen; stale measurement | no item and no metric |
| s3-canary-lag (per target) | | canary lag > s3 bound | |
| heartbeat | | own heartbeat older than the bound | no heartbeat item |
| validation | report inconsistent | report older than the bound | no report |
| function-errors | | Errors Sum > 0 | no datapoints (except the stream processor where there is no downstream: it has no trigger) |
| dlq | messages visible > 0 | | depth unreadable |
| alarms | any alarm in ALARM | | no alarms found |

Anything that could not be read is `unknown`, never `healthy`. The verdict of a group is the
worst of its members (healthy < degraded < unknown < unhealthy).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from replctl.config import Thresholds
from replctl.status.model import AlarmState, DriftStatus, Series, StatusFacts, TargetFacts, Verdict, worst
from replctl.statuses import instance_ok


@dataclass(frozen=True)
class Signal:
    """The judgement of one signal: what was looked at, what it showed, and why it matters."""

    signal: str
    subject: str
    verdict: Verdict
    value: str
    reason: str | None = None  # set whenever the verdict is not healthy

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "subject": self.subject, "verdict": self.verdict.value,
                "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class TargetVerdict:
    """One account-region: its verdict, the signals behind it, and the facts."""

    facts: TargetFacts
    verdict: Verdict
    signals: tuple[Signal, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(s.reason for s in self.signals if s.reason and s.verdict is not Verdict.HEALTHY)

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return {
            "account": f.account,
            "region": f.region,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "signals": [s.to_dict() for s in self.signals],
            "facts": f.to_dict(),
        }


@dataclass(frozen=True)
class EnvironmentVerdict:
    name: str
    verdict: Verdict
    targets: tuple[TargetVerdict, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        many = len(self.targets) > 1
        return tuple(f"{t.facts.account} {t.facts.region}: {r}" if many else r
                     for t in self.targets for r in t.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict.value, "reasons": list(self.reasons),
                "targets": [t.to_dict() for t in self.targets]}


@dataclass(frozen=True)
class HealthReport:
    stack_set: str
    generated_at: datetime
    verdict: Verdict
    environments: tuple[EnvironmentVerdict, ...]
    thresholds: Thresholds

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{e.name}: {r}" for e in self.environments for r in e.reasons)

    def to_dict(self) -> dict[str, Any]:
        t = self.thresholds
        return {
            "stack_set": self.stack_set,
            "generated_at": self.generated_at.isoformat(),
            "verdict": self.verdict.value,
            "exit_code": int(self.verdict.exit_code),
            "reasons": list(self.reasons),
            "thresholds": {
                "metadata_lag_seconds": t.metadata_lag_seconds,
                "s3_latency_seconds": t.s3_latency_seconds,
                "heartbeat_max_age_seconds": t.heartbeat_max_age_seconds,
                "validation_max_age_seconds": t.validation_max_age_seconds,
                "lookback_minutes": t.lookback_minutes,
            },
            "environments": [e.to_dict() for e in self.environments],
        }


# --------------------------------------------------------------------------- formatting


def seconds(value: float) -> str:
    """A duration for people: 0.42 s, 12 s, 14 min, 3.5 h."""
    if value < 10:
        return f"{value:.2f}".rstrip("0").rstrip(".") + " s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 2 * 3600:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f}".rstrip("0").rstrip(".") + " h"


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _age(then: datetime, now: datetime) -> float:
    return max(0.0, (now - then).total_seconds())


def _ok(signal: str, subject: str, value: str) -> Signal:
    return Signal(signal, subject, Verdict.HEALTHY, value)


# --------------------------------------------------------------------------- rules


def judge_instance(f: TargetFacts, stack_set: str) -> Signal:
    """Stack instance: CURRENT and SUCCEEDED, or it is unhealthy; DRIFTED degrades."""
    subject = stack_set
    inst = f.instance
    if inst is None:
        problem = f.problem("stack-instance")
        if not f.instance_listed:
            return Signal("stack-instance", subject, Verdict.UNKNOWN, "unreadable",
                          problem or "the stack set's instances could not be listed")
        why = problem or f"no stack instance of {stack_set} for account {f.account} in {f.region}"
        return Signal("stack-instance", subject, Verdict.UNHEALTHY, "not deployed",
                      f"{why}: deploy it (replctl deploy --env {f.environment})")
    value = inst.status.value + (f" / {inst.detailed.value}" if inst.detailed else "")
    if inst.drift is not None:
        value += f", drift {inst.drift.value}"
    if not instance_ok(inst.status, inst.detailed):
        reason = f"stack instance is {value.split(',')[0]}"
        if inst.reason:
            reason += f" ({inst.reason})"
        return Signal("stack-instance", subject, Verdict.UNHEALTHY, value,
                      reason + f": finish or re-run the rollout (replctl deploy --env {f.environment})")
    if inst.drift is DriftStatus.DRIFTED:
        return Signal("stack-instance", subject, Verdict.DEGRADED, value,
                      "stack instance has drifted from the template: see replctl drift")
    return _ok("stack-instance", subject, value)


def judge_missing(f: TargetFacts) -> list[Signal]:
    return [Signal("resource", what, Verdict.UNHEALTHY, "missing",
                   f"{what} does not exist (the template creates it): re-deploy "
                   f"(replctl deploy --env {f.environment})")
            for what in f.missing]


def _empty(s: Series | None) -> bool:
    return s is None or s.empty


def judge_rules(f: TargetFacts, t: Thresholds) -> list[Signal]:
    """S3 replication per rule: failures are unhealthy, latency above the bound degrades."""
    if f.rules is None:
        if any(m.startswith("bucket ") for m in f.missing):
            return []
        return [Signal("s3-replication", f.bucket, Verdict.UNKNOWN, "unreadable",
                       f.problem("s3-replication") or "replication rules could not be read")]
    if not f.rules:
        return [_ok("s3-replication", f.bucket, "no replication rules on this bucket")]
    out = []
    window = f"the last {t.lookback_minutes} min"
    for r in f.rules:
        subject = f"{r.rule_id} → {r.target or r.destination_bucket}"
        if not r.enabled:
            out.append(Signal("s3-replication", subject, Verdict.DEGRADED, "rule disabled",
                              f"replication rule {r.rule_id} towards {r.destination_bucket} is disabled: "
                              "nothing replicates there"))
            continue
        if f.problem("s3-replication"):
            out.append(Signal("s3-replication", subject, Verdict.UNKNOWN, "unreadable", f.problem("s3-replication")))
            continue
        if not r.metrics_enabled:
            out.append(Signal("s3-replication", subject, Verdict.UNKNOWN, "metrics off",
                              f"rule {r.rule_id} has replication metrics disabled, so S3 publishes no "
                              "latency or failure data for it: enable Metrics on the rule (the template does)"))
            continue
        if _empty(r.latency) and _empty(r.pending) and _empty(r.failed):
            out.append(Signal("s3-replication", subject, Verdict.UNKNOWN, "no data",
                              f"no AWS/S3 replication metrics for rule {r.rule_id} in {window} "
                              "(the monitor's canary should replicate every few minutes)"))
            continue
        latency = r.latency.latest if r.latency else None
        pending = r.pending.latest if r.pending else None
        failed = r.failed.total if r.failed else None
        value = (f"latency {seconds(latency) if latency is not None else '–'}, "
                 f"pending {_count(pending)}, failed {_count(failed)}")
        if failed:
            out.append(Signal("s3-replication", subject, Verdict.UNHEALTHY, value,
                              f"{failed:g} replication operations failed in {window} for rule {r.rule_id} "
                              f"(towards {r.destination_bucket}): see the LOCAL#S3FAILURE items and the "
                              "replication role's permissions"))
        elif latency is not None and latency > t.s3_latency_seconds:
            out.append(Signal("s3-replication", subject, Verdict.DEGRADED, value,
                              f"S3 replication latency for rule {r.rule_id} is {seconds(latency)}, above the "
                              f"{seconds(t.s3_latency_seconds)} bound"))
        else:
            out.append(_ok("s3-replication", subject, value))
    return out


def _table_missing(f: TargetFacts) -> bool:
    return any(m.startswith("table ") for m in f.missing)


def judge_lags(f: TargetFacts, t: Thresholds, now: datetime) -> list[Signal]:
    """Metadata lag per downstream target against the metadata bound (default 1 s)."""
    if f.lags is None:
        if _table_missing(f):
            return []
        return [Signal("metadata-lag", "", Verdict.UNKNOWN, "unreadable",
                       f.problem("metadata-lag") or "lag measurements could not be read")]
    out = []
    bound = t.metadata_lag_seconds
    for lag in f.lags:
        subject = f"{f.environment} → {lag.target}"
        current = lag.metadata_lag_seconds
        if current is None and lag.metadata_metric is not None:
            current = lag.metadata_metric.latest
        if current is None:
            out.append(Signal("metadata-lag", subject, Verdict.UNKNOWN, "no data",
                              f"no metadata lag measurement towards {lag.target} (no LOCAL#LAG item and no "
                              f"MetadataReplicationLag datapoints in the last {t.lookback_minutes} min)"))
        else:
            value = seconds(current)
            peak = lag.metadata_metric.maximum if lag.metadata_metric else None
            if peak is not None and peak > current:
                value += f" (max {seconds(peak)})"
            lower = lag.metadata_visible is False
            if lower:
                value = "≥ " + value
            age = _age(lag.measured_at, now) if lag.measured_at else None
            if age is not None:
                value += f", measured {seconds(age)} ago"
            if current > bound:
                note = " (the heartbeat was not seen there at all: this is a lower bound)" if lower else ""
                out.append(Signal("metadata-lag", subject, Verdict.DEGRADED, value,
                                  f"metadata replication lag {f.environment} → {lag.target} is "
                                  f"{seconds(current)}, above the {seconds(bound)} bound{note}"))
            elif lower:
                out.append(Signal("metadata-lag", subject, Verdict.DEGRADED, value,
                                  f"the last heartbeat was not seen in {lag.target} within the poll"))
            elif age is not None and age > t.heartbeat_max_age_seconds:
                out.append(Signal("metadata-lag", subject, Verdict.DEGRADED, value,
                                  f"the last lag measurement towards {lag.target} is {seconds(age)} old "
                                  f"(bound {seconds(t.heartbeat_max_age_seconds)}): is the monitor's schedule running?"))
            else:
                out.append(_ok("metadata-lag", subject, value))
        s3 = lag.s3_lag_seconds
        if s3 is None and lag.s3_metric is not None:
            s3 = lag.s3_metric.latest
        if s3 is not None:
            value = ("≥ " if lag.s3_visible is False else "") + seconds(s3)
            if s3 > t.s3_latency_seconds:
                out.append(Signal("s3-canary-lag", subject, Verdict.DEGRADED, value,
                                  f"the S3 canary took {seconds(s3)} to reach {lag.target}, above the "
                                  f"{seconds(t.s3_latency_seconds)} bound"))
            else:
                out.append(_ok("s3-canary-lag", subject, value))
    return out


def judge_heartbeat(f: TargetFacts, t: Thresholds, now: datetime) -> list[Signal]:
    """This environment's own heartbeat must be younger than heartbeat_max_age_seconds."""
    if f.heartbeats is None:
        if _table_missing(f):
            return []
        return [Signal("heartbeat", f.environment, Verdict.UNKNOWN, "unreadable",
                       f.problem("heartbeat") or "heartbeat could not be read")]
    own = next((h for h in f.heartbeats if h.origin == f.environment), None)
    if own is None or own.written_at is None:
        return [Signal("heartbeat", f.environment, Verdict.UNKNOWN, "none",
                       f"no heartbeat from {f.environment} in table items (HEARTBEAT/{f.environment}): "
                       "the replication monitor has not run here")]
    age = _age(own.written_at, now)
    value = f"{seconds(age)} ago" + (f" (v{own.version})" if own.version is not None else "")
    if age > t.heartbeat_max_age_seconds:
        return [Signal("heartbeat", f.environment, Verdict.DEGRADED, value,
                       f"the last heartbeat is {seconds(age)} old (bound {seconds(t.heartbeat_max_age_seconds)}): "
                       "check the monitor's schedule and its errors")]
    return [_ok("heartbeat", f.environment, value)]


def judge_validation(f: TargetFacts, t: Thresholds, now: datetime) -> list[Signal]:
    """The latest validation report: inconsistent is unhealthy, stale degrades."""
    if not f.validation_read:
        if _table_missing(f):
            return []
        return [Signal("validation", "latest", Verdict.UNKNOWN, "unreadable",
                       f.problem("validation") or "the validation report could not be read")]
    v = f.validation
    if v is None:
        return [Signal("validation", "latest", Verdict.UNKNOWN, "none",
                       "no validation report yet (LOCAL#VALIDATION/latest): the config validator has not run here")]
    if v.generated_at is None:
        return [Signal("validation", "latest", Verdict.UNKNOWN, v.status or "?",
                       "the validation report has no readable generated_at time")]
    age = _age(v.generated_at, now)
    if v.status == "inconsistent":
        details = "; ".join(f"{d.environment + ' ' if d.environment else ''}{d.kind + ': ' if d.kind else ''}{d.detail}"
                            for d in v.differences[:5])
        more = f" (+{len(v.differences) - 5} more)" if len(v.differences) > 5 else ""
        n = len(v.differences)
        return [Signal("validation", "latest", Verdict.UNHEALTHY, f"inconsistent, {seconds(age)} ago",
                       f"validation found {n} difference{'s' if n != 1 else ''}: {details or 'none listed'}{more}")]
    if v.status != "consistent":
        return [Signal("validation", "latest", Verdict.UNKNOWN, v.status or "?",
                       f"the validation report has status '{v.status}', neither consistent nor inconsistent")]
    value = f"consistent, {seconds(age)} ago"
    if age > t.validation_max_age_seconds:
        return [Signal("validation", "latest", Verdict.DEGRADED, value,
                       f"the last validation report is {seconds(age)} old "
                       f"(bound {seconds(t.validation_max_age_seconds)}): is the validator's schedule running?")]
    return [_ok("validation", "latest", value)]


def judge_functions(f: TargetFacts, t: Thresholds) -> list[Signal]:
    """Lambda Errors summed over the lookback: > 0 degrades, no datapoints is unknown."""
    if f.functions is None:
        return [Signal("function-errors", "", Verdict.UNKNOWN, "unreadable",
                       f.problem("function-errors") or "function metrics could not be read")]
    out = []
    # The stream mapping exists only where the environment replicates downstream (the template's
    # HasDownstream, which is exactly "the bucket has replication rules"): elsewhere the stream
    # processor has no trigger, so it cannot have erred, and silence is expected, not unknown.
    no_downstream = f.rules is not None and not f.rules
    for fn in f.functions:
        if _empty(fn.errors) and no_downstream and fn.name.endswith("-stream-processor"):
            out.append(_ok("function-errors", fn.name, "not triggered here (no downstream targets)"))
            continue
        if _empty(fn.errors):
            out.append(Signal("function-errors", fn.name, Verdict.UNKNOWN, "no data",
                              f"no AWS/Lambda Errors datapoints for {fn.name} in the last {t.lookback_minutes} min: "
                              "it has not run, or its metrics do not reach CloudWatch"))
            continue
        total = fn.errors.total or 0.0  # type: ignore[union-attr]
        value = f"{total:g} in {t.lookback_minutes} min"
        if total > 0:
            out.append(Signal("function-errors", fn.name, Verdict.DEGRADED, value,
                              f"{fn.name} reported {total:g} errors in the last {t.lookback_minutes} min: "
                              f"see its log group /aws/lambda/{fn.name}"))
        else:
            out.append(_ok("function-errors", fn.name, value))
    return out


def judge_queues(f: TargetFacts) -> list[Signal]:
    """DLQ depth: any visible message is an event that failed for good."""
    if f.queues is None:
        return []
    out = []
    for q in f.queues:
        if q.depth is None:
            out.append(Signal("dlq", q.name, Verdict.UNKNOWN, "unreadable", q.error or f"depth of {q.name} unknown"))
        elif q.depth > 0:
            out.append(Signal("dlq", q.name, Verdict.UNHEALTHY, f"{q.depth} messages",
                              f"{q.depth} message{'s' if q.depth != 1 else ''} in dead-letter queue {q.name}: "
                              "events failed after every retry; inspect them and redrive"))
        else:
            out.append(_ok("dlq", q.name, "0 messages"))
    return out


def judge_alarms(f: TargetFacts) -> list[Signal]:
    """Any alarm of this environment in ALARM is unhealthy; none found at all is unknown."""
    subject = f"{f.alarm_prefix}*"
    if f.alarms is None:
        return [Signal("alarms", subject, Verdict.UNKNOWN, "unreadable",
                       f.problem("alarms") or "alarms could not be read")]
    if not f.alarms:
        return [Signal("alarms", subject, Verdict.UNKNOWN, "none found",
                       f"no alarms named {subject} in {f.account} {f.region}: the template's alarms are missing")]
    counts = {s: sum(1 for a in f.alarms if a.state is s) for s in AlarmState}
    value = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    firing = [a for a in f.alarms if a.state is AlarmState.ALARM]
    out = [Signal("alarms", a.name, Verdict.UNHEALTHY, "ALARM",
                  f"alarm {a.name} is in ALARM" + (f": {a.reason}" if a.reason else ""))
           for a in firing]
    return out or [_ok("alarms", subject, value)]


def judge_target(f: TargetFacts, t: Thresholds, stack_set: str, now: datetime | None = None) -> TargetVerdict:
    """Every rule for one account-region; its verdict is the worst signal."""
    now = now or f.fetched_at
    signals = [judge_instance(f, stack_set)]
    access = f.problem("access")
    if access is not None:
        signals.append(Signal("access", f"{f.account} {f.region}", Verdict.UNKNOWN, "unreadable",
                              f"cannot read account {f.account} in {f.region}: {access}"))
    else:
        signals += judge_missing(f)
        signals += judge_rules(f, t)
        signals += judge_lags(f, t, now)
        signals += judge_heartbeat(f, t, now)
        signals += judge_validation(f, t, now)
        signals += judge_functions(f, t)
        signals += judge_queues(f)
        signals += judge_alarms(f)
    return TargetVerdict(f, worst(s.verdict for s in signals), tuple(signals))


def judge_environment(name: str, targets: Iterable[TargetVerdict]) -> EnvironmentVerdict:
    targets = tuple(targets)
    return EnvironmentVerdict(name, worst(t.verdict for t in targets), targets)


def judge(facts: StatusFacts, thresholds: Thresholds) -> HealthReport:
    """The whole report: per account-region, per environment, and overall (= the worst)."""
    envs = []
    for name in facts.environments:
        mine = [judge_target(f, thresholds, facts.stack_set, facts.fetched_at)
                for f in facts.targets if f.environment == name]
        envs.append(judge_environment(name, mine))
    return HealthReport(facts.stack_set, facts.fetched_at, worst(e.verdict for e in envs), tuple(envs), thresholds)
