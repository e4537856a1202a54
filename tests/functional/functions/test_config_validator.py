"""ConfigValidatorLambda against three moto accounts, called in-process.

GIVEN an estate built alike in dev, staging and prod (table, bucket, replication rules, the same
SSM keys in every hierarchy, and the mirrors dev and staging write into the accounts downstream),
WHEN one thing is changed, THEN the report names exactly that difference.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fnkit import ACCOUNTS, TABLE, Estate, bucket, estate, load_event, metric_values  # noqa: F401

import config_validator  # noqa: E402
from replshared.clients import AwsClients  # noqa: E402
from replshared.errors import UnhandledEvent  # noqa: E402

KEYS = ("db/url", "feature/dark-mode", "timeout")


def build_alike(e: Estate) -> None:
    e.wire_replication()
    for env in ACCOUNTS:
        for key in KEYS:
            e.client(env, "ssm").put_parameter(Name=f"/app/{env}/config/{key}", Value="x", Type="String")
    # mirrors: dev's hierarchy in staging and prod, staging's in prod
    for source, targets in (("dev", ("staging", "prod")), ("staging", ("prod",))):
        for target in targets:
            for key in KEYS:
                e.client(target, "ssm").put_parameter(Name=f"/app/{source}/config/{key}", Value="x", Type="String")


def kinds(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["kind"], d["environment"]) for d in result["differences"]]


def test_consistent_when_everything_matches(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    build_alike(estate)

    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev")

    assert result["status"] == "consistent", result["differences"]
    assert result["compared"] == [
        "table:dev", "table:staging", "table:prod",
        "ssm:dev (/app/dev/config, local)", "ssm:staging (/app/staging/config, remote)",
        "ssm:prod (/app/prod/config, remote)",
        f"bucket:dev ({bucket('dev')})", f"bucket:staging ({bucket('staging')})", f"bucket:prod ({bucket('prod')})",
    ]
    latest = estate.item("dev", "LOCAL#VALIDATION", "latest")
    assert latest["status"] == "consistent" and latest["differences"] == [] and latest["trigger"] == "schedule"
    history = estate.item("dev", "LOCAL#VALIDATION", latest["generated_at"])
    assert history is not None and history["status"] == "consistent"
    assert metric_values(capsys.readouterr().out, "ValidationFailures") == [({"Environment": "dev"}, 0.0)]


def test_reports_a_key_missing_in_prod(estate: Estate, capsys: pytest.CaptureFixture[str]) -> None:
    build_alike(estate)
    estate.client("prod", "ssm").delete_parameter(Name="/app/prod/config/timeout")

    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev")

    assert result["status"] == "inconsistent"
    assert result["differences"] == [{
        "kind": "ssm-key-missing", "environment": "prod", "detail": "timeout is set in dev, staging but not in prod"}]
    latest = estate.item("dev", "LOCAL#VALIDATION", "latest")
    assert latest["status"] == "inconsistent" and latest["differences"] == result["differences"]
    assert metric_values(capsys.readouterr().out, "ValidationFailures") == [({"Environment": "dev"}, 1.0)]


def test_reports_a_differing_index(estate: Estate) -> None:
    build_alike(estate)
    estate.client("staging", "dynamodb").delete_table(TableName=TABLE)
    estate.create_table("staging", gsi_projection="KEYS_ONLY")

    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev")

    assert kinds(result) == [("table-index", "staging")]
    assert "by-type" in result["differences"][0]["detail"] and "KEYS_ONLY" in result["differences"][0]["detail"]


def test_reports_versioning_turned_off(estate: Estate) -> None:
    build_alike(estate)
    estate.client("staging", "s3").put_bucket_versioning(
        Bucket=bucket("staging"), VersioningConfiguration={"Status": "Suspended"})

    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev")

    assert result["differences"] == [{
        "kind": "bucket-versioning", "environment": "staging",
        "detail": f"versioning is Suspended on {bucket('staging')} (must be Enabled)"}]


def test_reports_every_difference_at_once(estate: Estate) -> None:
    build_alike(estate)
    estate.client("prod", "ssm").delete_parameter(Name="/app/prod/config/timeout")
    estate.client("staging", "s3").put_bucket_versioning(
        Bucket=bucket("staging"), VersioningConfiguration={"Status": "Suspended"})
    estate.client("dev", "s3").delete_bucket_replication(Bucket=bucket("dev"))

    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev")

    assert kinds(result) == [
        ("bucket-replication", "dev"), ("bucket-replication", "dev"),
        ("bucket-versioning", "staging"), ("ssm-key-missing", "prod")]


def test_replication_rule_towards_an_environment_that_is_switched_off_is_reported(estate: Estate) -> None:
    build_alike(estate)

    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev", REPLICATE_TO_PROD="false")

    # prod is not compared at all, and dev's rule towards prod is unexpected
    assert ("bucket-replication", "dev") in kinds(result)
    assert all(d["environment"] != "prod" for d in result["differences"])
    assert not any(c.endswith("prod") or "prod " in c for c in result["compared"])


def test_prod_compares_all_hierarchies_from_local_mirrors_without_leaving_its_account(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_alike(estate)
    estate.client("prod", "ssm").delete_parameter(Name="/app/dev/config/db/url")  # a mirror missing in prod

    def no_remote(self: AwsClients, environment: str, service: str) -> Any:
        raise AssertionError(f"prod must not assume a role in {environment}")

    monkeypatch.setattr(AwsClients, "remote", no_remote)
    result = estate.invoke(config_validator, load_event("scheduled.json"), "prod")

    assert "ssm:dev (/app/dev/config, local mirror)" in result["compared"]
    assert "ssm:staging (/app/staging/config, local mirror)" in result["compared"]
    assert result["differences"] == [{
        "kind": "ssm-key-missing", "environment": "dev", "detail": "db/url is set in staging, prod but not in dev"}]


def test_missing_downstream_table_is_reported(estate: Estate) -> None:
    build_alike(estate)
    estate.client("prod", "dynamodb").delete_table(TableName=TABLE)

    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev")

    assert result["differences"] == [{"kind": "table-missing", "environment": "prod",
                                      "detail": f"table {TABLE} does not exist"}]


def test_unreachable_environment_is_a_difference(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    build_alike(estate)
    original = AwsClients.remote

    def remote(self: AwsClients, environment: str, service: str) -> Any:
        if environment == "prod":
            raise RuntimeError("AccessDenied: sts:AssumeRole")
        return original(self, environment, service)

    monkeypatch.setattr(AwsClients, "remote", remote)
    result = estate.invoke(config_validator, load_event("scheduled.json"), "dev")

    assert {d["kind"] for d in result["differences"] if d["environment"] == "prod"} == {"unreachable"}
    assert result["status"] == "inconsistent"


def test_stack_status_change_runs_the_validation(estate: Estate) -> None:
    build_alike(estate)

    result = estate.invoke(config_validator, load_event("cfn_stack_status_change.json"), "dev")

    assert result["status"] == "consistent"
    assert estate.item("dev", "LOCAL#VALIDATION", "latest")["trigger"] == "stack:UPDATE_COMPLETE"


def test_stack_still_changing_is_skipped(estate: Estate) -> None:
    result = estate.invoke(config_validator, load_event("cfn_stack_status_in_progress.json"), "dev")

    assert result == {"skipped": "UPDATE_IN_PROGRESS"}
    assert estate.item("dev", "LOCAL#VALIDATION", "latest") is None


@pytest.mark.parametrize("event", [
    load_event("ssm_parameter_created.json"),
    load_event("dynamodb_stream_batch.json"),
    {**load_event("cfn_stack_status_change.json"), "detail": {"stack-id": "x"}},
    42,
])
def test_unknown_events_are_unhandled(estate: Estate, capsys: pytest.CaptureFixture[str], event: Any) -> None:
    with pytest.raises(UnhandledEvent):
        estate.invoke(config_validator, event, "dev", AWS_LAMBDA_FUNCTION_NAME="replctl-config-validator")
    assert metric_values(capsys.readouterr().out, "UnhandledEvents") == [
        ({"Environment": "dev", "Function": "replctl-config-validator"}, 1.0)]
