"""The plan and the rollout's progress for people: tables and lines on the consoles of `Output`.

`render_plan` shows one `Plan` value the same way for `plan`, `deploy --dry-run` and `deploy`
(JSON is the plan's own `to_dict`). `ConsoleReporter` is the rollout's `Reporter` on stderr: a
line per step, operation and change of an instance's result, with a progress bar on a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from replctl.deploy.model import Plan, describe_step
from replctl.deploy.rollout import InstanceResult, OperationOutcome
from replctl.render import Output
from replctl.statuses import OperationStatus


def render_plan(output: Output, plan: Plan) -> None:
    """The plan for people: template diff, parameter changes, instances, artifacts, steps."""
    _header(output, plan)
    _template(output, plan)
    if plan.parameter_changes:
        output.table(_parameter_table(plan))
    output.table(_instance_table(plan))
    if plan.artifacts:
        output.table(_artifact_table(plan))
    if plan.changes:
        _steps(output, plan)
    uploads = sum(1 for a in plan.artifacts if a.action == "upload")
    summary = f"{uploads} artifact upload(s), {sum(len(w.steps) for w in plan.waves)} stack set operation(s)"
    output.line(f"Plan: {summary}" if plan.changes else "Plan: no changes")


def _header(output: Output, plan: Plan) -> None:
    state_word = "exists" if plan.exists else "will be created"
    output.line(Text(f"Stack set {plan.stack_set} ({plan.permission_model}, {plan.region}) {state_word}",
                     style="bold"))
    for note in plan.notes:
        output.line(Text(f"note: {note}", style="yellow"))


def _template(output: Output, plan: Plan) -> None:
    if not plan.exists:
        lines = plan.template_body.count("\n")
        how = "via S3 (TemplateURL)" if plan.template_url else "inline"
        output.line(f"Template: new, {plan.template_path} ({lines} lines, sent {how})")
    elif plan.template_diff:
        output.line(Text("Template diff:", style="bold"))
        for line in plan.template_diff.splitlines():
            style = ("green" if line.startswith("+") and not line.startswith("+++")
                     else "red" if line.startswith("-") and not line.startswith("---")
                     else "cyan" if line.startswith("@@") else None)
            output.line(Text(line, style=style) if style else Text(line))
    else:
        output.line("Template: unchanged")
    deployed, configured = plan.managed_execution
    if plan.exists and deployed is not None and deployed != configured:
        output.line(f"Managed execution: {deployed} → {configured}")


def _parameter_table(plan: Plan) -> Table:
    table = Table(title="parameter changes (before → after)")
    for col in ("scope", "parameter", "before", "after", "note"):
        table.add_column(col, overflow="fold")
    for c in plan.parameter_changes:
        table.add_row(c.scope, c.name, Text("—" if c.before is None else c.before, style="red"),
                      Text("—" if c.after is None else c.after, style="green"), c.note)
    return table


def _instance_table(plan: Plan) -> Table:
    table = Table(title="stack instances")
    for col in ("environment", "account", "region", "now", "action"):
        table.add_column(col)
    for r in plan.instances:
        style = None if r.action in ("none", "not selected") else "bold"
        now = r.status + (f" ({r.reason})" if r.reason else "")
        table.add_row(r.environment, r.account, r.region, now, Text(r.action, style=style) if style else r.action)
    return table


def _artifact_table(plan: Plan) -> Table:
    table = Table(title="artifacts")
    for col in ("region", "bucket", "key", "action"):
        table.add_column(col, overflow="fold")
    for a in plan.artifacts:
        table.add_row(a.region, a.bucket, a.key, a.action)
    return table


def _steps(output: Output, plan: Plan) -> None:
    output.line(Text("Steps, in order (each environment is verified and gated before the next):", style="bold"))
    n = 0
    for step in plan.preparation:
        n += 1
        output.line(f"  {n:>2}. {describe_step(step)}")
    for wave in plan.waves:
        label = wave.environment if wave.kind == "rollout" else f"{wave.environment} (wiring)"
        if not wave.steps:
            output.line(f"      {label}: no change (verified and gated)")
            continue
        for step in wave.steps:
            n += 1
            output.line(f"  {n:>2}. {describe_step(step)}")
        output.line(f"      then verify {label} and run its gate")


class ConsoleReporter:
    """Progress on stderr: one line per step, operation, and change of an instance's result.

    On a terminal a rich progress bar per operation counts finished instances; the lines are
    printed above it, so a log (or CI output) shows the same story without the bar.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self.seen: dict[str, dict[tuple[str, str], str]] = {}
        self.env: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.bar: Any = None
        self.task: Any = None

    def _print(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(message, markup=False, highlight=False)
        else:
            self.output.info(message)

    def step(self, message: str) -> None:
        self._print(message)

    def started(self, environment: str, action: str, operation_id: str, total: int) -> None:
        self.env[operation_id] = environment
        self.seen.setdefault(operation_id, {})
        count = f" on {total} instance{'s' if total != 1 else ''}" if total else ""
        self._print(f"{environment}: {action} operation {operation_id} started{count}; waiting")
        err = self.output.err
        if err is not None and err.is_terminal and not self.output.json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(f"{environment}: {action}", total=total or None)

    def progress(self, operation_id: str, status: OperationStatus, results: Sequence[InstanceResult]) -> None:
        env = self.env.get(operation_id, "")
        seen = self.seen.setdefault(operation_id, {})
        done = sum(1 for r in results if r.status.finished)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=max(len(results), 1),
                            description=f"{env}: {status.value.lower()}")
        if self.status.get(operation_id) != status.value:
            self.status[operation_id] = status.value
            self._print(f"{env}: operation {operation_id} {status.value} ({done}/{len(results)} instances done)")
        for r in results:
            if seen.get((r.account, r.region)) != r.status.value:
                seen[(r.account, r.region)] = r.status.value
                reason = f" — {r.reason}" if r.reason and not r.status.ok else ""
                self._print(f"  {env} {r.account} {r.region}: {r.status.value}{reason}")

    def close(self) -> None:
        """Stop the progress bar (also after a failure, a timeout or Ctrl-C)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = self.task = None

    def finished(self, outcome: OperationOutcome) -> None:
        self.close()
        self.output.info(f"{outcome.environment}: operation {outcome.operation_id} {outcome.status.value}")
