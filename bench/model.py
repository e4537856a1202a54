"""What each benchmark section hands back: tables, headline figures, budgets, notes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Budget:
    """A limit the bench enforces: the run exits non-zero when `ok` is False."""

    name: str
    limit: str
    actual: str
    ok: bool


@dataclass
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(tuple(str(c) for c in cells))


@dataclass
class Section:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    headline: list[tuple[str, str]] = field(default_factory=list)  # (figure, value) for the summary
    budgets: list[Budget] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # the section could not run; said plainly, the rest still runs

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.budgets)
