"""CLI start-up: `replctl --help` and `replctl status --help` against `aws --version` (AWS CLI v1)
and `sceptre --help`, measured in the same run.

The AWS CLI and Sceptre pin dependencies that conflict with replctl's, so each gets its own venv
under `.venv-bench/` (created on the first run, reused after). The venvs have no pip of their own:
this interpreter's pip installs into them (`pip --python`). When an install fails (offline, index
down), the comparison says so and the rest of the bench still runs.

Commands run round-robin (one of each per round, after a warm-up round), so a slow moment of
the machine hits every command alike; each figure is the median of the rounds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.model import Budget, Section, Table
from bench.stats import fmt_ratio, fmt_seconds, median, ratio

ROUNDS = 7
#: `replctl --help` must take less than this share of `aws --version`, measured in the same run.
AWS_SHARE = 0.6
TOOLS = {"awscli": ("aws", ("--version",)), "sceptre": ("sceptre", ("--help",))}


@dataclass(frozen=True)
class Command:
    label: str
    argv: tuple[str, ...]


@dataclass
class Timing:
    command: Command
    samples: list[float]

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)


def ensure_tool(root: Path, package: str, log: list[str]) -> Path | None:
    """`.venv-bench/<package>` with the package installed; its executable, or None (said in `log`)."""
    exe_name, _ = TOOLS[package]
    venv = root / ".venv-bench" / package
    exe = venv / "bin" / exe_name
    marker = venv / ".installed"
    if marker.is_file() and exe.is_file():
        return exe
    start = time.perf_counter()
    try:
        if not (venv / "bin" / "python").is_file():
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                           check=True, capture_output=True, text=True, timeout=300)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
             "--disable-pip-version-check", "--no-input", package],
            capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.append(f"could not install {package} into {venv}: {exc}; {exe_name} is left out of the comparison")
        return None
    if done.returncode != 0 or not exe.is_file():
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        log.append(f"pip could not install {package} into {venv} (exit {done.returncode}): {tail}; "
                   f"{exe_name} is left out of the comparison")
        return None
    marker.write_text(f"installed in {time.perf_counter() - start:.0f} s\n")
    log.append(f"installed {package} into {venv} ({time.perf_counter() - start:.0f} s, once)")
    return exe


def version_of(exe: Path, argv: tuple[str, ...]) -> str:
    try:
        out = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


def measure(commands: list[Command], rounds: int = ROUNDS, cwd: Path | None = None) -> list[Timing]:
    """Round-robin wall times of each command (stdout/stderr discarded), after one warm-up round."""
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb"}
    timings = [Timing(c, []) for c in commands]
    for i in range(rounds + 1):
        for t in timings:
            start = time.perf_counter()
            subprocess.run(t.command.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                           cwd=cwd, check=False, timeout=120)
            elapsed = time.perf_counter() - start
            if i:  # round 0 warms the page cache
                t.samples.append(elapsed)
    return timings


def run(repo: Path, workdir: Path) -> Section:
    section = Section("startup", "4. Start-up: wall time of a `--help`, median of rounds")
    bindir = Path(sys.executable).parent
    replctl = bindir / "replctl"
    replctl_argv = (str(replctl),) if replctl.is_file() else (sys.executable, "-m", "replctl")
    commands = [Command("replctl --help", (*replctl_argv, "--help")),
                Command("replctl status --help", (*replctl_argv, "status", "--help"))]
    versions: dict[str, str] = {}
    for package, (exe_name, argv) in TOOLS.items():
        exe = ensure_tool(repo, package, section.notes)
        if exe is not None:
            label = f"{exe_name} {' '.join(argv)}"
            commands.append(Command(label, (str(exe), *argv)))
            versions[label] = version_of(exe, ("--version",))
    timings = measure(commands, cwd=workdir)
    by = {t.command.label: t for t in timings}
    ours = by["replctl --help"].median
    table = Table(f"median of {ROUNDS} rounds, round-robin (after one warm-up round)",
                  ("command", "median", "mean", "min", "max", "÷ replctl --help (median)", "version"))
    for t in timings:
        table.add(f"`{t.command.label}`", fmt_seconds(t.median), fmt_seconds(t.mean), fmt_seconds(min(t.samples)),
                  fmt_seconds(max(t.samples)), fmt_ratio(ratio(t.median, ours)),
                  versions.get(t.command.label, "replctl (this checkout)"))
    section.tables.append(table)
    section.notes.append(
        "Short processes' wall times can move in scheduler-sized steps (about 50 ms on the machine this was "
        "first run on), so a median jumps by a step where the mean moves a little; both are shown.")
    section.headline.append(("startup: replctl --help / status --help",
                             f"{fmt_seconds(ours)} / {fmt_seconds(by['replctl status --help'].median)}"))
    for label, share in (("aws --version", AWS_SHARE), ("sceptre --help", 1.0)):
        other = by.get(label)
        if other is None:
            section.headline.append((f"startup: {label} ÷ replctl --help", "not measured (install failed)"))
            continue
        section.headline.append((f"startup: {label} ÷ replctl --help", fmt_ratio(ratio(other.median, ours))))
        name = (f"startup: replctl --help under {share:g} × {label}" if share != 1.0
                else f"startup: replctl --help starts faster than {label}")
        section.budgets.append(Budget(name, f"< {fmt_seconds(share * other.median)}", fmt_seconds(ours),
                                      ours < share * other.median))
    return section
