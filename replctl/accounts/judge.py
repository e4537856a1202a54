"""Judging for `validate-accounts` (pure): the facts become report rows, each failure with a fix.

Config checks come first (they need no AWS), then the admin account (credentials, the
administration role and what it may assume), then each target account (reachable through the
observer role, the execution role and its trust, the replication role's name). The rows are in a
stable order, so the report reads the same on every run.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from replctl.accounts.model import ROLE_PATH, AdminFacts, Check, RoleFacts, TargetFacts, replication_role_name
from replctl.config import REGION_RE, Config, Environment


def _statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not policy:
        return []
    st = policy.get("Statement", [])
    return [st] if isinstance(st, dict) else list(st)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def principal_account(principal: str) -> str | None:
    """The account an AWS principal belongs to ('*' and unparseable values → None)."""
    if principal.isdigit() and len(principal) == 12:
        return principal
    parts = principal.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[4].isdigit():
        return parts[4]
    return None


def trusted_principals(policy: dict[str, Any] | None) -> tuple[set[str], set[str], list[str]]:
    """(accounts trusted through AWS principals, services trusted, anything else trusted)."""
    accounts: set[str] = set()
    services: set[str] = set()
    other: list[str] = []
    for st in _statements(policy):
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal", {})
        if principal == "*":
            other.append("*")
            continue
        for kind, values in (principal or {}).items():
            for v in _as_list(values):
                if kind == "AWS":
                    acct = principal_account(str(v))
                    if acct is None:
                        other.append(str(v))
                    else:
                        accounts.add(acct)
                elif kind == "Service":
                    services.add(str(v))
                else:
                    other.append(f"{kind}:{v}")
    return accounts, services, other


def evaluate(config: Config, admin: AdminFacts, targets: list[TargetFacts],
             envs: Iterable[Environment] | None = None) -> list[Check]:
    """Turn the facts into report rows, in a stable order."""
    checks = list(config_checks(config, envs))
    a = config.admin.account_id
    scope = f"admin {a}"
    if admin.identity_error is not None:
        checks.append(Check(scope, "credentials work", False, admin.identity_error,
                            "configure credentials for the admin account (--profile), or use --sandbox"))
        return checks
    if admin.identity_account != a:
        checks.append(Check(scope, "caller is in the admin account", False,
                            f"credentials belong to {admin.identity_account} ({admin.identity_arn})",
                            f"use credentials of account {a}, or set admin.role_arn to a role there"))
    else:
        checks.append(Check(scope, "caller is in the admin account", True, str(admin.identity_arn)))
    name = config.stackset.administration_role_name
    if config.stackset.permission_model == "SELF_MANAGED":
        checks.append(_admin_role_check(scope, name, admin.administration_role))
        if admin.administration_role.exists:
            checks.append(_admin_may_assume_check(scope, config, admin.administration_policies))
    for t in targets:
        checks.extend(_target_checks(config, t))
    return checks


def config_checks(config: Config, envs: Iterable[Environment] | None = None) -> list[Check]:
    """Checks that need no AWS: they passed at load time, listed so the report is complete."""
    rows = []
    for env in envs if envs is not None else config.environments:
        bad = [r for r in env.regions if not REGION_RE.match(r)]
        rows.append(Check(f"{env.name}", "regions are well-formed", not bad,
                          ", ".join(env.regions) if not bad else f"bad: {', '.join(bad)}",
                          None if not bad else "use region names like us-east-1"))
        if len(env.regions) > 1:
            # cfn/replication.yaml names the bucket and its IAM roles per account (DESIGN §1), so a
            # second region of the same account would collide on them at create time.
            rows.append(Check(f"{env.name}", "one region per account (template limit)", False,
                              f"{len(env.regions)} regions: {', '.join(env.regions)}",
                              "use one region per environment account, and ExtraReplicaRegions for DR of "
                              "the metadata (docs/template.md, Known limits)"))
        expected = f"{config.ssm_prefix}/{env.name}/config"
        rows.append(Check(f"{env.name}", "SSM path follows the naming", env.ssm_path == expected, env.ssm_path,
                          None if env.ssm_path == expected else f"set ssm_path to {expected}"))
    return rows


def _admin_role_check(scope: str, name: str, role: RoleFacts) -> Check:
    fix = "deploy cfn/stackset-administration-role.yaml in the admin account"
    if role.exists is None:
        return Check(scope, "administration role exists", False, role.error or "unknown", fix)
    if not role.exists:
        return Check(scope, "administration role exists", False, f"no role {name}", fix)
    _, services, _ = trusted_principals(role.trust)
    if "cloudformation.amazonaws.com" not in services:
        return Check(scope, "administration role trusts CloudFormation", False,
                     f"trusted services: {', '.join(sorted(services)) or 'none'}",
                     "its trust policy must allow cloudformation.amazonaws.com to sts:AssumeRole")
    return Check(scope, "administration role exists and trusts CloudFormation", True, name)


def _admin_may_assume_check(scope: str, config: Config, policies: tuple[dict[str, Any], ...] | None) -> Check:
    label = "administration role may assume the execution role"
    target = f"arn:aws:iam::{config.environments[0].account_id}:role/{config.stackset.execution_role_name}"
    if policies is None:
        return Check(scope, label, False, "its inline policies could not be read",
                     "allow your identity iam:ListRolePolicies and iam:GetRolePolicy on the administration role")
    for doc in policies:
        for st in _statements(doc):
            actions = [str(a).lower() for a in _as_list(st.get("Action"))]
            if st.get("Effect") != "Allow" or not ({"sts:assumerole", "sts:*"} & set(actions)):
                continue
            for resource in _as_list(st.get("Resource")):
                pattern = str(resource).replace("arn:aws:", "arn:*:", 1)
                if fnmatch.fnmatchcase(target.replace("arn:aws:", "arn:*:", 1), pattern):
                    return Check(scope, label, True, f"sts:AssumeRole on {resource}")
    return Check(scope, label, False, f"no statement allows sts:AssumeRole on {target}",
                 "re-deploy cfn/stackset-administration-role.yaml with ExecutionRoleName="
                 f"{config.stackset.execution_role_name}")


def _target_checks(config: Config, t: TargetFacts) -> list[Check]:
    scope = f"{t.environment} {t.account}"
    exec_name = config.stackset.execution_role_name
    admin = config.admin.account_id
    admin_role = f"arn:aws:iam::{admin}:role/{config.stackset.administration_role_name}"
    boot = f"deploy cfn/stackset-execution-role.yaml in account {t.account} (AdminAccountId={admin})"
    if t.access is None:
        return [Check(scope, "account can be read (observer role)", False, "; ".join(t.access_errors),
                      f"{boot}: it creates the execution role and the read-only observer role "
                      f"replctl/{config.observer_role_name}, which your admin-account role must match "
                      "(ObserverTrustedRolePattern)")]
    rows = [Check(scope, "account can be read", True, f"through replctl/{config.observer_role_name}")]
    role = t.execution_role
    if role.exists is None:
        rows.append(Check(scope, "execution role exists", False, role.error or "unknown",
                          f"{boot.replace('deploy', 're-deploy')}: its observer role may read the execution role"))
    elif not role.exists:
        rows.append(Check(scope, "execution role exists", False, f"no role {exec_name}", boot))
    else:
        rows.append(Check(scope, "execution role exists", True, exec_name))
        accounts, services, other = trusted_principals(role.trust)
        wrong = sorted(accounts - {admin}) + sorted(services) + other
        if admin not in accounts:
            rows.append(Check(scope, "execution role trusts the admin account", False,
                              f"trusts {', '.join(sorted(accounts) + sorted(services) + other) or 'nobody'}",
                              f"{boot.replace('deploy', 're-deploy')}"))
        elif wrong:
            rows.append(Check(scope, "execution role trusts only the admin account", False,
                              f"also trusts {', '.join(wrong)}",
                              "remove every other principal from its trust policy"))
        else:
            rows.append(Check(scope, "execution role trusts only the admin account", True, admin))
            # What CloudFormation needs: the administration role (or the whole admin account) may assume it.
            principals = {str(v) for st in _statements(role.trust) if st.get("Effect") == "Allow"
                          for v in _as_list((st.get("Principal") or {}).get("AWS"))}
            ok = bool(principals & {admin_role, f"arn:aws:iam::{admin}:root", admin})
            rows.append(Check(scope, "administration role can assume it", ok,
                              admin_role if ok else f"trusted: {', '.join(sorted(principals))}",
                              None if ok else f"its trust policy must name {admin_role}"))
    rep = t.replication_role
    rep_name = replication_role_name(config)
    label = "replication role name is free or ours"
    if rep.exists is None:
        # The observer may read role/<name> and role/replctl/*: AccessDenied means a role with this
        # name exists under some other path — taken, though IAM will not say by whom.
        rows.append(Check(scope, label, False, f"{rep_name}: cannot be read ({rep.error or 'unknown'})",
                          f"a role named {rep_name} probably exists outside /replctl/: choose another "
                          "parameters.ReplicationRoleName, or check with `aws iam get-role` in the account"))
    elif not rep.exists:
        rows.append(Check(scope, label, True, f"{rep_name}: free"))
    elif rep.path == ROLE_PATH:
        rows.append(Check(scope, label, True, f"{rep_name}: ours (path {ROLE_PATH})"))
    else:
        rows.append(Check(scope, label, False, f"{rep_name} exists at path {rep.path}, not ours",
                          "choose another parameters.ReplicationRoleName, or remove that role"))
    return rows
