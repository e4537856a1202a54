"""The command line's root: global options, the command table, and the one place errors become exit codes.

`replctl --help` and shell completion read the table `COMMANDS` and import nothing else; a
command's module (`replctl/commands/`) is imported only when that command is invoked, so start-up
stays cheap (BENCHMARKS.md, start-up). Global options may be written before or after the command
name (`replctl status --output json` works like `replctl --output json status`), as with the AWS
CLI. `ReplctlGroup.invoke` is the single catch site: a `ReplctlError` becomes its message on
stderr and its fixed exit code, an SDK error its translation, Ctrl-C exit 130; `--debug`
re-raises instead, for the traceback. Only typer's and click's public API is used.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from replctl import __version__
from replctl.commands import Command, Group
from replctl.errors import ExitCode, ReplctlError
from replctl.render import Output

if TYPE_CHECKING:  # pragma: no cover
    from replctl.aws import SessionFactory
    from replctl.config import Config


@dataclass(frozen=True)
class Entry:
    """Where a command is defined, and its one line of help."""

    module: str
    summary: str


#: Every command, in the order `--help` lists them. The summary is the first line of the command's
#: own help (a test keeps the two equal). A new command is one entry here and its module.
COMMANDS: dict[str, Entry] = {
    "validate-accounts": Entry("replctl.commands.accounts",
                               "Check the accounts are ready: credentials, StackSet roles, trust, names, regions."),
    "plan": Entry("replctl.commands.deploy", "Show what `deploy` would do — template diff, parameter changes, "
                  "instances, artifacts — and change nothing."),
    "deploy": Entry("replctl.commands.deploy", "Package, upload, and roll the StackSet out environment by "
                    "environment (dev → staging → prod)."),
    "destroy": Entry("replctl.commands.destroy", "Take environments, or the whole estate, down in reverse rollout "
                     "order; data is kept unless --delete-data."),
    "status": Entry("replctl.commands.status", "Replication health per environment and region, one verdict each, "
                    "and an exit code."),
    "drift": Entry("replctl.commands.drift", "StackSet drift detection plus parity across environments; exit 30 "
                   "when anything drifted."),
    "package": Entry("replctl.commands.package", "Build the three function ZIPs: deterministic bytes, named by "
                     "content hash, cached."),
    "lint": Entry("replctl.commands.lint", "Lint the estate's template as `deploy` does before any AWS call: "
                  "cfn-lint with replctl's rules."),
    "init": Entry("replctl.commands.init", "Start an estate: write a commented environments.yaml that uses the "
                  "bundled template and functions."),
    "sandbox": Entry("replctl.commands.sandbox", "Run the whole estate locally on moto's server: an admin account "
                     "and dev, staging, prod accounts bootstrapped with the StackSet roles."),
}

#: Global options that take a value / are flags; hoisted in front of the command name.
_VALUE_OPTIONS = {"--config", "-c", "--profile", "--region", "--endpoint-url", "--output", "-o"}
_FLAG_OPTIONS = {"--no-color", "--debug", "--sandbox", "--verbose"}


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


def load_command(name: str) -> Any:
    """The command `name` as its module defines it (the module's `app`: one command, or a group)."""
    module = importlib.import_module(COMMANDS[name].module)
    command = typer.main.get_command(module.app)
    if isinstance(command, TyperGroup) and name in command.commands:
        return command.commands[name]  # a module defining several commands (plan and deploy)
    return command


class ReplctlGroup(Group):
    """The root command: global options anywhere, commands imported on first use, the one catch site."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args, set(COMMANDS)))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        """A command as `--help` and completion list it: its name and summary; nothing is imported."""
        entry = COMMANDS.get(name)
        return None if entry is None else Command(name, help=entry.summary, short_help=entry.summary)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """The command being invoked (or completed), imported from its module."""
        try:
            name, listed, rest = super().resolve_command(ctx, args)
        except typer.TyperException as exc:  # "No such command": suggest the closest names
            close = difflib.get_close_matches(args[0], list(COMMANDS)) if args else []
            if close:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, close))}?"
            raise
        return name, (load_command(name) if name is not None and listed is not None else listed), rest

    def invoke(self, ctx: Any) -> Any:
        """Run the command; the one place a failure becomes a message on stderr and an exit code."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # exit codes and usage errors: click's own
            raise
        except ReplctlError as exc:
            _fail(ctx, exc, exc.exit_code, str(exc))
        except KeyboardInterrupt as exc:
            _fail(ctx, exc, ExitCode.INTERRUPTED, "interrupted; nothing half-done is left that a re-run cannot resume")
        except Exception as exc:
            from replctl.aws import translate

            translated = translate(exc) if type(exc).__module__.startswith("botocore") else None
            if translated is not None:
                _fail(ctx, exc, translated.exit_code, str(translated))
            _fail(ctx, exc, ExitCode.FAILURE,
                  f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for details)")


def _fail(ctx: Any, exc: BaseException, code: ExitCode, message: str) -> NoReturn:
    """Print `message` on stderr and exit with `code`; with --debug, re-raise for the traceback."""
    st = ctx.obj if isinstance(ctx.obj, State) else None
    if st is not None and st.debug and not isinstance(exc, KeyboardInterrupt):
        raise exc
    (st.output if st is not None else Output()).error(message)
    raise typer.Exit(int(code)) from None


app = typer.Typer(
    name="replctl",
    cls=ReplctlGroup,
    help=(
        "Roll the configuration-replication framework out across AWS accounts with "
        "CloudFormation StackSets, strictly dev → staging → prod, and report its health.\n\n"
        "Start with `replctl validate-accounts`, then `replctl plan` and `replctl deploy`. "
        "Try it all locally with `replctl sandbox start` and `--sandbox`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
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
            keys = None
            if self.sandbox:
                from replctl.sandbox.state import FAKE_KEY

                keys = (FAKE_KEY, FAKE_KEY)
            settings = AwsSettings(
                profile=None if self.sandbox else self.profile,
                region=self.region or config.stackset.home_region,
                endpoint_url=endpoint,
                access_keys=keys,
            )
            self._factory = SessionFactory(settings, admin_role_arn=config.admin.role_arn)
            if self.sandbox:
                from replctl.sandbox.adapt import notes_for
                from replctl.sandbox.adapt.stacksets import install_stackset_emulation

                install_stackset_emulation(self._factory, config.stackset.execution_role_name)
                for note in notes_for(self.command):
                    self.output.note(f"sandbox: {note}")
        return self._factory


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
    verbose: bool = typer.Option(False, "--verbose",
                                 help="Also print progress a command is not about (packaging during plan and drift)."),
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
        output=Output(fmt=(output or OutputFormat.table).value, color=color, verbose=verbose), debug=debug,
        sandbox=sandbox, command=ctx.invoked_subcommand or "",
    )


def main() -> None:
    """Console-script entry point."""
    app()
