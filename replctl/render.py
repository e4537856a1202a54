"""Where every command prints: rich tables for people, JSON for scripts, messages on stderr.

`Output` owns the two consoles and the chosen format; each capability's `render` module builds
its tables from plain values and hands them here. JSON goes to stdout and nothing else does when
`--output json` is chosen, so `replctl ... --output json | jq` works. Detail that only some runs
want (packaging progress while `drift` builds the ZIPs it compares) is printed with `--verbose`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass
class Output:
    """Where and how to print: the two consoles and the chosen format."""

    fmt: str = "table"
    color: bool = True
    out: Console | None = None
    err: Console | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        no_color = not self.color
        if self.out is None:
            self.out = Console(no_color=no_color, highlight=False, soft_wrap=False)
        if self.err is None:
            self.err = Console(stderr=True, no_color=no_color, highlight=False)

    @property
    def json(self) -> bool:
        return self.fmt == "json"

    def emit_json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=_default) + "\n")
        sys.stdout.flush()

    def info(self, message: str) -> None:
        """Progress and notes: stderr, so stdout stays clean for tables and JSON."""
        assert self.err is not None
        self.err.print(message, markup=False, highlight=False)

    def detail(self, message: str) -> None:
        """Progress that is not what the command is about: stderr, and only with --verbose."""
        if self.verbose:
            self.info(message)

    def note(self, message: str) -> None:
        assert self.err is not None
        self.err.print(Text(message, style="yellow"))

    def error(self, message: str) -> None:
        assert self.err is not None
        self.err.print(Text(f"error: {message}", style="bold red"))

    def table(self, table: Table) -> None:
        assert self.out is not None
        self.out.print(table)

    def line(self, text: str | Text = "") -> None:
        assert self.out is not None
        self.out.print(text, markup=False, highlight=False) if isinstance(text, str) else self.out.print(text)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
