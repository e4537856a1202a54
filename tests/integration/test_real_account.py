"""Read-only checks against a real estate (opt in: REPLCTL_INTEGRATION=1, credentials for the
admin account, and REPLCTL_CONFIG pointing at the estate file). Nothing here mutates AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def replctl(*args: str) -> subprocess.CompletedProcess[str]:
    config = os.environ.get("REPLCTL_CONFIG", str(REPO / "environments.yaml"))
    return subprocess.run([sys.executable, "-m", "replctl", "--config", config, "-o", "json", *args],
                          text=True, capture_output=True, timeout=600, check=False)


def test_validate_accounts_reports_every_account() -> None:
    proc = replctl("validate-accounts")
    assert proc.returncode in (0, 4), proc.stderr
    report = json.loads(proc.stdout)
    assert report["checks"] and all("hint" in c for c in report["checks"])


def test_plan_is_read_only_and_renders() -> None:
    proc = replctl("plan")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == "plan"


def test_status_gives_a_verdict_per_environment() -> None:
    proc = replctl("status")
    assert proc.returncode in (0, 20, 21, 22), proc.stderr
    assert len(json.loads(proc.stdout)["environments"]) == 3
