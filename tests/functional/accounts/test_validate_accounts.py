"""validate-accounts against four moto accounts: admin + dev/staging/prod.

moto grants every AssumeRole (see moto-notes §2), so "can be assumed" always passes here; what
these tests exercise is what replctl reads from IAM in each account and how it judges it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from replctl.cli import app
from tests.conftest import ADMIN, DEV, PROD, STAGING
from tests.unit.test_config import VALID

runner = CliRunner()

CFN_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


ASSUME_EXEC = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole",
     "Resource": "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole"}]}


def trust(account: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:role/AWSCloudFormationStackSetAdministrationRole"},
        "Action": "sts:AssumeRole"}]}


def iam_in(account: str) -> object:
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="setup")["Credentials"]
    return boto3.client("iam", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    path = tmp_path / "environments.yaml"
    path.write_text(VALID)
    with mock_aws():
        iam = boto3.client("iam")
        iam.create_role(RoleName="AWSCloudFormationStackSetAdministrationRole",
                        AssumeRolePolicyDocument=json.dumps(CFN_TRUST))
        iam.put_role_policy(RoleName="AWSCloudFormationStackSetAdministrationRole", PolicyName="assume",
                            PolicyDocument=json.dumps(ASSUME_EXEC))
        yield path


def make_exec_role(account: str, trusted: str) -> None:
    iam_in(account).create_role(RoleName="AWSCloudFormationStackSetExecutionRole",
                                AssumeRolePolicyDocument=json.dumps(trust(trusted)))


def invoke(path: Path, *extra: str):
    result = runner.invoke(app, ["--config", str(path), *extra, "validate-accounts"], env={"COLUMNS": "250"})
    assert "Traceback" not in result.output
    return result


def test_one_missing_one_trusting_the_wrong_account(estate: Path) -> None:
    make_exec_role(DEV, ADMIN)
    make_exec_role(PROD, "999999999999")  # staging has no execution role at all
    result = invoke(estate, "--output", "json")
    assert result.exit_code == 4
    report = json.loads(result.stdout)
    assert report["ok"] is False
    rows = {(c["scope"], c["check"]): c for c in report["checks"]}
    assert rows[(f"admin {ADMIN}", "caller is in the admin account")]["ok"] is True
    assert rows[(f"admin {ADMIN}", "administration role exists and trusts CloudFormation")]["ok"] is True
    assert rows[(f"admin {ADMIN}", "administration role may assume the execution role")]["ok"] is True
    assert rows[(f"dev {DEV}", "account can be read")]["detail"] == "through replctl/replctl-observer"
    assert rows[(f"dev {DEV}", "execution role exists")]["ok"] is True
    assert rows[(f"dev {DEV}", "execution role trusts only the admin account")]["ok"] is True
    assert rows[(f"dev {DEV}", "administration role can assume it")]["ok"] is True
    missing = rows[(f"staging {STAGING}", "execution role exists")]
    assert missing["ok"] is False and missing["detail"] == "no role AWSCloudFormationStackSetExecutionRole"
    assert missing["hint"] == f"deploy cfn/stackset-execution-role.yaml in account {STAGING} (AdminAccountId={ADMIN})"
    wrong = rows[(f"prod {PROD}", "execution role trusts the admin account")]
    assert wrong["ok"] is False and wrong["detail"] == "trusts 999999999999"
    assert "re-deploy cfn/stackset-execution-role.yaml" in wrong["hint"]
    failed = sorted(c["scope"] for c in report["checks"] if not c["ok"])
    assert failed == [f"prod {PROD}", f"staging {STAGING}"]
    assert "2 of" in result.stderr and "checks failed" in result.stderr


def test_table_output_shows_the_same_rows_with_hints(estate: Path) -> None:
    make_exec_role(DEV, ADMIN)
    make_exec_role(PROD, "999999999999")
    table = invoke(estate, "--no-color")
    as_json = json.loads(invoke(estate, "--output", "json").stdout)
    assert table.exit_code == 4
    flat = " ".join(table.stdout.split())
    for check in as_json["checks"]:
        assert check["check"].split()[0] in flat
    assert "fix: deploy cfn/stackset-execution-role.yaml in account" in flat
    assert flat.count("FAIL") == sum(1 for c in as_json["checks"] if not c["ok"])


def test_all_fine_exits_zero(estate: Path) -> None:
    for account in (DEV, STAGING, PROD):
        make_exec_role(account, ADMIN)
    # A replication-agent role left by an earlier rollout is "ours" (IAM path /replctl/).
    iam_in(DEV).create_role(RoleName="replctl-replication-agent", Path="/replctl/",
                            AssumeRolePolicyDocument=json.dumps(trust(STAGING)))
    result = invoke(estate)
    assert result.exit_code == 0, result.output
    assert "all" in result.stderr and "checks passed" in result.stderr


def test_replication_role_name_taken_by_someone_else(estate: Path) -> None:
    for account in (DEV, STAGING, PROD):
        make_exec_role(account, ADMIN)
    iam_in(PROD).create_role(RoleName="replctl-replication-agent", AssumeRolePolicyDocument=json.dumps(trust(PROD)))
    report = json.loads(invoke(estate, "--output", "json").stdout)
    bad = [c for c in report["checks"] if not c["ok"]]
    assert [(c["scope"], c["detail"]) for c in bad] == [
        (f"prod {PROD}", "replctl-replication-agent exists at path /, not ours")]
    assert bad[0]["hint"] == "choose another parameters.ReplicationRoleName, or remove that role"


def test_missing_administration_role(estate: Path) -> None:
    iam = boto3.client("iam")
    iam.delete_role_policy(RoleName="AWSCloudFormationStackSetAdministrationRole", PolicyName="assume")
    iam.delete_role(RoleName="AWSCloudFormationStackSetAdministrationRole")
    for account in (DEV, STAGING, PROD):
        make_exec_role(account, ADMIN)
    report = json.loads(invoke(estate, "--output", "json").stdout)
    bad = [c for c in report["checks"] if not c["ok"]]
    assert len(bad) == 1 and bad[0]["hint"] == "deploy cfn/stackset-administration-role.yaml in the admin account"


def test_administration_role_that_may_not_assume_the_execution_role(estate: Path) -> None:
    boto3.client("iam").delete_role_policy(RoleName="AWSCloudFormationStackSetAdministrationRole",
                                           PolicyName="assume")
    for account in (DEV, STAGING, PROD):
        make_exec_role(account, ADMIN)
    report = json.loads(invoke(estate, "--output", "json").stdout)
    bad = [c for c in report["checks"] if not c["ok"]]
    assert [c["check"] for c in bad] == ["administration role may assume the execution role"]
    assert bad[0]["hint"].startswith("re-deploy cfn/stackset-administration-role.yaml")


def test_only_one_environment(estate: Path) -> None:
    make_exec_role(DEV, ADMIN)
    result = runner.invoke(app, ["--config", str(estate), "-o", "json", "validate-accounts", "--env", "dev"])
    assert result.exit_code == 0, result.output
    scopes = {c["scope"] for c in json.loads(result.stdout)["checks"]}
    assert scopes == {"dev", f"dev {DEV}", f"admin {ADMIN}"}


def test_unknown_env_is_a_config_error(estate: Path) -> None:
    result = runner.invoke(app, ["--config", str(estate), "validate-accounts", "--env", "qa"])
    assert result.exit_code == 2
    assert "unknown environment 'qa' (valid: dev, staging, prod)" in result.stderr


def test_wrong_caller_account(estate: Path) -> None:
    for account in (DEV, STAGING, PROD):
        make_exec_role(account, ADMIN)
    text = estate.read_text().replace('account_id: "123456789012"', 'account_id: "444444444444"')
    estate.write_text(text)
    report = json.loads(invoke(estate, "--output", "json").stdout)
    row = next(c for c in report["checks"] if c["check"] == "caller is in the admin account")
    assert row["ok"] is False
    assert row["hint"] == "use credentials of account 444444444444, or set admin.role_arn to a role there"
