"""`replctl init`: ask for (or take) the accounts and region, write the estate files, say what next."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from replctl.commands import Command, command_app, state

app = command_app()

if TYPE_CHECKING:  # pragma: no cover
    from replctl.init.write import Written

_ENVS = ("dev", "staging", "prod")


@app.command("init", cls=Command, epilog=(
    "Examples:  replctl init   (asks)  ·  replctl init infra/replctl --admin-account 111122223333 "
    "--dev-account 222233334444 --staging-account 333344445555 --prod-account 444455556666 "
    "--region eu-west-1 --no-input  ·  replctl init --eject   (copy the template and functions to customise)"))
def init_cmd(
    ctx: typer.Context,
    directory: Path = typer.Argument(Path("."), help="Where to write the estate (created if missing).",
                                     show_default="the current directory"),
    admin_account: str = typer.Option(None, "--admin-account", help="StackSet administration account id."),
    dev_account: str = typer.Option(None, "--dev-account", help="Account id of dev."),
    staging_account: str = typer.Option(None, "--staging-account", help="Account id of staging."),
    prod_account: str = typer.Option(None, "--prod-account", help="Account id of prod."),
    stack_set: str = typer.Option(None, "--stack-set", help="StackSet name.", show_default="replctl-replication"),
    no_input: bool = typer.Option(False, "--no-input", help="Ask nothing: options, else placeholders (the "
                                  "sandbox's accounts, said on stderr), for scripts."),
    eject: bool = typer.Option(False, "--eject", help="Copy the bundled templates and functions here "
                               "(cfn/, lambda/) and point the estate at the copies, to customise them."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist."),
    sandbox_estate: bool = typer.Option(True, "--sandbox-estate/--no-sandbox-estate",
                                        help="Also write environments.sandbox.yaml, for `--sandbox`."),
) -> None:
    """Start an estate: write a commented environments.yaml that uses the bundled template and functions.

    Asks for the admin account, the dev, staging and prod accounts and the region (or takes them
    as options, the region as the global `--region`; `--no-input` never asks). Refuses to overwrite an existing file without `--force`.
    Also writes environments.sandbox.yaml, so `replctl sandbox start` and `replctl --sandbox deploy`
    work from the same directory before any real account is bootstrapped.
    """
    from replctl.errors import ConfigError
    from replctl.init.estate import DEFAULT_STACK_SET, SANDBOX_ACCOUNTS, SANDBOX_REGION, Answers, problems
    from replctl.init.write import planned_files, write_estate

    st = state(ctx)
    region = st.region  # the global --region names the estate's region here
    given = {"admin": admin_account, "dev": dev_account, "staging": staging_account, "prod": prod_account}
    placeholders = [who for who, value in given.items() if value is None] if no_input else []
    values: dict[str, str] = {}
    for who in ("admin", *_ENVS):
        if given[who] is not None:
            values[who] = given[who]
        elif no_input:
            values[who] = SANDBOX_ACCOUNTS[who]
        else:
            values[who] = _ask(f"{who} account id", SANDBOX_ACCOUNTS[who], _account_check(values))
    if region is None:
        region = SANDBOX_REGION if no_input else _ask("region", SANDBOX_REGION, _region_check)
    answers = Answers(admin_account=values["admin"], accounts=tuple((e, values[e]) for e in _ENVS), region=region,
                      external_id=f"replctl-{secrets.token_hex(6)}", stack_set=stack_set or DEFAULT_STACK_SET)
    found = problems(answers)
    if found:
        raise ConfigError("cannot write an estate from these values", tuple(found))
    written = write_estate(directory, planned_files(answers, eject=eject, sandbox=sandbox_estate),
                           force=force, eject=eject)
    if st.output.json:
        st.output.emit_json({
            "directory": str(written.directory), "files": list(written.files), "ejected": written.ejected,
            "template": str(written.template), "functions": str(written.functions),
            "overwritten": list(written.overwritten), "placeholders": placeholders,
        })
    _next_steps(st.output.info, written, placeholders)


def _ask(label: str, default: str, check: Callable[[str], str]) -> str:
    from replctl.errors import Aborted

    try:
        return str(typer.prompt(label, default=default, err=True, value_proc=check))
    except typer.Abort:  # end of input (or Ctrl-D) at a prompt
        raise Aborted("init needs answers and got none",
                      hint="pass the values as options with --no-input") from None


def _account_check(earlier: dict[str, str]) -> Callable[[str], str]:
    from replctl.config import ACCOUNT_RE

    def check(value: str) -> str:
        value = value.strip()
        if not ACCOUNT_RE.match(value):
            raise typer.BadParameter(f"'{value}' is not a 12-digit AWS account id")
        for who, account in earlier.items():
            if account == value:
                raise typer.BadParameter(f"{value} is already the {who} account; each needs its own")
        return value

    return check


def _region_check(value: str) -> str:
    from replctl.config import REGION_RE

    value = value.strip()
    if not REGION_RE.match(value):
        raise typer.BadParameter(f"'{value}' is not a region name like us-east-1")
    return value


def _next_steps(say: Callable[[str], None], written: Written, placeholders: list[str]) -> None:
    from replctl.resources import bundle

    for name in written.overwritten:
        say(f"overwrote {name}")
    say(f"wrote {len(written.files)} file(s) in {written.directory}: "
        + ", ".join(f for f in written.files if "/" not in f)
        + (" and the template and functions (cfn/, lambda/)" if written.ejected else ""))
    if not written.ejected and (written.directory / "lambda").is_dir():
        say(f"note: {written.directory / 'lambda'} exists: replctl builds the functions from a lambda/ folder "
            "beside the estate file, not the bundled ones")
    if placeholders:
        say(f"placeholder account ids (the sandbox's) for: {', '.join(placeholders)} — replace them in "
            "environments.yaml before using AWS")
    cfn = written.directory / "cfn" if written.ejected else bundle().cfn
    say("next:")
    say("  replctl validate-accounts --config-only    the estate file, no AWS call")
    say("  replctl sandbox start                      try it locally (replctl[sandbox]),")
    say("  replctl --sandbox deploy --yes             then status, drift")
    say(f"  bootstrap the accounts with the templates in {cfn}")
