"""`replctl status`: fetch, judge, render, and exit with the verdict's code (`--watch` refreshes in place)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

import typer

from replctl.commands import Command, EnvsOption, command_app, state
from replctl.errors import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from replctl.status.judge import HealthReport

app = command_app()

#: The sleep of the watch loop; tests replace it.
_sleep = time.sleep


@app.command("status", cls=Command, epilog=(
    "Examples:  replctl status  ·  replctl status --env prod -o json  ·  replctl status --watch --interval 10"))
def status_cmd(
    ctx: typer.Context,
    env: list[str] = EnvsOption,
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
    from replctl.status.render import status_tables

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
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    st.output.info(f"stopped; last verdict: {last.verdict.value} (exit {int(last.verdict.exit_code)})")
    raise typer.Exit(int(last.verdict.exit_code))
