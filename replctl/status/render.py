"""`status` for people: the signal table and the verdict summary (JSON is the report's own `to_dict`)."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from replctl.status.judge import HealthReport
from replctl.status.model import Verdict

_STYLE = {"healthy": "green", "degraded": "yellow", "unknown": "magenta", "unhealthy": "bold red"}


def verdict_text(verdict: Verdict) -> Text:
    return Text(verdict.value.upper(), style=_STYLE[verdict.value])


def status_tables(report: HealthReport, caption: str | None = None) -> RenderableType:
    """The signal table and the verdict summary for people."""
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
                    s.signal, s.subject, s.value, verdict_text(s.verdict),
                )
                first_env = first_target = False
        if not env.targets:
            detail.add_row(env.name, "", "", "", "no account-region selected", verdict_text(env.verdict))
        detail.add_section()

    summary = Table(title=Text.assemble("overall: ", verdict_text(report.verdict)), show_lines=False)
    summary.add_column("environment")
    summary.add_column("verdict")
    summary.add_column("reasons", overflow="fold")
    for env in report.environments:
        reasons = "\n".join(f"• {r}" for r in env.reasons) or "all signals within bounds"
        summary.add_row(env.name, verdict_text(env.verdict), reasons)
    return Group(detail, summary)
