"""validate-accounts judging without AWS: the cases moto cannot produce (it grants every AssumeRole)."""

from __future__ import annotations

from pathlib import Path

from replctl.accounts.judge import evaluate, trusted_principals
from replctl.accounts.model import AdminFacts, RoleFacts, TargetFacts
from replctl.config import parse_config
from tests.unit.test_config import VALID

ADMIN_ROLE = "arn:aws:iam::123456789012:role/AWSCloudFormationStackSetAdministrationRole"
TRUST = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ADMIN_ROLE}, "Action": "sts:AssumeRole"}]}
ADMIN = AdminFacts("123456789012", "arn:aws:sts::123456789012:assumed-role/op/me", None,
                   RoleFacts(True, "/", {"Statement": [{"Effect": "Allow", "Principal": {
                       "Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
                   ({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                    "Resource": "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole"}]},))


def config(tmp_path: Path):
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    return parse_config(VALID, tmp_path / "environments.yaml")


def test_an_unreadable_account_says_how_to_bootstrap_it(tmp_path: Path) -> None:
    c = config(tmp_path)
    target = TargetFacts("dev", "111111111111", None, ("cannot assume …: AccessDenied",),
                         RoleFacts(None), RoleFacts(None))
    rows = [r for r in evaluate(c, ADMIN, [target], c.select(["dev"])) if r.scope == "dev 111111111111"]
    assert len(rows) == 1 and rows[0].ok is False
    assert rows[0].check == "account can be read (observer role)"
    assert "AccessDenied" in rows[0].detail
    assert rows[0].hint.startswith("deploy cfn/stackset-execution-role.yaml in account 111111111111")
    assert "ObserverTrustedRolePattern" in rows[0].hint


def test_an_unreadable_replication_role_name_is_not_called_free(tmp_path: Path) -> None:
    c = config(tmp_path)
    target = TargetFacts("dev", "111111111111", "observer", (), RoleFacts(True, "/", TRUST),
                         RoleFacts(None, error="access denied: AccessDenied"))
    rows = {r.check: r for r in evaluate(c, ADMIN, [target], c.select(["dev"])) if r.scope == "dev 111111111111"}
    row = rows["replication role name is free or ours"]
    assert row.ok is False and "cannot be read" in row.detail
    assert "outside /replctl/" in row.hint


def test_trust_in_the_admin_account_but_not_its_administration_role(tmp_path: Path) -> None:
    c = config(tmp_path)
    other = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/someone"},
                            "Action": "sts:AssumeRole"}]}
    target = TargetFacts("dev", "111111111111", "observer", (), RoleFacts(True, "/", other), RoleFacts(False))
    rows = {r.check: r for r in evaluate(c, ADMIN, [target], c.select(["dev"])) if r.scope == "dev 111111111111"}
    assert rows["execution role trusts only the admin account"].ok is True
    assert rows["administration role can assume it"].ok is False
    assert rows["administration role can assume it"].hint == f"its trust policy must name {ADMIN_ROLE}"


def test_trusted_principals_splits_accounts_services_and_wildcards() -> None:
    accounts, services, other = trusted_principals({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["123456789012", "arn:aws:iam::222222222222:root", "*"],
                                          "Service": "lambda.amazonaws.com"}},
        {"Effect": "Deny", "Principal": {"AWS": "333333333333"}},
    ]})
    assert accounts == {"123456789012", "222222222222"}
    assert services == {"lambda.amazonaws.com"} and other == ["*"]


def test_two_regions_in_one_environment_account_are_flagged_before_a_rollout_collides(tmp_path: Path) -> None:
    from replctl.accounts.judge import config_checks

    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    # The last environment (a downstream one may run in more regions than those before it).
    text = "regions: [us-east-1, eu-west-1]".join(VALID.rsplit("regions: [us-east-1]", 1))
    c = parse_config(text, tmp_path / "environments.yaml")
    rows = [r for r in config_checks(c) if r.check == "one region per account (template limit)"]
    assert [(r.scope, r.ok, r.detail) for r in rows] == [("prod", False, "2 regions: us-east-1, eu-west-1")]
    assert "ExtraReplicaRegions" in rows[0].hint
