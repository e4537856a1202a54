"""The function environment variables (docs/contract.md), parsed into one frozen value.

Every name another account's resource has is computed from these values alone (bucket, table,
role ARN, SSM hierarchy), so a function never needs to read another stack's outputs.
Downstream environments are derived: the environments after this one in the order
dev, staging, prod whose `REPLICATE_TO_<ENV>` is true. Prod has none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from replshared.errors import ConfigurationError

ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
_ACCOUNT_RE = re.compile(r"^\d{12}$")


def _parse_bool(name: str, raw: str | None, problems: list[str]) -> bool:
    if raw is None or raw == "":
        return False
    value = raw.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    problems.append(f"{name} must be 'true' or 'false', got {raw!r}")
    return False


@dataclass(frozen=True)
class Settings:
    """This function's view of the estate; hashable so clients can be cached per settings."""

    environment: str
    accounts: tuple[tuple[str, str], ...]  # (environment, account id) in rollout order
    replicate_to: frozenset[str]
    table_name: str
    bucket_prefix: str
    bucket_name: str
    ssm_path_prefix: str
    replication_role_name: str
    role_path: str = "/replctl/"
    external_id: str | None = None
    mirror_secure_strings: bool = False
    metrics_namespace: str = "ReplicationFramework"
    event_bus_name: str = "default"
    region: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the contract's variables; every problem is reported at once."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        environment = required("ENVIRONMENT")
        if environment and environment not in ENVIRONMENTS:
            problems.append(f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}, got {environment!r}")
        accounts = []
        for name in ENVIRONMENTS:
            var = f"ACCOUNT_ID_{name.upper()}"
            account = required(var)
            if account and not _ACCOUNT_RE.match(account):
                problems.append(f"{var} must be a 12-digit account id, got {account!r}")
            accounts.append((name, account))
        replicate_to = frozenset(
            name
            for name in ENVIRONMENTS[1:]
            if _parse_bool(f"REPLICATE_TO_{name.upper()}", env.get(f"REPLICATE_TO_{name.upper()}"), problems)
        )
        mirror_secure = _parse_bool("MIRROR_SECURE_STRINGS", env.get("MIRROR_SECURE_STRINGS"), problems)
        table_name = required("TABLE_NAME")
        bucket_prefix = required("BUCKET_PREFIX")
        ssm_prefix = required("SSM_PATH_PREFIX")
        role_name = required("REPLICATION_ROLE_NAME")
        role_path = env.get("ROLE_PATH", "").strip() or "/replctl/"
        if not (role_path.startswith("/") and role_path.endswith("/")):
            problems.append(f"ROLE_PATH must start and end with '/', got {role_path!r}")
        if ssm_prefix and not ssm_prefix.startswith("/"):
            problems.append(f"SSM_PATH_PREFIX must start with '/', got {ssm_prefix!r}")
        if problems:
            raise ConfigurationError("function configuration is invalid: " + "; ".join(problems))
        own_account = dict(accounts)[environment]
        bucket_name = env.get("BUCKET_NAME", "").strip() or f"{bucket_prefix}-{environment}-{own_account}"
        return cls(
            environment=environment,
            accounts=tuple(accounts),
            replicate_to=replicate_to,
            table_name=table_name,
            bucket_prefix=bucket_prefix,
            bucket_name=bucket_name,
            ssm_path_prefix=ssm_prefix.rstrip("/"),
            replication_role_name=role_name,
            role_path=role_path,
            external_id=env.get("REPLICATION_EXTERNAL_ID", "").strip() or None,
            mirror_secure_strings=mirror_secure,
            metrics_namespace=env.get("METRICS_NAMESPACE", "").strip() or "ReplicationFramework",
            event_bus_name=env.get("EVENT_BUS_NAME", "").strip() or "default",
            region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None),
        )

    # -- derived names -------------------------------------------------------------------------

    def account_of(self, environment: str) -> str:
        return dict(self.accounts)[environment]

    @property
    def account_id(self) -> str:
        return self.account_of(self.environment)

    @property
    def downstream(self) -> tuple[str, ...]:
        """Environments after this one whose REPLICATE_TO_<ENV> is true (prod: none)."""
        later = ENVIRONMENTS[ENVIRONMENTS.index(self.environment) + 1 :]
        return tuple(e for e in later if e in self.replicate_to)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Environments before this one, in rollout order."""
        return ENVIRONMENTS[: ENVIRONMENTS.index(self.environment)]

    def downstream_of(self, environment: str) -> tuple[str, ...]:
        """The downstream environments of any environment, assuming the flags are estate-wide."""
        later = ENVIRONMENTS[ENVIRONMENTS.index(environment) + 1 :]
        return tuple(e for e in later if e in self.replicate_to)

    def hierarchy(self, environment: str) -> str:
        """SSM hierarchy owned by an environment: `${SSMPathPrefix}/<env>/config`."""
        return f"{self.ssm_path_prefix}/{environment}/config"

    def bucket_of(self, environment: str) -> str:
        """Bucket of an environment: `${ReplicationBucketName}-<env>-<account>`."""
        if environment == self.environment:
            return self.bucket_name
        return f"{self.bucket_prefix}-{environment}-{self.account_of(environment)}"

    def role_arn(self, environment: str) -> str:
        """Replication-agent role in an environment's account."""
        return f"arn:aws:iam::{self.account_of(environment)}:role{self.role_path}{self.replication_role_name}"
