"""Render the sections: a summary on the terminal, the whole story as BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.model import Section, Table
from bench.stats import fmt_seconds


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table, *, title: bool = True) -> str:
    lines = [f"**{table.title}**", ""] if title and table.title else []
    lines.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def summary_table(sections: Sequence[Section]) -> Table:
    table = Table("Summary", ("figure", "value"))
    for s in sections:
        if s.error:
            table.add(s.title, f"not measured: {s.error}")
        for figure, value in s.headline:
            table.add(figure, value)
    return table


def budget_table(sections: Sequence[Section]) -> Table:
    table = Table("Budgets (the bench exits non-zero when one is broken)", ("budget", "limit", "measured", "ok"))
    for s in sections:
        for b in s.budgets:
            table.add(b.name, b.limit, b.actual, "yes" if b.ok else "**NO**")
    return table


def print_terminal(sections: Sequence[Section], extra: Sequence[Table], total_seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)

    def show(table: Table) -> None:
        rt = RichTable(title=table.title, title_justify="left")
        for c in table.columns:
            rt.add_column(c, overflow="fold")
        for row in table.rows:
            rt.add_row(*(c.replace("**", "") for c in row))
        console.print(rt)

    show(summary_table(sections))
    for table in extra:
        show(table)
    show(budget_table(sections))
    for s in sections:
        for note in s.notes:
            if note.startswith(("could not", "pip could not")):
                console.print(f"note: {note}")
    console.print(f"bench took {fmt_seconds(total_seconds)}")


def write_markdown(path: Path, *, sections: Sequence[Section], machine: Sequence[tuple[str, str]], command: str,
                   date: str, total_seconds: float, extra: Sequence[tuple[str, list[Table], list[str]]],
                   changes: str) -> None:
    out: list[str] = [
        "# Benchmarks",
        "",
        f"Everything below was measured by `{command}`, which wrote this file; run it again to refresh the "
        "numbers (`make bench` runs `python -m bench`; `--compare <rev>` adds the before/after section). "
        "It covers what users feel: how many AWS calls a rollout makes, how "
        "long `status` takes across accounts, how soon replctl notices that a StackSet operation finished, "
        "how fast the CLI starts, the stream processor's throughput and packaging time. It is not a test "
        "suite: figures vary with the machine and its load, so each section compares alternatives measured "
        "in the same run, and the budgets are counts and ratios rather than absolute times.",
        "",
        "## Machine and run",
        "",
    ]
    run_table = Table("", ("", ""))
    run_table.add("command", f"`{command}`")
    run_table.add("date", date)
    for label, value in machine:
        run_table.add(label, value)
    run_table.add("bench wall time", fmt_seconds(total_seconds))
    out += [markdown_table(run_table, title=False), ""]
    out += ["## Summary", "", markdown_table(summary_table(sections), title=False), ""]
    out += ["## Budgets", "", "The bench exits non-zero when one of these is broken.", "",
            markdown_table(budget_table(sections), title=False), ""]
    for s in sorted(sections, key=lambda s: s.title):
        out += [f"## {s.title}", ""]
        if s.error:
            out += [f"**Not measured:** {s.error}", ""]
        for table in s.tables:
            out += [markdown_table(table), ""]
        for note in s.notes:
            out += [f"- {note}"]
        if s.notes:
            out.append("")
        out += [f"_Section wall time: {fmt_seconds(s.seconds)}._", ""]
    if changes.strip():
        out += [changes.strip(), ""]
    for title, tables, notes in extra:
        out += [f"## {title}", ""]
        for table in tables:
            out += [markdown_table(table), ""]
        out += [f"- {n}" for n in notes]
        if notes:
            out.append("")
    path.write_text("\n".join(out))
