"""`replctl destroy`: show the teardown plan, confirm, take environments (or the estate) down, safely.

The command parses options, builds the clients (`runtime`, the seam tests replace), reads with
`destroy.fetch`, decides with `destroy.decide`, applies with `destroy.apply` and renders with
`destroy.render`. `--dry-run` renders the same plan and makes no mutating call. Deleting data
in the last environment of the rollout (prod) needs its name typed at the prompt, or `--yes`
with `--delete-data --env <name>` spelled out: `--yes` alone never deletes it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from replctl.commands import Command, applying, command_app, result_document, state
from replctl.errors import Aborted, Refused

if TYPE_CHECKING:  # pragma: no cover
    from replctl.cli import State
    from replctl.config import Config
    from replctl.destroy.apply import DestroyLog
    from replctl.destroy.model import DestroyClients, TeardownPlan
    from replctl.render import Output

app = command_app()


@dataclass
class Runtime:
    """What the command needs from the outside world; tests replace it with fakes."""

    clients: DestroyClients
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def runtime(st: State) -> Runtime:
    from replctl.destroy.model import DestroyClients

    return Runtime(DestroyClients.from_factory(st.factory(), st.config()))


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


@app.command("destroy", cls=Command, epilog=(
    "Examples:  replctl destroy --dry-run   (the plan; no change)  ·  replctl destroy --env prod   "
    "(unwire dev and staging, then delete prod's instances; its bucket and table stay)  ·  "
    "replctl destroy --yes   (the whole estate, data retained)  ·  "
    "replctl destroy --yes --delete-data --env dev --env staging --env prod   (everything, data too; "
    "prod's data needs --env prod spelled out)"))
def destroy_cmd(
    ctx: typer.Context,
    env: list[str] = typer.Option(None, "--env", "-e", metavar="ENV",
                                  help="Only this environment (repeatable); default: the whole estate."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (prod's data still needs --env prod)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and change nothing."),
    delete_data: bool = typer.Option(False, "--delete-data",
                                     help="Also remove the buckets (every version), tables and the parameters replctl wrote."),
) -> None:
    """Take environments, or the whole estate, down in reverse rollout order; data is kept unless --delete-data.

    First the environments that stay stop replicating to the removed ones (waited on, verified),
    then the removed environments' stack instances are deleted prod → staging → dev, then the
    stack set once it is empty. Buckets and tables are retained (DeletionPolicy Retain) and listed
    with the command that removes them. Shows the plan and asks first (`--yes` skips the question;
    without a terminal and without `--yes` it refuses). Re-running resumes from what AWS reports;
    destroying what is already gone changes nothing and exits 0.
    """
    from replctl.deploy.render import ConsoleReporter
    from replctl.deploy.rollout import attach
    from replctl.destroy.apply import DestroyLog, apply
    from replctl.destroy.decide import decide, selected
    from replctl.destroy.fetch import fetch

    st = state(ctx)
    config = st.config()
    names = list(dict.fromkeys(env or []))
    selected(config, names)  # unknown names are a usage error before any AWS call
    rt = runtime(st)
    reporter = ConsoleReporter(st.output)
    log = DestroyLog()
    if not dry_run:
        # An operation left running (Ctrl-C, a timeout) finishes before we plan against it.
        try:
            attach(config, rt.clients.stacksets, reporter=reporter, sleep=rt.sleep, clock=rt.clock, log=log.rollout)
        finally:
            reporter.close()
    plan = decide(config, fetch(config, rt.clients, names, delete_data=delete_data), names, delete_data=delete_data)
    if dry_run or not plan.changes:
        _show(st.output, plan, "dry-run" if dry_run else "nothing-to-do", log)
        return
    if not st.output.json:
        _show(st.output, plan, "plan")
    _confirm(config, plan, names, yes)
    with applying(st.output, plan, log, reporter):
        apply(plan, config, rt.clients, reporter=reporter, sleep=rt.sleep, clock=rt.clock, log=log)
    _show(st.output, plan, "succeeded", log)


def _confirm(config: Config, plan: TeardownPlan, names: list[str], yes: bool) -> None:
    """--yes, a terminal's answer, or refusal; prod's data only by its name."""
    protected = config.environments[-1].name  # the end of the rollout: production
    data_of_protected = plan.delete_data and protected in plan.environments and any(
        p.kind == "data" and p.environment == protected and p.steps for p in plan.phases)
    if yes:
        if data_of_protected and protected not in names:
            raise Refused(f"refusing to delete {protected}'s data with --yes alone",
                          hint=f"spell it out: replctl destroy --yes --delete-data --env {protected} "
                          "(with any other --env you mean); nothing was changed")
        return
    if not stdin_is_interactive():
        raise Aborted("not destroying: confirmation is needed and stdin is not a terminal",
                      hint="review the plan (replctl destroy --dry-run), then re-run with --yes")
    what = "the whole estate" if plan.whole_estate else " and ".join(plan.environments)
    if data_of_protected:
        typed = typer.prompt(f"This deletes {protected}'s bucket, table and parameters for good. "
                             f"Type {protected!r} to confirm", default="", show_default=False, err=True)
        if typed.strip() != protected:
            raise Aborted(f"not destroying: {protected!r} was not typed")
        return
    data = ", data included" if plan.delete_data else ", data retained"
    if not typer.confirm(f"Destroy {what} of {plan.stack_set}{data}?", default=False, err=True):
        raise Aborted("not destroying: the plan was not confirmed")


def _show(output: Output, plan: TeardownPlan, result: str, log: DestroyLog | None = None) -> None:
    from replctl.destroy.render import render_plan, retained_table

    if output.json:
        output.emit_json(result_document(result, plan, log))
        return
    if result != "succeeded":
        render_plan(output, plan)
    if result == "nothing-to-do":
        output.info("nothing to destroy: what AWS reports is already gone; no change was made")
    elif result == "succeeded":
        if plan.retained:
            output.table(retained_table(plan.retained, "retained (remove with the command shown, or keep)"))
        done = ", ".join(log.rollout.completed) if log else ""
        output.info(f"destroyed: {done or 'nothing left to do'}" + ("; data retained" if plan.retained else ""))
