"""The Conditions of cfn/replication.yaml, evaluated for every environment and switch combination.

GIVEN an environment (dev, staging, prod) and the ReplicateToStaging / ReplicateToProd switches,
WHEN the template is rendered with a pure evaluator of its Conditions (tests/cfnkit.py),
THEN each environment gets exactly its downstream replication rules, mirrors, grants and alarms:
dev -> staging and prod, staging -> prod, prod -> nobody, and no rule towards an environment
whose switch is off. Nothing ever points from prod (or any environment) back upstream.
"""

from __future__ import annotations

import itertools

import pytest

from tests import cfnkit

ACCOUNTS = cfnkit.ACCOUNTS
ADMIN = cfnkit.ADMIN
ORDER = ("dev", "staging", "prod")
PREFIX = "replctl"
BUCKET_PREFIX = "replctl-config"
FUNCTIONS = ("replication-monitor", "config-validator", "stream-processor")
TEMPLATE = cfnkit.load("replication.yaml")

SCENARIOS = [
    (env, staging, prod)
    for env, staging, prod in itertools.product(ORDER, (False, True), (False, True))
]


def expected_targets(env: str, to_staging: bool, to_prod: bool) -> list[str]:
    """The design (DESIGN §1): downstream only, and only towards switched-on environments."""
    switches = {"staging": to_staging, "prod": to_prod}
    return [e for e in ORDER[ORDER.index(env) + 1:] if switches[e]]


def upstream(env: str) -> list[str]:
    return list(ORDER[: ORDER.index(env)])


def bucket(env: str) -> str:
    return f"{BUCKET_PREFIX}-{env}-{ACCOUNTS[env]}"


def render(env: str, to_staging: bool, to_prod: bool, **extra: str) -> cfnkit.Rendered:
    parameters = cfnkit.instance_parameters(env, to_staging, to_prod, **extra)
    return cfnkit.render(TEMPLATE, parameters, ACCOUNTS[env])


def ids(scenario) -> str:
    env, s, p = scenario
    return f"{env}-staging_{'on' if s else 'off'}-prod_{'on' if p else 'off'}"


@pytest.fixture(params=SCENARIOS, ids=[ids(s) for s in SCENARIOS])
def scenario(request):
    env, to_staging, to_prod = request.param
    return env, expected_targets(env, to_staging, to_prod), render(env, to_staging, to_prod), (to_staging, to_prod)


# -- the evaluator itself ------------------------------------------------------------------------


def test_evaluator_handles_every_condition_function():
    template = {
        "Parameters": {"P": {"Type": "String", "Default": "a,b"}},
        "Conditions": {
            "A": {"Fn::Equals": [{"Ref": "P"}, "a,b"]},
            "NotA": {"Fn::Not": [{"Condition": "A"}]},
            "Both": {"Fn::And": [{"Condition": "A"}, {"Condition": "NotA"}]},
            "Either": {"Fn::Or": [{"Condition": "A"}, {"Condition": "NotA"}]},
            "Second": {"Fn::Equals": [{"Fn::Select": [1, {"Fn::Split": [",", {"Fn::Sub": "${P},"}]}]}, "b"]},
        },
    }
    assert cfnkit.evaluate_conditions(template, {"P": "a,b"}, "111111111111") == {
        "A": True, "NotA": False, "Both": False, "Either": True, "Second": True,
    }
    with pytest.raises(cfnkit.TemplateError):
        cfnkit.evaluate_conditions({"Conditions": {"X": {"Condition": "X"}}}, {}, "111111111111")
    with pytest.raises(cfnkit.TemplateError):
        cfnkit.render(TEMPLATE, {"Environment": "qa"}, "111111111111")


def test_conditions_use_the_long_form_inside_and_or_not():
    """moto reads `!Condition X` inside And/Or/Not wrongly; the template uses `- Condition: X`."""
    text = (cfnkit.CFN / "replication.yaml").read_text()
    assert "!Condition" not in text


# -- S3 replication -------------------------------------------------------------------------------


def test_bucket_replication_rules_follow_the_downstream_environments(scenario):
    env, targets, rendered, _ = scenario
    props = rendered.properties("ReplicationBucket")
    assert props["BucketName"] == bucket(env)
    if not targets:
        assert "ReplicationConfiguration" not in props
        assert "S3ReplicationRole" not in rendered.resources
        return
    config = props["ReplicationConfiguration"]
    assert config["Role"] == f"arn:aws:iam::{ACCOUNTS[env]}:role/replctl/{PREFIX}-s3-replication-{env}"
    rules = config["Rules"]
    assert [r["Id"] for r in rules] == [f"to-{t}" for t in targets]
    assert len({r["Priority"] for r in rules}) == len(rules)
    for rule, target in zip(rules, targets):
        assert rule["Status"] == "Enabled"
        assert "Filter" in rule
        assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
        assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::{bucket(target)}"
        assert rule["Destination"]["Account"] == ACCOUNTS[target]
        assert rule["Destination"]["Metrics"]["Status"] == "Enabled"


def test_s3_replication_role_writes_only_to_the_enabled_destinations(scenario):
    env, targets, rendered, _ = scenario
    if not targets:
        return
    statements = rendered.properties("S3ReplicationRole")["Policies"][0]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["SourceBucket"]["Resource"] == f"arn:aws:s3:::{bucket(env)}"
    assert by_sid["SourceObjects"]["Resource"] == f"arn:aws:s3:::{bucket(env)}/*"
    assert by_sid["DestinationObjects"]["Resource"] == [f"arn:aws:s3:::{bucket(t)}/*" for t in targets]
    assert sorted(by_sid["DestinationObjects"]["Action"]) == ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"]


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_bucket_policy_grants_match_the_environment(scenario):
    env, _, rendered, _ = scenario
    statements = {s["Sid"]: s for s in rendered.properties("ReplicationBucketPolicy")["PolicyDocument"]["Statement"]}
    upstream_roles = [f"arn:aws:iam::{ACCOUNTS[u]}:role/replctl/{PREFIX}-s3-replication-{u}" for u in upstream(env)]
    tls = statements["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    deny = next(s for sid, s in statements.items() if sid.startswith("DenyCrossAccountWrites"))
    assert deny["Condition"]["StringNotEquals"] == {"aws:PrincipalAccount": ACCOUNTS[env]}
    if upstream_roles:
        assert _as_list(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == upstream_roles
        for sid in ("AllowUpstreamReplicationObjects", "AllowUpstreamReplicationBucket"):
            # Account principals pinned to the role: S3 rejects a policy naming a missing role.
            assert _as_list(statements[sid]["Principal"]["AWS"]) == [f"arn:aws:iam::{ACCOUNTS[u]}:root" for u in upstream(env)]
            assert _as_list(statements[sid]["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == upstream_roles
    else:
        assert "ArnNotEquals" not in deny["Condition"]
        assert not any(sid.startswith("AllowUpstreamReplication") for sid in statements)
    others = [f"arn:aws:iam::{ACCOUNTS[e]}:root" for e in ORDER if e != env]
    for sid in ("AllowOtherEnvironmentsReadObjects", "AllowOtherEnvironmentsReadBucket"):
        assert _as_list(statements[sid]["Principal"]["AWS"]) == others
        assert all(a.split(":")[1].startswith(("Get", "List")) for a in statements[sid]["Action"])
        assert statements[sid]["Condition"] == {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/replctl/*"}}


# -- mirrors (SSM, metadata) and the cross-account agent ------------------------------------------


def test_agent_role_exists_only_with_upstream_and_trusts_only_upstream_functions(scenario):
    env, _, rendered, _ = scenario
    if env == "dev":
        assert "ReplicationAgentRole" not in rendered.resources
        assert "ReplicationRoleArn" not in rendered.outputs
        return
    props = rendered.properties("ReplicationAgentRole")
    assert props["RoleName"] == "replctl-replication-agent" and props["Path"] == "/replctl/"
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert _as_list(trust["Principal"]["AWS"]) == [f"arn:aws:iam::{ACCOUNTS[u]}:root" for u in upstream(env)]
    assert trust["Condition"]["StringEquals"] == {"sts:ExternalId": "replctl-replication"}
    assert trust["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [
        f"arn:aws:iam::{ACCOUNTS[u]}:role/replctl/{PREFIX}-{f}-us-east-1" for u in upstream(env) for f in FUNCTIONS
    ]
    statements = {s["Sid"]: s for s in props["Policies"][0]["PolicyDocument"]["Statement"]}
    assert statements["MirrorUpstreamHierarchies"]["Resource"] == [
        f"arn:aws:ssm:us-east-1:{ACCOUNTS[env]}:parameter/app/{u}/config/*" for u in upstream(env)
    ]
    assert rendered.outputs["ReplicationRoleArn"] == f"arn:aws:iam::{ACCOUNTS[env]}:role/replctl/replctl-replication-agent"


def test_mirroring_follows_the_downstream_environments(scenario):
    env, targets, rendered, (to_staging, to_prod) = scenario
    has_downstream = bool(targets)
    assert ("ParameterChangeRule" in rendered.resources) is has_downstream
    assert ("ParameterChangePermission" in rendered.resources) is has_downstream
    assert ("MetadataStreamMapping" in rendered.resources) is has_downstream
    assert ("AssumeDownstreamAgentPolicy" in rendered.resources) is has_downstream
    if has_downstream:
        pattern = rendered.properties("ParameterChangeRule")["EventPattern"]
        assert pattern["detail"]["name"] == [{"prefix": f"/app/{env}/config/"}]
        (statement,) = rendered.properties("AssumeDownstreamAgentPolicy")["PolicyDocument"]["Statement"]
        assert statement["Resource"] == [f"arn:aws:iam::{ACCOUNTS[t]}:role/replctl/replctl-replication-agent" for t in targets]
        assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "replctl-replication"}}
    for function in ("ReplicationMonitorLambda", "ConfigValidatorLambda", "StreamProcessorLambda"):
        variables = rendered.properties(function)["Environment"]["Variables"]
        assert variables["REPLICATE_TO_STAGING"] == str(to_staging).lower()
        assert variables["REPLICATE_TO_PROD"] == str(to_prod).lower()
        # docs/contract.md: the downstream set is derived from ENVIRONMENT and the flags.
        derived = [e for e in ORDER[ORDER.index(variables["ENVIRONMENT"]) + 1:] if variables[f"REPLICATE_TO_{e.upper()}"] == "true"]
        assert derived == targets
    assert rendered.outputs["ReplicationTargets"] == (",".join(targets) or "none")
    assert rendered.properties("ReplicationTargetsParameter")["Value"] == (",".join(targets) or "none")


def test_function_environment_is_exactly_the_contract(scenario):
    _, _, rendered, _ = scenario
    contract = {
        "ENVIRONMENT", "ACCOUNT_ID_DEV", "ACCOUNT_ID_STAGING", "ACCOUNT_ID_PROD", "REPLICATE_TO_STAGING",
        "REPLICATE_TO_PROD", "TABLE_NAME", "BUCKET_PREFIX", "BUCKET_NAME", "SSM_PATH_PREFIX",
        "REPLICATION_ROLE_NAME", "ROLE_PATH", "REPLICATION_EXTERNAL_ID", "MIRROR_SECURE_STRINGS",
        "METRICS_NAMESPACE", "EVENT_BUS_NAME", "POWERTOOLS_SERVICE_NAME",
    }
    for logical, function in zip(("ReplicationMonitorLambda", "ConfigValidatorLambda", "StreamProcessorLambda"), FUNCTIONS):
        props = rendered.properties(logical)
        assert props["FunctionName"] == f"{PREFIX}-{function}"
        assert props["Handler"] == f"{function.replace('-', '_')}.handler"
        assert set(props["Environment"]["Variables"]) == contract
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == function
        assert props["Environment"]["Variables"]["METRICS_NAMESPACE"] == "ReplicationFramework"
        assert props["Environment"]["Variables"]["ROLE_PATH"] == "/replctl/"
        assert props["Runtime"] == "python3.11" and props["MemorySize"] == "256"


# -- alarms -----------------------------------------------------------------------------------------


def test_alarms_follow_the_rules_and_always_cover_functions_and_queues(scenario):
    env, targets, rendered, _ = scenario
    alarms = {p["Properties"]["AlarmName"]: p["Properties"] for p in rendered.of_type("AWS::CloudWatch::Alarm").values()}
    always = {f"{PREFIX}-{env}-errors-{f}" for f in FUNCTIONS} | {f"{PREFIX}-{env}-validation-failures"} | {
        f"{PREFIX}-{env}-dlq-depth-{q}" for q in (*FUNCTIONS, "events")
    }
    per_target = {f"{PREFIX}-{env}-s3-{kind}-{t}" for t in targets for kind in ("latency", "failed")}
    lag = {f"{PREFIX}-{env}-metadata-lag"} if targets else set()
    assert set(alarms) == always | per_target | lag
    topic = f"arn:aws:sns:us-east-1:{ACCOUNTS[env]}:{PREFIX}-alarms"
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["TreatMissingData"] in ("ignore", "notBreaching"), name
    for target in targets:
        for kind, metric in (("latency", "ReplicationLatency"), ("failed", "OperationsFailedReplication")):
            alarm = alarms[f"{PREFIX}-{env}-s3-{kind}-{target}"]
            assert alarm["MetricName"] == metric
            assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
                "SourceBucket": bucket(env), "DestinationBucket": bucket(target), "RuleId": f"to-{target}",
            }
    if targets:
        lag_alarm = alarms[f"{PREFIX}-{env}-metadata-lag"]
        measured = [m for m in lag_alarm["Metrics"] if "MetricStat" in m]
        assert [next(d["Value"] for d in m["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "Target") for m in measured] == targets
        assert lag_alarm["Threshold"] == "1"


# -- direction: nothing flows upstream -----------------------------------------------------------


def _allow_statements(rendered):
    for name, resource in rendered.resources.items():
        props = resource["Properties"]
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if "PolicyDocument" in props and resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in _as_list(document["Statement"]):
                if statement["Effect"] == "Allow":
                    yield name, statement


@pytest.mark.parametrize("scenario_args", SCENARIOS, ids=[ids(s) for s in SCENARIOS])
def test_no_write_or_assume_ever_points_upstream(scenario_args):
    env, to_staging, to_prod = scenario_args
    rendered = render(env, to_staging, to_prod)
    not_downstream = [ACCOUNTS[e] for e in ORDER[: ORDER.index(env) + 1] if e != env]
    not_downstream_buckets = [bucket(e) for e in ORDER[: ORDER.index(env)]]
    for name, statement in _allow_statements(rendered):
        resources = " ".join(_as_list(statement.get("Resource", [])))
        for account in not_downstream:
            assert f"::{account}:role" not in resources, (env, name, statement)
        for upstream_bucket in not_downstream_buckets:
            assert upstream_bucket not in resources, (env, name, statement)
    if env == "prod":
        assert "ReplicationConfiguration" not in rendered.properties("ReplicationBucket")
        for absent in ("S3ReplicationRole", "AssumeDownstreamAgentPolicy", "ParameterChangeRule", "MetadataStreamMapping"):
            assert absent not in rendered.resources


# -- metadata table replicas ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "regions"),
    [("", ["us-east-1"]), ("us-west-2", ["us-east-1", "us-west-2"]), ("us-west-2,eu-west-1", ["us-east-1", "us-west-2", "eu-west-1"])],
)
def test_global_table_replicas_have_pitr_in_every_shape(extra, regions):
    rendered = render("dev", True, True, ExtraReplicaRegions=extra)
    table = rendered.properties("MetadataTable")
    assert [r["Region"] for r in table["Replicas"]] == regions
    for replica in table["Replicas"]:
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        # Only the home replica is protected from deletion: a DR region must stay removable.
        assert replica["DeletionProtectionEnabled"] is (replica["Region"] == "us-east-1")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {"pk": "S", "sk": "S"}


def test_extra_replica_regions_beyond_two_are_rejected():
    with pytest.raises(cfnkit.TemplateError):
        render("dev", False, False, ExtraReplicaRegions="us-west-2,eu-west-1,eu-central-1")


def test_observer_role_is_not_part_of_the_replication_template(scenario):
    """The observer comes from the bootstrap (cfn/stackset-execution-role.yaml): it must exist
    before the first rollout. The output only names it, by the contract's convention."""
    env, _, rendered, _ = scenario
    names = {r["Properties"].get("RoleName") for r in rendered.of_type("AWS::IAM::Role").values()}
    assert "replctl-observer" not in names
    assert "ObserverRole" not in rendered.resources
    assert rendered.outputs["ObserverRoleArn"] == f"arn:aws:iam::{ACCOUNTS[env]}:role/replctl/replctl-observer"
    assert "AdminAccountId" not in TEMPLATE["Parameters"]
    assert "ObserverTrustedRolePattern" not in TEMPLATE["Parameters"]


def test_bootstrap_observer_is_the_one_the_replication_output_names():
    bootstrap = cfnkit.render(cfnkit.load("stackset-execution-role.yaml"),
                              {"AdminAccountId": ADMIN, "ObserverRoleName": "ops-observer"}, ACCOUNTS["staging"])
    replication = render("staging", False, False, ObserverRoleName="ops-observer")
    assert bootstrap.outputs["ObserverRoleArn"] == replication.outputs["ObserverRoleArn"] == (
        f"arn:aws:iam::{ACCOUNTS['staging']}:role/replctl/ops-observer"
    )


def test_every_role_carries_the_permissions_boundary_unless_disabled():
    with_boundary = render("staging", True, True)
    for name, role in with_boundary.of_type("AWS::IAM::Role").items():
        assert role["Properties"]["PermissionsBoundary"] == (
            f"arn:aws:iam::{ACCOUNTS['staging']}:policy/replctl/replctl-permissions-boundary"
        ), name
    without = render("staging", True, True, PermissionsBoundaryPolicyName="")
    assert all("PermissionsBoundary" not in r["Properties"] for r in without.of_type("AWS::IAM::Role").values())


@pytest.mark.parametrize(("before", "after"), [("us-west-2", ""), ("us-west-2,eu-west-1", "us-west-2"),
                                               ("us-west-2,eu-west-1", "")])
def test_a_dr_region_can_be_removed_in_one_update(before, after):
    """CloudFormation deletes the replicas that leave Replicas (DeleteTableReplica), which a replica
    with deletion protection refuses ("When enabled, the table cannot be deleted by any user or
    process", AWS::DynamoDB::GlobalTable ReplicaSpecification): none of them may be protected."""
    old = {r["Region"]: r for r in render("dev", True, True, ExtraReplicaRegions=before).properties("MetadataTable")["Replicas"]}
    new = {r["Region"] for r in render("dev", True, True, ExtraReplicaRegions=after).properties("MetadataTable")["Replicas"]}
    removed = set(old) - new
    assert removed and "us-east-1" in new
    assert [region for region in sorted(removed) if old[region]["DeletionProtectionEnabled"]] == []
