"""The teardown's reads of AWS: the stack set, its instances and each account's retained data.

Read-only: the stack set and its instances (as deploy reads them), running operations, and each
account's retained data through the observer role.

DescribeStackSet, ListStackInstances, DescribeStackInstance (overrides of the environments that
stay: they may have to be unwired), ListStackSetOperations; in each target account GetBucketVersioning
(a bucket that is gone answers NoSuchBucket), DescribeTable (ResourceNotFoundException; its
`Replicas` name the DR replicas) and, with `--delete-data`, GetParametersByPath of the hierarchies
replctl writes. Where the table is gone from the instance's region, DescribeTable in each DR region
of the environment's ExtraReplicaRegions finds a replica left behind (deleting a table leaves its
replicas: see `decide.data_phases`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from replctl.aws import error_code, translate
from replctl.config import Config, Environment
from replctl.deploy.model import InstanceState
from replctl.deploy.observe import describe_stack_set, instance_states, running_operations
from replctl.destroy.decide import hierarchy, selected
from replctl.destroy.model import AccountData, DestroyClients, Facts, TableState


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
        instances = instance_states(cfn, name, call_as=call_as, with_overrides=staying)
        running = running_operations(cfn, name, call_as=call_as)
    # Parameters live in downstream accounts too (mirrors), so --delete-data reads every account.
    read = config.environments if delete_data else removed
    data = tuple(account_data(config, clients, e, a, r, with_parameters=delete_data)
                 for e in read for a, r in e.instances())
    return Facts(stack_set, tuple(instances), data, running)


def data_names(config: Config, environment: str, account: str) -> tuple[str, str]:
    """The environment's bucket and table in `account`, named as cfn/replication.yaml names them."""
    prefix = config.parameters.get("ReplicationBucketName", "replctl-config")
    return f"{prefix}-{environment}-{account}", config.parameters.get("DynamoDBTableName", "replctl-metadata")


def account_data(config: Config, clients: DestroyClients, env: Environment, account: str, region: str, *,
                 with_parameters: bool) -> AccountData:
    bucket, table = data_names(config, env.name, account)
    s3 = clients.observer("s3", account, region)
    names: tuple[str, ...] = ()
    if with_parameters:
        ssm = clients.observer("ssm", account, region)
        upto = config.names[: config.names.index(env.name) + 1]
        names = tuple(n for e in upto for n in parameter_names(ssm, hierarchy(config, e)))
    table_region, replicas = find_table(clients, account, table, [region, *config.replica_regions(env, region)])
    return AccountData(env.name, account, region, bucket, _exists(s3.get_bucket_versioning, ("NoSuchBucket", "404"),
                       Bucket=bucket), table, table_region, replicas, names)


def find_table(clients: DestroyClients, account: str, table: str,
               regions: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """The first of `regions` holding the table, and its replicas' regions; (None, ()) when none does.

    The first region is the instance's: the other ones are read only when the table is gone there.
    """
    for region in regions:
        try:
            found = clients.observer("dynamodb", account, region).describe_table(TableName=table)["Table"]
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                continue
            raise translate(exc) from exc
        return region, tuple(r for r, _ in TableState.of(found, region).replicas)
    return None, ()


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
