"""The offline permission proof, cross-checked by a maintained IAM simulator.

tests/iamproof.py is a hand-written evaluator: its wildcard matching is `fnmatch`, its rules are our
reading of the IAM User Guide. A second opinion comes from `@cloud-copilot/iam-simulate` (npm,
tests/tools/iam_simulate.mjs), which implements identity policies, boundaries, resource policies,
KMS key policy and trust policy behaviour, and validates actions, ARNs and context keys against its
own IAM data.

GIVEN every question the handler proof asks (tests/unit/cfn/test_permission_proof.py: every handler
permission of every resource, 24 environment combinations), WHEN each is put to the simulator too,
THEN both give the same decision, and the simulator keeps every context key the proof modelled (a
key it drops would mean the two decided different requests) — except the rows of DEVIATIONS
(tests/unit/cfn/differential.py), each with the AWS sentence that decides it. The call proof's
cross-check is tests/unit/cfn/test_differential_calls.py. The tests at the bottom show the
cross-check fails, with the request and both answers, where it should.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import lru_cache

import pytest

from tests import callproof, cfnkit
from tests.iamproof import Decision, Policy, Question, Request, answer
from tests.unit.cfn import simulate
from tests.unit.cfn import test_permission_proof as handler_proof
from tests.unit.cfn.differential import DEVIATIONS, compare



def decided(questions: Iterator[tuple[str, Question]]) -> list[tuple[Question, Decision]]:
    return [(q, answer(q)) for _, q in questions]


@lru_cache(maxsize=1)
def handler_pairs() -> tuple[tuple[Question, Decision], ...]:
    outcome = handler_proof.Outcome()
    replication, bootstrap = cfnkit.load("replication.yaml"), cfnkit.load("stackset-execution-role.yaml")
    return tuple(decided(handler_proof.questions(replication, bootstrap, outcome)))


# ----------------------------------------------------------------------------- the cross-check


def test_iam_simulate_agrees_with_every_handler_proof_decision() -> None:
    comparison = compare(handler_pairs())
    assert comparison.asked > 20_000 and comparison.distinct > 1_000
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
