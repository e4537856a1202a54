"""The call proof, cross-checked by iam-simulate (the handler proof's is test_differential_proof.py).

GIVEN the calls the CLI and the functions make in the functional tests named in RECORDED, proved
as tests/functional/conftest.py proves them (tests/callproof.py), WHEN each question is also put to
`@cloud-copilot/iam-simulate`, THEN both decide the same and the simulator keeps every context key
(tests/unit/cfn/differential.py), except the cited DEVIATIONS.

The call proof runs on every functional test; running that whole tier again here would cost minutes
(6:40 on 2 busy cores), so the tests named in RECORDED run once more in a subprocess with a plugin
that keeps the proof's questions (tests/unit/cfn/proof_collector.py).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests import cfnkit
from tests.iamproof import Decision, Question
from tests.unit.cfn import proof_collector
from tests.unit.cfn.differential import compare


#: The functional tests whose recorded calls the call proof's cross-check asks about: chosen for
#: the most distinct questions per second (together 507 of the 579 distinct questions the functional
#: tier asks outside the sandbox, in about 20 s of a subprocess): every role — the operator (deploy, passing
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
                          cwd=cfnkit.REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"the recorded functional tests failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    return pickle.loads(out.read_bytes())


@pytest.fixture(scope="module")
def call_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Question, Decision], ...]:
    found = recorded_calls(tmp_path_factory.mktemp("proof") / "questions.pickle")
    assert {test.split("[", 1)[0] for test, *_ in found} == set(RECORDED), "a RECORDED test made no call"
    return tuple((q, d) for _, q, d in found)



@pytest.mark.slow
def test_iam_simulate_agrees_with_every_call_proof_decision(call_pairs: tuple[tuple[Question, Decision], ...]) -> None:
    comparison = compare(call_pairs)
    principals = {q.request.principal.rsplit("/", 1)[-1] for q, _ in call_pairs}
    assert {"replctl-operator", "replctl-observer", "replctl-agent"} <= principals
    assert any(q.trust is not None for q, _ in call_pairs) and any(q.boundary for q, _ in call_pairs)
    assert comparison.distinct > 400
    assert comparison.disagreements == [], "\n\n".join(comparison.disagreements[:20])
