"""Where replctl finds its own files, the digest `--version` prints, and the deploy gate's rules.

In this checkout (an editable install) the bundle is the repository itself; the installed wheel's
layout is exercised end to end by tests/functional/test_wheel_install.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replctl.cli import app
from replctl.errors import TemplateError
from replctl.resources import bundle, functions_dir, sources_digest, tree_sha256
from replctl.deploy.template import lint_template
from tests.conftest import REPO


def test_a_checkout_finds_its_own_files() -> None:
    b = bundle()
    assert b.kind == "checkout"
    assert b.template == REPO / "cfn" / "replication.yaml"
    assert b.functions == REPO / "lambda" and b.lint_rules == REPO / "lint" / "cfnlint_rules"
    assert b.example("environments.yaml") == REPO / "environments.yaml"
    assert b.bootstrap_template("operator-policy.yaml").is_file()


def test_functions_beside_the_estate_file_win_over_the_bundled_ones(tmp_path: Path) -> None:
    assert functions_dir(tmp_path) == bundle().functions
    (tmp_path / "lambda").mkdir()
    assert functions_dir(tmp_path) == tmp_path / "lambda"


def test_the_digest_covers_sources_and_ignores_caches(tmp_path: Path) -> None:
    copy = tmp_path / "lambda"
    shutil.copytree(bundle().functions, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert tree_sha256(copy) == sources_digest().functions
    (copy / "shared" / "replshared" / "__pycache__").mkdir(exist_ok=True)
    (copy / "shared" / "replshared" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert tree_sha256(copy) == sources_digest().functions  # what pip's byte-compilation leaves is no source
    handler = copy / "stream_processor" / "stream_logic.py"
    handler.write_text(handler.read_text() + "\n# changed\n")
    assert tree_sha256(copy) != sources_digest().functions


def test_version_prints_the_tool_and_the_digest() -> None:
    result = CliRunner().invoke(app, ["--version"])
    digest = sources_digest()
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "replctl 0.1.0", f"bundled sources sha256:{digest.combined} (checkout: {REPO})",
        f"  template  sha256:{digest.template}", f"  functions sha256:{digest.functions}"]


def test_the_gate_applies_the_project_rules_wherever_replctl_runs(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the repository there is no .cfnlintrc.yaml: the bundled rules still apply, mandatory."""
    monkeypatch.chdir(tmp_path)
    template = tmp_path / "t.yaml"
    shutil.copy(REPO / "tests" / "fixtures" / "templates" / "bad_trust_policy.yaml", template)
    with pytest.raises(TemplateError, match="E9103"):
        lint_template(template, ["us-east-1"])


def test_sandbox_invoke_runs_the_estates_own_handler_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ejected (customised) function is what `sandbox invoke` runs, not the bundled one."""
    import sys

    from replctl.sandbox.invoke import load_handlers

    lam = tmp_path / "lambda"
    (lam / "stream_processor").mkdir(parents=True)
    (lam / "stream_processor" / "stream_processor.py").write_text(
        "def handler(event, context):\n    return 'the estate copy'\n")
    (lam / "shared" / "replshared").mkdir(parents=True)
    (lam / "shared" / "replshared" / "__init__.py").write_text("")
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_handlers puts the folders first
    for name in [n for n in sys.modules if n == "stream_processor" or n.split(".")[0] == "replshared"]:
        monkeypatch.delitem(sys.modules, name)
    handlers = load_handlers(["stream-processor"], functions_dir(tmp_path))
    assert handlers["stream-processor"](None, None) == "the estate copy"
    for name in [n for n in sys.modules if n == "stream_processor" or n.split(".")[0] == "replshared"]:
        del sys.modules[name]  # not the estate copy for whoever imports next (monkeypatch restores the originals)


def test_the_sandbox_extra_runs_the_handlers_with_the_library_the_zips_carry() -> None:
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["sandbox"]
    pins = [line.split("#")[0].strip() for line in (bundle().functions / "requirements.txt").read_text().splitlines()]
    assert {p for p in pins if p} <= set(extra)
