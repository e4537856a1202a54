"""Lambda's asynchronous invocation queue, as the sandbox plays it.

EventBridge invokes a Lambda target asynchronously: "Lambda places the event in a queue and
returns a success response ... A separate process reads events from the queue and sends them to
your function" (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html). moto cannot
run functions, so the emulator (`replctl.sandbox.adapt.eventbridge`) puts each event a
rule routes to a Lambda target here, and `replctl sandbox invoke FUNCTION --kind queued` is the
separate process that takes them and runs the real handler with each.

The emulator and the CLI are different processes, so the queue is a folder of JSON-lines files
(one per function, account and region) under the sandbox's state folder, appended and drained
under an exclusive file lock. Tests that run moto in-process use `MemoryQueue` instead.
"""

from __future__ import annotations

import fcntl
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class QueuedEvent:
    """One event a rule routed to a Lambda target, waiting for the function to run."""

    account: str
    region: str
    function: str  # function name (the target ARN's last part)
    rule: str  # the rule that matched
    event: dict[str, Any]  # the event as EventBridge delivers it to the function

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventQueue(Protocol):
    def put(self, item: QueuedEvent) -> None: ...

    def take(self, account: str, region: str, function: str) -> list[QueuedEvent]: ...


class FileQueue:
    """The queue shared by the emulator process (put) and `sandbox invoke` (take)."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "async-invoke"
        self._lock = threading.Lock()

    def _path(self, account: str, region: str, function: str) -> Path:
        return self.root / f"{_SAFE.sub('_', account)}.{_SAFE.sub('_', region)}.{_SAFE.sub('_', function)}.jsonl"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def put(self, item: QueuedEvent) -> None:
        with self._locked(), open(self._path(item.account, item.region, item.function), "a") as f:
            f.write(json.dumps(item.to_dict(), sort_keys=True, default=str) + "\n")

    def take(self, account: str, region: str, function: str) -> list[QueuedEvent]:
        """Every event queued for the function, oldest first; the queue is left empty."""
        return self._read(account, region, function, remove=True)

    def peek(self, account: str, region: str, function: str) -> list[QueuedEvent]:
        """Every event queued for the function, left in the queue."""
        return self._read(account, region, function, remove=False)

    def _read(self, account: str, region: str, function: str, *, remove: bool) -> list[QueuedEvent]:
        path = self._path(account, region, function)
        with self._locked():
            try:
                lines = path.read_text().splitlines()
            except FileNotFoundError:
                return []
            if remove:
                path.unlink()
        return [QueuedEvent(**json.loads(line)) for line in lines if line.strip()]


class MemoryQueue:
    """The same queue inside one process (moto in-process, in tests)."""

    def __init__(self) -> None:
        self.items: list[QueuedEvent] = []
        self._lock = threading.Lock()

    def put(self, item: QueuedEvent) -> None:
        with self._lock:
            self.items.append(item)

    def take(self, account: str, region: str, function: str) -> list[QueuedEvent]:
        with self._lock:
            mine = [i for i in self.items if (i.account, i.region, i.function) == (account, region, function)]
            self.items = [i for i in self.items if i not in mine]
        return mine
