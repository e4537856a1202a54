"""Recording every AWS call the functional tests make, for the offline permission proof.

Two kinds of caller, recorded through their own public seams:
- the CLI: every `replctl.aws.SessionFactory` reports each call to its listeners (`Call`: service,
  operation, parameters, account, region, and the role the client acts as); the estate file in use
  is whichever `Config` the test built last;
- the functions: every client a handler gets from `replshared.clients.AwsClients` (`local` acts as
  the function's role in its own account, `remote` as the replication-agent role of another
  environment's account), with the function's `Settings`.

Nothing here decides anything: `tests/callproof.py` maps each recorded call to the IAM request AWS
would authorise and evaluates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass(frozen=True)
class CliCall:
    """A call made through the factory, with the estate file it was made for (None: none was loaded)."""

    service: str
    operation: str
    account: str  # "caller" for the operator's own identity
    region: str
    params: Mapping[str, Any]
    role_arn: str | None
    config: Any


@dataclass(frozen=True)
class FunctionCall:
    """A call a handler made; `target` is None for its own account, else the environment whose
    replication-agent role the client acts as."""

    function: str
    settings: Any
    target: str | None
    service: str
    operation: str
    params: Mapping[str, Any]


@dataclass
class Recording:
    cli: list[CliCall] = field(default_factory=list)
    functions: list[FunctionCall] = field(default_factory=list)
    configs: list[Any] = field(default_factory=list)


def _record_factories(monkeypatch: pytest.MonkeyPatch, recording: Recording) -> None:
    from replctl import aws, config

    original_init = aws.SessionFactory.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.add_listener(lambda call: recording.cli.append(CliCall(
            call.service, call.operation, call.account, call.region, dict(call.params), call.role_arn,
            recording.configs[-1] if recording.configs else None)))

    monkeypatch.setattr(aws.SessionFactory, "__init__", init)
    original_config = config.Config.__init__

    def config_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_config(self, *args, **kwargs)
        recording.configs.append(self)

    monkeypatch.setattr(config.Config, "__init__", config_init)


def _record_functions(monkeypatch: pytest.MonkeyPatch, recording: Recording) -> None:
    from tests import fnkit  # noqa: F401  (puts lambda/shared on sys.path)

    from replshared import clients

    def hooked(original: Any, remote: bool) -> Any:
        def get(self: Any, *args: Any) -> Any:
            client = original(self, *args)
            target = args[0] if remote else None
            marker = ("replctl-proof", target)
            if getattr(client, "_replctl_proof_marker", None) != marker:
                def keep(params: dict[str, Any], model: Any = None, **_: Any) -> None:
                    recording.functions.append(FunctionCall(self.function, self.settings, target,
                                                            client.meta.service_model.service_name,
                                                            model.name, dict(params)))
                client.meta.events.register("provide-client-params.*.*", keep)
                client._replctl_proof_marker = marker  # noqa: SLF001 - once per client
            return client
        return get

    monkeypatch.setattr(clients.AwsClients, "local", hooked(clients.AwsClients.local, remote=False))
    monkeypatch.setattr(clients.AwsClients, "remote", hooked(clients.AwsClients.remote, remote=True))


def start_recording(monkeypatch: pytest.MonkeyPatch) -> Recording:
    """Record every call from now until `monkeypatch` is undone (the end of the test)."""
    recording = Recording()
    _record_factories(monkeypatch, recording)
    _record_functions(monkeypatch, recording)
    return recording
