"""The sandbox server's lifecycle: a background process with a pid file and a log.

State lives in a folder (default `.replctl/sandbox` under the current directory, or
`REPLCTL_SANDBOX_DIR`): `server.json` (pid, port, endpoint, start time) and `server.log`.
`start` is idempotent and waits until the server answers; `stop` terminates the process group
and waits for it to be gone, so nothing is left running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from replctl.errors import SandboxError

#: The sandbox's admin account is moto's default account: requests signed with the fake keys land there.
SANDBOX_ADMIN_ACCOUNT = "123456789012"
FAKE_KEY = "testing"


def state_dir() -> Path:
    return Path(os.environ.get("REPLCTL_SANDBOX_DIR", ".replctl/sandbox")).resolve()


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    endpoint: str
    started_at: float
    log: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _info_path() -> Path:
    return state_dir() / "server.json"


def read_info() -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads(_info_path().read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def running_process(pid: int) -> bool:
    """True while `pid` runs (an exited, unreaped zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has exited and waits to be reaped by its parent (the server outlives the
    `sandbox start` that spawned it, so its parent is init, which may reap it seconds later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs (macOS): kill(pid, 0) is all there is
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def healthy(endpoint: str, timeout: float = 2.0) -> bool:
    """True when the emulator answers its management API."""
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/config", timeout=timeout) as resp:  # noqa: S310
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


def running() -> ServerInfo | None:
    """The running server, or None (stale state files are removed)."""
    info = read_info()
    if info is None:
        return None
    if not running_process(info.pid):
        _info_path().unlink(missing_ok=True)
        return None
    return info


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int = 0, *, wait_seconds: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> tuple[ServerInfo, bool]:
    """Start the server in the background (or find it running). Returns (info, started_now)."""
    current = running()
    if current is not None:
        if healthy(current.endpoint):
            return current, False
        raise SandboxError(f"a sandbox process (pid {current.pid}) exists but does not answer at {current.endpoint}",
                           hint="run `replctl sandbox stop`, then start again")
    port = port or _free_port()
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    log_path = d / "server.log"
    forget_queued_events()  # a new emulator holds none of the functions the old queue named
    endpoint = f"http://127.0.0.1:{port}"
    if healthy(endpoint, timeout=0.5):
        raise SandboxError(f"port {port} is already in use", hint="pass another --port")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "replctl.sandbox.server", "--port", str(port), "--state-dir", str(d)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "MOTO_PORT": str(port)},
        )
    info = ServerInfo(proc.pid, port, endpoint, time.time(), str(log_path))
    _info_path().write_text(json.dumps(info.to_dict(), indent=2))
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _info_path().unlink(missing_ok=True)
            raise SandboxError(f"the sandbox server exited at start (code {proc.returncode})",
                               hint=f"see {log_path}")
        if healthy(endpoint, timeout=1.0):
            return info, True
        sleep(0.1)
    stop_server()
    raise SandboxError(f"the sandbox server did not answer within {wait_seconds:.0f} s", hint=f"see {log_path}")


def stop_server(*, wait_seconds: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> ServerInfo | None:
    """Stop the server and wait until its process group is gone. Returns what was stopped."""
    info = read_info()
    if info is None:
        return None
    if running_process(info.pid):
        try:
            os.killpg(info.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait_seconds
        while running_process(info.pid) and time.monotonic() < deadline:
            sleep(0.05)
        if running_process(info.pid):
            try:
                os.killpg(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while running_process(info.pid):
                sleep(0.05)
    _info_path().unlink(missing_ok=True)
    return info


def forget_queued_events() -> None:
    """Empty the functions' asynchronous invocation queues (a new or reset emulator)."""
    shutil.rmtree(state_dir() / "async-invoke", ignore_errors=True)


def post(endpoint: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST to the emulator's management API (reset, config)."""
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(f"{endpoint}{path}", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            text = resp.read().decode() or "{}"
    except (urllib.error.URLError, OSError) as exc:
        raise SandboxError(f"the sandbox at {endpoint} did not accept {path}: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError:
        return {}


def sandbox_endpoint(announce: Callable[[str], None] | None = None) -> str:
    """The running sandbox's endpoint, or a SandboxError saying how to start it."""
    info = running()
    if info is None:
        raise SandboxError("the sandbox is not running", hint="run `replctl sandbox start` first")
    return info.endpoint


def sandbox_session(region: str | None) -> Any:
    """A boto3 session with the emulator's fake keys (requests land in the admin account)."""
    import boto3

    return boto3.Session(aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY,
                         region_name=region or "us-east-1")
