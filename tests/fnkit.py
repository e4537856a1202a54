"""Helpers for the Lambda function tests: import paths, events, per-account moto estate.

`lambda` is a Python keyword, so the function folders are never imported as a package: like the
Lambda runtime (which puts the unzipped ZIP on sys.path), the tests put `lambda/shared` and each
function folder on sys.path and import the handler modules by their top-level names.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replctl.sandbox.invoke import environ

REPO = Path(__file__).resolve().parents[1]
LAMBDA = REPO / "lambda"
EVENTS = REPO / "tests" / "events"
FUNCTIONS = ("replication_monitor", "config_validator", "stream_processor")

for _folder in (LAMBDA / "shared", *(LAMBDA / f for f in FUNCTIONS)):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
TABLE = "replctl-metadata"
BUCKET_PREFIX = "replctl-config"
SSM_PREFIX = "/app"
AGENT_ROLE = "replctl-agent"
REGION = "us-east-1"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of an event from tests/events/."""
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


def bucket(env: str) -> str:
    return f"{BUCKET_PREFIX}-{env}-{ACCOUNTS[env]}"


def function_env(env: str, **overrides: str) -> dict[str, str]:
    """The contract's environment variables for one environment's function."""
    values = {
        "ENVIRONMENT": env,
        "ACCOUNT_ID_DEV": ACCOUNTS["dev"],
        "ACCOUNT_ID_STAGING": ACCOUNTS["staging"],
        "ACCOUNT_ID_PROD": ACCOUNTS["prod"],
        "REPLICATE_TO_STAGING": "true",
        "REPLICATE_TO_PROD": "true",
        "TABLE_NAME": TABLE,
        "BUCKET_PREFIX": BUCKET_PREFIX,
        "BUCKET_NAME": bucket(env),
        "SSM_PATH_PREFIX": SSM_PREFIX,
        "REPLICATION_ROLE_NAME": AGENT_ROLE,
        "ROLE_PATH": "/replctl/",
        "REPLICATION_EXTERNAL_ID": "replctl-test-external-id",
        "MIRROR_SECURE_STRINGS": "false",
        "METRICS_NAMESPACE": "ReplicationFramework",
        "EVENT_BUS_NAME": "default",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    values.update(overrides)
    return values


class FakeContext:
    """The attributes of Lambda's context object the handlers (and powertools) read."""

    def __init__(self, name: str = "replctl-test", remaining_ms: int = 60_000) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:111111111111:function:{name}"
        self.aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "2024/05/01/[$LATEST]abcdef"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


class ClockContext(FakeContext):
    """A Lambda context whose remaining time runs down with a (fake) clock."""

    def __init__(self, clock: Any, seconds: float, name: str = "replctl-test") -> None:
        super().__init__(name)
        self._clock = clock
        self._deadline = clock() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


environment = environ  # the sandbox's: set variables for a block, then restore them


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The Embedded Metric Format documents among captured stdout lines."""
    docs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric_values(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(dimensions, value) of every EMF datum named `name` in captured stdout."""
    found = []
    for doc in emf_lines(text):
        if name not in doc:
            continue
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        dims = {d: doc[d] for d in directive["Dimensions"][0]}
        value = doc[name]
        found.append((dims, float(sum(value) if isinstance(value, list) else value)))
    return found


def metric_series(text: str, name: str) -> list[tuple[dict[str, str], list[float]]]:
    """(dimensions, every value) of each EMF document carrying `name`, in the order written."""
    found = []
    for doc in emf_lines(text):
        if name in doc:
            directive = doc["_aws"]["CloudWatchMetrics"][0]
            value = doc[name]
            found.append(({d: doc[d] for d in directive["Dimensions"][0]},
                          [float(v) for v in (value if isinstance(value, list) else [value])]))
    return found


class Estate:
    """Three moto accounts, each with the metadata table and the environment's bucket."""

    def __init__(self) -> None:
        from replshared.clients import new_session

        self.creds: dict[str, dict[str, str]] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        # One session (one copy of the service models) for every account's clients.
        self._session = new_session(REGION)
        sts = self._session.client("sts")
        for env, account in ACCOUNTS.items():
            c = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/replctl/lambda-exec", RoleSessionName=f"fn-{env}"
            )["Credentials"]
            self.creds[env] = {
                "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
                "AWS_SESSION_TOKEN": c["SessionToken"],
            }
        for env in ACCOUNTS:
            self.create_table(env)
            self.create_bucket(env)

    def client(self, env: str, service: str) -> Any:
        """A (cached) client acting in `env`'s account."""
        key = (env, service)
        if key not in self._clients:
            c = self.creds[env]
            self._clients[key] = self._session.client(
                service, aws_access_key_id=c["AWS_ACCESS_KEY_ID"], aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=c["AWS_SESSION_TOKEN"])
        return self._clients[key]

    def create_table(self, env: str, *, gsi_key: str = "type", gsi_projection: str = "ALL") -> None:
        self.client(env, "dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": gsi_key, "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[{
                "IndexName": "by-type",
                "KeySchema": [{"AttributeName": gsi_key, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": gsi_projection},
            }],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )

    def create_bucket(self, env: str) -> None:
        s3 = self.client(env, "s3")
        name = bucket(env)
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})

    def wire_replication(self) -> None:
        """The replication rules the template creates: dev -> staging, prod; staging -> prod."""
        for source, targets in (("dev", ("staging", "prod")), ("staging", ("prod",))):
            rules = [{
                "ID": f"to-{t}", "Priority": i + 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {"Bucket": f"arn:aws:s3:::{bucket(t)}", "Account": ACCOUNTS[t],
                                "Metrics": {"Status": "Enabled"}},
            } for i, t in enumerate(targets)]
            self.client(source, "s3").put_bucket_replication(Bucket=bucket(source), ReplicationConfiguration={
                "Role": f"arn:aws:iam::{ACCOUNTS[source]}:role/replctl/replctl-s3-replication-{source}",
                "Rules": rules,
            })

    def invoke(self, module: Any, event: Any, env: str, context: Any = None, **overrides: str) -> Any:
        """Call a handler in-process as `env`'s function, with that account's credentials."""
        with environment({**function_env(env, **overrides), **self.creds[env]}):
            return module.handler(event, context or FakeContext())

    def item(self, env: str, pk: str, sk: str) -> dict[str, Any] | None:
        from replshared.items import from_item

        found = self.client(env, "dynamodb").get_item(
            TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True).get("Item")
        return from_item(found) if found else None

    def parameter(self, env: str, name: str) -> dict[str, Any] | None:
        ssm = self.client(env, "ssm")
        try:
            return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except ssm.exceptions.ParameterNotFound:
            return None


@pytest.fixture
def estate() -> Iterator[Estate]:
    """A fresh moto world with dev, staging and prod accounts."""
    from moto import mock_aws

    with mock_aws():
        yield Estate()


# --------------------------------------------------------------------------- a documented fake SSM


def ssm_error(code: str, message: str, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                       operation)


class FakeSSM:
    """Parameter Store as the SSM API reference documents it, where moto differs (moto lets
    PutParameter change a type) or cannot be steered (throttling, time spent per call).

    Each rule below cites the sentence it implements. Two things are test scaffolding, not AWS
    rules: every call advances `clock` by `latency` seconds (time spent), and `throttle` answers
    the next N calls of an operation with ThrottlingException. A re-create sooner than 30 s
    after a delete is recorded in `early_recreates`, not answered: the reference says to wait
    but not what happens otherwise.
    """

    def __init__(self, clock: Any = None, latency: float = 0.0) -> None:
        self.clock = clock
        self.latency = latency
        self.params: dict[str, dict[str, Any]] = {}
        self.deleted_at: dict[str, float] = {}
        self.early_recreates: list[str] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.throttle: dict[str, int] = {}

    # -- scaffolding
    def _now(self) -> float:
        return self.clock.now if self.clock is not None else 1_714_564_800.0

    def _call(self, operation: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((operation, kwargs))
        if self.clock is not None and self.latency:
            self.clock.now += self.latency
        if self.throttle.get(operation, 0) > 0:
            self.throttle[operation] -= 1
            # Common errors: "ThrottlingException: The request was denied due to request throttling."
            raise ssm_error("ThrottlingException", "Rate exceeded", operation)

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def seed(self, name: str, value: str, kind: str = "String", description: str | None = None,
             version: int = 1, modified: float | None = None) -> None:
        from datetime import datetime, timezone

        when = datetime.fromtimestamp(self._now() if modified is None else modified, tz=timezone.utc)
        self.params[name] = {"Name": name, "Type": kind, "Value": value, "Version": version,
                             "LastModifiedDate": when, "Description": description}

    def _view(self, p: dict[str, Any], decrypt: bool) -> dict[str, Any]:
        # GetParameter(s) WithDecryption: "Return decrypted values for secure string parameters.
        # This flag is ignored for String and StringList parameter types." Without it, a
        # SecureString comes back encrypted (never the plaintext).
        value = p["Value"] if decrypt or p["Type"] != "SecureString" else f"AQICAH-ciphertext-of-{p['Name']}"
        return {k: p[k] for k in ("Name", "Type", "Version", "LastModifiedDate")} | {"Value": value}

    # -- the API
    def put_parameter(self, **kw: Any) -> dict[str, Any]:
        self._call("PutParameter", kw)
        name, existing = kw["Name"], self.params.get(kw["Name"])
        if existing is not None:
            if not kw.get("Overwrite", False):
                # Overwrite: "Overwrite an existing parameter. The default value is false." and
                # ParameterAlreadyExists: "The parameter already exists. You can't create duplicate parameters."
                raise ssm_error("ParameterAlreadyExists", "The parameter already exists.", "PutParameter")
            if kw.get("Type") and kw["Type"] != existing["Type"]:
                # HierarchyTypeMismatchException: "Parameter Store doesn't support changing a
                # parameter type in a hierarchy. For example, you can't change a parameter from a
                # String type to a SecureString type. You must create a new, unique parameter."
                raise ssm_error("HierarchyTypeMismatchException", "Parameter Store doesn't support changing a "
                                "parameter type in a hierarchy.", "PutParameter")
        elif not kw.get("Type"):
            # Type: "You must specify a parameter type when creating a parameter."
            raise ssm_error("ValidationException", "A parameter type is required when you create a parameter.",
                            "PutParameter")
        if existing is None and name in self.deleted_at and self._now() - self.deleted_at[name] < 30.0:
            # DeleteParameter: "After deleting a parameter, wait for at least 30 seconds to create
            # a parameter with the same name." (what happens otherwise is not documented)
            self.early_recreates.append(name)
        # Version: "If you edit a parameter value, Parameter Store automatically creates a new version"
        version = existing["Version"] + 1 if existing else 1
        self.seed(name, kw["Value"], kw.get("Type") or existing["Type"],  # type: ignore[index]
                  kw.get("Description", existing.get("Description") if existing else None), version)
        return {"Version": version, "Tier": "Standard"}

    def get_parameter(self, **kw: Any) -> dict[str, Any]:
        self._call("GetParameter", kw)
        p = self.params.get(kw["Name"])
        if p is None:
            # ParameterNotFound: "The parameter couldn't be found."
            raise ssm_error("ParameterNotFound", "Parameter not found.", "GetParameter")
        return {"Parameter": self._view(p, kw.get("WithDecryption", False))}

    def get_parameters(self, **kw: Any) -> dict[str, Any]:
        self._call("GetParameters", kw)
        names = kw["Names"]
        if not 1 <= len(names) <= 10:
            # ParameterNameList: "Minimum number of 1 item. Maximum number of 10 items."
            raise ssm_error("ValidationException", "Member must have length less than or equal to 10", "GetParameters")
        found = [self._view(self.params[n], kw.get("WithDecryption", False)) for n in names if n in self.params]
        # "The results for GetParameters requests are listed in alphabetical order in query responses."
        return {"Parameters": sorted(found, key=lambda p: p["Name"]),
                "InvalidParameters": [n for n in names if n not in self.params]}

    def _page(self, items: list[Any], kw: dict[str, Any], limit: int, operation: str) -> dict[str, Any]:
        size = kw.get("MaxResults", limit)
        if not 1 <= size <= limit:
            # GetParametersByPath MaxResults: 1..10; DescribeParameters MaxResults: 1..50.
            raise ssm_error("ValidationException", f"maxResults must be <= {limit}", operation)
        start = int(kw.get("NextToken") or 0)
        page = {"Parameters": items[start:start + size]}
        if start + size < len(items):
            # MaxResults: "The call also returns a token that you can specify in a subsequent
            # call to get the next set of results."
            page["NextToken"] = str(start + size)
        return page

    def get_parameters_by_path(self, **kw: Any) -> dict[str, Any]:
        self._call("GetParametersByPath", kw)
        path = kw["Path"].rstrip("/") + "/"
        # Recursive: "Retrieve all parameters within a hierarchy." (else one level only)
        names = sorted(n for n in self.params if n.startswith(path) and (kw.get("Recursive") or "/" not in n[len(path):]))
        items = [self._view(self.params[n], kw.get("WithDecryption", False)) for n in names]
        return self._page(items, kw, 10, "GetParametersByPath")

    def describe_parameters(self, **kw: Any) -> dict[str, Any]:
        self._call("DescribeParameters", kw)
        names = sorted(self.params)
        for f in kw.get("ParameterFilters", []):
            values = f["Values"]
            if len(values) > 50:
                # ParameterStringFilter Values: "Maximum number of 50 items."
                raise ssm_error("ValidationException", "too many filter values", "DescribeParameters")
            if f["Key"] == "Name":
                names = [n for n in names if n in values]
            elif f["Key"] == "Path":
                prefix = values[0].rstrip("/") + "/"
                names = [n for n in names if n.startswith(prefix)]
        # DescribeParameters returns metadata, never values.
        items = [{k: self.params[n][k] for k in ("Name", "Type", "Version", "LastModifiedDate")}
                 | ({"Description": self.params[n]["Description"]} if self.params[n]["Description"] else {})
                 for n in names]
        return self._page(items, kw, 50, "DescribeParameters")

    def delete_parameter(self, **kw: Any) -> dict[str, Any]:
        self._call("DeleteParameter", kw)
        if kw["Name"] not in self.params:
            raise ssm_error("ParameterNotFound", "Parameter not found.", "DeleteParameter")
        del self.params[kw["Name"]]
        self.deleted_at[kw["Name"]] = self._now()
        return {}


class FakeClients:
    """`local`/`remote` as AwsClients has them, answering with one FakeSSM per environment."""

    def __init__(self, ssm: dict[str, FakeSSM], environment: str = "dev") -> None:
        self.ssm = ssm
        self.environment = environment

    def local(self, service: str) -> Any:
        assert service == "ssm", service
        return self.ssm[self.environment]

    def remote(self, environment: str, service: str) -> Any:
        assert service == "ssm", service
        return self.ssm[environment]
