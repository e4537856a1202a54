"""API calls a rollout makes, by operation, read vs mutating — `replctl deploy` against moto.

The real `cfn/replication.yaml` (adapted for moto by `tests.functional.moto_stacksets.adapt_for_moto`,
as the functional tests do) is rolled out to an admin account and dev/staging/prod accounts in
moto's in-process `mock_aws`, through the CLI exactly as a user runs it. Every call is counted with
the factory's listener (`SessionFactory.add_listener`, a botocore `before-call` hook on every
client replctl makes), so the figures are what AWS would see from replctl.

moto's StackSet gaps are bridged the way the tests bridge them (`AwsSemantics`: overrides merged,
overrides read back trimmed, ManagedExecution echoed). The one read that bridging itself needs
(DescribeStackSet before Create/UpdateStackInstances) goes through a separate client and is not
counted: AWS would not see it.
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
REGION = "us-east-1"


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
    from tests.functional.moto_stacksets import AwsSemantics, adapt_for_moto
    from tests.unit.fake_stacksets import make_artifacts

    config = (repo / "environments.yaml").read_text().replace(
        "template: cfn/replication.yaml", f"template: {repo / 'cfn' / 'replication.yaml'}")
    path = workdir / "environments.yaml"
    path.write_text(config)
    artifacts = make_artifacts(workdir)
    calls: list[Any] = []

    with mock_aws():
        plain = boto3.client("cloudformation", region_name=REGION)  # not from the factory: not counted

        class Semantics(AwsSemantics):
            def _merge(self, cfn: Any) -> Any:
                return super()._merge(plain)

        semantics = Semantics()

        def hook(service: str, account: str | None, client: Any) -> None:
            if service == "cloudformation" and account is None:
                semantics.install(client)

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

    first, noop, dry, change = scenarios
    for s in scenarios:
        if s.exit_code != 0:
            section.notes.append(f"`{s.name}` exited {s.exit_code}: {s.output.strip()[-400:]}")
    section.headline += [
        ("api: first rollout calls (read / mutating)", f"{len(first.calls)} ({len(first.reads)} / {len(first.mutating)})"),
        ("api: no-op redeploy calls (read / mutating)", f"{len(noop.calls)} ({len(noop.reads)} / {len(noop.mutating)})"),
        ("api: --dry-run calls (read / mutating)", f"{len(dry.calls)} ({len(dry.reads)} / {len(dry.mutating)})"),
        ("api: one-parameter change calls (read / mutating)",
         f"{len(change.calls)} ({len(change.reads)} / {len(change.mutating)})"),
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
    ]
    section.notes.append(
        "moto runs every StackSet operation instantly, so each wait is one DescribeStackSetOperation + one "
        "ListStackSetOperationResults; against AWS the polls per operation follow section 3. Wall times "
        "include the in-process emulator and cfn-lint (once per process).")
    return section


def _mutating(op: str) -> bool:
    from replctl.aws import is_mutating

    return is_mutating(op.split(":", 1)[1])
