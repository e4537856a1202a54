"""The teardown's reads of AWS: the stack set, its instances and each account's retained data.

Read-only: the stack set and its instances (as deploy reads them), running operations, and each
account's retained data through the observer role.

DescribeStackSet, ListStackInstances, DescribeStackInstance (overrides of the environments that
stay: they may have to be unwired), ListStackSetOperations; in each target account GetBucketVersioning
(a bucket that is gone answers NoSuchBucket), DescribeTable (ResourceNotFoundException) and, with
`--delete-data`, GetParametersByPath of the hierarchies replctl writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from replctl.aws import error_code, translate
from replctl.config import Config, Environment
from replctl.deploy.model import InstanceState, Params, StackSetState, params
from replctl.deploy.observe import instance_state, list_instances, running_operations
from replctl.destroy.decide import hierarchy, selected
from replctl.destroy.model import AccountData, DestroyClients, Facts
from replctl.statuses import StackSetStatus, parse


def fetch(config: Config, clients: DestroyClients, names: Sequence[str] = (), *, delete_data: bool = False) -> Facts:
    """Read what the teardown needs. Read-only calls only."""
    removed = selected(config, names)
    cfn = clients.stacksets.cfn
    name, call_as = config.stackset.name, config.stackset.call_as
    stack_set = describe_stack_set(cfn, name, call_as)
    instances: list[InstanceState] = []
    running: tuple[str, ...] = ()
    if stack_set is not None:
        staying = {k for e in config.environments if e not in removed for k in e.instances()}
        for summary in list_instances(cfn, name, call_as=call_as):
            key = (summary["Account"], summary["Region"])
            overrides: Params = ()
            if key in staying:
                detail = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=key[0],
                                                     StackInstanceRegion=key[1], CallAs=call_as)["StackInstance"]
                overrides = params({p["ParameterKey"]: p.get("ParameterValue", "")
                                    for p in detail.get("ParameterOverrides", [])})
            instances.append(instance_state(summary, overrides))
        running = running_operations(cfn, name, call_as=call_as)
    # Parameters live in downstream accounts too (mirrors), so --delete-data reads every account.
    read = config.environments if delete_data else removed
    data = tuple(account_data(config, clients, e, a, r, with_parameters=delete_data)
                 for e in read for a, r in e.instances())
    return Facts(stack_set, tuple(instances), data, running)


def describe_stack_set(cfn: Any, name: str, call_as: str) -> StackSetState | None:
    try:
        raw = cfn.describe_stack_set(StackSetName=name, CallAs=call_as)["StackSet"]
    except Exception as exc:
        if error_code(exc) == "StackSetNotFoundException":
            return None
        raise translate(exc) from exc
    if parse(StackSetStatus, raw.get("Status", "ACTIVE")) is StackSetStatus.DELETED:
        return None
    managed = raw.get("ManagedExecution", {}).get("Active")
    return StackSetState(
        template_body=raw.get("TemplateBody", ""),
        parameters=params({p["ParameterKey"]: p.get("ParameterValue", "") for p in raw.get("Parameters", [])}),
        managed_execution=None if managed is None else bool(managed),
        permission_model=raw.get("PermissionModel"),
    )


def data_names(config: Config, environment: str, account: str) -> tuple[str, str]:
    """The environment's bucket and table in `account`, named as cfn/replication.yaml names them."""
    prefix = config.parameters.get("ReplicationBucketName", "replctl-config")
    return f"{prefix}-{environment}-{account}", config.parameters.get("DynamoDBTableName", "replctl-metadata")


def account_data(config: Config, clients: DestroyClients, env: Environment, account: str, region: str, *,
                 with_parameters: bool) -> AccountData:
    bucket, table = data_names(config, env.name, account)
    s3 = clients.observer("s3", account, region)
    ddb = clients.observer("dynamodb", account, region)
    names: tuple[str, ...] = ()
    if with_parameters:
        ssm = clients.observer("ssm", account, region)
        upto = config.names[: config.names.index(env.name) + 1]
        names = tuple(n for e in upto for n in parameter_names(ssm, hierarchy(config, e)))
    return AccountData(env.name, account, region, bucket, _exists(s3.get_bucket_versioning, ("NoSuchBucket", "404"),
                       Bucket=bucket), table, _exists(ddb.describe_table, ("ResourceNotFoundException",),
                       TableName=table), names)


def _exists(call: Any, missing: tuple[str, ...], **kwargs: Any) -> bool:
    try:
        call(**kwargs)
        return True
    except Exception as exc:
        if error_code(exc) in missing:
            return False
        raise translate(exc) from exc


def parameter_names(ssm: Any, path: str) -> list[str]:
    """Every parameter name under `path` (GetParametersByPath, recursive, followed to the last page)."""
    out: list[str] = []
    kwargs: dict[str, Any] = {"Path": path, "Recursive": True}
    while True:
        try:
            page = ssm.get_parameters_by_path(**kwargs)
        except Exception as exc:
            raise translate(exc) from exc
        out += [p["Name"] for p in page.get("Parameters", [])]
        token = page.get("NextToken")
        if not token:
            return out
        kwargs["NextToken"] = token
