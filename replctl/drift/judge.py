"""Pure judging for `drift`: StackSet drift results and cross-environment parity → findings.

A finding is drift: something deployed differs from what the template and this checkout say
it should be. Each one names where to look (environment, account, region, resource) and what to
do. A check that could not run is a note, not a finding: the report then says it is incomplete
rather than claiming the estate is in sync.

Parity rules (each documented in docs/status-and-drift.md):
- SSM: every environment's hierarchy (`<ssm_prefix>/<env>/config`, names relative to it) holds
  the same keys; a key present anywhere and missing somewhere is a finding where it is missing.
- Table: DescribeTable's keys, attribute definitions, indexes, stream and billing mode equal
  the first environment's (in rollout order).
- Function code: each deployed function's CodeSha256 equals the ZIP built from this checkout.
- Bucket replication: the enabled rules point exactly at the downstream environments the
  instance's `ReplicateTo<Env>` parameters switch on (dev → staging and prod, staging → prod,
  prod none), each with replication metrics on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from replctl.errors import ExitCode
from replctl.drift.model import DetectionStatus, ParityFacts, ParityTarget, StackSetDrift, TableSchema
from replctl.status.model import DriftStatus, FLOW, Names
from replctl.statuses import OperationStatus


@dataclass(frozen=True)
class Finding:
    """One drift: what, where, and what to do about it."""

    kind: str
    environment: str
    account: str
    region: str
    resource: str
    detail: str
    action: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    stack_set: StackSetDrift
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()  # checks that could not run (the report is then incomplete)
    checked: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    built_code: Mapping[str, str] = field(default_factory=dict)

    @property
    def in_sync(self) -> bool:
        return not self.findings

    @property
    def complete(self) -> bool:
        return not self.notes

    @property
    def exit_code(self) -> ExitCode:
        """30 when anything drifted; 22 when nothing did but some check could not run; else 0."""
        if self.findings:
            return ExitCode.DRIFTED
        if self.notes:
            return ExitCode.UNKNOWN
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        s = self.stack_set
        return {
            "in_sync": self.in_sync,
            "complete": self.complete,
            "exit_code": int(self.exit_code),
            "stack_set": {
                "name": s.stack_set,
                "detection_available": s.available,
                "note": s.note,
                "exists": not s.missing,
                "operation_id": s.operation_id,
                "operation_status": s.operation.value if s.operation else None,
                "detection_status": s.detection.value if s.detection else None,
                "drift_status": s.drift.value if s.drift else None,
                "counts": dict(s.counts),
                "instances": [{
                    "account": i.account,
                    "region": i.region,
                    "drift_status": i.drift.value if i.drift else None,
                    "resources": [{
                        "logical_id": r.logical_id,
                        "physical_id": r.physical_id,
                        "type": r.resource_type,
                        "drift_status": r.status.value,
                        "differences": [{"path": d.path, "expected": d.expected, "actual": d.actual, "type": d.kind}
                                        for d in r.differences],
                    } for r in i.resources],
                } for i in s.instances],
            },
            "parity": {"environments": list(self.environments), "checked": list(self.checked),
                       "built_code": dict(self.built_code)},
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }


def _redeploy(env: str) -> str:
    return f"re-deploy it from the template (replctl deploy --env {env}), or revert the change made outside it"


# --------------------------------------------------------------------------- StackSet drift


def judge_stackset(d: StackSetDrift, env_of: Mapping[str, str], home_region: str,
                   admin_account: str) -> tuple[list[Finding], list[str]]:
    """Findings for drifted instances/resources; notes when detection did not finish cleanly."""
    findings: list[Finding] = []
    notes: list[str] = []
    if not d.available:
        return findings, notes  # said once by the caller (d.note), not counted as incomplete
    if d.missing:
        findings.append(Finding("stack-set", "", admin_account, home_region, d.stack_set,
                                "the stack set does not exist", "create it and roll it out with replctl deploy"))
        return findings, notes
    if d.operation is not None and d.operation is not OperationStatus.SUCCEEDED:
        notes.append(f"drift detection operation {d.operation_id} ended {d.operation.value}: "
                     "some instances were not checked")
    elif d.detection in (DetectionStatus.FAILED, DetectionStatus.PARTIAL_SUCCESS, DetectionStatus.STOPPED):
        failed = d.counts.get("FailedStackInstancesCount")
        notes.append(f"drift detection {d.detection.value if d.detection else ''}"
                     + (f": {failed} instance(s) could not be checked" if failed else ""))
    for inst in d.instances:
        env = env_of.get(inst.account, "")
        if inst.drift is not DriftStatus.DRIFTED:
            continue
        drifted = [r for r in inst.resources if r.status.drifted]
        if not drifted:
            findings.append(Finding("stack-instance", env, inst.account, inst.region, d.stack_set,
                                    "the stack instance is DRIFTED (no resource details were returned)",
                                    f"open the stack in {inst.account} {inst.region} and run drift detection on it; "
                                    + _redeploy(env)))
        for r in drifted:
            if r.status.value == "DELETED":
                detail = "deleted outside CloudFormation"
            else:
                parts = [f"{p.path}: expected {p.expected!s}, actual {p.actual!s}" if p.kind == "NOT_EQUAL"
                         else f"{p.path}: {'added' if p.kind == 'ADD' else 'removed'} ({p.actual or p.expected})"
                         for p in r.differences]
                detail = "modified: " + ("; ".join(parts) if parts else "properties differ")
            resource = f"{r.logical_id} ({r.resource_type}" + (f" {r.physical_id})" if r.physical_id else ")")
            findings.append(Finding("stack-resource", env, inst.account, inst.region, resource, detail,
                                    _redeploy(env) + "; if the change is wanted, make it in cfn/replication.yaml"))
    return findings, notes


# --------------------------------------------------------------------------- parity


def wanted_targets(environment: str, parameters: Mapping[str, str], environments: Sequence[str]) -> tuple[str, ...]:
    """Downstream environments the template replicates to for this instance's parameters.

    The template's rule: dev → staging and prod, staging → prod, prod → nothing; each only when
    `ReplicateTo<Target>` is "true" (its default is "false").
    """
    if environment not in FLOW:
        return ()
    later = FLOW[FLOW.index(environment) + 1:]
    return tuple(t for t in later if t in environments
                 and parameters.get(f"ReplicateTo{t.capitalize()}", "false").lower() == "true")


def _where(t: ParityTarget) -> str:
    return f"{t.environment} ({t.account} {t.region})"


def judge_ssm(targets: Sequence[ParityTarget], names: Names) -> list[Finding]:
    readable = [t for t in targets if t.ssm_keys is not None]
    if len({t.environment for t in readable}) < 2:
        return []
    everywhere: dict[str, list[ParityTarget]] = {}
    for t in readable:
        for key in t.ssm_keys or ():
            everywhere.setdefault(key, []).append(t)
    findings = []
    for t in readable:
        for key in sorted(set(everywhere) - set(t.ssm_keys or ())):
            holders = sorted({h.environment for h in everywhere[key]}, key=_flow_index)
            path = f"{names.ssm_path(t.environment)}/{key}"
            findings.append(Finding(
                "ssm-key", t.environment, t.account, t.region, path,
                f"missing; {key} exists under {', '.join(names.ssm_path(h) for h in holders)}",
                f"create {path} in account {t.account} ({t.region}), or delete {key} from "
                f"{', '.join(holders)} if it is obsolete"))
    return findings


def _flow_index(env: str) -> int:
    return FLOW.index(env) if env in FLOW else len(FLOW)


_SCHEMA_PARTS = (
    ("keys", "key schema"), ("attributes", "attribute definitions"), ("global_indexes", "global secondary indexes"),
    ("local_indexes", "local secondary indexes"), ("stream", "stream"), ("billing", "billing mode"),
)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        if not value:
            return "none"
        return ", ".join(":".join(v) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


def judge_tables(targets: Sequence[ParityTarget], table: str) -> list[Finding]:
    findings = []
    reference: tuple[ParityTarget, TableSchema] | None = None
    for t in targets:
        if t.table_missing:
            findings.append(Finding("table-schema", t.environment, t.account, t.region, table,
                                    "the metadata table does not exist", _redeploy(t.environment)))
        elif t.table is not None and reference is None:
            reference = (t, t.table)
    if reference is None:
        return findings
    ref_t, ref = reference
    for t in targets:
        if t.table is None or t is ref_t:
            continue
        for attr, label in _SCHEMA_PARTS:
            mine, theirs = getattr(t.table, attr), getattr(ref, attr)
            if mine != theirs:
                findings.append(Finding(
                    "table-schema", t.environment, t.account, t.region, table,
                    f"{label} is {_show(mine)}; {_where(ref_t)} has {_show(theirs)}",
                    f"the template defines one schema for every environment: {_redeploy(t.environment)}"))
    return findings


def judge_code(targets: Sequence[ParityTarget], built: Mapping[str, str], names: Names) -> list[Finding]:
    findings = []
    for t in targets:
        if t.code is None:
            continue
        for short, deployed in sorted(t.code.items()):
            fn = names.function(short)
            if deployed is None:
                findings.append(Finding("function-code", t.environment, t.account, t.region, fn,
                                        "the function does not exist", _redeploy(t.environment)))
            elif short in built and deployed != built[short]:
                findings.append(Finding(
                    "function-code", t.environment, t.account, t.region, fn,
                    f"deployed code (CodeSha256 {deployed}) is not this checkout's build ({built[short]})",
                    f"deploy this checkout (replctl deploy --env {t.environment}), or check out the commit "
                    "that is deployed before comparing"))
    return findings


def judge_buckets(targets: Sequence[ParityTarget], names: Names, environments: Sequence[str]) -> list[Finding]:
    findings = []
    for t in targets:
        if t.bucket is None:
            continue  # not the region the bucket lives in
        if t.bucket_missing:
            findings.append(Finding("bucket-replication", t.environment, t.account, t.region, t.bucket,
                                    "the bucket does not exist", _redeploy(t.environment)))
            continue
        if t.rules is None or t.parameters is None:
            continue  # a note says why
        wanted = wanted_targets(t.environment, t.parameters, environments)
        enabled = [r for r in t.rules if r.enabled]
        for target in wanted:
            dest = names.primary_bucket(target)
            rule = next((r for r in enabled if r.destination_bucket == dest), None)
            if rule is None:
                findings.append(Finding(
                    "bucket-replication", t.environment, t.account, t.region, t.bucket,
                    f"no enabled replication rule towards {target} ({dest}), though "
                    f"ReplicateTo{target.capitalize()} is true for this instance",
                    _redeploy(t.environment)))
            elif not rule.metrics_enabled:
                findings.append(Finding(
                    "bucket-replication", t.environment, t.account, t.region, t.bucket,
                    f"rule {rule.rule_id} towards {target} has replication metrics disabled (status cannot see it)",
                    _redeploy(t.environment)))
        wanted_buckets = {names.primary_bucket(w) for w in wanted}
        for r in enabled:
            if r.destination_bucket not in wanted_buckets:
                why = ("replication flows downstream only (dev → staging → prod)"
                       if r.target is not None and _flow_index(r.target) <= _flow_index(t.environment)
                       else "the template does not replicate there for this instance's parameters")
                findings.append(Finding(
                    "bucket-replication", t.environment, t.account, t.region, t.bucket,
                    f"rule {r.rule_id} replicates to {r.destination_bucket}: {why}",
                    f"remove the rule, which the template did not create, then {_redeploy(t.environment)}"))
    return findings


def judge_parity(p: ParityFacts, names: Names) -> tuple[list[Finding], list[str], tuple[str, ...]]:
    """All parity findings, notes for the checks that could not run, and which checks ran.

    SSM key sets and table schemas are compared across environments, so they need two of them;
    with one environment selected only its code and bucket rules are checked.
    """
    targets = p.targets
    notes = [f"{_where(t)}: {prob.signal}: {prob.message}" for t in targets for prob in t.problems]
    across = len(p.environments) >= 2
    findings = ((judge_ssm(targets, names) + judge_tables(targets, names.table) if across else [])
                + judge_code(targets, p.built_code, names) + judge_buckets(targets, names, p.environments))
    checked = (("ssm-keys", "table-schema") if across else ()) + ("function-code", "bucket-replication")
    return findings, notes, checked


def judge_drift(stackset: StackSetDrift, parity: ParityFacts, names: Names, env_of: Mapping[str, str],
                home_region: str, admin_account: str) -> DriftReport:
    """The whole drift report: StackSet drift findings first, then parity, in a stable order."""
    s_findings, s_notes = judge_stackset(stackset, env_of, home_region, admin_account)
    p_findings, p_notes, p_checked = judge_parity(parity, names)
    checked = (("stack-set-drift",) if stackset.available else ()) + p_checked
    return DriftReport(stackset, tuple(s_findings + p_findings), tuple(s_notes + p_notes), checked,
                       parity.environments, parity.built_code)


def account_environments(envs: Iterable[Any]) -> dict[str, str]:
    """account -> environment name, for labelling StackSet results."""
    return {a: e.name for e in envs for a in e.account_ids}
