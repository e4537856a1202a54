"""The offline permission proof, cross-checked by a maintained IAM simulator.

tests/iamproof.py is a hand-written evaluator: its wildcard matching is `fnmatch`, its rules are our
reading of the IAM User Guide. A second opinion comes from `@cloud-copilot/iam-simulate` (npm,
tests/tools/iam_simulate.mjs), which implements identity policies, boundaries, resource policies,
KMS key policy and trust policy behaviour, and validates actions, ARNs and context keys against its
own IAM data.

GIVEN every question the handler proof asks (tests/unit/cfn/test_permission_proof.py: every handler
permission of every resource, 24 environment combinations) and every question the call proof asks
of the calls the CLI and the functions make in a representative recorded run (below), WHEN each is
put to the simulator too, THEN both give the same decision, and the simulator keeps every context
key the proof modelled (a key it drops would mean the two decided different requests) — except the
rows of DEVIATIONS, each with the AWS sentence that decides it.

The call proof runs on every functional test (tests/functional/conftest.py); running that whole tier
again here would cost minutes (6:40 on 2 busy cores), so the calls cross-checked here are those of
the functional tests named in RECORDED, run once more in a subprocess with a plugin that keeps the
proof's questions (tests/unit/cfn/proof_collector.py). The test fails on any disagreement and
prints the request and both answers; the tests at the bottom show it can fail.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from tests import callproof, cfnkit
from tests.iamproof import Decision, Policy, Question, Request, answer, resource_formats
from tests.unit.cfn import proof_collector, simulate
from tests.unit.cfn import test_permission_proof as handler_proof

REPO = cfnkit.REPO

pytestmark = pytest.mark.skipif(simulate.available() is not None, reason=str(simulate.available()))


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
             f"  context: {json.dumps(dict(r._full_context()), default=list, sort_keys=True)}",  # noqa: SLF001
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


def decided(questions: Iterator[tuple[str, Question]]) -> list[tuple[Question, Decision]]:
    return [(q, answer(q)) for _, q in questions]


@lru_cache(maxsize=1)
def handler_pairs() -> tuple[tuple[Question, Decision], ...]:
    outcome = handler_proof.Outcome()
    replication, bootstrap = cfnkit.load("replication.yaml"), cfnkit.load("stackset-execution-role.yaml")
    return tuple(decided(handler_proof.questions(replication, bootstrap, outcome)))


#: The functional tests whose recorded calls the call proof's cross-check asks about: chosen for
#: the most distinct questions per second (together about 85% of the ~580 distinct questions the
#: functional tier asks outside the sandbox, in ~15 s): every role — the operator (deploy, passing
#: the administration role, assuming the observer), the observer (status, drift,
#: validate-accounts), each function's role with its boundary, the replication-agent role with its
#: trust — and the conditions they carry (LeadingKeys, events:source, PutParameter's Overwrite). Not
#: the data-remover role: only the sandbox's destroy test (35 s) assumes it.
RECORDED = (
    "tests/functional/functions/test_faults.py::"
    "test_a_large_backfill_stops_before_the_deadline_and_the_next_runs_finish_it",
    "tests/functional/functions/test_faults.py::test_stream_fault_fails_each_record_once_and_the_retry_converges",
    "tests/functional/status/test_status_moto.py::test_all_healthy_exits_zero_and_reads_every_signal",
    "tests/functional/accounts/test_validate_accounts.py::test_wrong_caller_account",
    "tests/functional/accounts/test_validate_accounts.py::test_all_fine_exits_zero",
    "tests/functional/drift/test_drift_stubber.py::test_in_sync_exits_zero",
    "tests/functional/deploy/test_deploy_moto.py::"
    "test_an_account_added_later_may_read_the_artifacts_before_its_instance_exists",
    "tests/functional/test_permission_proof_calls.py::test_defect_8_the_operator_passes_the_administration_role",
    "tests/functional/functions/test_config_validator.py::test_stack_status_change_runs_the_validation",
    "tests/functional/functions/test_config_validator.py::"
    "test_replication_rule_towards_an_environment_that_is_switched_off_is_reported",
    "tests/functional/functions/test_config_validator.py::"
    "test_prod_compares_all_hierarchies_from_local_mirrors_without_leaving_its_account",
    "tests/functional/functions/test_replication_monitor.py::test_delete_propagates",
    "tests/functional/functions/test_replication_monitor.py::"
    "test_secure_string_mirror_is_removed_when_mirroring_is_switched_off",
    "tests/functional/functions/test_replication_monitor.py::"
    "test_schedule_backfills_parameters_that_existed_before_mirroring",
    "tests/functional/functions/test_replication_monitor.py::test_staging_change_reaches_prod_only",
    "tests/functional/functions/test_stream_processor.py::test_schema_removal_is_announced",
    "tests/functional/functions/test_stream_processor.py::test_item_from_upstream_is_not_sent_on_and_never_back",
    "tests/functional/functions/test_stream_processor.py::"
    "test_items_propagated_cross_account_carry_the_source_account_data",
)


def recorded_calls(out: Path) -> list[tuple[str, Question, Decision]]:
    """Run the RECORDED functional tests with the proof collector; (test, question, decision) of
    every call they made."""
    env = {**os.environ, proof_collector.ENV: str(out)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "-p", "tests.unit.cfn.proof_collector", *RECORDED],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"the recorded functional tests failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    return pickle.loads(out.read_bytes())


@pytest.fixture(scope="module")
def call_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Question, Decision], ...]:
    found = recorded_calls(tmp_path_factory.mktemp("proof") / "questions.pickle")
    assert {test.split("[", 1)[0] for test, *_ in found} == set(RECORDED), "a RECORDED test made no call"
    return tuple((q, d) for _, q, d in found)


# ----------------------------------------------------------------------------- the cross-check


def test_iam_simulate_agrees_with_every_handler_proof_decision() -> None:
    comparison = compare(handler_pairs())
    assert comparison.asked > 20_000 and comparison.distinct > 1_000
    assert comparison.disagreements == [], "\n\n".join(comparison.disagreements[:20])


@pytest.mark.slow
def test_iam_simulate_agrees_with_every_call_proof_decision(call_pairs: tuple[tuple[Question, Decision], ...]) -> None:
    comparison = compare(call_pairs)
    principals = {q.request.principal.rsplit("/", 1)[-1] for q, _ in call_pairs}
    assert {"replctl-operator", "replctl-observer", "replctl-agent"} <= principals
    assert any(q.trust is not None for q, _ in call_pairs) and any(q.boundary for q, _ in call_pairs)
    assert comparison.distinct > 400
    assert comparison.disagreements == [], "\n\n".join(comparison.disagreements[:20])


# ----------------------------------------------------------------------------- the cross-check can fail


def test_a_wrong_verdict_of_the_proof_is_reported_with_the_request_and_both_answers() -> None:
    pairs = list(handler_pairs()[:300])
    question, decision = pairs[7]
    pairs[7] = (question, Decision(not decision.allowed, "a deliberately wrong verdict"))
    comparison = compare(pairs)
    assert len(comparison.disagreements) == 1
    message = comparison.disagreements[0]
    assert f"{question.request.action} on {question.request.resource}" in message
    assert "a deliberately wrong verdict" in message and "iam-simulate: Allowed" in message


def test_an_evaluator_that_ignored_conditions_would_be_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 5's shape (the KMS post-create actions behind aws:ResourceTag, which a create request
    cannot carry yet): the proof denies them, and an evaluator bug that skipped conditions would allow
    them where iam-simulate does not."""
    from tests import iamproof

    mutate, expected = handler_proof.DEFECTS["5 KMS post-create actions wait for tag propagation"]
    bootstrap = copy.deepcopy(cfnkit.load("stackset-execution-role.yaml"))
    mutate(bootstrap)
    outcome = handler_proof.Outcome()
    questions = [q for _, q in handler_proof.questions(cfnkit.load("replication.yaml"), bootstrap, outcome)
                 if q.request.action == "kms:EnableKeyRotation" and q.request.why.endswith(" create")]
    assert questions and not any(answer(q).allowed for q in questions)
    assert compare([(q, answer(q)) for q in questions]).disagreements == []
    monkeypatch.setattr(iamproof, "conditions_hold", lambda condition, request: True)
    comparison = compare([(q, answer(q)) for q in questions])
    assert comparison.disagreements and all("iam-simulate: ImplicitlyDenied" in d for d in comparison.disagreements)


def test_a_context_key_the_simulator_drops_is_reported() -> None:
    """The S3 model before ABAC was taken into account: an update request on a bucket carried its tags
    as aws:ResourceTag, which S3 evaluates only with ABAC enabled; iam-simulate drops them."""
    bucket = "arn:aws:s3:::replctl-config-dev-111111111111"
    role = "arn:aws:iam::111111111111:role/AWSCloudFormationStackSetExecutionRole"
    request = Request("s3:PutBucketVersioning", bucket, role, {"aws:ResourceTag/replctl-managed": "true"}, "test")
    identity = (Policy("test", ({"Effect": "Allow", "Action": "s3:PutBucketVersioning", "Resource": bucket},)),)
    question = Question(request, identity)
    comparison = compare([(question, answer(question))])
    assert len(comparison.disagreements) == 1
    assert "ignored context keys: aws:ResourceTag/replctl-managed" in comparison.disagreements[0]


def test_the_wildcard_deviation_is_needed_defect_4_scoped_alarm_reads() -> None:
    """Defect 4's shape (the observer's DescribeAlarms scoped to alarm ARNs, which cannot read
    composite alarms): the proof denies the request on "*", iam-simulate allows it — the one row of
    DEVIATIONS, and without it this comparison would fail."""
    estate = callproof.Estate(admin=cfnkit.ADMIN, accounts=tuple(cfnkit.ACCOUNTS.items()))
    account = cfnkit.ACCOUNTS["dev"]
    bootstrap = copy.deepcopy(cfnkit.load("stackset-execution-role.yaml"))
    statement = next(s for p in bootstrap["Resources"]["ObserverRole"]["Properties"]["Policies"]
                     for s in p["PolicyDocument"]["Statement"] if s.get("Sid") == "Alarms")
    statement["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:*:${AWS::AccountId}:alarm:replctl-dev-*"}
    callproof.use_templates(stackset_execution_role=bootstrap)
    try:
        identity = tuple(callproof.observer_policies(estate, account))
    finally:
        callproof.use_templates()
    request = Request("cloudwatch:DescribeAlarms", "*", estate.observer_arn(account), {}, "status as the observer")
    question = Question(request, identity)
    ours = answer(question)
    assert not ours.allowed
    assert simulate.ask([(question, False)])[0].result == "Allowed"
    comparison = compare([(question, ours)])
    assert comparison.disagreements == [] and comparison.deviations_used == set(DEVIATIONS)


def test_every_deviation_cites_its_source() -> None:
    for name, deviation in DEVIATIONS.items():
        assert "(" in deviation.citation and len(deviation.citation) > 80, name
