"""Where replctl's own files are: templates, function sources, lint rules and example estates.

That is the StackSet template, the bootstrap templates, the function sources, the cfn-lint rules
and the example estate files.

An installed wheel carries them as package data under `replctl/_bundle/` (pyproject.toml maps the
repository's `cfn/`, `lambda/`, `lint/` and estate files there), so `pipx install replctl` works
from any directory. A checkout of the repository, and an editable install of it, has no
`_bundle/`: the same files are found at the repository root, so `make demo` and `make test` work
as they always did. Nothing else in replctl knows either layout.

`sources_digest` hashes what replctl deploys (the StackSet template and the function sources), so
`replctl --version` shows whether an upgrade of the tool changes what a deploy would send.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from replctl.errors import ReplctlError

#: The StackSet template, relative to the `cfn/` folder.
TEMPLATE = "replication.yaml"
#: The bootstrap templates (admin account, target accounts, operator) beside it.
BOOTSTRAP_TEMPLATES = ("stackset-administration-role.yaml", "stackset-execution-role.yaml", "operator-policy.yaml")
#: The example estate files.
EXAMPLES = ("environments.yaml", "environments.sandbox.yaml")
#: Inside a functions folder: one folder per function, the shared code and the pinned requirements.
FUNCTION_FOLDERS = ("replication_monitor", "config_validator", "stream_processor", "shared")
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class Bundle:
    """The folders replctl's own files live in, in one layout or the other."""

    kind: str  # "installed" (package data of a wheel) or "checkout" (a clone of the repository)
    cfn: Path
    functions: Path
    lint_rules: Path
    examples: Path

    @property
    def template(self) -> Path:
        return self.cfn / TEMPLATE

    def bootstrap_template(self, name: str) -> Path:
        return self.cfn / name

    def example(self, name: str) -> Path:
        return self.examples / name


def _installed() -> Bundle | None:
    root = resources.files("replctl") / "_bundle"
    if not isinstance(root, Path) or not (root / "cfn" / TEMPLATE).is_file():
        return None  # no package data: a checkout (or an editable install of one)
    return Bundle("installed", root / "cfn", root / "lambda", root / "lint" / "cfnlint_rules", root / "examples")


def _checkout() -> Bundle | None:
    root = Path(__file__).resolve().parents[1]
    if not (root / "cfn" / TEMPLATE).is_file() or not (root / "lambda").is_dir():
        return None
    return Bundle("checkout", root / "cfn", root / "lambda", root / "lint" / "cfnlint_rules", root)


@functools.lru_cache(maxsize=1)
def bundle() -> Bundle:
    """The package data of this installation, else the repository checkout replctl runs from."""
    found = _installed() or _checkout()
    if found is None:
        raise ReplctlError(
            "this replctl installation has no bundled template or functions",
            hint="reinstall replctl from its wheel (pipx install replctl), or run it from a clone of its repository",
        )
    return found


def functions_dir(estate_dir: Path) -> Path:
    """The function sources to build for the estate file in `estate_dir`: its `lambda/` folder when
    it has one (copies written by `replctl init --eject`, or this repository's own), else the
    functions bundled with replctl."""
    local = Path(estate_dir) / "lambda"
    return local if local.is_dir() else bundle().functions


# --------------------------------------------------------------------------- the digest


@dataclass(frozen=True)
class Digest:
    """SHA-256 of the bundled template, of the function sources, and of both together."""

    template: str
    functions: str
    combined: str

    def short(self) -> str:
        return self.combined[:12]


def _skipped(rel: Path) -> bool:
    # What pip's byte-compilation and test runs leave beside the sources is not a source.
    return any(p == "__pycache__" or p.startswith(".") for p in rel.parts) or rel.suffix in (".pyc", ".pyo")


def tree_sha256(base: Path) -> str:
    """A digest of every file under `base`: sorted relative paths and contents; caches left out."""
    h = hashlib.sha256()
    for path in sorted(p for p in base.rglob("*") if p.is_file() and not _skipped(p.relative_to(base))):
        h.update(path.relative_to(base).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def sources_digest(b: Bundle | None = None) -> Digest:
    """The digest of what a deploy sends from this installation (template and function sources)."""
    b = b or bundle()
    template = hashlib.sha256(b.template.read_bytes()).hexdigest()
    functions = tree_sha256(b.functions)
    combined = hashlib.sha256(f"{template}\0{functions}".encode()).hexdigest()
    return Digest(template, functions, combined)
