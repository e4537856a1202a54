"""`python -m bench`: measure what users feel, print a summary, write BENCHMARKS.md.

Sections (numbered as in BENCHMARKS.md): 1 API calls per rollout, 2 status fan-out, 3 wait
latency, 4 start-up, 5 stream processor, 6 packaging, 7 install. Start-up runs first, while this process
has not yet loaded boto3 and moto. A section that cannot run (a tool that cannot be installed,
no package index) says so and the others still run. Exit 1 when a budget is broken or a section
crashed.

    python -m bench                  # everything, writes BENCHMARKS.md
    python -m bench --only startup   # one section (repeatable); BENCHMARKS.md is left alone
    python -m bench --compare REV    # also: the changed figures before (REV) and after, same run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORDER = ("startup", "api", "status", "wait", "stream", "package", "install")


def _sections(workdir: Path) -> dict[str, tuple[str, Callable[[], object]]]:
    from bench import api_calls, install, packaging, startup, status_fanout, stream, wait_latency

    return {
        "startup": ("4. Start-up", lambda: startup.run(REPO, workdir)),
        "api": ("1. API calls per rollout", lambda: api_calls.run(REPO, workdir / "api")),
        "status": ("2. status fan-out", lambda: status_fanout.run(workdir)),
        "wait": ("3. Wait latency", lambda: wait_latency.run(REPO)),
        "stream": ("5. Stream processor", lambda: stream.run(REPO)),
        "package": ("6. Packaging", lambda: packaging.run(REPO, workdir)),
        "install": ("7. Install", lambda: install.run(REPO, workdir)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=ORDER, help="run only this section (repeatable)")
    parser.add_argument("--compare", metavar="REV", help="also measure the changed figures at this git revision")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md", help="where to write the report")
    args = parser.parse_args(argv)

    from bench import report
    from bench.env import use_fake_aws
    from bench.machine import describe
    from bench.model import Section

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # the test helpers (tests.*) the moto sections reuse
    machine = describe(REPO)
    use_fake_aws()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    start = time.perf_counter()
    sections: list[Section] = []
    crashed = False
    with tempfile.TemporaryDirectory(prefix="replctl-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "api").mkdir()
        table = _sections(workdir)
        for key in args.only or ORDER:
            title, fn = table[key]
            print(f"running {title} …", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                section = fn()
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                crashed = True
                section = Section(key, title, error=f"crashed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            section.seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
            sections.append(section)  # type: ignore[arg-type]
        extra = []
        if args.compare:
            from bench import compare

            print(f"running before/after against {args.compare} …", file=sys.stderr, flush=True)
            extra.append(compare.run(REPO, workdir, args.compare))
    total = time.perf_counter() - start
    report.print_terminal(sections, [t for _, tables, _ in extra for t in tables], total)
    command = "python -m bench" + (f" --compare {args.compare}" if args.compare else "")
    if not args.only:
        changes = (REPO / "bench" / "changes.md").read_text() if (REPO / "bench" / "changes.md").is_file() else ""
        report.write_markdown(args.output, sections=sections, machine=machine, command=command, date=date,
                              total_seconds=total, extra=extra, changes=changes)
        print(f"wrote {args.output}", file=sys.stderr)
    broken = [b for s in sections for b in s.budgets if not b.ok]
    for b in broken:
        print(f"BUDGET BROKEN: {b.name}: measured {b.actual}, limit {b.limit}", file=sys.stderr)
    return 1 if broken or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
