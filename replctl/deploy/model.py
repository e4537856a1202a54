"""The plan as a value: the steps (frozen dataclasses), the waves, the `Plan`, and what is deployed.

Nothing here reads AWS or decides anything. `observe` builds `Observed` from read calls,
`decide` turns it into a `Plan`, `rollout.apply` dispatches on the steps with `match`, and the
commands render the same value for `plan`, `deploy --dry-run` and `deploy`. `Clients` is the
seam through which planning and rollout reach AWS (built from the factory, or fakes in tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from replctl.config import Config
from replctl.statuses import DetailedStatus, InstanceStatus, instance_ok

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
    # (service, account, region) -> a client as the observer role: planning looks for data a
    # destroy retained where instances are to be created. None: not looked for (fakes without it).
    observer: Callable[[str, str, str], Any] | None = None
    #: Where waits listen for StackSet events (a `replctl.deploy.queue.EventQueue`); None: poll only.
    events: Any = None

    @classmethod
    def from_factory(cls, factory: Any, config: Config) -> Clients:
        from replctl.deploy.queue import EventQueue  # the queue is looked up only when a wait needs it

        home = config.stackset.home_region

        def observer(service: str, account: str, region: str) -> Any:
            role = f"arn:aws:iam::{account}:role/replctl/{config.observer_role_name}"
            return factory.client(service, region=region, account=account, role_arn=role)

        return cls(
            cfn=factory.client("cloudformation", region=home),
            s3=lambda region: factory.client("s3", region=region),
            cloudwatch=lambda account, region: observer("cloudwatch", account, region),
            observer=observer,
            events=EventQueue.for_config(lambda: factory.client("sqs", region=home), config),
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
    # Data a destroy retained where an instance is missing: (environment, account, region, kind, name).
    retained: tuple[tuple[str, str, str, str, str], ...] = ()


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


@dataclass(frozen=True)
class DeleteInstances:
    """DeleteStackInstances of the named instances, their stacks deleted (`destroy`). Resources
    with DeletionPolicy Retain (the buckets and tables) outlive their stacks."""

    environment: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    organizational_unit: str | None = None


@dataclass(frozen=True)
class DeleteStackSet:
    """DeleteStackSet, once it has no instance left (`destroy` of the whole estate)."""

    name: str


Step = (CreateArtifactBucket | GrantArtifactReaders | UploadArtifact | UploadTemplate | CreateStackSet
        | UpdateStackSet | BringForward | CreateInstances | UpdateOverrides | DeleteInstances | DeleteStackSet)
OperationStep = UpdateStackSet | BringForward | CreateInstances | UpdateOverrides | DeleteInstances


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
        case DeleteInstances(environment=e, accounts=a, regions=r):
            return f"{e}: delete the stack instances in {_targets(a, r)} (their stacks; retained data stays)"
        case DeleteStackSet(name=n):
            return f"delete stack set {n} (it has no instance left)"
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
        case DeleteInstances():
            return "DeleteStackInstances"
        case DeleteStackSet():
            return "DeleteStackSet"
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
