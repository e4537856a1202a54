"""Plan a rollout with read calls only; the result is a value.

`build_plan` checks the template (YAML, cfn-lint) before any AWS call, then reads what is
deployed (`observe`: DescribeStackSet, ListStackInstances, DescribeStackInstance,
ListStackSetOperations, HeadBucket/HeadObject) and hands both to `decide`, a pure function that
returns a `Plan`: preparation steps (artifact buckets and uploads, the template upload, creating
the stack set) and one wave per environment in rollout order, then wiring waves. Steps are
frozen dataclasses; `rollout.apply` dispatches on them with `match`. `plan`, `deploy --dry-run`
and `deploy` all show the same value; nothing below the CLI knows about dry runs.

How a wave brings an environment forward (AWS CloudFormation API Reference, UpdateStackSet /
CreateStackInstances / UpdateStackInstances):

* The stack set's template and stack-set-level parameters change once, in the first wave that
  has instances, with `UpdateStackSet` limited to that environment's accounts and regions.
  AWS then marks every other instance OUTDATED but deploys only those named.
* A later environment is brought forward with `UpdateStackSet` + `UsePreviousTemplate` and every
  parameter `UsePreviousValue` — no template or parameter change, so AWS updates only the named
  instances and leaves the others' status alone.
* Missing instances are created with `CreateStackInstances` (they get the stack set's current
  template). When the template is about to change and the environment has no instances yet,
  they are created first and then updated with the rest, so `UpdateStackSet` never names an
  instance that does not exist (AWS: StackInstanceNotFoundException).
* Per-environment values are instance overrides. `UpdateStackInstances` can only override
  parameters the stack set already has, so override changes come *after* the template update in
  the same wave; overrides of parameters a new template drops are removed *before* it.
  A parameter list passed to CreateStackInstances/UpdateStackInstances is the complete set of
  overrides: a parameter left out takes the stack set's value.

Replication wiring (DESIGN §3.3): an environment's `ReplicateTo<Env>` override is "true" only
when that downstream environment's bucket exists, i.e. all its instances exist and are
CURRENT/SUCCEEDED (once on, it stays on while they exist, so an update in progress downstream
does not switch replication off). On a first rollout dev and staging are deployed with their
targets off, prod is deployed, and then wiring waves switch the targets on (dev, then staging)
— within the same deploy, after prod succeeded.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from replctl.config import Config, Environment
from replctl.errors import ConfigError, Refused, TemplateError
from replctl.statuses import DetailedStatus, InstanceStatus, OperationStatus, StackSetStatus, instance_ok, parse
from replctl.templates import Template, identity, lint_template, load_template

#: Which template parameter carries which function's ZIP key (docs/contract.md).
FUNCTION_PARAMETERS = {
    "replication_monitor": "ReplicationMonitorCodeKey",
    "config_validator": "ConfigValidatorCodeKey",
    "stream_processor": "StreamProcessorCodeKey",
}
CAPABILITIES = ("CAPABILITY_NAMED_IAM",)
#: Parameters whose values plan output (tables and JSON) never prints, besides the template's
#: NoEcho ones: the agent role's external id is not a password, but it is one of the conditions
#: of the cross-account trust, and plans end up in tickets and CI logs.
SENSITIVE_PARAMETERS = frozenset({"ReplicationExternalId"})
HIDDEN = "(hidden)"

Params = tuple[tuple[str, str], ...]
Key = tuple[str, str]  # (account, region)


def params(mapping: Mapping[str, str]) -> Params:
    """A parameter mapping as a sorted tuple of pairs (hashable, comparable)."""
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


class ArtifactLike(Protocol):
    """What `replctl.package` builds: one function ZIP, named by its content hash."""

    function: str
    path: Path
    sha256: str
    key: str
    size: int


@dataclass(frozen=True)
class Clients:
    """The AWS clients planning and rollout use; built from the factory, or fakes in tests."""

    cfn: Any
    s3: Callable[[str], Any]  # region -> S3 client as the admin identity
    cloudwatch: Callable[[str, str], Any]  # (account, region) -> CloudWatch via the observer role

    @classmethod
    def from_factory(cls, factory: Any, config: Config) -> Clients:
        home = config.stackset.home_region

        def cloudwatch(account: str, region: str) -> Any:
            role = f"arn:aws:iam::{account}:role/replctl/{config.observer_role_name}"
            return factory.client("cloudwatch", region=region, account=account, role_arn=role)

        return cls(
            cfn=factory.client("cloudformation", region=home),
            s3=lambda region: factory.client("s3", region=region),
            cloudwatch=cloudwatch,
        )


# --------------------------------------------------------------------------- what is deployed


@dataclass(frozen=True)
class StackSetState:
    template_body: str
    parameters: Params
    managed_execution: bool | None
    permission_model: str | None


@dataclass(frozen=True)
class InstanceState:
    account: str
    region: str
    status: InstanceStatus
    detailed: DetailedStatus | None
    reason: str | None = None
    overrides: Params = ()

    @property
    def ok(self) -> bool:
        return instance_ok(self.status, self.detailed)

    @property
    def key(self) -> Key:
        return (self.account, self.region)

    def label(self) -> str:
        detail = f"/{self.detailed.value}" if self.detailed else ""
        return f"{self.status.value}{detail}"


@dataclass(frozen=True)
class Observed:
    """Everything `decide` needs to know about AWS, read with read-only calls."""

    stack_set: StackSetState | None
    instances: tuple[InstanceState, ...] = ()
    buckets: frozenset[str] = frozenset()  # artifact buckets that exist
    objects: frozenset[tuple[str, str]] = frozenset()  # (bucket, key) already uploaded
    running: tuple[str, ...] = ()  # operations RUNNING/QUEUED/STOPPING


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class CreateArtifactBucket:
    region: str
    bucket: str
    reader_accounts: tuple[str, ...]


@dataclass(frozen=True)
class GrantArtifactReaders:
    """Rewrite an existing artifact bucket's policy so every target account may read the ZIPs.

    Planned only when instances are created in a bucket's region: a new account is the only way
    the reader set grows, and writing the whole policy needs no read call (the bucket is ours)."""

    region: str
    bucket: str
    reader_accounts: tuple[str, ...]


@dataclass(frozen=True)
class UploadArtifact:
    region: str
    bucket: str
    key: str
    function: str
    path: str
    size: int


@dataclass(frozen=True)
class UploadTemplate:
    region: str
    bucket: str
    key: str
    size: int


@dataclass(frozen=True)
class CreateStackSet:
    name: str
    permission_model: str


@dataclass(frozen=True)
class UpdateStackSet:
    """New template and stack-set parameters; deploys the named instances (no names: none exist)."""

    environment: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    organizational_unit: str | None = None


@dataclass(frozen=True)
class BringForward:
    """UpdateStackSet with UsePreviousTemplate and previous values: redeploy the named instances."""

    environment: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    organizational_unit: str | None = None


@dataclass(frozen=True)
class CreateInstances:
    environment: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    overrides: Params
    organizational_unit: str | None = None


@dataclass(frozen=True)
class UpdateOverrides:
    environment: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    overrides: Params
    reason: str = "per-environment values"
    organizational_unit: str | None = None


Step = (CreateArtifactBucket | GrantArtifactReaders | UploadArtifact | UploadTemplate | CreateStackSet
        | UpdateStackSet | BringForward | CreateInstances | UpdateOverrides)
OperationStep = UpdateStackSet | BringForward | CreateInstances | UpdateOverrides


def describe_step(step: Step) -> str:
    """One line for people."""
    match step:
        case CreateArtifactBucket(region=r, bucket=b):
            return f"create artifact bucket {b} in {r} (versioned, encrypted, public access blocked)"
        case GrantArtifactReaders(bucket=b, reader_accounts=a):
            return f"let {', '.join(a)} read the artifacts in {b} (new instances)"
        case UploadArtifact(bucket=b, key=k, function=f):
            return f"upload {f} to s3://{b}/{k}"
        case UploadTemplate(bucket=b, key=k, size=n):
            return f"upload the template ({n:,} bytes, over the inline limit) to s3://{b}/{k}"
        case CreateStackSet(name=n, permission_model=m):
            return f"create stack set {n} ({m})"
        case UpdateStackSet(environment=e, accounts=(), regions=()):
            return f"{e}: update the stack set's template and parameters (no instances exist yet)"
        case UpdateStackSet(environment=e, accounts=a, regions=r):
            return f"{e}: update the stack set's template and parameters, deploying {_targets(a, r)}"
        case BringForward(environment=e, accounts=a, regions=r):
            return f"{e}: bring {_targets(a, r)} to the stack set's template"
        case CreateInstances(environment=e, accounts=a, regions=r):
            return f"{e}: create instances in {_targets(a, r)}"
        case UpdateOverrides(environment=e, accounts=a, regions=r, reason=why):
            return f"{e}: update overrides of {_targets(a, r)} ({why})"
    raise TypeError(f"unknown step {step!r}")  # pragma: no cover


def step_action(step: Step) -> str:
    """The AWS API the step calls."""
    match step:
        case CreateArtifactBucket():
            return "CreateBucket"
        case GrantArtifactReaders():
            return "PutBucketPolicy"
        case UploadArtifact() | UploadTemplate():
            return "PutObject"
        case CreateStackSet():
            return "CreateStackSet"
        case UpdateStackSet() | BringForward():
            return "UpdateStackSet"
        case CreateInstances():
            return "CreateStackInstances"
        case UpdateOverrides():
            return "UpdateStackInstances"
    raise TypeError(f"unknown step {step!r}")  # pragma: no cover


def _targets(accounts: Sequence[str], regions: Sequence[str]) -> str:
    return f"{', '.join(accounts)} × {', '.join(regions)}"


@dataclass(frozen=True)
class Wave:
    """One environment's turn: its steps, then verify every instance, then its gate."""

    environment: str
    kind: str  # "rollout" or "wiring"
    steps: tuple[Step, ...] = ()


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class ParameterChange:
    scope: str  # "stack set" or an environment name (instance overrides)
    name: str
    before: str | None
    after: str | None
    note: str = ""


@dataclass(frozen=True)
class InstanceRow:
    environment: str
    account: str
    region: str
    status: str  # "missing" or STATUS/DETAILED
    action: str  # "create", "update", "bring forward", "update overrides", "none"
    reason: str | None = None


@dataclass(frozen=True)
class ArtifactRow:
    region: str
    bucket: str
    key: str
    function: str
    action: str  # "upload" or "present"


@dataclass(frozen=True)
class Plan:
    stack_set: str
    region: str
    exists: bool
    permission_model: str
    template_path: str
    template_body: str = field(repr=False)
    template_url: str | None
    template_diff: str
    parameters: Params
    parameter_changes: tuple[ParameterChange, ...]
    managed_execution: tuple[bool | None, bool]  # (deployed, configured)
    instances: tuple[InstanceRow, ...]
    artifacts: tuple[ArtifactRow, ...]
    preparation: tuple[Step, ...]
    waves: tuple[Wave, ...]
    running_operations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Names whose values output never shows; presentation only, so not part of plan equality.
    sensitive: frozenset[str] = field(default=frozenset(), compare=False)

    def shown(self, name: str, value: str | None) -> str | None:
        """A parameter value as output may show it."""
        return HIDDEN if value is not None and name in self.sensitive else value

    @property
    def changes(self) -> bool:
        """True when applying the plan would change anything."""
        return bool(self.preparation) or any(w.steps for w in self.waves)

    @property
    def template_changed(self) -> bool:
        return bool(self.template_diff)

    def steps(self) -> tuple[Step, ...]:
        return self.preparation + tuple(s for w in self.waves for s in w.steps)

    def to_dict(self) -> dict[str, Any]:
        """The plan for `--output json` (the template body itself is left out; the diff is in)."""

        def step_dict(s: Step) -> dict[str, Any]:
            d = asdict(s)
            for k, v in list(d.items()):
                if k == "overrides":
                    d[k] = {name: self.shown(name, value) for name, value in v}
            return {"step": type(s).__name__, "api": step_action(s), "description": describe_step(s), **d}

        return {
            "stack_set": self.stack_set,
            "region": self.region,
            "exists": self.exists,
            "permission_model": self.permission_model,
            "changes": self.changes,
            "template": {
                "path": self.template_path,
                "changed": self.template_changed or not self.exists,
                "url": self.template_url,
                "diff": self.template_diff,
            },
            "parameters": {name: self.shown(name, value) for name, value in self.parameters},
            "parameter_changes": [asdict(c) for c in self.parameter_changes],
            "managed_execution": {"deployed": self.managed_execution[0], "configured": self.managed_execution[1]},
            "instances": [asdict(r) for r in self.instances],
            "artifacts": [asdict(a) for a in self.artifacts],
            "preparation": [step_dict(s) for s in self.preparation],
            "waves": [
                {"environment": w.environment, "kind": w.kind, "steps": [step_dict(s) for s in w.steps]}
                for w in self.waves
            ],
            "running_operations": list(self.running_operations),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- desired values


def flag_parameter(environment: str) -> str:
    """The template parameter switching replication towards `environment` on."""
    return f"ReplicateTo{environment[:1].upper()}{environment[1:]}"


def account_parameter(environment: str) -> str:
    return f"AccountId{environment[:1].upper()}{environment[1:]}"


def artifact_key(config: Config, artifact: ArtifactLike) -> str:
    return f"{config.stackset.artifact_prefix}{artifact.key}"


def template_key(config: Config, template: Template) -> str:
    return f"{config.stackset.artifact_prefix}templates/{config.stackset.name}-{template.sha256[:16]}.yaml"


def template_url(bucket: str, region: str, key: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def artifact_bucket(config: Config, region: str) -> str:
    return config.stackset.artifact_bucket_for(config.admin.account_id, region)


def desired_parameters(config: Config, template: Template, artifacts: Sequence[ArtifactLike]) -> dict[str, str]:
    """Stack-set-level parameters: the common ones plus those replctl computes.

    `Environment` here is the first environment's; every instance overrides it. The replication
    targets default to off at stack-set level; each instance overrides them.
    """
    computed: dict[str, str] = {
        "Environment": config.environments[0].name,
        "AdminAccountId": config.admin.account_id,
        "SSMPathPrefix": config.ssm_prefix,
        "ArtifactBucketName": artifact_bucket(config, config.stackset.home_region),
        "ObserverRoleName": config.observer_role_name,
    }
    for env in config.environments:
        computed[account_parameter(env.name)] = env.account_id
        computed[flag_parameter(env.name)] = "false"
    for a in artifacts:
        name = FUNCTION_PARAMETERS.get(a.function)
        if name is not None:
            computed[name] = artifact_key(config, a)
    merged = {**dict(config.parameters), **computed}
    # UpdateStackInstances/CreateStackInstances can only override parameters the stack set has,
    # so every per-environment parameter is also set at stack-set level (to the template default,
    # or the first environment's value when there is none).
    for env in config.environments:
        for name, value in env.parameters.items():
            if name not in merged and name in template.parameters:
                default = template.parameters[name].default
                merged[name] = default if default is not None else value
    return {k: v for k, v in merged.items() if k in template.parameters}


def check_parameters(config: Config, template: Template, artifacts: Sequence[ArtifactLike]) -> None:
    """Every configured parameter exists in the template and every required one gets a value."""
    problems = [f"parameters.{k}: the template has no parameter {k}"
                for k in config.parameters if k not in template.parameters]
    for env in config.environments:
        problems += [f"environments[{env.name}].parameters.{k}: the template has no parameter {k}"
                     for k in env.parameters if k not in template.parameters]
    if problems:
        raise ConfigError(f"{config.path}: {len(problems)} parameter problem{'s' if len(problems) > 1 else ''} "
                          f"against {config.stackset.template.name}", tuple(problems))
    have = set(desired_parameters(config, template, artifacts))
    for env in config.environments:
        have |= set(env.parameters)
    missing = sorted(p.name for p in template.parameters.values() if p.default is None and p.name not in have)
    if missing:
        functions = {v: k for k, v in FUNCTION_PARAMETERS.items()}
        hints = [f"{m} (no {functions[m]} artifact was built)" if m in functions else m for m in missing]
        raise TemplateError(
            f"{template.path}: no value for parameter{'s' if len(missing) > 1 else ''} without a Default: "
            + ", ".join(hints),
            hint="set them under parameters: in environments.yaml",
        )


# --------------------------------------------------------------------------- reading AWS


def observe(config: Config, clients: Clients, template: Template, artifacts: Sequence[ArtifactLike]) -> Observed:
    """Read what is deployed. Read-only calls only."""
    from replctl.aws import error_code, translate

    cfn = clients.cfn
    name = config.stackset.name
    try:
        raw = cfn.describe_stack_set(StackSetName=name)["StackSet"]
    except Exception as exc:
        if error_code(exc) != "StackSetNotFoundException":
            raise translate(exc) from exc
        raw = None
    if raw is not None and parse(StackSetStatus, raw.get("Status", "ACTIVE")) is StackSetStatus.DELETED:
        raw = None
    stack_set = None
    instances: list[InstanceState] = []
    running: tuple[str, ...] = ()
    if raw is not None:
        managed = raw.get("ManagedExecution", {}).get("Active")
        stack_set = StackSetState(
            template_body=raw.get("TemplateBody", ""),
            parameters=params({p["ParameterKey"]: p.get("ParameterValue", "") for p in raw.get("Parameters", [])}),
            managed_execution=None if managed is None else bool(managed),
            permission_model=raw.get("PermissionModel"),
        )
        ours = {k for env in config.environments for k in env.instances()}
        for summary in list_instances(cfn, name):
            key = (summary["Account"], summary["Region"])
            overrides: Params = ()
            if key in ours:
                detail = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=key[0],
                                                     StackInstanceRegion=key[1])["StackInstance"]
                overrides = params({p["ParameterKey"]: p.get("ParameterValue", "")
                                    for p in detail.get("ParameterOverrides", [])})
            instances.append(instance_state(summary, overrides))
        running = running_operations(cfn, name)

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
    return Observed(stack_set, tuple(instances), frozenset(buckets), frozenset(objects), running)


def list_instances(cfn: Any, name: str) -> list[dict[str, Any]]:
    """Every StackInstanceSummary (paginated by hand: fakes need only the plain method)."""
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StackSetName": name}
    while True:
        page = cfn.list_stack_instances(**kwargs)
        out.extend(page.get("Summaries", []))
        token = page.get("NextToken")
        if not token:
            return out
        kwargs["NextToken"] = token


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


def running_operations(cfn: Any, name: str) -> tuple[str, ...]:
    """Ids of the stack set's operations that are still queued, running or stopping."""
    busy = (OperationStatus.RUNNING, OperationStatus.QUEUED, OperationStatus.STOPPING)
    out: list[str] = []
    kwargs: dict[str, Any] = {"StackSetName": name}
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


# --------------------------------------------------------------------------- deciding (pure)


def groups(keys: Sequence[Key], value: Callable[[Key], Any] = lambda k: None) -> list[tuple[tuple[str, ...], tuple[str, ...], Any]]:
    """Split instances into (accounts, regions, value) groups whose cross product is exact.

    StackSet calls name accounts × regions; an instance set that is not a full product (or whose
    instances need different override values) needs one call per group. Order is stable.
    """
    by_value: dict[Any, dict[str, list[str]]] = {}
    for account, region in keys:
        by_value.setdefault(value((account, region)), {}).setdefault(account, []).append(region)
    out = []
    for v, per_account in by_value.items():
        by_regions: dict[tuple[str, ...], list[str]] = {}
        for account, regions in per_account.items():
            by_regions.setdefault(tuple(regions), []).append(account)
        for regions, accounts in by_regions.items():
            out.append((tuple(accounts), regions, v))
    return out


def decide(
    config: Config,
    template: Template,
    artifacts: Sequence[ArtifactLike],
    observed: Observed,
    *,
    only: str | None = None,
    force: bool = False,
) -> Plan:
    """The plan: what to create, upload and update, wave by wave. Pure."""
    ss = observed.stack_set
    envs = config.environments
    selected = config.select([only]) if only else envs
    home = config.stackset.home_region
    desired = desired_parameters(config, template, artifacts)
    by_key = {i.key: i for i in observed.instances}
    defaults = {p.name: p.default for p in template.parameters.values()}

    def effective(values: Mapping[str, str]) -> dict[str, str | None]:
        return {p: values.get(p, defaults[p]) for p in template.parameters}

    template_changed = ss is not None and ss.template_body != template.text
    params_changed = ss is not None and effective(dict(ss.parameters)) != effective(desired)
    settings_changed = (ss is not None and ss.managed_execution is not None
                        and ss.managed_execution != config.stackset.managed_execution)
    content_pending = template_changed or params_changed

    established = {e.name: all(k in by_key and by_key[k].ok for k in e.instances()) for e in envs}
    present = {e.name: all(k in by_key for k in e.instances()) for e in envs}
    selected_names = {e.name for e in selected}

    if only and not force:
        _refuse_unless_upstream_current(config, selected[0], ss, content_pending, established, by_key)

    def flags(e: Environment, final: bool) -> dict[str, str]:
        """ReplicateTo<Env> values for `e`: during its rollout wave (final=False) or after wiring."""
        out: dict[str, str] = {}
        position = envs.index(e)
        for d in envs:
            name = flag_parameter(d.name)
            if name not in template.parameters:
                continue
            if envs.index(d) <= position:
                out[name] = "false"
                continue
            deployed = {dict(by_key[k].overrides).get(name) if k in by_key else None for k in e.instances()}
            already = deployed == {"true"}
            if final:
                on = established[d.name] or (present[d.name] and already) or d.name in selected_names
            elif present[e.name] and len(deployed) == 1:
                # An existing environment keeps its targets during its rollout wave; switching one
                # on is the wiring waves' job (after every environment of this rollout succeeded).
                on = already and present[d.name]
            else:
                on = established[d.name]
            out[name] = "true" if on else "false"
        return out

    def overrides(e: Environment, region: str, flag_values: Mapping[str, str]) -> dict[str, str]:
        values: dict[str, str] = {}
        if "Environment" in template.parameters:
            values["Environment"] = e.name
        values.update(flag_values)
        if region != home and "ArtifactBucketName" in template.parameters:
            values["ArtifactBucketName"] = artifact_bucket(config, region)
        values.update(dict(e.parameters))
        return values

    # -- preparation: artifact buckets, uploads, template upload, stack set ---------------------
    preparation: list[Step] = []
    artifact_rows: list[ArtifactRow] = []
    for region in config.regions:
        bucket = artifact_bucket(config, region)
        if bucket not in observed.buckets:
            readers = tuple(a for e in envs if region in e.regions for a in e.account_ids)
            preparation.append(CreateArtifactBucket(region, bucket, readers))
        for a in artifacts:
            key = artifact_key(config, a)
            there = (bucket, key) in observed.objects
            artifact_rows.append(ArtifactRow(region, bucket, key, a.function, "present" if there else "upload"))
            if not there:
                preparation.append(UploadArtifact(region, bucket, key, a.function, str(a.path), a.size))
    url = None
    if template.needs_url:
        bucket = artifact_bucket(config, home)
        key = template_key(config, template)
        url = template_url(bucket, home, key)
        if bucket not in observed.buckets and not any(isinstance(s, CreateArtifactBucket) and s.bucket == bucket
                                                      for s in preparation):
            preparation.append(CreateArtifactBucket(home, bucket, ()))
        if (bucket, key) not in observed.objects and (ss is None or content_pending):
            preparation.append(UploadTemplate(home, bucket, key, template.size))
    if ss is None:
        preparation.append(CreateStackSet(config.stackset.name, config.stackset.permission_model))

    # -- one wave per selected environment -----------------------------------------------------
    content_applied = not content_pending
    applied_here = False  # the template/parameters change in this plan: every later instance is OUTDATED
    settings_pending = settings_changed
    actions: dict[Key, str] = {}
    waves: list[Wave] = []
    for e in selected:
        ou = e.organizational_unit_id
        keys = list(e.instances())
        existing = [k for k in keys if k in by_key]
        missing = [k for k in keys if k not in by_key]
        interim = {r: overrides(e, r, flags(e, final=False)) for r in e.regions}
        current = {k: dict(by_key[k].overrides) for k in existing}
        steps: list[Step] = []

        def override_steps(targets: Sequence[Key], values: Mapping[str, Mapping[str, str]], why: str,
                           _e: Environment = e, _ou: str | None = ou) -> list[Step]:
            return [UpdateOverrides(_e.name, a, r, v, why, _ou)
                    for a, r, v in groups(targets, lambda k: params(values[k[1]]))]

        def create_steps(targets: Sequence[Key], values: Mapping[str, Mapping[str, str]],
                         _e: Environment = e, _ou: str | None = ou) -> list[Step]:
            return [CreateInstances(_e.name, a, r, v, _ou)
                    for a, r, v in groups(targets, lambda k: params(values[k[1]]))]

        if not content_applied:
            assert ss is not None
            if not observed.instances:
                # No instance anywhere: an UpdateStackSet without accounts touches nothing.
                steps.append(UpdateStackSet(e.name, (), (), ou))
                steps += create_steps(missing, interim)
                actions.update({k: "create" for k in missing})
            else:
                stale = [k for k in existing if set(current[k]) - set(template.parameters)]
                if stale:
                    kept = {k: {p: v for p, v in current[k].items() if p in template.parameters} for k in stale}
                    # One call per distinct kept set (values differ per instance only by region).
                    for a, r, v in groups(stale, lambda k: params(kept[k])):
                        steps.append(UpdateOverrides(e.name, a, r, v, "drop overrides of removed parameters", ou))
                    current.update(kept)
                now = dict(current)
                if missing:
                    # Create with the stack set's current template first, so the UpdateStackSet
                    # below names only instances that exist.
                    old = {k for k, _ in ss.parameters}
                    restricted = {r: {p: v for p, v in interim[r].items() if p in old} for r in e.regions}
                    steps += create_steps(missing, restricted)
                    now.update({k: restricted[k[1]] for k in missing})
                steps.append(UpdateStackSet(e.name, tuple(e.account_ids), tuple(e.regions), ou))
                differing = [k for k in keys if now[k] != interim[k[1]]]
                steps += override_steps(differing, interim, "per-environment values")
                actions.update({k: "update" for k in existing})
                actions.update({k: "create" for k in missing})
            content_applied = applied_here = True
            settings_pending = False
        else:
            if missing:
                steps += create_steps(missing, interim)
                actions.update({k: "create" for k in missing})
            outdated = [k for k in existing if applied_here or not by_key[k].ok]
            if settings_pending and not outdated and existing:
                outdated = list(existing)  # carries the managed-execution change
            if outdated:
                steps += [BringForward(e.name, a, r, ou) for a, r, _ in groups(outdated)]
                actions.update({k: "bring forward" for k in outdated})
                settings_pending = False
            differing = [k for k in existing if current[k] != interim[k[1]]]
            steps += override_steps(differing, interim, "per-environment values")
            for k in differing:
                actions.setdefault(k, "update overrides")
        waves.append(Wave(e.name, "rollout", tuple(steps)))

    # -- wiring: switch on replication towards environments this rollout brought up --------------
    for e in selected:
        before, after = flags(e, final=False), flags(e, final=True)
        if before == after:
            continue
        targets = [d for d in envs if before.get(flag_parameter(d.name)) != after.get(flag_parameter(d.name))]
        final_values = {r: overrides(e, r, after) for r in e.regions}
        why = "enable replication to " + ", ".join(d.name for d in targets)
        steps = [UpdateOverrides(e.name, a, r, v, why, e.organizational_unit_id)
                 for a, r, v in groups(list(e.instances()), lambda k: params(final_values[k[1]]))]
        waves.append(Wave(e.name, "wiring", tuple(steps)))
        for k in e.instances():
            actions.setdefault(k, "update overrides")

    # -- what to show -----------------------------------------------------------------------------
    sensitive = frozenset({p.name for p in template.parameters.values() if p.no_echo} | SENSITIVE_PARAMETERS)

    def change(scope: str, name: str, b: str | None, a: str | None, note: str = "") -> ParameterChange:
        if name in sensitive:
            return ParameterChange(scope, name, None if b is None else HIDDEN, None if a is None else HIDDEN,
                                   "sensitive: value not shown")
        return ParameterChange(scope, name, b, a, note)

    changes: list[ParameterChange] = []
    before_ss = dict(ss.parameters) if ss is not None else {}
    if ss is None or content_pending:
        for name in sorted(set(before_ss) | set(desired)):
            b, a = before_ss.get(name), desired.get(name)
            if b != a:
                changes.append(change("stack set", name, b, a))
    for e in envs:
        final = {r: overrides(e, r, flags(e, final=e.name in selected_names)) for r in e.regions}
        interim_all = {r: overrides(e, r, flags(e, final=False)) for r in e.regions}
        names = sorted({p for k in e.instances() if k in by_key for p in dict(by_key[k].overrides)}
                       | {p for v in final.values() for p in v})
        for name in names:
            befores = {dict(by_key[k].overrides).get(name) if k in by_key else None for k in e.instances()}
            afters = {final[r].get(name) for r in e.regions}
            b = befores.pop() if len(befores) == 1 else "(mixed)"
            a = afters.pop() if len(afters) == 1 else "(per region)"
            if b != a and e.name in selected_names:
                interims = {interim_all[r].get(name) for r in e.regions}
                note = "" if interims == {a} else "switched on after its target exists"
                changes.append(change(e.name, name, b, a, note))

    rows: list[InstanceRow] = []
    for e in envs:
        for k in e.instances():
            inst = by_key.get(k)
            action = actions.get(k, "none") if e.name in selected_names else "not selected"
            rows.append(InstanceRow(e.name, k[0], k[1], inst.label() if inst else "missing", action,
                                    inst.reason if inst else None))

    notes: list[str] = []
    ours = {k for e in envs for k in e.instances()}
    strays = [i for i in observed.instances if i.key not in ours]
    for i in strays:
        notes.append(f"instance {i.account}/{i.region} is not in {config.path.name}; replctl leaves it alone")
    if ss is not None and ss.permission_model and ss.permission_model != config.stackset.permission_model:
        notes.append(f"the stack set is {ss.permission_model} but the config says {config.stackset.permission_model}; "
                     "replctl does not change the permission model")
    if settings_pending:
        notes.append("managed execution differs but no instance can carry the change yet; it is applied "
                     "with the next stack set update")
    if observed.running:
        notes.append(f"operation{'s' if len(observed.running) > 1 else ''} {', '.join(observed.running)} "
                     "still running; deploy waits for it before planning")

    # An account added to an environment must be able to read the ZIPs before its instance is
    # created (Lambda fetches the code as that account's execution role).
    created_buckets = {st.bucket for st in preparation if isinstance(st, CreateArtifactBucket)}
    grants: list[Step] = []
    for region in config.regions:
        bucket = artifact_bucket(config, region)
        creating = any(isinstance(st, CreateInstances) and region in st.regions for w in waves for st in w.steps)
        if creating and bucket not in created_buckets:
            readers = tuple(a for e in envs if region in e.regions for a in e.account_ids)
            grants.append(GrantArtifactReaders(region, bucket, readers))
    preparation = grants + preparation

    diff = ""
    if ss is None or template_changed:
        diff = "".join(difflib.unified_diff(
            (ss.template_body if ss else "").splitlines(keepends=True),
            template.text.splitlines(keepends=True),
            fromfile=f"stack set {config.stackset.name}" if ss else "/dev/null",
            tofile=str(config.stackset.template),
        ))
    return Plan(
        stack_set=config.stackset.name,
        region=home,
        exists=ss is not None,
        permission_model=config.stackset.permission_model,
        template_path=str(config.stackset.template),
        template_body=template.text,
        template_url=url,
        template_diff=diff,
        parameters=params(desired),
        parameter_changes=tuple(changes),
        managed_execution=(ss.managed_execution if ss else None, config.stackset.managed_execution),
        instances=tuple(rows),
        artifacts=tuple(artifact_rows),
        preparation=tuple(preparation),
        waves=tuple(waves),
        running_operations=observed.running,
        notes=tuple(notes),
        sensitive=sensitive,
    )


def _refuse_unless_upstream_current(
    config: Config,
    target: Environment,
    ss: StackSetState | None,
    content_pending: bool,
    established: Mapping[str, bool],
    by_key: Mapping[Key, InstanceState],
) -> None:
    envs = config.environments
    upstream = envs[: envs.index(target)]
    if not upstream:
        return
    reasons: list[str] = []
    if ss is None:
        reasons.append("the stack set does not exist yet")
    elif content_pending:
        reasons.append("the local template or parameters differ from the stack set's, so "
                       f"{', '.join(u.name for u in upstream)} {'is' if len(upstream) == 1 else 'are'} "
                       "not on this template")
    for u in upstream:
        if not established[u.name]:
            bad = [f"{a}/{r} {by_key[(a, r)].label() if (a, r) in by_key else 'missing'}"
                   for a, r in u.instances() if not ((a, r) in by_key and by_key[(a, r)].ok)]
            reasons.append(f"{u.name} is not current: {', '.join(bad)}")
    if reasons:
        raise Refused(
            f"refusing to deploy {target.name} on its own: " + "; ".join(reasons),
            hint=f"deploy the upstream environments first (replctl deploy), or pass --force to deploy {target.name} anyway",
        )


# --------------------------------------------------------------------------- the entry point


def prepare_template(
    config: Config,
    template_transform: Callable[[str], str] = identity,
    *,
    lint: bool = True,
    note: Callable[[str], None] | None = None,
) -> Template:
    """Load the template (YAML check), lint the file, apply the transform. No AWS call."""
    template = load_template(config.stackset.template, template_transform)
    if lint:
        lint_template(config.stackset.template, config.regions, note=note)
    return template


def build_plan(
    config: Config,
    clients: Clients,
    *,
    artifacts: Sequence[ArtifactLike],
    template_transform: Callable[[str], str] = identity,
    only: str | None = None,
    force: bool = False,
    lint: bool = True,
    note: Callable[[str], None] | None = None,
    template: Template | None = None,
) -> Plan:
    """Check the template, read AWS, and decide. Makes no mutating call.

    `template_transform` is applied to the template text before it is compared with the stack
    set and uploaded (identity by default; the sandbox passes its adapter). Pass `template` when
    `prepare_template` already ran.
    """
    if only is not None:
        config.environment(only)  # unknown names are a ConfigError before anything else
    if template is None:
        template = prepare_template(config, template_transform, lint=lint, note=note)
    check_parameters(config, template, artifacts)
    observed = observe(config, clients, template, artifacts)
    return decide(config, template, artifacts, observed, only=only, force=force)
