"""validator_logic: schema, key-set and bucket comparisons and the report items (no AWS)."""

from __future__ import annotations

import copy

import tests.fnkit  # noqa: F401  (puts the function folders on sys.path)

from validator_logic import (  # noqa: E402
    Difference,
    compare_buckets,
    compare_key_sets,
    compare_tables,
    normalize_bucket,
    normalize_table,
    relative_keys,
    report_items,
)

TABLE = {
    "TableName": "meta",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [{"AttributeName": "sk", "AttributeType": "S"}, {"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "type", "AttributeType": "S"}],
    "GlobalSecondaryIndexes": [{"IndexName": "by-type", "KeySchema": [{"AttributeName": "type", "KeyType": "HASH"}],
                                "Projection": {"ProjectionType": "ALL"}, "IndexStatus": "ACTIVE", "ItemCount": 4}],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
    "ItemCount": 12,
}


def variant(**changes: object) -> dict:
    table = copy.deepcopy(TABLE)
    table.update(changes)
    return table


def test_identical_schemas_have_no_difference_despite_noise() -> None:
    noisy = variant(ItemCount=99, AttributeDefinitions=list(reversed(TABLE["AttributeDefinitions"])))
    assert compare_tables("dev", {"dev": normalize_table(TABLE), "prod": normalize_table(noisy)}, "meta") == []


def test_every_schema_difference_is_named() -> None:
    other = variant(
        GlobalSecondaryIndexes=[{**TABLE["GlobalSecondaryIndexes"][0], "Projection": {"ProjectionType": "KEYS_ONLY"}},
                                {"IndexName": "extra", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
        StreamSpecification={"StreamEnabled": False},
        BillingModeSummary=None,
    )
    diffs = compare_tables("dev", {"dev": normalize_table(TABLE), "staging": normalize_table(other), "prod": None}, "meta")
    assert [(d.kind, d.environment) for d in diffs] == [
        ("table-missing", "prod"), ("table-index", "staging"), ("table-index", "staging"),
        ("table-stream", "staging"), ("table-billing", "staging")]
    assert diffs[1].detail.startswith("global secondary index by-type differs") and "KEYS_ONLY" in diffs[1].detail
    assert diffs[2].detail == "global secondary index extra exists here but not in dev"
    assert "PROVISIONED" in diffs[-1].detail


def test_key_differences() -> None:
    other = variant(KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    diffs = compare_tables("dev", {"dev": normalize_table(TABLE), "staging": normalize_table(other)}, "meta")
    assert [d.kind for d in diffs] == ["table-keys"]


def test_key_sets() -> None:
    sets = {
        "dev": relative_keys(["/app/dev/config/a", "/app/dev/config/b/c", "/app/dev/other"], "/app/dev/config"),
        "staging": relative_keys(["/app/staging/config/a", "/app/staging/config/b/c"], "/app/staging/config/"),
        "prod": relative_keys(["/app/prod/config/a"], "/app/prod/config"),
    }
    assert sets["dev"] == {"a", "b/c"}
    assert compare_key_sets(sets) == [Difference("ssm-key-missing", "prod", "b/c is set in dev, staging but not in prod")]
    assert compare_key_sets({"dev": frozenset({"a"})}) == []


def bucket(name: str, versioning: str = "Enabled", algo: str | None = "AES256", rules: tuple = ()):  # noqa: ANN201
    encryption = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algo}}]} if algo else None
    replication = {"Rules": [{"ID": d, "Status": s, "Destination": {"Bucket": f"arn:aws:s3:::{d}", "Metrics": {"Status": m}}}
                             for d, s, m in rules]} if rules else None
    return normalize_bucket(name, {"Status": versioning} if versioning != "Disabled" else {}, encryption, replication)


def test_buckets() -> None:
    buckets = {
        "dev": bucket("b-dev", rules=(("b-staging", "Enabled", "Enabled"), ("b-prod", "Enabled", "Disabled"))),
        "staging": bucket("b-staging", versioning="Suspended", algo="aws:kms", rules=(("b-dev", "Enabled", "Enabled"),)),
        "prod": bucket("b-prod", versioning="Disabled", algo=None),
    }
    expected = {"dev": frozenset({"b-staging", "b-prod"}), "staging": frozenset({"b-prod"}), "prod": frozenset()}
    diffs = compare_buckets("dev", buckets, expected, {e: f"b-{e}" for e in buckets})
    assert [(d.kind, d.environment) for d in diffs] == [
        ("bucket-replication", "dev"),  # prod rule without metrics
        ("bucket-versioning", "staging"), ("bucket-encryption", "staging"),
        ("bucket-replication", "staging"), ("bucket-replication", "staging"),  # missing prod, unexpected dev
        ("bucket-versioning", "prod"), ("bucket-encryption", "prod"),
    ]
    assert "towards b-dev" in diffs[4].detail and "unexpected" in diffs[4].detail
    assert compare_buckets("dev", {"dev": None}, {}, {"dev": "b-dev"}) == [
        Difference("bucket-missing", "dev", "bucket b-dev does not exist")]


def test_report_items() -> None:
    diffs = [Difference("bucket-versioning", "staging", "off")]
    latest, history = report_items(environment="dev", compared=["table:dev"], skipped=[], differences=diffs,
                                   generated_at="2024-05-01T00:00:00+00:00", trigger="schedule", version=1)
    assert (latest["pk"], latest["sk"], history["sk"]) == ("LOCAL#VALIDATION", "latest", "2024-05-01T00:00:00+00:00")
    assert latest["status"] == "inconsistent"
    assert latest["differences"] == [{"kind": "bucket-versioning", "environment": "staging", "detail": "off"}]
    assert {k: v for k, v in latest.items() if k != "sk"} == {k: v for k, v in history.items() if k != "sk"}
    consistent, _ = report_items(environment="dev", compared=[], skipped=[], differences=[],
                                 generated_at="t", trigger="schedule", version=1)
    assert consistent["status"] == "consistent" and consistent["differences"] == []
