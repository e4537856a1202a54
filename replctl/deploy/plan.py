"""Plan a rollout with read calls only; the result is a value.

`build_plan` checks the template (YAML, cfn-lint) before any AWS call, then reads what is
deployed (`observe`: DescribeStackSet, ListStackInstances, DescribeStackInstance,
ListStackSetOperations, HeadBucket/HeadObject) and hands both to `decide`, a pure function that
returns a `Plan`: preparation steps (artifact buckets and uploads, the template upload, creating
the stack set) and one wave per environment in rollout order, then wiring waves. Steps are
frozen dataclasses; `rollout.apply` dispatches on them with `match`. `plan`, `deploy --dry-run`
and `deploy` all show the same value; nothing below the CLI knows about dry runs.

How a wave brings an environment forward (AWS CloudFormation API Reference, UpdateStackSet /
CreateStackInstances / UpdateStackInstances; docs/deploy.md has the table):

* The stack set's template, stack-set-level parameters and settings change once, in the first
  wave that has instances, with `UpdateStackSet` limited to that environment's accounts and
  regions. Because it specifies the template and the `Parameters` property, AWS "marks all stack
  instances with a status of OUTDATED prior to updating the stack instances in the specified
  accounts" — so it is used once per change, never to bring a later environment forward.
* A later environment is brought forward with `UpdateStackInstances` carrying its complete
  override list: the stack set's current template and parameters reach the named instances
  only, other instances keep their status, and an override of a parameter the new template
  drops is gone in the same operation that brings the template (AWS would otherwise reject the
  stack update: "Parameters: [X] do not exist in the template").
* An override of a parameter the new template adds is set only once the instance runs that
  template ("Once a stack instance has been updated with the new parameter, you can then
  override the parameter value using UpdateStackInstances"): the bring-forward leaves it out,
  a second UpdateStackInstances sets it.
* Missing instances are created with `CreateStackInstances` (they get the stack set's current
  template). When the template is about to change and the first environment has no instances
  yet, they are created first and then updated with the rest, so `UpdateStackSet` never names
  an instance that does not exist (AWS: StackInstanceNotFoundException).
* In the first wave, overrides of parameters the new template drops are removed *before* the
  `UpdateStackSet` ("During stack set updates, any parameters overridden for a stack instance
  aren't updated, but retain their overridden value"), and override changes come *after* it
  (an override can only name a parameter the stack set has).
* A parameter list passed to CreateStackInstances/UpdateStackInstances is the complete set of
  overrides: a parameter left out takes the stack set's value.
* An instance AWS excludes from operations (INOPERABLE, a failed import, a suspended account)
  stops the plan with the remedy for its state (`Refused`, exit 9).

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
from replctl.statuses import (
    DetailedStatus,
    InstanceStatus,
    OperationStatus,
    StackSetStatus,
    excluded_from_updates,
    instance_ok,
    parse,
)
from replctl.deploy.template import (
    Template,
    identity,
    lint_template,
    load_template,
    parse_template,
    s3_object_url,
    template_parameters,
)

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
    """New template, stack-set parameters and settings; deploys the named instances (no names:
    none exist). AWS marks every other instance OUTDATED, so a plan has at most one."""

    environment: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    organizational_unit: str | None = None


@dataclass(frozen=True)
class BringForward:
    """UpdateStackInstances with the complete override list: the stack set's current template and
    parameters reach the named instances, and only them."""

    environment: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    overrides: Params
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
            return f"{e}: bring {_targets(a, r)} to the stack set's template (complete override list)"
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
        case UpdateStackSet():
            return "UpdateStackSet"
        case CreateInstances():
            return "CreateStackInstances"
        case BringForward() | UpdateOverrides():
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
    """Where CloudFormation reads the uploaded template; the host follows the region's partition."""
    return s3_object_url(bucket, region, key)


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
    call_as = config.stackset.call_as
    try:
        raw = cfn.describe_stack_set(StackSetName=name, CallAs=call_as)["StackSet"]
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
        for summary in list_instances(cfn, name, call_as=call_as):
            key = (summary["Account"], summary["Region"])
            overrides: Params = ()
            if key in ours:
                detail = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=key[0],
                                                     StackInstanceRegion=key[1], CallAs=call_as)["StackInstance"]
                overrides = params({p["ParameterKey"]: p.get("ParameterValue", "")
                                    for p in detail.get("ParameterOverrides", [])})
            instances.append(instance_state(summary, overrides))
        running = running_operations(cfn, name, call_as=call_as)
    buckets, objects = _artifacts_present(config, clients, template, artifacts)
    return Observed(stack_set, tuple(instances), buckets, objects, running)


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


@dataclass(frozen=True)
class Situation:
    """What `decide`'s steps share: its inputs, and the facts derived from them once."""

    config: Config
    template: Template
    artifacts: tuple[ArtifactLike, ...]
    observed: Observed
    selected: tuple[Environment, ...]
    desired: Mapping[str, str]
    by_key: Mapping[Key, InstanceState]
    template_changed: bool
    params_changed: bool
    settings_changed: bool
    established: Mapping[str, bool]  # every instance exists and is CURRENT/SUCCEEDED
    present: Mapping[str, bool]  # every instance exists

    @property
    def ss(self) -> StackSetState | None:
        return self.observed.stack_set

    @property
    def envs(self) -> tuple[Environment, ...]:
        return self.config.environments

    @property
    def selected_names(self) -> frozenset[str]:
        return frozenset(e.name for e in self.selected)

    @property
    def content_pending(self) -> bool:
        """The stack set itself must change (template, parameters or settings): one UpdateStackSet."""
        return self.template_changed or self.params_changed or self.settings_changed

    def current(self, key: Key) -> dict[str, str]:
        """The instance's overrides as AWS reports them."""
        return dict(self.by_key[key].overrides)

    def flags(self, e: Environment, final: bool) -> dict[str, str]:
        """ReplicateTo<Env> values for `e`: during its rollout wave (final=False) or after wiring."""
        out: dict[str, str] = {}
        position = self.envs.index(e)
        for d in self.envs:
            name = flag_parameter(d.name)
            if name not in self.template.parameters:
                continue
            if self.envs.index(d) <= position:
                out[name] = "false"
                continue
            deployed = {dict(self.by_key[k].overrides).get(name) if k in self.by_key else None for k in e.instances()}
            already = deployed == {"true"}
            if final:
                on = self.established[d.name] or (self.present[d.name] and already) or d.name in self.selected_names
            elif self.present[e.name] and len(deployed) == 1:
                # An existing environment keeps its targets during its rollout wave; switching one
                # on is the wiring waves' job (after every environment of this rollout succeeded).
                on = already and self.present[d.name]
            else:
                on = self.established[d.name]
            out[name] = "true" if on else "false"
        return out

    def overrides(self, e: Environment, region: str, flag_values: Mapping[str, str]) -> dict[str, str]:
        """The complete override list of `e`'s instances in `region`."""
        values: dict[str, str] = {}
        if "Environment" in self.template.parameters:
            values["Environment"] = e.name
        values.update(flag_values)
        if region != self.config.stackset.home_region and "ArtifactBucketName" in self.template.parameters:
            values["ArtifactBucketName"] = artifact_bucket(self.config, region)
        values.update(dict(e.parameters))
        return values

    def interim(self, e: Environment) -> dict[str, dict[str, str]]:
        """Per region, the overrides `e` gets in its rollout wave (targets not yet switched on)."""
        return {r: self.overrides(e, r, self.flags(e, final=False)) for r in e.regions}

    def added_parameters(self) -> frozenset[str]:
        """Parameters the local template declares and the stack set's current one does not."""
        assert self.ss is not None
        try:
            before = set(template_parameters(parse_template(self.ss.template_body, "the stack set's template"), ""))
        except TemplateError:  # an unreadable body: the stack set's parameter names are what we know
            before = {k for k, _ in self.ss.parameters}
        return frozenset(set(self.template.parameters) - before)


def situation(config: Config, template: Template, artifacts: Sequence[ArtifactLike], observed: Observed,
              only: str | None = None) -> Situation:
    """The facts `decide` works from (pure)."""
    ss = observed.stack_set
    desired = desired_parameters(config, template, artifacts)
    by_key = {i.key: i for i in observed.instances}
    defaults = {p.name: p.default for p in template.parameters.values()}

    def effective(values: Mapping[str, str]) -> dict[str, str | None]:
        return {p: values.get(p, defaults[p]) for p in template.parameters}

    return Situation(
        config=config, template=template, artifacts=tuple(artifacts), observed=observed,
        selected=tuple(config.select([only]) if only else config.environments),
        desired=desired, by_key=by_key,
        template_changed=ss is not None and ss.template_body != template.text,
        params_changed=ss is not None and effective(dict(ss.parameters)) != effective(desired),
        settings_changed=(ss is not None and ss.managed_execution is not None
                          and ss.managed_execution != config.stackset.managed_execution),
        established={e.name: all(k in by_key and by_key[k].ok for k in e.instances()) for e in config.environments},
        present={e.name: all(k in by_key for k in e.instances()) for e in config.environments},
    )


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
    sit = situation(config, template, artifacts, observed, only)
    refuse_excluded_instances(sit)
    if only and not force:
        refuse_unless_upstream_current(sit)
    preparation, artifact_rows, url = prepare_steps(sit)
    waves, actions = rollout_waves(sit)
    waves += wiring_waves(sit, actions)
    sensitive = frozenset({p.name for p in template.parameters.values() if p.no_echo} | SENSITIVE_PARAMETERS)
    ss = sit.ss
    return Plan(
        stack_set=config.stackset.name,
        region=config.stackset.home_region,
        exists=ss is not None,
        permission_model=config.stackset.permission_model,
        template_path=str(config.stackset.template),
        template_body=template.text,
        template_url=url,
        template_diff=template_diff(sit),
        parameters=params(sit.desired),
        parameter_changes=parameter_changes(sit, sensitive),
        managed_execution=(ss.managed_execution if ss else None, config.stackset.managed_execution),
        instances=instance_rows(sit, actions),
        artifacts=tuple(artifact_rows),
        preparation=tuple(reader_grants(sit, preparation, waves) + preparation),
        waves=tuple(waves),
        running_operations=observed.running,
        notes=notes(sit),
        sensitive=sensitive,
    )


# -- refusals -----------------------------------------------------------------------------------

#: What to do about an instance AWS's operations do not reach, by the state that excludes it.
REMEDIES = {
    DetailedStatus.INOPERABLE: (
        "a DeleteStackInstances failed and left the stack unstable; AWS excludes it from further "
        "updates. Delete the instance but keep its stack: aws cloudformation delete-stack-instances "
        "--stack-set-name {name} --accounts {account} --regions {region} --retain-stacks --call-as {call_as}; "
        "then delete the retained stack in {account}/{region} by hand, and replctl deploy creates the "
        "instance again"),
    DetailedStatus.FAILED_IMPORT: (
        "importing the stack into the stack set failed and left it unstable; fix the cause shown in "
        "the stack's events, then retry the import (aws cloudformation import-stacks-to-stack-set)"),
    DetailedStatus.SKIPPED_SUSPENDED_ACCOUNT: (
        "AWS skipped it because the account was suspended when the last operation ran. Reopen the "
        "account, then let StackSets reach it again: aws cloudformation update-stack-instances "
        "--stack-set-name {name} --accounts {account} --regions {region} --call-as {call_as}; or "
        "take the account out of the estate file and delete its instance"),
}


def refuse_excluded_instances(sit: Situation) -> None:
    """Refuse (exit 9) when a selected environment has an instance AWS's operations do not reach."""
    lines = []
    for e in sit.selected:
        for key in e.instances():
            inst = sit.by_key.get(key)
            state = excluded_from_updates(inst.status, inst.detailed) if inst else None
            if inst is None or state is None:
                continue
            remedy = REMEDIES[state].format(name=sit.config.stackset.name, account=key[0], region=key[1],
                                            call_as=sit.config.stackset.call_as)
            lines.append(f"  {e.name} {key[0]} {key[1]}: {inst.label()} — {remedy}")
    if lines:
        raise Refused("refusing to deploy: AWS does not update these stack instances:\n" + "\n".join(lines),
                      hint="fix each instance as described, then re-run replctl deploy; nothing was changed")


def refuse_unless_upstream_current(sit: Situation) -> None:
    """`--env X` alone: every upstream environment must be current on the same template."""
    target = sit.selected[0]
    upstream = sit.envs[: sit.envs.index(target)]
    if not upstream:
        return
    reasons: list[str] = []
    if sit.ss is None:
        reasons.append("the stack set does not exist yet")
    elif sit.content_pending:
        what = "template or parameters" if sit.template_changed or sit.params_changed else "settings"
        reasons.append(f"the local {what} differ from the stack set's, so "
                       f"{', '.join(u.name for u in upstream)} {'is' if len(upstream) == 1 else 'are'} "
                       "not on this template")
    for u in upstream:
        if not sit.established[u.name]:
            bad = [f"{a}/{r} {sit.by_key[(a, r)].label() if (a, r) in sit.by_key else 'missing'}"
                   for a, r in u.instances() if not ((a, r) in sit.by_key and sit.by_key[(a, r)].ok)]
            reasons.append(f"{u.name} is not current: {', '.join(bad)}")
    if reasons:
        raise Refused(
            f"refusing to deploy {target.name} on its own: " + "; ".join(reasons),
            hint=f"deploy the upstream environments first (replctl deploy), or pass --force to deploy {target.name} anyway",
        )


# -- preparation ----------------------------------------------------------------------------------


def prepare_steps(sit: Situation) -> tuple[list[Step], list[ArtifactRow], str | None]:
    """Artifact buckets and uploads, the template upload, and the stack set itself."""
    config, template, ss = sit.config, sit.template, sit.ss
    preparation: list[Step] = []
    rows: list[ArtifactRow] = []
    for region in config.regions:
        bucket = artifact_bucket(config, region)
        if bucket not in sit.observed.buckets:
            readers = tuple(a for e in sit.envs if region in e.regions for a in e.account_ids)
            preparation.append(CreateArtifactBucket(region, bucket, readers))
        for a in sit.artifacts:
            key = artifact_key(config, a)
            there = (bucket, key) in sit.observed.objects
            rows.append(ArtifactRow(region, bucket, key, a.function, "present" if there else "upload"))
            if not there:
                preparation.append(UploadArtifact(region, bucket, key, a.function, str(a.path), a.size))
    url = None
    if template.needs_url:
        home = config.stackset.home_region
        bucket = artifact_bucket(config, home)
        key = template_key(config, template)
        url = template_url(bucket, home, key)
        if bucket not in sit.observed.buckets and not any(
                isinstance(s, CreateArtifactBucket) and s.bucket == bucket for s in preparation):
            preparation.append(CreateArtifactBucket(home, bucket, ()))
        if (bucket, key) not in sit.observed.objects and (ss is None or sit.content_pending):
            preparation.append(UploadTemplate(home, bucket, key, template.size))
    if ss is None:
        preparation.append(CreateStackSet(config.stackset.name, config.stackset.permission_model))
    return preparation, rows, url


def reader_grants(sit: Situation, preparation: Sequence[Step], waves: Sequence[Wave]) -> list[Step]:
    """An account added to an environment must be able to read the ZIPs before its instance is
    created (Lambda fetches the code as that account's execution role)."""
    created = {st.bucket for st in preparation if isinstance(st, CreateArtifactBucket)}
    grants: list[Step] = []
    for region in sit.config.regions:
        bucket = artifact_bucket(sit.config, region)
        creating = any(isinstance(st, CreateInstances) and region in st.regions for w in waves for st in w.steps)
        if creating and bucket not in created:
            readers = tuple(a for e in sit.envs if region in e.regions for a in e.account_ids)
            grants.append(GrantArtifactReaders(region, bucket, readers))
    return grants


# -- waves ------------------------------------------------------------------------------------------


def rollout_waves(sit: Situation) -> tuple[list[Wave], dict[Key, str]]:
    """One wave per selected environment: the first carries the stack set change, the rest follow."""
    actions: dict[Key, str] = {}
    waves: list[Wave] = []
    applied_here = False  # UpdateStackSet is in this plan: every later instance will be OUTDATED
    for e in sit.selected:
        if sit.content_pending and not applied_here:
            steps = first_wave(sit, e, actions)
            applied_here = True
        else:
            steps = later_wave(sit, e, applied_here, actions)
        waves.append(Wave(e.name, "rollout", tuple(steps)))
    return waves, actions


def _creates(e: Environment, targets: Sequence[Key], values: Mapping[str, Mapping[str, str]]) -> list[Step]:
    return [CreateInstances(e.name, a, r, v, e.organizational_unit_id)
            for a, r, v in groups(targets, lambda k: params(values[k[1]]))]


def _override_updates(e: Environment, targets: Sequence[Key], values: Mapping[Key, Mapping[str, str]],
                      why: str) -> list[Step]:
    return [UpdateOverrides(e.name, a, r, v, why, e.organizational_unit_id)
            for a, r, v in groups(targets, lambda k: params(values[k]))]


def first_wave(sit: Situation, e: Environment, actions: dict[Key, str]) -> list[Step]:
    """The environment that carries the change: UpdateStackSet limited to its instances."""
    ss, ou = sit.ss, e.organizational_unit_id
    assert ss is not None
    keys = list(e.instances())
    existing = [k for k in keys if k in sit.by_key]
    missing = [k for k in keys if k not in sit.by_key]
    interim = sit.interim(e)
    actions.update({k: "create" for k in missing})
    if not sit.observed.instances:
        # No instance anywhere: an UpdateStackSet without accounts touches nothing.
        return [UpdateStackSet(e.name, (), (), ou), *_creates(e, missing, interim)]
    steps: list[Step] = []
    now = {k: sit.current(k) for k in existing}
    # Overrides of parameters the new template drops go first: the stack set update keeps an
    # instance's overrides (UpdateStackInstances: they "retain their overridden value").
    stale = [k for k in existing if set(now[k]) - set(sit.template.parameters)]
    now.update({k: {p: v for p, v in now[k].items() if p in sit.template.parameters} for k in stale})
    steps += _override_updates(e, stale, now, "drop overrides of removed parameters")
    if missing:
        # Created with the stack set's current template first, so the UpdateStackSet below names
        # only instances that exist; they can override only parameters the stack set has now.
        old = {k for k, _ in ss.parameters}
        restricted = {r: {p: v for p, v in interim[r].items() if p in old} for r in e.regions}
        steps += _creates(e, missing, restricted)
        now.update({k: restricted[k[1]] for k in missing})
    steps.append(UpdateStackSet(e.name, tuple(e.account_ids), tuple(e.regions), ou))
    differing = [k for k in keys if now[k] != interim[k[1]]]
    steps += _override_updates(e, differing, {k: interim[k[1]] for k in keys}, "per-environment values")
    actions.update({k: "update" for k in existing})
    return steps


def later_wave(sit: Situation, e: Environment, applied_here: bool, actions: dict[Key, str]) -> list[Step]:
    """Create what is missing; bring what is behind to the stack set's template with
    UpdateStackInstances and the complete override list; update overrides that differ."""
    keys = list(e.instances())
    existing = [k for k in keys if k in sit.by_key]
    missing = [k for k in keys if k not in sit.by_key]
    interim = sit.interim(e)
    wanted = {k: interim[k[1]] for k in keys}
    steps = _creates(e, missing, interim)
    actions.update({k: "create" for k in missing})
    behind = [k for k in existing if applied_here or not sit.by_key[k].ok]
    added = sit.added_parameters() if applied_here else None
    lacking = {k: _not_declared_yet(set(wanted[k]) - set(sit.current(k)), added) for k in behind}
    first = {k: {p: v for p, v in wanted[k].items() if p not in lacking[k]} for k in behind}
    steps += [BringForward(e.name, a, r, v, e.organizational_unit_id)
              for a, r, v in groups(behind, lambda k: params(first[k]))]
    steps += _override_updates(e, [k for k in behind if lacking[k]], wanted, "override parameters the new template adds")
    actions.update({k: "bring forward" for k in behind})
    differing = [k for k in existing if k not in behind and sit.current(k) != wanted[k]]
    steps += _override_updates(e, differing, wanted, "per-environment values")
    for k in differing:
        actions.setdefault(k, "update overrides")
    return steps


def _not_declared_yet(newly_overridden: set[str], added: frozenset[str] | None) -> frozenset[str]:
    """Which newly overridden parameters the instance's stack may not declare yet: an override of
    one waits until the bring-forward has deployed the template that adds it. `added` is None when
    resuming: which template an OUTDATED instance runs is unknown, so every new override waits."""
    return frozenset(newly_overridden if added is None else newly_overridden & added)


def wiring_waves(sit: Situation, actions: dict[Key, str]) -> list[Wave]:
    """Switch on replication towards environments this rollout brought up, after all of them."""
    waves: list[Wave] = []
    for e in sit.selected:
        before, after = sit.flags(e, final=False), sit.flags(e, final=True)
        if before == after:
            continue
        targets = [d for d in sit.envs if before.get(flag_parameter(d.name)) != after.get(flag_parameter(d.name))]
        final = {k: sit.overrides(e, k[1], after) for k in e.instances()}
        why = "enable replication to " + ", ".join(d.name for d in targets)
        waves.append(Wave(e.name, "wiring", tuple(_override_updates(e, list(e.instances()), final, why))))
        for k in e.instances():
            actions.setdefault(k, "update overrides")
    return waves


# -- what the plan shows ------------------------------------------------------------------------


def parameter_changes(sit: Situation, sensitive: frozenset[str]) -> tuple[ParameterChange, ...]:
    """Stack-set parameters and each selected environment's overrides, before → after."""

    def change(scope: str, name: str, b: str | None, a: str | None, note: str = "") -> ParameterChange:
        if name in sensitive:
            return ParameterChange(scope, name, None if b is None else HIDDEN, None if a is None else HIDDEN,
                                   "sensitive: value not shown")
        return ParameterChange(scope, name, b, a, note)

    changes: list[ParameterChange] = []
    ss = sit.ss
    before_ss = dict(ss.parameters) if ss is not None else {}
    if ss is None or sit.template_changed or sit.params_changed:
        for name in sorted(set(before_ss) | set(sit.desired)):
            b, a = before_ss.get(name), sit.desired.get(name)
            if b != a:
                changes.append(change("stack set", name, b, a))
    for e in sit.envs:
        if e.name not in sit.selected_names:
            continue
        final = {r: sit.overrides(e, r, sit.flags(e, final=True)) for r in e.regions}
        interim = sit.interim(e)
        names = sorted({p for k in e.instances() if k in sit.by_key for p in sit.current(k)}
                       | {p for v in final.values() for p in v})
        for name in names:
            befores = {sit.current(k).get(name) if k in sit.by_key else None for k in e.instances()}
            afters = {final[r].get(name) for r in e.regions}
            b = befores.pop() if len(befores) == 1 else "(mixed)"
            a = afters.pop() if len(afters) == 1 else "(per region)"
            if b != a:
                note = "" if {interim[r].get(name) for r in e.regions} == {a} else "switched on after its target exists"
                changes.append(change(e.name, name, b, a, note))
    return tuple(changes)


def instance_rows(sit: Situation, actions: Mapping[Key, str]) -> tuple[InstanceRow, ...]:
    rows: list[InstanceRow] = []
    for e in sit.envs:
        for k in e.instances():
            inst = sit.by_key.get(k)
            action = actions.get(k, "none") if e.name in sit.selected_names else "not selected"
            rows.append(InstanceRow(e.name, k[0], k[1], inst.label() if inst else "missing", action,
                                    inst.reason if inst else None))
    return tuple(rows)


def notes(sit: Situation) -> tuple[str, ...]:
    out: list[str] = []
    ours = {k for e in sit.envs for k in e.instances()}
    for i in sit.observed.instances:
        if i.key not in ours:
            out.append(f"instance {i.account}/{i.region} is not in {sit.config.path.name}; replctl leaves it alone")
    ss, model = sit.ss, sit.config.stackset.permission_model
    if ss is not None and ss.permission_model and ss.permission_model != model:
        out.append(f"the stack set is {ss.permission_model} but the config says {model}; "
                   "replctl does not change the permission model")
    running = sit.observed.running
    if running:
        out.append(f"operation{'s' if len(running) > 1 else ''} {', '.join(running)} "
                   "still running; deploy waits for it before planning")
    return tuple(out)


def template_diff(sit: Situation) -> str:
    ss = sit.ss
    if ss is not None and not sit.template_changed:
        return ""
    return "".join(difflib.unified_diff(
        (ss.template_body if ss else "").splitlines(keepends=True),
        sit.template.text.splitlines(keepends=True),
        fromfile=f"stack set {sit.config.stackset.name}" if ss else "/dev/null",
        tofile=str(sit.config.stackset.template),
    ))


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
