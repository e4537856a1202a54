"""The sandbox driven as a user drives it: separate processes, real CLI, real handler code.

One sandbox for the module (start + first deploy take ~15 s); every step is `python -m replctl`
in a subprocess, as `make demo` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import DEV, PROD, REPO, STAGING

pytestmark = pytest.mark.slow


def run(*args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "replctl", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=300, check=False)
    assert proc.returncode in ok, f"replctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


def alive(pid: int) -> bool:
    """Running, that is: it exists and is not a zombie (an exited server whose parent, init,
    has not reaped it yet holds no port and runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("sandbox")
    env = {**os.environ, "REPLCTL_SANDBOX_DIR": str(state), "COLUMNS": "200"}
    started = run("-o", "json", "sandbox", "start", env=env)
    info = json.loads(started.stdout)
    assert info["started"] is True
    try:
        run("--sandbox", "deploy", "--yes", env=env)
        yield {"env": env, "endpoint": info["endpoint"], "pid": info["pid"], "state": state}
    finally:
        run("sandbox", "stop", env=env)
    assert not alive(info["pid"]), "the sandbox server is still running after stop"
    assert not (state / "server.json").exists()


def session(endpoint: str, account: str) -> boto3.Session:
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/test", RoleSessionName="test")["Credentials"]
    return boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                         aws_session_token=c["SessionToken"], region_name="us-east-1")


def names_under(endpoint: str, account: str, path: str) -> set[str]:
    ssm = session(endpoint, account).client("ssm", endpoint_url=endpoint)
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
    return {p["Name"] for page in pages for p in page["Parameters"]}


def test_start_is_idempotent(sandbox: dict[str, Any]) -> None:
    again = json.loads(run("-o", "json", "sandbox", "start", env=sandbox["env"]).stdout)
    assert again["started"] is False and again["pid"] == sandbox["pid"]
    status = json.loads(run("-o", "json", "sandbox", "status", env=sandbox["env"]).stdout)
    assert status["running"] is True and status["healthy"] is True


def test_status_lists_three_environments_with_current_instances(sandbox: dict[str, Any]) -> None:
    proc = run("--sandbox", "-o", "json", "status", env=sandbox["env"], ok=(0, 20, 21, 22))
    report = json.loads(proc.stdout)
    envs = {e["name"]: e for e in report["environments"]}
    assert list(envs) == ["dev", "staging", "prod"]
    for name, account in (("dev", DEV), ("staging", STAGING), ("prod", PROD)):
        (target,) = envs[name]["targets"]
        assert (target["account"], target["region"]) == (account, "us-east-1")
        instances = [s for s in target["signals"] if s["signal"] == "stack-instance"]
        assert [(s["value"], s["verdict"]) for s in instances] == [("CURRENT / SUCCEEDED", "healthy")]


def test_validate_accounts_passes_on_the_bootstrapped_sandbox(sandbox: dict[str, Any]) -> None:
    report = json.loads(run("--sandbox", "-o", "json", "validate-accounts", env=sandbox["env"]).stdout)
    assert report["ok"] is True


def test_redeploy_with_nothing_changed_is_a_no_op(sandbox: dict[str, Any]) -> None:
    proc = run("--sandbox", "plan", "--detailed-exitcode", env=sandbox["env"])
    assert "no changes" in (proc.stdout + proc.stderr).lower()


def test_a_dev_change_reaches_staging_and_prod_and_a_prod_change_reaches_nobody(sandbox: dict[str, Any]) -> None:
    ep, env = sandbox["endpoint"], sandbox["env"]
    dev_name, prod_name = "/app/dev/config/e2e/limit", "/app/prod/config/e2e/secret-sauce"
    session(ep, DEV).client("ssm", endpoint_url=ep).put_parameter(Name=dev_name, Value="7", Type="String")
    session(ep, PROD).client("ssm", endpoint_url=ep).put_parameter(Name=prod_name, Value="p", Type="String")
    run("--sandbox", "sandbox", "invoke", "replication-monitor", "--env", "dev", "--kind", "ssm-change",
        "--name", dev_name, env=env)
    run("--sandbox", "sandbox", "invoke", "replication-monitor", "--env", "prod", "--kind", "ssm-change",
        "--name", prod_name, env=env)
    for account in (STAGING, PROD):
        ssm = session(ep, account).client("ssm", endpoint_url=ep)
        assert ssm.get_parameter(Name=dev_name)["Parameter"]["Value"] == "7"
    for account in (DEV, STAGING):
        assert prod_name not in names_under(ep, account, "/app/prod/config")


def test_metadata_written_in_dev_flows_down_through_the_stream_processor(sandbox: dict[str, Any]) -> None:
    ep, env = sandbox["endpoint"], sandbox["env"]
    item = {"pk": {"S": "CONFIG#e2e"}, "sk": {"S": "v"}, "origin": {"S": "dev"}, "version": {"N": "3"},
            "payload": {"S": "hello"}}
    session(ep, DEV).client("dynamodb", endpoint_url=ep).put_item(TableName="replctl-metadata", Item=item)
    prod_item = {**item, "pk": {"S": "CONFIG#prod-only"}, "origin": {"S": "prod"}}
    session(ep, PROD).client("dynamodb", endpoint_url=ep).put_item(TableName="replctl-metadata", Item=prod_item)
    out = json.loads(run("--sandbox", "-o", "json", "sandbox", "invoke", "stream-processor", "--env", "dev",
                         env=env).stdout)
    assert out["response"] == {"batchItemFailures": []}
    for account in (STAGING, PROD):
        got = session(ep, account).client("dynamodb", endpoint_url=ep).get_item(
            TableName="replctl-metadata", Key={"pk": item["pk"], "sk": item["sk"]}).get("Item")
        assert got is not None and got["payload"]["S"] == "hello" and got["origin"]["S"] == "dev"
    for account in (DEV, STAGING):
        assert "Item" not in session(ep, account).client("dynamodb", endpoint_url=ep).get_item(
            TableName="replctl-metadata", Key={"pk": prod_item["pk"], "sk": prod_item["sk"]})


def test_drift_says_once_that_stackset_drift_is_not_available_and_runs_parity(sandbox: dict[str, Any]) -> None:
    proc = run("--sandbox", "drift", env=sandbox["env"], ok=(0, 30))
    assert proc.stderr.count("drift detection is not available") == 1
    assert "parity checked" in proc.stderr


def test_commands_without_a_running_sandbox_say_how_to_start_it(tmp_path: Path) -> None:
    env = {**os.environ, "REPLCTL_SANDBOX_DIR": str(tmp_path)}
    proc = run("--sandbox", "status", env=env, ok=(40,))
    assert "the sandbox is not running" in proc.stderr and "replctl sandbox start" in proc.stderr
