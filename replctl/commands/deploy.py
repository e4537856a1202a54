"""`plan` and `deploy`: show the plan, confirm, roll it out dev -> staging -> prod.

The commands parse options, build the clients and artifacts, call `plan.build_plan` and
`rollout.apply`, and render. `plan` and `deploy --dry-run` render the same `Plan` value and make
no mutating call. The cores are imported inside the commands so `replctl --help` stays fast.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from replctl.cli import app, guarded, state
from replctl.errors import Aborted, ExitCode, ReplctlError

if TYPE_CHECKING:  # pragma: no cover
    from replctl.cli import State
    from replctl.config import Config
    from replctl.deploy.plan import ArtifactLike, Clients, Plan
    from replctl.render import Output
    from replctl.deploy.rollout import InstanceResult, OperationOutcome, RolloutLog
    from replctl.statuses import OperationStatus
    from replctl.deploy.template import Template


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
    from replctl.sandbox.adapt import adapt_template_for_sandbox

    return adapt_template_for_sandbox


def runtime(st: State) -> Runtime:
    from replctl.deploy.plan import Clients

    config = st.config()
    return Runtime(
        clients=Clients.from_factory(st.factory(), config),
        artifacts=lambda: build_artifacts(config, st.output.info),
        template_transform=template_transform(st),
    )


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


# --------------------------------------------------------------------------- commands


EnvOpt = typer.Option(None, "--env", "-e", help="Only this environment (its upstream environments must be current).")
ForceOpt = typer.Option(False, "--force", help="With --env: deploy even if upstream environments are not current.")
DetailedOpt = typer.Option(False, "--detailed-exitcode",
                           help="Exit 10 when changes are pending, 0 when there are none (plan / --dry-run).")


@app.command("plan", epilog=(
    "Examples:  replctl plan  ·  replctl plan --detailed-exitcode   (exit 10 when changes are pending)  ·  "
    "replctl -o json plan | jq .plan.steps"))
@guarded
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


@app.command("deploy", epilog=(
    "Examples:  replctl deploy  ·  replctl deploy --yes   (CI)  ·  replctl deploy --dry-run  ·  "
    "replctl deploy --env staging   (refused unless dev is current; --force overrides)"))
@guarded
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
    try:
        apply(plan, config, rt.clients, reporter=reporter, sleep=rt.sleep, clock=rt.clock, log=log)
    except ReplctlError as exc:
        if st.output.json:
            st.output.emit_json(_result("failed", plan, log, exc))
        raise
    except KeyboardInterrupt:
        if st.output.json:
            st.output.emit_json(_result("interrupted", plan, log))
        raise
    finally:
        reporter.close()
    if st.output.json:
        st.output.emit_json(_result("succeeded", plan, log))
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


def _result(result: str, plan: Plan, log: RolloutLog | None = None, error: ReplctlError | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"result": result, "changes": plan.changes, "plan": plan.to_dict()}
    if log is not None:
        out.update(log.to_dict())
    if error is not None:
        out["error"] = {"message": error.message, "hint": error.hint, "exit_code": int(error.exit_code)}
    return out


def _show(output: Output, plan: Plan, result: str, log: RolloutLog | None = None) -> None:
    if output.json:
        output.emit_json(_result(result, plan, log))
        return
    render_plan(output, plan)
    if result == "no-changes":
        output.info("nothing to change: every environment is current; no change was made")
    elif not plan.changes:
        output.info("no changes")


def render_plan(output: Output, plan: Plan) -> None:
    """The plan for people: template diff, parameter changes, instances, artifacts, steps."""
    from rich.table import Table
    from rich.text import Text

    from replctl.deploy.plan import describe_step

    state_word = "exists" if plan.exists else "will be created"
    output.line(Text(f"Stack set {plan.stack_set} ({plan.permission_model}, {plan.region}) {state_word}",
                     style="bold"))
    for note in plan.notes:
        output.line(Text(f"note: {note}", style="yellow"))

    if not plan.exists:
        lines = plan.template_body.count("\n")
        how = "via S3 (TemplateURL)" if plan.template_url else "inline"
        output.line(f"Template: new, {plan.template_path} ({lines} lines, sent {how})")
    elif plan.template_diff:
        output.line(Text("Template diff:", style="bold"))
        for line in plan.template_diff.splitlines():
            style = ("green" if line.startswith("+") and not line.startswith("+++")
                     else "red" if line.startswith("-") and not line.startswith("---")
                     else "cyan" if line.startswith("@@") else None)
            output.line(Text(line, style=style) if style else Text(line))
    else:
        output.line("Template: unchanged")
    deployed, configured = plan.managed_execution
    if plan.exists and deployed is not None and deployed != configured:
        output.line(f"Managed execution: {deployed} → {configured}")

    if plan.parameter_changes:
        table = Table(title="parameter changes (before → after)")
        for col in ("scope", "parameter", "before", "after", "note"):
            table.add_column(col, overflow="fold")
        for c in plan.parameter_changes:
            table.add_row(c.scope, c.name, Text("—" if c.before is None else c.before, style="red"),
                          Text("—" if c.after is None else c.after, style="green"), c.note)
        output.table(table)

    table = Table(title="stack instances")
    for col in ("environment", "account", "region", "now", "action"):
        table.add_column(col)
    for r in plan.instances:
        style = None if r.action in ("none", "not selected") else "bold"
        now = r.status + (f" ({r.reason})" if r.reason else "")
        table.add_row(r.environment, r.account, r.region, now, Text(r.action, style=style) if style else r.action)
    output.table(table)

    uploads = [a for a in plan.artifacts if a.action == "upload"]
    if plan.artifacts:
        table = Table(title="artifacts")
        for col in ("region", "bucket", "key", "action"):
            table.add_column(col, overflow="fold")
        for a in plan.artifacts:
            table.add_row(a.region, a.bucket, a.key, a.action)
        output.table(table)

    if plan.changes:
        output.line(Text("Steps, in order (each environment is verified and gated before the next):", style="bold"))
        n = 0
        for step in plan.preparation:
            n += 1
            output.line(f"  {n:>2}. {describe_step(step)}")
        for wave in plan.waves:
            label = wave.environment if wave.kind == "rollout" else f"{wave.environment} (wiring)"
            if not wave.steps:
                output.line(f"      {label}: no change (verified and gated)")
                continue
            for step in wave.steps:
                n += 1
                output.line(f"  {n:>2}. {describe_step(step)}")
            output.line(f"      then verify {label} and run its gate")
    summary = (f"{len(uploads)} artifact upload(s), "
               f"{sum(len(w.steps) for w in plan.waves)} stack set operation(s)")
    output.line(f"Plan: {summary}" if plan.changes else "Plan: no changes")


class ConsoleReporter:
    """Progress on stderr: one line per step, operation, and change of an instance's result.

    On a terminal a rich progress bar per operation counts finished instances; the lines are
    printed above it, so a log (or CI output) shows the same story without the bar.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self.seen: dict[str, dict[tuple[str, str], str]] = {}
        self.env: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.bar: Any = None
        self.task: Any = None

    def _print(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(message, markup=False, highlight=False)
        else:
            self.output.info(message)

    def step(self, message: str) -> None:
        self._print(message)

    def started(self, environment: str, action: str, operation_id: str, total: int) -> None:
        self.env[operation_id] = environment
        self.seen.setdefault(operation_id, {})
        count = f" on {total} instance{'s' if total != 1 else ''}" if total else ""
        self._print(f"{environment}: {action} operation {operation_id} started{count}; waiting")
        err = self.output.err
        if err is not None and err.is_terminal and not self.output.json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(f"{environment}: {action}", total=total or None)

    def progress(self, operation_id: str, status: OperationStatus, results: Sequence[InstanceResult]) -> None:
        env = self.env.get(operation_id, "")
        seen = self.seen.setdefault(operation_id, {})
        done = sum(1 for r in results if r.status.finished)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=max(len(results), 1),
                            description=f"{env}: {status.value.lower()}")
        if self.status.get(operation_id) != status.value:
            self.status[operation_id] = status.value
            self._print(f"{env}: operation {operation_id} {status.value} ({done}/{len(results)} instances done)")
        for r in results:
            if seen.get((r.account, r.region)) != r.status.value:
                seen[(r.account, r.region)] = r.status.value
                reason = f" — {r.reason}" if r.reason and not r.status.ok else ""
                self._print(f"  {env} {r.account} {r.region}: {r.status.value}{reason}")

    def close(self) -> None:
        """Stop the progress bar (also after a failure, a timeout or Ctrl-C)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = self.task = None

    def finished(self, outcome: OperationOutcome) -> None:
        self.close()
        self.output.info(f"{outcome.environment}: operation {outcome.operation_id} {outcome.status.value}")
