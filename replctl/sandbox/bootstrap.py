"""Bootstrap the sandbox's accounts the way an operator bootstraps real ones.

The admin account gets `cfn/stackset-administration-role.yaml` (the administration role, and the
event queue with its rule that `deploy` waits on), each target account
`cfn/stackset-execution-role.yaml` — the same templates a real estate is bootstrapped with,
deployed as ordinary stacks — and the artifact bucket is created in each region. The emulator
is also told not to look for Docker (functions run in-process through `sandbox invoke`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from replctl.config import Config
from replctl.errors import SandboxError
from replctl.resources import bundle
from replctl.sandbox.state import SANDBOX_ADMIN_ACCOUNT, post, sandbox_session

ADMIN_ROLE_TEMPLATE = bundle().bootstrap_template("stackset-administration-role.yaml")
EXECUTION_ROLE_TEMPLATE = bundle().bootstrap_template("stackset-execution-role.yaml")
ADMIN_STACK = "replctl-stackset-administration-role"
EXECUTION_STACK = "replctl-stackset-execution-role"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML (short-form intrinsics) just far enough to see Parameters."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_parameters(path: Path) -> dict[str, Any]:
    doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return dict((doc or {}).get("Parameters") or {})


def bootstrap_parameters(config: Config, path: Path) -> list[dict[str, str]]:
    """Values for the bootstrap template's parameters, by what each parameter names."""
    known = {
        "AdminAccountId": config.admin.account_id,
        "AdministratorAccountId": config.admin.account_id,
        "AdministrationAccountId": config.admin.account_id,
        "AdministrationRoleName": config.stackset.administration_role_name,
        "ExecutionRoleName": config.stackset.execution_role_name,
        "ReplicationRoleName": config.parameters.get("ReplicationRoleName", ""),
        "ResourcePrefix": config.parameters.get("ResourcePrefix", ""),
        "ReplicationBucketName": config.parameters.get("ReplicationBucketName", ""),
        "DynamoDBTableName": config.parameters.get("DynamoDBTableName", ""),
        "ObserverRoleName": config.observer_role_name,
        "StackSetName": config.stackset.name,
        "SSMPathPrefix": config.ssm_prefix,
    }
    out = []
    for name, spec in template_parameters(path).items():
        if name in known and known[name]:
            out.append({"ParameterKey": name, "ParameterValue": known[name]})
        elif "Default" not in (spec or {}):
            raise SandboxError(f"{path.name}: parameter {name} has no default and the sandbox has no value for it")
    return out


def _deploy(cfn: Any, stack: str, path: Path, params: list[dict[str, str]]) -> str:
    try:
        cfn.describe_stacks(StackName=stack)
        return "exists"
    except Exception as exc:
        if "does not exist" not in str(exc):
            raise
    cfn.create_stack(StackName=stack, TemplateBody=path.read_text(), Parameters=params,
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    if status != "CREATE_COMPLETE":
        raise SandboxError(f"bootstrap stack {stack} ended {status}")
    return "created"


def bootstrap(config: Config, endpoint: str, *, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Create the StackSet roles in every account and the artifact bucket(s). Idempotent."""
    if config.admin.account_id != SANDBOX_ADMIN_ACCOUNT:
        raise SandboxError(
            f"the sandbox's admin account is {SANDBOX_ADMIN_ACCOUNT}, but the config says {config.admin.account_id}",
            hint="use environments.sandbox.yaml (the default with --sandbox)")
    post(endpoint, "/moto-api/config", {"lambda": {"use_docker": False}})
    region = config.stackset.home_region
    session = sandbox_session(region)
    summary: dict[str, Any] = {"admin": {}, "targets": {}, "artifact_buckets": []}
    cfn = session.client("cloudformation", endpoint_url=endpoint)
    summary["admin"] = {
        "account": config.admin.account_id,
        "stack": _deploy(cfn, ADMIN_STACK, ADMIN_ROLE_TEMPLATE, bootstrap_parameters(config, ADMIN_ROLE_TEMPLATE)),
    }
    log(f"admin {config.admin.account_id}: StackSet administration role and event queue "
        f"{config.stackset.event_queue_name} {summary['admin']['stack']}")
    sts = session.client("sts", endpoint_url=endpoint)
    exec_params = bootstrap_parameters(config, EXECUTION_ROLE_TEMPLATE)
    for env in config.environments:
        for account in env.account_ids:
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{config.stackset.execution_role_name}",
                RoleSessionName="replctl-sandbox-bootstrap")["Credentials"]
            target = session.client("cloudformation", endpoint_url=endpoint, aws_access_key_id=creds["AccessKeyId"],
                                    aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"])
            result = _deploy(target, EXECUTION_STACK, EXECUTION_ROLE_TEMPLATE, exec_params)
            summary["targets"][account] = {"environment": env.name, "stack": result}
            log(f"{env.name} {account}: StackSet execution role {result}")
    s3 = session.client("s3", endpoint_url=endpoint)
    for r in config.regions:
        bucket = config.stackset.artifact_bucket_for(config.admin.account_id, r)
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception:
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if r != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": r}
            s3.create_bucket(**kwargs)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            log(f"artifact bucket {bucket} created")
        summary["artifact_buckets"].append(bucket)
    return summary
