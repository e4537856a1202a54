"""The offline permission proof, part 2: regression tests for the defects it was built to catch.

Every functional test's calls are proved when it ends (tests/functional/conftest.py). Here the real
CLI runs once more against moto — `status`, `drift`, two `deploy`s — and its recorded calls are
proved against a copy of the shipped templates with one fixed grant removed (or the fixed code put
back), to show the proof fails on exactly the call that grant (or fix) is for.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

import replctl.aws
from replctl.drift import fetch as drift_fetch
from replctl.cli import app
from replctl.commands import deploy as deploy_cmd
from tests import callproof, cfnkit
from tests.callrecord import Recording
from tests.functional.moto_stacksets import Recorder, recording_factory
from tests.functional.drift.test_parity_moto import write_functions
from tests.functional.status.test_status_moto import CONFIG as STATUS_CONFIG
from tests.functional.status.test_status_moto import Seed, seed, shared_models  # noqa: F401
from tests.unit.deploy.fake_stacksets import CONFIG as DEPLOY_CONFIG
from tests.unit.deploy.fake_stacksets import make_artifacts, write_estate

runner = CliRunner()


def cli(path: Path, *args: str) -> Any:
    result = runner.invoke(app, ["--config", str(path), "--no-color", *args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture()
def moto_estate(tmp_path: Path) -> Iterator[tuple[Path, dict[str, bytes]]]:
    """The status/drift estate of test_status_moto (seeded healthy), with function sources for drift."""
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    path = tmp_path / "environments.yaml"
    path.write_text(STATUS_CONFIG)
    code = write_functions(tmp_path)
    with mock_aws():
        seed({e: Seed(code=code) for e in ("dev", "staging", "prod")})
        yield path, code


def proved_with(recording: Recording, template: str, mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    """The denials of the recorded calls against the shipped templates with `mutate` applied to one."""
    changed = copy.deepcopy(cfnkit.load(template))
    mutate(changed)
    try:
        callproof.use_templates(**{template.removesuffix(".yaml").replace("-", "_"): changed})
        return callproof.denials(callproof.prove(recording))
    finally:
        callproof.use_templates()


def _statement(template: dict[str, Any], resource: str, sid: str) -> dict[str, Any]:
    props = template["Resources"][resource]["Properties"]
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])] or [props["PolicyDocument"]]
    return next(s for d in documents for s in d["Statement"] if s.get("Sid") == sid)


def test_status_and_drift_calls_are_allowed_for_the_observer(moto_estate, aws_calls: Recording) -> None:
    path, _ = moto_estate
    assert cli(path, "status").exit_code in (0, 20, 21, 22)
    assert cli(path, "drift").exit_code in (0, 30)
    operations = {(c.service, c.operation) for c in aws_calls.cli if c.role_arn}
    assert {("cloudwatch", "DescribeAlarms"), ("lambda", "GetFunctionConfiguration")} <= operations
    assert callproof.denials(callproof.prove(aws_calls)) == []


def test_defect_4_alarm_reads_scoped_to_alarm_arns_are_denied(moto_estate, aws_calls: Recording) -> None:
    """status and the gate ask for composite alarms, which needs DescribeAlarms on "*"."""
    path, _ = moto_estate
    cli(path, "status")
    alarms = [c for c in aws_calls.cli if c.operation == "DescribeAlarms"]
    assert alarms and all(c.params["AlarmTypes"] == ["CompositeAlarm", "MetricAlarm"] for c in alarms)

    def scope_to_alarm_arns(template: dict[str, Any]) -> None:
        _statement(template, "ObserverRole", "Alarms")["Resource"] = {
            "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:*:${AWS::AccountId}:alarm:${ResourcePrefix}-dev-*"}

    denied = proved_with(aws_calls, "stackset-execution-role.yaml", scope_to_alarm_arns)
    assert any("cloudwatch:DescribeAlarms on *: no statement of ObserverRole" in d for d in denied), denied


def test_defect_3_code_hashes_are_read_without_needing_tags(moto_estate, aws_calls: Recording,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """drift reads CodeSha256 with GetFunctionConfiguration; with GetFunction (the code before the fix)
    the observer would also need lambda:ListTags, which it rightly lacks."""
    path, _ = moto_estate
    cli(path, "drift")
    assert {c.operation for c in aws_calls.cli if c.service == "lambda"} == {"GetFunctionConfiguration"}
    denied = proved_with(aws_calls, "stackset-execution-role.yaml", lambda t: _statement(
        t, "ObserverRole", "Functions").update(Action="lambda:GetFunction"))
    assert any("lambda:GetFunctionConfiguration on arn:aws:lambda:" in d for d in denied), denied

    def read_code_with_get_function(lam: Any, names: Any) -> dict[str, str | None]:
        return {s: lam.get_function(FunctionName=names.function(s))["Configuration"].get("CodeSha256")
                for s in ("replication-monitor", "config-validator", "stream-processor")}

    monkeypatch.setattr(drift_fetch, "read_code", read_code_with_get_function)
    before = len(aws_calls.cli)
    cli(path, "drift")
    reverted = Recording(cli=aws_calls.cli[before:])
    assert any("lambda:ListTags on arn:aws:lambda:" in d for d in callproof.denials(callproof.prove(reverted)))
    del aws_calls.cli[before:]  # the reverted code's calls were for this demonstration only


@pytest.fixture()
def deploy_estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    recorder = Recorder()
    path = write_estate(tmp_path, config=DEPLOY_CONFIG)
    artifacts = make_artifacts(tmp_path)
    monkeypatch.setattr(deploy_cmd, "build_artifacts", lambda config, log: artifacts)
    with mock_aws():
        monkeypatch.setattr(replctl.aws, "SessionFactory", recording_factory(recorder))
        yield path


def test_defect_8_the_operator_passes_the_administration_role(deploy_estate: Path, aws_calls: Recording) -> None:
    """A first deploy and a template change (CreateStackSet, then UpdateStackSet) pass the
    administration role to CloudFormation: the operator policy must allow iam:PassRole on it."""
    assert cli(deploy_estate, "deploy", "--yes").exit_code == 0
    template = deploy_estate.parent / "t.yaml"
    template.write_text(template.read_text().replace("    Default: 90\n", "    Default: 120\n"))
    assert cli(deploy_estate, "deploy", "--yes").exit_code == 0
    operations = {c.operation for c in aws_calls.cli}
    assert {"CreateStackSet", "UpdateStackSet", "CreateStackInstances", "UpdateStackInstances", "PutObject"} <= operations
    assert callproof.denials(callproof.prove(aws_calls)) == []

    def without_pass_role(template: dict[str, Any]) -> None:
        document = template["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "PassAdministrationRole"]

    denied = proved_with(aws_calls, "operator-policy.yaml", without_pass_role)
    assert any("iam:PassRole on arn:aws:iam::123456789012:role/AWSCloudFormationStackSetAdministrationRole" in d
               for d in denied), denied
