"""The three functions when the target accounts fight back: denied roles, denied writes,
throttling, items too large, and truncated events.

GIVEN three moto accounts and a fault injector — a botocore `before-call` hook on the sessions
the handlers create, which answers chosen calls in chosen accounts with an AWS error, so the
handler's real code (AssumeRole, PutParameter, PutItem, its retries and its error handling) runs
— WHEN a handler meets the fault, THEN it ends in a metric, a log line and a retry (an exception
for async invocations: Lambda's retries, then the DLQ) or a batch item failure (the stream:
bisect/retry, then the on-failure destination). Never lost data, never a hot loop: each target
is attempted once per record and invocation, and an account whose role cannot be assumed is
not asked again for 30 s.

Failures that fail a whole invocation (the S3-notification write, below) raise: Lambda counts
them in its own `AWS/Lambda Errors` metric, which the template's `errors-<function>` alarms watch.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fnkit import (
    ACCOUNTS,
    TABLE,
    ClockContext,
    Estate,
    FakeContext,
    environment,
    function_env,
    load_event,
    metric_values,
)

import monitor_logic  # noqa: E402  (on sys.path through tests.fnkit)
import replication_monitor  # noqa: E402
import stream_processor  # noqa: E402
from replshared import clients as shared_clients  # noqa: E402
from replshared.errors import HandlerError, ProcessingFailed, UnhandledEvent  # noqa: E402

NAME = "/app/dev/config/db/url"
ENV_OF_ACCOUNT = {v: k for k, v in ACCOUNTS.items()}


# --------------------------------------------------------------------------- the fault injector


@dataclass
class Rule:
    operation: str  # e.g. "AssumeRole", "PutItem"
    env: str  # the account the call acts in (for AssumeRole: the role's account)
    code: str
    message: str
    status: int = 400
    times: int | None = None  # None: every time
    match: Any = lambda params: True  # noqa: E731 - which requests (by their parameters)
    fired: int = 0


@dataclass
class Faults:
    """Which calls the handlers made, in which account, and the errors to answer some with."""

    keys: dict[str, str]  # access key id -> environment
    rules: list[Rule] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (env, operation)
    on_call: list[Any] = field(default_factory=list)  # called with (env, operation, params) first

    def deny(self, operation: str, env: str, code: str = "AccessDenied", message: str = "", **kw: Any) -> Rule:
        rule = Rule(operation, env, code, message or f"not authorized to perform {operation} in {env}", **kw)
        self.rules.append(rule)
        return rule

    def count(self, operation: str, env: str) -> int:
        return self.calls.count((env, operation))

    def install(self, target: Any) -> None:
        """Hook a boto3 session (its clients made from now on) or one client."""
        events = target.events if hasattr(target, "events") else target.meta.events
        # before-call sees the serialized request; the API parameters are kept from before.
        events.register("before-parameter-build.*.*", self._keep_params)
        events.register("before-call.*.*", self._before)
        events.register("after-call.sts.AssumeRole", self._learn_key)

    def _env(self, model: Any, params: dict[str, Any], request_signer: Any) -> str:
        if model.name == "AssumeRole":
            return ENV_OF_ACCOUNT.get(params["RoleArn"].split(":")[4], "?")
        creds = request_signer._credentials.get_frozen_credentials()  # noqa: SLF001
        return self.keys.get(creds.access_key, "?")

    def _before(self, model: Any, context: dict[str, Any], request_signer: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        params = context["api_params"]
        env = self._env(model, params, request_signer)
        self.calls.append((env, model.name))
        for hook in self.on_call:
            hook(env, model.name, params)
        for rule in self.rules:
            if (rule.operation == model.name and rule.env == env and rule.match(params)
                    and (rule.times is None or rule.fired < rule.times)):
                rule.fired += 1
                error = {"Error": {"Code": rule.code, "Message": rule.message},
                         "ResponseMetadata": {"HTTPStatusCode": rule.status}}
                return AWSResponse("https://fault.invalid", rule.status, {}, None), error
        return None

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["api_params"] = dict(params)

    def _learn_key(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "Credentials" in parsed:
            account = context["api_params"]["RoleArn"].split(":")[4]
            self.keys[parsed["Credentials"]["AccessKeyId"]] = ENV_OF_ACCOUNT[account]


@pytest.fixture
def world() -> Iterator[Estate]:
    from moto import mock_aws

    with mock_aws():
        yield Estate()


@pytest.fixture
def faults(world: Estate, monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Every session the handlers make from now on goes through the injector (and no client
    cached by an earlier test is reused)."""
    f = Faults(keys={c["AWS_ACCESS_KEY_ID"]: env for env, c in world.creds.items()})
    original = shared_clients.new_session

    def new_session(region: str | None) -> Any:
        session = original(region)
        f.install(session)
        return session

    monkeypatch.setattr(shared_clients, "new_session", new_session)
    monkeypatch.setattr(shared_clients, "_CACHE", {})
    return f


def logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The handlers' log records, as the JSON lines powertools writes: message, level, extra keys."""
    import logging

    out = []
    for r in caplog.records:
        entry = {k: v for k, v in vars(r).items() if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__}
        entry.update(message=r.getMessage(), level=r.levelname)
        if r.exc_info:
            entry["exception"] = logging.Formatter().formatException(r.exc_info)
        out.append(entry)
    return out


def put(e: Estate, env: str, name: str, value: str, kind: str = "String") -> None:
    e.client(env, "ssm").put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)


def record(seq: str, pk: str, version: int = 1, origin: str = "dev", **extra: Any) -> dict[str, Any]:
    image = {"pk": {"S": pk}, "sk": {"S": "config"}, "origin": {"S": origin}, "version": {"N": str(version)}, **extra}
    return {"eventID": seq, "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:dynamodb:us-east-1:111111111111:table/t/stream/x",
            "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image, "SequenceNumber": seq,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def batch(n: int) -> dict[str, Any]:
    return {"Records": [record(f"{100 + i:021d}", f"ITEM#{i}") for i in range(n)]}


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


# --------------------------------------------------------------------------- the SSM mirror


SSM_FAULTS = {
    "agent role in prod cannot be assumed": (
        "AssumeRole", "prod", "AccessDenied",
        "User: arn:aws:sts::111111111111:assumed-role/fn/replctl is not authorized to perform: sts:AssumeRole on "
        "resource: arn:aws:iam::333333333333:role/replctl/replctl-agent"),
    "the write is denied in prod": (
        "PutParameter", "prod", "AccessDeniedException",
        "User: arn:aws:sts::333333333333:assumed-role/replctl-agent/x is not authorized to perform: ssm:PutParameter"),
    "prod throttles": ("PutParameter", "prod", "ThrottlingException", "Rate exceeded"),
}


@pytest.mark.parametrize("name", list(SSM_FAULTS))
def test_mirror_fault_is_counted_logged_and_retried(
    name: str, world: Estate, faults: Faults, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    operation, env, code, message = SSM_FAULTS[name]
    faults.deny(operation, env, code, message)
    put(world, "dev", NAME, "v1")

    # WHEN the change event arrives THEN the invocation fails after staging got its mirror ...
    with pytest.raises(ProcessingFailed, match=f"{NAME} -> prod: .*{code}"):
        world.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")
    assert world.parameter("staging", NAME)["Value"] == "v1"
    assert world.parameter("prod", NAME) is None
    out = capsys.readouterr().out
    # ... with a metric and a log line naming the target and the AWS error
    assert metric_values(out, "ParameterMirrorFailures") == [({"Environment": "dev"}, 1.0)]
    assert metric_values(out, "ParametersMirrored") == [({"Environment": "dev"}, 1.0)]
    (failure,) = [r for r in logs(caplog) if r["message"] == "parameter mirror failed"]
    assert failure["level"] == "ERROR" and failure["target"] == "prod" and code in failure["error"]
    assert faults.count(operation, env) == 1  # one attempt: no loop inside the invocation

    # WHEN Lambda retries the event once the cause is gone THEN it converges (staging is untouched)
    faults.rules.clear()
    shared_clients._CACHE.clear()  # the retry may land in a fresh execution environment
    world.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev")
    assert world.parameter("prod", NAME)["Value"] == "v1"
    assert world.parameter("staging", NAME)["Version"] == 1


# --------------------------------------------------------------------------- a type change


def _refuse_type_changes(world: Estate, faults: Faults) -> None:
    """PutParameter answers as AWS does where moto does not: HierarchyTypeMismatchException
    ("Parameter Store doesn't support changing a parameter type in a hierarchy. For example, you
    can't change a parameter from a String type to a SecureString type. You must create a new,
    unique parameter.") when the parameter exists with another type."""
    for env in ("staging", "prod"):
        def other_type(params: dict[str, Any], env: str = env) -> bool:
            found = world.client(env, "ssm").describe_parameters(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [params["Name"]]}])["Parameters"]
            return bool(found) and params.get("Type") not in (None, found[0]["Type"])

        faults.deny("PutParameter", env, "HierarchyTypeMismatchException",
                    "Parameter Store doesn't support changing a parameter type in a hierarchy.", match=other_type)


@pytest.mark.parametrize("old, new", [("String", "SecureString"), ("StringList", "String")])
def test_a_parameter_whose_type_changed_is_mirrored_again(
    old: str, new: str, world: Estate, faults: Faults, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a parameter mirrored to staging and prod ...
    _refuse_type_changes(world, faults)
    put(world, "dev", NAME, "a,b", old)
    world.invoke(replication_monitor, load_event("ssm_parameter_created.json"), "dev", MIRROR_SECURE_STRINGS="true")
    assert world.parameter("prod", NAME)["Type"] == old
    # ... re-created in dev with another type (AWS cannot change it in place either)
    world.client("dev", "ssm").delete_parameter(Name=NAME)
    time.sleep(0.01)  # a later LastModifiedDate
    put(world, "dev", NAME, "new value", new)
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    capsys.readouterr()

    # WHEN its change event arrives
    result = world.invoke(replication_monitor, load_event("ssm_parameter_updated.json"), "dev",
                          MIRROR_SECURE_STRINGS="true")

    # THEN every mirror is replaced: deleted, and written with the new type after 30 s
    assert result["left"] == 0
    for env in ("staging", "prod"):
        mirror = world.parameter(env, NAME)
        assert (mirror["Type"], mirror["Value"]) == (new, "new value")
        writes = [op for e, op in faults.calls if e == env and op in ("DeleteParameter", "PutParameter")]
        assert writes[-2:] == ["DeleteParameter", "PutParameter"]
    assert slept == [monitor_logic.REPLACE_WAIT_SECONDS]
    out = capsys.readouterr().out
    assert metric_values(out, "ParametersMirrored") == [({"Environment": "dev"}, 2.0)]
    assert not metric_values(out, "ParameterMirrorFailures")


# --------------------------------------------------------------------------- the reconcile's budget


def test_a_large_backfill_stops_before_the_deadline_and_the_next_runs_finish_it(
    world: Estate, faults: Faults, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN 150 parameters that exist only in dev, and SSM calls that take 0.1 s each (a fake
    # clock the Lambda context's remaining time runs down with)
    ssm = world.client("dev", "ssm")
    names = [f"/app/dev/config/bulk/p{i:03d}" for i in range(150)]
    for i, name in enumerate(names):
        ssm.put_parameter(Name=name, Value=f"v{i}", Type="String")
    now = [1_714_564_800.0]
    started_with: list[int] = []
    context = ClockContext(lambda: now[0], 35.0)  # 15 s reserve + 20 s for the reconciliation

    def ssm_call(env: str, operation: str, params: dict[str, Any]) -> None:
        if operation in ("GetParameter", "GetParameters", "GetParametersByPath", "DescribeParameters",
                         "PutParameter", "DeleteParameter"):
            started_with.append(context.get_remaining_time_in_millis())
            now[0] += 0.1

    faults.on_call.append(ssm_call)

    # WHEN the schedule runs in an invocation with 35 s left
    result = world.invoke(replication_monitor, load_event("scheduled.json"), "dev", context=context)

    # THEN no call started inside the reserve; it stopped there, without an error, saying what it left
    assert min(started_with) > 15_000 - 100
    left = result["reconcile"]["left"]
    assert 0 < left < 300 and result["reconcile"]["stopped"]
    assert faults.count("GetParameter", "dev") == 0  # values reused from the listing
    assert faults.count("GetParametersByPath", "dev") in (15, 16)  # 150 in pages of 10 (moto may add an empty one)
    assert metric_values(capsys.readouterr().out, "ReconcileBacklog") == [({"Environment": "dev"}, float(left))]
    (stop,) = [r for r in logs(caplog) if r["message"].startswith("reconciliation stopped before the deadline")]
    assert stop["left"] == left and stop["level"] == "WARNING"

    # WHEN the next scheduled runs come THEN they finish the backfill, and say so
    for _ in range(5):
        context = ClockContext(lambda: now[0], 35.0)
        result = world.invoke(replication_monitor, load_event("scheduled.json"), "dev", context=context)
        if result["reconcile"]["left"] == 0:
            break
    assert result["reconcile"] == {"written": result["reconcile"]["written"], "left": 0, "stopped": None}
    assert all(world.parameter(env, n)["Value"] == f"v{i}" for env in ("staging", "prod") for i, n in enumerate(names))
    assert metric_values(capsys.readouterr().out, "ReconcileBacklog")[-1] == ({"Environment": "dev"}, 0.0)


# --------------------------------------------------------------------------- the stream processor


STREAM_FAULTS = {
    "agent role in prod cannot be assumed": ("AssumeRole", "prod", "AccessDenied", "not authorized to perform: sts:AssumeRole"),
    "the write is denied in prod": ("PutItem", "prod", "AccessDeniedException", "not authorized to perform: dynamodb:PutItem"),
    "prod's table is throttled": ("PutItem", "prod", "ProvisionedThroughputExceededException",
                                  "The level of configured provisioned throughput for the table was exceeded"),
    "prod throttles the whole account": ("PutItem", "prod", "ThrottlingException", "Rate of requests exceeds the allowed throughput"),
}


@pytest.mark.parametrize("name", list(STREAM_FAULTS))
def test_stream_fault_fails_each_record_once_and_the_retry_converges(
    name: str, world: Estate, faults: Faults, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    operation, env, code, message = STREAM_FAULTS[name]
    faults.deny(operation, env, code, message)
    event = batch(20)

    response = world.invoke(stream_processor, event, "dev")

    # THEN every record is reported (prod did not get it), staging got every one ...
    assert failed_ids(response) == [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    assert all(world.item("staging", f"ITEM#{i}", "config") for i in range(20))
    assert not any(world.item("prod", f"ITEM#{i}", "config") for i in range(20))
    out = capsys.readouterr().out
    assert metric_values(out, "ItemPropagationFailures") == [({"Environment": "dev"}, 20.0)]
    assert metric_values(out, "ItemsPropagated") == [({"Environment": "dev"}, 20.0)]  # the staging writes
    warnings = [r for r in logs(caplog) if r["message"] == "record failed"]
    assert len(warnings) == 20 and all(code in w["error"] and "prod" in w["error"] for w in warnings)
    # ... and nothing looped: one AssumeRole into prod for the whole batch (a denied role is not
    # asked again for 30 s), at most one write attempt per record
    assert faults.count("AssumeRole", "prod") == 1
    assert faults.count("PutItem", "prod") == (0 if operation == "AssumeRole" else 20)

    # WHEN Lambda retries the batch after the cause is gone THEN it converges
    faults.rules.clear()
    shared_clients._CACHE.clear()
    assert world.invoke(stream_processor, event, "dev") == {"batchItemFailures": []}
    assert all(world.item("prod", f"ITEM#{i}", "config")["version"] == 1 for i in range(20))


def test_a_denied_role_is_asked_again_after_30_seconds(world: Estate, faults: Faults) -> None:
    faults.deny("AssumeRole", "prod", times=1)
    assert len(failed_ids(world.invoke(stream_processor, batch(3), "dev"))) == 3
    (cached,) = shared_clients._CACHE.values()  # the warm execution environment's clients
    assert len(failed_ids(world.invoke(stream_processor, batch(3), "dev"))) == 3
    assert faults.count("AssumeRole", "prod") == 1  # within 30 s: not asked again

    later = time.time() + 31
    cached._clock = lambda: later  # noqa: SLF001
    assert world.invoke(stream_processor, batch(3), "dev") == {"batchItemFailures": []}
    assert faults.count("AssumeRole", "prod") == 2


def test_item_too_large_fails_only_that_record(
    world: Estate, faults: Faults, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # moto does not enforce DynamoDB's 400 KB item limit, so prod's answer is scripted: AWS's.
    faults.deny("PutItem", "prod", "ValidationException", "Item size has exceeded the maximum allowed size",
                match=lambda params: params["Item"]["pk"]["S"] == "ITEM#big")
    event = {"Records": [record("000000000000000000001", "ITEM#a"),
                         record("000000000000000000009", "ITEM#big", blob={"S": "x" * 1000}),
                         record("000000000000000000010", "ITEM#b")]}

    response = world.invoke(stream_processor, event, "dev")

    # THEN only that record is reported (Lambda retries it, then hands it to the on-failure
    # destination); the others and the other target went through
    assert failed_ids(response) == ["000000000000000000009"]
    assert world.item("prod", "ITEM#a", "config") and world.item("prod", "ITEM#b", "config")
    assert world.item("staging", "ITEM#big", "config")["blob"] == "x" * 1000
    out = capsys.readouterr().out
    assert metric_values(out, "ItemPropagationFailures") == [({"Environment": "dev"}, 1.0)]
    (warning,) = [r for r in logs(caplog) if r["message"] == "record failed"]
    assert warning["sequence_number"] == "000000000000000000009"
    assert "Item size has exceeded the maximum allowed size" in warning["error"]
    assert faults.count("PutItem", "prod") == 3  # one attempt each


# --------------------------------------------------------------------------- the monitor's other work


def test_s3_failure_that_cannot_be_recorded_fails_the_invocation(
    world: Estate, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    faults.deny("PutItem", "dev", "ProvisionedThroughputExceededException", "throughput exceeded")

    with pytest.raises(ProcessingFailed, match="ProvisionedThroughputExceededException"):
        world.invoke(replication_monitor, load_event("s3_replication_failed.json"), "dev")

    (error,) = [r for r in logs(caplog) if r["level"] == "ERROR"]
    assert error["message"] == "invocation failed" and "ProvisionedThroughputExceededException" in error["exception"]
    assert faults.count("PutItem", "dev") == 1
    faults.rules.clear()  # Lambda's retry records it
    assert world.invoke(replication_monitor, load_event("s3_replication_failed.json"), "dev")["recorded"] == 1


def test_heartbeat_towards_a_denied_account_publishes_a_lower_bound_and_says_why(
    world: Estate, faults: Faults, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from replshared.clients import AwsClients
    from replshared.settings import Settings
    from replshared.telemetry import Metrics

    faults.deny("AssumeRole", "prod")
    now = [1_714_564_800.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with environment({**function_env("dev"), **world.creds["dev"]}):
        settings_ = Settings.from_env()
        metrics = Metrics(settings_.metrics_namespace)
        clients = AwsClients(settings_, function="replication-monitor", clock=lambda: now[0])
        try:
            result = replication_monitor.run_schedule(settings_, clients, metrics, clock=lambda: now[0], sleep=sleep,
                                                      poll_seconds=60.0, reconcile=False)
        finally:
            metrics.flush()

    assert result["lag"]["prod"]["metadata"] == (pytest.approx(60.0), False)  # the lower bound
    assert sum(sleeps) == pytest.approx(60.0)
    out = capsys.readouterr().out
    assert {d["Target"]: v for d, v in metric_values(out, "MetadataReplicationLag")}["prod"] == pytest.approx(60.0)
    probe_failures = [r for r in logs(caplog) if r["message"] == "downstream probe failed"]
    assert sorted((r["probe"], r["target"]) for r in probe_failures) == [("metadata", "prod"), ("s3", "prod")]
    assert all("AccessDenied" in r["error"] for r in probe_failures)
    # ~70 probes in 60 s, but STS was asked at most once per 30 s
    assert faults.count("AssumeRole", "prod") <= 3


def test_the_sdk_retries_are_bounded() -> None:
    # The handlers' clients back off on throttling, a bounded number of times, before the
    # handler sees the error (and reports it as above).
    config = shared_clients._client_config()
    assert config.retries == {"mode": "adaptive", "max_attempts": 5}
    assert config.connect_timeout == 5 and config.read_timeout == 20


# --------------------------------------------------------------------------- truncated events


def _truncate(draw: st.DrawFn, value: Any) -> Any:
    """The document as if cut off: every collection keeps a prefix of its items, strings a prefix."""
    if isinstance(value, dict):
        items = list(value.items())
        keep = draw(st.integers(0, len(items)))
        return {k: _truncate(draw, v) for k, v in items[:keep]}
    if isinstance(value, list):
        keep = draw(st.integers(0, len(value)))
        return [_truncate(draw, v) for v in value[:keep]]
    if isinstance(value, str) and value and draw(st.booleans()):
        return value[: draw(st.integers(0, len(value) - 1))]
    return value


EVENTS = ("ssm_parameter_created.json", "ssm_parameter_deleted.json", "s3_replication_failed.json",
          "scheduled.json", "dynamodb_stream_batch.json")


@st.composite
def truncated_events(draw: st.DrawFn) -> Any:
    return _truncate(draw, load_event(draw(st.sampled_from(EVENTS))))


@pytest.fixture()
def shared_world() -> Iterator[Estate]:  # once per test function: shared by its hypothesis examples
    from moto import mock_aws

    with mock_aws():
        estate = Estate()
        estate.client("dev", "ssm").put_parameter(Name=NAME, Value="v", Type="String")
        yield estate


TRUNCATED = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])


@TRUNCATED
@given(event=truncated_events())
def test_truncated_events_are_handled_or_refused_on_purpose(
    shared_world: Estate, event: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for module in (replication_monitor, stream_processor):
        capsys.readouterr()
        try:
            result = shared_world.invoke(module, copy.deepcopy(event), "dev", context=FakeContext(remaining_ms=20_000))
        except UnhandledEvent:
            # refused on purpose: logged (its shape, not its values) and counted
            out = capsys.readouterr().out
            assert metric_values(out, "UnhandledEvents"), out
            assert any(r["message"] == "unhandled event" for r in logs(caplog))
        except HandlerError as error:
            assert isinstance(error, ProcessingFailed)
            assert not re.search(r"\b(KeyError|TypeError|AttributeError|IndexError)\b", str(error)), error
        else:
            assert isinstance(result, dict)
            if module is stream_processor:
                numbers = {r["dynamodb"]["SequenceNumber"] for r in event.get("Records", [])}
                assert set(failed_ids(result)) <= numbers
