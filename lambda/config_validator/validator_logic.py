"""Pure comparisons of ConfigValidatorLambda (no AWS calls here).

Inputs are what the handler fetched per environment (None: the resource does not exist); outputs
are `Difference`s. The report lists every difference, not just the first, so one run tells the
operator everything that is out of line.

- Table schema: keys, attribute definitions, global and local secondary indexes, stream and
  billing mode, normalised (sorted, throughput and status fields dropped) so that only real
  differences show; compared with this environment's table.
- SSM key sets: names relative to each environment's hierarchy; a key present in any compared
  environment and missing in another is a difference for the one missing it.
- Buckets: versioning must be Enabled and default encryption present everywhere, the algorithm
  must match this environment's, and replication rules must point exactly at the downstream
  buckets the REPLICATE_TO_* flags call for (never upstream), each with replication metrics on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Difference:
    kind: str
    environment: str
    detail: str

    def as_map(self) -> dict[str, str]:
        return {"kind": self.kind, "environment": self.environment, "detail": self.detail}


# -- DynamoDB table schema ------------------------------------------------------------------


def _keys(schema: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.get("AttributeName", ""), k.get("KeyType", "")) for k in schema)


def _index(index: Mapping[str, Any]) -> dict[str, Any]:
    projection = index.get("Projection") or {}
    return {
        "keys": _keys(index.get("KeySchema") or []),
        "projection": projection.get("ProjectionType", ""),
        "non_key_attributes": tuple(sorted(projection.get("NonKeyAttributes") or [])),
    }


def normalize_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable part of DescribeTable's `Table`."""
    stream = table.get("StreamSpecification") or {}
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    return {
        "keys": _keys(table.get("KeySchema") or []),
        "attributes": tuple(
            sorted((a.get("AttributeName", ""), a.get("AttributeType", "")) for a in table.get("AttributeDefinitions") or [])
        ),
        "gsi": {i.get("IndexName", ""): _index(i) for i in table.get("GlobalSecondaryIndexes") or []},
        "lsi": {i.get("IndexName", ""): _index(i) for i in table.get("LocalSecondaryIndexes") or []},
        "stream": (bool(stream.get("StreamEnabled")), stream.get("StreamViewType") if stream.get("StreamEnabled") else None),
        "billing": billing,
    }


def _describe_index(index: dict[str, Any]) -> str:
    keys = ", ".join(f"{name} {kind}" for name, kind in index["keys"])
    extra = f" {list(index['non_key_attributes'])}" if index["non_key_attributes"] else ""
    return f"keys [{keys}], projection {index['projection']}{extra}"


def compare_tables(reference: str, tables: Mapping[str, dict[str, Any] | None], table_name: str) -> list[Difference]:
    """Each environment's normalised schema against the reference environment's."""
    diffs: list[Difference] = []
    for env, schema in tables.items():
        if schema is None:
            diffs.append(Difference("table-missing", env, f"table {table_name} does not exist"))
    ref = tables.get(reference)
    if ref is None:
        return diffs
    for env, schema in tables.items():
        if env == reference or schema is None:
            continue
        if schema["keys"] != ref["keys"]:
            diffs.append(Difference("table-keys", env, f"key schema {list(schema['keys'])}, {reference} has {list(ref['keys'])}"))
        if schema["attributes"] != ref["attributes"]:
            diffs.append(Difference(
                "table-attributes", env,
                f"attribute definitions {list(schema['attributes'])}, {reference} has {list(ref['attributes'])}",
            ))
        for kind, label in (("gsi", "global secondary index"), ("lsi", "local secondary index")):
            mine, theirs = schema[kind], ref[kind]
            for name in sorted(set(mine) | set(theirs)):
                if name not in mine:
                    diffs.append(Difference("table-index", env, f"{label} {name} missing ({reference} has it: {_describe_index(theirs[name])})"))
                elif name not in theirs:
                    diffs.append(Difference("table-index", env, f"{label} {name} exists here but not in {reference}"))
                elif mine[name] != theirs[name]:
                    diffs.append(Difference(
                        "table-index", env,
                        f"{label} {name} differs: {_describe_index(mine[name])}; {reference}: {_describe_index(theirs[name])}",
                    ))
        if schema["stream"] != ref["stream"]:
            diffs.append(Difference("table-stream", env, f"stream {schema['stream']}, {reference} has {ref['stream']}"))
        if schema["billing"] != ref["billing"]:
            diffs.append(Difference("table-billing", env, f"billing mode {schema['billing']}, {reference} has {ref['billing']}"))
    return diffs


# -- SSM key sets ---------------------------------------------------------------------------


def relative_keys(names: Iterable[str], hierarchy: str) -> frozenset[str]:
    """Parameter names relative to `hierarchy` (only those below it)."""
    root = hierarchy.rstrip("/") + "/"
    return frozenset(n[len(root):] for n in names if n.startswith(root))


def compare_key_sets(key_sets: Mapping[str, frozenset[str]]) -> list[Difference]:
    """A key present in some environment and missing in another is a difference for the latter."""
    if len(key_sets) < 2:
        return []
    union = frozenset().union(*key_sets.values())
    diffs = []
    for env, keys in key_sets.items():
        for key in sorted(union - keys):
            holders = [e for e, k in key_sets.items() if key in k]
            diffs.append(Difference("ssm-key-missing", env, f"{key} is set in {', '.join(holders)} but not in {env}"))
    return diffs


# -- buckets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketSettings:
    name: str
    versioning: str  # Enabled | Suspended | Disabled (never enabled)
    encryption: tuple[str, ...]  # default SSE algorithms, empty when none
    # (destination bucket name, rule status, replication metrics status)
    replication: tuple[tuple[str, str, str], ...]


def normalize_bucket(
    name: str, versioning: Mapping[str, Any], encryption: Mapping[str, Any] | None, replication: Mapping[str, Any] | None
) -> BucketSettings:
    """From GetBucketVersioning / GetBucketEncryption / GetBucketReplication responses."""
    algorithms: list[str] = []
    for rule in (encryption or {}).get("Rules") or []:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm"):
            algorithms.append(default["SSEAlgorithm"])
    rules = []
    for rule in (replication or {}).get("Rules") or []:
        destination = rule.get("Destination") or {}
        bucket = str(destination.get("Bucket", ""))
        bucket = bucket.split(":::", 1)[1] if ":::" in bucket else bucket
        metrics = (destination.get("Metrics") or {}).get("Status", "Disabled")
        rules.append((bucket, rule.get("Status", ""), metrics))
    return BucketSettings(
        name=name,
        versioning=versioning.get("Status") or "Disabled",
        encryption=tuple(sorted(algorithms)),
        replication=tuple(sorted(rules)),
    )


def compare_buckets(
    reference: str,
    buckets: Mapping[str, BucketSettings | None],
    expected_destinations: Mapping[str, frozenset[str]],
    names: Mapping[str, str],
) -> list[Difference]:
    """Absolute checks per bucket, and encryption against the reference environment's."""
    diffs: list[Difference] = []
    ref = buckets.get(reference)
    for env, bucket in buckets.items():
        if bucket is None:
            diffs.append(Difference("bucket-missing", env, f"bucket {names[env]} does not exist"))
            continue
        if bucket.versioning != "Enabled":
            diffs.append(Difference("bucket-versioning", env, f"versioning is {bucket.versioning} on {bucket.name} (must be Enabled)"))
        if not bucket.encryption:
            diffs.append(Difference("bucket-encryption", env, f"no default encryption on {bucket.name}"))
        elif ref is not None and env != reference and ref.encryption and bucket.encryption != ref.encryption:
            diffs.append(Difference(
                "bucket-encryption", env, f"default encryption {list(bucket.encryption)}, {reference} has {list(ref.encryption)}"
            ))
        enabled = {dest for dest, status, _ in bucket.replication if status == "Enabled"}
        expected = expected_destinations.get(env, frozenset())
        for dest in sorted(expected - enabled):
            diffs.append(Difference("bucket-replication", env, f"no enabled replication rule towards {dest}"))
        for dest in sorted(enabled - expected):
            diffs.append(Difference("bucket-replication", env, f"unexpected replication rule towards {dest}"))
        for dest, status, metrics in bucket.replication:
            if status == "Enabled" and dest in expected and metrics != "Enabled":
                diffs.append(Difference(
                    "bucket-replication", env, f"rule towards {dest} has replication metrics {metrics} (failure events need them)"
                ))
    return diffs


# -- the report -----------------------------------------------------------------------------


def report_items(
    *,
    environment: str,
    compared: list[str],
    skipped: list[str],
    differences: list[Difference],
    generated_at: str,
    trigger: str,
    version: int,
) -> list[dict[str, Any]]:
    """The LOCAL#VALIDATION items: `latest` and one history item keyed by the ISO time."""
    body = {
        "status": "inconsistent" if differences else "consistent",
        "compared": list(compared),
        "skipped": list(skipped),
        "differences": [d.as_map() for d in differences],
        "difference_count": len(differences),
        "generated_at": generated_at,
        "trigger": trigger,
        "origin": environment,
        "version": version,
    }
    return [{"pk": "LOCAL#VALIDATION", "sk": "latest", **body}, {"pk": "LOCAL#VALIDATION", "sk": generated_at, **body}]
