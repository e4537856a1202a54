"""I/O for `validate-accounts`: what STS and IAM say about the admin and each target account.

The caller's identity and the administration role in the admin account; the execution and
replication roles in each target account, read through the read-only observer role (the execution role trusts only the administration role, so the
operator never assumes it). Target accounts are read concurrently. Nothing here judges: a read
that fails is recorded on the facts, and `accounts.judge` says what it means.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

from replctl.accounts.model import AdminFacts, RoleFacts, TargetFacts, replication_role_name
from replctl.aws import SessionFactory, error_code, translate
from replctl.config import Config, Environment


def _role(iam: Any, name: str) -> RoleFacts:
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except Exception as exc:
        if error_code(exc) == "NoSuchEntity":
            return RoleFacts(exists=False)
        return RoleFacts(exists=None, error=translate(exc).message)
    trust = role.get("AssumeRolePolicyDocument")
    if trust is not None:
        trust = _policy_document(trust)
    return RoleFacts(exists=True, path=role.get("Path"), trust=trust)



def _inline_policies(iam: Any, role: str) -> tuple[dict[str, Any], ...] | None:
    try:
        names = [n for page in iam.get_paginator("list_role_policies").paginate(RoleName=role)
                 for n in page.get("PolicyNames", [])]
        docs = []
        for name in names:
            doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            docs.append(_policy_document(doc))
        return tuple(docs)
    except Exception:  # noqa: BLE001 - judged as "could not read"
        return None


def _policy_document(doc: Any) -> dict[str, Any]:
    """IAM returns policy documents URL-encoded JSON (boto3 usually decodes them to a dict)."""
    if isinstance(doc, dict):
        return doc
    text = unquote(str(doc))
    try:
        return dict(json.loads(text))
    except ValueError:
        # moto returns a role policy created by CloudFormation as a Python repr of the dict.
        return dict(ast.literal_eval(text))


def fetch_admin(config: Config, factory: SessionFactory) -> AdminFacts:
    try:
        ident = factory.caller_identity()
        account, arn, err = ident["Account"], ident["Arn"], None
    except Exception as exc:
        account, arn, err = None, None, translate(exc).message
    role = RoleFacts(exists=None, error="skipped: no working credentials")
    policies = None
    if err is None:
        iam = factory.client("iam", region=config.stackset.home_region)
        role = _role(iam, config.stackset.administration_role_name)
        if role.exists:
            policies = _inline_policies(iam, config.stackset.administration_role_name)
    return AdminFacts(account, arn, err, role, policies)


def observer_role_arn(config: Config, account: str) -> str:
    return f"arn:aws:iam::{account}:role/replctl/{config.observer_role_name}"


def fetch_target(config: Config, factory: SessionFactory, env: Environment, account: str) -> TargetFacts:
    """Read the account's IAM through the observer role, which the bootstrap template
    (cfn/stackset-execution-role.yaml) creates beside the execution role. The execution role
    itself trusts only the administration role, so the operator never assumes it."""
    region = config.stackset.home_region
    role_arn = observer_role_arn(config, account)
    try:
        # Force the AssumeRole now so a failure is reported as such, not as an IAM error.
        factory.session(account, role_arn).get_credentials().get_frozen_credentials()
        iam = factory.client("iam", region=region, account=account, role_arn=role_arn)
    except Exception as exc:
        unknown = RoleFacts(exists=None, error="not checked: the observer role could not be assumed")
        return TargetFacts(env.name, account, None, (translate(exc).message,), unknown, unknown)
    return TargetFacts(env.name, account, "observer", (),
                       _role(iam, config.stackset.execution_role_name),
                       _role(iam, replication_role_name(config)))


def fetch(config: Config, factory: SessionFactory, envs: Iterable[Environment]) -> tuple[AdminFacts, list[TargetFacts]]:
    """Read everything the checks need; targets concurrently."""
    admin = fetch_admin(config, factory)
    jobs = [(env, acct) for env in envs for acct in env.account_ids]
    if admin.identity_error is not None:
        return admin, []
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(jobs)))) as pool:
        targets = list(pool.map(lambda j: fetch_target(config, factory, j[0], j[1]), jobs))
    return admin, targets
