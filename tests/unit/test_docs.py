"""The repository paths and replctl modules the docs name still exist, so the docs stay true after moves.

Checked: every markdown link to a file of this repository, every backticked path that starts with
one of the repository's top-level entries (`replctl/status/fetch.py`, `tests/unit/test_cli.py::name`,
`cfn/*.yaml`), every backticked dotted name under `replctl` (`replctl.deploy.plan`,
`replctl.cli.COMMANDS`), and the modules code examples import. Paths the tools create at run time (`.replctl/`, `.venv/`, ...) are not
in the repository and are skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "ARCHITECTURE.md", "SECURITY.md", "BENCHMARKS.md", "lambda/README.md",
        *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
#: Created by the tools, never committed (.gitignore).
RUNTIME = (".replctl", ".venv", ".venv-bench", ".venv-checkov", "build", "dist", ".pytest_cache")

TICKED = re.compile(r"`([^`\n]+)`")
LINKED = re.compile(r"\]\(([^)\s]+)\)")
IMPORTED = re.compile(r"^\s*(?:from|import) (replctl(?:\.\w+)*)", re.M)  # in code examples
DOTTED = re.compile(r"^replctl(\.[A-Za-z_][A-Za-z0-9_]*)+$")
#: Dotted names that are not modules: the EventBridge source the stream processor publishes.
NOT_MODULES = {"replctl.metadata"}


def tracked() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return set(files) | {str(Path(f).parents[i]) for f in files for i in range(len(Path(f).parents) - 1)}


TRACKED = tracked()
TOP = {p.split("/")[0] for p in TRACKED}


def path_exists(path: str) -> bool:
    path = path.rstrip("/")
    if "*" in path:
        return any(Path(p).match(path) for p in TRACKED)
    return path in TRACKED


def module_exists(dotted: str) -> bool:
    """`replctl.a.b` is a module, or a module's top-level name (`replctl.cli.COMMANDS`)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = "/".join(parts[:cut])
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            if candidate in TRACKED:
                rest = parts[cut:]
                if not rest:
                    return True
                text = (REPO / candidate).read_text()
                return len(rest) == 1 and re.search(rf"^(class |def )?{re.escape(rest[0])}\b", text, re.M) is not None
    return False


def references(doc: str) -> list[tuple[str, str]]:
    """(what, as written) for every repository reference in `doc`."""
    text = (REPO / doc).read_text()
    found: list[tuple[str, str]] = []
    for link in LINKED.findall(text):
        target = link.split("#")[0]
        if target and not target.startswith(("http:", "https:", "mailto:")):
            found.append(("link", os.path.normpath(Path(doc).parent / target).replace("\\", "/")))
    found += [("module", name) for name in IMPORTED.findall(text)]
    for ticked in TICKED.findall(text):
        word = ticked.split("::")[0].strip()
        if DOTTED.match(word) and word not in NOT_MODULES:
            found.append(("module", word))
        elif "/" in word and word.split("/")[0] in TOP and " " not in word and "<" not in word:
            found.append(("path", word))
        elif word in TOP and "." in word:
            found.append(("path", word))
    return [(kind, ref) for kind, ref in found if ref.split("/")[0] not in RUNTIME]


@pytest.mark.parametrize("doc", DOCS)
def test_every_repository_reference_resolves(doc: str) -> None:
    assert (REPO / doc).is_file()
    refs = references(doc)
    broken = [f"{kind} {ref}" for kind, ref in refs
              if not (module_exists(ref) if kind == "module" else path_exists(str(Path(ref))))]
    assert broken == []


def test_the_checker_sees_moved_paths_and_modules() -> None:
    assert path_exists("replctl/status/fetch.py") and not path_exists("replctl/health_fetch.py")
    assert path_exists("cfn/*.yaml") and path_exists("tests/unit/")
    assert module_exists("replctl.deploy.plan") and module_exists("replctl.cli.COMMANDS")
    assert not module_exists("replctl.plan") and not module_exists("replctl.cli.NO_SUCH_NAME")
    assert any(kind == "path" for kind, _ in references("README.md"))
    assert ("module", "replctl.deploy.plan") in references("docs/deploy.md")  # from a code example
