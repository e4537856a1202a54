"""What moto's CloudFormation skips, applied through the service APIs after a stack is created or updated.

moto creates the resources but ignores some of their properties (bucket versioning, encryption,
public access block, ownership controls and replication rules; a table's point-in-time
recovery) and some types entirely (CloudWatch alarms). `complete_skipped_resources` evaluates
the template for the stack's parameters (`cfnyaml.Evaluator`) and makes the calls AWS's
resource handlers would have made.
"""

from __future__ import annotations

import copy
from typing import Any

from replctl import cfnyaml


def complete_skipped_resources(session: Any, cfn: Any, stack: str, template_body: str, params: dict[str, str], *,
                               account: str, region: str) -> list[str]:
    """Apply, through the service APIs, the template properties and types moto's CFN skipped."""
    template = cfnyaml.load(template_body)
    # moto lists a skipped resource type as a blank entry: keep only the real ones.
    resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
                 if r.get("LogicalResourceId")}
    physical = {k: r.get("PhysicalResourceId", "") for k, r in resources.items()}
    ev = cfnyaml.Evaluator(template, params, account=account, region=region, stack_name=stack, physical=physical,
                           attributes=_attributes(session, template, physical, account, region))
    done: list[str] = []
    s3, cw, ddb = session.client("s3"), session.client("cloudwatch"), session.client("dynamodb")
    for logical, res in (template.get("Resources") or {}).items():
        if not ev.active(res):
            continue
        props = ev.value(copy.deepcopy(res.get("Properties") or {}))
        match res.get("Type"):
            case "AWS::S3::Bucket":
                bucket = physical.get(logical)
                if bucket:
                    _complete_bucket(s3, bucket, props)
                    done.append(f"bucket {bucket}")
            case "AWS::DynamoDB::Table" | "AWS::DynamoDB::GlobalTable":
                name = physical.get(logical) or props.get("TableName")
                if name:
                    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                        "PointInTimeRecoveryEnabled": True})
                    done.append(f"table {name} PITR")
            case "AWS::CloudWatch::Alarm":
                cw.put_metric_alarm(**_alarm_api(props))
                done.append(f"alarm {props.get('AlarmName')}")
    return done


def _attributes(session: Any, template: dict[str, Any], physical: dict[str, str], account: str,
                region: str) -> dict[tuple[str, str], str]:
    """The `Fn::GetAtt` values the skipped properties refer to (queue names and ARNs, bucket and role ARNs)."""
    attributes: dict[tuple[str, str], str] = {}
    for logical, res in (template.get("Resources") or {}).items():
        pid = physical.get(logical, "")
        if res.get("Type") == "AWS::SQS::Queue" and pid:
            attributes[(logical, "QueueName")] = pid.rsplit("/", 1)[-1]
            attributes[(logical, "Arn")] = f"arn:aws:sqs:{region}:{account}:{pid.rsplit('/', 1)[-1]}"
        if res.get("Type") == "AWS::S3::Bucket" and pid:
            attributes[(logical, "Arn")] = f"arn:aws:s3:::{pid}"
        if res.get("Type") == "AWS::IAM::Role" and pid:
            try:
                attributes[(logical, "Arn")] = session.client("iam").get_role(RoleName=pid)["Role"]["Arn"]
            except Exception:  # noqa: BLE001 - left unresolved; only the replication rule uses it
                pass
    return attributes


def _complete_bucket(s3: Any, bucket: str, props: dict[str, Any]) -> None:
    """Versioning, encryption, public access block, ownership controls and replication rules."""
    if props.get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
            "Status": props["VersioningConfiguration"]["Status"]})
    if props.get("BucketEncryption"):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": r.get("ServerSideEncryptionByDefault", {}),
             **({"BucketKeyEnabled": r["BucketKeyEnabled"]} if "BucketKeyEnabled" in r else {})}
            for r in props["BucketEncryption"].get("ServerSideEncryptionConfiguration", [])]})
    if props.get("PublicAccessBlockConfiguration"):
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if props.get("OwnershipControls"):
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=props["OwnershipControls"])
    rc = props.get("ReplicationConfiguration")
    if rc and rc.get("Rules"):
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=_replication_api(rc))
    else:
        try:
            s3.delete_bucket_replication(Bucket=bucket)
        except Exception:  # noqa: BLE001 - nothing to delete
            pass


def _replication_api(rc: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for r in rc.get("Rules", []):
        rule = {k: v for k, v in r.items() if k in (
            "ID", "Priority", "Filter", "Status", "Destination", "DeleteMarkerReplication", "SourceSelectionCriteria")}
        if "Id" in r:
            rule["ID"] = r["Id"]
        if "Filter" in rule and not rule["Filter"]:
            rule["Filter"] = {"Prefix": ""}
        rules.append(rule)
    return {"Role": rc["Role"], "Rules": rules}


_ALARM_KEYS = (
    "AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions",
    "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
    "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "Metrics", "ThresholdMetricId",
)


def _alarm_api(props: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in props.items() if k in _ALARM_KEYS}
    for k in ("Threshold",):
        if k in out:
            out[k] = float(out[k])
    for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if k in out:
            out[k] = int(out[k])
    return out


def skipped_alarm_names(session: Any, cfn: Any, stack: str, *, account: str, region: str) -> list[str]:
    """The alarms `complete_skipped_resources` created for a stack (moto's CFN never knew them)."""
    body = cfn.get_template(StackName=stack)["TemplateBody"]
    # botocore hands a JSON template body back already parsed (the adapted template is JSON).
    template = dict(body) if isinstance(body, dict) else cfnyaml.load(body)
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters") or []}
    resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
                 if r.get("LogicalResourceId")}
    physical = {k: r.get("PhysicalResourceId", "") for k, r in resources.items()}
    ev = cfnyaml.Evaluator(template, params, account=account, region=region, stack_name=stack, physical=physical,
                           attributes=_attributes(session, template, physical, account, region))
    names = []
    for res in (template.get("Resources") or {}).values():
        if res.get("Type") == "AWS::CloudWatch::Alarm" and ev.active(res):
            name = ev.value(copy.deepcopy((res.get("Properties") or {}).get("AlarmName")))
            if name:
                names.append(str(name))
    return names
