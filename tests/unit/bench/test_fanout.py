"""What the status fan-out benchmark relies on: its generated estate, and readers that overlap.

The fan-out only pays off when the factory lets threads wait on the network together. Before the
benchmark the factory held its one lock across AssumeRole's round trip, so every account's first
call queued behind the others'. These tests pin that down without timing anything: each
AssumeRole waits at a barrier until all of them have started, which only happens if nothing
serialises them.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from moto import mock_aws

from bench.status_fanout import accounts, write_config
from replctl.aws import AwsSettings, SessionFactory
from replctl.config import load_config

ACCOUNTS = [f"44440000000{i}" for i in range(4)]


def test_generated_estate_has_the_asked_number_of_accounts(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, 20))
    assert [e.name for e in config.environments] == ["dev", "staging", "prod"]
    assert [len(e.account_ids) for e in config.environments] == [20, 20, 20]
    every = [a for e in config.environments for a in e.account_ids]
    assert len(set(every)) == 60 and all(len(a) == 12 and a.isdigit() for a in every)
    assert accounts("dev", 1) == ["111111111111"]


def test_roles_in_different_accounts_are_assumed_at_the_same_time() -> None:
    barrier = threading.Barrier(len(ACCOUNTS), timeout=10)

    def wait_for_the_others(call) -> None:
        if call.operation == "AssumeRole":
            barrier.wait()  # raises BrokenBarrierError if the calls are made one at a time

    with mock_aws():
        factory = SessionFactory(AwsSettings(region="us-east-1"))
        factory.add_listener(wait_for_the_others)
        factory.client("sts")  # the caller's own client exists before the fan-out, as in status

        def read(account: str) -> str:
            role = f"arn:aws:iam::{account}:role/replctl/replctl-observer"
            return factory.client("sts", account=account, role_arn=role).get_caller_identity()["Account"]

        with ThreadPoolExecutor(max_workers=len(ACCOUNTS)) as pool:
            assert list(pool.map(read, ACCOUNTS)) == ACCOUNTS


def test_one_role_is_assumed_once_however_many_threads_want_it() -> None:
    calls = []
    with mock_aws():
        factory = SessionFactory(AwsSettings(region="us-east-1"))
        factory.add_listener(calls.append)
        role = f"arn:aws:iam::{ACCOUNTS[0]}:role/replctl/replctl-observer"
        with ThreadPoolExecutor(max_workers=8) as pool:
            clients = list(pool.map(lambda _: factory.client("s3", account=ACCOUNTS[0], role_arn=role), range(16)))
    assert len({id(c) for c in clients}) == 1
    assert [c.operation for c in calls] == ["AssumeRole"]
