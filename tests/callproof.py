"""The offline permission proof, part 2: the calls the CLI and the functions really make.

Every call recorded in a functional test (tests/callrecord.py) is mapped to the IAM requests AWS
authorises for it (`REQUESTS`: action, resource ARN and the condition keys the call carries), and
evaluated (tests/iamproof.py) against the policy of the identity it ran as, rendered from cfn/ for
that estate:

| caller | identity | policy |
|---|---|---|
| the CLI, as the operator | the admin account | cfn/operator-policy.yaml's OperatorPolicy |
| the CLI, in a target account | the observer role | cfn/stackset-execution-role.yaml's ObserverRole |
| `destroy --delete-data`, in a target account | the data-remover role | cfn/stackset-execution-role.yaml's DataRemoverRole; the AssumeRole also needs its trust |
| a function, in its own account | its execution role | cfn/replication.yaml's role + the permissions boundary |
| a function, in a downstream account | the replication-agent role | that account's ReplicationAgentRole + the boundary; the AssumeRole also needs the agent role's trust |

A call with no entry in `REQUESTS` fails the proof ("map it"), so a new call is never waved
through. The mapping cites, per service, the page that says which IAM action authorises an API call
where the names differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from tests import cfnkit
from tests.callrecord import CliCall, FunctionCall, Recording
from tests.iamproof import Decision, Policy, Question, Request, answer, can_carry

STACKSET_ID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
FUNCTION_ROLES = {"replication-monitor": "ReplicationMonitorRole", "config-validator": "ConfigValidatorRole",
                  "stream-processor": "StreamProcessorRole"}
FUNCTIONS = tuple(FUNCTION_ROLES)


# ----------------------------------------------------------------------------- the estate's names


@dataclass(frozen=True)
class Estate:
    """The names that fill the templates' parameters, taken from environments.yaml or a function's settings."""

    admin: str
    accounts: tuple[tuple[str, str], ...]  # (environment, account id) in rollout order
    stack_set: str = "replctl-replication"
    administration_role: str = "AWSCloudFormationStackSetAdministrationRole"
    execution_role: str = "AWSCloudFormationStackSetExecutionRole"
    observer_role: str = "replctl-observer"
    data_remover_role: str = "replctl-data-remover"
    prefix: str = "replctl"
    bucket_prefix: str = "replctl-config"
    table: str = "replctl-metadata"
    ssm_prefix: str = "/app"
    agent_role: str = "replctl-replication-agent"
    external_id: str = "replctl-replication"
    artifact_bucket: str = "replctl-artifacts-*"
    artifact_prefix: str = "replctl/"
    replicate_to: frozenset[str] = frozenset({"staging", "prod"})

    def environment_of(self, account: str) -> str | None:
        return next((env for env, a in self.accounts if a == account), None)

    def account_of(self, environment: str) -> str:
        return dict(self.accounts)[environment]

    def replication_parameters(self, environment: str) -> dict[str, str]:
        accounts = dict(self.accounts)
        return {
            **cfnkit.instance_parameters(environment, "staging" in self.replicate_to, "prod" in self.replicate_to),
            "AccountIdDev": accounts["dev"], "AccountIdStaging": accounts["staging"], "AccountIdProd": accounts["prod"],
            "ResourcePrefix": self.prefix, "ReplicationBucketName": self.bucket_prefix,
            "DynamoDBTableName": self.table, "SSMPathPrefix": self.ssm_prefix, "ReplicationRoleName": self.agent_role,
            "ReplicationExternalId": self.external_id, "ObserverRoleName": self.observer_role,
        }

    def bootstrap_parameters(self) -> dict[str, str]:
        return {"AdminAccountId": self.admin, "AdministrationRoleName": self.administration_role,
                "ExecutionRoleName": self.execution_role, "StackSetName": self.stack_set, "ResourcePrefix": self.prefix,
                "ReplicationBucketName": self.bucket_prefix, "DynamoDBTableName": self.table,
                "SSMPathPrefix": self.ssm_prefix, "ReplicationRoleName": self.agent_role,
                "ObserverRoleName": self.observer_role, "ArtifactBucketNamePattern": self.artifact_bucket,
                "DataRemoverRoleName": self.data_remover_role}

    def operator_parameters(self) -> dict[str, str]:
        return {"StackSetName": self.stack_set, "AdministrationRoleName": self.administration_role,
                "ObserverRoleName": self.observer_role, "ArtifactBucketNamePattern": self.artifact_bucket,
                "ArtifactPrefix": self.artifact_prefix, "OperatorTrustedRolePattern": "*",
                "DataRemoverRoleName": self.data_remover_role}

    def operator_arn(self) -> str:
        return f"arn:aws:iam::{self.admin}:role/replctl/replctl-operator"

    def observer_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/replctl/{self.observer_role}"

    def data_remover_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/replctl/{self.data_remover_role}"

    def function_role_arn(self, account: str, function: str) -> str:
        return f"arn:aws:iam::{account}:role/replctl/{self.prefix}-{function}-{cfnkit.REGION}"

    def agent_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/replctl/{self.agent_role}"


def estate_of_config(config: Any) -> Estate:
    """The names of an estate file (replctl.config.Config)."""
    params = dict(config.parameters)
    pattern = re.sub(r"\{[a-z_]+\}", "*", config.stackset.artifact_bucket)
    return Estate(
        admin=config.admin.account_id, accounts=tuple((e.name, e.account_id) for e in config.environments),
        stack_set=config.stackset.name, administration_role=config.stackset.administration_role_name,
        execution_role=config.stackset.execution_role_name, observer_role=config.observer_role_name,
        data_remover_role=config.data_remover_role_name,
        prefix=params.get("ResourcePrefix", "replctl"), bucket_prefix=params.get("ReplicationBucketName", "replctl-config"),
        table=params.get("DynamoDBTableName", "replctl-metadata"), ssm_prefix=config.ssm_prefix,
        agent_role=params.get("ReplicationRoleName", "replctl-replication-agent"),
        external_id=params.get("ReplicationExternalId", "replctl-replication"), artifact_bucket=pattern,
        artifact_prefix=config.stackset.artifact_prefix)


def estate_of_settings(settings: Any) -> Estate:
    """The names a function knows (replshared.settings.Settings); the admin account is not one of them."""
    return Estate(admin=cfnkit.ADMIN, accounts=tuple(settings.accounts), table=settings.table_name,
                  bucket_prefix=settings.bucket_prefix, ssm_prefix=settings.ssm_path_prefix,
                  agent_role=settings.replication_role_name, external_id=settings.external_id or "replctl-replication",
                  replicate_to=frozenset(settings.replicate_to))


# ----------------------------------------------------------------------------- policies


@lru_cache(maxsize=256)
def _rendered(template: str, parameters: tuple[tuple[str, str], ...], account: str) -> cfnkit.Rendered:
    return cfnkit.render(_template(template), dict(parameters), account)


_TEMPLATES: dict[str, dict[str, Any]] = {}


def _template(name: str) -> dict[str, Any]:
    """A template by file name; tests may replace one (`use_templates`) to prove a mutated copy."""
    if name not in _TEMPLATES:
        _TEMPLATES[name] = cfnkit.load(name)
    return _TEMPLATES[name]


def use_templates(**templates: dict[str, Any]) -> None:
    """Prove against these template dicts (keyed by file name with "_" for "-" and no suffix)."""
    _rendered.cache_clear()
    _TEMPLATES.clear()
    for key, value in templates.items():
        _TEMPLATES[key.replace("_", "-") + ".yaml"] = value


def rendered(template: str, parameters: Mapping[str, str], account: str) -> cfnkit.Rendered:
    return _rendered(template, tuple(sorted(parameters.items())), account)


def _role_policies(r: cfnkit.Rendered, role_logical: str) -> list[Policy]:
    props = r.properties(role_logical)
    found = [Policy.of(f"{role_logical}/{p['PolicyName']}", p["PolicyDocument"]) for p in props.get("Policies", [])]
    for name, res in r.of_type("AWS::IAM::Policy").items():
        if props["RoleName"] in res["Properties"]["Roles"]:
            found.append(Policy.of(name, res["Properties"]["PolicyDocument"]))
    return found


def boundary(estate: Estate, account: str) -> list[Policy]:
    r = rendered("stackset-execution-role.yaml", estate.bootstrap_parameters(), account)
    return [Policy.of("PermissionsBoundary", r.properties("PermissionsBoundary")["PolicyDocument"], "boundary")]


def observer_policies(estate: Estate, account: str) -> list[Policy]:
    return _role_policies(rendered("stackset-execution-role.yaml", estate.bootstrap_parameters(), account), "ObserverRole")


def data_remover_policies(estate: Estate, account: str) -> list[Policy]:
    return _role_policies(rendered("stackset-execution-role.yaml", estate.bootstrap_parameters(), account),
                          "DataRemoverRole")


def operator_policies(estate: Estate) -> list[Policy]:
    r = rendered("operator-policy.yaml", estate.operator_parameters(), estate.admin)
    return [Policy.of("OperatorPolicy", r.properties("OperatorPolicy")["PolicyDocument"])]


def replication(estate: Estate, environment: str) -> cfnkit.Rendered:
    account = estate.account_of(environment)
    return rendered("replication.yaml", estate.replication_parameters(environment), account)


# ----------------------------------------------------------------------------- calls -> requests


@dataclass(frozen=True)
class Ctx:
    """What a mapping rule sees of one call."""

    params: Mapping[str, Any]
    account: str
    region: str
    estate: Estate


Spec = tuple[str, str, dict[str, Any]]  # (IAM action, resource ARN, condition keys the call carries)


def _bucket(c: Ctx) -> str:
    return f"arn:aws:s3:::{c.params['Bucket']}"


def _object(c: Ctx) -> str:
    return f"arn:aws:s3:::{c.params['Bucket']}/{c.params['Key']}"


def _table(c: Ctx) -> str:
    return f"arn:aws:dynamodb:{c.region}:{c.account}:table/{c.params['TableName']}"


def _leading_keys(c: Ctx) -> dict[str, Any]:
    """dynamodb:LeadingKeys, the partition key value(s) the item call touches (DynamoDB Developer Guide,
    "Using IAM policy conditions for fine-grained access control")."""
    item = c.params.get("Key") or c.params.get("Item") or {}
    if "pk" in item:
        return {"dynamodb:LeadingKeys": (next(iter(item["pk"].values())),)}
    value = (c.params.get("ExpressionAttributeValues") or {}).get(":pk")
    return {"dynamodb:LeadingKeys": (next(iter(value.values())),)} if value else {}


def _update_table(c: Ctx) -> list[Spec]:
    """dynamodb:UpdateTable on the table where the call is sent. A ReplicaUpdates Delete "invokes the
    DeleteTableReplica action in the destination Region" (DynamoDB API reference,
    ReplicationGroupUpdate), and "To delete replica tables in DynamoDB, you must have the following
    permissions in the destination regions: dynamodb:DeleteTable, dynamodb:DeleteTableReplica"
    (DynamoDB Developer Guide, "Using IAM with global tables", version 2019.11.21)."""
    specs: list[Spec] = [("dynamodb:UpdateTable", _table(c), {})]
    for update in c.params.get("ReplicaUpdates", []):
        if set(update) != {"Delete"}:
            raise Unmapped(f"dynamodb:UpdateTable with ReplicaUpdates {sorted(update)}: only Delete is mapped")
        there = f"arn:aws:dynamodb:{update['Delete']['RegionName']}:{c.account}:table/{c.params['TableName']}"
        specs += [("dynamodb:DeleteTable", there, {}), ("dynamodb:DeleteTableReplica", there, {})]
    return specs


def _parameter(c: Ctx, name: str) -> str:
    return f"arn:aws:ssm:{c.region}:{c.account}:parameter{name if name.startswith('/') else '/' + name}"


def _stackset(c: Ctx) -> str:
    return f"arn:aws:cloudformation:{c.region}:{c.account}:stackset/{c.params['StackSetName']}:{STACKSET_ID}"


def _role_arns(c: Ctx, name: str) -> list[str]:
    """GetRole names a role without its path: IAM authorises it against the role's ARN when it exists
    (path included) and against role/<name> when it does not. replctl's roles live under /replctl/
    except the StackSet roles, so both forms are proved for them."""
    arns = [f"arn:aws:iam::{c.account}:role/{name}"]
    if name not in (c.estate.administration_role, c.estate.execution_role):
        arns.append(f"arn:aws:iam::{c.account}:role/replctl/{name}")
    return arns


def _template_read(c: Ctx) -> list[Spec]:
    """CloudFormation reads TemplateURL with the caller's permissions (CloudFormation User Guide,
    "Template URL": the caller needs s3:GetObject)."""
    url = c.params.get("TemplateURL")
    if not url:
        return []
    parsed = urlparse(url)
    host_bucket = parsed.netloc.split(".s3")[0] if ".s3" in parsed.netloc else None
    key = parsed.path.lstrip("/")
    if host_bucket is None:
        host_bucket, _, key = key.partition("/")
    return [("s3:GetObject", f"arn:aws:s3:::{host_bucket}/{key}", {})]


def _stackset_write(action: str) -> Callable[[Ctx], list[Spec]]:
    def specs(c: Ctx) -> list[Spec]:
        found: list[Spec] = [(action, "*" if action == "cloudformation:CreateStackSet" else _stackset(c), {})]
        if c.params.get("AdministrationRoleARN"):
            # Self-managed permissions: the caller passes the administration role to CloudFormation.
            found.append(("iam:PassRole", c.params["AdministrationRoleARN"],
                          {"iam:PassedToService": "cloudformation.amazonaws.com"}))
        return found + _template_read(c)
    return specs


def _instances(action: str) -> Callable[[Ctx], list[Spec]]:
    return lambda c: [(action, _stackset(c), {"cloudformation:TargetRegion": tuple(c.params.get("Regions", []))})]


def _describe_alarms(c: Ctx) -> list[Spec]:
    # "To use this operation and return information about composite alarms, you must be signed on with
    # the cloudwatch:DescribeAlarms permission that is scoped to *" (CloudWatch API reference).
    if "CompositeAlarm" in c.params.get("AlarmTypes", []):
        return [("cloudwatch:DescribeAlarms", "*", {})]
    prefix = c.params.get("AlarmNamePrefix", "")
    return [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{c.region}:{c.account}:alarm:{prefix}*", {})]


def _put_parameter(c: Ctx) -> list[Spec]:
    context = {"ssm:Overwrite": str(bool(c.params.get("Overwrite"))).lower()}
    return [("ssm:PutParameter", _parameter(c, c.params["Name"]), context)]


def _put_events(c: Ctx) -> list[Spec]:
    bus = c.params.get("EventBusName") or "default"
    return [("events:PutEvents", f"arn:aws:events:{c.region}:{c.account}:event-bus/{e.get('EventBusName', bus)}",
             {"events:source": e["Source"], "events:detail-type": e["DetailType"]}) for e in c.params["Entries"]]


def _queue(c: Ctx) -> str:
    account, name = c.params["QueueUrl"].rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{c.region}:{account}:{name}"


def _function(c: Ctx) -> str:
    name = c.params["FunctionName"]
    return name if name.startswith("arn:") else f"arn:aws:lambda:{c.region}:{c.account}:function:{name}"


# Where an API operation's IAM action differs from its name, the service's page says so: Amazon S3
# User Guide, "Required permissions for Amazon S3 API operations" (HeadBucket needs s3:ListBucket,
# HeadObject s3:GetObject, Put/GetBucketEncryption s3:Put/GetEncryptionConfiguration,
# PutPublicAccessBlock s3:PutBucketPublicAccessBlock, GetBucketReplication
# s3:GetReplicationConfiguration); Lambda API reference, GetFunction ("Lambda returns tag data only
# if you have explicit allow permissions for lambda:ListTags"); STS API reference,
# GetCallerIdentity ("No permissions are required to perform this operation").
REQUESTS: dict[tuple[str, str], Callable[[Ctx], list[Spec]]] = {
    ("cloudformation", "CreateStackSet"): _stackset_write("cloudformation:CreateStackSet"),
    ("cloudformation", "UpdateStackSet"): _stackset_write("cloudformation:UpdateStackSet"),
    ("cloudformation", "CreateStackInstances"): _instances("cloudformation:CreateStackInstances"),
    ("cloudformation", "UpdateStackInstances"): _instances("cloudformation:UpdateStackInstances"),
    ("cloudformation", "DeleteStackInstances"): _instances("cloudformation:DeleteStackInstances"),
    ("cloudformation", "DeleteStackSet"): lambda c: [("cloudformation:DeleteStackSet", _stackset(c), {})],
    **{("cloudformation", op): (lambda op: lambda c: [(f"cloudformation:{op}", _stackset(c), {})])(op) for op in (
        "DescribeStackSet", "DescribeStackSetOperation", "ListStackSetOperations", "ListStackSetOperationResults",
        "ListStackInstances", "DescribeStackInstance", "DetectStackSetDrift", "ListStackInstanceResourceDrifts")},
    ("sts", "GetCallerIdentity"): lambda c: [],
    ("sts", "AssumeRole"): lambda c: [("sts:AssumeRole", c.params["RoleArn"],
                                       {"sts:ExternalId": c.params["ExternalId"]} if "ExternalId" in c.params else {})],
    **{("iam", op): (lambda op: lambda c: [(f"iam:{op}", a, {}) for a in _role_arns(c, c.params["RoleName"])])(op)
       for op in ("GetRole", "GetRolePolicy", "ListRolePolicies")},
    ("s3", "CreateBucket"): lambda c: [("s3:CreateBucket", _bucket(c), {})],
    ("s3", "HeadBucket"): lambda c: [("s3:ListBucket", _bucket(c), {})],
    ("s3", "HeadObject"): lambda c: [("s3:GetObject", _object(c), {})],
    ("s3", "GetObject"): lambda c: [("s3:GetObject", _object(c), {})],
    ("s3", "PutObject"): lambda c: [("s3:PutObject", _object(c), {})],
    ("s3", "PutBucketEncryption"): lambda c: [("s3:PutEncryptionConfiguration", _bucket(c), {})],
    ("s3", "GetBucketEncryption"): lambda c: [("s3:GetEncryptionConfiguration", _bucket(c), {})],
    ("s3", "PutPublicAccessBlock"): lambda c: [("s3:PutBucketPublicAccessBlock", _bucket(c), {})],
    ("s3", "PutBucketOwnershipControls"): lambda c: [("s3:PutBucketOwnershipControls", _bucket(c), {})],
    ("s3", "PutBucketVersioning"): lambda c: [("s3:PutBucketVersioning", _bucket(c), {})],
    ("s3", "GetBucketVersioning"): lambda c: [("s3:GetBucketVersioning", _bucket(c), {})],
    ("s3", "PutBucketPolicy"): lambda c: [("s3:PutBucketPolicy", _bucket(c), {})],
    ("s3", "GetBucketReplication"): lambda c: [("s3:GetReplicationConfiguration", _bucket(c), {})],
    # ListObjectVersions: s3:ListBucketVersions; DeleteObjects: s3:DeleteObjectVersion for each object named
    # with a version id, s3:DeleteObject otherwise (same page); DeleteBucket: s3:DeleteBucket.
    ("s3", "ListObjectVersions"): lambda c: [("s3:ListBucketVersions", _bucket(c), {})],
    ("s3", "DeleteObjects"): lambda c: [("s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject",
                                         f"arn:aws:s3:::{c.params['Bucket']}/{o['Key']}", {})
                                        for o in c.params["Delete"]["Objects"]],
    ("s3", "DeleteBucket"): lambda c: [("s3:DeleteBucket", _bucket(c), {})],
    ("dynamodb", "UpdateTable"): _update_table,
    ("dynamodb", "DeleteTable"): lambda c: [("dynamodb:DeleteTable", _table(c), {})],
    ("cloudwatch", "DescribeAlarms"): _describe_alarms,
    ("cloudwatch", "GetMetricData"): lambda c: [("cloudwatch:GetMetricData", "*", {})],
    ("cloudwatch", "PutMetricData"): lambda c: [("cloudwatch:PutMetricData", "*",
                                                 {"cloudwatch:namespace": c.params["Namespace"]})],
    **{("dynamodb", op): (lambda op: lambda c: [(f"dynamodb:{op}", _table(c), _leading_keys(c))])(op)
       for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")},
    ("dynamodb", "DescribeTable"): lambda c: [("dynamodb:DescribeTable", _table(c), {})],
    ("lambda", "GetFunctionConfiguration"): lambda c: [("lambda:GetFunctionConfiguration", _function(c), {})],
    ("lambda", "GetFunction"): lambda c: [("lambda:GetFunction", _function(c), {}), ("lambda:ListTags", _function(c), {})],
    ("sqs", "GetQueueAttributes"): lambda c: [("sqs:GetQueueAttributes", _queue(c), {})],
    # The event queue replctl waits on. "You cannot set permissions explicitly for ...
    # DeleteMessageBatch, or ChangeMessageVisibilityBatch. Instead, setting permissions for ...
    # DeleteMessage, or ChangeMessageVisibility sets permissions for the corresponding batch versions"
    # (SQS Developer Guide, "Amazon SQS batch actions").
    ("sqs", "GetQueueUrl"): lambda c: [("sqs:GetQueueUrl", f"arn:aws:sqs:{c.region}:"
                                        f"{c.params.get('QueueOwnerAWSAccountId', c.account)}:{c.params['QueueName']}", {})],
    ("sqs", "ReceiveMessage"): lambda c: [("sqs:ReceiveMessage", _queue(c), {})],
    ("sqs", "DeleteMessageBatch"): lambda c: [("sqs:DeleteMessage", _queue(c), {})],
    ("sqs", "ChangeMessageVisibilityBatch"): lambda c: [("sqs:ChangeMessageVisibility", _queue(c), {})],
    ("ssm", "DescribeParameters"): lambda c: [("ssm:DescribeParameters", "*", {})],
    ("ssm", "GetParameter"): lambda c: [("ssm:GetParameter", _parameter(c, c.params["Name"]), {})],
    ("ssm", "GetParameters"): lambda c: [("ssm:GetParameters", _parameter(c, n), {}) for n in c.params["Names"]],
    ("ssm", "GetParametersByPath"): lambda c: [("ssm:GetParametersByPath", _parameter(c, c.params["Path"]), {})],
    ("ssm", "PutParameter"): _put_parameter,
    ("ssm", "DeleteParameter"): lambda c: [("ssm:DeleteParameter", _parameter(c, c.params["Name"]), {})],
    ("ssm", "DeleteParameters"): lambda c: [("ssm:DeleteParameters", _parameter(c, n), {}) for n in c.params["Names"]],
    ("events", "PutEvents"): _put_events,
}


class Unmapped(LookupError):
    """A recorded call the proof has no IAM mapping for: add one to REQUESTS, with its source."""


def requests(service: str, operation: str, ctx: Ctx, principal: str, why: str) -> list[Request]:
    rule = REQUESTS.get((service, operation))
    if rule is None:
        raise Unmapped(f"{service}:{operation} ({why}) has no IAM mapping in tests/callproof.py REQUESTS")
    return [Request(action, resource, principal, {k: v for k, v in context.items() if can_carry(action, k)}, why)
            for action, resource, context in rule(ctx)]


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Verdict:
    question: Question
    decision: Decision

    @property
    def request(self) -> Request:
        return self.question.request


def _cross_account_trust(request: Request, estate: Estate) -> Policy | None:
    """The trust policy of an AssumeRole into a role of another account (None: not such a call).

    A role the estate does not know gets an empty trust policy, which trusts nobody."""
    if request.action != "sts:AssumeRole":
        return None
    target = request.resource.split(":")[4]
    if target == request.account:
        return None
    env = estate.environment_of(target)
    if request.resource == estate.agent_arn(target) and env is not None:
        trust = replication(estate, env).properties("ReplicationAgentRole")["AssumeRolePolicyDocument"]
    elif request.resource == estate.observer_arn(target):
        r = rendered("stackset-execution-role.yaml", estate.bootstrap_parameters(), target)
        trust = r.properties("ObserverRole")["AssumeRolePolicyDocument"]
    elif request.resource == estate.data_remover_arn(target):
        r = rendered("stackset-execution-role.yaml", estate.bootstrap_parameters(), target)
        trust = r.properties("DataRemoverRole")["AssumeRolePolicyDocument"]
    else:
        return Policy(f"trust of {request.resource}, which is no role of this estate", (), "trust")
    return Policy.of(f"trust of {request.resource}", trust, "trust")


def _judge(request: Request, identity: list[Policy], bound: list[Policy], estate: Estate) -> Verdict:
    question = Question(request, tuple(identity), tuple(bound), trust=_cross_account_trust(request, estate))
    return Verdict(question, answer(question))


#: Calls made through the factory as a function's role: only the sandbox does that, playing the AWS
#: services the emulator lacks (EMF delivery, S3 replication, the Lambda service's own metrics).
#: They never run against AWS, where the services themselves do this work.
SANDBOX_ROLE = re.compile(r":role/replctl/[a-z0-9-]+-(replication-monitor|config-validator|stream-processor)(-[a-z0-9-]+)?$")


def _as_execution_role(call: CliCall) -> bool:
    """A call as (or assuming) the StackSet execution role."""
    if call.config is None:
        return False
    name = f":role/{call.config.stackset.execution_role_name}"
    target = str(call.params.get("RoleArn", "")) if call.operation == "AssumeRole" else ""
    return bool(call.role_arn and call.role_arn.endswith(name)) or target.endswith(name)


def prove_cli(call: CliCall) -> list[Verdict]:
    if call.role_arn is not None and SANDBOX_ROLE.search(call.role_arn):
        return []
    if _as_execution_role(call):
        # The sandbox playing StackSets, which acts as the execution role in AWS (the CLI itself can
        # never assume it: it trusts only the administration role). What that role must allow is
        # the handler proof's business (tests/unit/cfn/test_permission_proof.py).
        return []
    if call.operation == "AssumeRole" and SANDBOX_ROLE.search(str(call.params.get("RoleArn", ""))):
        return []  # the sandbox playing the Lambda service, which assumes the function's role in AWS
    if call.config is None:
        raise Unmapped(f"{call.service}:{call.operation} was made with no estate file loaded")
    estate = estate_of_config(call.config)
    if call.role_arn is not None and call.role_arn == getattr(call.config.admin, "role_arn", None):
        principal, identity = estate.operator_arn(), operator_policies(estate)
    elif call.role_arn is None:
        if call.operation == "AssumeRole" and call.params.get("RoleArn") == call.config.admin.role_arn:
            return []  # becoming the operator: the operator role's own trust, not replctl's policy
        principal, identity = estate.operator_arn(), operator_policies(estate)
    elif call.role_arn == estate.observer_arn(call.account):
        principal, identity = call.role_arn, observer_policies(estate, call.account)
    elif call.role_arn == estate.data_remover_arn(call.account):
        principal, identity = call.role_arn, data_remover_policies(estate, call.account)
    else:
        raise Unmapped(f"{call.service}:{call.operation} as {call.role_arn}: no policy known for that role")
    account = estate.admin if call.account == "caller" else call.account
    why = f"replctl as {principal.rsplit('/', 1)[-1]} in {account}"
    ctx = Ctx(call.params, account, call.region, estate)
    return [_judge(r, identity, [], estate) for r in requests(call.service, call.operation, ctx, principal, why)]


def prove_function(call: FunctionCall) -> list[Verdict]:
    estate = estate_of_settings(call.settings)
    own_env = call.settings.environment
    env = call.target or own_env
    account = estate.account_of(env)
    if call.target is None:
        principal = estate.function_role_arn(account, call.function)
        identity = _role_policies(replication(estate, own_env), FUNCTION_ROLES[call.function])
    else:
        principal = estate.agent_arn(account)
        r = replication(estate, env)
        identity = _role_policies(r, "ReplicationAgentRole") if "ReplicationAgentRole" in r.resources else []
    why = f"{call.function} of {own_env} as {principal.rsplit('/', 1)[-1]} in {account}"
    ctx = Ctx(call.params, account, call.settings.region or cfnkit.REGION, estate)
    bound = boundary(estate, account)
    return [_judge(r, identity, bound, estate) for r in requests(call.service, call.operation, ctx, principal, why)]


def prove(recording: Recording) -> list[Verdict]:
    return [*(v for c in recording.cli for v in prove_cli(c)),
            *(v for c in recording.functions for v in prove_function(c))]


def denials(verdicts: Iterable[Verdict]) -> list[str]:
    out = []
    for v in verdicts:
        if not v.decision.allowed:
            line = f"{v.request.why}: {v.request.action} on {v.request.resource}: {v.decision.reason}"
            if line not in out:
                out.append(line)
    return out
