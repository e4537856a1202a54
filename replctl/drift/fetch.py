"""I/O for `drift`: StackSet drift detection, and the reads behind the parity checks.

StackSet drift follows the documented flow (CloudFormation User Guide, "Detecting unmanaged
configuration changes in stack sets"): DetectStackSetDrift with the configured operation
preferences, poll DescribeStackSetOperation with backoff (`replctl.waiting`, injected sleep
and clock) until it finishes, ListStackInstances for each instance's DriftStatus, then
ListStackInstanceResourceDrifts (MODIFIED and DELETED only) for each drifted instance, which
carries the expected and actual property values. Drift detection is itself a stack set
operation: with OperationInProgressException replctl waits for the running one, as deploy does.

Some endpoints cannot detect drift at all (moto: NotImplementedError in-process, HTTP 500 →
ResponseParserError from its server). That is reported once, as a note, and parity still runs.

Parity reads, per account-region of each selected environment and through the observer role:
the environment's own SSM hierarchy (DescribeParameters: names only, never values), the metadata
table's DescribeTable, GetFunctionConfiguration of the three functions (CodeSha256), and the bucket's
replication rules; plus, in the admin account, the stack set's parameters and each instance's
overrides, which say which downstream rules the template wants.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from replctl.aws import SessionFactory, error_code, translate
from replctl.config import Config, Environment
from replctl.errors import ReplctlError
from replctl.status.fetch import read_rules
from replctl.drift.model import (
    InstanceDrift,
    ParityFacts,
    ParityTarget,
    PropertyDiff,
    ResourceDrift,
    StackSetDrift,
    TableSchema,
    detection_status,
    resource_drift_status,
)
from replctl.status.model import FUNCTIONS, Names, Problem, drift_status, names_for
from replctl.statuses import OperationStatus, parse
from replctl.waiting import Poll, wait_until

Progress = Callable[[str], None]

#: Error codes an endpoint answers with when it does not implement an action.
_UNSUPPORTED_CODES = frozenset({
    "NotImplemented", "NotImplementedException", "UnsupportedOperation", "UnsupportedOperationException",
    "InvalidAction", "UnknownOperationException",
})


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, ReplctlError)


def drift_unsupported(exc: BaseException) -> str | None:
    """Why `exc` means "this endpoint cannot detect drift" (None: it is some other failure)."""
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    if isinstance(exc, NotImplementedError):  # moto in-process (moto-notes §1)
        return "the endpoint has not implemented DetectStackSetDrift"
    if isinstance(exc, ResponseParserError):  # moto's server: an HTML 500 page for unknown actions
        return "the endpoint answered DetectStackSetDrift with an unparseable error page (HTTP 500)"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _UNSUPPORTED_CODES:
            return f"the endpoint does not support DetectStackSetDrift ({code})"
        if status in (500, 501):  # after botocore's own retries
            return f"the endpoint answered DetectStackSetDrift with HTTP {status}" + (f" ({code})" if code else "")
    return None


# --------------------------------------------------------------------------- StackSet drift


def detect_stackset_drift(
    config: Config,
    factory: SessionFactory,
    envs: Iterable[Environment],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
) -> StackSetDrift:
    """Run drift detection on the stack set and read the drifted instances' resources."""
    say = progress or (lambda _m: None)
    name = config.stackset.name
    cfn = factory.client("cloudformation", region=config.stackset.home_region)
    started = _start_detection(config, factory, cfn, say, sleep, clock)
    if isinstance(started, StackSetDrift):  # not available here, or no stack set
        return started
    operation_id = started
    say(f"drift detection started on {name} (operation {operation_id})")
    op = _wait_for_detection(config, cfn, operation_id, say, sleep, clock)
    details = op.get("StackSetDriftDetectionDetails", {})
    instances = _instance_drifts(cfn, name, config.stackset.call_as, operation_id,
                                 {k for e in envs for k in e.instances()})
    return StackSetDrift(
        name, available=True, operation_id=operation_id, operation=parse(OperationStatus, op["Status"]),
        detection=detection_status(details["DriftDetectionStatus"]) if details.get("DriftDetectionStatus") else None,
        drift=drift_status(details["DriftStatus"]) if details.get("DriftStatus") else None,
        counts={k: int(v) for k, v in details.items() if k.endswith("Count")}, instances=instances,
    )


def _start_detection(config: Config, factory: SessionFactory, cfn: Any, say: Progress,
                     sleep: Callable[[float], None], clock: Callable[[], float]) -> str | StackSetDrift:
    """DetectStackSetDrift, once no other operation holds the stack set: the operation id, or the
    outcome when the endpoint cannot detect drift or the stack set does not exist."""
    name, call_as = config.stackset.name, config.stackset.call_as
    prefs = config.stackset.operation_preferences.to_api(config.regions)

    def start() -> Poll[str | None]:
        try:
            return Poll(True, cfn.detect_stack_set_drift(StackSetName=name, OperationPreferences=prefs,
                                                         CallAs=call_as)["OperationId"])
        except Exception as exc:
            if error_code(exc) == "OperationInProgressException":
                say(f"another operation is running on stack set {name}; waiting to start drift detection")
                return Poll(False, None)
            raise

    try:
        operation_id = wait_until(start, settings=config.stackset.wait, what=f"a free slot to detect drift on {name}",
                                  sleep=sleep, clock=clock)
    except Exception as exc:
        reason = drift_unsupported(exc)
        if reason is not None:
            endpoint = factory.settings.endpoint_url
            where = f" at {endpoint}" if endpoint else ""
            return StackSetDrift(name, available=False,
                                 note=f"StackSet drift detection is not available{where}: {reason}. "
                                      "Only the parity checks ran.")
        if error_code(exc) == "StackSetNotFoundException":
            return StackSetDrift(name, available=True, missing=True)
        raise
    assert operation_id is not None
    return operation_id


def _wait_for_detection(config: Config, cfn: Any, operation_id: str, say: Progress,
                        sleep: Callable[[float], None], clock: Callable[[], float]) -> dict[str, Any]:
    """Poll DescribeStackSetOperation with backoff until the detection finishes; the operation."""
    name, call_as = config.stackset.name, config.stackset.call_as

    def poll() -> Poll[dict[str, Any]]:
        op = cfn.describe_stack_set_operation(StackSetName=name, OperationId=operation_id,
                                              CallAs=call_as)["StackSetOperation"]
        status = parse(OperationStatus, op["Status"])
        d = op.get("StackSetDriftDetectionDetails", {})
        if d:
            checked = d.get("DriftedStackInstancesCount", 0) + d.get("InSyncStackInstancesCount", 0) + \
                d.get("FailedStackInstancesCount", 0)
            say(f"drift detection {status.value.lower()}: {checked} of {d.get('TotalStackInstancesCount', '?')} "
                f"instances checked, {d.get('InProgressStackInstancesCount', 0)} in progress")
        else:
            say(f"drift detection {status.value.lower()}")
        return Poll(status.finished, op)

    return wait_until(poll, settings=config.stackset.wait, what=f"drift detection {operation_id} on {name}",
                      sleep=sleep, clock=clock,
                      hint=f"it keeps running in AWS; re-run replctl drift later (operation {operation_id})")


def _instance_drifts(cfn: Any, name: str, call_as: str, operation_id: str,
                     selected: set[tuple[str, str]]) -> tuple[InstanceDrift, ...]:
    """Each selected instance's drift status, with the drifted resources of those that drifted."""
    instances: list[InstanceDrift] = []
    for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=name, CallAs=call_as):
        for s in page.get("Summaries", []):
            if (s["Account"], s["Region"]) not in selected:
                continue
            drift = drift_status(s["DriftStatus"]) if s.get("DriftStatus") else None
            resources: tuple[ResourceDrift, ...] = ()
            if drift is not None and drift.value == "DRIFTED":
                resources = _resource_drifts(cfn, name, s["Account"], s["Region"], operation_id, call_as)
            instances.append(InstanceDrift(s["Account"], s["Region"], drift, s.get("StatusReason"), resources))
    return tuple(sorted(instances, key=lambda i: (i.account, i.region)))


def _resource_drifts(cfn: Any, name: str, account: str, region: str, operation_id: str,
                     call_as: str = "SELF") -> tuple[ResourceDrift, ...]:
    out: list[ResourceDrift] = []
    kwargs: dict[str, Any] = {
        "StackSetName": name, "StackInstanceAccount": account, "StackInstanceRegion": region, "CallAs": call_as,
        "OperationId": operation_id, "StackInstanceResourceDriftStatuses": ["MODIFIED", "DELETED"],
    }
    while True:  # no paginator in botocore for this operation
        page = cfn.list_stack_instance_resource_drifts(**kwargs)
        for r in page.get("Summaries", []):
            diffs = tuple(PropertyDiff(d.get("PropertyPath", ""), d.get("ExpectedValue"), d.get("ActualValue"),
                                       d.get("DifferenceType", "NOT_EQUAL"))
                          for d in r.get("PropertyDifferences", []))
            out.append(ResourceDrift(r["LogicalResourceId"], r.get("PhysicalResourceId"), r.get("ResourceType", ""),
                                     resource_drift_status(r["StackResourceDriftStatus"]), diffs))
        token = page.get("NextToken")
        if not token:
            return tuple(sorted(out, key=lambda r: r.logical_id))
        kwargs["NextToken"] = token


# --------------------------------------------------------------------------- parity


def built_code(root: Path, log: Progress | None = None) -> dict[str, str]:
    """CodeSha256 (Lambda's form) of each function ZIP built from this checkout, by short name."""
    from replctl.package import build_all, code_sha256_b64

    return {a.function.replace("_", "-"): code_sha256_b64(a.path) for a in build_all(root, log=log)}


def read_ssm_keys(ssm: Any, path: str) -> frozenset[str]:
    """Parameter names under `path`, relative to it (names only: no value is read)."""
    keys: set[str] = set()
    paginator = ssm.get_paginator("describe_parameters")
    for page in paginator.paginate(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [path]}]):
        for p in page.get("Parameters", []):
            keys.add(p["Name"][len(path):].lstrip("/"))
    return frozenset(keys)


def read_table_schema(dynamodb: Any, table: str) -> TableSchema | None:
    """The schema parts every environment must share; None when the table does not exist."""
    try:
        t = dynamodb.describe_table(TableName=table)["Table"]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise

    def index(i: dict[str, Any]) -> str:
        keys = ",".join(f"{k['AttributeName']}:{k['KeyType']}" for k in i.get("KeySchema", []))
        proj = i.get("Projection", {})
        extra = ",".join(sorted(proj.get("NonKeyAttributes", [])))
        return f"{i['IndexName']}({keys}; {proj.get('ProjectionType', '')}{' ' + extra if extra else ''})"

    stream = t.get("StreamSpecification") or {}
    return TableSchema(
        keys=tuple((k["AttributeName"], k["KeyType"]) for k in t.get("KeySchema", [])),
        attributes=tuple(sorted((a["AttributeName"], a["AttributeType"]) for a in t.get("AttributeDefinitions", []))),
        global_indexes=tuple(sorted(index(i) for i in t.get("GlobalSecondaryIndexes", []) or [])),
        local_indexes=tuple(sorted(index(i) for i in t.get("LocalSecondaryIndexes", []) or [])),
        stream=stream.get("StreamViewType", "enabled") if stream.get("StreamEnabled") else "disabled",
        # BillingModeSummary is absent for tables that were always provisioned (DynamoDB API reference).
        billing=(t.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
    )


def read_code(lam: Any, names: Names) -> dict[str, str | None]:
    """CodeSha256 of each function (None when it does not exist).

    GetFunctionConfiguration, not GetFunction: GetFunction also returns the function's tags, which
    "Lambda returns ... only if you have explicit allow permissions for lambda:ListTags" (Lambda API
    reference, GetFunction), and CloudFormation tags every function it creates; the observer role
    needs neither the tags nor the code download link GetFunction returns.
    """
    out: dict[str, str | None] = {}
    for short in FUNCTIONS:
        try:
            out[short] = lam.get_function_configuration(FunctionName=names.function(short)).get("CodeSha256")
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                out[short] = None
            else:
                raise
    return out


def read_parameters(factory: SessionFactory, config: Config, envs: Iterable[Environment]) -> tuple[
        dict[tuple[str, str], dict[str, str]], str | None]:
    """Each instance's effective stack set parameters (stack set values, then its overrides)."""
    cfn = factory.client("cloudformation", region=config.stackset.home_region)
    name = config.stackset.name
    call_as = config.stackset.call_as
    try:
        base = {p["ParameterKey"]: p.get("ParameterValue", "")
                for p in cfn.describe_stack_set(StackSetName=name, CallAs=call_as)["StackSet"].get("Parameters", [])}
    except _errors() as exc:
        return {}, f"DescribeStackSet {name}: {translate(exc).message}"
    out: dict[tuple[str, str], dict[str, str]] = {}
    for env in envs:
        for account in env.account_ids:
            region = env.regions[0]
            try:
                inst = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=account,
                                                   StackInstanceRegion=region, CallAs=call_as)["StackInstance"]
            except _errors() as exc:
                if error_code(exc) == "StackInstanceNotFoundException":
                    continue
                return out, f"DescribeStackInstance {account} {region}: {translate(exc).message}"
            params = dict(base)
            params.update({p["ParameterKey"]: p.get("ParameterValue", "") for p in inst.get("ParameterOverrides", [])})
            out[(account, region)] = params
    return out, None


def fetch_parity_target(factory: SessionFactory, names: Names, env: Environment, account: str, region: str,
                        parameters: dict[str, str] | None, parameters_problem: str | None) -> ParityTarget:
    target = ParityTarget(env.name, account, region)
    role = names.observer_role_arn(account)
    errors = _errors()
    try:
        factory.session(account, role)  # assume now: a failure is reported as such
    except errors as exc:
        return replace(target, problems=(Problem("access", translate(exc).message),))

    def client(service: str) -> Any:
        return factory.client(service, region=region, account=account, role_arn=role)

    problems: list[Problem] = []
    values: dict[str, Any] = {}
    try:
        values["ssm_keys"] = read_ssm_keys(client("ssm"), names.ssm_path(env.name))
    except errors as exc:
        problems.append(Problem("ssm-keys", f"DescribeParameters: {translate(exc).message}"))
    try:
        schema = read_table_schema(client("dynamodb"), names.table)
        values["table"], values["table_missing"] = schema, schema is None
    except errors as exc:
        problems.append(Problem("table-schema", f"DescribeTable {names.table}: {translate(exc).message}"))
    try:
        values["code"] = read_code(client("lambda"), names)
    except errors as exc:
        problems.append(Problem("function-code", f"GetFunctionConfiguration: {translate(exc).message}"))
    if region == env.regions[0]:  # one bucket per account, deployed with the first region's instance
        bucket = names.bucket(env.name, account)
        values["bucket"] = bucket
        try:
            values["rules"] = read_rules(client("s3"), bucket, names)
        except errors as exc:
            if error_code(exc) == "NoSuchBucket":
                values["bucket_missing"] = True
            else:
                problems.append(Problem("bucket-replication", f"GetBucketReplication {bucket}: {translate(exc).message}"))
        if parameters is not None:
            values["parameters"] = parameters
        elif parameters_problem:
            problems.append(Problem("bucket-replication", parameters_problem))
    return replace(target, problems=tuple(problems), **values)


def fetch_parity(config: Config, factory: SessionFactory, envs: Iterable[Environment], code: dict[str, str], *,
                 max_workers: int = 8) -> ParityFacts:
    """Read every account-region of `envs` for the parity checks (admin reads first, then in parallel)."""
    names = names_for(config)
    envs = tuple(envs)
    params, problem = read_parameters(factory, config, envs)
    jobs = [(env, a, r) for env in envs for a, r in env.instances()]
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(jobs))), thread_name_prefix="replctl-drift")
    try:
        futures = [pool.submit(fetch_parity_target, factory, names, env, a, r, params.get((a, r)),
                               problem or (None if (a, r) in params else
                                           f"no stack instance for {a} {r}: the wanted rules are unknown"))
                   for env, a, r in jobs]
        targets = tuple(f.result() for f in futures)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return ParityFacts(tuple(e.name for e in envs), targets, dict(code))
