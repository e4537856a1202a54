"""replctl.package: deterministic, content-hashed ZIPs that run on a bare Python 3.11 + boto3.

The pip step (powertools for manylinux2014_x86_64 / CPython 3.11) runs once per test session in
`deps_cache`; every other build copies that installed tree into its own cache directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from replctl import package
from replctl.errors import ConfigError
from replctl.package import FUNCTIONS, Artifact, build_all, build_function, code_sha256_b64
from tests.fnkit import ACCOUNTS, REPO, TABLE, function_env, load_event



def _copy_sources(dest: Path) -> Path:
    """A copy of the repository's lambda/ folder (the packager's only input) under `dest`."""
    shutil.copytree(REPO / "lambda", dest / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="session")
def deps_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build cache whose pip step has run (once per session)."""
    cache = tmp_path_factory.mktemp("build-cache")
    root = _copy_sources(tmp_path_factory.mktemp("src"))
    build_all(root, cache_dir=cache)
    return cache


@pytest.fixture(scope="session")
def artifacts(deps_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Artifact]:
    root = _copy_sources(tmp_path_factory.mktemp("src-main"))
    return build_all(root, cache_dir=_fresh_cache(deps_cache, tmp_path_factory.mktemp("cache-main")))


def _fresh_cache(deps_cache: Path, dest: Path) -> Path:
    """An empty build cache that already holds the installed requirements."""
    shutil.copytree(deps_cache / "deps", dest / "deps", symlinks=True)
    return dest


def test_two_builds_are_byte_identical_whatever_the_file_times(deps_cache: Path, tmp_path: Path) -> None:
    first_root = _copy_sources(tmp_path / "a")
    second_root = _copy_sources(tmp_path / "b")
    for i, path in enumerate(sorted((second_root / "lambda").rglob("*"))):
        os.utime(path, (1_000_000_000 + i * 7919, 1_000_000_000 + i * 7919))

    first = build_all(first_root, cache_dir=_fresh_cache(deps_cache, tmp_path / "cache-a"))
    second = build_all(second_root, cache_dir=_fresh_cache(deps_cache, tmp_path / "cache-b"))

    assert [a.function for a in first] == list(FUNCTIONS)
    for a, b in zip(first, second, strict=True):
        assert a.key == b.key and a.sha256 == b.sha256 and a.size == b.size
        assert a.path.read_bytes() == b.path.read_bytes()
        assert a.key == f"{a.function}-{a.sha256[:16]}.zip"


def test_zip_layout_is_normalised(artifacts: list[Artifact]) -> None:
    for artifact in artifacts:
        with zipfile.ZipFile(artifact.path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
        assert names == sorted(names)
        assert f"{artifact.function}.py" in names  # handler module at the root
        assert "replshared/__init__.py" in names and "replshared/settings.py" in names
        assert "aws_lambda_powertools/__init__.py" in names  # the pinned requirement, bundled
        assert not any(n.split("/")[0] in ("boto3", "botocore", "s3transfer", "bin") for n in names)
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {(i.external_attr >> 16) & 0o777 for i in infos} <= {0o644, 0o755}
        assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    other_handlers = {f"{f}.py" for f in FUNCTIONS}
    for artifact in artifacts:
        with zipfile.ZipFile(artifact.path) as zf:
            own = {n for n in zf.namelist() if n in other_handlers}
        assert own == {f"{artifact.function}.py"}  # each ZIP holds only its own handler


def test_a_source_change_changes_the_name_and_reverting_reuses_the_cache(deps_cache: Path, tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "src")
    cache = _fresh_cache(deps_cache, tmp_path / "cache")
    before = build_function(root, "stream_processor", cache_dir=cache)
    logic = root / "lambda" / "stream_processor" / "stream_logic.py"
    original = logic.read_text()

    logic.write_text(original + "\n# a comment is a change too\n")
    changed = build_function(root, "stream_processor", cache_dir=cache)
    shared_changed = root / "lambda" / "shared" / "replshared" / "items.py"
    shared_changed.write_text(shared_changed.read_text() + "\n")
    changed_shared = build_function(root, "stream_processor", cache_dir=cache)

    assert changed.key != before.key and changed.sha256 != before.sha256
    assert changed_shared.key not in (before.key, changed.key)
    logic.write_text(original)
    shared_changed.write_text(shared_changed.read_text()[:-1])
    messages: list[str] = []
    assert build_function(root, "stream_processor", cache_dir=cache, log=messages.append) == before
    assert messages == [f"stream_processor: unchanged, using cached {before.key}"]


def test_a_rebuild_with_no_change_hits_the_cache(deps_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _copy_sources(tmp_path / "src")
    cache = _fresh_cache(deps_cache, tmp_path / "cache")
    first = build_all(root, cache_dir=cache)
    stamps = {a.key: a.path.stat().st_mtime_ns for a in first}
    # a pycache appearing next to the sources (someone ran the tests) is not a change
    (root / "lambda" / "shared" / "replshared" / "__pycache__").mkdir(exist_ok=True)
    (root / "lambda" / "shared" / "replshared" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")

    def no_writes(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached build must not write a ZIP or run pip")

    monkeypatch.setattr(package, "_write_zip", no_writes)
    monkeypatch.setattr(package.subprocess, "run", no_writes)
    messages: list[str] = []
    second = build_all(root, cache_dir=cache, log=messages.append)

    assert second == first
    assert {a.key: a.path.stat().st_mtime_ns for a in second} == stamps
    assert all("unchanged, using cached" in m for m in messages) and len(messages) == 3


def test_a_tampered_cached_zip_is_rebuilt(deps_cache: Path, tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "src")
    cache = _fresh_cache(deps_cache, tmp_path / "cache")
    good = build_function(root, "config_validator", cache_dir=cache)
    expected = good.path.read_bytes()
    good.path.write_bytes(b"not a zip")

    again = build_function(root, "config_validator", cache_dir=cache)

    assert again.path.read_bytes() == expected and again.key == good.key


def test_code_sha256_is_lambdas_format(artifacts: list[Artifact]) -> None:
    from moto import mock_aws

    import boto3

    artifact = artifacts[0]
    with mock_aws():
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        created = boto3.client("lambda").create_function(
            FunctionName="fn", Runtime="python3.11", Role=role, Handler=f"{artifact.function}.handler",
            Code={"ZipFile": artifact.path.read_bytes()})
    assert code_sha256_b64(artifact.path) == created["CodeSha256"]


@pytest.mark.parametrize("line, problem", [
    ("aws-lambda-powertools>=3", "is not pinned"),
    ("boto3==1.34.0", "provided by the Lambda runtime"),
])
def test_requirements_must_be_pinned_and_exclude_the_runtime(tmp_path: Path, line: str, problem: str) -> None:
    root = _copy_sources(tmp_path / "src")
    (root / "lambda" / "requirements.txt").write_text(f"# deps\n{line}\n")
    with pytest.raises(ConfigError) as raised:
        build_function(root, "stream_processor", cache_dir=tmp_path / "cache")
    assert problem in str(raised.value) and "requirements.txt:2" in str(raised.value)


def test_module_names_must_be_unique(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "src")
    (root / "lambda" / "stream_processor" / "replshared").mkdir()
    (root / "lambda" / "stream_processor" / "replshared" / "__init__.py").write_text("")
    with pytest.raises(ConfigError, match="replshared/__init__.py exists in both"):
        build_function(root, "stream_processor", cache_dir=tmp_path / "cache")


def test_unknown_function_is_a_config_error(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "src")
    with pytest.raises(ConfigError, match="no Lambda function folder"):
        build_function(root, "nope", cache_dir=tmp_path / "cache")


# -- each ZIP runs on a bare Python 3.11 with only the runtime's boto3 ----------------------

RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "urllib3", "six.py")


@pytest.fixture(scope="module")
def runtime_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where only what the Lambda Python runtime provides is importable."""
    import boto3

    site = Path(boto3.__file__).resolve().parents[1]
    runtime = tmp_path_factory.mktemp("runtime")
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(site / name)
    return runtime


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _account_client(endpoint: str, account: str, service: str):  # noqa: ANN202
    import boto3

    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="setup")["Credentials"]
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=c["AccessKeyId"],
                        aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])


def _create_tables(endpoint: str) -> None:
    for account in ACCOUNTS.values():
        ddb = _account_client(endpoint, account, "dynamodb")
        if TABLE in ddb.list_tables()["TableNames"]:
            continue
        ddb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])


RUNNER = textwrap.dedent("""
    import importlib, json, sys
    assert sys.version_info[:2] == (3, 11), sys.version
    assert not any("site-packages" in p for p in sys.path), sys.path
    module = importlib.import_module(sys.argv[1])
    import aws_lambda_powertools, typing_extensions
    for dependency in (aws_lambda_powertools, typing_extensions):
        assert dependency.__file__.startswith(sys.argv[2]), dependency.__file__
    class Context:
        function_name = "replctl-" + sys.argv[1]; memory_limit_in_mb = 256; aws_request_id = "req-zip"
        invoked_function_arn = "arn:aws:lambda:us-east-1:111111111111:function:" + function_name
        def get_remaining_time_in_millis(self): return 30000
    event = json.loads(sys.stdin.read())
    try:
        result = module.handler(event, Context())
    except Exception as error:
        print("RESULT " + json.dumps({"raised": type(error).__name__}))
    else:
        print("RESULT " + json.dumps({"returned": result}))
""")


def _run_zip(artifact: Artifact, unzip_root: Path, runtime: Path, endpoint: str, event: object) -> dict:
    target = unzip_root / artifact.function
    with zipfile.ZipFile(artifact.path) as zf:
        zf.extractall(target)
    _, creds = _dev_credentials(endpoint)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{target}{os.pathsep}{runtime}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "POWERTOOLS_SERVICE_NAME": artifact.function,
        **function_env("dev"),
        **creds,
    }
    done = subprocess.run(
        [sys.executable, "-S", "-s", "-B", "-c", RUNNER, artifact.function, str(target)],
        input=json.dumps(event), capture_output=True, text=True, env=env, cwd=target, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(results[-1][len("RESULT "):])


def _dev_credentials(endpoint: str) -> tuple[str, dict[str, str]]:
    import boto3

    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNTS['dev']}:role/replctl/exec", RoleSessionName="zip")["Credentials"]
    return ACCOUNTS["dev"], {"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
                             "AWS_SESSION_TOKEN": c["SessionToken"]}


def _by_function(artifacts: list[Artifact], function: str) -> Artifact:
    return next(a for a in artifacts if a.function == function)


def test_stream_processor_zip_runs_on_bare_runtime(
    artifacts: list[Artifact], runtime_only: Path, moto_server: str, tmp_path: Path
) -> None:
    _create_tables(moto_server)

    result = _run_zip(_by_function(artifacts, "stream_processor"), tmp_path, runtime_only, moto_server,
                      load_event("dynamodb_stream_batch.json"))

    assert result == {"returned": {"batchItemFailures": [{"itemIdentifier": "111000000000000000007"}]}}
    staging = _account_client(moto_server, ACCOUNTS["staging"], "dynamodb")
    item = staging.get_item(TableName=TABLE, Key={"pk": {"S": "SERVICE#billing"}, "sk": {"S": "config"}})["Item"]
    assert item["version"] == {"N": "2"}


def test_replication_monitor_zip_runs_on_bare_runtime(
    artifacts: list[Artifact], runtime_only: Path, moto_server: str, tmp_path: Path
) -> None:
    _create_tables(moto_server)

    result = _run_zip(_by_function(artifacts, "replication_monitor"), tmp_path, runtime_only, moto_server,
                      load_event("s3_replication_failed.json"))

    assert result["returned"]["recorded"] == 1
    dev = _account_client(moto_server, ACCOUNTS["dev"], "dynamodb")
    items = dev.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": "LOCAL#S3FAILURE"}})["Items"]
    assert [i["reason"]["S"] for i in items] == ["DstBucketUnversioned"]


def test_config_validator_zip_reports_unknown_events(
    artifacts: list[Artifact], runtime_only: Path, moto_server: str, tmp_path: Path
) -> None:
    result = _run_zip(_by_function(artifacts, "config_validator"), tmp_path, runtime_only, moto_server,
                      {"unexpected": True})

    assert result == {"raised": "UnhandledEvent"}
