"""The teardown plan and its result for people, rendered as `plan` renders a deploy.

The stack set, every instance and what happens to it, every step in order, and what is retained.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from replctl.destroy.model import Retained, TeardownPlan, describe
from replctl.render import Output

TITLES = {"unwire": "stop replicating to the removed environments", "delete": "delete the stack instances",
          "stack set": "delete the stack set", "data": "remove the data (--delete-data)"}


def render_plan(output: Output, plan: TeardownPlan) -> None:
    """The teardown for people: instances, steps in order, and the data that stays."""
    state = "exists" if plan.exists else "does not exist"
    what = "the whole estate" if plan.whole_estate else ", ".join(plan.environments)
    output.line(Text(f"Destroy {what}: stack set {plan.stack_set} ({plan.region}) {state}", style="bold"))
    for note in plan.notes:
        output.line(Text(f"note: {note}", style="yellow"))
    for op in plan.running_operations:
        output.line(Text(f"note: operation {op} is still running; destroy waits for it first", style="yellow"))
    if plan.instances:
        output.table(_instance_table(plan))
    if plan.changes:
        output.line(Text("Steps, in order (each phase is waited on and checked before the next):", style="bold"))
        n = 0
        for phase in plan.phases:
            label = f"{phase.environment}: " if phase.environment else ""
            output.line(f"      {label}{TITLES[phase.kind]}")
            for step in phase.steps:
                n += 1
                output.line(f"  {n:>2}. {describe(step)}")
    if plan.retained:
        output.table(retained_table(plan.retained, "retained (DeletionPolicy Retain; kept unless --delete-data)"))
    count = sum(len(p.steps) for p in plan.phases)
    output.line(f"Plan: {count} step(s)" if plan.changes else "Plan: nothing to destroy")


def _instance_table(plan: TeardownPlan) -> Table:
    table = Table(title="stack instances")
    for col in ("environment", "account", "region", "now", "action"):
        table.add_column(col)
    for r in plan.instances:
        style = "bold" if r.action in ("delete", "unwire") else None
        now = r.status + (f" ({r.reason})" if r.reason else "")
        table.add_row(r.environment, r.account, r.region, now, Text(r.action, style=style) if style else r.action)
    return table


def retained_table(rows: tuple[Retained, ...], title: str) -> Table:
    table = Table(title=title)
    for col in ("environment", "account", "region", "kind", "name", "to remove it"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.environment, r.account, r.region, r.kind, r.name, r.remove)
    return table
