"""`replctl drift` parity checks against moto's three accounts.

moto has no drift API (moto-notes §1: DetectStackSetDrift raises NotImplementedError), so every
run here also exercises "the endpoint cannot detect drift": said once, and parity still runs.
The function ZIPs are built by replctl.package from a tiny `lambda/` tree next to the estate
file, and the same bytes are "deployed" with CreateFunction, so CodeSha256 matches unless a
test changes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from replctl.cli import app
from tests.conftest import DEV, PROD, STAGING
from tests.functional.status.test_status_moto import CONFIG, Seed, code_zip, seed, shared_models  # noqa: F401

runner = CliRunner()
SOURCES = {"replication_monitor": "replication-monitor", "config_validator": "config-validator",
           "stream_processor": "stream-processor"}


def write_functions(root: Path) -> dict[str, bytes]:
    """A minimal lambda/ tree and the ZIP bytes replctl.package builds from it, by short name."""
    from replctl.package import build_all

    for folder in SOURCES:
        d = root / "lambda" / folder
        d.mkdir(parents=True)
        (d / f"{folder}.py").write_text(f"def handler(event, context):\n    return '{folder}'\n")
    (root / "lambda" / "shared" / "replshared").mkdir(parents=True)
    (root / "lambda" / "shared" / "replshared" / "__init__.py").write_text("")
    return {SOURCES[a.function]: a.path.read_bytes() for a in build_all(root)}


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Path, dict[str, bytes]]]:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    path = tmp_path / "environments.yaml"
    path.write_text(CONFIG)
    code = write_functions(tmp_path)
    with mock_aws():
        yield path, code


def drift(path: Path, *args: str):
    result = runner.invoke(app, ["--config", str(path), "--no-color", "drift", *args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def test_in_sync_estate_exits_zero_and_says_once_that_drift_detection_is_unavailable(estate) -> None:
    path, code = estate
    seed({e: Seed(code=code) for e in ("dev", "staging", "prod")})
    result = drift(path, "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["in_sync"] is True and report["complete"] is True and report["findings"] == []
    assert report["stack_set"]["detection_available"] is False
    assert report["parity"]["checked"] == ["ssm-keys", "table-schema", "function-code", "bucket-replication"]
    assert report["parity"]["environments"] == ["dev", "staging", "prod"]
    flat = " ".join(result.stderr.split())
    assert flat.count("StackSet drift detection is not available") == 1
    assert "the endpoint has not implemented DetectStackSetDrift. Only the parity checks ran." in flat


def test_packaging_progress_shows_only_with_verbose(estate) -> None:
    # drift builds the ZIPs it compares code with; building is not what it is about.
    path, code = estate
    seed({e: Seed(code=code) for e in ("dev", "staging", "prod")})
    quiet = drift(path)
    assert quiet.exit_code == 0, quiet.output
    assert "in sync" in quiet.stderr
    assert "replication_monitor:" not in quiet.stderr and "stream_processor:" not in quiet.stderr
    verbose = runner.invoke(app, ["--config", str(path), "--no-color", "drift", "--verbose"], env={"COLUMNS": "200"})
    assert verbose.exit_code == 0, verbose.output
    assert "replication_monitor: unchanged, using cached replication_monitor-" in verbose.stderr


def test_missing_key_in_prod_and_a_changed_function_are_reported_with_where_and_what_to_do(estate) -> None:
    path, code = estate
    changed = {**code, "stream-processor": code_zip("# hot-fixed by hand\n")}
    seed({"dev": Seed(code=code), "staging": Seed(code=changed),
          "prod": Seed(code=code, ssm_keys=("db/url", "timeout"))})
    result = drift(path, "-o", "json")
    assert result.exit_code == 30
    findings = json.loads(result.stdout)["findings"]
    assert [(f["kind"], f["environment"]) for f in findings] == [("ssm-key", "prod"), ("function-code", "staging")]
    key, fn = findings
    assert key == {
        "kind": "ssm-key", "environment": "prod", "account": PROD, "region": "us-east-1",
        "resource": "/app/prod/config/feature/flag",
        "detail": "missing; feature/flag exists under /app/dev/config, /app/staging/config",
        "action": f"create /app/prod/config/feature/flag in account {PROD} (us-east-1), or delete feature/flag "
                  "from dev, staging if it is obsolete",
    }
    assert fn["account"] == STAGING and fn["resource"] == "replctl-stream-processor"
    assert fn["detail"].startswith("deployed code (CodeSha256 ") and "is not this checkout's build" in fn["detail"]
    assert fn["action"].startswith("deploy this checkout (replctl deploy --env staging)")

    table = drift(path)
    assert table.exit_code == 30
    flat = " ".join(table.stdout.split())
    assert "drift — 2 findings" in flat and "/app/prod/config/feature/flag" in flat
    assert "drift found: 2 finding(s) (exit 30)" in table.stderr


def test_bucket_rules_against_what_the_template_wants(estate) -> None:
    path, code = estate
    # dev lost its rule to prod; prod replicates back up to dev, which the template never does.
    seed({"dev": Seed(code=code, rules=("staging",)), "staging": Seed(code=code),
          "prod": Seed(code=code, rules=("dev",))})
    result = drift(path, "-o", "json")
    assert result.exit_code == 30
    findings = [f for f in json.loads(result.stdout)["findings"] if f["kind"] == "bucket-replication"]
    assert [(f["environment"], f["account"], f["resource"], f["detail"]) for f in findings] == [
        ("dev", DEV, f"replctl-config-dev-{DEV}",
         f"no enabled replication rule towards prod (replctl-config-prod-{PROD}), though ReplicateToProd is true "
         "for this instance"),
        ("prod", PROD, f"replctl-config-prod-{PROD}",
         f"rule to-dev replicates to replctl-config-dev-{DEV}: replication flows downstream only "
         "(dev → staging → prod)"),
    ]


def test_rules_follow_the_instance_parameters_not_the_config_alone(estate) -> None:
    path, code = estate
    # First rollout state: prod not yet wired in, and dev/staging have no rule to prod.
    seed({"dev": Seed(code=code, rules=("staging",)), "staging": Seed(code=code, rules=()),
          "prod": Seed(code=code)},
         overrides={"dev": {"ReplicateToProd": "false"}, "staging": {"ReplicateToProd": "false"}})
    result = drift(path, "-o", "json")
    assert result.exit_code == 0, result.stdout


def test_table_schema_difference(estate) -> None:
    path, code = estate
    seed({"dev": Seed(code=code), "staging": Seed(code=code), "prod": Seed(code=code, stream_view="NEW_IMAGE")})
    findings = json.loads(drift(path, "-o", "json").stdout)["findings"]
    assert findings == [{
        "kind": "table-schema", "environment": "prod", "account": PROD, "region": "us-east-1",
        "resource": "replctl-metadata",
        "detail": f"stream is NEW_IMAGE; dev ({DEV} us-east-1) has NEW_AND_OLD_IMAGES",
        "action": "the template defines one schema for every environment: re-deploy it from the template "
                  "(replctl deploy --env prod), or revert the change made outside it",
    }]


def test_one_environment_checks_its_code_and_rules_only(estate) -> None:
    path, code = estate
    seed({"dev": Seed(code=code), "staging": Seed(code=code), "prod": Seed(code=code, ssm_keys=())})
    result = drift(path, "--env", "prod", "-o", "json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["parity"]["checked"] == ["function-code", "bucket-replication"]
