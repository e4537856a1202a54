"""The values `validate-accounts` works on: what IAM and STS said (facts), and the report rows (`Check`).

Frozen dataclasses only; `accounts.fetch` fills the facts, `accounts.judge` turns them into rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from replctl.config import Config

#: IAM path of every role the template creates; a role at this path is "ours".
ROLE_PATH = "/replctl/"
DEFAULT_REPLICATION_ROLE_NAME = "replctl-replication-agent"


@dataclass(frozen=True)
class Check:
    """One row of the report."""

    scope: str
    check: str
    ok: bool
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RoleFacts:
    """What IAM said about a role: exists (None = could not tell), its path and trust policy."""

    exists: bool | None
    path: str | None = None
    trust: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class AdminFacts:
    identity_account: str | None
    identity_arn: str | None
    identity_error: str | None
    administration_role: RoleFacts
    #: the administration role's inline policy documents (None: could not be read)
    administration_policies: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class TargetFacts:
    environment: str
    account: str
    #: which role the account was read through ("observer" or "execution"), None if neither worked
    access: str | None
    access_errors: tuple[str, ...]
    execution_role: RoleFacts
    replication_role: RoleFacts


def replication_role_name(config: Config) -> str:
    return config.parameters.get("ReplicationRoleName", DEFAULT_REPLICATION_ROLE_NAME)
