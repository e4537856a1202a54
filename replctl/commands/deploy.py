"""`replctl plan` and `replctl deploy`: show the plan, confirm, roll it out dev -> staging -> prod.

The commands parse options, build the clients and artifacts (`Runtime`, the seam tests replace),
call `deploy.plan.build_plan` and `deploy.rollout.apply`, and render with `deploy.render`. `plan`
and `deploy --dry-run` render the same `Plan` value and make no mutating call.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from replctl.commands import Command, applying, command_app, result_document, state
from replctl.errors import Aborted, ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from replctl.cli import State
    from replctl.config import Config
    from replctl.deploy.model import ArtifactLike, Clients, Plan
    from replctl.deploy.rollout import RolloutLog
    from replctl.deploy.template import Template
    from replctl.render import Output

app = command_app()


# --------------------------------------------------------------------------- seams


@dataclass
class Runtime:
    """What the commands need from the outside world; tests replace it with fakes."""

    clients: Clients
    artifacts: Callable[[], Sequence[ArtifactLike]]
    template_transform: Callable[[str], str]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def build_artifacts(config: Config, log: Callable[[str], None]) -> Sequence[ArtifactLike]:
    """The function ZIPs, built (or taken from the cache) next to environments.yaml."""
    from replctl.package import build_all

    return build_all(config.path.resolve().parent, log=log)


def template_transform(st: State) -> Callable[[str], str]:
    """Identity for AWS; the sandbox's adapter when --sandbox (the only place the text is changed)."""
    if not st.sandbox:
        from replctl.deploy.template import identity

        return identity
    from replctl.sandbox.adapt.template import adapt_template_for_sandbox

    return adapt_template_for_sandbox


def runtime(st: State) -> Runtime:
    from replctl.deploy.model import Clients

    config = st.config()
    # Packaging is part of what deploy does; plan only needs the keys (progress with --verbose).
    log = st.output.info if st.command == "deploy" else st.output.detail
    return Runtime(
        clients=Clients.from_factory(st.factory(), config),
        artifacts=lambda: build_artifacts(config, log),
        template_transform=template_transform(st),
    )


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


# --------------------------------------------------------------------------- commands


EnvOpt = typer.Option(None, "--env", "-e", help="Only this environment (its upstream environments must be current).")
ForceOpt = typer.Option(False, "--force", help="With --env: deploy even if upstream environments are not current.")
DetailedOpt = typer.Option(False, "--detailed-exitcode",
                           help="Exit 10 when changes are pending, 0 when there are none (plan / --dry-run).")


@app.command("plan", cls=Command, epilog=(
    "Examples:  replctl plan  ·  replctl plan --detailed-exitcode   (exit 10 when changes are pending)  ·  "
    "replctl -o json plan | jq .plan.steps"))
def plan_cmd(
    ctx: typer.Context,
    env: str = EnvOpt,
    force: bool = ForceOpt,
    detailed_exitcode: bool = DetailedOpt,
) -> None:
    """Show what `deploy` would do — template diff, parameter changes, instances, artifacts — and change nothing."""
    _refuse_conflicts(env, force)
    st = state(ctx)
    plan = _plan(st, runtime(st), env, force)
    _show(st.output, plan, "plan")
    if detailed_exitcode and plan.changes:
        raise typer.Exit(int(ExitCode.CHANGES_PENDING))


@app.command("deploy", cls=Command, epilog=(
    "Examples:  replctl deploy  ·  replctl deploy --yes   (CI)  ·  replctl deploy --dry-run  ·  "
    "replctl deploy --env staging   (refused unless dev is current; --force overrides)"))
def deploy_cmd(
    ctx: typer.Context,
    env: str = EnvOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and change nothing."),
    force: bool = ForceOpt,
    detailed_exitcode: bool = DetailedOpt,
) -> None:
    """Package, upload, and roll the StackSet out environment by environment (dev → staging → prod).

    Shows the plan and asks before changing anything (`--yes` skips the question; without a
    terminal and without `--yes` it refuses). Each environment is rolled out, waited on,
    verified (every instance CURRENT/SUCCEEDED) and gated (no alarm in ALARM) before the next
    starts; the first failure stops the rollout. Re-running resumes from what AWS reports.
    """
    from replctl.deploy.render import ConsoleReporter
    from replctl.deploy.rollout import RolloutLog, apply, attach

    _refuse_conflicts(env, force, detailed_exitcode=detailed_exitcode, dry_run=dry_run)
    st = state(ctx)
    config = st.config()
    rt = runtime(st)
    reporter = ConsoleReporter(st.output)
    log = RolloutLog()
    template = _template(st, rt, env)  # the template is checked before any AWS call
    if not dry_run:
        # An operation left running (Ctrl-C, a timeout) finishes before we plan against it.
        try:
            attach(config, rt.clients, reporter=reporter, sleep=rt.sleep, clock=rt.clock, log=log)
        finally:
            reporter.close()
    plan = _plan(st, rt, env, force, template)
    if dry_run:
        _show(st.output, plan, "dry-run")
        if detailed_exitcode and plan.changes:
            raise typer.Exit(int(ExitCode.CHANGES_PENDING))
        return
    if not plan.changes:
        _show(st.output, plan, "no-changes", log)
        return
    if not st.output.json:
        _show(st.output, plan, "plan")
    _confirm(st, plan, yes)
    with applying(st.output, plan, log, reporter):
        apply(plan, config, rt.clients, reporter=reporter, sleep=rt.sleep, clock=rt.clock, log=log)
    if st.output.json:
        st.output.emit_json(result_document("succeeded", plan, log))
    else:
        st.output.info(f"deployed: {', '.join(log.completed)}; every instance CURRENT/SUCCEEDED")


def _refuse_conflicts(env: str | None, force: bool, *, detailed_exitcode: bool = False, dry_run: bool = True) -> None:
    """Flags that only make sense together: a usage error (exit 2) rather than silently ignored."""
    if force and env is None:
        # --force overrides the upstream-is-current safety rule of --env; alone it would read as
        # "force the whole rollout", which it does not do.
        raise typer.BadParameter("only applies together with --env", param_hint="'--force'")
    if detailed_exitcode and not dry_run:
        # Without --dry-run, deploy applies the plan: a script asking for the plan's exit code
        # must not deploy by accident.
        raise typer.BadParameter("only applies to plan and deploy --dry-run", param_hint="'--detailed-exitcode'")


def _template(st: State, rt: Runtime, env: str | None) -> Template:
    from replctl.deploy.plan import prepare_template

    config = st.config()
    if env is not None:
        config.environment(env)
    return prepare_template(config, rt.template_transform, note=st.output.note)


def _plan(st: State, rt: Runtime, env: str | None, force: bool, template: Template | None = None) -> Plan:
    from replctl.deploy.plan import build_plan

    config = st.config()
    if template is None:
        template = _template(st, rt, env)
    return build_plan(config, rt.clients, artifacts=rt.artifacts(), template_transform=rt.template_transform,
                      only=env, force=force, template=template)


def _confirm(st: State, plan: Plan, yes: bool) -> None:
    if yes:
        return
    if not stdin_is_interactive():
        raise Aborted("not deploying: confirmation is needed and stdin is not a terminal",
                      hint="review the plan (replctl plan), then re-run with --yes")
    first = next((w.environment for w in plan.waves if w.steps), plan.stack_set)
    envs = " → ".join(dict.fromkeys(w.environment for w in plan.waves if w.steps)) or "no environment"
    if not typer.confirm(f"Apply these changes to {plan.stack_set} ({envs}), starting with {first}?",
                         default=False, err=True):
        raise Aborted("not deploying: the plan was not confirmed")


# --------------------------------------------------------------------------- output


def _show(output: Output, plan: Plan, result: str, log: RolloutLog | None = None) -> None:
    from replctl.deploy.render import render_plan

    if output.json:
        output.emit_json(result_document(result, plan, log))
        return
    render_plan(output, plan)
    if result == "no-changes":
        output.info("nothing to change: every environment is current; no change was made")
    elif not plan.changes:
        output.info("no changes")
