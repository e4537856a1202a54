"""replshared: settings from the contract's variables, event kinds, EMF lines, item conversion."""

from __future__ import annotations

import io
import json

import pytest

import tests.fnkit  # noqa: F401  (puts the function folders on sys.path)
from tests.fnkit import function_env, load_event

from replshared.errors import ConfigurationError  # noqa: E402
from replshared.events import event_kind  # noqa: E402
from replshared.items import from_item, to_item  # noqa: E402
from replshared.settings import Settings  # noqa: E402
from replshared.telemetry import Metrics, event_shape  # noqa: E402


def test_settings_derive_every_name() -> None:
    s = Settings.from_env(function_env("dev"))
    assert s.downstream == ("staging", "prod") and s.upstream == ()
    assert s.hierarchy("prod") == "/app/prod/config"
    assert s.bucket_of("staging") == "replctl-config-staging-222222222222"
    assert s.role_arn("prod") == "arn:aws:iam::333333333333:role/replctl/replctl-agent"
    assert s.external_id == "replctl-test-external-id" and s.region == "us-east-1"


@pytest.mark.parametrize("env, overrides, downstream", [
    ("dev", {"REPLICATE_TO_PROD": "false"}, ("staging",)),
    ("dev", {"REPLICATE_TO_STAGING": "FALSE", "REPLICATE_TO_PROD": "False"}, ()),
    ("staging", {}, ("prod",)),
    ("staging", {"REPLICATE_TO_STAGING": "false"}, ("prod",)),
    ("prod", {}, ()),
])
def test_downstream_is_derived(env: str, overrides: dict, downstream: tuple) -> None:
    assert Settings.from_env(function_env(env, **overrides)).downstream == downstream


def test_bucket_name_defaults_from_the_convention() -> None:
    values = function_env("prod")
    del values["BUCKET_NAME"]
    assert Settings.from_env(values).bucket_name == "replctl-config-prod-333333333333"


def test_every_configuration_problem_is_reported_at_once() -> None:
    values = function_env("dev", ENVIRONMENT="qa", ACCOUNT_ID_PROD="33333", REPLICATE_TO_PROD="yes", ROLE_PATH="replctl")
    del values["TABLE_NAME"]
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(values)
    message = str(raised.value)
    for fragment in ("ENVIRONMENT must be one of", "ACCOUNT_ID_PROD must be a 12-digit", "REPLICATE_TO_PROD must be",
                     "TABLE_NAME is not set", "ROLE_PATH must start and end"):
        assert fragment in message


@pytest.mark.parametrize("name, kind", [
    ("ssm_parameter_created.json", "ssm-change"),
    ("ssm_parameter_deleted.json", "ssm-change"),
    ("scheduled.json", "schedule"),
    ("cfn_stack_status_change.json", "cfn-stack-status"),
    ("s3_replication_failed.json", "s3-notification"),
    ("s3_object_created.json", "s3-notification"),
    ("s3_test_event.json", "s3-test"),
    ("dynamodb_stream_batch.json", "dynamodb-stream"),
])
def test_event_kinds(name: str, kind: str) -> None:
    assert event_kind(load_event(name)) == kind


@pytest.mark.parametrize("event", [
    None, 1, "x", [], {}, {"Records": []}, {"Records": [1]},
    {"Records": [{"eventSource": "aws:s3"}, {"eventSource": "aws:dynamodb"}]},
    {"source": "aws.ssm", "detail-type": "Parameter Store Change"},  # no detail
    {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}},
])
def test_unknown_shapes(event: object) -> None:
    assert event_kind(event) is None


def test_emf_lines_have_exactly_the_contract_dimensions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "replication-monitor")  # must not add a dimension
    out = io.StringIO()
    metrics = Metrics("ReplicationFramework", stream=out)
    metrics.count("ItemsPropagated", {"Environment": "dev"})
    metrics.count("ItemsPropagated", {"Environment": "dev"}, 2)
    metrics.value("MetadataReplicationLag", "Seconds", 0.25, {"Environment": "dev", "Target": "prod"})
    metrics.flush()
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["_aws"]["CloudWatchMetrics"] for d in docs] == [
        [{"Namespace": "ReplicationFramework", "Dimensions": [["Environment"]],
          "Metrics": [{"Name": "ItemsPropagated", "Unit": "Count"}]}],
        [{"Namespace": "ReplicationFramework", "Dimensions": [["Environment", "Target"]],
          "Metrics": [{"Name": "MetadataReplicationLag", "Unit": "Seconds"}]}],
    ]
    assert docs[0]["ItemsPropagated"] == [3.0] and docs[1]["Target"] == "prod"
    assert "service" not in docs[0]
    metrics.flush()
    assert len(out.getvalue().splitlines()) == 2  # flushed once


def test_measured_values_share_one_document_per_metric_and_dimensions() -> None:
    out = io.StringIO()
    metrics = Metrics("ReplicationFramework", stream=out)
    for i in range(250):  # a batch of copies, each timed
        metrics.value("MetadataReplicationLag", "Seconds", i / 1000, {"Environment": "dev", "Target": "prod"})
    metrics.value("MetadataReplicationLag", "Seconds", 0.5, {"Environment": "dev", "Target": "staging"})
    metrics.flush()
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    prod = [d for d in docs if d["Target"] == "prod"]
    assert [len(d["MetadataReplicationLag"]) for d in prod] == [99, 99, 52]  # EMF: at most 100 values a metric
    assert [v for d in prod for v in d["MetadataReplicationLag"]] == [i / 1000 for i in range(250)]  # every value
    assert [d["MetadataReplicationLag"] for d in docs if d["Target"] == "staging"] == [[0.5]]


def test_event_shape_never_carries_values() -> None:
    shape = event_shape({"detail": {"value": "secret"}, "source": "aws.ssm", "Records": [{"eventSource": "x"}]})
    assert "secret" not in json.dumps(shape)
    assert shape == {"type": "dict", "keys": ["Records", "detail", "source"], "source": "aws.ssm", "records": 1,
                     "first_record_eventSource": "x"}


def test_item_round_trip() -> None:
    item = to_item({"pk": "A", "lag": 0.25, "n": 3, "ok": True, "l": [{"k": "v", "f": 1.5}], "none": None})
    assert item["lag"] == {"N": "0.25"} and item["n"] == {"N": "3"}
    assert from_item(item) == {"pk": "A", "lag": 0.25, "n": 3, "ok": True, "l": [{"k": "v", "f": 1.5}], "none": None}
    assert from_item({"d": {"N": "2.0"}})["d"] == 2
    with pytest.raises(ValueError):
        to_item({"x": float("nan")})
