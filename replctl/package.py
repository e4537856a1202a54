"""Deterministic Lambda ZIPs, named by content hash.

One ZIP per function under `lambda/` (beside the estate file, else the functions bundled with
replctl: `resources.functions_dir`): the function folder's files and `lambda/shared/` at the
ZIP root (so `replication_monitor.handler` and `replshared` import as the runtime puts
/var/task on sys.path), plus the pinned `lambda/requirements.txt` installed for the Lambda
platform (manylinux2014_x86_64, CPython 3.11, wheels only) -- never boto3/botocore, which the
runtime provides.

The same inputs always give the same bytes: entries sorted, every timestamp 1980-01-01 00:00,
modes 0644 (0755 when the source file is executable), no __pycache__/.pyc, fixed compression.
The file is named `<function>-<sha256[:16]>.zip`, so an unchanged function keeps its name and
`deploy` can skip the upload; `code_sha256_b64` gives the hash in Lambda's `CodeSha256` form for
`drift`.

Cache (default `<root>/.replctl/build/`):
- `deps/<requirements hash>/`: the pip install, done once per requirements/platform;
- `index/<function>-<source hash>.json`: which ZIP a given set of sources produced, so a rebuild
  with nothing changed reads no dependency and writes nothing;
- `zips/<function>-<sha16>.zip`: the artifacts.

No boto3 import here: packaging works offline from AWS and keeps `replctl --help` fast.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from replctl.errors import ConfigError, DeployError
from replctl.resources import functions_dir

FUNCTIONS: tuple[str, ...] = ("replication_monitor", "config_validator", "stream_processor")
SHARED = "shared"
REQUIREMENTS = "requirements.txt"
# What `pip install --target` needs to fetch wheels for the Lambda runtime, whatever this machine is.
PLATFORM_ARGS: tuple[str, ...] = (
    "--platform", "manylinux2014_x86_64",
    "--implementation", "cp",
    "--python-version", "3.11",
    "--only-binary=:all:",
)
# The Lambda Python runtime ships these; bundling them would shadow (and pin) the runtime's copy.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
FORMAT = "replctl-lambda-zip/1"  # part of every cache key: bump when the ZIP layout changes
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_PIN_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9._,\s-]*\])?==[A-Za-z0-9.*+!_-]+(\s*;.*)?$")

Log = Callable[[str], None]


@dataclass(frozen=True)
class Artifact:
    """One built function ZIP."""

    function: str
    path: Path
    sha256: str  # hex digest of the ZIP's bytes
    key: str  # content-addressed object key / file name: <function>-<sha256[:16]>.zip
    size: int


def code_sha256_b64(zip_path: Path | str) -> str:
    """The ZIP's SHA-256 as Lambda reports it in `CodeSha256` (base64 of the raw digest)."""
    return base64.b64encode(hashlib.sha256(Path(zip_path).read_bytes()).digest()).decode("ascii")


def build_all(root: Path, *, cache_dir: Path | None = None, log: Log | None = None) -> list[Artifact]:
    """Build (or reuse) the ZIP of every function, in the contract's order."""
    return [build_function(root, f, cache_dir=cache_dir, log=log) for f in FUNCTIONS]


def build_function(root: Path, function: str, *, cache_dir: Path | None = None, log: Log | None = None) -> Artifact:
    """Build (or reuse) one function's ZIP; see the module docstring for what goes in."""
    say = log or (lambda _msg: None)
    root = Path(root)
    lambda_dir = functions_dir(root)
    function_dir = lambda_dir / function
    if function == SHARED or not function_dir.is_dir():
        raise ConfigError(f"no Lambda function folder {function_dir}",
                          hint=f"functions are folders under {lambda_dir} with a {function}.py handler module")
    if not (function_dir / f"{function}.py").is_file():
        raise ConfigError(f"{function_dir} has no handler module {function}.py",
                          hint=f"the handler entry point is {function}.handler")
    cache = Path(cache_dir) if cache_dir is not None else root / ".replctl" / "build"
    requirements = _read_requirements(lambda_dir / REQUIREMENTS)
    sources = _source_entries(function_dir, lambda_dir / SHARED)
    source_hash = _source_hash(function, sources, requirements)

    index = cache / "index" / f"{function}-{source_hash}.json"
    cached = _cached_artifact(function, index, cache / "zips")
    if cached is not None:
        say(f"{function}: unchanged, using cached {cached.key}")
        return cached

    deps_dir = _install_requirements(requirements, cache / "deps", say)
    entries = dict(sources)
    for arc, path in _walk(deps_dir):
        if arc in entries:
            raise ConfigError(f"{arc} is both in the function's sources and in an installed requirement",
                              hint="module names must be unique across the handler, lambda/shared and the requirements")
        entries[arc] = path

    zips = cache / "zips"
    zips.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{function}-", suffix=".zip.tmp", dir=zips)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_zip(entries, tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        key = f"{function}-{digest[:16]}.zip"
        final = zips / key
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    artifact = Artifact(function=function, path=final, sha256=digest, key=key, size=final.stat().st_size)
    index.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(index, json.dumps({"key": key, "sha256": digest}, sort_keys=True))
    say(f"{function}: built {key} ({artifact.size} bytes)")
    return artifact


# -- inputs ---------------------------------------------------------------------------------


def _read_requirements(path: Path) -> str:
    """The requirements, normalised (comments and blank lines dropped); every line pinned."""
    if not path.is_file():
        return ""
    lines, problems = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN_RE.match(line)
        if not match:
            problems.append(f"{path}:{number}: {line!r} is not pinned as name==version")
            continue
        if match["name"].lower().replace("_", "-") in RUNTIME_PROVIDED:
            problems.append(f"{path}:{number}: {match['name']} is provided by the Lambda runtime; do not bundle it")
            continue
        lines.append(line)
    if problems:
        raise ConfigError("Lambda requirements cannot be packaged", tuple(problems),
                          hint="pin each requirement with == so builds are reproducible")
    return "\n".join(sorted(lines)) + ("\n" if lines else "")


def _skipped(rel: Path) -> bool:
    return any(p == "__pycache__" or p.startswith(".") for p in rel.parts) or rel.suffix in (".pyc", ".pyo")


def _walk(base: Path) -> list[tuple[str, Path]]:
    """(archive name, path) of the files under `base`, sorted, caches and dot-files left out."""
    found = []
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if _skipped(rel) or not path.is_file():
            continue
        found.append((rel.as_posix(), path))
    return sorted(found)


def _source_entries(function_dir: Path, shared_dir: Path) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for base in (function_dir, shared_dir):
        if not base.is_dir():
            continue
        for arc, path in _walk(base):
            if arc in entries:
                raise ConfigError(f"{arc} exists in both {function_dir} and {shared_dir}",
                                  hint="module names must be unique across a function and lambda/shared")
            entries[arc] = path
    return entries


def _mode(path: Path) -> int:
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def _source_hash(function: str, sources: dict[str, Path], requirements: str) -> str:
    h = hashlib.sha256()
    for part in (FORMAT, function, requirements, *PLATFORM_ARGS):
        h.update(part.encode() + b"\0")
    for arc in sorted(sources):
        path = sources[arc]
        h.update(f"{arc}\0{_mode(path):o}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _requirements_hash(requirements: str) -> str:
    h = hashlib.sha256()
    for part in (FORMAT, requirements, *PLATFORM_ARGS):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


# -- cache ----------------------------------------------------------------------------------


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _cached_artifact(function: str, index: Path, zips: Path) -> Artifact | None:
    try:
        recorded = json.loads(index.read_text(encoding="utf-8"))
        path = zips / recorded["key"]
        data = path.read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    digest = hashlib.sha256(data).hexdigest()
    if digest != recorded.get("sha256"):
        return None  # the cached file was altered: rebuild it
    return Artifact(function=function, path=path, sha256=digest, key=recorded["key"], size=len(data))


def _install_requirements(requirements: str, deps_root: Path, say: Log) -> Path:
    """The requirements installed for the Lambda platform, once per requirements hash."""
    target = deps_root / _requirements_hash(requirements)
    if target.is_dir():
        return target
    deps_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".deps-", dir=deps_root))
    try:
        if requirements:
            req_file = tmp.parent / f"{tmp.name}.requirements.txt"
            req_file.write_text(requirements, encoding="utf-8")
            say("installing Lambda requirements for manylinux2014_x86_64 / CPython 3.11 (pip)")
            command = [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
                "--no-compile", *PLATFORM_ARGS, "--target", str(tmp), "-r", str(req_file),
            ]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise DeployError(f"could not run pip to install the Lambda requirements: {exc}",
                                  hint="pip must be available to the Python running replctl") from exc
            finally:
                req_file.unlink(missing_ok=True)
            if done.returncode != 0:
                tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
                raise DeployError(f"pip could not install lambda/{REQUIREMENTS} for the Lambda platform:\n{tail}",
                                  hint="check the pins exist as wheels for manylinux2014_x86_64 / CPython 3.11 "
                                       "and that the package index is reachable")
        # Console scripts carry this machine's interpreter path: not for Lambda, not reproducible.
        shutil.rmtree(tmp / "bin", ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # another build won the race: use its copy
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# -- the ZIP --------------------------------------------------------------------------------


def _write_zip(entries: dict[str, Path], dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arc in sorted(entries):
            path = entries[arc]
            info = zipfile.ZipInfo(arc, date_time=ZIP_DATE)
            info.create_system = 3  # Unix, so the mode bits below are honoured
            info.external_attr = (0o100000 | _mode(path)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
