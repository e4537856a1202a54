"""`drift` for people: the drifted resources (expected vs actual) and every finding with where to look."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from replctl.drift.judge import DriftReport


def drift_tables(report: DriftReport) -> list[Table]:
    """The drifted resources (expected vs actual) and every finding with where to look."""
    tables = []
    s = report.stack_set
    drifted = [(i, r) for i in s.instances for r in i.resources if r.status.drifted]
    if drifted:
        t = Table(title=f"StackSet drift — {s.stack_set} (operation {s.operation_id})")
        for col in ("account / region", "resource", "status", "property", "expected", "actual"):
            t.add_column(col, overflow="fold")
        for inst, r in drifted:
            where = f"{inst.account} {inst.region}"
            resource = f"{r.logical_id}\n{r.resource_type}" + (f"\n{r.physical_id}" if r.physical_id else "")
            if not r.differences:
                t.add_row(where, resource, r.status.value, "", "", "")
            for i, d in enumerate(r.differences):
                t.add_row(where if i == 0 else "", resource if i == 0 else "", r.status.value if i == 0 else "",
                          d.path, str(d.expected), str(d.actual))
        tables.append(t)
    if report.findings:
        t = Table(title=f"drift — {len(report.findings)} finding{'s' if len(report.findings) != 1 else ''}")
        for col in ("kind", "where", "resource", "what", "what to do"):
            t.add_column(col, overflow="fold")
        for f in report.findings:
            where = " ".join(x for x in (f.environment, f.account, f.region) if x)
            t.add_row(f.kind, where, f.resource, f.detail, Text(f.action, style="yellow"))
        tables.append(t)
    return tables
