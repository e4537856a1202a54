"""Bad input, as a hostile world would type it: broken estate files, bad arguments, fuzzed argv,
broken templates.

For every case: never a traceback without `--debug`, exit code 2 for usage and config problems
(3 for a broken environment, 5 for a broken template), and no AWS call at all — asserted with a
botocore `before-call` hook on every client made in the process, which also blocks the call, so
nothing could ever reach AWS even if a case slipped through.

The estate-file corpus is `tests/fixtures/bad_configs/*.yaml`: each file's first line is
`# expect: <fragment of the message>`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from replctl.aws import is_mutating
from replctl.cli import app
from replctl.config import MAX_CONFIG_BYTES
from tests.conftest import REPO
from tests.unit.deploy.fake_stacksets import write_estate

runner = CliRunner()
BAD_CONFIGS = sorted((REPO / "tests" / "fixtures" / "bad_configs").glob("*.yaml"))


class AwsCalls(list[str]):
    """Every AWS API call attempted in the process (each one is refused before it is sent)."""

    @property
    def mutating(self) -> list[str]:
        return [op for op in self if is_mutating(op)]


def _blocking_create_client(calls: AwsCalls) -> Any:
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)

        def refuse(model: Any, **_: Any) -> None:
            calls.append(model.name)
            # Not a transient error: nothing waits and retries on it.
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "blocked by the test"}}, model.name)

        client.meta.events.register("before-call.*.*", refuse)
        return client

    return create_client


@pytest.fixture()
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> AwsCalls:
    calls = AwsCalls()
    monkeypatch.setattr(botocore.session.Session, "create_client", _blocking_create_client(calls))
    return calls


@pytest.fixture()
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (no environments.yaml) and no sandbox."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("REPLCTL_SANDBOX_DIR", str(tmp_path / "sandbox"))
    return work


def run(*argv: str, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, ["--no-color", *argv], env={"COLUMNS": "200", **(env or {})})
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


# --------------------------------------------------------------------------- the estate-file corpus


def expected_fragment(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: <message fragment>'"
    return first.removeprefix("# expect: ")


def test_the_corpus_is_there() -> None:
    assert len(BAD_CONFIGS) >= 30


@pytest.mark.parametrize("path", BAD_CONFIGS, ids=lambda p: p.stem)
def test_broken_estate_file_is_refused_with_its_message_and_no_aws_call(
    path: Path, aws_calls: AwsCalls, cwd: Path
) -> None:
    fragment = expected_fragment(path)
    for argv in (("validate-accounts", "--config-only"), ("deploy", "--yes")):
        result = run("--config", str(path), *argv)
        assert result.exit_code == 2, (argv, result.output)
        assert flat(result.stderr).startswith("error: "), result.stderr
        assert fragment in flat(result.stderr), (fragment, result.stderr)
        assert result.stdout == ""
    assert aws_calls == []


def test_every_problem_of_a_file_is_listed_with_its_line(aws_calls: AwsCalls, cwd: Path) -> None:
    result = run("--config", str(REPO / "tests/fixtures/bad_configs/many_problems_at_once.yaml"), "plan")
    assert result.exit_code == 2
    assert [line.split(" (line")[0].strip() for line in result.stderr.splitlines() if line.startswith("  - ")] == [
        "- version", "- stackset.home_region", "- environments[1]", "- environments[1].ssm_pth",
        "- environments[2].account_id"]


def test_yaml_tags_never_run_code(aws_calls: AwsCalls, cwd: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'# a python tag\nversion: !!python/object/apply:os.system ["touch {marker}"]\n'
    (cwd / "environments.yaml").write_text(text)
    assert run("validate-accounts", "--config-only").exit_code == 2
    assert not marker.exists()


# --------------------------------------------------------------------------- files that are not files


def _unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "unreadable.yaml"
    path.write_text("version: 1\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads through permission bits: make the kernel's answer explicit
        real_open = Path.open

        def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", denied)
    return path


def _loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "loop.yaml"
    path.symlink_to(path)
    return path


def _huge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\n# padding\n" + "#" * (MAX_CONFIG_BYTES + 10) + "\n")
    return path


def _directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "adir").mkdir()
    return tmp_path / "adir"


FILES = {
    "missing": (lambda t, m: t / "nope.yaml", "nope.yaml: no such file"),
    "directory": (_directory, "is a directory"),
    # (click itself refuses it first when the permission bits apply to the caller)
    "unreadable": (_unreadable, ("unreadable.yaml: cannot read (Permission denied)", "is not readable")),
    "symlink loop": (_loop, "loop.yaml: cannot read (Too many levels of symbolic links)"),
    "huge": (_huge, "larger than 1024 KiB; an estate file is a few kilobytes"),
    "endless device": (lambda t, m: Path("/dev/zero"), "/dev/zero: larger than 1024 KiB"),
    "not UTF-8": (lambda t, m: REPO / "tests/fixtures/bad_configs/not_utf8.yaml", "not UTF-8 text (byte"),
}


@pytest.mark.parametrize("kind", list(FILES))
def test_config_that_is_not_a_readable_estate_file(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_calls: AwsCalls, cwd: Path
) -> None:
    make, fragments = FILES[kind]
    path = make(tmp_path, monkeypatch)
    result = run("--config", str(path), "deploy", "--yes")
    assert result.exit_code == 2, result.output
    assert any(f in flat(result.output) for f in ([fragments] if isinstance(fragments, str) else fragments)), result.output
    assert aws_calls == []


def test_config_from_the_environment_variable_too(tmp_path: Path, aws_calls: AwsCalls, cwd: Path) -> None:
    result = run("plan", env={"REPLCTL_CONFIG": str(tmp_path)})
    assert result.exit_code == 2 and "is a directory" in flat(result.output)


# --------------------------------------------------------------------------- bad arguments


@pytest.fixture()
def estate(tmp_path: Path) -> Path:
    """A valid estate file (and its small template)."""
    return write_estate(tmp_path)


ARGS: dict[str, tuple[tuple[str, ...], str]] = {
    "unknown option": (("plan", "--bogus"), "No such option: --bogus"),
    "unknown global option": (("--bogus", "plan"), "No such option: --bogus"),
    "unknown command": (("bogus",), "No such command 'bogus'"),
    "extra argument": (("plan", "extra"), "Got unexpected extra argument"),
    "bad --output before the command": (("--output", "xml", "plan"), "'xml' is not one of 'table', 'json'"),
    "bad --output after the command": (("status", "-o", "yaml"), "'yaml' is not one of 'table', 'json'"),
    "option without its value": (("status", "--env"), "Option '--env' requires an argument"),
    "global option without its value": (("plan", "--region"), "--region"),
    "global option without its value, before the command": (("--region",), "Option '--region' requires an argument"),
    "unknown --env for plan": (("plan", "--env", "qa"), "unknown environment 'qa' (valid: dev, staging, prod)"),
    "unknown --env for deploy": (("deploy", "--env", "prod2", "--yes"), "Did you mean 'prod'?"),
    "unknown --env for status": (("status", "-e", "dev", "-e", "stage"), "unknown environment 'stage'"),
    "unknown --env for drift": (("drift", "--env", "qa"), "unknown environment 'qa'"),
    "unknown --env for validate-accounts": (("validate-accounts", "--env", "qa", "--config-only"),
                                            "unknown environment 'qa'"),
    "--force without --env": (("deploy", "--force", "--yes"), "Invalid value for '--force': only applies together with --env"),
    "--force without --env (plan)": (("plan", "--force"), "only applies together with --env"),
    "--detailed-exitcode without --dry-run": (("deploy", "--detailed-exitcode", "--yes"),
                                              "Invalid value for '--detailed-exitcode': only applies to plan and deploy --dry-run"),
    "--interval below 1": (("status", "--watch", "--interval", "0"), "Input should be greater than or equal to 1"),
    "--interval not a number": (("status", "--interval", "soon"), "Input should be a valid number"),
    "--endpoint-url not a URL": (("--endpoint-url", "junk", "status"), "'junk' is not an http(s) URL"),
    "--endpoint-url with a bad port": (("status", "--endpoint-url", "http://localhost:port"), "is not an http(s) URL"),
}


@pytest.mark.parametrize("name", list(ARGS))
def test_bad_arguments_are_usage_errors(name: str, estate: Path, aws_calls: AwsCalls, cwd: Path) -> None:
    argv, fragment = ARGS[name]
    result = run("--config", str(estate), *argv)
    assert result.exit_code == 2, result.output
    assert fragment in flat(result.output), result.output
    assert aws_calls == []


def test_malformed_endpoint_in_the_environment_is_an_access_error(estate: Path, aws_calls: AwsCalls, cwd: Path) -> None:
    result = run("--config", str(estate), "plan", env={"AWS_ENDPOINT_URL": "junk"})
    assert result.exit_code == 3, result.output
    assert "error: Invalid endpoint: junk (from AWS_ENDPOINT_URL or the profile's endpoint_url)" in flat(result.stderr)
    assert aws_calls == []


def test_debug_shows_the_traceback_instead(estate: Path, aws_calls: AwsCalls, cwd: Path) -> None:
    result = runner.invoke(app, ["--debug", "--config", str(estate), "plan", "--env", "qa"])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "ConfigError"  # re-raised for the traceback


# --------------------------------------------------------------------------- fuzzed argv

GLOBAL_OPTIONS = ["--config", "-c", "--profile", "--region", "--endpoint-url", "--output", "-o", "--no-color",
                  "--debug", "--sandbox", "--version", "--help", "-h"]
COMMANDS = ["plan", "deploy", "status", "drift", "validate-accounts"]
COMMAND_OPTIONS = ["--env", "-e", "--yes", "-y", "--dry-run", "--force", "--detailed-exitcode", "--watch", "-w",
                   "--interval", "--config-only"]
VALUES = ["dev", "staging", "prod", "qa", "", "json", "table", "xml", "5", "0", "-1", "us-east-1", "nowhere-1",
          "http://127.0.0.1:9", "junk", "--", "=", "-", "default", "--output=json", "--config="]
#: exit codes a fuzzed command line may end with (1 = internal error is never one of them)
DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 21, 22, 30, 40, 130}


@pytest.fixture(scope="module")
def fuzz_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fuzz")
    valid = write_estate(root)
    for function in ("replication_monitor", "config_validator", "stream_processor", "shared/replshared"):
        (root / "lambda" / function).mkdir(parents=True)
        name = "__init__" if function.startswith("shared") else function
        (root / "lambda" / function / f"{name}.py").write_text("def handler(event, context):\n    return {}\n")
    (root / "broken.yaml").write_text("version: [1\n")
    (root / "adir").mkdir()
    return {"valid": str(valid), "broken": str(root / "broken.yaml"), "dir": str(root / "adir"),
            "missing": str(root / "missing.yaml"), "bad": str(BAD_CONFIGS[0]), "root": str(root)}


def argv_tokens(paths: dict[str, str]) -> st.SearchStrategy[list[str]]:
    """Token soup, and (as often) command-shaped lines: options, a command, more options."""
    files = st.sampled_from([paths[k] for k in ("valid", "valid", "broken", "dir", "missing", "bad")])
    token = st.one_of(
        st.sampled_from(GLOBAL_OPTIONS), st.sampled_from(COMMANDS), st.sampled_from(COMMAND_OPTIONS),
        st.sampled_from(VALUES), files, st.text(max_size=8),
    )
    option = st.one_of(st.sampled_from(GLOBAL_OPTIONS + COMMAND_OPTIONS), st.sampled_from(VALUES), files, token)
    shaped = st.tuples(st.lists(option, max_size=3), st.sampled_from(COMMANDS), st.lists(option, max_size=4)).map(
        lambda t: [*t[0], t[1], *t[2]])
    return st.one_of(st.lists(token, max_size=8), shaped)


@settings(max_examples=int(os.environ.get("REPLCTL_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_command_lines(data: st.DataObject, fuzz_paths: dict[str, str]) -> None:
    """Any mix of real option names, values and junk: a documented exit code, never an internal
    error or a traceback (without --debug), and never a mutating AWS call."""
    argv = data.draw(argv_tokens(fuzz_paths))
    calls = AwsCalls()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(botocore.session.Session, "create_client", _blocking_create_client(calls))
        mp.chdir(fuzz_paths["root"])
        mp.setenv("REPLCTL_SANDBOX_DIR", str(Path(fuzz_paths["root"]) / "sandbox"))

        def stop_watching(_: float) -> None:
            raise KeyboardInterrupt

        mp.setattr("replctl.commands.status._sleep", stop_watching)
        result = runner.invoke(app, argv, env={"COLUMNS": "120"})
    assert calls.mutating == [], (argv, calls)
    if "--debug" in argv:
        return  # tracebacks are what --debug is for
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert "Traceback" not in result.output, (argv, result.output)
    assert result.exit_code in DOCUMENTED, (argv, result.exit_code, result.output)


# --------------------------------------------------------------------------- broken templates


@pytest.fixture()
def real_estate(tmp_path: Path) -> Path:
    """A temporary copy of the repository's estate: environments.yaml and cfn/replication.yaml."""
    shutil.copy(REPO / "environments.yaml", tmp_path / "environments.yaml")
    (tmp_path / "cfn").mkdir()
    shutil.copy(REPO / "cfn" / "replication.yaml", tmp_path / "cfn" / "replication.yaml")
    return tmp_path / "environments.yaml"


def _break(estate: Path, old: str, new: str) -> None:
    template = estate.parent / "cfn" / "replication.yaml"
    text = template.read_text()
    assert old in text, old
    template.write_text(text.replace(old, new, 1))


BROKEN_TEMPLATES = {
    # an unclosed flow sequence: the YAML itself is broken
    "YAML error": (("\nResources:\n", "\nResources: [\n"), "cfn/replication.yaml: not valid YAML (line"),
    # a resource type that does not exist: cfn-lint E3006
    "cfn-lint error": (("Type: AWS::SQS::Queue", "Type: AWS::SQS::Queues"), "cfn-lint found"),
}


@pytest.mark.parametrize("kind", list(BROKEN_TEMPLATES))
@pytest.mark.parametrize("argv", [("deploy", "--yes"), ("deploy", "--dry-run"), ("plan",), ("--output", "json", "plan")],
                         ids=" ".join)
def test_broken_template_is_refused_before_any_aws_call(
    kind: str, argv: tuple[str, ...], real_estate: Path, aws_calls: AwsCalls, cwd: Path
) -> None:
    (old, new), fragment = BROKEN_TEMPLATES[kind]
    _break(real_estate, old, new)
    result = run("--config", str(real_estate), *argv)
    assert result.exit_code == 5, result.output
    err = flat(result.stderr)
    assert fragment in err, err
    if kind == "cfn-lint error":
        assert "E3006" in err and "AWS::SQS::Queues" in err  # the finding itself, with its line
        assert "hint: fix the template (run `make lint`); nothing was sent to AWS" in err
    assert result.stdout == ""
    assert aws_calls == []


def test_the_unbroken_copy_gets_past_the_template_check(real_estate: Path, aws_calls: AwsCalls, cwd: Path) -> None:
    # The control: the same copy, unbroken, is linted clean and goes on to AWS (blocked here).
    result = run("--config", str(real_estate), "deploy", "--yes")
    assert result.exit_code == 3, result.output
    assert aws_calls and aws_calls.mutating == []


@pytest.fixture(autouse=True)
def _no_real_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # `--sandbox` must never find a developer's running sandbox from these tests.
    monkeypatch.setenv("REPLCTL_SANDBOX_DIR", "/nonexistent/replctl-sandbox")
    yield
