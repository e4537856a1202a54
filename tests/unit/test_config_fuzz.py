"""Property-based: whatever the estate file holds, the CLI answers with exit 0 or 2, never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from replctl.cli import app
from tests.unit.test_config import VALID

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
    st.sampled_from(["dev", "staging", "prod", "us-east-1", "111111111111", "/app/dev/config", "SELF_MANAGED"]),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["version", "admin", "stackset", "environments", "name", "account_id", "regions", "ssm_path", "parameters",
     "gate", "alarms", "ssm_prefix", "template", "home_region", "artifact_bucket"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=5)), max_leaves=25)

runner = CliRunner()


def run(tmp: Path, text: str) -> None:
    path = tmp / "environments.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["--config", str(path), "validate-accounts", "--config-only"])
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    # 4: a config that loads but fails a readiness check (e.g. two regions in one account)
    assert result.exit_code in (0, 2, 4), out
    assert "Traceback" not in out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert "error:" in out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_arbitrary_yaml_documents(tmp_path: Path, doc: Any) -> None:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    run(tmp_path, yaml.safe_dump(doc))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    run(tmp_path, text)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_valid_configs(tmp_path: Path, data: st.DataObject) -> None:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    doc = copy.deepcopy(yaml.safe_load(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        targets = [p for p in _paths(doc) if p]
        path = data.draw(st.sampled_from(targets))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["delete", "replace", "add-key"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(documents)
        elif isinstance(parent, dict):
            parent[data.draw(keys)] = data.draw(scalars)
    run(tmp_path, yaml.safe_dump(doc))


def test_the_valid_config_passes(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    path = tmp_path / "environments.yaml"
    path.write_text(VALID)
    result = runner.invoke(app, ["--config", str(path), "--output", "json", "validate-accounts", "--config-only"])
    assert result.exit_code == 0, result.output
