"""API calls a rollout makes, by operation, read vs mutating — `replctl deploy` against moto.

The real `cfn/replication.yaml` (adapted for moto by `tests.functional.moto_stacksets.adapt_for_moto`,
as the functional tests do) is rolled out to an admin account and dev/staging/prod accounts in
moto's in-process `mock_aws`, through the CLI exactly as a user runs it. Every call is counted with
the factory's listener (`SessionFactory.add_listener`, a botocore `before-call` hook on every
client replctl makes), so the figures are what AWS would see from replctl.

moto's StackSet gaps are bridged the way the tests bridge them (`AwsSemantics`: overrides merged,
overrides read back trimmed and kept across stack set updates, ManagedExecution echoed). The
calls that bridging itself makes go through a separate client and are not counted: AWS would
not see them.

The template-change scenario edits a copy of the template (one parameter's default) so the
change reaches the stack set and is rolled out wave by wave: one UpdateStackSet for the first
environment, UpdateStackInstances for the later ones (an UpdateStackSet there would mark every
other instance OUTDATED again; see docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from bench.model import Budget, Section, Table
from bench.stats import fmt_seconds

#: A no-op redeploy may make at most this many read calls per environment (one account and one
#: region each, as in environments.yaml: 3 environments → 12). What it reads: a fixed 9 —
#: ListStackSetOperations (attach, then again in the plan), DescribeStackSet, ListStackInstances,
#: HeadBucket, HeadObject for the three function ZIPs and the template — plus one
#: DescribeStackInstance per stack instance (the only call that returns its overrides).
NOOP_READS_PER_ENVIRONMENT = 4
#: The mutating calls of a template change across three environments (the template is over the
#: inline limit, so it is uploaded first).
TEMPLATE_ROLLOUT = ("PutObject", "UpdateStackSet", "UpdateStackInstances", "UpdateStackInstances")
REGION = "us-east-1"
#: The template change the bench rolls out: one parameter's default (a copy of the template is edited).
TEMPLATE_CHANGE = ("  LambdaReservedConcurrency:\n    Type: Number\n    Default: 5\n",
                   "  LambdaReservedConcurrency:\n    Type: Number\n    Default: 4\n")


@dataclass
class Scenario:
    name: str
    args: tuple[str, ...]
    exit_code: int = -1
    seconds: float = 0.0
    calls: list[Any] = field(default_factory=list)
    output: str = ""

    @property
    def mutating(self) -> list[Any]:
        return [c for c in self.calls if c.mutating]

    @property
    def reads(self) -> list[Any]:
        return [c for c in self.calls if not c.mutating]

    def by_operation(self) -> Counter[str]:
        return Counter(f"{c.service}:{c.operation}" for c in self.calls)


@contextlib.contextmanager
def _estate(repo: Path, workdir: Path) -> Iterator[tuple[Path, list[Any]]]:
    """moto, a config pointing at the real template, and a call log fed by every factory."""
    from moto import mock_aws

    import boto3

    import replctl.aws
    from replctl.commands import deploy as deploy_cmd
    from replctl.sandbox.adapt.stacksets import without_denies
    from tests.functional.moto_stacksets import AwsSemantics, adapt_for_moto
    from tests.unit.deploy.fake_stacksets import make_artifacts

    template = workdir / "replication.yaml"
    template.write_text((repo / "cfn" / "replication.yaml").read_text())
    config = (repo / "environments.yaml").read_text().replace("template: cfn/replication.yaml", f"template: {template}")
    path = workdir / "environments.yaml"
    path.write_text(config)
    artifacts = make_artifacts(workdir)
    calls: list[Any] = []

    with mock_aws():
        plain = boto3.client("cloudformation", region_name=REGION)  # not from the factory: not counted
        semantics = AwsSemantics(plain=lambda: plain)

        def hook(service: str, account: str | None, client: Any) -> None:
            if service == "cloudformation" and account is None:
                semantics.install(client)
            if service == "s3":
                # moto applies the artifact policy's TLS-only Deny to HTTPS uploads too; the tests and
                # the sandbox send it the policy without Deny statements (replctl.sandbox.adapt).
                client.meta.events.register("provide-client-params.s3.PutBucketPolicy", without_denies)

        class CountingFactory(replctl.aws.SessionFactory):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.add_listener(calls.append)
                self.add_client_hook(hook)

        with mock.patch.object(replctl.aws, "SessionFactory", CountingFactory), \
                mock.patch.object(deploy_cmd, "build_artifacts", lambda config, log: artifacts), \
                mock.patch.object(deploy_cmd, "template_transform", lambda st: adapt_for_moto):
            yield path, calls


def run_scenarios(repo: Path, workdir: Path) -> list[Scenario]:
    from typer.testing import CliRunner

    from replctl.cli import app

    runner = CliRunner()
    scenarios: list[Scenario] = []
    with _estate(repo, workdir) as (path, calls):

        def invoke(name: str, *args: str) -> Scenario:
            s = Scenario(name, args)
            before = len(calls)
            start = time.perf_counter()
            result = runner.invoke(app, ["--config", str(path), "--no-color", *args], env={"COLUMNS": "200"})
            s.seconds = time.perf_counter() - start
            s.exit_code = result.exit_code
            s.calls = calls[before:]
            s.output = result.output
            scenarios.append(s)
            return s

        invoke("first rollout (3 environments)", "deploy", "--yes")
        invoke("no-op redeploy", "deploy", "--yes")
        path.write_text(path.read_text().replace('LogRetentionDays: "90"', 'LogRetentionDays: "180"', 1))
        invoke("--dry-run (one parameter changed)", "deploy", "--dry-run")
        invoke("one-parameter change (staging)", "deploy", "--yes")
        template = path.parent / "replication.yaml"
        template.write_text(template.read_text().replace(*TEMPLATE_CHANGE))
        invoke("template change (3 environments)", "deploy", "--yes")
        invoke("no-op redeploy after it", "deploy", "--yes")
    return scenarios


def run(repo: Path, workdir: Path) -> Section:
    section = Section("api", "1. API calls per rollout (replctl deploy against moto, real template)")
    scenarios = run_scenarios(repo, workdir)
    n_env = 3

    summary = Table("calls per command", ("command", "exit", "calls", "read", "mutating", "wall (moto, in-process)"))
    for s in scenarios:
        summary.add(f"{s.name}: `replctl {' '.join(s.args)}`", s.exit_code, len(s.calls), len(s.reads),
                    len(s.mutating), fmt_seconds(s.seconds))
    section.tables.append(summary)

    ops = sorted({op for s in scenarios for op in s.by_operation()},
                 key=lambda op: (not _mutating(op), op))
    matrix = Table("calls by operation (M = mutating)",
                   ("operation", "", *(s.name.split(" (")[0] for s in scenarios)))
    for op in ops:
        matrix.add(op, "M" if _mutating(op) else "", *(s.by_operation().get(op, 0) or "·" for s in scenarios))
    section.tables.append(matrix)

    first, noop, dry, change, template, settled = scenarios
    for s in scenarios:
        if s.exit_code != 0:
            section.notes.append(f"`{s.name}` exited {s.exit_code}: {s.output.strip()[-400:]}")
    section.headline += [
        ("api: first rollout calls (read / mutating)", f"{len(first.calls)} ({len(first.reads)} / {len(first.mutating)})"),
        ("api: no-op redeploy calls (read / mutating)", f"{len(noop.calls)} ({len(noop.reads)} / {len(noop.mutating)})"),
        ("api: --dry-run calls (read / mutating)", f"{len(dry.calls)} ({len(dry.reads)} / {len(dry.mutating)})"),
        ("api: one-parameter change calls (read / mutating)",
         f"{len(change.calls)} ({len(change.reads)} / {len(change.mutating)})"),
        ("api: template change calls (read / mutating)",
         f"{len(template.calls)} ({len(template.reads)} / {len(template.mutating)})"),
    ]
    section.budgets += [
        Budget("api: every deploy command exits 0", "exit 0", ", ".join(str(s.exit_code) for s in scenarios),
               all(s.exit_code == 0 for s in scenarios)),
        Budget("api: no-op redeploy makes no mutating call", "0", str(len(noop.mutating)), not noop.mutating),
        Budget("api: --dry-run makes no mutating call", "0", str(len(dry.mutating)), not dry.mutating),
        Budget(f"api: no-op redeploy reads ≤ {NOOP_READS_PER_ENVIRONMENT} per environment",
               f"≤ {NOOP_READS_PER_ENVIRONMENT * n_env} ({n_env} environments)", str(len(noop.reads)),
               len(noop.reads) <= NOOP_READS_PER_ENVIRONMENT * n_env),
        Budget("api: one-parameter change makes exactly one mutating call (staging's UpdateStackInstances)",
               "1", ", ".join(c.operation for c in change.mutating) or "0",
               [c.operation for c in change.mutating] == ["UpdateStackInstances"]),
        # Added with the UpdateStackInstances bring-forward: the change reaches the stack set once.
        Budget("api: template change: the template upload, one UpdateStackSet, then UpdateStackInstances per "
               "later environment", ", ".join(TEMPLATE_ROLLOUT), ", ".join(c.operation for c in template.mutating),
               tuple(c.operation for c in template.mutating) == TEMPLATE_ROLLOUT),
        Budget("api: a redeploy after the template change makes no mutating call", "0", str(len(settled.mutating)),
               not settled.mutating),
    ]
    section.notes.append(
        "Template change: one UpdateStackSet (the first environment), then UpdateStackInstances with the complete "
        "override list for each later one. Until this checkout the later environments got an UpdateStackSet each, "
        "which marks every other instance OUTDATED again (docs/deploy.md); moto reports CURRENT whatever happens, "
        "so that showed only against AWS, the scripted fake and the sandbox.")
    section.notes.append(
        "moto receives the artifact bucket's policy without its TLS-only Deny, as in the tests and the sandbox "
        "(moto applies a Deny to every object call whatever its condition); without that every deploy in this "
        "section stopped at the first upload with 403.")
    section.notes.append(
        "moto runs every StackSet operation instantly, so each wait is one DescribeStackSetOperation + one "
        "ListStackSetOperationResults; against AWS the reads per operation follow section 3. Wall times "
        "include the in-process emulator and cfn-lint (once per process).")
    section.notes.append(
        "sqs:GetQueueUrl: a deploy that waits looks for the StackSet event queue once, at its first wait; this "
        "estate has no administration bootstrap, so it is not there and the waits poll (section 3 measures "
        "waiting by event). A deploy that waits on nothing never looks.")
    section.notes.append(
        "s3:GetBucketVersioning, dynamodb:DescribeTable (first rollout): before creating an instance, the plan "
        "looks through the observer role for a bucket and table a data-retaining `replctl destroy` left under "
        "the same fixed names (one of each per instance to create, plus a DescribeTable per DR region), and "
        "refuses rather than fail half-way (docs/destroy.md). Where every instance exists it reads nothing.")
    return section


def _mutating(op: str) -> bool:
    from replctl.aws import is_mutating

    return is_mutating(op.split(":", 1)[1])


# --------------------------------------------------------------------------- refreshing this section alone


def splice(markdown: str, section: Section, refreshed: str, prefix: str = "api") -> str:
    """BENCHMARKS.md with this section, and its rows of the Summary and Budgets tables, replaced.

    The other sections keep the numbers of the full run that wrote the file; the section says
    when and how it was measured again.
    """
    from bench.report import markdown_table

    lines = markdown.split("\n")
    heading = f"## {section.title}"
    start = lines.index(heading)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    body = [heading, "", f"_{refreshed}_", ""]
    for table in section.tables:
        body += [markdown_table(table), ""]
    body += [f"- {note}" for note in section.notes] + [""]
    lines[start:end] = body
    _replace_rows(lines, "## Summary", [f"| {f} | {v} |" for f, v in section.headline], prefix)
    _replace_rows(lines, "## Budgets", [f"| {b.name} | {b.limit} | {b.actual} | {'yes' if b.ok else '**NO**'} |"
                                        for b in section.budgets], prefix)
    return "\n".join(lines)


def _replace_rows(lines: list[str], heading: str, rows: list[str], prefix: str = "api") -> None:
    """Put `rows` where the table under `heading` had its `<prefix>:` rows (the section's own)."""
    start = lines.index(heading)
    mine = [i for i in range(start, len(lines)) if lines[i].startswith(f"| {prefix}: ")
            and all(not lines[j].startswith("## ") for j in range(start + 1, i))]
    at = mine[0] if mine else next(i for i in range(start + 1, len(lines)) if lines[i].startswith("|---")) + 1
    for i in reversed(mine):
        del lines[i]
    lines[at:at] = [r.replace("\n", " ") for r in rows]


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.api_calls [--update BENCHMARKS.md]`: this section only (see `splice`)."""
    import argparse
    import sys
    import tempfile
    from datetime import datetime, timezone

    from bench.env import use_fake_aws
    from bench.machine import git_revision

    parser = argparse.ArgumentParser(prog="python -m bench.api_calls", description=main.__doc__)
    parser.add_argument("--update", type=Path, metavar="BENCHMARKS.md",
                        help="replace this section (and its Summary and Budgets rows) in that file")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    use_fake_aws()
    with tempfile.TemporaryDirectory(prefix="replctl-bench-") as tmp:
        start = time.perf_counter()
        section = run(repo, Path(tmp))
        section.seconds = time.perf_counter() - start
    for b in section.budgets:
        print(f"{'ok' if b.ok else 'BROKEN'}: {b.name}: measured {b.actual}, limit {b.limit}", file=sys.stderr)
    if args.update:
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        refreshed = (f"Measured again on {date} at {git_revision(repo)} by `python -m bench.api_calls --update "
                     f"BENCHMARKS.md` (section wall time {fmt_seconds(section.seconds)}); the other sections are "
                     "from the run named at the top.")
        args.update.write_text(splice(args.update.read_text(), section, refreshed))
        print(f"updated section 1 of {args.update}", file=sys.stderr)
    return 0 if section.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
