"""`python -m bench --compare REV`: the figures the fixes changed, before (REV) and after (this
checkout), measured side by side in the same run.

REV's `replctl/` is exported with `git archive` into a temporary folder and put first on
PYTHONPATH; the bench's own code and the test helpers come from this checkout. Start-up runs
`python -m replctl` for both, round-robin. The status fan-out runs `python -m bench.status_fanout`
in a child process for each, with each revision's own default number of readers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from bench.model import Table
from bench.startup import Command, measure
from bench.stats import fmt_ratio, fmt_seconds, ratio

RTTS = (0.025, 0.1)


def export(repo: Path, rev: str, dest: Path) -> str:
    """REV's replctl package under `dest`; returns the abbreviated commit."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=repo, capture_output=True, text=True,
                           check=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", rev, "replctl"], cwd=repo, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return short


def _env(pythonpath: Path | None, repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (pythonpath, repo) if p is not None)
    return env


def _status(repo: Path, pythonpath: Path | None, workers: int | None = None) -> list[dict[str, float]]:
    args = [sys.executable, "-m", "bench.status_fanout", "--per-env", "20", *(f"--rtt={r}" for r in RTTS)]
    if workers:
        args.append(f"--workers={workers}")
    # Not run from the checkout: the working directory comes first on sys.path and would shadow
    # the exported revision.
    done = subprocess.run(args, cwd=pythonpath or repo.parent, env=_env(pythonpath, repo), capture_output=True,
                          text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"status probe failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(repo: Path, workdir: Path, rev: str) -> tuple[str, list[Table], list[str]]:
    old = workdir / "before"
    old.mkdir()
    short = export(repo, rev, old)
    py = sys.executable
    commands = []
    for label, path in ((f"before ({short})", old), ("after", repo)):
        for argv in (("--help",), ("status", "--help")):
            commands.append(Command(f"{label} replctl {' '.join(argv)}",
                                    ("env", f"PYTHONPATH={path}", py, "-m", "replctl", *argv)))
    timings = {t.command.label: t for t in measure(commands, cwd=workdir)}
    table = Table(f"before = {short} (`git archive`), after = this checkout; same machine, same run",
                  ("figure", f"before ({short})", "after", "after ÷ before"))
    for argv in ("--help", "status --help"):
        b, a = timings[f"before ({short}) replctl {argv}"], timings[f"after replctl {argv}"]
        table.add(f"`python -m replctl {argv}`: median (mean) of rounds",
                  f"{fmt_seconds(b.median)} ({fmt_seconds(b.mean)})", f"{fmt_seconds(a.median)} ({fmt_seconds(a.mean)})",
                  fmt_ratio(ratio(a.median, b.median)))
    notes: list[str] = []
    try:
        before = _status(repo, old)
        same_readers = _status(repo, None, workers=int(before[0]["workers"]))
        after = _status(repo, None)
    except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        notes.append(f"status fan-out not compared: {exc}")
    else:
        for b, m, a in zip(before, same_readers, after, strict=True):
            where = f"`status` fetch, 3 × 20 accounts, modeled RTT {b['rtt'] * 1000:.0f} ms"
            table.add(f"{where}, {b['workers']:.0f} readers", fmt_seconds(b["seconds"]), fmt_seconds(m["seconds"]),
                      fmt_ratio(ratio(m["seconds"], b["seconds"])))
            table.add(f"{where}, default readers ({b['workers']:.0f} → {a['workers']:.0f})", fmt_seconds(b["seconds"]),
                      fmt_seconds(a["seconds"]), fmt_ratio(ratio(a["seconds"], b["seconds"])))
        notes.append(f"Calls per status run before and after: {before[0]['calls']:.0f} → {after[0]['calls']:.0f}. "
                     "The rows with the same number of readers compare the code alone; the default-readers "
                     "rows also carry a change of the default.")
    return f"Before and after ({short} → this checkout)", [table], notes
