"""The typer commands: parse, build objects, call one core function, render, map errors.

No boto3 call and no decision lives here. Every command is wrapped by `guarded`, the single
place where a `ReplctlError` becomes a message on stderr and its fixed exit code (`--debug`
re-raises instead, for the traceback). Global options may be written before or after the
command name (`replctl status --output json` works like `replctl --output json status`).
Heavy modules (boto3, the cores) are imported inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.core import TyperGroup

from replctl import __version__
from replctl.errors import ExitCode, ReplctlError
from replctl.render import Output

if TYPE_CHECKING:  # pragma: no cover
    from replctl.aws import SessionFactory
    from replctl.config import Config

F = TypeVar("F", bound=Callable[..., Any])

#: Global options that take a value / are flags; hoisted in front of the command name.
_VALUE_OPTIONS = {"--config", "-c", "--profile", "--region", "--endpoint-url", "--output", "-o"}
_FLAG_OPTIONS = {"--no-color", "--debug", "--sandbox"}


class _GlobalOptionsAnywhere(TyperGroup):
    """Accept global options after the command name too, as the AWS CLI does."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args, set(self.commands)))

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        defer_coercion(params)
        return params


class _CoerceOnFirstValue:
    """Stands in for typer's coercion of one option until it is given a value other than None."""

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self._build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        real = param._runtime_param = self._build(param.type_descriptor)  # noqa: SLF001
        return real.coerce(value, param=param, ctx=ctx)


def defer_coercion(params: Sequence[Any]) -> None:
    """Let options left at their None default skip typer's coercion.

    typer (0.2x) coerces every option through a pydantic TypeAdapter it builds on first use, even
    an option left at None, and the first one imports pydantic (~100 ms). `replctl status --help`
    processes the global options without using any of them (BENCHMARKS.md, start-up). An option
    given a value still goes through typer's own coercion. With a typer that coerces
    differently this does nothing.
    """
    try:
        from typer._coercion import build_runtime_param
    except ImportError:  # pragma: no cover - another typer
        return
    for param in params:
        if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
            param._runtime_param = _CoerceOnFirstValue(build_runtime_param)  # noqa: SLF001


def hoist_global_options(args: list[str], commands: set[str]) -> list[str]:
    """Move global options found after the first command name to before it."""
    front: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return args
        if a in commands:
            break
        front.append(a)
        if a in _VALUE_OPTIONS and i + 1 < len(args):
            front.append(args[i + 1])
            i += 1
        i += 1
    else:
        return args
    hoisted: list[str] = []
    rest: list[str] = []
    j = i
    while j < len(args):
        a = args[j]
        if a == "--":
            rest.extend(args[j:])
            break
        name = a.split("=", 1)[0]
        if name in _VALUE_OPTIONS and name.startswith("--") or a in _VALUE_OPTIONS:
            if "=" in a:
                hoisted.append(a)
            elif j + 1 < len(args):
                hoisted.extend(args[j: j + 2])
                j += 1
            else:
                rest.append(a)
        elif a in _FLAG_OPTIONS:
            hoisted.append(a)
        else:
            rest.append(a)
        j += 1
    return front + hoisted + rest


app = typer.Typer(
    name="replctl",
    cls=_GlobalOptionsAnywhere,
    help=(
        "Roll the configuration-replication framework out across AWS accounts with "
        "CloudFormation StackSets, strictly dev → staging → prod, and report its health.\n\n"
        "Start with `replctl validate-accounts`, then `replctl plan` and `replctl deploy`. "
        "Try it all locally with `replctl sandbox start` and `--sandbox`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


@dataclass
class State:
    """Global options, and the objects built from them on first use."""

    config_path: Path | None
    profile: str | None
    region: str | None
    endpoint_url: str | None
    output: Output
    debug: bool = False
    sandbox: bool = False
    command: str = ""
    _config: Config | None = field(default=None, repr=False)
    _factory: SessionFactory | None = field(default=None, repr=False)

    def config(self) -> Config:
        if self._config is None:
            from replctl.config import load_config

            path = self.config_path
            if path is None:
                path = Path("environments.sandbox.yaml" if self.sandbox else "environments.yaml")
            self._config = load_config(path)
        return self._config

    def factory(self) -> SessionFactory:
        if self._factory is None:
            from replctl.aws import AwsSettings, SessionFactory

            config = self.config()
            endpoint = self.endpoint_url
            if self.sandbox:
                from replctl.sandbox.state import sandbox_endpoint

                endpoint = endpoint or sandbox_endpoint(announce=self.output.note)
            settings = AwsSettings(
                profile=None if self.sandbox else self.profile,
                region=self.region or config.stackset.home_region,
                endpoint_url=endpoint,
            )
            base = None
            if self.sandbox:
                from replctl.sandbox.state import sandbox_session

                base = sandbox_session(settings.region)
            self._factory = SessionFactory(settings, admin_role_arn=config.admin.role_arn, base_session=base)
            if self.sandbox:
                from replctl.sandbox.adapt import install_stackset_emulation, notes_for

                install_stackset_emulation(self._factory, config.stackset.execution_role_name)
                for note in notes_for(self.command):
                    self.output.note(f"sandbox: {note}")
        return self._factory


def state(ctx: typer.Context) -> State:
    return ctx.find_root().obj  # type: ignore[no-any-return]


def guarded(fn: F) -> F:
    """The single catch site: ReplctlError → stderr + its exit code; Ctrl-C → 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        st = state(kwargs["ctx"])
        st.command = kwargs["ctx"].info_name or ""
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except ReplctlError as exc:
            if st.debug:
                raise
            st.output.error(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            st.output.error("interrupted; nothing half-done is left that a re-run cannot resume")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:
            if st.debug:
                raise
            from replctl.aws import translate

            translated = translate(exc) if type(exc).__module__.startswith("botocore") else None
            if translated is not None:
                st.output.error(str(translated))
                raise typer.Exit(int(translated.exit_code)) from None
            st.output.error(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for details)")
            raise typer.Exit(int(ExitCode.FAILURE)) from None

    return wrapper  # type: ignore[return-value]


def _endpoint(value: str | None) -> str | None:
    """--endpoint-url must be an http(s) URL: botocore would otherwise fail later, deep in a call."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # e.g. a port that is not a number
        ok = False
    if not ok:
        raise typer.BadParameter(f"{value!r} is not an http(s) URL like https://cloudformation.us-east-1.amazonaws.com")
    return value


def _version(value: bool) -> None:
    """The tool version, and the digest of what it deploys: an upgrade that changes the template or
    the functions changes the second line (the plan then shows the template diff)."""
    if value:
        from replctl.resources import bundle, sources_digest

        b, digest = bundle(), sources_digest()
        typer.echo(f"replctl {__version__}")
        typer.echo(f"bundled sources sha256:{digest.combined} ({b.kind}: {b.cfn.parent})")
        typer.echo(f"  template  sha256:{digest.template}")
        typer.echo(f"  functions sha256:{digest.functions}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Path = typer.Option(
        None, "--config", "-c", envvar="REPLCTL_CONFIG", show_default="environments.yaml",
        help="The estate file (environments.yaml).", dir_okay=False,
    ),
    profile: str = typer.Option(None, "--profile", help="AWS profile (default: AWS_PROFILE / the default chain)."),
    region: str = typer.Option(None, "--region", help="Region for the StackSet calls (default: stackset.home_region)."),
    endpoint_url: str = typer.Option(
        None, "--endpoint-url", help="Send every AWS call to this endpoint (AWS_ENDPOINT_URL works too).",
        callback=_endpoint,
    ),
    output: OutputFormat = typer.Option(None, "--output", "-o", show_default="table",
                                         help="table for people, json for scripts."),
    no_color: bool = typer.Option(False, "--no-color", help="No colours (NO_COLOR is honoured too)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short error messages."),
    sandbox: bool = typer.Option(
        False, "--sandbox", envvar="REPLCTL_SANDBOX",
        help="Target the local sandbox (see `replctl sandbox start`) with environments.sandbox.yaml.",
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and the digest of the bundled template and functions."),
) -> None:
    color = not no_color and not os.environ.get("NO_COLOR")
    ctx.obj = State(
        config_path=config, profile=profile, region=region, endpoint_url=endpoint_url,
        output=Output(fmt=(output or OutputFormat.table).value, color=color), debug=debug, sandbox=sandbox,
    )


EnvOption = typer.Option(None, "--env", "-e", help="Only this environment (repeatable).")


@app.command("validate-accounts", epilog=(
    "Examples:  replctl validate-accounts  ·  replctl validate-accounts --env prod -o json  ·  "
    "replctl validate-accounts --config-only   (no AWS call)"))
@guarded
def validate_accounts_cmd(
    ctx: typer.Context,
    env: list[str] = EnvOption,
    config_only: bool = typer.Option(False, "--config-only", help="Only check environments.yaml; call no AWS API."),
) -> None:
    """Check the accounts are ready: credentials, StackSet roles, trust, names, regions.

    Config checks first, then live checks per account: the caller is in the admin account; the
    administration role exists and trusts CloudFormation; in each target account the execution
    role can be assumed, exists, and trusts the admin account only; the replication role name is
    free or already ours. Exit 0 only when every check passes (4 otherwise).
    """
    from replctl.accounts import validate_accounts
    from replctl.errors import ChecksFailed
    from replctl.render import checks_table

    st = state(ctx)
    config = st.config()
    envs = config.select(env)
    if config_only:
        from replctl.accounts import config_checks

        checks = config_checks(config, envs)
    else:
        checks = validate_accounts(config, st.factory(), envs)
    failed = [c for c in checks if not c.ok]
    if st.output.json:
        st.output.emit_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        st.output.table(checks_table(checks, f"replctl validate-accounts — {config.stackset.name}"))
    if failed:
        raise ChecksFailed(f"{len(failed)} of {len(checks)} checks failed")
    if not st.output.json:
        st.output.info(f"all {len(checks)} checks passed")


@app.command("package")
@guarded
def package_cmd(
    ctx: typer.Context,
    build_dir: Path = typer.Option(None, "--build-dir", help="Cache folder (default .replctl/build)."),
) -> None:
    """Build the three function ZIPs: deterministic bytes, named by content hash, cached."""
    from replctl.package import build_all

    st = state(ctx)
    root = Path.cwd()
    if st.config_path is not None:
        root = st.config_path.resolve().parent
    artifacts = build_all(root, cache_dir=build_dir, log=st.output.info)
    if st.output.json:
        st.output.emit_json([
            {"function": a.function, "path": str(a.path), "sha256": a.sha256, "key": a.key, "size": a.size}
            for a in artifacts
        ])
        return
    from rich.table import Table

    table = Table(title="function artifacts")
    for col in ("function", "key", "size", "path"):
        table.add_column(col)
    for a in artifacts:
        table.add_row(a.function, a.key, f"{a.size:,}", _relative(a.path))
    st.output.table(table)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _register_command_modules() -> None:
    """Import every module in replctl.commands; each adds its commands to `app`."""
    import importlib
    import pkgutil

    from replctl import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"replctl.commands.{info.name}")


_register_command_modules()


def main() -> None:
    """Console-script entry point."""
    app()

