"""Rollout faults, served the way a hostile world serves them, through `replctl deploy`.

GIVEN the scripted fake StackSet service (operations RUNNING on a fake clock) wrapped in a
fault injector, WHEN `replctl deploy --yes` meets a fault at a given phase, THEN the user sees
one message naming what happened (never a traceback), the process exits with the documented
code, no environment after the faulty one was touched, and a plain re-run converges: every
instance CURRENT/SUCCEEDED and wired, each instance created by exactly one operation.

Existing tests cover the plain cases (tests/unit/deploy/test_rollout.py, test_cli.py: a FAILED
staging operation, a timeout, throttled reads and starts, a Ctrl-C mid-wait, a firing gate,
OperationInProgressException). This file adds throttling on every API the rollout uses, dropped
connections, expired sessions, STOPPED operations, failure tolerance, a stack set kept busy by
someone else, a denied observer role, and Ctrl-C at each phase.

The second half checks the factory's assume-role credentials refresh themselves during a wait
that outlives them (botocore Stubber for STS, canned CloudFormation answers, fake time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from typer.testing import CliRunner

from replctl.aws import assume_role_error
from replctl.cli import app
from replctl.commands import deploy
from replctl.deploy.model import Clients
from replctl.deploy.rollout import MAX_IN_PROGRESS_RETRIES
from replctl.deploy.template import identity
from tests.unit.deploy.fake_stacksets import (
    CONFIG,
    DEV,
    PROD,
    REGION,
    STAGING,
    World,
    error,
    make_artifacts,
    write_estate,
)

runner = CliRunner()
STAGING2 = "444444444444"
INTERRUPTED = "interrupted; nothing half-done is left that a re-run cannot resume"


def api_name(method: str) -> str:
    """describe_stack_set_operation -> DescribeStackSetOperation."""
    return "".join(part.capitalize() for part in method.split("_"))


# --------------------------------------------------------------------------- fault injection


@dataclass
class Fault:
    """Do something nasty around one client method, `times` times, when `match()` holds.

    `when="before"`: the call never reached AWS. `when="after"`: AWS did it, the answer was lost.
    `error` is raised (a factory, so each raise is a fresh exception); `effect` runs first and
    may change the world (stop an operation, start someone else's).
    """

    method: str
    error: Callable[[], BaseException] | None = None
    when: str = "before"
    times: int = 1
    match: Callable[[dict[str, Any]], bool] = lambda kw: True
    effect: Callable[[], None] | None = None
    fired: int = 0

    def applies(self, method: str, kwargs: dict[str, Any]) -> bool:
        return method == self.method and self.fired < self.times and self.match(kwargs)


class Faulty:
    """A fake client whose methods go through the scripted faults first."""

    def __init__(self, target: Any, faults: list[Fault]) -> None:
        self._target = target
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(**kwargs: Any) -> Any:
            fault = next((f for f in self._faults if f.applies(name, kwargs)), None)
            if fault is not None:
                fault.fired += 1
                if fault.effect is not None:
                    fault.effect()
                if fault.error is not None and fault.when == "before":
                    raise fault.error()
            result = attr(**kwargs)
            if fault is not None and fault.error is not None and fault.when == "after":
                raise fault.error()
            return result

        return call


def throttled(method: str) -> Callable[[], BaseException]:
    return lambda: error("Throttling", "Rate exceeded", api_name(method))


def dropped(method: str) -> Callable[[], BaseException]:
    return lambda: EndpointConnectionError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/")


def ctrl_c() -> BaseException:
    return KeyboardInterrupt()


# --------------------------------------------------------------------------- the estate


class Estate:
    """The fake AWS behind `replctl deploy`, and the checks every fault ends with."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str = CONFIG) -> None:
        self.path = write_estate(tmp_path, config=config)
        self.world = World()
        self.faults: list[Fault] = []
        artifacts = make_artifacts(tmp_path)
        monkeypatch.setattr(deploy, "runtime", lambda st: deploy.Runtime(
            self.clients(), lambda: artifacts, identity, self.world.clock.sleep, self.world.clock))

    def clients(self) -> Clients:
        w = self.world
        return Clients(cfn=Faulty(w.cfn, self.faults), s3=lambda region: Faulty(w.s3, self.faults),
                       cloudwatch=lambda account, region: Faulty(w.watch(account), self.faults))

    def deploy(self) -> Any:
        result = runner.invoke(app, ["--config", str(self.path), "--no-color", "deploy", "--yes"],
                               env={"COLUMNS": "200"})
        assert "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result

    # -- what the world saw ----------------------------------------------------------------------

    def touched(self, account: str) -> bool:
        """Did any StackSet call naming `account` reach AWS?"""
        return any(account in (kw.get("Accounts") or []) for _, kw in self.world.cfn.calls)

    def staging_running(self, _: dict[str, Any] | None = None) -> bool:
        return any((STAGING, REGION) in op.targets and not op.settled for op in self.world.cfn.operations.values())

    def staging_deployed(self, _: dict[str, Any] | None = None) -> bool:
        inst = self.world.cfn.instances.get((STAGING, REGION))
        return inst is not None and inst.status == "CURRENT" and (PROD, REGION) not in self.world.cfn.instances

    def armed(self, _: dict[str, Any] | None = None) -> bool:
        """True once the stack set exists: planning is over, the rollout is under way."""
        return self.world.cfn.stack_set is not None

    def assert_converged(self) -> None:
        cfn = self.world.cfn
        assert all(i.status == "CURRENT" and i.detailed == "SUCCEEDED" for i in cfn.instances.values())
        assert {(DEV, REGION), (STAGING, REGION), (PROD, REGION)} <= set(cfn.instances)
        dev, staging = cfn.instances[(DEV, REGION)].overrides, cfn.instances[(STAGING, REGION)].overrides
        assert (dev["ReplicateToStaging"], dev["ReplicateToProd"], staging["ReplicateToProd"]) == ("true",) * 3
        creations = [op.targets for op in cfn.operations.values() if op.api == "CreateStackInstances"]
        assert sorted(t for targets in creations for t in targets) == sorted(cfn.instances)  # once each


@pytest.fixture()
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Estate:
    return Estate(tmp_path, monkeypatch)


# --------------------------------------------------------------------------- the table

#: The APIs a first rollout calls once the stack set exists (planning and preparation come before).
ROLLOUT_METHODS = ("create_stack_instances", "update_stack_instances", "describe_stack_set_operation",
                   "list_stack_set_operation_results", "list_stack_instances", "describe_alarms")


def stop_staging(e: Estate) -> Callable[[], None]:
    """Someone runs StopStackSetOperation on staging's operation while replctl waits."""

    def effect() -> None:
        for op in e.world.cfn.operations.values():
            if (STAGING, REGION) in op.targets and not op.settled:
                op.status, op.settled, op.reason = "STOPPED", True, "Stopped by user arn:aws:iam::123456789012:user/ops"
                for key in op.targets:
                    op.results[key] = ("CANCELLED", "Cancelled since the operation was stopped")
                    inst = e.world.cfn.instances[key]
                    inst.status, inst.detailed = "OUTDATED", "CANCELLED"

    return effect


def denied_observer() -> BaseException:
    role = f"arn:aws:iam::{STAGING}:role/replctl/replctl-observer"
    return assume_role_error(role, error(
        "AccessDenied", f"User: arn:aws:sts::123456789012:assumed-role/ops/me is not authorized to perform: "
        f"sts:AssumeRole on resource: {role}", "AssumeRole", 403))


@dataclass(frozen=True)
class Case:
    """One row: the faults, then what the user sees and the exit code."""

    faults: Callable[[Estate], list[Fault]]
    exit_code: int
    message: str  # a fragment of stderr (whitespace-normalised)
    prod_untouched: bool = True
    config: str = CONFIG


def _busy_forever(e: Estate) -> list[Fault]:
    # Someone else starts an operation just before each of replctl's attempts to start staging.
    return [Fault("create_stack_instances", effect=lambda: e.world.cfn.foreign_operation(duration=40),
                  match=lambda kw: kw.get("Accounts") == [STAGING], times=MAX_IN_PROGRESS_RETRIES + 1)]


def _foreign_then_free(e: Estate) -> list[Fault]:
    return [Fault("create_stack_instances", effect=lambda: e.world.cfn.foreign_operation(duration=300),
                  match=lambda kw: kw.get("Accounts") == [STAGING])]


TOLERANT = CONFIG.replace("  wait:\n", "  operation_preferences:\n    failure_tolerance_count: 1\n  wait:\n").replace(
    'account_id: "222222222222"\n', f'account_id: "222222222222"\n    extra_account_ids: ["{STAGING2}"]\n')


def _fail_staging(*keys: tuple[str, str]) -> Callable[[Estate], list[Fault]]:
    def faults(e: Estate) -> list[Fault]:
        for key in keys:
            e.world.cfn.failures[key] = f"Resource handler returned message: \"replctl-config-staging-{key[0]} exists\""
        return []

    return faults


CASES: dict[str, Case] = {
    # -- throttling --------------------------------------------------------------------------------
    "throttled twice on every rollout API: retried, deploy succeeds": Case(
        lambda e: [Fault(m, throttled(m), times=2, match=e.armed) for m in ROLLOUT_METHODS],
        0, "deployed: dev, staging, prod, wiring dev, wiring staging", prod_untouched=False),
    "planning throttled beyond the SDK's retries: nothing changed": Case(
        lambda e: [Fault("describe_stack_set", throttled("describe_stack_set"))],
        3, "error: AWS kept throttling DescribeStackSet (Throttling) after the SDK's retries"),
    "artifact upload throttled beyond the SDK's retries: nothing rolled out": Case(
        lambda e: [Fault("put_object", throttled("put_object"))],
        3, "error: AWS kept throttling PutObject (Throttling) after the SDK's retries"),
    # -- sessions and connections ------------------------------------------------------------------
    "caller's session expires while waiting on staging": Case(
        lambda e: [Fault("describe_stack_set_operation", lambda: error(
            "ExpiredToken", "The security token included in the request is expired", "DescribeStackSetOperation"),
            match=e.staging_running)],
        3, "error: the AWS session token has expired hint: refresh your credentials and re-run"),
    "connection dropped while waiting: the poll is repeated": Case(
        lambda e: [Fault("describe_stack_set_operation", dropped("describe_stack_set_operation"), times=3,
                         match=e.staging_running)],
        0, "deployed: dev, staging, prod", prod_untouched=False),
    "connection dropped after AWS accepted the start: the retry with the same OperationId attaches": Case(
        lambda e: [Fault("create_stack_instances", dropped("create_stack_instances"), when="after",
                         match=lambda kw: kw.get("Accounts") == [STAGING])],
        0, "deployed: dev, staging, prod", prod_untouched=False),
    "endpoint unreachable while planning": Case(
        lambda e: [Fault("describe_stack_set", dropped("describe_stack_set"))],
        3, "error: cannot reach the AWS endpoint"),
    # -- operations that do not succeed ------------------------------------------------------------
    "staging's operation is STOPPED by someone": Case(
        lambda e: [Fault("describe_stack_set_operation", effect=stop_staging(e), match=e.staging_running)],
        6, "STOPPED — Stopped by user arn:aws:iam::123456789012:user/ops"),
    "one instance fails within the failure tolerance: the operation SUCCEEDS, verify stops the rollout": Case(
        _fail_staging((STAGING2, REGION)), 6,
        f"staging: not every instance is CURRENT/SUCCEEDED after the rollout: {STAGING2} us-east-1: OUTDATED/FAILED — "
        f"Resource handler returned message: \"replctl-config-staging-{STAGING2} exists\"", config=TOLERANT),
    "instances fail beyond the failure tolerance: the operation FAILS": Case(
        _fail_staging((STAGING, REGION), (STAGING2, REGION)), 6,
        f"staging {STAGING} us-east-1: FAILED — Resource handler returned message: "
        f"\"replctl-config-staging-{STAGING} exists\"", config=TOLERANT),
    # -- someone else's operations -----------------------------------------------------------------
    "someone else's operation holds the stack set at staging's start: waited for, then ours": Case(
        _foreign_then_free, 0, "staging: another operation is running on replctl-replication; waiting for it",
        prod_untouched=False),
    "someone else keeps the stack set busy: given up after the retries": Case(
        _busy_forever, 6, "staging: CreateStackInstances was rejected: OperationInProgressException"),
    # -- permissions --------------------------------------------------------------------------------
    "observer role cannot be assumed at staging's gate": Case(
        lambda e: [Fault("describe_alarms", denied_observer, match=lambda kw: kw["AlarmNamePrefix"] == "replctl-staging-")],
        3, f"error: cannot assume arn:aws:iam::{STAGING}:role/replctl/replctl-observer: AccessDenied"),
    # -- Ctrl-C at each phase ----------------------------------------------------------------------
    "Ctrl-C during the artifact upload": Case(
        lambda e: [Fault("put_object", ctrl_c)], 130, INTERRUPTED),
    "Ctrl-C after AWS created the stack set": Case(
        lambda e: [Fault("create_stack_set", ctrl_c, when="after")], 130, INTERRUPTED),
    "Ctrl-C after AWS started staging's operation": Case(
        lambda e: [Fault("create_stack_instances", ctrl_c, when="after",
                         match=lambda kw: kw.get("Accounts") == [STAGING])], 130, INTERRUPTED),
    "Ctrl-C while waiting on staging": Case(
        lambda e: [Fault("describe_stack_set_operation", ctrl_c, match=e.staging_running)], 130, INTERRUPTED),
    "Ctrl-C while verifying staging": Case(
        lambda e: [Fault("list_stack_instances", ctrl_c, match=e.staging_deployed)], 130, INTERRUPTED),
    "Ctrl-C during staging's gate": Case(
        lambda e: [Fault("describe_alarms", ctrl_c, match=lambda kw: kw["AlarmNamePrefix"] == "replctl-staging-")],
        130, INTERRUPTED),
}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    e = Estate(tmp_path, monkeypatch, case.config)
    e.faults.extend(case.faults(e))

    result = e.deploy()

    # THEN one message on stderr and the documented exit code
    assert result.exit_code == case.exit_code, result.output
    assert flat(case.message) in flat(result.stderr), result.stderr
    assert all(f.fired for f in e.faults), [f.method for f in e.faults if not f.fired]  # each fault really happened
    if case.exit_code:
        assert result.stderr.count("error: ") == 1, result.stderr
    # ... no environment after the faulty one was touched
    if case.prod_untouched:
        assert not e.touched(PROD), [api for api, kw in e.world.cfn.calls if PROD in (kw.get("Accounts") or [])]

    # WHEN the cause is gone and the operator simply re-runs, THEN it converges
    e.faults.clear()
    if case.config == TOLERANT:
        e.world.cfn.failures.clear()
    again = e.deploy()
    assert again.exit_code == 0, again.output
    e.assert_converged()


def test_every_rollout_api_was_throttled_and_retried(estate: Estate) -> None:
    # The table's first row, looked at closely: each API really was throttled twice and got through.
    estate.faults.extend(Fault(m, throttled(m), times=2, match=estate.armed) for m in ROLLOUT_METHODS)
    result = estate.deploy()
    assert result.exit_code == 0, result.output
    assert [f.fired for f in estate.faults] == [2] * len(ROLLOUT_METHODS)
    assert "throttled while polling (Throttling); backing off" in result.stderr
    assert "CreateStackInstances throttled (Throttling); retrying with the same operation id" in result.stderr
    estate.assert_converged()
    # One operation per start despite the throttled attempts.
    assert len(estate.world.cfn.operations) == 5


def test_throttled_template_update_brings_every_environment_forward(estate: Estate) -> None:
    # A second rollout (template change): UpdateStackSet for dev, then staging and prod brought
    # forward with UpdateStackInstances, all throttled.
    assert estate.deploy().exit_code == 0
    write_estate(estate.path.parent, template=(estate.path.parent / "t.yaml").read_text().replace(
        "Default: replctl\n", "Default: replctl2\n"))
    # Armed once planning has read the instances: the rollout's own calls are the ones throttled.
    planned = lambda kw: bool(estate.world.cfn.calls_to("DescribeStackInstance"))  # noqa: E731
    estate.faults.extend(Fault(m, throttled(m), times=2, match=planned) for m in ("update_stack_set", *ROLLOUT_METHODS))
    result = estate.deploy()
    assert result.exit_code == 0, result.output
    assert [f.method for f in estate.faults if f.fired == 2] == [
        "update_stack_set", "update_stack_instances", "describe_stack_set_operation", "list_stack_set_operation_results",
        "list_stack_instances", "describe_alarms"]
    # The two throttled attempts never reached the service; the one that did names dev only.
    assert [kw["Accounts"] for kw in estate.world.cfn.calls_to("UpdateStackSet")] == [[DEV]]
    assert {i.deployed_template.count("replctl2") for i in estate.world.cfn.instances.values()} == {1}
    assert {i.status for i in estate.world.cfn.instances.values()} == {"CURRENT"}


def test_stopped_operation_names_the_operation_and_its_reason(estate: Estate) -> None:
    estate.faults.append(Fault("describe_stack_set_operation", effect=stop_staging(estate), match=estate.staging_running))
    result = estate.deploy()
    assert result.exit_code == 6
    err = flat(result.stderr)
    assert re.search(r"error: staging: CreateStackInstances operation replctl-[0-9a-f-]+ STOPPED — Stopped by user", err)
    assert f"{STAGING} us-east-1: CANCELLED — Cancelled since the operation was stopped" in err
    assert "later environments were not touched" in err


def test_within_tolerance_the_operation_itself_succeeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What AWS reports (and why verify is needed): SUCCEEDED, though one instance FAILED.
    e = Estate(tmp_path, monkeypatch, TOLERANT)
    e.world.cfn.failures[(STAGING2, REGION)] = "boom"
    assert e.deploy().exit_code == 6
    staging_op = next(op for op in e.world.cfn.operations.values() if (STAGING2, REGION) in op.targets)
    assert staging_op.status == "SUCCEEDED"
    assert staging_op.results[(STAGING2, REGION)] == ("FAILED", "boom")
    assert e.world.cfn.calls_to("CreateStackInstances")[1]["OperationPreferences"]["FailureToleranceCount"] == 1


# --------------------------------------------------------------------------- credentials refresh


class FakeNow:
    """UTC wall time for botocore's credential expiry checks, moved by the rollout's fake sleep."""

    def __init__(self) -> None:
        self.start = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
        self.elapsed = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def clock(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += seconds


_NS = 'xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"'
_ANSWERS = {
    "ListStackSetOperations": "<Summaries><member><OperationId>op-1</OperationId><Action>UPDATE</Action>"
                              "<Status>{status}</Status></member></Summaries>",
    "DescribeStackSetOperation": "<StackSetOperation><OperationId>op-1</OperationId><Action>UPDATE</Action>"
                                 "<Status>{status}</Status></StackSetOperation>",
    "ListStackSetOperationResults": "<Summaries/>",
}


class CannedCloudFormation:
    """Answers signed CloudFormation requests (a `before-send` hook: after signing, before the
    network) with an operation RUNNING until `finish_after`, and records which access key signed
    each request at what fake time."""

    def __init__(self, now: FakeNow, finish_after: float) -> None:
        self.now = now
        self.finish_after = finish_after
        self.signed: list[tuple[float, str]] = []

    def __call__(self, request: Any, **_: Any) -> Any:
        from urllib.parse import parse_qs

        from botocore.awsrequest import AWSResponse

        auth = request.headers["Authorization"]
        auth = auth.decode() if isinstance(auth, bytes) else auth
        self.signed.append((self.now.elapsed, re.search(r"Credential=([A-Z0-9]+)/", auth)[1]))
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        action = parse_qs(body)["Action"][0]
        status = "SUCCEEDED" if self.now.elapsed >= self.finish_after else "RUNNING"
        xml = (f"<{action}Response {_NS}><{action}Result>{_ANSWERS[action].format(status=status)}"
               f"</{action}Result></{action}Response>")
        return AWSResponse(request.url, 200, {"Content-Type": "text/xml"}, _Raw(xml.encode()))


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self.data


TOKEN_LIFETIME = timedelta(hours=1)


def _refresh_estate(tmp_path: Path, answers: list[str | None]) -> tuple[Any, Any, FakeNow, list[str], list[float]]:
    """A factory operating through an admin role (refreshable credentials), its CloudFormation
    client, and STS stubbed with `answers`: None for a one-hour token, a message for AccessDenied.

    The stub's answers are queued up front but botocore decides when to refresh, so each token's
    Expiration is stamped when STS "answers" (an after-call hook): one hour after that moment.
    """
    from botocore.stub import Stubber

    from replctl.aws import AwsSettings, SessionFactory
    from replctl.config import load_config

    config = load_config(write_estate(tmp_path, config=CONFIG.replace("max_interval_seconds: 8", "max_interval_seconds: 300")
                                      .replace("timeout_seconds: 600", "timeout_seconds: 20000")))
    now = FakeNow()
    factory = SessionFactory(AwsSettings(region=REGION, max_attempts=1),
                             admin_role_arn="arn:aws:iam::123456789012:role/replctl-operator")
    keys: list[str] = []
    issued: list[float] = []

    def stub_sts(service: str, account: str | None, client: Any) -> None:
        if service != "sts":
            return
        stubber = Stubber(client)
        for i, denied in enumerate(answers):
            if denied is not None:
                stubber.add_client_error("assume_role", "AccessDenied", denied, 403)
                continue
            keys.append(f"ASIAROTATED{i:09d}")
            stubber.add_response("assume_role", {
                "Credentials": {"AccessKeyId": keys[-1], "SecretAccessKey": f"secret-{i}", "SessionToken": f"token-{i}",
                                "Expiration": now.start},
                "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:replctl", "Arn": "arn:aws:sts::123456789012:assumed-role/o/r"},
            })

        def stamp(parsed: dict[str, Any], **_: Any) -> None:
            if "Credentials" in parsed:
                parsed["Credentials"]["Expiration"] = now.now() + TOKEN_LIFETIME
                issued.append(now.elapsed)

        client.meta.events.register("after-call.sts.AssumeRole", stamp)
        stubber.activate()

    factory.add_client_hook(stub_sts)
    cfn = factory.client("cloudformation", region=REGION)
    factory.session("123456789012", factory.admin_role_arn).get_credentials()._time_fetcher = now.now
    return config, cfn, now, keys, issued


def test_assumed_admin_credentials_are_refreshed_during_a_long_wait(tmp_path: Path) -> None:
    """A prod rollout outlives a one-hour token: the wait goes on with refreshed credentials."""
    from replctl.deploy.rollout import attach

    config, cfn, now, keys, issued = _refresh_estate(tmp_path, [None] * 8)
    canned = CannedCloudFormation(now, finish_after=3.5 * 3600)
    cfn.meta.events.register("before-send.cloudformation.*", canned)

    outcomes = attach(config, Clients(cfn=cfn, s3=None, cloudwatch=None), sleep=now.sleep, clock=now.clock)

    assert [o.status.value for o in outcomes] == ["SUCCEEDED"]
    assert now.elapsed >= 3.5 * 3600
    used = list(dict.fromkeys(key for _, key in canned.signed))
    assert len(used) >= 4 and used == keys[: len(used)]  # a 3.5 h wait needed at least four one-hour tokens
    issued_at = dict(zip(keys, issued))
    for t, key in canned.signed:  # every request was signed with a token that still had 10 min left
        assert issued_at[key] <= t < issued_at[key] + 3600 - 600, (t, key)


def test_a_refresh_that_is_denied_mid_wait_is_an_access_error_naming_the_role(tmp_path: Path) -> None:
    from replctl.errors import AwsAccessError
    from replctl.deploy.rollout import attach

    config, cfn, now, _, _ = _refresh_estate(tmp_path, [None] + ["trust policy changed"] * 6)
    cfn.meta.events.register("before-send.cloudformation.*", CannedCloudFormation(now, finish_after=3 * 3600))

    with pytest.raises(AwsAccessError) as info:
        attach(config, Clients(cfn=cfn, s3=None, cloudwatch=None), sleep=now.sleep, clock=now.clock)

    assert info.value.message == ("cannot assume arn:aws:iam::123456789012:role/replctl-operator: "
                                  "AccessDenied: trust policy changed")
    assert 3000 <= now.elapsed < 3600  # given up at the mandatory refresh, before the token expired
