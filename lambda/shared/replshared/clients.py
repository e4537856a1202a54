"""boto3 clients, created lazily: local ones, and ones acting in another environment's account.

Cross-account calls go through the replication-agent role of the target account
(`arn:aws:iam::<acct>:role/replctl/<ReplicationRoleName>`), assumed with the external id. The
temporary credentials are cached per account and renewed a few minutes before they expire, so
a warm execution environment does not call STS on every invocation. A failed AssumeRole (the
role is missing, the trust denies us, STS throttles) is remembered for a short while and raised
again without calling STS, so a batch of records bound for an unreachable account fails fast
instead of hammering STS once per record.

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
_RETRY_ASSUME_AFTER_SECONDS = 30.0


def _client_config() -> Any:
    from botocore.config import Config

    # Adaptive retries back off on throttling (SSM PutParameter, DynamoDB) instead of failing.
    return Config(retries={"mode": "adaptive", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def new_session(region: str | None) -> Any:
    """A boto3 session that shares botocore's service-model loader with every other one.

    Parsing the service models (S3's alone is megabytes of JSON) is most of a client's creation
    cost; sessions made for a new configuration or identity reuse the models already parsed.
    """
    import boto3
    import botocore.session

    global _LOADER
    core = botocore.session.get_session()
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, region_name=region)


class AwsClients:
    """Clients for one function's settings. `local` acts in this account, `remote` in another.

    One boto3 session serves every account (remote clients get the assumed credentials
    explicitly), so the service models are loaded once per execution environment.
    """

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
        self._lock = threading.RLock()
        self._session: Any = None
        self._local: dict[str, Any] = {}
        # account -> (expires_at epoch seconds, credentials, {service: client})
        self._remote: dict[str, tuple[float, dict[str, str], dict[str, Any]]] = {}
        # account -> (retry after, epoch seconds; the AssumeRole error)
        self._failed: dict[str, tuple[float, Exception]] = {}

    def _get_session(self) -> Any:
        if self._session is None:
            if self._session_factory is not None:
                self._session = self._session_factory(region_name=self.settings.region)
            else:
                self._session = new_session(self.settings.region)
        return self._session

    def local(self, service: str) -> Any:
        """A client acting in this function's own account."""
        with self._lock:
            if service not in self._local:
                self._local[service] = self._get_session().client(service, config=_client_config())
            return self._local[service]

    def remote(self, environment: str, service: str) -> Any:
        """A client acting in `environment`'s account through its replication-agent role."""
        account = self.settings.account_of(environment)
        with self._lock:
            entry = self._remote.get(account)
            if entry is None or entry[0] - self._clock() < _RENEW_BEFORE_SECONDS:
                usable = entry is not None and entry[0] > self._clock()  # expiring, not expired
                failed = self._failed.get(account)
                if failed is None or self._clock() >= failed[0]:
                    try:
                        entry = self._assume(environment)
                    except Exception as error:
                        self._failed[account] = (self._clock() + _RETRY_ASSUME_AFTER_SECONDS, error)
                        if not usable:
                            raise
                    else:
                        self._failed.pop(account, None)
                        self._remote[account] = entry
                elif not usable:
                    raise failed[1].with_traceback(None)
                assert entry is not None
            _, credentials, clients = entry
            if service not in clients:
                clients[service] = self._get_session().client(service, config=_client_config(), **credentials)
            return clients[service]

    def for_environment(self, environment: str, service: str) -> Any:
        """Local client for this environment, assumed-role client for any other."""
        if environment == self.settings.environment:
            return self.local(service)
        return self.remote(environment, service)

    def _assume(self, environment: str) -> tuple[float, dict[str, str], dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "RoleArn": self.settings.role_arn(environment),
            "RoleSessionName": f"replctl-{self.function}-{self.settings.environment}-to-{environment}"[:64],
            "DurationSeconds": 3600,
        }
        if self.settings.external_id:
            kwargs["ExternalId"] = self.settings.external_id
        creds = self.local("sts").assume_role(**kwargs)["Credentials"]
        credentials = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        expiration = creds.get("Expiration")
        expires_at = expiration.timestamp() if hasattr(expiration, "timestamp") else self._clock() + 3600
        return expires_at, credentials, {}


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
