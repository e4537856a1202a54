"""E9101: no wildcard IAM actions.

Anywhere (Allow or Deny): no "*" and no wildcard service ("*:Get*"). In Allow statements: no
wildcard at all ("s3:*", "s3:Get*"), and no NotAction (an Allow+NotAction grants everything else).
A Deny may use "svc:*" or "svc:Put*": a broader deny only takes more away.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# cfn-lint loads each rule file on its own (not as a package): make the shared helpers importable.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
import _policy  # noqa: E402


class IamNoWildcardActions(CloudFormationLintRule):
    id = "E9101"
    shortdesc = "No wildcard IAM actions"
    description = (
        "Policy statements never use '*' or a wildcard service as action; Allow statements list "
        "exact actions (no 'svc:*', no partial wildcards) and never use NotAction."
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"
    tags = ["iam", "least-privilege", "replctl"]

    def match(self, cfn):
        policy = _policy
        matches = []
        for kind, name, document, path in policy.policy_documents(cfn.template):
            for statement, statement_path in policy.statements(document, path):
                allow = statement.get("Effect") == "Allow"
                if allow and "NotAction" in statement:
                    matches.append(RuleMatch([*statement_path, "NotAction"],
                                             f"{name}: Allow with NotAction grants every other action"))
                for key in ("Action", "NotAction"):
                    if key not in statement:
                        continue
                    for action, action_path in policy.strings(statement[key], [*statement_path, key]):
                        if not isinstance(action, str):
                            continue
                        service, _, verb = action.partition(":")
                        if action.strip() == "*" or "*" in service or "?" in service:
                            matches.append(RuleMatch(action_path, f"{name}: wildcard action {action!r} ({kind} policy)"))
                        elif allow and ("*" in verb or "?" in verb):
                            matches.append(RuleMatch(action_path,
                                                     f"{name}: Allow with wildcard action {action!r}; list the exact actions"))
        return matches
