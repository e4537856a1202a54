"""E9105: every Lambda function has a failure destination and a log group with retention.

Failure destination: DeadLetterConfig.TargetArn, or an AWS::Lambda::EventInvokeConfig of the
function with DestinationConfig.OnFailure. Log group: an AWS::Logs::LogGroup with RetentionInDays
that is the function's LoggingConfig.LogGroup (Ref or same name) or is named
/aws/lambda/<FunctionName> (literal or the same Fn::Sub template).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# cfn-lint loads each rule file on its own (not as a package): make the shared helpers importable.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
import _policy  # noqa: E402


class LambdaFailureDestinationAndLogRetention(CloudFormationLintRule):
    id = "E9105"
    shortdesc = "Lambda functions have a DLQ or on-failure destination and a retained log group"
    description = (
        "Every AWS::Lambda::Function sets DeadLetterConfig (or an EventInvokeConfig OnFailure "
        "destination) and has a log group with RetentionInDays (LoggingConfig or /aws/lambda/<name>)."
    )
    source_url = "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html"
    tags = ["lambda", "replctl"]

    def match(self, cfn):
        policy = _policy
        template = cfn.template
        log_groups = {
            name: resource.get("Properties") or {}
            for name, resource in policy.resources(template)
            if resource.get("Type") == "AWS::Logs::LogGroup"
        }
        on_failure = self._functions_with_on_failure(policy, template)
        matches = []
        for name, resource in policy.resources(template):
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            props = resource.get("Properties") or {}
            path = ["Resources", name, "Properties"]
            dlq = (props.get("DeadLetterConfig") or {}).get("TargetArn") if isinstance(props.get("DeadLetterConfig"), dict) else None
            if not dlq and name not in on_failure:
                matches.append(RuleMatch(path, f"{name}: no DeadLetterConfig and no on-failure destination"))
            group = self._log_group_of(policy, props, log_groups)
            if group is None:
                matches.append(RuleMatch(path, f"{name}: no log group (LoggingConfig.LogGroup or /aws/lambda/<FunctionName>)"))
            elif not log_groups[group].get("RetentionInDays"):
                matches.append(RuleMatch(["Resources", group, "Properties"], f"{group}: log group of {name} has no RetentionInDays"))
        return matches

    @staticmethod
    def _functions_with_on_failure(policy, template) -> set[str]:
        found = set()
        for _, resource in policy.resources(template):
            if resource.get("Type") != "AWS::Lambda::EventInvokeConfig":
                continue
            props = resource.get("Properties") or {}
            function = props.get("FunctionName")
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            if destination and isinstance(function, dict) and set(function) == {"Ref"}:
                found.add(function["Ref"])
        return found

    @staticmethod
    def _log_group_of(policy, props, log_groups) -> str | None:
        logging = props.get("LoggingConfig") if isinstance(props.get("LoggingConfig"), dict) else {}
        configured = logging.get("LogGroup")
        if isinstance(configured, dict) and set(configured) == {"Ref"} and configured["Ref"] in log_groups:
            return configured["Ref"]
        if configured is not None:
            wanted = policy.sub_text(configured)
        else:
            function_name = policy.sub_text(props.get("FunctionName"))
            wanted = None if function_name is None else f"/aws/lambda/{function_name}"
        if wanted is None:
            return None
        for group, group_props in log_groups.items():
            if policy.sub_text(group_props.get("LogGroupName")) == wanted:
                return group
        return None
