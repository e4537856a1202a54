"""The read-only CI role allows every call `plan`, `status` and `validate-accounts` make, and no
call of `deploy` that changes anything.

The real CLI runs against moto with its calls recorded (as in every functional test, where they are
proved against the full operator policy); here the same calls are proved once more against
cfn/operator-policy.yaml's OperatorReadPolicy, which the GitHub read role carries
(examples/github-actions: pull-request plans and scheduled status).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import callproof
from tests.callrecord import Recording
from tests.functional.test_permission_proof_calls import cli, deploy_estate, moto_estate  # noqa: F401
from tests.functional.status.test_status_moto import shared_models  # noqa: F401
from tests.iamproof import Policy


def read_only(estate: callproof.Estate) -> list[Policy]:
    r = callproof.rendered("operator-policy.yaml", estate.operator_parameters(), estate.admin)
    return [Policy.of("OperatorReadPolicy", r.properties("OperatorReadPolicy")["PolicyDocument"])]


def denied_to_the_read_role(calls: Recording, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with monkeypatch.context() as m:
        m.setattr(callproof, "operator_policies", read_only)
        return callproof.denials(callproof.prove(calls))


def test_plan_before_and_after_a_deploy_needs_only_reads(deploy_estate: Path, aws_calls: Recording,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(deploy_estate, "plan").exit_code == 0  # nothing exists yet
    first = Recording(cli=list(aws_calls.cli))
    assert cli(deploy_estate, "deploy", "--yes").exit_code == 0
    deployed = Recording(cli=aws_calls.cli[len(first.cli):])
    assert cli(deploy_estate, "plan", "--detailed-exitcode").exit_code == 0  # no changes
    again = Recording(cli=aws_calls.cli[len(first.cli) + len(deployed.cli):])

    assert {c.operation for c in first.cli + again.cli} >= {"DescribeStackSet", "ListStackInstances"}
    assert denied_to_the_read_role(first, monkeypatch) == []
    assert denied_to_the_read_role(again, monkeypatch) == []
    # ...while the deploy between them could not have run as the read role.
    denied = denied_to_the_read_role(deployed, monkeypatch)
    for action in ("cloudformation:CreateStackSet", "cloudformation:CreateStackInstances", "s3:PutObject",
                   "iam:PassRole"):
        assert any(f": {action} on " in d for d in denied), (action, denied)


def test_status_and_validate_accounts_need_only_reads(moto_estate, aws_calls: Recording,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = moto_estate
    assert cli(path, "status").exit_code in (0, 20, 21, 22)
    assert cli(path, "validate-accounts").exit_code in (0, 4)
    operations = {(c.service, c.operation) for c in aws_calls.cli}
    assert {("sts", "AssumeRole"), ("cloudformation", "ListStackInstances"), ("iam", "GetRole")} <= operations
    assert denied_to_the_read_role(aws_calls, monkeypatch) == []
