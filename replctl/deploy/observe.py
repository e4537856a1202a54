"""Planning's reads of AWS: what is deployed, with read calls only.

The stack set, its instances and their overrides, running operations, and which artifact
buckets and objects exist.

DescribeStackSet, ListStackInstances, DescribeStackInstance (the only call that returns an
instance's overrides), ListStackSetOperations, HeadBucket and HeadObject. The result is an
`Observed` value that `decide` works from; `rollout` reuses the instance and operation reads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from replctl.config import Config
from replctl.deploy.model import Clients, InstanceState, Observed, Params, StackSetState, params, ArtifactLike
from replctl.deploy.parameters import artifact_bucket, artifact_key, template_key
from replctl.deploy.template import Template
from replctl.statuses import DetailedStatus, InstanceStatus, OperationStatus, StackSetStatus, parse


def observe(config: Config, clients: Clients, template: Template, artifacts: Sequence[ArtifactLike]) -> Observed:
    """Read what is deployed. Read-only calls only."""
    cfn = clients.cfn
    name = config.stackset.name
    call_as = config.stackset.call_as
    stack_set = describe_stack_set(cfn, name, call_as)
    instances: list[InstanceState] = []
    running: tuple[str, ...] = ()
    if stack_set is not None:
        ours = {k for env in config.environments for k in env.instances()}
        instances = instance_states(cfn, name, call_as=call_as, with_overrides=ours)
        running = running_operations(cfn, name, call_as=call_as)
    buckets, objects = _artifacts_present(config, clients, template, artifacts)
    present = {i.key for i in instances}
    return Observed(stack_set, tuple(instances), buckets, objects, running, retained_data(config, clients, present))


def retained_data(config: Config, clients: Clients, present: set[tuple[str, str]]) -> tuple[tuple[str, str, str, str, str], ...]:
    """The bucket, table and table replicas a data-retaining `destroy` left where an instance is
    missing (the stack would fail creating them: names are fixed). Read through the observer role:
    GetBucketVersioning (NoSuchBucket when gone) and DescribeTable (ResourceNotFoundException) in the
    instance's region and in each of the environment's DR regions."""
    from replctl.aws import error_code, translate

    if clients.observer is None:
        return ()
    prefix = config.parameters.get("ReplicationBucketName", "replctl-config")
    table = config.parameters.get("DynamoDBTableName", "replctl-metadata")
    found: list[tuple[str, str, str, str, str]] = []
    for env in config.environments:
        for account, region in env.instances():
            if (account, region) in present:
                continue
            bucket = f"{prefix}-{env.name}-{account}"
            reads = (("bucket", bucket, "s3", "get_bucket_versioning", {"Bucket": bucket}, ("NoSuchBucket", "404")),
                     ("table", table, "dynamodb", "describe_table", {"TableName": table}, ("ResourceNotFoundException",)))
            # A DR replica a deleted table left behind would fail the global table's creation too.
            replicas = tuple((r, "replica", table, "dynamodb", "describe_table", {"TableName": table},
                              ("ResourceNotFoundException",)) for r in config.replica_regions(env, region))
            for where, kind, name, service, method, kwargs, missing in tuple((region, *read) for read in reads) + replicas:
                try:
                    getattr(clients.observer(service, account, where), method)(**kwargs)
                except Exception as exc:
                    if error_code(exc) in missing:
                        continue
                    raise translate(exc) from exc
                found.append((env.name, account, where, kind, name))
    return tuple(found)


def _artifacts_present(config: Config, clients: Clients, template: Template,
                       artifacts: Sequence[ArtifactLike]) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Which artifact buckets exist, and which of the wanted objects they already hold."""
    buckets: set[str] = set()
    objects: set[tuple[str, str]] = set()
    wanted: dict[str, list[str]] = {}
    for region in config.regions:
        wanted.setdefault(region, []).extend(artifact_key(config, a) for a in artifacts)
    if template.needs_url:
        wanted.setdefault(config.stackset.home_region, []).append(template_key(config, template))
    for region, keys in wanted.items():
        s3 = clients.s3(region)
        bucket = artifact_bucket(config, region)
        if not bucket_exists(s3, bucket):
            continue
        buckets.add(bucket)
        for key in keys:
            if object_exists(s3, bucket, key):
                objects.add((bucket, key))
    return frozenset(buckets), frozenset(objects)


def describe_stack_set(cfn: Any, name: str, call_as: str) -> StackSetState | None:
    """The stack set as deployed; None when there is none (never created, or DELETED)."""
    from replctl.aws import error_code, translate

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


def list_instances(cfn: Any, name: str, *, call_as: str) -> list[dict[str, Any]]:
    """Every StackInstanceSummary (paginated by hand: fakes need only the plain method)."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StackSetName": name, "CallAs": call_as}
    while True:
        page = cfn.list_stack_instances(**kwargs)
        out.extend(page.get("Summaries", []))
        token = page.get("NextToken")
        if not token:
            return out
        kwargs["NextToken"] = token


def instance_states(cfn: Any, name: str, *, call_as: str,
                    with_overrides: Collection[tuple[str, str]]) -> list[InstanceState]:
    """Every instance of the stack set; the overrides of those in `with_overrides` (one
    DescribeStackInstance each: ListStackInstances does not return them)."""
    out: list[InstanceState] = []
    for summary in list_instances(cfn, name, call_as=call_as):
        key = (summary["Account"], summary["Region"])
        overrides: Params = ()
        if key in with_overrides:
            detail = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=key[0],
                                                 StackInstanceRegion=key[1], CallAs=call_as)["StackInstance"]
            overrides = params({p["ParameterKey"]: p.get("ParameterValue", "")
                                for p in detail.get("ParameterOverrides", [])})
        out.append(instance_state(summary, overrides))
    return out


def instance_state(summary: Mapping[str, Any], overrides: Params = ()) -> InstanceState:
    detailed = summary.get("StackInstanceStatus", {}).get("DetailedStatus")
    return InstanceState(
        account=summary["Account"],
        region=summary["Region"],
        status=parse(InstanceStatus, summary["Status"]),
        detailed=None if detailed is None else parse(DetailedStatus, detailed),
        reason=summary.get("StatusReason") or None,
        overrides=overrides,
    )


def running_operations(cfn: Any, name: str, *, call_as: str) -> tuple[str, ...]:
    """Ids of the stack set's operations that are still queued, running or stopping."""
    busy = (OperationStatus.RUNNING, OperationStatus.QUEUED, OperationStatus.STOPPING)
    out: list[str] = []
    kwargs: dict[str, Any] = {"StackSetName": name, "CallAs": call_as}
    while True:
        page = cfn.list_stack_set_operations(**kwargs)
        for op in page.get("Summaries", []):
            if parse(OperationStatus, op["Status"]) in busy:
                out.append(op["OperationId"])
        token = page.get("NextToken")
        if not token:
            return tuple(out)
        kwargs["NextToken"] = token


def bucket_exists(s3: Any, bucket: str) -> bool:
    from replctl.aws import error_code, translate
    from replctl.errors import AwsAccessError

    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except Exception as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            raise AwsAccessError(
                f"artifact bucket {bucket} exists but this identity cannot use it (403)",
                hint="bucket names are global: choose another stackset.artifact_bucket, or grant access",
            ) from exc
        raise translate(exc) from exc


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    from replctl.aws import error_code, translate

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise translate(exc) from exc
