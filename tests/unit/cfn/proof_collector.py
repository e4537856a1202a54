"""A pytest plugin that keeps the call proof's questions, for the differential test.

tests/functional/conftest.py records every AWS call a functional test makes and proves it when the
test ends (tests/callproof.py). With REPLCTL_PROOF_QUESTIONS naming a file, this plugin proves each
test's recording once more after its teardown and writes every (test, question, decision) there
when the session ends; tests/unit/cfn/test_differential_proof.py runs a few functional tests with it
(`-p tests.unit.cfn.proof_collector`) and puts those questions to iam-simulate.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import callproof
from tests.callrecord import Recording

ENV = "REPLCTL_PROOF_QUESTIONS"


class Collector:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.found: list[tuple[str, Any, Any]] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        yield
        recording = getattr(item, "funcargs", {}).get("aws_calls")
        if isinstance(recording, Recording):
            self.found += [(item.nodeid, v.question, v.decision) for v in callproof.prove(recording)]

    def pytest_sessionfinish(self) -> None:
        self.out.write_bytes(pickle.dumps(self.found))


def pytest_configure(config: pytest.Config) -> None:
    out = os.environ.get(ENV)
    if out:
        config.pluginmanager.register(Collector(Path(out)), "replctl-proof-collector")
