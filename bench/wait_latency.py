"""How soon replctl notices that a StackSet operation finished, and what the noticing costs.

Each simulated operation runs on the scripted fake StackSet service (tests/unit/deploy/fake_stacksets.py)
for a duration drawn from a seeded log-uniform distribution between 5 s and 15 min; replctl
waits for it with its real wait loop (`rollout.attach` → `waiting.wait_until`, probing
DescribeStackSetOperation + ListStackSetOperationResults) on a fake clock. The delay is the fake
time between the operation's end and the probe that saw it finished. The same loop with a fixed
30-second interval is the baseline a hand-written `while not done: sleep(30)` would give.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.model import Budget, Section, Table
from bench.stats import fmt_ratio, median, percentile, ratio

SEED = 8
OPERATIONS = 400
SHORTEST = 5.0
LONGEST = 15 * 60.0


def durations(n: int = OPERATIONS, *, seed: int = SEED, low: float = SHORTEST, high: float = LONGEST) -> list[float]:
    """Operation durations, log-uniform in [low, high]: as many 10-second as 10-minute ones per decade."""
    rng = random.Random(seed)
    return [math.exp(rng.uniform(math.log(low), math.log(high))) for _ in range(n)]


@dataclass(frozen=True)
class Sample:
    duration: float
    delay: float  # seconds from the operation's end to the probe that saw it finished
    describes: int  # DescribeStackSetOperation calls
    calls: int  # every call the wait made (describe + operation results + the one listing)


def simulate_one(duration: float, wait: object) -> Sample:
    """Wait for one operation of `duration` seconds with the given WaitSettings."""
    from replctl.deploy.rollout import attach
    from tests.unit.deploy.fake_stacksets import NAME, World

    config = _config(wait)
    world = World()
    world.cfn.create_stack_set(StackSetName=NAME, TemplateBody="{}", ManagedExecution={"Active": False})
    world.cfn.calls.clear()
    op_id = world.cfn.foreign_operation(duration)
    end = world.cfn.operations[op_id].end
    outcomes = attach(config, world.clients(), sleep=world.clock.sleep, clock=world.clock)
    assert [o.operation_id for o in outcomes] == [op_id] and outcomes[0].status.finished
    describes = len(world.cfn.calls_to("DescribeStackSetOperation"))
    return Sample(duration, world.clock() - end, describes, len(world.cfn.calls))


def simulate(durations_s: Sequence[float], wait: object) -> list[Sample]:
    return [simulate_one(d, wait) for d in durations_s]


@dataclass(frozen=True)
class Summary:
    label: str
    median_delay: float
    p95_delay: float
    max_delay: float
    describes_median: float
    describes_total: int
    calls_total: int


def summarise(label: str, samples: Sequence[Sample]) -> Summary:
    delays = [s.delay for s in samples]
    return Summary(label, median(delays), percentile(delays, 95), max(delays),
                   median([s.describes for s in samples]), sum(s.describes for s in samples),
                   sum(s.calls for s in samples))


_CONFIG: dict[str, object] = {}


def _config(wait: object) -> object:
    """The repo's environments.yaml with another `stackset.wait` (loaded once)."""
    from replctl.config import load_config

    base = _CONFIG.get("base")
    if base is None:
        base = _CONFIG["base"] = load_config(Path(__file__).resolve().parents[1] / "environments.yaml")
    return replace(base, stackset=replace(base.stackset, wait=wait))  # type: ignore[type-var]


def run(repo: Path) -> Section:
    from replctl.config import WaitSettings, load_config

    section = Section("wait", "3. Wait latency: operation finished → replctl notices (fake clock)")
    configured = load_config(repo / "environments.yaml").stackset.wait
    fixed = WaitSettings(initial_interval_seconds=30, max_interval_seconds=30,
                         timeout_seconds=configured.timeout_seconds)
    ds = durations()
    results = [
        summarise(f"replctl backoff ({configured.initial_interval_seconds:g} s doubling to "
                  f"{configured.max_interval_seconds:g} s, environments.yaml)", simulate(ds, configured)),
        summarise("fixed 30-second poll", simulate(ds, fixed)),
    ]
    table = Table(f"{len(ds)} operations, durations log-uniform 5 s–15 min (seed {SEED}; median "
                  f"{median(ds):.0f} s)",
                  ("poll schedule", "delay median", "delay p95", "delay max", "describes / operation (median)",
                   "describe calls, all operations", "all calls"))
    for r in results:
        table.add(r.label, f"{r.median_delay:.1f} s", f"{r.p95_delay:.1f} s", f"{r.max_delay:.1f} s",
                  f"{r.describes_median:g}", r.describes_total, r.calls_total)
    section.tables.append(table)
    ours, base = results
    section.headline += [
        ("wait: notice delay median / p95 (replctl backoff)", f"{ours.median_delay:.1f} s / {ours.p95_delay:.1f} s"),
        ("wait: notice delay median / p95 (fixed 30 s)", f"{base.median_delay:.1f} s / {base.p95_delay:.1f} s"),
        ("wait: describe calls, replctl / fixed 30 s", fmt_ratio(ratio(ours.describes_total, base.describes_total))),
    ]
    # Noticing later than one capped interval after the end would mean the loop lost track.
    section.budgets.append(Budget(
        "wait: worst notice delay ≤ the configured max interval",
        f"≤ {configured.max_interval_seconds:g} s", f"{ours.max_delay:.1f} s",
        ours.max_delay <= configured.max_interval_seconds,
    ))
    section.notes.append(
        "Every probe is one DescribeStackSetOperation plus one ListStackSetOperationResults (per-account "
        "progress); 'all calls' also counts the one ListStackSetOperations that finds the operation.")
    section.notes.append(
        f"A first rollout waits on 5 operations (3 environments, 2 wiring waves): at the median delay that is "
        f"about {5 * ours.median_delay:.0f} s spent after operations had finished with replctl's backoff, "
        f"{5 * base.median_delay:.0f} s with a 30-second poll. Halving the cap would halve the delay and double "
        "the polls of long operations; 20 s keeps a 15-minute operation at about 50 describes.")
    return section
