"""The one factory for AWS sessions and clients.

Everything that talks to AWS receives a client built here, which is what lets tests swap in
moto, botocore's Stubber or a fake. The factory owns: the caller's profile and region, the
endpoint override (`--endpoint-url`; boto3 itself honours `AWS_ENDPOINT_URL`), adaptive
retries (throttling during a rollout is retried with client-side rate limiting), and
assume-role sessions per (account, role, region) whose credentials refresh themselves — a prod
rollout can outlive a one-hour token. Failures to find credentials or a region, or to assume a
role, become `AwsAccessError`s with a message that says what to do, never a traceback.

boto3 is imported lazily so `replctl --help` stays fast.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from replctl import __version__
from replctl.errors import AwsAccessError, ReplctlError

if TYPE_CHECKING:  # pragma: no cover
    import boto3

#: Mutating API operations start with one of these verbs; used to count and forbid them.
MUTATING_PREFIXES = (
    "Create", "Update", "Delete", "Put", "Stop", "Start", "Detect", "Set", "Tag", "Untag",
    "Attach", "Detach", "Upload", "Copy", "Import", "Register", "Deregister", "Enable", "Disable",
    "Invoke", "Send", "Publish", "Execute", "Cancel", "Add", "Remove", "Modify", "Restore",
    "Complete", "Abort", "Batch", "Transact", "Write", "Increase", "Decrease", "Reset",
)
#: Calls that start with a mutating-looking verb but change nothing.
_READ_ONLY_EXCEPTIONS = frozenset({"AssumeRole", "GetCallerIdentity", "BatchGetItem"})


def is_mutating(operation: str) -> bool:
    """True when the API operation (e.g. 'CreateStackSet') changes state."""
    if operation in _READ_ONLY_EXCEPTIONS:
        return False
    return operation.startswith(MUTATING_PREFIXES)


@dataclass(frozen=True)
class AwsSettings:
    """What the global command-line options say about reaching AWS."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    #: Static keys in place of the profile's credential chain (the sandbox's fake keys).
    access_keys: tuple[str, str] | None = None
    max_attempts: int = 10
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


@dataclass(frozen=True)
class Call:
    """One API call made through the factory: for counting, dry-run guarantees, and the offline
    permission proof, which maps it to the IAM request AWS would authorise (`params` are the call's
    parameters as given; `role_arn` is the role the client acts as, None for the caller's own identity)."""

    service: str
    operation: str
    account: str
    region: str
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    role_arn: str | None = None

    @property
    def mutating(self) -> bool:
        return is_mutating(self.operation)


class SessionFactory:
    """Builds and caches sessions and clients; one instance per command run.

    `account=None` means the caller's own (admin) identity; otherwise the factory assumes
    `role_arn` in that account with refreshable credentials.
    """

    def __init__(
        self,
        settings: AwsSettings | None = None,
        *,
        admin_role_arn: str | None = None,
    ) -> None:
        self.settings = settings or AwsSettings()
        self.admin_role_arn = admin_role_arn
        self._base: boto3.Session | None = None
        self._loader: Any = None  # the base session's botocore data loader, shared (see _assumed)
        self._sessions: dict[tuple[str | None, str | None], boto3.Session] = {}
        self._clients: dict[tuple[str, str, str | None, str | None], Any] = {}
        self._lock = threading.RLock()
        self._assuming: dict[tuple[str, str | None], threading.Lock] = {}
        self._listeners: list[Callable[[Call], None]] = []
        self._client_hooks: list[Callable[[str, str | None, Any], None]] = []

    # -- observation ----------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Call], None]) -> None:
        """Call `listener` before every API call made by clients from this factory."""
        self._listeners.append(listener)

    def add_client_hook(self, hook: Callable[[str, str | None, Any], None]) -> None:
        """Call `hook(service, account, client)` on every client this factory creates."""
        self._client_hooks.append(hook)

    # -- sessions ---------------------------------------------------------------------------

    def base_session(self) -> boto3.Session:
        with self._lock:
            if self._base is None:
                import boto3
                import botocore.session
                from botocore.exceptions import ProfileNotFound

                core = botocore.session.get_session()
                self._loader = core.get_component("data_loader")
                keys = self.settings.access_keys or (None, None)
                try:
                    self._base = boto3.Session(botocore_session=core, profile_name=self.settings.profile,
                                               region_name=self.settings.region,
                                               aws_access_key_id=keys[0], aws_secret_access_key=keys[1])
                    core.get_scoped_config()  # reads the profile now: a missing one is told here
                except ProfileNotFound:
                    raise AwsAccessError(
                        f"AWS profile '{self.settings.profile}' is not configured",
                        hint="check ~/.aws/config, or pass another --profile",
                    ) from None
            return self._base

    def region(self, region: str | None = None) -> str:
        """The region to use: explicit, else --region, else the profile's/environment's."""
        chosen = region or self.settings.region or self.base_session().region_name
        if not chosen:
            raise AwsAccessError(
                "no AWS region is set",
                hint="pass --region, set AWS_REGION, or set stackset.home_region in environments.yaml",
            )
        return chosen

    def _admin_session(self) -> boto3.Session:
        if self.admin_role_arn is None:
            return self.base_session()
        return self._assumed(self.admin_role_arn, "replctl-admin", None)

    def session(self, account: str | None = None, role_arn: str | None = None,
                external_id: str | None = None) -> boto3.Session:
        """The caller's session (account None) or a refreshable assume-role session."""
        if account is None or role_arn is None:
            return self._admin_session()
        return self._assumed(role_arn, f"replctl-{account}", external_id)

    def _assumed(self, role_arn: str, session_name: str, external_id: str | None) -> boto3.Session:
        key = (role_arn, external_id)
        with self._lock:
            cached = self._sessions.get(key)
            if cached is not None:
                return cached
            # One AssumeRole per role, and no factory-wide lock across its round trip: threads
            # reading other accounts (status reads every account in parallel) go on meanwhile.
            pending = self._assuming.setdefault(key, threading.Lock())
        with pending:
            with self._lock:
                cached = self._sessions.get(key)
            if cached is not None:
                return cached
            import boto3
            import botocore.session
            from botocore.credentials import CredentialResolver, RefreshableCredentials

            # Target-account roles are assumed from the admin identity (itself assumed when
            # admin.role_arn is configured); the admin role from the caller's own credentials.
            if role_arn == self.admin_role_arn:
                source = self.base_session()
                with self._lock:
                    sts = self._make_client(source, "sts", self.region(), None, None)
            else:
                source = self._admin_session()
                sts = self.client("sts")  # as the admin identity; cached, like every client

            def fetch() -> dict[str, str]:
                kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name[:64]}
                if external_id:
                    kwargs["ExternalId"] = external_id
                try:
                    creds = sts.assume_role(**kwargs)["Credentials"]
                except Exception as exc:  # translated: the caller sees which role and why
                    raise assume_role_error(role_arn, exc) from exc
                expiry = creds["Expiration"]
                if isinstance(expiry, datetime):
                    expiry = expiry.astimezone(timezone.utc).isoformat()
                return {
                    "access_key": creds["AccessKeyId"],
                    "secret_key": creds["SecretAccessKey"],
                    "token": creds["SessionToken"],
                    "expiry_time": expiry,
                }

            first = fetch()  # the network round trip, outside the factory-wide lock
            with self._lock:
                refreshable = RefreshableCredentials.create_from_metadata(
                    metadata=first, refresh_using=fetch, method="sts-assume-role"
                )
                core = botocore.session.get_session()
                # Share the parsed service models with the base session: loading them is the
                # expensive part of making a client, and they do not depend on credentials.
                core.register_component("data_loader", self._loader)
                # The session resolves its credentials through this resolver, which knows one source.
                core.register_component("credential_provider", CredentialResolver([_provider_of(refreshable)]))
                session = boto3.Session(botocore_session=core, region_name=source.region_name)
                self._sessions[key] = session
            return session

    # -- clients ----------------------------------------------------------------------------

    def client(self, service: str, *, region: str | None = None, account: str | None = None,
               role_arn: str | None = None, external_id: str | None = None) -> Any:
        """A cached client for `service` in `region`, as the caller or as `role_arn` in `account`."""
        reg = self.region(region)
        key = (service, reg, account if role_arn else None, role_arn)
        with self._lock:
            cached = self._clients.get(key)
        if cached is not None:
            return cached
        session = self.session(account, role_arn, external_id)  # may assume a role: not under the lock
        with self._lock:
            cached = self._clients.get(key)
            if cached is None:
                cached = self._clients[key] = self._make_client(session, service, reg, account, role_arn)
            return cached

    def _make_client(self, session: boto3.Session, service: str, region: str, account: str | None,
                     role_arn: str | None) -> Any:
        from botocore.config import Config

        s = self.settings
        config = Config(
            retries={"mode": "adaptive", "max_attempts": s.max_attempts},
            user_agent_extra=f"replctl/{__version__}",
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
        )
        kwargs: dict[str, Any] = {"region_name": region, "config": config}
        if s.endpoint_url:
            kwargs["endpoint_url"] = s.endpoint_url
        try:
            client = session.client(service, **kwargs)
        except Exception as exc:
            raise translate(exc) from exc
        who = account or "caller"

        def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            # provide-client-params sees the call's parameters; before-call only the serialized request.
            context["replctl_params"] = dict(params)

        def before_call(model: Any = None, context: dict[str, Any] | None = None, **_: Any) -> None:
            params = (context or {}).get("replctl_params", {})
            call = Call(service, getattr(model, "name", "?"), who, region, params, role_arn)
            for listener in list(self._listeners):
                listener(call)

        client.meta.events.register("provide-client-params.*.*", keep_params)
        client.meta.events.register("before-call.*.*", before_call)
        for hook in self._client_hooks:
            hook(service, account, client)
        return client

    def caller_identity(self) -> dict[str, str]:
        """sts:GetCallerIdentity as the caller; proves credentials and endpoint work."""
        sts = self.client("sts")
        try:
            ident = sts.get_caller_identity()
        except Exception as exc:
            raise translate(exc) from exc
        return {"Account": ident["Account"], "Arn": ident["Arn"], "UserId": ident.get("UserId", "")}


def _provider_of(credentials: Any) -> Any:
    """A botocore credential provider that hands out `credentials` (refreshable assume-role ones)."""
    from botocore.credentials import CredentialProvider

    class Assumed(CredentialProvider):  # type: ignore[misc]
        METHOD = "sts-assume-role"

        def load(self) -> Any:
            return credentials

    return Assumed()


def assume_role_error(role_arn: str, exc: BaseException) -> AwsAccessError:
    """The message for a failed AssumeRole, naming the role and the likely fix."""
    if isinstance(exc, ReplctlError):
        return AwsAccessError(f"cannot assume {role_arn}: {exc.message}", hint=exc.hint)
    detail = _client_error_message(exc) or str(exc)
    return AwsAccessError(
        f"cannot assume {role_arn}: {detail}",
        hint="check that the role exists, trusts the account you run replctl from, and that your "
        "identity may call sts:AssumeRole on it (replctl validate-accounts checks this)",
    )


def _client_error_message(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code, msg = err.get("Code"), err.get("Message")
        if code or msg:
            return f"{code}: {msg}" if code and msg else str(code or msg)
    return None


#: AWS error codes that mean "slow down", not "this failed".
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
    "ProvisionedThroughputExceededException",
})


def is_transient(exc: BaseException) -> bool:
    """True for throttling and connection hiccups, which a later poll may get past."""
    if error_code(exc) in THROTTLING_CODES:
        return True
    from botocore import exceptions as bx

    return isinstance(exc, bx.ConnectionClosedError | bx.ReadTimeoutError | bx.EndpointConnectionError)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def translate(exc: BaseException) -> ReplctlError:
    """Turn a botocore exception into a ReplctlError with a hint; anything else passes through."""
    if isinstance(exc, ReplctlError):
        return exc
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError):
        return AwsAccessError(
            "no AWS credentials found",
            hint="pass --profile, set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or try everything locally with --sandbox",
        )
    if isinstance(exc, bx.NoRegionError):
        return AwsAccessError("no AWS region is set", hint="pass --region or set AWS_REGION")
    if isinstance(exc, bx.ProfileNotFound):
        return AwsAccessError(str(exc), hint="check ~/.aws/config, or pass another --profile")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return AwsAccessError(
            f"cannot reach the AWS endpoint ({exc})",
            hint="check --endpoint-url / AWS_ENDPOINT_URL and your network; for the local sandbox run "
            "`replctl sandbox start`",
        )
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOTokenLoadError):
        return AwsAccessError(f"cannot load credentials: {exc}", hint="run `aws sso login` for this profile")
    if isinstance(exc, ValueError) and str(exc).startswith("Invalid endpoint"):
        # botocore refuses a malformed AWS_ENDPOINT_URL (or profile endpoint_url) when a client is made.
        return AwsAccessError(f"{exc} (from AWS_ENDPOINT_URL or the profile's endpoint_url)",
                              hint="set it to an http(s) URL, or unset it")
    code = error_code(exc)
    if code in THROTTLING_CODES:
        op = getattr(exc, "operation_name", "an AWS call")
        return AwsAccessError(f"AWS kept throttling {op} ({code}) after the SDK's retries",
                              hint="another client is probably calling the same API heavily; wait a minute and "
                              "re-run (replctl resumes from what AWS reports)")
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return AwsAccessError("the AWS session token has expired", hint="refresh your credentials and re-run")
    if code in ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                "InvalidAccessKeyId", "AuthFailure"):
        return AwsAccessError(f"AWS rejected the credentials ({code})",
                              hint="check the profile or access keys you are using")
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return AwsAccessError(f"access denied: {_client_error_message(exc)}",
                              hint="your identity lacks a permission for this call")
    if isinstance(exc, bx.ClientError):
        op = getattr(exc, "operation_name", "an AWS call")
        return ReplctlError(f"{op} failed: {_client_error_message(exc)}")
    if isinstance(exc, bx.BotoCoreError):
        return ReplctlError(f"AWS SDK error: {exc}")
    return ReplctlError(str(exc))
