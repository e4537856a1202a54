"""The one AWS factory: endpoint override, caching, retries, and clear errors instead of tracebacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from replctl.aws import AwsSettings, SessionFactory, is_mutating, translate
from replctl.cli import app, hoist_global_options
from replctl.errors import AwsAccessError, ExitCode
from tests.unit.test_config import VALID

runner = CliRunner()


def test_clients_are_cached_per_service_region_and_role() -> None:
    f = SessionFactory(AwsSettings(region="us-east-1"))
    assert f.client("s3") is f.client("s3")
    assert f.client("s3") is not f.client("s3", region="eu-west-1")


def test_endpoint_override_reaches_every_client() -> None:
    f = SessionFactory(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"))
    assert f.client("cloudformation").meta.endpoint_url == "http://127.0.0.1:9"


def test_aws_endpoint_url_from_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8")
    f = SessionFactory(AwsSettings(region="us-east-1"))
    assert f.client("sts").meta.endpoint_url == "http://127.0.0.1:8"


def test_adaptive_retries_are_configured() -> None:
    client = SessionFactory(AwsSettings(region="us-east-1")).client("cloudformation")
    assert client.meta.config.retries["mode"] == "adaptive"
    assert client.meta.config.retries["total_max_attempts"] >= 10 or client.meta.config.retries.get(
        "max_attempts", 0) >= 9


def test_missing_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    f = SessionFactory(AwsSettings(region="us-east-1"))
    with pytest.raises(AwsAccessError, match="no AWS credentials found") as info:
        f.caller_identity()
    assert "--sandbox" in (info.value.hint or "")
    assert info.value.exit_code == ExitCode.AWS_ACCESS


def test_missing_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(AwsAccessError, match="no AWS region is set"):
        SessionFactory(AwsSettings()).client("sts")


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(AwsAccessError, match="profile 'nope' is not configured"):
        SessionFactory(AwsSettings(profile="nope", region="us-east-1")).client("sts")


def test_a_role_that_cannot_be_assumed_names_the_role_and_the_fix() -> None:
    f = SessionFactory(AwsSettings(region="us-east-1"))
    sts = f.client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", service_error_code="AccessDenied",
                              service_message="User is not authorized to perform: sts:AssumeRole")
        with pytest.raises(AwsAccessError) as info:
            f.client("s3", account="111111111111", role_arn="arn:aws:iam::111111111111:role/x")
    assert "cannot assume arn:aws:iam::111111111111:role/x: AccessDenied" in info.value.message
    assert "validate-accounts" in (info.value.hint or "")


def test_assumed_credentials_refresh_before_they_expire() -> None:
    f = SessionFactory(AwsSettings(region="us-east-1"))
    sts = f.client("sts")
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with Stubber(sts) as stub:
        for key, expiry in (("ASIAFIRSTFIRSTFIRST1", soon), ("ASIASECONDSECONDSEC2", later)):
            stub.add_response("assume_role", {"Credentials": {
                "AccessKeyId": key, "SecretAccessKey": "s" * 40, "SessionToken": "t" * 20, "Expiration": expiry}})
        creds = f.session("111111111111", "arn:aws:iam::111111111111:role/x").get_credentials()
        # 30 s left is inside botocore's mandatory refresh window: the next use refreshes.
        assert creds.get_frozen_credentials().access_key == "ASIASECONDSECONDSEC2"
        stub.assert_no_pending_responses()


def test_static_keys_replace_the_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sandbox's fake keys win over whatever the environment holds.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMNT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "e" * 40)
    f = SessionFactory(AwsSettings(region="us-east-1", access_keys=("testing", "testing")))
    assert f.base_session().get_credentials().get_frozen_credentials().access_key == "testing"


def test_mutating_operations_are_recognised() -> None:
    assert is_mutating("CreateStackSet") and is_mutating("UpdateStackInstances") and is_mutating("PutObject")
    assert not is_mutating("DescribeStackSet") and not is_mutating("ListStackInstances")
    assert not is_mutating("AssumeRole") and not is_mutating("GetCallerIdentity")


def test_calls_are_observable_for_budgets() -> None:
    seen = []
    with mock_aws():
        f = SessionFactory(AwsSettings(region="us-east-1"))
        f.add_listener(seen.append)
        f.client("s3").list_buckets()
        f.client("s3").create_bucket(Bucket="replctl-budget-test")
    assert [(c.service, c.operation, c.mutating) for c in seen] == [
        ("s3", "ListBuckets", False), ("s3", "CreateBucket", True)]


def test_translate_leaves_unknown_client_errors_readable() -> None:
    from botocore.exceptions import ClientError

    err = ClientError({"Error": {"Code": "ValidationError", "Message": "bad thing"}}, "CreateStackSet")
    assert translate(err).message == "CreateStackSet failed: ValidationError: bad thing"


def test_global_options_may_follow_the_command() -> None:
    cmds = {"status", "validate-accounts"}
    assert hoist_global_options(["status", "--output", "json", "--env", "dev"], cmds) == [
        "--output", "json", "status", "--env", "dev"]
    assert hoist_global_options(["--debug", "status", "--output=json", "--no-color"], cmds) == [
        "--debug", "--output=json", "--no-color", "status"]
    assert hoist_global_options(["validate-accounts", "--", "--output"], cmds) == [
        "validate-accounts", "--", "--output"]


def test_cli_accepts_global_options_after_the_command(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    cfg = tmp_path / "environments.yaml"
    cfg.write_text(VALID)
    result = runner.invoke(app, ["validate-accounts", "--config-only", "--config", str(cfg), "--output", "json"])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("{")


def test_bad_output_value_is_a_usage_error() -> None:
    result = runner.invoke(app, ["--output", "yaml", "validate-accounts"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_missing_credentials_through_the_cli_are_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    cfg = tmp_path / "environments.yaml"
    cfg.write_text(VALID)
    result = runner.invoke(app, ["--config", str(cfg), "validate-accounts", "-o", "json"])
    assert "Traceback" not in result.output
    # The caller-identity check fails with the credentials message; everything else is reported too.
    assert result.exit_code == 4
    assert "no AWS credentials found" in result.stdout


def test_boto3_is_not_imported_by_help() -> None:
    import subprocess
    import sys

    code = ("import sys; from replctl.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['--help']); print('boto3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert boto3  # the test module itself may import it


def test_an_explicit_endpoint_overrides_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from replctl.cli import State
    from replctl.render import Output

    monkeypatch.setenv("REPLCTL_SANDBOX_DIR", str(tmp_path / "no-sandbox-here"))
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    cfg = tmp_path / "environments.yaml"
    cfg.write_text(VALID)
    st = State(config_path=cfg, profile=None, region=None, endpoint_url="http://127.0.0.1:4566",
               output=Output(), sandbox=True)
    factory = st.factory()  # no sandbox is running: the explicit endpoint is used, nothing is looked up
    assert factory.settings.endpoint_url == "http://127.0.0.1:4566"
    assert factory.client("sts").meta.endpoint_url == "http://127.0.0.1:4566"
