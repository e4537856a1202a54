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

# Set at import time too: modules that build clients at import must never see real credentials.
os.environ.update(_FAKE_AWS)
for _name in _UNSET:
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in _FAKE_AWS.items():
        monkeypatch.setenv(k, v)
    for k in _UNSET:
        monkeypatch.delenv(k, raising=False)
