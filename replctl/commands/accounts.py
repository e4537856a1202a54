"""`replctl validate-accounts`: config checks, then live checks per account; exit 4 when any fails."""

from __future__ import annotations

import typer

from replctl.commands import Command, EnvsOption, command_app, state

app = command_app()


@app.command("validate-accounts", cls=Command, epilog=(
    "Examples:  replctl validate-accounts  ·  replctl validate-accounts --env prod -o json  ·  "
    "replctl validate-accounts --config-only   (no AWS call)"))
def validate_accounts_cmd(
    ctx: typer.Context,
    env: list[str] = EnvsOption,
    config_only: bool = typer.Option(False, "--config-only", help="Only check environments.yaml; call no AWS API."),
) -> None:
    """Check the accounts are ready: credentials, StackSet roles, trust, names, regions.

    Config checks first, then live checks per account: the caller is in the admin account; the
    administration role exists and trusts CloudFormation; in each target account the execution
    role can be assumed, exists, and trusts the admin account only; the replication role name is
    free or already ours. Exit 0 only when every check passes (4 otherwise).
    """
    from replctl.accounts.judge import config_checks, evaluate
    from replctl.accounts.render import checks_table
    from replctl.errors import ChecksFailed

    st = state(ctx)
    config = st.config()
    envs = config.select(env)
    if config_only:
        checks = config_checks(config, envs)
    else:
        from replctl.accounts.fetch import fetch

        admin, targets = fetch(config, st.factory(), envs)
        checks = evaluate(config, admin, targets, envs)
    failed = [c for c in checks if not c.ok]
    if st.output.json:
        st.output.emit_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        st.output.table(checks_table(checks, f"replctl validate-accounts — {config.stackset.name}"))
    if failed:
        raise ChecksFailed(f"{len(failed)} of {len(checks)} checks failed")
    if not st.output.json:
        st.output.info(f"all {len(checks)} checks passed")
