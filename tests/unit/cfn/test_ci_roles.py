"""The GitHub Actions roles of cfn/operator-policy.yaml, rendered as CloudFormation would.

The read role (pull-request plans, scheduled status) carries the read-only policy; the deploy role
carries exactly the operator policy and trusts only jobs of one GitHub environment. Without a
repository, neither exists. The read-only policy is a subset of the operator policy and grants no
write. (What the policies allow is proved against the real calls in
tests/functional/cfn/test_ci_roles.py and the functional suite.)
"""

from __future__ import annotations

from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data

from tests import cfnkit
from tests.conftest import ADMIN

GITHUB = "token.actions.githubusercontent.com"
PROVIDER_ARN = f"arn:aws:iam::{ADMIN}:oidc-provider/{GITHUB}"
BASE = {"OperatorTrustedRolePattern": "replctl-ci-*"}


def render(**parameters: str) -> cfnkit.Rendered:
    return cfnkit.render(cfnkit.load("operator-policy.yaml"), {**BASE, **parameters}, ADMIN)


def trust(rendered: cfnkit.Rendered, role: str) -> dict[str, Any]:
    (statement,) = rendered.properties(role)["AssumeRolePolicyDocument"]["Statement"]
    return statement


def statements(rendered: cfnkit.Rendered, policy: str) -> list[dict[str, Any]]:
    return rendered.properties(policy)["PolicyDocument"]["Statement"]


def grants(rendered: cfnkit.Rendered, policy: str) -> set[tuple[str, str]]:
    out = set()
    for s in statements(rendered, policy):
        assert s["Effect"] == "Allow"
        for action in [s["Action"]] if isinstance(s["Action"], str) else s["Action"]:
            for resource in [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]:
                out.add((action, resource))
    return out


def test_no_repository_no_github_resources() -> None:
    rendered = render()
    assert not {"GitHubOidcProvider", "GitHubReadRole", "GitHubDeployRole"} & set(rendered.resources)
    assert not {"GitHubReadRoleArn", "GitHubDeployRoleArn"} & set(rendered.outputs)
    assert "OperatorReadPolicy" in rendered.resources


def test_the_provider_is_github_for_the_sts_audience() -> None:
    rendered = render(GitHubRepository="example-org/infra")
    assert rendered.properties("GitHubOidcProvider") == {"Url": f"https://{GITHUB}", "ClientIdList": ["sts.amazonaws.com"]}


def test_deploy_role_has_the_operator_policy_and_trusts_one_github_environment() -> None:
    rendered = render(GitHubRepository="example-org/infra", GitHubDeployEnvironment="prod-gate")
    props = rendered.properties("GitHubDeployRole")
    assert props["ManagedPolicyArns"] == [f"arn:aws:iam::{ADMIN}:policy/replctl/replctl-operator-policy"]
    assert "Policies" not in props
    assert trust(rendered, "GitHubDeployRole") == {
        "Sid": "GitHubDeployEnvironment", "Effect": "Allow", "Principal": {"Federated": PROVIDER_ARN},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com",
                                       f"{GITHUB}:sub": "repo:example-org/infra:environment:prod-gate"}},
    }


def test_read_role_has_the_read_policy_and_trusts_pull_requests_and_the_default_branch() -> None:
    rendered = render(GitHubRepository="example-org/infra", GitHubDefaultBranch="trunk")
    assert rendered.properties("GitHubReadRole")["ManagedPolicyArns"] == [
        f"arn:aws:iam::{ADMIN}:policy/replctl/replctl-operator-read-policy"]
    assert trust(rendered, "GitHubReadRole")["Condition"] == {"StringEquals": {
        f"{GITHUB}:aud": "sts.amazonaws.com",
        f"{GITHUB}:sub": ["repo:example-org/infra:pull_request", "repo:example-org/infra:ref:refs/heads/trunk"]}}


def test_an_existing_provider_is_used_not_created() -> None:
    existing = f"arn:aws:iam::{ADMIN}:oidc-provider/{GITHUB}"
    rendered = render(GitHubRepository="example-org/infra", GitHubOidcProviderArn=existing)
    assert "GitHubOidcProvider" not in rendered.resources
    assert trust(rendered, "GitHubReadRole")["Principal"] == {"Federated": existing}


@pytest.mark.parametrize("value", ["example-org", "example-org/infra/x", "a b/c", "*/*"])
def test_repository_must_be_owner_slash_name(value: str) -> None:
    with pytest.raises(cfnkit.TemplateError, match="GitHubRepository"):
        render(GitHubRepository=value)


def test_read_policy_is_a_subset_of_the_operator_policy_without_writes() -> None:
    rendered = render()
    read, operator = grants(rendered, "OperatorReadPolicy"), grants(rendered, "OperatorPolicy")
    assert read <= operator
    levels = {a: {row["access_level"] for rows in get_action_data(*a.split(":")).values() for row in rows}
              for a, _ in read}
    # Reads and lists only; sts:AssumeRole ("Write" in the IAM reference) only into the observer roles.
    writes = {a for a, level in levels.items() if level - {"Read", "List"}}
    assert writes == {"sts:AssumeRole"}
    assert {r for a, r in read if a == "sts:AssumeRole"} == {"arn:aws:iam::*:role/replctl/replctl-observer"}
    assert {a for a, _ in operator - read} >= {"cloudformation:UpdateStackSet", "cloudformation:CreateStackInstances",
                                               "s3:PutObject", "iam:PassRole"}
