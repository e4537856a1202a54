"""Comparing the permission proof's decisions with iam-simulate's (the differential tests' core).

`compare` puts (question, the proof's decision) pairs to the simulator (tests/unit/cfn/simulate.py)
and returns one message per distinct disagreement — a different decision, a simulator error, or a
context key the simulator would not evaluate for that request — with the request and both answers.
`DEVIATIONS` lists where AWS's documentation sides with the proof against the simulator, each row
with its citation; a disagreement a row explains is not reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.iamproof import Decision, Question, resource_formats
from tests.unit.cfn import simulate


@dataclass(frozen=True)
class Deviation:
    """A case where the simulator and AWS's documentation part ways, or the proof deliberately
    models less than the simulator: which questions, what each side says, and the sentence that
    decides it."""

    applies: Callable[[Question], bool]
    ours: bool
    theirs: str
    citation: str


def _wildcard_request_on_typed_action(question: Question) -> bool:
    return question.request.resource == "*" and bool(resource_formats(question.request.action))


#: Kept as small as the facts allow; every row must still be needed (tests below).
DEVIATIONS: dict[str, Deviation] = {
    "a request on * for an action that has resource types": Deviation(
        _wildcard_request_on_typed_action, ours=False, theirs="Allowed",
        citation="iam-simulate answers a request whose resource has a wildcard for each resource pattern "
                 "its policies name and calls it Allowed if any one is (its README: \"one result for each "
                 "matching pattern\"; calculateOverallResult: \"'Allowed' if any result is allowed\"), so an "
                 "Allow scoped to some ARNs grants \"*\". AWS authorises such a request against \"*\" itself: "
                 "\"To use this operation and return information about composite alarms, you must be signed on "
                 "with the cloudwatch:DescribeAlarms permission that is scoped to *\" (CloudWatch API Reference, "
                 "DescribeAlarms). The proof follows AWS: only a statement whose Resource matches \"*\" applies."),
}


def _describe(question: Question, ours: Decision, theirs: simulate.Answer) -> str:
    r = question.request
    lines = [f"{r.why}: {r.action} on {r.resource} as {r.principal} (resource account "
             f"{simulate.resource_account(question)})",
             f"  context: {json.dumps(dict(r.full_context()), default=list, sort_keys=True)}",
             f"  the proof: {'Allowed' if ours.allowed else 'Denied'} — {ours.reason}",
             f"  iam-simulate: {theirs.result}"]
    if theirs.ignored_context_keys:
        lines.append(f"  iam-simulate ignored context keys: {', '.join(theirs.ignored_context_keys)}")
    if theirs.errors:
        lines.append(f"  iam-simulate errors: {json.dumps(theirs.errors)[:2000]}")
    if theirs.explain:
        lines.append(f"  iam-simulate explain: {json.dumps(theirs.explain)[:4000]}")
    return "\n".join(lines)


@dataclass
class Comparison:
    disagreements: list[str]
    deviations_used: set[str]
    asked: int
    distinct: int


def compare(pairs: Sequence[tuple[Question, Decision]]) -> Comparison:
    """Ask the simulator every question; one message per distinct disagreement."""
    batch = simulate.Batch()
    for question, decision in pairs:
        batch.add(question, decision.allowed)
    answers = simulate.run(batch)
    found: dict[int, str] = {}
    used: set[str] = set()
    for (question, ours), index in zip(pairs, batch.index_of, strict=True):
        theirs = answers[index]
        agree = theirs.result != "Error" and theirs.allowed == ours.allowed and not theirs.ignored_context_keys
        if agree:
            continue
        deviation = next((name for name, d in DEVIATIONS.items()
                          if d.applies(question) and d.ours == ours.allowed and d.theirs == theirs.result), None)
        if deviation is not None:
            used.add(deviation)
        elif index not in found:
            found[index] = _describe(question, ours, theirs)
    return Comparison(list(found.values()), used, len(pairs), len(batch.simulations))
