"""The permission proof's cross-check: how long iam-simulate takes to answer the handler proof.

tests/unit/cfn/test_differential_proof.py puts every decision of the handler proof (every handler
permission of every resource, 24 environment combinations) to `@cloud-copilot/iam-simulate` in one
node process (tests/tools/iam_simulate.mjs). Figures, medians of ROUNDS runs on this machine:
- building the questions and the proof's own answers (Python, tests/iamproof.py);
- the simulator on the distinct simulations the test sends (identical questions asked once);
- the simulator on every question, duplicates included: tens of thousands in one process.

    python -m bench.proof_crosscheck

Stand-alone (not a section of `python -m bench`, which measures what users of replctl feel): this
measures a test of the repository, to keep `make test` within its budget.
"""

from __future__ import annotations

import time

from bench.stats import median

ROUNDS = 3


def _timed(run: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = run()  # type: ignore[operator]
    return time.perf_counter() - start, out


def main() -> None:
    from tests import cfnkit
    from tests.iamproof import answer
    from tests.unit.cfn import simulate
    from tests.unit.cfn import test_permission_proof as handler_proof

    reason = simulate.available()
    if reason is not None:
        raise SystemExit(f"cannot measure: {reason}")
    replication, bootstrap = cfnkit.load("replication.yaml"), cfnkit.load("stackset-execution-role.yaml")

    def build() -> list[tuple[object, bool]]:
        outcome = handler_proof.Outcome()
        return [(q, answer(q).allowed) for _, q in handler_proof.questions(replication, bootstrap, outcome)]

    rows = []
    builds = [_timed(build) for _ in range(ROUNDS)]
    pairs = builds[0][1]
    rows.append(("questions built and answered by the proof", len(pairs), median([t for t, _ in builds])))
    for label, dedupe in (("iam-simulate, distinct simulations (what the test sends)", True),
                          ("iam-simulate, every question (no deduplication)", False)):
        batch = simulate.Batch(dedupe=dedupe)
        for question, expect in pairs:
            batch.add(question, expect)
        runs = [_timed(lambda b=batch: simulate.run(b)) for _ in range(ROUNDS)]
        answers = runs[0][1]
        assert len(answers) == len(batch.simulations)
        rows.append((label, len(batch.simulations), median([t for t, _ in runs])))
    print(f"{'what':58} {'count':>7} {'seconds':>8} {'per second':>11}")
    for label, count, seconds in rows:
        print(f"{label:58} {count:>7,} {seconds:>8.2f} {count / seconds:>11,.0f}")


if __name__ == "__main__":
    main()
