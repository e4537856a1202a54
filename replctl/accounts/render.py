"""`validate-accounts` for people: one row per check, PASS or FAIL, and the fix for each failure."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from replctl.accounts.model import Check


def mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("–", style="dim")
    return Text("PASS", style="green") if ok else Text("FAIL", style="bold red")


def checks_table(checks: Iterable[Check], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("scope", "check", "result", "detail / fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        detail = Text(c.detail)
        if not c.ok and c.hint:
            detail.append(f"\nfix: {c.hint}", style="yellow")
        table.add_row(c.scope, c.check, mark(c.ok), detail)
    return table
