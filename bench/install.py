"""Installing replctl as users do: the wheel, `pip install` into a new venv, start-up, `init`.

Builds the wheel (`pip wheel . --no-deps`), then installs it into fresh venvs twice — plain
`replctl` and `replctl[sandbox]` — each with the new venv's own pip (dependencies resolved from
the package index, pip's cache warm after the first bench run), and measures wall time and the
venv's size on disk. Then, from the sandbox venv: `replctl --version` and `replctl --help` (median of
warm runs, against the same commands from this checkout's venv) and `replctl init --no-input`.

Budget: the installed tool reports the same template and function digest as this checkout
(the wheel carries exactly the sources the repository deploys).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.model import Budget, Section, Table
from bench.stats import fmt_seconds, median

ROUNDS = 5


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _timed(argv: list[str], **kw: object) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=900, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start


def _install(wheel: Path, venv: Path, spec: str) -> float:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    return _timed([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                   f"{spec} @ {wheel.as_uri()}"])


def _startup(exe: str, args: list[str], cwd: Path, env: dict[str, str]) -> float:
    _timed([exe, *args], cwd=cwd, env=env)  # warm-up: byte-compiles on first import
    return median([_timed([exe, *args], cwd=cwd, env=env) for _ in range(ROUNDS)])


def run(repo: Path, workdir: Path) -> Section:
    from replctl.resources import sources_digest

    section = Section("install", "7. Install (`pip install` of the wheel, start-up, `replctl init`)")
    root = Path(tempfile.mkdtemp(prefix="install-", dir=workdir))
    try:
        build_s = _timed([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(repo)])
        (wheel,) = (root / "dist").glob("replctl-*.whl")
        plain_s = _install(wheel, root / "plain", "replctl")
        sandbox_s = _install(wheel, root / "sandbox", "replctl[sandbox]")
    except subprocess.CalledProcessError as exc:
        section.error = f"the wheel could not be built or installed (package index?): {(exc.stderr or '')[-300:]}"
        return section
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    home = root / "estate"
    home.mkdir()
    installed = str(root / "sandbox" / "bin" / "replctl")
    checkout = str(Path(sys.executable).with_name("replctl"))

    table = Table("the wheel and its installs", ("step", "wall", "size"))
    table.add("pip wheel . --no-deps", fmt_seconds(build_s), f"{wheel.stat().st_size / 1e6:.2f} MB")
    table.add("new venv + pip install replctl (cfn-lint included)", fmt_seconds(plain_s),
              f"{_size(root / 'plain') / 1e6:.0f} MB venv")
    table.add("new venv + pip install replctl with the sandbox extra (moto, powertools)", fmt_seconds(sandbox_s),
              f"{_size(root / 'sandbox') / 1e6:.0f} MB venv")
    table.add("replctl init --no-input (installed)", fmt_seconds(_timed([installed, "init", "--no-input"], cwd=home,
                                                                        env=env)), "")
    section.tables.append(table)

    startup = Table(f"start-up, median of {ROUNDS} warm runs", ("command", "installed wheel", "this checkout"))
    for args in (["--version"], ["--help"]):
        startup.add(f"replctl {' '.join(args)}", fmt_seconds(_startup(installed, args, home, env)),
                    fmt_seconds(_startup(checkout, args, home, env)))
    section.tables.append(startup)
    section.headline += [
        ("install: pip install, sandbox extra (warm cache) / venv size", f"{fmt_seconds(sandbox_s)} / "
         f"{_size(root / 'sandbox') / 1e6:.0f} MB"),
        ("install: wheel size", f"{wheel.stat().st_size / 1e6:.2f} MB"),
    ]
    version = subprocess.run([installed, "--version"], capture_output=True, text=True, env=env, check=True).stdout
    digest = sources_digest().combined
    same = f"sha256:{digest}" in version
    section.budgets.append(Budget("install: the installed wheel deploys this checkout's template and functions",
                                  "same digest", "same digest" if same else "digest differs", same))
    return section
