"""E9102: Resource "*" only for actions without resource-level permissions.

An Allow statement on Resource "*" (or with NotResource) may only grant actions IAM cannot scope
(the small list in _policy.WILDCARD_ONLY_ACTIONS), and must carry the condition key that narrows
each of them where one exists (e.g. cloudwatch:PutMetricData with cloudwatch:namespace). A KMS
key policy is exempt: there "*" means the key itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# cfn-lint loads each rule file on its own (not as a package): make the shared helpers importable.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
import _policy  # noqa: E402


class IamWildcardResourceOnlyWhereUnavoidable(CloudFormationLintRule):
    id = "E9102"
    shortdesc = "Resource '*' only for actions without resource-level permissions"
    description = (
        "Allow statements on Resource '*' grant only actions that have no resource-level "
        "permissions, each with its narrowing condition key where one exists; no NotResource."
    )
    source_url = "https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html"
    tags = ["iam", "least-privilege", "replctl"]

    def match(self, cfn):
        policy = _policy
        matches = []
        for kind, name, document, path in policy.policy_documents(cfn.template):
            if kind in ("key", "trust"):
                continue
            for statement, statement_path in policy.statements(document, path):
                if statement.get("Effect") != "Allow":
                    continue
                if "NotResource" in statement:
                    matches.append(RuleMatch([*statement_path, "NotResource"],
                                             f"{name}: Allow with NotResource grants every other resource"))
                    continue
                resources = [r for r, _ in policy.strings(statement.get("Resource"), [])]
                if "*" not in resources:
                    continue
                present = policy.condition_keys(statement)
                for action, action_path in policy.strings(statement.get("Action"), [*statement_path, "Action"]):
                    if not isinstance(action, str):
                        continue
                    lowered = action.lower()
                    if lowered in policy.WILDCARD_ONLY_ACTIONS:
                        required = policy.WILDCARD_ONLY_ACTIONS[lowered]
                    elif lowered in policy.STAR_EXCEPTIONS:
                        required = policy.STAR_EXCEPTIONS[lowered][0]
                    else:
                        matches.append(RuleMatch(action_path,
                                                 f"{name}: {action} supports resource-level permissions; "
                                                 "scope it instead of Resource '*'"))
                        continue
                    missing = [k for k in required if not any(p.lower().startswith(k.lower()) for p in present)]
                    if missing:
                        matches.append(RuleMatch(action_path,
                                                 f"{name}: {action} on Resource '*' needs a Condition on {', '.join(missing)}"))
        return matches
