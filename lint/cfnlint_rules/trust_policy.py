"""E9103: a trust policy never trusts a whole account without a condition.

An Allow statement of an AssumeRolePolicyDocument whose AWS principal is an account (its root
ARN, a bare 12-digit id, an account-id parameter) or "*" must carry a Condition that narrows it
(e.g. aws:PrincipalArn, sts:ExternalId). Roles and service principals are not flagged.

A web-identity (Federated) principal must pin the token's subject with a `<provider>:sub`
condition: without it every identity the provider vouches for may assume the role — for GitHub's
provider, any workflow of any repository ("IAM recommends that users evaluate the IAM condition
key token.actions.githubusercontent.com:sub in the trust policy of any role that trusts GitHub's
OIDC identity provider", GitHub docs, "Configuring OpenID Connect in Amazon Web Services").
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# cfn-lint loads each rule file on its own (not as a package): make the shared helpers importable.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
import _policy  # noqa: E402

_BARE_PARAMETER = re.compile(r"^\$\{([A-Za-z0-9]+)\}$")


def _account_parameters(template) -> set[str]:
    """Parameters that hold an account id (by pattern or by name)."""
    found = {"AWS::AccountId"}
    for name, spec in (template.get("Parameters") or {}).items():
        pattern = str((spec or {}).get("AllowedPattern", ""))
        if "{12}" in pattern or name.lower().endswith(("accountid", "account")):
            found.add(name)
    return found


class TrustPolicyNeverWholeAccountWithoutCondition(CloudFormationLintRule):
    id = "E9103"
    shortdesc = "Trust policies never trust a whole account without a condition"
    description = (
        "A role trust statement whose AWS principal is an account root, a bare account id or '*' "
        "must have a Condition (aws:PrincipalArn, sts:ExternalId, aws:PrincipalOrgID, ...); one "
        "whose principal is a web identity provider must pin the subject (<provider>:sub)."
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts"
    tags = ["iam", "trust", "replctl"]

    def match(self, cfn):
        policy = _policy
        accounts = _account_parameters(cfn.template)
        matches = []
        for kind, name, document, path in policy.policy_documents(cfn.template):
            if kind != "trust":
                continue
            for statement, statement_path in policy.statements(document, path):
                if statement.get("Effect") != "Allow":
                    continue
                principal = statement.get("Principal")
                if isinstance(principal, dict) and "Federated" in principal and not self._pins_subject(statement):
                    matches.append(RuleMatch([*statement_path, "Principal", "Federated"],
                                             f"{name}: trusts a web identity provider without a <provider>:sub "
                                             "condition; pin the subject (e.g. repo:OWNER/REPO:environment:NAME)"))
                    continue
                if statement.get("Condition"):
                    continue
                if principal == "*":
                    matches.append(RuleMatch([*statement_path, "Principal"], f"{name}: trusts '*' without a Condition"))
                    continue
                if not isinstance(principal, dict) or "AWS" not in principal:
                    continue
                for value, value_path in policy.strings(principal["AWS"], [*statement_path, "Principal", "AWS"]):
                    if self._whole_account(policy, value, accounts):
                        matches.append(RuleMatch(value_path,
                                                 f"{name}: trusts a whole account without a Condition; "
                                                 "name the role or add aws:PrincipalArn / sts:ExternalId"))
        return matches

    @staticmethod
    def _pins_subject(statement) -> bool:
        condition = statement.get("Condition")
        if not isinstance(condition, dict):
            return False
        return any(isinstance(block, dict) and any(str(key).endswith(":sub") for key in block)
                   for block in condition.values())

    @staticmethod
    def _whole_account(policy, value, accounts) -> bool:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return value["Ref"] in accounts
        text = policy.sub_text(value)
        if text is None:
            return False
        text = text.strip()
        if text == "*" or policy.ACCOUNT_ID.match(text) or policy.ROOT_ARN.match(text):
            return True
        bare = _BARE_PARAMETER.match(text)
        if bare and bare.group(1) in accounts:
            return True
        return text.endswith(":root")
