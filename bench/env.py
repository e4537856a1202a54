"""The process environment the moto sections run in: fake credentials, never a real account."""

from __future__ import annotations

import os

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore >= 1.38 sends DynamoDB calls to account endpoints that moto does not route.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID", "REPLCTL_SANDBOX",
         "REPLCTL_CONFIG", "NO_COLOR")


def use_fake_aws() -> None:
    """Point every SDK call made by this process at fake credentials (moto answers them)."""
    os.environ.update(FAKE_AWS)
    for name in UNSET:
        os.environ.pop(name, None)
