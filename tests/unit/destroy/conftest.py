"""A deployed fake estate (the real deploy against the scripted StackSet service) with data in
every account, for the teardown tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from replctl.config import Config, load_config
from replctl.deploy.plan import build_plan
from replctl.deploy.rollout import apply as deploy
from replctl.destroy.apply import DestroyLog, apply
from replctl.destroy.decide import decide
from replctl.destroy.fetch import fetch
from replctl.destroy.model import TeardownPlan
from tests.unit.deploy.fake_stacksets import DEV, PROD, REGION, STAGING, make_artifacts, write_estate
from tests.unit.deploy.test_rollout import Recording
from tests.unit.destroy.fake_data import Estate

ACCOUNTS = {"dev": DEV, "staging": STAGING, "prod": PROD}


class Teardown:
    def __init__(self, tmp_path: Path) -> None:
        self.config: Config = load_config(write_estate(tmp_path))
        self.estate = Estate()
        self.world = self.estate.world
        self.reporter = Recording()
        artifacts = make_artifacts(tmp_path)
        deploy(build_plan(self.config, self.world.clients(), artifacts=artifacts, lint=False), self.config,
               self.world.clients(), sleep=self.world.clock.sleep, clock=self.world.clock)
        for env, account in ACCOUNTS.items():
            acct = self.estate.at(account)
            acct.buckets[f"replctl-config-{env}-{account}"] = [("config/app.json", "v1", False)]
            acct.tables["replctl-metadata"] = {"protected": True, "status": "ACTIVE"}
            upstream = list(ACCOUNTS)[: list(ACCOUNTS).index(env) + 1]
            for u in upstream:  # its own hierarchy and the mirrors it received
                acct.parameters[f"/app/{u}/config/timeout"] = "1"
        self.calls_before = len(self.world.cfn.calls)

    def plan(self, *envs: str, delete_data: bool = False) -> TeardownPlan:
        facts = fetch(self.config, self.estate.clients(), envs, delete_data=delete_data)
        return decide(self.config, facts, envs, delete_data=delete_data)

    def apply(self, plan: TeardownPlan, log: DestroyLog | None = None) -> DestroyLog:
        return apply(plan, self.config, self.estate.clients(), reporter=self.reporter,
                     sleep=self.world.clock.sleep, clock=self.world.clock, log=log)

    def destroy(self, *envs: str, delete_data: bool = False) -> DestroyLog:
        return self.apply(self.plan(*envs, delete_data=delete_data))

    def instances(self) -> set[tuple[str, str]]:
        return set(self.world.cfn.instances)

    def flags(self, account: str) -> dict[str, str]:
        ov = self.world.cfn.instances[(account, REGION)].overrides
        return {k: v for k, v in ov.items() if k.startswith("ReplicateTo")}


@pytest.fixture()
def teardown(tmp_path: Path) -> Teardown:
    return Teardown(tmp_path)
