"""Packaging the three function ZIPs: a full build with a cold cache, then a rebuild with nothing
changed, then a rebuild after one source file changed (requirements still cached).

The checkout's `lambda/` is copied into a temporary folder so the cache (and the edit) never
touch the working tree. The cold build runs pip (`--platform manylinux2014_x86_64`) against the
configured package index; when that fails, the section says so and the bench carries on.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench.model import Budget, Section, Table
from bench.stats import fmt_seconds


def run(repo: Path, workdir: Path) -> Section:
    from replctl.errors import ReplctlError
    from replctl.package import build_all

    section = Section("package", "6. Packaging the function ZIPs (`replctl package`)")
    root = Path(tempfile.mkdtemp(prefix="package-", dir=workdir))
    shutil.copytree(repo / "lambda", root / "lambda",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    cache = root / "cache"

    def build() -> tuple[list, float]:
        start = time.perf_counter()
        artifacts = build_all(root, cache_dir=cache)
        return artifacts, time.perf_counter() - start

    try:
        cold, cold_s = build()
    except ReplctlError as exc:
        section.error = f"the cold build failed, so packaging was not measured: {exc}"
        return section
    warm, warm_s = build()
    edited = root / "lambda" / "stream_processor" / "stream_logic.py"
    edited.write_text(edited.read_text() + "\n# edited by the benchmark\n")
    changed, changed_s = build()

    table = Table("build_all (three functions)", ("build", "wall", "ZIPs written"))
    table.add("full build, cold cache (pip install for the Lambda platform + 3 ZIPs)", fmt_seconds(cold_s), 3)
    table.add("rebuild, nothing changed (cache index only)", fmt_seconds(warm_s),
              sum(1 for a, b in zip(cold, warm, strict=True) if a.path != b.path))
    table.add("rebuild after editing stream_logic.py (requirements cached)", fmt_seconds(changed_s),
              sum(1 for a, b in zip(warm, changed, strict=True) if a.path != b.path))
    section.tables.append(table)
    sizes = Table("artifacts", ("function", "key", "size"))
    for a in cold:
        sizes.add(a.function, a.key, f"{a.size:,} B")
    section.tables.append(sizes)
    section.headline += [
        ("package: full build (cold cache)", fmt_seconds(cold_s)),
        ("package: no-change rebuild", fmt_seconds(warm_s)),
    ]
    same = [a.key for a in cold] == [a.key for a in warm]
    section.budgets.append(Budget("package: a no-change rebuild writes nothing and keeps every key",
                                  "same keys, 0 ZIPs", "same keys" if same else "keys changed", same))
    shutil.rmtree(root, ignore_errors=True)
    return section
