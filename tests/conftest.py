"""Shared test setup: never reach a real AWS account, whatever the machine's environment says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ADMIN = "123456789012"
DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore >= 1.38 sends DynamoDB (streams) calls to account endpoints moto does not route.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID", "REPLCTL_SANDBOX",
          "REPLCTL_CONFIG", "NO_COLOR")

# What the caller had, for opt-in integration tests only.
_REAL_ENV = {k: v for k, v in os.environ.items() if k in set(_FAKE_AWS) | set(_UNSET)}
# Set at import time too: modules that build clients at import must never see real credentials.
os.environ.update(_FAKE_AWS)
for _name in _UNSET:
    os.environ.pop(_name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Integration tests touch a real AWS account: they run only with REPLCTL_INTEGRATION=1."""
    if os.environ.get("REPLCTL_INTEGRATION") == "1":
        return
    skip = pytest.mark.skip(reason="real-AWS test; opt in with REPLCTL_INTEGRATION=1 and real credentials")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if "integration" in request.keywords:
        for k, v in _REAL_ENV.items():  # the caller's own credentials and profile
            monkeypatch.setenv(k, v)
        for k in _FAKE_AWS:
            if k not in _REAL_ENV:
                monkeypatch.delenv(k, raising=False)
        return
    for k, v in _FAKE_AWS.items():
        monkeypatch.setenv(k, v)
    for k in _UNSET:
        monkeypatch.delenv(k, raising=False)
