"""Put the estate files on disk, and with `--eject` the bundled template and functions beside them.

Nothing is overwritten without `force`: every file that would be replaced is named at once, before
anything is written. Ejected copies leave out what is not source (caches, byte code), so the ZIPs
built from them are the ZIPs the bundled sources give.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from replctl.errors import ConfigError, Refused
from replctl.init.estate import (
    EJECTED_FUNCTIONS,
    ESTATE_FILE,
    SANDBOX_ESTATE_FILE,
    Answers,
    render_estate,
    sandbox_answers,
)
from replctl.resources import BOOTSTRAP_TEMPLATES, TEMPLATE, Bundle, bundle


@dataclass(frozen=True)
class NewFile:
    """One file `init` writes: where (relative to the directory) and its bytes."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Written:
    """What `init` did, for the summary and `-o json`."""

    directory: Path
    files: tuple[str, ...]
    ejected: bool
    template: Path
    functions: Path
    overwritten: tuple[str, ...] = ()


def _source_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*") if p.is_file()
                  and not any(part == "__pycache__" or part.startswith(".") for part in p.relative_to(base).parts)
                  and p.suffix not in (".pyc", ".pyo"))


def planned_files(a: Answers, *, eject: bool, sandbox: bool, b: Bundle | None = None) -> list[NewFile]:
    """Every file `init` would write, in a stable order."""
    b = b or bundle()
    files = [NewFile(ESTATE_FILE, render_estate(a, ejected=eject).encode())]
    if sandbox:
        files.append(NewFile(SANDBOX_ESTATE_FILE, render_estate(sandbox_answers(a), ejected=eject, sandbox=True).encode()))
    if eject:
        for name in (TEMPLATE, *BOOTSTRAP_TEMPLATES):
            files.append(NewFile(f"cfn/{name}", b.cfn.joinpath(name).read_bytes()))
        for path in _source_files(b.functions):
            files.append(NewFile(f"{EJECTED_FUNCTIONS}/{path.relative_to(b.functions).as_posix()}", path.read_bytes()))
    return files


def write_estate(directory: Path, files: list[NewFile], *, force: bool, eject: bool) -> Written:
    """Write `files` under `directory` (created if missing); Refused if one exists and not `force`."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file, not a directory", hint="name a directory for the estate")
    existing = tuple(f.path for f in files if (directory / f.path).exists())
    if existing and not force:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise Refused(f"not overwriting {shown} in {directory}",
                      hint="pass --force to replace them, or choose another directory")
    for f in files:
        _atomic_write(directory / f.path, f.data)
    b = bundle()
    return Written(
        directory=directory, files=tuple(f.path for f in files), ejected=eject,
        template=directory / "cfn" / TEMPLATE if eject else b.template,
        functions=directory / EJECTED_FUNCTIONS if eject else b.functions, overwritten=existing,
    )


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, so an interrupted init leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
