"""Installed as users install it: the wheel, in a new virtual environment outside the repository.

Builds the wheel (`pip wheel . --no-deps`), creates a venv in a temporary directory, installs
`replctl[sandbox]` from the wheel (its dependencies resolved by pip as for any user, from the
package index or pip's cache), and then, from an empty directory, runs what a new user would:
`replctl init --no-input`, `sandbox start`, `--sandbox deploy --yes`, the monitor's scheduled run,
`status`, `drift`, `lint`, `package`, `sandbox reset`, `sandbox stop`. Every command runs from the installed
wheel, never from this checkout (asserted), and every JSON it prints is checked against its schema.

Slow (about a minute, most of it pip installing the dependencies; BENCHMARKS.md has the numbers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from replctl.resources import sources_digest
from replctl.sandbox.state import running_process
from tests import jsonschemas
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@dataclass
class Installed:
    venv: Path
    home: Path  # the empty directory the user works in
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def replctl(self) -> str:
        return str(self.venv / "bin" / "replctl")

    def run(self, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 300) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run([self.replctl, *args], cwd=self.home, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        self.timings[" ".join(args)] = time.monotonic() - started
        assert proc.returncode in ok, f"replctl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        return proc

    def json(self, command: str, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        """Run with `-o json`; the output must match the command's schema."""
        value = json.loads(self.run("-o", "json", *args, ok=ok).stdout)
        jsonschemas.check(command, value)
        return value


def _step(timings: dict[str, float], name: str, command: list[str], **kw: Any) -> None:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=900, **kw)
    timings[name] = time.monotonic() - started


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("wheel-install")
    assert REPO not in work.parents  # outside the repository
    timings: dict[str, float] = {}
    _step(timings, "pip wheel", [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"),
                                 str(REPO)])
    (wheel,) = (work / "dist").glob("replctl-*.whl")
    _step(timings, "venv", [sys.executable, "-m", "venv", str(work / "venv")])
    # The new venv's own pip, as a user's: it resolves replctl's declared dependencies. Byte-compiling
    # ~100 packages is a third of the install and this venv runs a dozen commands: --no-compile.
    _step(timings, "pip install", [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
                                   "--disable-pip-version-check", "--no-compile", f"replctl[sandbox] @ {wheel.as_uri()}"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "REPLCTL_SANDBOX_DIR")}
    env.update(NO_COLOR="1", COLUMNS="200")
    home = work / "estate"
    home.mkdir()
    box = Installed(work / "venv", home, env, timings)
    yield box
    box.run("sandbox", "stop", ok=(0,))  # never leave the emulator running, whatever failed
    print("\nwheel install timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in box.timings.items()))


def test_the_installed_tool_runs_from_the_wheel_with_its_bundled_sources(installed: Installed) -> None:
    where = subprocess.run([str(installed.venv / "bin" / "python"), "-c", "import replctl; print(replctl.__file__)"],
                           cwd=installed.home, env=installed.env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)  # not this checkout
    version = installed.run("--version").stdout.splitlines()
    digest = sources_digest()  # of this checkout's template and functions
    assert version[0] == "replctl 0.1.0"
    assert version[1].startswith(f"bundled sources sha256:{digest.combined} (installed: {installed.venv}")
    assert version[2:] == [f"  template  sha256:{digest.template}", f"  functions sha256:{digest.functions}"]


def test_init_sandbox_deploy_status_drift_from_an_empty_directory(installed: Installed) -> None:
    assert list(installed.home.iterdir()) == []
    init = installed.json("init", "init", "--no-input")
    assert init["files"] == ["environments.yaml", "environments.sandbox.yaml"]
    assert Path(init["template"]).is_relative_to(installed.venv)  # the bundled template, not a copy

    started = installed.json("sandbox-start", "sandbox", "start")
    assert started["started"] is True and started["bootstrap"]["admin"]["account"] == "123456789012"

    deploy = installed.run("--sandbox", "-o", "json", "deploy", "--yes")
    assert "not linted" not in deploy.stderr  # cfn-lint came with the wheel's dependencies
    result = json.loads(deploy.stdout)
    jsonschemas.check("deploy", result)
    assert result["result"] == "succeeded"
    assert result["completed"][:3] == ["dev", "staging", "prod"]
    assert {(i["environment"], i["status"]) for i in result["instances"]} == {
        ("dev", "CURRENT"), ("staging", "CURRENT"), ("prod", "CURRENT")}

    # The bundled handler code, run in-process by the installed tool against what it deployed.
    heartbeat = installed.json("sandbox-invoke", "--sandbox", "sandbox", "invoke", "replication-monitor", "--env", "dev")
    assert heartbeat["error"] is None and set(heartbeat["response"]["lag"]) == {"staging", "prod"}

    status = installed.json("status", "--sandbox", "status", ok=(0, 20, 21, 22))
    assert {t["facts"]["instance"]["status"] for e in status["environments"] for t in e["targets"]} == {"CURRENT"}
    dev = next(e for e in status["environments"] if e["name"] == "dev")
    assert {s["verdict"] for s in dev["targets"][0]["signals"] if s["signal"] == "metadata-lag"} == {"healthy"}

    drift = installed.json("drift", "--sandbox", "drift")
    assert drift["in_sync"] is True and "function-code" in drift["parity"]["checked"]  # deployed = bundled ZIPs

    # The deploy gate on its own (deploy above passed it), with replctl's rules from the wheel.
    bad = installed.home / "bad.yaml"
    bad.write_text((REPO / "tests" / "fixtures" / "templates" / "bad_trust_policy.yaml").read_text())
    refused = installed.json("lint", "lint", "--template", str(bad), ok=(5,))
    assert {f["rule"] for f in refused["findings"]} == {"E9103"}
    bad.unlink()

    artifacts = installed.json("package", "package")
    assert [a["function"] for a in artifacts] == ["replication_monitor", "config_validator", "stream_processor"]

    installed.json("sandbox-reset", "--sandbox", "sandbox", "reset")
    stopped = installed.json("sandbox-stop", "sandbox", "stop")
    assert stopped["stopped"] is True and not running_process(stopped["pid"])
