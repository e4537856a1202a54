"""cfn/replication.yaml deployed through a StackSet into three moto accounts.

GIVEN the template, three target accounts (dev, staging, prod) and the admin account, bootstrapped
as the sandbox bootstraps them (cfn/stackset-administration-role.yaml as a stack in the admin
account, cfn/stackset-execution-role.yaml as a stack in each target account),
WHEN the StackSet creates one instance per environment with that environment's parameters,
THEN every resource type moto can create exists in each account, with the environment's names,
and the environment-specific parts (agent role, S3 replication role, parameter-change rule,
stream mapping, outputs) exist exactly where the Conditions say; the read-only observer role
comes from the bootstrap stack, not from the StackSet.

moto quirks this test works around (reference/moto-notes.md): it cannot create
AWS::DynamoDB::GlobalTable (and crashes on a GetAtt of one), so the template is adapted in this
module (`adapt_for_moto`); it skips types it does not know (alarms, bucket policy, queue policy,
subscription) silently; ParameterOverrides replace rather than merge, so each instance gets the
full parameter list.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from cfnlint.decode import decode

from moto import mock_aws

from replctl.sandbox.adapt.template import adapt_template_for_sandbox

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "cfn" / "replication.yaml"
ADMIN_ROLE_TEMPLATE = REPO / "cfn" / "stackset-administration-role.yaml"
EXECUTION_ROLE_TEMPLATE = REPO / "cfn" / "stackset-execution-role.yaml"
ADMIN_STACK = "replctl-stackset-administration-role"  # the sandbox's stack names
EXECUTION_STACK = "replctl-stackset-execution-role"
OBSERVER = "replctl-observer"

REGION = "us-east-1"
ADMIN = "123456789012"
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
STACK_SET = "replctl-replication"
EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"
ARTIFACT_BUCKET = f"replctl-artifacts-{ADMIN}-{REGION}"
CODE_KEYS = {
    "ReplicationMonitorCodeKey": ("replctl/replication_monitor-0123abcd.zip", "replication_monitor"),
    "ConfigValidatorCodeKey": ("replctl/config_validator-0123abcd.zip", "config_validator"),
    "StreamProcessorCodeKey": ("replctl/stream_processor-0123abcd.zip", "stream_processor"),
}
FUNCTIONS = ("replctl-replication-monitor", "replctl-config-validator", "replctl-stream-processor")
QUEUES = (
    "replctl-replication-monitor-dlq",
    "replctl-config-validator-dlq",
    "replctl-stream-processor-dlq",
    "replctl-events-dlq",
)


def adapt_for_moto(template: dict[str, Any]) -> dict[str, Any]:
    """The template as the sandbox deploys it (replctl.sandbox.adapt, the one place that knows
    moto's gaps: GlobalTable → Table, KMS key policy/tags forms), except that the stream mapping
    is kept: the sandbox drops it because moto would drain the stream through Docker on every
    write, but this module writes no item, so it can check the mapping's deployed properties."""
    adapted = json.loads(adapt_template_for_sandbox(json.dumps(template)))
    adapted["Resources"]["MetadataStreamMapping"] = copy.deepcopy(template["Resources"]["MetadataStreamMapping"])
    return adapted


def _load_template() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return json.loads(json.dumps(template))


def _dummy_zip(module: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{module}.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _parameters(environment: str) -> list[dict[str, str]]:
    values = {
        "Environment": environment,
        "AccountIdDev": ACCOUNTS["dev"],
        "AccountIdStaging": ACCOUNTS["staging"],
        "AccountIdProd": ACCOUNTS["prod"],
        "ArtifactBucketName": ARTIFACT_BUCKET,
        "ReplicateToStaging": "true",
        "ReplicateToProd": "true",
        "ReplicationExternalId": "replctl-estate-7f3a",
        "LogRetentionDays": "30",
        **{name: key for name, (key, _) in CODE_KEYS.items()},
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _session(account: str) -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{EXECUTION_ROLE}", RoleSessionName="template-test"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


# What the sandbox passes to the bootstrap templates (replctl/sandbox/bootstrap.py fills them by
# name from environments.yaml; these are that file's values).
BOOTSTRAP_PARAMETERS = {
    "AdminAccountId": ADMIN,
    "AdministrationRoleName": "AWSCloudFormationStackSetAdministrationRole",
    "ExecutionRoleName": EXECUTION_ROLE,
    "StackSetName": STACK_SET,
    "ObserverRoleName": OBSERVER,
    "SSMPathPrefix": "/app",
}


def _bootstrap_parameters(path: Path) -> list[dict[str, str]]:
    template, matches = decode(str(path))
    assert not matches, matches
    names = template.get("Parameters", {})
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in BOOTSTRAP_PARAMETERS.items() if k in names]


def _create_stack(cfn: Any, name: str, path: Path) -> None:
    cfn.create_stack(StackName=name, TemplateBody=path.read_text(), Parameters=_bootstrap_parameters(path),
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def _bootstrap() -> None:
    """The admin role in the admin account, then the execution-role stack in each target account,
    deployed there through the execution role, as the sandbox does."""
    _create_stack(boto3.client("cloudformation", region_name=REGION), ADMIN_STACK, ADMIN_ROLE_TEMPLATE)
    for account in ACCOUNTS.values():
        _create_stack(_session(account).client("cloudformation"), EXECUTION_STACK, EXECUTION_ROLE_TEMPLATE)


@pytest.fixture(scope="module")
def estate():
    """Bootstrapped accounts and the StackSet with one instance per environment; yields a boto3
    session per environment."""
    with mock_aws():
        _bootstrap()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        for key, module in CODE_KEYS.values():
            s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=_dummy_zip(module))
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack_set(
            StackSetName=STACK_SET,
            TemplateBody=json.dumps(adapt_for_moto(_load_template())),
            PermissionModel="SELF_MANAGED",
            AdministrationRoleARN=f"arn:aws:iam::{ADMIN}:role/AWSCloudFormationStackSetAdministrationRole",
            ExecutionRoleName=EXECUTION_ROLE,
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Parameters=_parameters("dev"),
        )
        for environment, account in ACCOUNTS.items():  # rollout order
            cfn.create_stack_instances(
                StackSetName=STACK_SET,
                Accounts=[account],
                Regions=[REGION],
                ParameterOverrides=_parameters(environment),
            )
        yield {environment: _session(account) for environment, account in ACCOUNTS.items()}


def _stacks(session: boto3.Session) -> dict[str, dict[str, Any]]:
    return {s["StackName"]: s for s in session.client("cloudformation").describe_stacks()["Stacks"]}


def _stack(session: boto3.Session) -> dict[str, Any]:
    """The StackSet's stack instance in the account (the other stack is the bootstrap). moto names
    it "StackSet:<name>", AWS "StackSet-<name>-<id>"."""
    (instance,) = [s for n, s in _stacks(session).items() if n != EXECUTION_STACK]
    return instance


def _resources(session: boto3.Session, stack: str) -> dict[str, str]:
    """Logical id -> physical id of a stack's resources (moto lists the types it skipped without ids)."""
    found = session.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in found if "LogicalResourceId" in r}


def _policy_document(value: Any) -> dict[str, Any]:
    """An inline policy as IAM returns it: URL-encoded JSON on AWS; moto returns the Python repr of
    the dict for a policy a CloudFormation stack created."""
    if isinstance(value, dict):
        return value
    try:
        return json.loads(unquote(value))
    except ValueError:
        return ast.literal_eval(value)


def _outputs(session: boto3.Session) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in _stack(session).get("Outputs") or []}


def _role_names(session: boto3.Session) -> dict[str, str]:
    roles = session.client("iam").list_roles(PathPrefix="/replctl/")["Roles"]
    return {r["RoleName"]: r for r in roles}


ENVIRONMENTS = tuple(ACCOUNTS)


def test_adaptation_changes_only_what_moto_cannot_take():
    original = _load_template()
    adapted = adapt_for_moto(original)
    assert original["Resources"]["MetadataTable"]["Type"] == "AWS::DynamoDB::GlobalTable"
    assert adapted["Resources"]["MetadataTable"]["Type"] == "AWS::DynamoDB::Table"
    assert adapted["Resources"]["MetadataTable"]["Properties"]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True
    }
    for name, resource in adapted["Resources"].items():
        if name not in ("MetadataTable", "AlarmTopicKey"):
            assert resource == original["Resources"][name], name


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_stack_instance_created_in_each_target_account(estate, environment):
    stack = _stack(estate[environment])
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["Environment"] == environment


def test_admin_account_holds_only_its_bootstrap_stack(estate):
    summaries = boto3.client("cloudformation", region_name=REGION).list_stacks()["StackSummaries"]
    assert [s["StackName"] for s in summaries] == [ADMIN_STACK]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_target_account_holds_its_bootstrap_stack_and_one_instance(estate, environment):
    stacks = _stacks(estate[environment])
    assert stacks[EXECUTION_STACK]["StackStatus"] == "CREATE_COMPLETE"
    assert len(stacks) == 2
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[EXECUTION_STACK]["Outputs"]}
    assert outputs["ObserverRoleArn"] == f"arn:aws:iam::{ACCOUNTS[environment]}:role/replctl/{OBSERVER}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_bucket_named_by_convention_and_encrypted(estate, environment):
    s3 = estate[environment].client("s3")
    bucket = f"replctl-config-{environment}-{ACCOUNTS[environment]}"
    mine = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket in mine
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert _outputs(estate[environment])["S3BucketName"] == bucket


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_functions_follow_the_contract(estate, environment):
    lam = estate[environment].client("lambda")
    handlers = {
        "replctl-replication-monitor": "replication_monitor.handler",
        "replctl-config-validator": "config_validator.handler",
        "replctl-stream-processor": "stream_processor.handler",
    }
    for name in FUNCTIONS:
        config = lam.get_function(FunctionName=name)["Configuration"]
        assert config["Runtime"] == "python3.11"
        assert config["MemorySize"] == 256
        assert config["Handler"] == handlers[name]
        assert config["Role"].startswith(f"arn:aws:iam::{ACCOUNTS[environment]}:role/replctl/{name}-{REGION}")
        variables = config["Environment"]["Variables"]
        assert variables["ENVIRONMENT"] == environment
        assert variables["BUCKET_NAME"] == f"replctl-config-{environment}-{ACCOUNTS[environment]}"
        assert variables["TABLE_NAME"] == "replctl-metadata"
        assert variables["REPLICATION_EXTERNAL_ID"] == "replctl-estate-7f3a"
        assert variables["ROLE_PATH"] == "/replctl/"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_metadata_table_has_keys_and_stream(estate, environment):
    table = estate[environment].client("dynamodb").describe_table(TableName="replctl-metadata")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert _outputs(estate[environment])["DynamoDBTableArn"] == (
        f"arn:aws:dynamodb:{REGION}:{ACCOUNTS[environment]}:table/replctl-metadata"
    )


@pytest.mark.parametrize(
    ("environment", "targets"), [("dev", "staging,prod"), ("staging", "prod"), ("prod", "none")]
)
def test_ssm_hierarchy_of_the_environment(estate, environment, targets):
    ssm = estate[environment].client("ssm")
    found = ssm.get_parameters_by_path(Path=f"/app/{environment}/config", Recursive=True)["Parameters"]
    values = {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in found}
    assert values == {"schema-version": "1", "environment": environment, "replication-targets": targets}
    # Only its own hierarchy: mirrors of upstream hierarchies arrive later, from the monitor.
    assert ssm.get_parameters_by_path(Path="/app", Recursive=True)["Parameters"] == found


@pytest.mark.parametrize(
    ("environment", "agent", "s3_replication"),
    [("dev", False, True), ("staging", True, True), ("prod", True, False)],
)
def test_roles_exist_only_where_the_conditions_say(estate, environment, agent, s3_replication):
    roles = _role_names(estate[environment])
    assert OBSERVER in roles
    assert ("replctl-replication-agent" in roles) is agent
    assert (f"replctl-s3-replication-{environment}" in roles) is s3_replication
    for name in FUNCTIONS:
        assert f"{name}-{REGION}" in roles
    outputs = _outputs(estate[environment])
    assert ("ReplicationRoleArn" in outputs) is agent
    if agent:
        assert outputs["ReplicationRoleArn"] == (
            f"arn:aws:iam::{ACCOUNTS[environment]}:role/replctl/replctl-replication-agent"
        )


def test_agent_role_trusts_only_upstream_function_roles(estate):
    iam = estate["prod"].client("iam")
    trust = iam.get_role(RoleName="replctl-replication-agent")["Role"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    principals = statement["Principal"]["AWS"]
    assert sorted(principals) == [f"arn:aws:iam::{ACCOUNTS['dev']}:root", f"arn:aws:iam::{ACCOUNTS['staging']}:root"]
    assert statement["Condition"]["StringEquals"]["sts:ExternalId"] == "replctl-estate-7f3a"
    trusted = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert len(trusted) == 6
    assert all(":role/replctl/replctl-" in arn and ACCOUNTS["prod"] not in arn for arn in trusted)
    staging_trust = estate["staging"].client("iam").get_role(RoleName="replctl-replication-agent")["Role"]
    staging_principals = staging_trust["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
    assert staging_principals in (f"arn:aws:iam::{ACCOUNTS['dev']}:root", [f"arn:aws:iam::{ACCOUNTS['dev']}:root"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_observer_role_belongs_to_the_bootstrap_stack_not_the_stackset(estate, environment):
    session = estate[environment]
    bootstrap = _resources(session, EXECUTION_STACK)
    assert bootstrap["ObserverRole"] == OBSERVER
    instance = _resources(session, _stack(session)["StackName"])
    assert OBSERVER not in instance.values() and "ObserverRole" not in instance
    # The instance's output names the bootstrap's role by convention.
    assert _outputs(session)["ObserverRoleArn"] == f"arn:aws:iam::{ACCOUNTS[environment]}:role/replctl/{OBSERVER}"


def test_observer_role_trusts_the_admin_account_with_a_condition(estate):
    role = estate["dev"].client("iam").get_role(RoleName=OBSERVER)["Role"]
    assert role["Path"] == "/replctl/" and "PermissionsBoundary" not in role
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"]["AWS"] == f"arn:aws:iam::{ADMIN}:root"
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == f"arn:aws:iam::{ADMIN}:role/*"


def test_observer_can_read_the_execution_role_and_replctl_roles(estate):
    """validate-accounts reads IAM through the observer before the first rollout."""
    iam = estate["staging"].client("iam")
    (name,) = iam.list_role_policies(RoleName=OBSERVER)["PolicyNames"]
    document = _policy_document(iam.get_role_policy(RoleName=OBSERVER, PolicyName=name)["PolicyDocument"])
    (readiness,) = [s for s in document["Statement"] if s.get("Sid") == "AccountReadiness"]
    assert readiness["Action"] == "iam:GetRole"
    account = ACCOUNTS["staging"]
    assert readiness["Resource"] == [f"arn:aws:iam::{account}:role/{EXECUTION_ROLE}",
                                     f"arn:aws:iam::{account}:role/replctl-replication-agent",
                                     f"arn:aws:iam::{account}:role/replctl/*"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_queues_topic_and_dashboard(estate, environment):
    session = estate[environment]
    urls = session.client("sqs").list_queues()["QueueUrls"]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == sorted(QUEUES)
    topics = [t["TopicArn"] for t in session.client("sns").list_topics()["Topics"]]
    assert topics == [f"arn:aws:sns:{REGION}:{ACCOUNTS[environment]}:replctl-alarms"]
    dashboards = [d["DashboardName"] for d in session.client("cloudwatch").list_dashboards()["DashboardEntries"]]
    assert dashboards == [f"replctl-{environment}"]
    body = json.loads(session.client("cloudwatch").get_dashboard(DashboardName=f"replctl-{environment}")["DashboardBody"])
    assert len(body["widgets"]) >= 6
    outputs = _outputs(session)
    assert outputs["CloudWatchDashboardUrl"].endswith(f"#dashboards/dashboard/replctl-{environment}")
    assert outputs["AlarmTopicArn"] == topics[0]
    assert outputs["ReplicationStatusEndpoint"] == "dynamodb://replctl-metadata/LOCAL%23LAG"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_alarm_topic_key_keeps_its_tags_rotation_and_alias(estate, environment):
    """The execution role manages keys by their replctl-managed tag once it has propagated: the key
    must really be created with it (moto receives it in the API's tag shape, nothing is dropped)."""
    kms = estate[environment].client("kms")
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    key = aliases["alias/replctl-alarms"]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key)["Tags"]}
    assert tags.get("replctl-managed") == "true"
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    topic = estate[environment].client("sns").get_topic_attributes(
        TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNTS[environment]}:replctl-alarms")["Attributes"]
    assert topic["KmsMasterKeyId"] in (key, f"arn:aws:kms:{REGION}:{ACCOUNTS[environment]}:key/{key}")


@pytest.mark.parametrize(
    ("environment", "mirrors"), [("dev", True), ("staging", True), ("prod", False)]
)
def test_event_rules_and_stream_mapping_follow_downstream(estate, environment, mirrors):
    session = estate[environment]
    rules = {r["Name"]: r for r in session.client("events").list_rules()["Rules"]}
    expected = {f"replctl-{environment}-{n}" for n in ("stack-status", "heartbeat", "validation-sweep")}
    if mirrors:
        expected.add(f"replctl-{environment}-parameter-change")
    assert set(rules) == expected
    targets = session.client("events").list_targets_by_rule(Rule=f"replctl-{environment}-heartbeat")["Targets"]
    assert targets[0]["Arn"].endswith(":function:replctl-replication-monitor")
    assert targets[0]["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert targets[0]["DeadLetterConfig"]["Arn"].endswith(":replctl-events-dlq")
    if mirrors:
        pattern = json.loads(rules[f"replctl-{environment}-parameter-change"]["EventPattern"])
        assert pattern["detail"]["name"] == [{"prefix": f"/app/{environment}/config/"}]
    mappings = session.client("lambda").list_event_source_mappings(FunctionName="replctl-stream-processor")[
        "EventSourceMappings"
    ]
    assert len(mappings) == (1 if mirrors else 0)
    if mirrors:
        (mapping,) = mappings
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BisectBatchOnFunctionError"] is True
        assert mapping["MaximumRetryAttempts"] == 5
        assert mapping["DestinationConfig"]["OnFailure"]["Destination"].endswith(":replctl-stream-processor-dlq")
        assert outputs_targets(session) == ("staging,prod" if environment == "dev" else "prod")
    else:
        assert outputs_targets(session) == "none"


def outputs_targets(session: boto3.Session) -> str:
    return _outputs(session)["ReplicationTargets"]
