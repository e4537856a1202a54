"""`make demo`: the main job end to end on the sandbox, printed as the commands a user would type.

Starts the sandbox, validates the accounts, deploys dev → staging → prod, gives each environment
its settings and dev a schema record, then makes three kinds of change in dev — a setting
changed, the schema changed, a setting deleted — and one in prod. The functions carry them (the
sandbox plays what AWS would: EventBridge delivering the Parameter Store changes, the table's
stream feeding the stream processor, S3 replication), and the demo reads back where each change
landed: the three dev changes in staging and prod, the prod change nowhere else. Then the
schedules run, `status` and `drift` report, and the sandbox stops — whatever happens, nothing is
left running. replctl steps are the real CLI in a subprocess, so what is printed is what a user
sees; what an application team would do with the AWS CLI is printed as that command and made
with boto3.
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
ENVIRONMENTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
TIMEOUT = "/app/{env}/config/checkout/timeout-ms"
LEGACY = "/app/dev/config/checkout/legacy-flow"
TABLE = "replctl-metadata"
ARTIFACT_KEY = "config/app-settings.json"
ABSENT = "(absent)"


def _banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def replctl(*args: str, ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    print(f"$ replctl {shlex.join(args)}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "replctl", *args], cwd=ROOT, text=True, check=False,
                          env={**os.environ, "COLUMNS": os.environ.get("COLUMNS", "150")})
    if proc.returncode not in ok_codes:
        raise SystemExit(f"demo: `replctl {shlex.join(args)}` exited {proc.returncode}")
    return proc


class Estate:
    """The application teams' view: AWS calls in each environment's account, printed as `aws` commands."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint
        sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        self.sessions = {}
        for env, account in ENVIRONMENTS.items():
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/app-deployer", RoleSessionName="demo")
            self.sessions[env] = boto3.Session(
                aws_access_key_id=c["Credentials"]["AccessKeyId"], region_name="us-east-1",
                aws_secret_access_key=c["Credentials"]["SecretAccessKey"],
                aws_session_token=c["Credentials"]["SessionToken"])

    def client(self, env: str, service: str) -> Any:
        return self.sessions[env].client(service, endpoint_url=self.endpoint)

    def aws(self, env: str, command: str) -> None:
        print(f"$ aws {command}    # {env} ({ENVIRONMENTS[env]})", flush=True)

    def put_setting(self, env: str, name: str, value: str) -> None:
        self.aws(env, f"ssm put-parameter --name {name} --value {value} --type String --overwrite")
        self.client(env, "ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    def delete_setting(self, env: str, name: str) -> None:
        self.aws(env, f"ssm delete-parameter --name {name}")
        self.client(env, "ssm").delete_parameter(Name=name)

    def put_schema(self, env: str, version: int, fields: str) -> None:
        item = {"pk": {"S": "SCHEMA"}, "sk": {"S": "orders"}, "type": {"S": "SCHEMA"}, "origin": {"S": env},
                "version": {"N": str(version)}, "fields": {"S": fields}}
        self.aws(env, f"dynamodb put-item --table-name {TABLE} --item '{json.dumps(item, separators=(',', ':'))}'")
        self.client(env, "dynamodb").put_item(TableName=TABLE, Item=item)

    def put_artifact(self, env: str, body: bytes) -> None:
        bucket = f"replctl-config-{env}-{ENVIRONMENTS[env]}"
        self.aws(env, f"s3 cp app-settings.json s3://{bucket}/{ARTIFACT_KEY}")
        self.client(env, "s3").put_object(Bucket=bucket, Key=ARTIFACT_KEY, Body=body)

    # -- reading back what landed where
    def setting(self, env: str, name: str) -> str:
        try:
            return str(self.client(env, "ssm").get_parameter(Name=name)["Parameter"]["Value"])
        except Exception:  # noqa: BLE001 - ParameterNotFound
            return ABSENT

    def schema(self, env: str) -> str:
        item = self.client(env, "dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": "SCHEMA"}, "sk": {"S": "orders"}},
                                                     ConsistentRead=True).get("Item")
        return f"version {item['version']['N']}" if item else ABSENT

    def artifact(self, env: str) -> str:
        try:
            body = self.client(env, "s3").get_object(Bucket=f"replctl-config-{env}-{ENVIRONMENTS[env]}",
                                                      Key=ARTIFACT_KEY)["Body"].read()
        except Exception:  # noqa: BLE001 - NoSuchKey
            return ABSENT
        return f"timeout_ms {json.loads(body)['checkout']['timeout_ms']}"


def where_it_landed(estate: Estate, rows: list[tuple[str, str, Any, dict[str, str]]]) -> None:
    """Print what each environment holds for each change; stop the demo if one did not land."""
    print(f"\n  {'change':<44} {'dev':<16} {'staging':<16} {'prod':<16}")
    wrong = []
    for label, subject, read, expected in rows:
        held = {env: read(env) for env in ENVIRONMENTS}
        marks = {env: ("" if held[env] == expected[env] else " ✗") for env in ENVIRONMENTS}
        print(f"  {label:<44} " + " ".join(f"{held[e] + marks[e]:<16}" for e in ENVIRONMENTS))
        print(f"    {subject}")
        wrong += [f"{label} in {env}: {held[env]}, expected {expected[env]}" for env in ENVIRONMENTS if marks[env]]
    if wrong:
        raise SystemExit("demo: a change did not land where it should:\n  " + "\n  ".join(wrong))


def seed(estate: Estate) -> None:
    for env in ENVIRONMENTS:
        estate.put_setting(env, TIMEOUT.format(env=env), "2000")
    estate.put_setting("dev", LEGACY, "on")
    estate.put_schema("dev", 1, "id,amount")
    replctl("--sandbox", "sandbox", "invoke", "replication-monitor", "-e", "dev", "-e", "staging", "--kind", "queued")
    replctl("--sandbox", "sandbox", "invoke", "stream-processor", "--env", "dev")


def change(estate: Estate) -> None:
    estate.put_setting("dev", TIMEOUT.format(env="dev"), "1500")
    estate.put_schema("dev", 2, "id,amount,currency")
    estate.delete_setting("dev", LEGACY)
    estate.put_artifact("dev", json.dumps({"checkout": {"timeout_ms": 1500}}).encode())
    estate.put_setting("prod", TIMEOUT.format(env="prod"), "900")


def carry() -> None:
    replctl("--sandbox", "sandbox", "invoke", "replication-monitor", "--env", "dev", "--kind", "queued")
    replctl("--sandbox", "sandbox", "invoke", "stream-processor", "--env", "dev")
    replctl("--sandbox", "sandbox", "invoke", "replication-monitor", "--env", "prod", "--kind", "queued")


def landed(estate: Estate) -> None:
    everywhere = dict.fromkeys(ENVIRONMENTS, "")
    dev_timeout = TIMEOUT.format(env="dev")
    where_it_landed(estate, [
        ("a setting changed in dev", dev_timeout, lambda e: estate.setting(e, dev_timeout),
         {e: "1500" for e in everywhere}),
        ("the schema changed in dev", f"{TABLE} SCHEMA/orders", estate.schema, {e: "version 2" for e in everywhere}),
        ("a setting deleted in dev", LEGACY, lambda e: estate.setting(e, LEGACY), {e: ABSENT for e in everywhere}),
        ("an artifact changed in dev", f"s3://replctl-config-<env>-<account>/{ARTIFACT_KEY}", estate.artifact,
         {e: "timeout_ms 1500" for e in everywhere}),
        ("a setting changed in prod (reaches nobody)", TIMEOUT.format(env="prod"),
         lambda e: estate.setting(e, TIMEOUT.format(env="prod")), {"dev": ABSENT, "staging": ABSENT, "prod": "900"}),
    ])


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
        _banner("3. deploy dev → staging → prod (the plan first, then each environment in turn)")
        replctl("--sandbox", "deploy", "--yes")
        estate = Estate(info.endpoint)
        _banner("4. each environment's settings, and dev's schema record; EventBridge and the stream carry dev's")
        seed(estate)
        _banner("5. three changes in dev (a setting, the schema, a deleted setting) and an artifact; one change in prod")
        change(estate)
        _banner("6. the functions carry them: EventBridge → replication monitor, the table's stream → stream processor")
        carry()
        landed(estate)
        _banner("7. the schedules: heartbeat and lag in each environment, then the validation sweep")
        replctl("--sandbox", "sandbox", "invoke", "replication-monitor", "-e", "dev", "-e", "staging", "-e", "prod")
        replctl("--sandbox", "sandbox", "invoke", "config-validator", "-e", "dev", "-e", "staging", "-e", "prod")
        _banner("8. replication health")
        replctl("--sandbox", "status", ok_codes=(0, 20, 21, 22))
        _banner("9. drift and parity")
        replctl("--sandbox", "drift", ok_codes=(0, 30))
    finally:
        _banner("10. stop the sandbox")
        replctl("sandbox", "stop")
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
