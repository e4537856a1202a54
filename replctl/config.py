"""Strict loading of environments.yaml into frozen dataclasses.

The file describes a regulated estate, so a typo must never turn into a silent default:
unknown keys are errors (with a did-you-mean), account ids must be quoted 12-digit strings
(an unquoted number may have lost a leading zero), and *every* problem is reported at once,
each with its YAML path and line. The YAML is walked as a node tree (not loaded into dicts
first) so every value keeps its line, duplicate keys are caught, and the original text of an
unquoted number can be quoted back in the message. After loading, no code touches raw dicts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from replctl.errors import ConfigError

ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
STACKSET_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
PARAM_NAME_RE = re.compile(r"^[A-Za-z0-9]{1,255}$")
OU_RE = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
BUCKET_TEMPLATE_RE = re.compile(r"^[a-z0-9{][a-z0-9.{}_-]{1,120}[a-z0-9}]$")
SSM_PREFIX_RE = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")

#: The environments the template knows, in the only order replication may flow.
KNOWN_ENVIRONMENTS = ("dev", "staging", "prod")

#: Template parameters replctl computes itself; setting them in the file is an error.
RESERVED_PARAMETERS = frozenset(
    {
        "Environment",
        "AccountIdDev",
        "AccountIdStaging",
        "AccountIdProd",
        "AdminAccountId",
        "SSMPathPrefix",
        "ArtifactBucketName",
        "ReplicationMonitorCodeKey",
        "ConfigValidatorCodeKey",
        "StreamProcessorCodeKey",
        "ReplicateToStaging",
        "ReplicateToProd",
        "ObserverRoleName",
    }
)

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"


# --------------------------------------------------------------------------- the values


@dataclass(frozen=True)
class OperationPreferences:
    """StackSetOperationPreferences, as the config states them."""

    failure_tolerance_count: int | None = 0
    failure_tolerance_percentage: int | None = None
    max_concurrent_count: int | None = 1
    max_concurrent_percentage: int | None = None
    region_concurrency_type: str = "SEQUENTIAL"
    region_order: tuple[str, ...] = ()
    concurrency_mode: str = "STRICT_FAILURE_TOLERANCE"

    def to_api(self, regions: Sequence[str] | None = None) -> dict[str, Any]:
        """The `OperationPreferences` argument of the StackSet APIs."""
        prefs: dict[str, Any] = {
            "RegionConcurrencyType": self.region_concurrency_type,
            "ConcurrencyMode": self.concurrency_mode,
        }
        if self.failure_tolerance_percentage is not None:
            prefs["FailureTolerancePercentage"] = self.failure_tolerance_percentage
        else:
            prefs["FailureToleranceCount"] = self.failure_tolerance_count or 0
        if self.max_concurrent_percentage is not None:
            prefs["MaxConcurrentPercentage"] = self.max_concurrent_percentage
        else:
            prefs["MaxConcurrentCount"] = self.max_concurrent_count or 1
        order = [r for r in self.region_order if regions is None or r in regions]
        if order:
            prefs["RegionOrder"] = order
        return prefs


#: How replctl waits on a StackSet operation: by the bootstrap's event queue when it is there
#: (auto), always by it (events: a missing queue is an error), or by polling only (poll).
WAIT_MODES = ("auto", "events", "poll")


@dataclass(frozen=True)
class WaitSettings:
    """How replctl waits on long-running operations: by event, or polling with backoff from initial to max."""

    initial_interval_seconds: float = 2.0
    max_interval_seconds: float = 20.0
    timeout_seconds: float = 3600.0
    mode: str = "auto"
    #: Waiting by event, one read of the operation this often even without an event (a lost or late event).
    safety_poll_seconds: float = 60.0


@dataclass(frozen=True)
class StackSetSettings:
    """The StackSet: name, template, permission model and how it is operated."""

    name: str
    template: Path
    home_region: str
    permission_model: str = "SELF_MANAGED"
    #: CallAs on every StackSets call: SELF from the management (or self-managed admin) account,
    #: DELEGATED_ADMIN from a delegated administrator of a SERVICE_MANAGED stack set.
    call_as: str = "SELF"
    administration_role_name: str = "AWSCloudFormationStackSetAdministrationRole"
    execution_role_name: str = "AWSCloudFormationStackSetExecutionRole"
    artifact_bucket: str = "replctl-artifacts-{account_id}-{region}"
    artifact_prefix: str = "replctl/"
    managed_execution: bool = True
    operation_preferences: OperationPreferences = field(default_factory=OperationPreferences)
    wait: WaitSettings = field(default_factory=WaitSettings)

    def artifact_bucket_for(self, account_id: str, region: str) -> str:
        """Name of the artifact bucket in `region` (one per region the functions run in)."""
        return self.artifact_bucket.format(account_id=account_id, region=region)

    def administration_role_arn(self, admin_account_id: str) -> str:
        return f"arn:aws:iam::{admin_account_id}:role/{self.administration_role_name}"

    @property
    def event_queue_name(self) -> str | None:
        """The SQS queue cfn/stackset-administration-role.yaml routes this stack set's events to.

        None when the name cannot be one: a queue name has at most 80 characters (SQS API
        reference, CreateQueue QueueName), so the stack set's name at most 73.
        """
        name = f"{self.name}-events"
        return name if len(name) <= 80 else None


@dataclass(frozen=True)
class Admin:
    """The StackSet administration account replctl operates from."""

    account_id: str
    role_arn: str | None = None


@dataclass(frozen=True)
class Gate:
    """What must hold in an environment before the next one starts."""

    alarms: bool = True
    wait_seconds: float = 0.0


@dataclass(frozen=True)
class Thresholds:
    """Bounds `status` judges against."""

    metadata_lag_seconds: float = 1.0
    s3_latency_seconds: float = 900.0
    heartbeat_max_age_seconds: float = 900.0
    validation_max_age_seconds: float = 7200.0
    lookback_minutes: int = 30


@dataclass(frozen=True)
class Environment:
    """One environment: its accounts, regions, SSM hierarchy and parameter overrides."""

    name: str
    account_ids: tuple[str, ...]
    regions: tuple[str, ...]
    ssm_path: str
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    gate: Gate = field(default_factory=Gate)
    organizational_unit_id: str | None = None
    line: int = 0

    @property
    def account_id(self) -> str:
        """The environment's primary account (the one the template's AccountId* names)."""
        return self.account_ids[0]

    def instances(self) -> tuple[tuple[str, str], ...]:
        """Every (account, region) stack instance of this environment, in a stable order."""
        return tuple((a, r) for a in self.account_ids for r in self.regions)


@dataclass(frozen=True)
class Config:
    """The whole estate, validated."""

    path: Path
    version: int
    admin: Admin
    stackset: StackSetSettings
    ssm_prefix: str
    environments: tuple[Environment, ...]
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    thresholds: Thresholds = field(default_factory=Thresholds)
    observer_role_name: str = "replctl-observer"
    # The role `destroy --delete-data` assumes in each target account (cfn/stackset-execution-role.yaml).
    data_remover_role_name: str = "replctl-data-remover"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.environments)

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise unknown_environment(name, self.names)

    def select(self, names: Sequence[str] | None) -> tuple[Environment, ...]:
        """The named environments in rollout order (all when `names` is empty)."""
        if not names:
            return self.environments
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise unknown_environment(unknown[0], self.names)
        return tuple(e for e in self.environments if e.name in names)

    def environment_of_account(self, account_id: str) -> Environment | None:
        for env in self.environments:
            if account_id in env.account_ids:
                return env
        return None

    def replica_regions(self, env: Environment, region: str) -> list[str]:
        """The DR regions of `env`'s metadata table (its ExtraReplicaRegions override, else the
        estate's), without `region`, where the instance itself runs."""
        value = env.parameters.get("ExtraReplicaRegions", self.parameters.get("ExtraReplicaRegions", ""))
        return [r.strip() for r in value.split(",") if r.strip() and r.strip() != region]

    @property
    def regions(self) -> tuple[str, ...]:
        """Every region any environment runs in, in first-seen order."""
        seen: dict[str, None] = {}
        for env in self.environments:
            for r in env.regions:
                seen.setdefault(r, None)
        return tuple(seen)


def unknown_environment(name: str, valid: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown environment '{name}' (valid: {', '.join(valid)}).{hint}")


# --------------------------------------------------------------------------- the loader


@dataclass(order=True, frozen=True)
class Problem:
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = self.path or "top level"
        return f"{where} (line {self.line}): {self.message}" if self.line else f"{where}: {self.message}"


class _Checker:
    """Walks the YAML node tree, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, node: yaml.Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(Problem(line, path, message))

    # -- shapes -------------------------------------------------------------------------

    def mapping(
        self,
        node: yaml.Node,
        path: str,
        required: Sequence[str],
        optional: Sequence[str],
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """Check a mapping's keys; return {key: (key_node, value_node)} or None if not a mapping."""
        if not isinstance(node, yaml.MappingNode):
            self.add(node, path, f"must be a mapping, not {_kind(node)}")
            return None
        allowed = list(required) + list(optional)
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                self.add(key_node, path, "keys must be plain strings")
                continue
            sub = _join(path, key)
            if key in out:
                self.add(key_node, sub, f"duplicate key (first at line {out[key][0].start_mark.line + 1})")
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(sorted(allowed))})"
                self.add(key_node, sub, f"unknown key '{key}'{hint}")
                continue
            out[key] = (key_node, value_node)
        for key in required:
            if key not in out:
                self.add(node, path, f"missing required key '{key}'")
        return out

    def string(self, node: yaml.Node, path: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            self.add(node, path, f"must be a string, not {_kind(node)}")
            return None
        if pattern is not None and not pattern.match(node.value):
            self.add(node, path, f"'{node.value}' is not {what or 'valid'}")
            return None
        return node.value

    def account(self, node: yaml.Node, path: str) -> str | None:
        # An unquoted all-digit scalar is a number to YAML (or, with digits 8/9 after a leading
        # zero, a string only by accident): either way, require quotes.
        unquoted_digits = (isinstance(node, yaml.ScalarNode) and node.style is None
                           and node.value.replace("_", "").isdigit())
        if isinstance(node, yaml.ScalarNode) and (node.tag in (_INT, _FLOAT) or unquoted_digits):
            self.add(
                node,
                path,
                f"must be a 12-digit string in quotes; YAML read the unquoted {node.value} as a number "
                f"(which drops leading zeros): write \"{node.value}\"",
            )
            return None
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            self.add(node, path, f"must be a 12-digit string, not {_kind(node)}")
            return None
        if not ACCOUNT_RE.match(node.value):
            detail = "non-digits" if not node.value.isdigit() else f"{len(node.value)} digits"
            self.add(node, path, f"must be a 12-digit string ('{node.value}' has {detail})")
            return None
        return node.value

    def region(self, node: yaml.Node, path: str) -> str | None:
        return self.string(node, path, REGION_RE, "a region name like 'us-east-1'")

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL:
            return bool(yaml.safe_load(node.value))
        self.add(node, path, f"must be true or false, not {_kind(node)}")
        return None

    def number(
        self, node: yaml.Node, path: str, *, integer: bool = False, minimum: float | None = None,
        maximum: float | None = None,
    ) -> float | int | None:
        tags = (_INT,) if integer else (_INT, _FLOAT)
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            self.add(node, path, f"must be {'an integer' if integer else 'a number'}, not {_kind(node)}")
            return None
        value = yaml.safe_load(node.value)
        if minimum is not None and value < minimum:
            self.add(node, path, f"must be at least {minimum:g}, not {value}")
            return None
        if maximum is not None and value > maximum:
            self.add(node, path, f"must be at most {maximum:g}, not {value}")
            return None
        return value

    def choice(self, node: yaml.Node, path: str, choices: Sequence[str]) -> str | None:
        value = self.string(node, path)
        if value is None:
            return None
        if value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self.add(node, path, f"'{value}' is not one of {', '.join(choices)}{hint}")
            return None
        return value

    def sequence(self, node: yaml.Node, path: str, *, non_empty: bool = True) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, path, f"must be a list, not {_kind(node)}")
            return None
        if non_empty and not node.value:
            self.add(node, path, "must not be empty")
            return None
        return list(node.value)

    def parameters(self, node: yaml.Node, path: str) -> dict[str, str]:
        """A map of template parameter name -> value; scalars become CloudFormation strings."""
        out: dict[str, str] = {}
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return out
        if not isinstance(node, yaml.MappingNode):
            self.add(node, path, f"must be a mapping of parameter name to value, not {_kind(node)}")
            return out
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else ""
            sub = _join(path, str(name))
            if name in seen:
                self.add(key_node, sub, f"duplicate key (first at line {seen[name]})")
                continue
            seen[name] = key_node.start_mark.line + 1
            if not PARAM_NAME_RE.match(str(name)):
                self.add(key_node, sub, "parameter names are letters and digits only")
                continue
            if name in RESERVED_PARAMETERS:
                self.add(key_node, sub, f"'{name}' is set by replctl and cannot be configured")
                continue
            if not isinstance(value_node, yaml.ScalarNode) or value_node.tag == _NULL:
                self.add(value_node, sub, f"must be a single value, not {_kind(value_node)}")
                continue
            if value_node.tag == _BOOL:
                out[name] = "true" if yaml.safe_load(value_node.value) else "false"
            else:
                out[name] = value_node.value
        return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(node: yaml.Node | None) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {
        _INT: f"the number {node.value}",
        _FLOAT: f"the number {node.value}",
        _BOOL: f"the boolean {node.value}",
        _NULL: "an empty value",
        _STR: f"the string '{node.value}'",
    }.get(node.tag, f"a {node.tag} value")


#: An estate file is a few kilobytes; anything this large is the wrong file (or /dev/zero).
MAX_CONFIG_BYTES = 1024 * 1024


def load_config(path: str | Path) -> Config:
    """Read and validate `path`; raise ConfigError listing every problem."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            # Read at most one byte past the limit: a huge file or an endless device is refused
            # without loading it.
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: no such file", hint="pass --config PATH, or run from the directory holding environments.yaml"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not an estate file", hint="pass --config PATH/environments.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: larger than {MAX_CONFIG_BYTES // 1024} KiB; an estate file is a few kilobytes",
                          hint="check that --config names environments.yaml")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}: {exc.reason})",
                          hint="save the file as UTF-8") from None
    return parse_config(text, p)


def parse_config(text: str, path: Path) -> Config:
    """Validate the YAML text of an estate file (path is used for messages and relative paths)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{line}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:  # e.g. multiple documents
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
        raise ConfigError(f"{path}: the file is empty", hint="start from the example environments.yaml")
    c = _Checker()
    config = _build(c, root, path)
    if c.problems or config is None:
        problems = tuple(str(p) for p in sorted(set(c.problems)))
        n = len(problems)
        raise ConfigError(f"{path}: {n} problem{'s' if n != 1 else ''} found", problems)
    return config


_TOP_REQUIRED = ("version", "admin", "stackset", "ssm_prefix", "environments")
_TOP_OPTIONAL = ("observer_role_name", "data_remover_role_name", "parameters", "thresholds")


def _build(c: _Checker, root: yaml.Node, path: Path) -> Config | None:
    keys = c.mapping(root, "", _TOP_REQUIRED, _TOP_OPTIONAL)
    if keys is None:
        return None

    def get(name: str, fn: Callable[[yaml.Node, str], Any], default: Any = None) -> Any:
        return fn(keys[name][1], name) if name in keys else default

    version = get("version", lambda n, p: c.number(n, p, integer=True))
    if version is not None and version != 1:
        c.add(keys["version"][1], "version", f"version {version} is not supported (this replctl reads version 1)")
    admin = get("admin", lambda n, p: _admin(c, n, p))
    stackset = get("stackset", lambda n, p: _stackset(c, n, p, path))
    ssm_prefix = get("ssm_prefix", lambda n, p: c.string(n, p, SSM_PREFIX_RE, "a path like '/app'"))
    observer = get("observer_role_name", lambda n, p: c.string(n, p, ROLE_NAME_RE, "a valid IAM role name"),
                   "replctl-observer")
    remover = get("data_remover_role_name", lambda n, p: c.string(n, p, ROLE_NAME_RE, "a valid IAM role name"),
                  "replctl-data-remover")
    parameters = get("parameters", c.parameters, {})
    thresholds = get("thresholds", lambda n, p: _thresholds(c, n, p), Thresholds())
    envs = get("environments", lambda n, p: _environments(c, n, p, ssm_prefix), ())

    if admin is not None and envs:
        for env in envs:
            if admin.account_id in env.account_ids:
                c.problems.append(Problem(env.line, f"environments[{envs.index(env)}]",
                                          f"account {admin.account_id} is the admin account; "
                                          "environments must use their own accounts"))
    if envs:
        _same_regions(c, envs)
    if stackset is not None and stackset.permission_model == "SERVICE_MANAGED":
        for i, env in enumerate(envs):
            if env.organizational_unit_id is None:
                c.problems.append(Problem(env.line, f"environments[{i}]",
                                          "SERVICE_MANAGED stack sets deploy to OUs: set organizational_unit_id"))
    if None in (version, admin, stackset, ssm_prefix, observer, remover, thresholds) or not envs:
        return None
    return Config(
        path=path,
        version=version,
        admin=admin,
        stackset=stackset,
        ssm_prefix=ssm_prefix,
        environments=tuple(envs),
        parameters=MappingProxyType(parameters),
        thresholds=thresholds,
        observer_role_name=observer,
        data_remover_role_name=remover,
    )


def _same_regions(c: _Checker, envs: list[Environment]) -> None:
    """Every environment runs in every region of the environments before it. A function reaches the
    downstream account in its own region (it assumes the agent role there and writes that region's
    table and hierarchy), and the agent role of region r trusts only the upstream function roles of
    region r (their names end in the region): a downstream environment missing an upstream region
    would make every replication and mirror from that region fail, silently until the alarms fire."""
    for i, env in enumerate(envs[1:], start=1):
        upstream = {r: e.name for e in envs[:i] for r in e.regions}
        missing = sorted(r for r in upstream if r not in env.regions)
        if missing:
            where = ", ".join(f"{r} (where {upstream[r]} runs)" for r in missing)
            c.problems.append(Problem(env.line, f"environments[{i}].regions",
                                      f"{env.name} must also run in {where}: an environment's functions replicate "
                                      "and mirror into each downstream environment in their own region"))


def _admin(c: _Checker, node: yaml.Node, path: str) -> Admin | None:
    keys = c.mapping(node, path, ("account_id",), ("role_arn",))
    if keys is None:
        return None
    account = c.account(keys["account_id"][1], f"{path}.account_id") if "account_id" in keys else None
    role_arn = None
    if "role_arn" in keys:
        role_arn = c.string(keys["role_arn"][1], f"{path}.role_arn", ROLE_ARN_RE,
                            "an IAM role ARN like arn:aws:iam::123456789012:role/name")
        if role_arn is None:
            return None
    return Admin(account, role_arn) if account else None


_STACKSET_REQUIRED = ("name", "home_region", "artifact_bucket")
_STACKSET_OPTIONAL = (
    "template", "permission_model", "administration_role_name", "execution_role_name", "artifact_prefix",
    "managed_execution", "operation_preferences", "wait", "call_as",
)


def _stackset(c: _Checker, node: yaml.Node, path: str, config_path: Path) -> StackSetSettings | None:
    keys = c.mapping(node, path, _STACKSET_REQUIRED, _STACKSET_OPTIONAL)
    if keys is None:
        return None
    before = len(c.problems)
    values: dict[str, Any] = {}

    def val(key: str) -> yaml.Node:
        return keys[key][1]

    if "name" in keys:
        values["name"] = c.string(val("name"), f"{path}.name", STACKSET_NAME_RE,
                                  "a StackSet name (a letter, then letters, digits or hyphens; at most 128)")
    if "template" in keys:
        t = c.string(val("template"), f"{path}.template")
        if t is not None:
            tp = (config_path.parent / t) if not Path(t).is_absolute() else Path(t)
            if not tp.is_file():
                c.add(val("template"), f"{path}.template", f"no template file at {tp}")
            values["template"] = tp
    else:
        from replctl.resources import bundle

        values["template"] = bundle().template  # the template this replctl was built with
    if "home_region" in keys:
        values["home_region"] = c.region(val("home_region"), f"{path}.home_region")
    if "artifact_bucket" in keys:
        b = c.string(val("artifact_bucket"), f"{path}.artifact_bucket", BUCKET_TEMPLATE_RE,
                     "a bucket name (lower case; may use {account_id} and {region})")
        if b is not None:
            try:
                b.format(account_id="0" * 12, region="us-east-1")
            except (KeyError, IndexError, ValueError):
                c.add(val("artifact_bucket"), f"{path}.artifact_bucket",
                      "only {account_id} and {region} may be used as placeholders")
        values["artifact_bucket"] = b
    if "permission_model" in keys:
        values["permission_model"] = c.choice(val("permission_model"), f"{path}.permission_model",
                                              ("SELF_MANAGED", "SERVICE_MANAGED"))
    if "call_as" in keys:
        values["call_as"] = c.choice(val("call_as"), f"{path}.call_as", ("SELF", "DELEGATED_ADMIN"))
        if values["call_as"] == "DELEGATED_ADMIN" and values.get("permission_model", "SELF_MANAGED") != "SERVICE_MANAGED":
            # CallAs (API reference): "Use SELF for StackSets with self-managed permissions."
            c.add(val("call_as"), f"{path}.call_as", "DELEGATED_ADMIN applies to SERVICE_MANAGED stack sets only; "
                  "a SELF_MANAGED stack set is called as SELF")
    for key in ("administration_role_name", "execution_role_name"):
        if key in keys:
            values[key] = c.string(val(key), f"{path}.{key}", ROLE_NAME_RE, "a valid IAM role name")
    if "artifact_prefix" in keys:
        prefix = c.string(val("artifact_prefix"), f"{path}.artifact_prefix")
        if prefix is not None and (prefix.startswith("/") or (prefix and not prefix.endswith("/"))):
            c.add(val("artifact_prefix"), f"{path}.artifact_prefix", "must not start with '/' and must end with '/'")
        values["artifact_prefix"] = prefix
    if "managed_execution" in keys:
        values["managed_execution"] = c.boolean(val("managed_execution"), f"{path}.managed_execution")
    if "operation_preferences" in keys:
        values["operation_preferences"] = _preferences(c, val("operation_preferences"),
                                                       f"{path}.operation_preferences")
    if "wait" in keys:
        values["wait"] = _wait(c, val("wait"), f"{path}.wait")
        if values["wait"] is not None and values["wait"].mode == "events" and len(values.get("name") or "") > 73:
            c.add(val("wait"), f"{path}.wait.mode", "events needs a stack set name of at most 73 characters "
                  "(its queue is <name>-events, and an SQS queue name has at most 80); use auto or poll")
    if len(c.problems) > before or any(v is None for v in values.values()):
        return None
    if any(k not in values for k in _STACKSET_REQUIRED):
        return None
    return StackSetSettings(**values)


def _preferences(c: _Checker, node: yaml.Node, path: str) -> OperationPreferences | None:
    keys = c.mapping(node, path, (), (
        "failure_tolerance_count", "failure_tolerance_percentage", "max_concurrent_count",
        "max_concurrent_percentage", "region_concurrency_type", "region_order", "concurrency_mode",
    ))
    if keys is None:
        return None
    before = len(c.problems)
    v: dict[str, Any] = {}
    if "failure_tolerance_count" in keys and "failure_tolerance_percentage" in keys:
        c.add(node, path, "set failure_tolerance_count or failure_tolerance_percentage, not both")
    if "max_concurrent_count" in keys and "max_concurrent_percentage" in keys:
        c.add(node, path, "set max_concurrent_count or max_concurrent_percentage, not both")
    for key, lo, hi in (("failure_tolerance_count", 0, None), ("failure_tolerance_percentage", 0, 100),
                        ("max_concurrent_count", 1, None), ("max_concurrent_percentage", 1, 100)):
        if key in keys:
            v[key] = c.number(keys[key][1], f"{path}.{key}", integer=True, minimum=lo, maximum=hi)
    if "failure_tolerance_percentage" in v:
        v["failure_tolerance_count"] = None
    if "max_concurrent_percentage" in v:
        v["max_concurrent_count"] = None
    if "region_concurrency_type" in keys:
        v["region_concurrency_type"] = c.choice(keys["region_concurrency_type"][1],
                                                f"{path}.region_concurrency_type", ("SEQUENTIAL", "PARALLEL"))
    if "concurrency_mode" in keys:
        v["concurrency_mode"] = c.choice(keys["concurrency_mode"][1], f"{path}.concurrency_mode",
                                         ("STRICT_FAILURE_TOLERANCE", "SOFT_FAILURE_TOLERANCE"))
    if "region_order" in keys:
        items = c.sequence(keys["region_order"][1], f"{path}.region_order")
        if items is not None:
            v["region_order"] = tuple(c.region(n, f"{path}.region_order[{i}]") for i, n in enumerate(items))
    if len(c.problems) > before:
        return None
    prefs = OperationPreferences(**v)
    _strict_concurrency(c, keys, path, prefs)
    return prefs


def _strict_concurrency(c: _Checker, keys: dict[str, Any], path: str, prefs: OperationPreferences) -> None:
    """STRICT_FAILURE_TOLERANCE (the default) never runs more than failure_tolerance_count + 1 accounts
    at once: "The initial actual concurrency is set to the lower of either the value of the
    MaxConcurrentCount, or the value of FailureToleranceCount +1" (CloudFormation API reference,
    StackSetOperationPreferences). A larger max_concurrent_count would silently not apply."""
    if prefs.concurrency_mode != "STRICT_FAILURE_TOLERANCE":
        return
    if prefs.max_concurrent_count is None or prefs.failure_tolerance_count is None:
        return  # percentages: the bound depends on the number of accounts
    if prefs.max_concurrent_count > prefs.failure_tolerance_count + 1:
        node = keys["max_concurrent_count"][1]
        c.add(node, f"{path}.max_concurrent_count",
              f"{prefs.max_concurrent_count} is more than failure_tolerance_count + 1 "
              f"({prefs.failure_tolerance_count + 1}); with concurrency_mode STRICT_FAILURE_TOLERANCE (the "
              "default) StackSets never runs more accounts at once: raise failure_tolerance_count, lower "
              "max_concurrent_count, or set concurrency_mode: SOFT_FAILURE_TOLERANCE")


def _wait(c: _Checker, node: yaml.Node, path: str) -> WaitSettings | None:
    keys = c.mapping(node, path, (), ("initial_interval_seconds", "max_interval_seconds", "timeout_seconds",
                                      "mode", "safety_poll_seconds"))
    if keys is None:
        return None
    before = len(c.problems)
    v: dict[str, Any] = {k: c.number(keys[k][1], f"{path}.{k}", minimum=0.01) for k in keys
                         if k not in ("mode", "safety_poll_seconds")}
    if "mode" in keys:
        v["mode"] = c.choice(keys["mode"][1], f"{path}.mode", WAIT_MODES)
    if "safety_poll_seconds" in keys:
        # SQS long polls in whole seconds (ReceiveMessage WaitTimeSeconds), so a shorter safety
        # interval would only turn the event path into polling.
        v["safety_poll_seconds"] = c.number(keys["safety_poll_seconds"][1], f"{path}.safety_poll_seconds", minimum=1)
    if len(c.problems) > before:
        return None
    w = WaitSettings(**v)
    if w.max_interval_seconds < w.initial_interval_seconds:
        c.add(node, f"{path}.max_interval_seconds", "must not be smaller than initial_interval_seconds")
        return None
    return w


def _thresholds(c: _Checker, node: yaml.Node, path: str) -> Thresholds | None:
    names = ("metadata_lag_seconds", "s3_latency_seconds", "heartbeat_max_age_seconds",
             "validation_max_age_seconds", "lookback_minutes")
    keys = c.mapping(node, path, (), names)
    if keys is None:
        return None
    before = len(c.problems)
    v = {k: c.number(keys[k][1], f"{path}.{k}", integer=(k == "lookback_minutes"), minimum=0.001) for k in keys}
    return None if len(c.problems) > before else Thresholds(**v)


_ENV_REQUIRED = ("name", "account_id", "regions", "ssm_path")
_ENV_OPTIONAL = ("extra_account_ids", "parameters", "gate", "organizational_unit_id")


def _environments(c: _Checker, node: yaml.Node, path: str, ssm_prefix: str | None) -> list[Environment]:
    items = c.sequence(node, path)
    if items is None:
        return []
    envs: list[Environment] = []
    names: dict[str, int] = {}  # name -> index, to report duplicates
    accounts: dict[str, str] = {}  # account -> the environment that uses it
    broken = False
    for i, item in enumerate(items):
        env = _environment(c, item, f"{path}[{i}]", i, names, accounts, ssm_prefix)
        if env is None:
            broken = True
        else:
            envs.append(env)
    if not broken:
        order = [e.name for e in envs]
        if order != list(KNOWN_ENVIRONMENTS):
            c.add(node, path, f"environments must be {', '.join(KNOWN_ENVIRONMENTS)} in that order "
                              f"(replication flows one way, in rollout order); found {', '.join(order) or 'none'}")
    return envs


def _environment(c: _Checker, item: yaml.Node, p: str, i: int, names: dict[str, int], accounts: dict[str, str],
                 ssm_prefix: str | None) -> Environment | None:
    """One entry of `environments`; None when it has a problem (every problem is reported)."""
    keys = c.mapping(item, p, _ENV_REQUIRED, _ENV_OPTIONAL)
    if keys is None:
        return None
    before = len(c.problems)
    name = _environment_name(c, keys, p, i, names)
    account_ids = _environment_accounts(c, keys, p, name, accounts)
    regions = _environment_regions(c, keys, p)
    ssm_path = None
    if "ssm_path" in keys:
        ssm_path = c.string(keys["ssm_path"][1], f"{p}.ssm_path")
        if ssm_path is not None and ssm_prefix is not None and name is not None:
            expected = f"{ssm_prefix}/{name}/config"
            if ssm_path != expected:
                c.add(keys["ssm_path"][1], f"{p}.ssm_path",
                      f"'{ssm_path}' is not under the configured prefix and environment: expected '{expected}'")
    params = c.parameters(keys["parameters"][1], f"{p}.parameters") if "parameters" in keys else {}
    gate = _gate(c, keys["gate"][1], f"{p}.gate") if "gate" in keys else Gate()
    ou = None
    if "organizational_unit_id" in keys:
        ou = c.string(keys["organizational_unit_id"][1], f"{p}.organizational_unit_id", OU_RE,
                      "an OU id like ou-ab12-cdefgh34 (or a root id r-ab12)")
    if len(c.problems) > before or name is None or not account_ids or not regions or gate is None:
        return None
    return Environment(
        name=name, account_ids=tuple(account_ids), regions=tuple(regions), ssm_path=ssm_path or "",
        parameters=MappingProxyType(params), gate=gate, organizational_unit_id=ou,
        line=item.start_mark.line + 1,
    )


def _environment_name(c: _Checker, keys: dict[str, Any], p: str, i: int, names: dict[str, int]) -> str | None:
    """The environment's name: one the template knows, used once."""
    name = c.string(keys["name"][1], f"{p}.name") if "name" in keys else None
    if name is None:
        return None
    if name not in KNOWN_ENVIRONMENTS:
        close = difflib.get_close_matches(name, KNOWN_ENVIRONMENTS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        c.add(keys["name"][1], f"{p}.name",
              f"'{name}' is not an environment the template knows ({', '.join(KNOWN_ENVIRONMENTS)}){hint}")
    elif name in names:
        c.add(keys["name"][1], f"{p}.name", f"duplicate environment name '{name}' (also environments[{names[name]}])")
    else:
        names[name] = i
    return name


def _environment_accounts(c: _Checker, keys: dict[str, Any], p: str, name: str | None,
                          accounts: dict[str, str]) -> list[str]:
    """`account_id`, then `extra_account_ids`; an account belongs to one environment only."""
    account_ids: list[str] = []
    if "account_id" in keys:
        a = c.account(keys["account_id"][1], f"{p}.account_id")
        if a:
            account_ids.append(a)
    if "extra_account_ids" in keys:
        extra = c.sequence(keys["extra_account_ids"][1], f"{p}.extra_account_ids", non_empty=False) or []
        for j, n in enumerate(extra):
            a = c.account(n, f"{p}.extra_account_ids[{j}]")
            if a:
                account_ids.append(a)
    for j, a in enumerate(account_ids):
        owner = accounts.get(a)
        key_path = f"{p}.account_id" if j == 0 else f"{p}.extra_account_ids[{j - 1}]"
        key_node = keys["account_id"][1] if j == 0 else keys["extra_account_ids"][1].value[j - 1]
        if owner is not None:
            c.add(key_node, key_path, f"account {a} is already used by {owner}; each account belongs to one environment")
        else:
            accounts[a] = f"environment '{name}'" if name else p
    return account_ids


def _environment_regions(c: _Checker, keys: dict[str, Any], p: str) -> list[str]:
    """`regions`: well-formed, each listed once."""
    regions: list[str] = []
    if "regions" in keys:
        for j, n in enumerate(c.sequence(keys["regions"][1], f"{p}.regions") or []):
            r = c.region(n, f"{p}.regions[{j}]")
            if r is not None:
                if r in regions:
                    c.add(n, f"{p}.regions[{j}]", f"region {r} is listed twice")
                regions.append(r)
    return regions


def _gate(c: _Checker, node: yaml.Node, path: str) -> Gate | None:
    keys = c.mapping(node, path, (), ("alarms", "wait_seconds"))
    if keys is None:
        return None
    before = len(c.problems)
    alarms = c.boolean(keys["alarms"][1], f"{path}.alarms") if "alarms" in keys else True
    wait = c.number(keys["wait_seconds"][1], f"{path}.wait_seconds", minimum=0) if "wait_seconds" in keys else 0.0
    return None if len(c.problems) > before else Gate(alarms=bool(alarms), wait_seconds=float(wait))
