"""Secrets never show: planted values are grepped for in everything the CLI and the handlers say.

GIVEN planted secrets — a SecureString parameter value (in moto, in every account), AWS secret
keys and a session token in the environment, the agent role's external id (in the estate file
and the functions' environment), a NoEcho template parameter, the credentials the functions get
from STS — WHEN `status`, `drift`, `plan`, `deploy --dry-run` and `deploy` run (table and JSON,
and `--debug` error paths), and the replication monitor mirrors a SecureString with mirroring on
and off (with AWS answering a failed write with a message that quotes the value, as validation
errors do), in-process and through `sandbox invoke`, THEN none of the planted values appears in
any captured stdout, stderr, log record, error message, traceback or JSON document.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from replctl.cli import app
from replctl.commands import deploy
from replctl.deploy.template import identity
from tests.fnkit import Estate, environment, function_env, load_event
from tests.functional.functions.test_faults import Faults
from tests.functional.drift.test_parity_moto import write_functions
from tests.functional.status.test_status_moto import CONFIG as STATUS_CONFIG
from tests.functional.status.test_status_moto import Seed, seed, session_in, shared_models  # noqa: F401
from tests.unit.deploy.fake_stacksets import CONFIG, TEMPLATE, World, error, make_artifacts, write_estate

import monitor_logic  # noqa: E402  (on sys.path through tests.fnkit)
import replication_monitor  # noqa: E402
from replshared import clients as shared_clients  # noqa: E402
from replshared.errors import ProcessingFailed  # noqa: E402

runner = CliRunner()

SECURE_VALUE = "Pl4nted-SecureString-value-1b9e7c"
SECURE_NAME = "/app/dev/config/db/password"
EXTERNAL_ID = "planted-external-id-5d2a9f"
NOECHO_VALUE = "planted-noecho-db-password-31f0"
ACCESS_KEY = "AKIAPLANTEDACCESSKEY"
SECRET_KEY = "planted/Secret+Access+Key/0123456789abcdefXYZ"
SESSION_TOKEN = "PlantedSessionToken/" + "Zq9" * 20
PLANTED = (SECURE_VALUE, EXTERNAL_ID, NOECHO_VALUE, ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
#: What AWS says when a value breaks a constraint (the JSON protocols' validation message).
ECHOING = "1 validation error detected: Value '{}' at 'value' failed to satisfy constraint: Member must satisfy regular expression pattern"


class Transcript:
    """Everything that was printed, logged or raised, to be grepped at the end."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, *texts: str) -> None:
        self.parts.extend(texts)

    def cli(self, result: Any) -> Any:
        self.add(result.stdout, result.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            self.add("".join(traceback.format_exception(result.exception)))
        return result

    def error(self, exc: BaseException) -> None:
        self.add(str(exc), repr(exc), "".join(traceback.format_exception(exc)))

    def assert_clean(self, *more: str) -> None:
        text = "\n".join(self.parts)
        assert text.strip(), "nothing was captured: the check would be vacuous"
        leaked = [s for s in (*PLANTED, *more) if s and s in text]
        assert leaked == [], f"leaked {leaked}"


@pytest.fixture()
def planted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's AWS credentials are the planted ones (moto accepts any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)


def invoke(transcript: Transcript, *argv: str) -> Any:
    return transcript.cli(runner.invoke(app, ["--no-color", *argv], env={"COLUMNS": "200"}))


# --------------------------------------------------------------------------- status and drift


def test_status_and_drift_never_show_secrets(
    tmp_path: Path, planted_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    config = tmp_path / "environments.yaml"
    config.write_text(STATUS_CONFIG.replace("  ResourcePrefix: replctl\n",
                                            f"  ResourcePrefix: replctl\n  ReplicationExternalId: {EXTERNAL_ID}\n"))
    code = write_functions(tmp_path)
    transcript = Transcript()
    with mock_aws():
        seed({e: Seed(code=code) for e in ("dev", "staging", "prod")})
        for env, account in (("dev", "111111111111"), ("staging", "222222222222"), ("prod", "333333333333")):
            # the secret itself, and its mirror downstream
            ssm = session_in(account).client("ssm")
            ssm.put_parameter(Name=SECURE_NAME, Value=SECURE_VALUE, Type="SecureString")
            ssm.put_parameter(Name=f"/app/{env}/config/api-key", Value=SECURE_VALUE, Type="SecureString")
        for argv in (("status",), ("-o", "json", "status"), ("drift",), ("-o", "json", "drift"),
                     ("status", "--env", "prod"), ("--debug", "status", "--env", "qa")):
            result = invoke(transcript, "--config", str(config), *argv)
            assert result.exit_code != 1 or argv[0] == "--debug", result.output
    assert "db/password" in "\n".join(transcript.parts)  # drift did compare the key sets (names only)
    transcript.add(caplog.text)
    transcript.assert_clean()


# --------------------------------------------------------------------------- plan and deploy

SECRET_TEMPLATE = TEMPLATE.replace("Resources:\n", f"""\
  ReplicationExternalId:
    Type: String
    Default: replctl-replication
  DatabasePassword:
    Type: String
    NoEcho: true
Resources:
""") + """\
  Secrets:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub ${SSMPathPrefix}/${Environment}/config/secrets
      Type: String
      Value: !Sub ${ReplicationExternalId},${DatabasePassword}
"""


class FakeEstate:
    """The fake StackSet service behind `plan` and `deploy` (as in tests/unit/deploy/test_cli.py)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.world = World()
        self.write(EXTERNAL_ID)
        artifacts = make_artifacts(tmp_path)
        monkeypatch.setattr(deploy, "runtime", lambda st: deploy.Runtime(
            self.world.clients(), lambda: artifacts, identity, self.world.clock.sleep, self.world.clock))

    def write(self, external_id: str) -> None:
        config = CONFIG.replace("  ResourcePrefix: replctl\n", f"  ResourcePrefix: replctl\n  ReplicationExternalId: "
                                f"{external_id}\n  DatabasePassword: {NOECHO_VALUE}\n")
        # a per-environment secret too (instance overrides)
        config = config.replace('      LogRetentionDays: "365"\n',
                                f'      LogRetentionDays: "365"\n      ReplicationExternalId: {external_id}-prod\n')
        self.path = write_estate(self.tmp_path, config=config, template=SECRET_TEMPLATE)


def test_plan_and_deploy_never_show_sensitive_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted_env: None
) -> None:
    estate = FakeEstate(tmp_path, monkeypatch)
    transcript = Transcript()
    cfg = ("--config", str(estate.path))
    for argv in (("plan",), ("-o", "json", "plan"), ("deploy", "--dry-run"), ("-o", "json", "deploy", "--dry-run")):
        assert invoke(transcript, *cfg, *argv).exit_code == 0
    assert invoke(transcript, *cfg, "-o", "json", "deploy", "--yes").exit_code == 0
    # The values did reach AWS, where they belong.
    assert estate.world.cfn.stack_set["Parameters"]["ReplicationExternalId"] == EXTERNAL_ID
    assert estate.world.cfn.stack_set["Parameters"]["DatabasePassword"] == NOECHO_VALUE

    # A changed external id shows as a change, without either value.
    estate.write("planted-external-id-rotated")
    plan = invoke(transcript, *cfg, "-o", "json", "plan")
    changes = {(c["scope"], c["name"]): c for c in json.loads(plan.stdout)["plan"]["parameter_changes"]}
    assert changes[("stack set", "ReplicationExternalId")] == {
        "scope": "stack set", "name": "ReplicationExternalId", "before": "(hidden)", "after": "(hidden)",
        "note": "sensitive: value not shown"}
    table = invoke(transcript, *cfg, "plan")
    assert "ReplicationExternalId" in table.stdout and "(hidden)" in table.stdout
    assert invoke(transcript, *cfg, "deploy", "--yes").exit_code == 0
    transcript.assert_clean("planted-external-id-rotated")


def test_debug_error_paths_never_show_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted_env: None
) -> None:
    estate = FakeEstate(tmp_path, monkeypatch)
    transcript = Transcript()
    cfg = ("--config", str(estate.path))
    for debug in ((), ("--debug",)):
        estate.world.cfn.raise_next["DescribeStackSet"] = error(
            "AccessDenied", "User: arn:aws:sts::123456789012:assumed-role/ops/me is not authorized to perform: "
            "cloudformation:DescribeStackSet", "DescribeStackSet", 403)
        result = invoke(transcript, *debug, *cfg, "plan")
        assert result.exit_code != 0
    estate.world.cfn.raise_next["CreateStackInstances"] = error(
        "ValidationError", "Parameters: [DatabasePassword] must have values", "CreateStackInstances")
    result = invoke(transcript, "--debug", *cfg, "-o", "json", "deploy", "--yes")
    assert type(result.exception).__name__ == "DeployError"  # --debug re-raises: its traceback is in the transcript
    transcript.assert_clean()


# --------------------------------------------------------------------------- the replication monitor


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Estate, Faults]]:
    """Three moto accounts holding the SecureString in dev; prod answers the mirror's write with a
    validation error quoting the value."""
    with mock_aws():
        estate = Estate()
        estate.client("dev", "ssm").put_parameter(Name=SECURE_NAME, Value=SECURE_VALUE, Type="SecureString")
        faults = Faults(keys={c["AWS_ACCESS_KEY_ID"]: env for env, c in estate.creds.items()})
        faults.deny("PutParameter", "prod", "ValidationException", ECHOING.format(SECURE_VALUE))
        original = shared_clients.new_session

        def new_session(region: str | None) -> Any:
            session = original(region)
            faults.install(session)
            return session

        monkeypatch.setattr(shared_clients, "new_session", new_session)
        monkeypatch.setattr(shared_clients, "_CACHE", {})
        yield estate, faults


def _credentials_in_play(estate: Estate) -> list[str]:
    """The functions' own keys and the agent-role keys they got from STS."""
    found = [c[k] for c in estate.creds.values() for k in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    for clients in shared_clients._CACHE.values():
        for _, creds, _ in clients._remote.values():  # noqa: SLF001
            found += [creds["aws_secret_access_key"], creds["aws_session_token"]]
    return found


@pytest.mark.parametrize("mirroring", ["true", "false"])
def test_monitor_never_shows_the_secret_it_mirrors(
    mirroring: str, world: tuple[Estate, Faults], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    estate, faults = world
    transcript = Transcript()
    extra = {"MIRROR_SECURE_STRINGS": mirroring, "REPLICATION_EXTERNAL_ID": EXTERNAL_ID}

    # The change event: staging gets the mirror (when on), prod refuses it with the echoing error.
    try:
        estate.invoke(replication_monitor, load_event("ssm_parameter_secure_created.json"), "dev", **extra)
    except ProcessingFailed as exc:
        assert mirroring == "true"
        assert "ValidationException (ValidationException): message withheld, it quotes the parameter's value" in str(exc)
        transcript.error(exc)
    if mirroring == "true":
        assert estate.parameter("staging", SECURE_NAME)["Value"] == SECURE_VALUE  # it was really handled
        assert faults.count("PutParameter", "prod") == 1
    else:
        assert estate.parameter("staging", SECURE_NAME) is None
        assert faults.count("PutParameter", "prod") == 0

    # The schedule's reconciliation goes through the same value (a separate code path).
    with environment({**function_env("dev", **extra), **estate.creds["dev"]}):
        from replshared.settings import Settings
        from replshared.telemetry import Metrics

        settings = Settings.from_env()
        metrics = Metrics(settings.metrics_namespace)
        try:
            replication_monitor.run_schedule(settings, shared_clients.clients_for(settings, "replication-monitor"),
                                             metrics, clock=lambda: 1_714_564_800.0, sleep=lambda s: None,
                                             poll_seconds=0.0)
        except ProcessingFailed as exc:
            transcript.error(exc)
        finally:
            metrics.flush()

    captured = capsys.readouterr()
    transcript.add(captured.out, captured.err, caplog.text,
                   *(json.dumps(vars(r), default=str) for r in caplog.records))
    if mirroring == "true":
        errors = [getattr(r, "error", "") for r in caplog.records if r.getMessage() == "parameter mirror failed"]
        assert len(errors) == 2 and all("message withheld" in e for e in errors)  # logged, without the message
    transcript.assert_clean(*_credentials_in_play(estate))


def test_source_values_stay_out_of_reprs() -> None:
    source = monitor_logic.SourceParameter(SECURE_NAME, "SecureString", SECURE_VALUE, 3, 1.0)
    assert SECURE_VALUE not in repr(source) and SECURE_VALUE not in str(source)
    assert source.value == SECURE_VALUE


def test_error_text_keeps_messages_that_do_not_quote_the_value() -> None:
    source = monitor_logic.SourceParameter(SECURE_NAME, "SecureString", SECURE_VALUE, 3, 1.0)
    denied = RuntimeError("AccessDeniedException: not authorized to perform ssm:PutParameter")
    assert monitor_logic.error_text(denied, source, "AccessDeniedException") == f"RuntimeError: {denied}"
    truncated = RuntimeError(f"Value '{SECURE_VALUE[:12]}...' at 'value' failed to satisfy constraint")
    assert SECURE_VALUE[:12] not in monitor_logic.error_text(truncated, source, "ValidationException")
    plain = monitor_logic.SourceParameter("/app/dev/config/url", "String", "postgres://db", 1, 1.0)
    quoted = RuntimeError("Value 'postgres://db' at 'value' failed")
    assert monitor_logic.error_text(quoted, plain) == f"RuntimeError: {quoted}"  # not a secret


# --------------------------------------------------------------------------- sandbox invoke


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """moto's server on loopback, as the sandbox runs it; the process's module table and path are
    restored afterwards (`sandbox invoke` imports the handlers afresh)."""
    from moto.server import ThreadedMotoServer

    saved_modules, saved_path = dict(sys.modules), list(sys.path)
    with mock_aws():  # the in-process server shares moto's state: start from (and leave) a clean one
        srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        srv.start()
        host, port = srv.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("REPLCTL_SANDBOX_DIR", str(tmp_path / "sandbox"))
        try:
            yield endpoint
        finally:
            srv.stop()
            for name in [n for n in sys.modules if n not in saved_modules]:
                del sys.modules[name]
            sys.modules.update(saved_modules)  # the handler modules every other test imported
            sys.path[:] = saved_path


class _CurrentStdout:
    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.mark.parametrize("mirroring", ["true", "false"])
def test_sandbox_invoke_output_never_shows_the_secret(
    mirroring: str, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted_env: None
) -> None:
    import io
    import zipfile

    import botocore.session

    from replctl.aws import AwsSettings, SessionFactory
    from replctl.config import load_config
    from replctl.sandbox.invoke import invoke as sandbox_invoke

    estate = Estate()  # tables and buckets in the three accounts, through the server
    estate.client("dev", "ssm").put_parameter(Name=SECURE_NAME, Value=SECURE_VALUE, Type="SecureString")
    iam = estate.client("dev", "iam")
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("replication_monitor.py", "def handler(event, context):\n    return {}\n")
    variables = function_env("dev", MIRROR_SECURE_STRINGS=mirroring, REPLICATION_EXTERNAL_ID=EXTERNAL_ID)
    variables = {k: v for k, v in variables.items() if not k.startswith("AWS_")}
    estate.client("dev", "lambda").create_function(
        FunctionName="replctl-replication-monitor", Runtime="python3.11", Role=role, Handler="replication_monitor.handler",
        Code={"ZipFile": code.getvalue()}, Environment={"Variables": variables})

    # prod answers the mirror's write with a validation error quoting the value (every client
    # made from now on, including those of the freshly imported handler modules)
    faults = Faults(keys={})
    faults.deny("PutParameter", "prod", "ValidationException", ECHOING.format(SECURE_VALUE))
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        faults.install(client)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)

    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    config_path = tmp_path / "environments.yaml"
    config_path.write_text(STATUS_CONFIG.replace("  ResourcePrefix: replctl\n",
                                                 f"  ResourcePrefix: replctl\n  ReplicationExternalId: {EXTERNAL_ID}\n"))
    # `sandbox invoke` runs once per process and catches the handlers' log lines on stdout; here
    # the loggers were set up earlier in this process, so point them at whatever stdout is now.
    for name in ("replication-monitor", "stream-processor"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                monkeypatch.setattr(handler, "stream", _CurrentStdout())
    factory = SessionFactory(AwsSettings(region="us-east-1", endpoint_url=server))
    messages: list[str] = []
    result = sandbox_invoke(load_config(config_path), factory, "replication-monitor", "dev", kind="ssm-change",
                            name=SECURE_NAME, log=messages.append)

    document = json.dumps(result, default=str)
    assert result["log_lines"], document  # the handler's log lines are in the output
    if mirroring == "true":
        assert "message withheld, it quotes the parameter's value" in document
        assert faults.count("PutParameter", "prod") == 1
    else:
        assert result["error"] is None and faults.count("PutParameter", "prod") == 0
    transcript = Transcript()
    transcript.add(document, *messages)
    transcript.assert_clean(*_credentials_in_play(estate))
