"""E9104: every S3 bucket is versioned, encrypted, public-access-blocked and TLS-only.

Checks AWS::S3::Bucket for VersioningConfiguration Status Enabled, a default encryption rule,
all four PublicAccessBlockConfiguration flags, and an AWS::S3::BucketPolicy on the bucket that
denies aws:SecureTransport = false (in every Fn::If branch of its statements).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# cfn-lint loads each rule file on its own (not as a package): make the shared helpers importable.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
import _policy  # noqa: E402

_PAB = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")


def _true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class S3BucketHardened(CloudFormationLintRule):
    id = "E9104"
    shortdesc = "S3 buckets are versioned, encrypted, public-access-blocked and TLS-only"
    description = (
        "Every AWS::S3::Bucket enables versioning, default encryption and all four public access "
        "block settings, and has a bucket policy denying requests without TLS."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html"
    tags = ["s3", "replctl"]

    def match(self, cfn):
        policy = _policy
        template = cfn.template
        tls_only = self._tls_only_buckets(policy, template)
        matches = []
        for name, resource in policy.resources(template):
            if resource.get("Type") != "AWS::S3::Bucket":
                continue
            props = resource.get("Properties") or {}
            path = ["Resources", name, "Properties"]
            versioning = props.get("VersioningConfiguration") or {}
            if not isinstance(versioning, dict) or versioning.get("Status") != "Enabled":
                matches.append(RuleMatch(path, f"{name}: versioning is not enabled"))
            rules = ((props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")) or []
            if not any(
                isinstance(rule, dict) and (rule.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
                for rule in (rules if isinstance(rules, list) else [])
            ):
                matches.append(RuleMatch(path, f"{name}: no default encryption (BucketEncryption)"))
            pab = props.get("PublicAccessBlockConfiguration") or {}
            missing = [flag for flag in _PAB if not (isinstance(pab, dict) and _true(pab.get(flag)))]
            if missing:
                matches.append(RuleMatch(path, f"{name}: public access not fully blocked ({', '.join(missing)})"))
            if name not in tls_only:
                matches.append(RuleMatch(["Resources", name],
                                         f"{name}: no bucket policy denying aws:SecureTransport = false"))
        return matches

    @staticmethod
    def _tls_only_buckets(policy, template) -> set[str]:
        found: set[str] = set()
        for name, resource in policy.resources(template):
            if resource.get("Type") != "AWS::S3::BucketPolicy":
                continue
            props = resource.get("Properties") or {}
            bucket = props.get("Bucket")
            if not (isinstance(bucket, dict) and set(bucket) == {"Ref"}):
                continue
            document = props.get("PolicyDocument") or {}
            shapes = list(policy.branches(document.get("Statement"), []))
            if shapes and all(S3BucketHardened._has_tls_deny(policy, shape) for shape, _ in shapes):
                found.add(bucket["Ref"])
        return found

    @staticmethod
    def _has_tls_deny(policy, statements) -> bool:
        for statement, _ in policy.items(statements, []):
            if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
                continue
            condition = statement.get("Condition") or {}
            secure = (condition.get("Bool") or {}).get("aws:SecureTransport") if isinstance(condition, dict) else None
            if secure is False or (isinstance(secure, str) and secure.lower() == "false"):
                return True
        return False
