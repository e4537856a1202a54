"""`replctl status` and `replctl drift`: parse, fetch, judge, render, exit with the verdict's code.

The cores live in health_fetch/health_judge and drift_fetch/drift_judge and are imported inside
the commands, so `replctl --help` does not pay for boto3. This module only turns their values
into tables and JSON.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import typer

from replctl.cli import app, guarded, state

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import RenderableType
    from rich.table import Table

    from replctl.drift.judge import DriftReport
    from replctl.status.judge import HealthReport
    from replctl.status.model import Verdict

#: The sleep of the watch loop and of the drift wait; tests replace it.
_sleep = time.sleep

_STYLE = {"healthy": "green", "degraded": "yellow", "unknown": "magenta", "unhealthy": "bold red"}


def _verdict_text(verdict: Verdict) -> Any:
    from rich.text import Text

    return Text(verdict.value.upper(), style=_STYLE[verdict.value])


# --------------------------------------------------------------------------- status


def status_tables(report: HealthReport, caption: str | None = None) -> RenderableType:
    """The signal table and the verdict summary for people."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from rich import box

    # No vertical rules: six columns still fit an 80-column terminal.
    detail = Table(title=f"replctl status — {report.stack_set}", caption=caption, show_lines=False,
                   box=box.SIMPLE_HEAVY)
    # Identifiers and verdicts never wrap mid-word; subjects and values fold when space is short.
    detail.add_column("env", no_wrap=True, min_width=7)
    detail.add_column("account / region", overflow="fold", min_width=12)
    detail.add_column("signal", no_wrap=True, min_width=15)
    detail.add_column("subject", overflow="fold")
    detail.add_column("value", overflow="fold")
    detail.add_column("verdict", no_wrap=True, min_width=9)
    for env in report.environments:
        first_env = True
        for t in env.targets:
            first_target = True
            for s in t.signals:
                detail.add_row(
                    env.name if first_env else "",
                    f"{t.facts.account}\n{t.facts.region}" if first_target else "",
                    s.signal, s.subject, s.value, _verdict_text(s.verdict),
                )
                first_env = first_target = False
        if not env.targets:
            detail.add_row(env.name, "", "", "", "no account-region selected", _verdict_text(env.verdict))
        detail.add_section()

    summary = Table(title=Text.assemble("overall: ", _verdict_text(report.verdict)), show_lines=False)
    summary.add_column("environment")
    summary.add_column("verdict")
    summary.add_column("reasons", overflow="fold")
    for env in report.environments:
        reasons = "\n".join(f"• {r}" for r in env.reasons) or "all signals within bounds"
        summary.add_row(env.name, _verdict_text(env.verdict), reasons)
    return Group(detail, summary)


@app.command("status", epilog=(
    "Examples:  replctl status  ·  replctl status --env prod -o json  ·  replctl status --watch --interval 10"))
@guarded
def status_cmd(
    ctx: typer.Context,
    env: list[str] = typer.Option(None, "--env", "-e", help="Only this environment (repeatable)."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh in place until Ctrl-C."),
    interval: float = typer.Option(30.0, "--interval", min=1.0, help="Seconds between refreshes with --watch."),
) -> None:
    """Replication health per environment and region, one verdict each, and an exit code.

    Reads the stack instances, S3 replication metrics per rule, metadata lag and heartbeat, the
    last validation report, function errors, dead-letter queues and alarms. Exit 0 healthy,
    20 degraded, 21 unhealthy, 22 unknown (not enough data); overall is the worst environment.
    """
    from replctl.status.fetch import fetch_status
    from replctl.status.judge import judge

    st = state(ctx)
    config = st.config()
    envs = config.select(env)
    factory = st.factory()

    def once() -> HealthReport:
        return judge(fetch_status(config, factory, envs), config.thresholds)

    if not watch:
        report = once()
        if st.output.json:
            st.output.emit_json(report.to_dict())
        else:
            st.output.table(status_tables(report))  # type: ignore[arg-type]
            st.output.info(f"overall: {report.verdict.value} (exit {int(report.verdict.exit_code)})")
        raise typer.Exit(int(report.verdict.exit_code))

    last: HealthReport | None = None
    try:
        if st.output.json:
            while True:  # one JSON document per line and refresh
                last = once()
                sys.stdout.write(json.dumps(last.to_dict()) + "\n")
                sys.stdout.flush()
                _sleep(interval)
        else:
            from rich.live import Live

            with Live(console=st.output.out, auto_refresh=False, transient=False) as live:
                while True:
                    last = once()
                    caption = (f"refreshed {last.generated_at:%H:%M:%S} UTC, every {interval:g} s — "
                               "Ctrl-C to stop")
                    live.update(status_tables(last, caption), refresh=True)
                    _sleep(interval)
    except KeyboardInterrupt:
        pass
    if last is None:
        st.output.error("interrupted before the first status was read")
        from replctl.errors import ExitCode

        raise typer.Exit(int(ExitCode.INTERRUPTED))
    st.output.info(f"stopped; last verdict: {last.verdict.value} (exit {int(last.verdict.exit_code)})")
    raise typer.Exit(int(last.verdict.exit_code))


# --------------------------------------------------------------------------- drift


def drift_tables(report: DriftReport) -> list[Table]:
    """The drifted resources (expected vs actual) and every finding with where to look."""
    from rich.table import Table
    from rich.text import Text

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


@app.command("drift", epilog=(
    "Examples:  replctl drift  ·  replctl drift -o json   (exit 30 when anything drifted)"))
@guarded
def drift_cmd(
    ctx: typer.Context,
    env: list[str] = typer.Option(None, "--env", "-e", help="Only this environment (repeatable)."),
) -> None:
    """StackSet drift detection plus parity across environments; exit 30 when anything drifted.

    Detects StackSet drift (waits for the operation, then lists drifted resources with expected
    and actual values), then compares environments: SSM key sets per hierarchy, metadata table
    schemas, deployed function code against the ZIPs built from this checkout, and bucket
    replication rules against what the template wants. Where the endpoint cannot detect StackSet
    drift (the local sandbox), it says so once and runs the parity checks alone.
    """
    from replctl.drift.fetch import built_code, detect_stackset_drift, fetch_parity
    from replctl.drift.judge import account_environments, judge_drift
    from replctl.status.model import names_for

    st = state(ctx)
    config = st.config()
    envs = config.select(env)
    names = names_for(config)
    factory = st.factory()
    code = built_code(config.path.resolve().parent, log=st.output.info)
    stackset = detect_stackset_drift(config, factory, envs, sleep=_sleep, progress=st.output.info)
    if stackset.note:
        st.output.note(stackset.note)
    parity = fetch_parity(config, factory, envs, code)
    report = judge_drift(stackset, parity, names, account_environments(config.environments),
                         config.stackset.home_region, config.admin.account_id)
    if st.output.json:
        st.output.emit_json(report.to_dict())
    else:
        for table in drift_tables(report):
            st.output.table(table)
        for note in report.notes:
            st.output.note(f"not checked: {note}")
        if stackset.available and not stackset.missing:
            n = len(stackset.instances)
            st.output.info(f"stack set {stackset.stack_set}: drift {stackset.drift.value if stackset.drift else 'unknown'}"
                           f" across {n} instance{'s' if n != 1 else ''}")
        st.output.info(f"parity checked: {', '.join(report.checked)} in {', '.join(report.environments)}")
        if report.findings:
            st.output.info(f"drift found: {len(report.findings)} finding(s) (exit {int(report.exit_code)})")
        elif report.notes:
            st.output.info(f"nothing drifted among what could be checked, but the check is incomplete "
                           f"(exit {int(report.exit_code)})")
        else:
            st.output.info("in sync")
    raise typer.Exit(int(report.exit_code))
