"""The import rules of ARCHITECTURE.md's code map hold, and the check that enforces them can fail.

The rules are import-linter contracts in pyproject.toml (`[tool.importlinter]`), checked by
`lint-imports`. It runs here on this checkout, and on copies of the package with one planted
violation each, which it must report by contract and by the offending import. The functions
under lambda/ are not a package import-linter can see; they are checked with `ast`.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

PURE = "judge, decide, model and render modules never reach AWS"
LAYERS = "cli > commands > capabilities > core: nothing imports a layer above it"
INDEPENDENT = "capabilities are independent, except the edges the code map names"
NO_TYPER = "typer and click are used in replctl.cli and replctl.commands only"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the replctl package under `root`, with the contracts of root/pyproject.toml."""
    # PYTHONPATH puts the copy ahead of the editable install's finder, as `bench --compare` does.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)


def broken_contracts(output: str) -> set[str]:
    return {line.removesuffix(" BROKEN").split(" BROKEN (")[0] for line in output.splitlines()
            if line.endswith(" BROKEN") or " BROKEN (" in line}


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "replctl", tmp_path / "replctl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(root: Path, module: str, code: str) -> None:
    path = root / "replctl" / module
    path.write_text(path.read_text() + f"\n{code}\n")


def test_the_layout_keeps_every_import_rule() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(("module", "code", "contract", "reported"), [
    ("status/judge.py", "import boto3", PURE, "replctl.status.judge -> boto3"),
    ("deploy/decide.py", "from botocore.exceptions import ClientError", PURE, "replctl.deploy.decide -> botocore"),
    ("drift/model.py", "from replctl.aws import error_code", PURE, "replctl.drift.model -> replctl.aws"),
    ("config.py", "from replctl.deploy import plan", LAYERS, "replctl.config -> replctl.deploy.plan"),
    ("status/fetch.py", "from replctl.commands import state", LAYERS, "replctl.status.fetch -> replctl.commands"),
    ("accounts/fetch.py", "from replctl.deploy.model import Plan", INDEPENDENT,
     "replctl.accounts.fetch -> replctl.deploy.model"),
    ("status/judge.py", "from replctl.drift.model import StackSetDrift", INDEPENDENT,
     "replctl.status.judge -> replctl.drift.model"),
    ("deploy/rollout.py", "import typer", NO_TYPER, "replctl.deploy.rollout -> typer"),
])
def test_a_planted_violation_is_reported(package_copy: Path, module: str, code: str, contract: str,
                                         reported: str) -> None:
    plant(package_copy, module, code)
    done = lint_imports(package_copy)
    assert done.returncode != 0, done.stdout
    assert contract in broken_contracts(done.stdout), done.stdout
    assert reported in done.stdout, done.stdout


def test_imports_for_annotations_only_are_not_dependencies(package_copy: Path) -> None:
    plant(package_copy, "status/judge.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import boto3")
    done = lint_imports(package_copy)
    assert done.returncode == 0, done.stdout


def test_every_module_of_the_package_has_a_layer() -> None:
    # A module the layers contract does not name would be bound by no rule: a new module must be placed.
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    found = {f"replctl.{p.stem}" for p in (REPO / "replctl").glob("*.py") if p.stem not in ("__init__", "__main__")}
    found |= {f"replctl.{p.name}" for p in (REPO / "replctl").iterdir() if (p / "__init__.py").is_file()}
    assert found - placed == set()
    assert placed - found == set()


def replctl_imports(path: Path) -> list[str]:
    """Every import of replctl in a Python file, wherever it stands (function bodies included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        found += [f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path.name}:{node.lineno} {n}"
                  for n in names if n == "replctl" or n.startswith("replctl.")]
    return found


def test_the_functions_never_import_replctl() -> None:
    # The ZIPs carry lambda/ only; an import of the CLI would fail in Lambda, and couple the two.
    files = sorted((REPO / "lambda").rglob("*.py"))
    assert len(files) > 10
    assert [hit for f in files for hit in replctl_imports(f)] == []


def test_the_functions_check_finds_a_planted_import(tmp_path: Path) -> None:
    planted = tmp_path / "handler.py"
    planted.write_text("def handler(event, context):\n    from replctl.config import load_config\n")
    assert replctl_imports(planted) == ["handler.py:2 replctl.config"]


# --------------------------------------------------------------------------- readability rules

#: A function longer than this needs a written reason: a comment `# over 80 lines: <why>` right
#: above its `def` (or its decorators).
MAX_FUNCTION_LINES = 80


def long_functions(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            reason = lines[first - 2].strip() if first >= 2 else ""
            if length > MAX_FUNCTION_LINES and not reason.startswith("# over 80 lines:"):
                found.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_over_80_lines_without_a_written_reason() -> None:
    files = sorted([*(REPO / "replctl").rglob("*.py"), *(REPO / "lambda").rglob("*.py")])
    assert [hit for f in files for hit in long_functions(f)] == []


def test_the_length_check_finds_a_long_function_and_accepts_a_reason(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n\n# over 80 lines: a table\ndef table():\n{body}")
    assert long_functions(tmp_path / "long.py") == ["long.py:1 long (81 lines)"]


def test_every_module_says_in_its_first_line_what_it_owns() -> None:
    unsaid = []
    for path in sorted((REPO / "replctl").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        first = doc.splitlines()[0] if doc else ""
        # One sentence on one line: the summary a newcomer reads in a file listing.
        if not first or not first.rstrip().endswith((".", "?")) or len(first) > 110:
            unsaid.append(f"{path.relative_to(REPO)}: {first!r}")
    assert unsaid == []
