"""The bench's arithmetic and rendering: percentiles, formatting, markdown tables, budgets."""

from __future__ import annotations

import pytest

from bench.model import Budget, Section, Table
from bench.report import budget_table, markdown_table, summary_table
from bench.stats import fmt_ratio, fmt_seconds, median, percentile, ratio


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 0) == 15
    assert percentile(values, 100) == 50
    assert percentile(values, 50) == 35
    assert percentile(values, 40) == pytest.approx(29.0)  # rank 1.6: 20 + 0.6 × 15
    assert percentile(values, 95) == pytest.approx(48.0)  # rank 3.8: 40 + 0.8 × 10
    assert percentile(list(reversed(values)), 95) == pytest.approx(48.0)  # order does not matter


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median([4, 1, 3, 2]) == 2.5
    assert median([7]) == 7


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_formatting() -> None:
    assert fmt_seconds(0.2241) == "224 ms"
    assert fmt_seconds(5.5) == "5.50 s"
    assert fmt_seconds(123.4) == "123 s"
    assert fmt_seconds(None) == "—"
    assert ratio(3, 2) == 1.5 and ratio(1, 0) is None
    assert fmt_ratio(1.894) == "1.89×" and fmt_ratio(None) == "—"


def test_markdown_table_escapes_pipes_and_keeps_columns() -> None:
    t = Table("calls", ("operation", "count"))
    t.add("a|b", 3)
    assert markdown_table(t).splitlines() == ["**calls**", "", "| operation | count |", "|---|---|", "| a\\|b | 3 |"]
    with pytest.raises(ValueError):
        t.add("only one cell")


def test_a_broken_budget_is_flagged_and_fails_the_section() -> None:
    s = Section("x", "1. x", budgets=[Budget("reads", "≤ 12", "13", False), Budget("writes", "0", "0", True)])
    assert not s.ok
    assert [r[-1] for r in budget_table([s]).rows] == ["**NO**", "yes"]


def test_summary_says_plainly_when_a_section_could_not_run() -> None:
    s = Section("startup", "4. Start-up", error="pip could not install awscli")
    assert summary_table([s]).rows == [("4. Start-up", "not measured: pip could not install awscli")]
