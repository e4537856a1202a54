"""`make demo`: the main job end to end on the sandbox, printed as the commands a user would type.

Starts the sandbox, validates the accounts, deploys dev → staging → prod, changes a setting and
an artifact in dev (as an application in dev would), runs the functions so the change reaches
staging and prod, then shows `status` and `drift` and stops the sandbox — whatever happens,
nothing is left running. Each step is the real CLI in a subprocess, so what is printed is what
a user sees.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETTING = "/app/{env}/config/checkout/timeout-ms"
ENVIRONMENTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
ARTIFACT_KEY = "config/app-settings.json"


def _banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def replctl(*args: str, ok_codes: tuple[int, ...] = (0,), capture: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "replctl", *args]
    print(f"$ replctl {shlex.join(args)}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=capture, env={**os.environ, "COLUMNS": os.environ.get("COLUMNS", "150")},
                          check=False)
    if capture:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    if proc.returncode not in ok_codes:
        raise SystemExit(f"demo: `replctl {shlex.join(args)}` exited {proc.returncode}")
    return proc


def _session(endpoint: str, account: str) -> Any:
    import boto3

    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/app-deployer",
                            RoleSessionName="demo")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name="us-east-1")


def seed_settings(endpoint: str) -> None:
    """Each environment's application team owns the same setting in its own hierarchy."""
    for env, account in ENVIRONMENTS.items():
        ssm = _session(endpoint, account).client("ssm", endpoint_url=endpoint)
        ssm.put_parameter(Name=SETTING.format(env=env), Value="2000", Type="String", Overwrite=True)
        print(f"  ({env}) ssm put-parameter {SETTING.format(env=env)} = 2000")


def change_dev(endpoint: str) -> dict[str, Any]:
    """Change a setting and an artifact in dev, as an application team in dev would."""
    session = _session(endpoint, ENVIRONMENTS["dev"])
    ssm = session.client("ssm", endpoint_url=endpoint)
    s3 = session.client("s3", endpoint_url=endpoint)
    name = SETTING.format(env="dev")
    value = "1500"
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    print(f"  (dev) ssm put-parameter {name} = {value}")
    bucket = f"replctl-config-dev-{ENVIRONMENTS['dev']}"
    body = json.dumps({"checkout": {"timeout_ms": int(value)}, "release": time.strftime("%Y%m%d%H%M%S")}).encode()
    s3.put_object(Bucket=bucket, Key=ARTIFACT_KEY, Body=body)
    print(f"  (dev) s3 put-object s3://{bucket}/{ARTIFACT_KEY} ({len(body)} bytes)")
    return {"setting": name, "value": value, "artifact": f"s3://{bucket}/{ARTIFACT_KEY}"}


def show_downstream(endpoint: str) -> None:
    """Read the change back where it landed: the mirrors and the replicas in staging and prod."""
    name = SETTING.format(env="dev")
    for env in ("staging", "prod"):
        session = _session(endpoint, ENVIRONMENTS[env])
        value = session.client("ssm", endpoint_url=endpoint).get_parameter(Name=name)["Parameter"]["Value"]
        body = session.client("s3", endpoint_url=endpoint).get_object(
            Bucket=f"replctl-config-{env}-{ENVIRONMENTS[env]}", Key=ARTIFACT_KEY)["Body"].read()
        print(f"  ({env}) {name} = {value}; s3 {ARTIFACT_KEY} = {body.decode()}")


def main() -> int:
    os.environ.setdefault("REPLCTL_SANDBOX_DIR", str(ROOT / ".replctl" / "demo"))
    started = time.monotonic()
    try:
        _banner("1. start the sandbox (moto's server on 127.0.0.1; admin + dev, staging, prod accounts)")
        replctl("sandbox", "start")
        from replctl.sandbox.state import running

        info = running()
        assert info is not None
        _banner("2. are the accounts ready?")
        replctl("--sandbox", "validate-accounts")
        _banner("3. plan, then deploy dev → staging → prod")
        replctl("--sandbox", "plan")
        replctl("--sandbox", "deploy", "--yes")
        _banner("4. each environment's settings exist; then a setting and an artifact change in dev")
        seed_settings(info.endpoint)
        change_dev(info.endpoint)
        _banner("5. the functions carry the change downstream (EventBridge and the stream, played locally)")
        replctl("--sandbox", "sandbox", "invoke", "replication-monitor", "--env", "dev", "--kind", "ssm-change",
                "--name", SETTING.format(env="dev"))
        for env in ("dev", "staging", "prod"):
            replctl("--sandbox", "sandbox", "invoke", "replication-monitor", "--env", env)
        for env in ("dev", "staging", "prod"):
            replctl("--sandbox", "sandbox", "invoke", "config-validator", "--env", env)
        show_downstream(info.endpoint)
        _banner("6. replication health")
        replctl("--sandbox", "status", ok_codes=(0, 20, 21, 22))
        _banner("7. drift and parity")
        replctl("--sandbox", "drift", ok_codes=(0, 30))
    finally:
        _banner("8. stop the sandbox")
        replctl("sandbox", "stop")
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
