"""boto3 clients, created lazily: local ones, and ones acting in another environment's account.

Cross-account calls go through the replication-agent role of the target account
(`arn:aws:iam::<acct>:role/replctl/<ReplicationRoleName>`), assumed with the external id. The
temporary credentials are cached per account and renewed a few minutes before they expire, so
a warm execution environment does not call STS on every invocation.

Clients are never created at import time: a client made before credentials or an endpoint are
in place (or before a test's AWS mock starts) would keep the wrong ones. `AWS_ENDPOINT_URL` is
honoured by botocore itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from replshared.settings import Settings

_RENEW_BEFORE_SECONDS = 300.0


def _client_config() -> Any:
    from botocore.config import Config

    # Adaptive retries back off on throttling (SSM PutParameter, DynamoDB) instead of failing.
    return Config(retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


class AwsClients:
    """Clients for one function's settings. `local` acts in this account, `remote` in another."""

    def __init__(
        self,
        settings: Settings,
        *,
        function: str,
        session_factory: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.function = function
        self._session_factory = session_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._local_session: Any = None
        self._local: dict[str, Any] = {}
        # account -> (expires_at epoch seconds, session, {service: client})
        self._remote: dict[str, tuple[float, Any, dict[str, Any]]] = {}

    def _new_session(self, **kwargs: Any) -> Any:
        if self._session_factory is not None:
            return self._session_factory(region_name=self.settings.region, **kwargs)
        import boto3

        return boto3.session.Session(region_name=self.settings.region, **kwargs)

    def local(self, service: str) -> Any:
        """A client acting in this function's own account."""
        with self._lock:
            if service not in self._local:
                if self._local_session is None:
                    self._local_session = self._new_session()
                self._local[service] = self._local_session.client(service, config=_client_config())
            return self._local[service]

    def remote(self, environment: str, service: str) -> Any:
        """A client acting in `environment`'s account through its replication-agent role."""
        account = self.settings.account_of(environment)
        with self._lock:
            entry = self._remote.get(account)
            if entry is None or entry[0] - self._clock() < _RENEW_BEFORE_SECONDS:
                entry = self._assume(environment)
                self._remote[account] = entry
            expires_at, session, clients = entry
            if service not in clients:
                clients[service] = session.client(service, config=_client_config())
            return clients[service]

    def for_environment(self, environment: str, service: str) -> Any:
        """Local client for this environment, assumed-role client for any other."""
        if environment == self.settings.environment:
            return self.local(service)
        return self.remote(environment, service)

    def _assume(self, environment: str) -> tuple[float, Any, dict[str, Any]]:
        if self._local_session is None:
            self._local_session = self._new_session()
        sts = self._local.get("sts")
        if sts is None:
            sts = self._local["sts"] = self._local_session.client("sts", config=_client_config())
        kwargs: dict[str, Any] = {
            "RoleArn": self.settings.role_arn(environment),
            "RoleSessionName": f"replctl-{self.function}-{self.settings.environment}-to-{environment}"[:64],
            "DurationSeconds": 3600,
        }
        if self.settings.external_id:
            kwargs["ExternalId"] = self.settings.external_id
        creds = sts.assume_role(**kwargs)["Credentials"]
        session = self._new_session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        expiration = creds.get("Expiration")
        expires_at = expiration.timestamp() if hasattr(expiration, "timestamp") else self._clock() + 3600
        return expires_at, session, {}


_CACHE: dict[tuple[Any, ...], AwsClients] = {}
_CACHE_LOCK = threading.Lock()


def clients_for(settings: Settings, function: str) -> AwsClients:
    """The cached clients of this execution environment for these settings and identity.

    The key includes the access key id in the environment, so a changed identity (or
    configuration) never reuses clients made for another one.
    """
    key = (settings, function, os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_ENDPOINT_URL"))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            if len(_CACHE) >= 16:
                _CACHE.clear()
            found = _CACHE[key] = AwsClients(settings, function=function)
        return found
