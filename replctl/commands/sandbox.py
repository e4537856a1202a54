"""`replctl sandbox start|stop|status|reset|invoke`: the local estate on an emulator (replctl/sandbox/)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from replctl.commands import Command, command_app, state

app = command_app(
    name="sandbox",
    help="Run the whole estate locally on moto's server: an admin account and dev, staging, prod accounts "
    "bootstrapped with the StackSet roles.\n\nThen use `--sandbox` (or REPLCTL_SANDBOX=1) on any command.",
    no_args_is_help=True,
)


@app.callback()
def _sandbox_mode(ctx: typer.Context) -> None:
    # Every sandbox subcommand works on the sandbox estate (environments.sandbox.yaml).
    state(ctx).sandbox = True


@app.command("start", cls=Command)
def start_cmd(
    ctx: typer.Context,
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0 = any free port)."),
) -> None:
    """Start the emulator in the background (idempotent) and bootstrap the accounts."""
    from replctl.sandbox.bootstrap import bootstrap
    from replctl.sandbox.state import start_server

    st = state(ctx)
    info, started = start_server(port)
    if started:
        st.output.info(f"sandbox started at {info.endpoint} (pid {info.pid}, log {info.log})")
        summary = bootstrap(st.config(), info.endpoint, log=st.output.info)
    else:
        st.output.info(f"sandbox already running at {info.endpoint} (pid {info.pid})")
        summary = None
    if st.output.json:
        st.output.emit_json({"endpoint": info.endpoint, "pid": info.pid, "started": started, "bootstrap": summary})


@app.command("stop", cls=Command)
def stop_cmd(ctx: typer.Context) -> None:
    """Stop the emulator; its state is discarded and no process is left behind."""
    from replctl.sandbox.state import stop_server

    st = state(ctx)
    info = stop_server()
    if st.output.json:
        st.output.emit_json({"stopped": info is not None, "pid": info.pid if info else None})
    elif info is None:
        st.output.info("sandbox was not running")
    else:
        st.output.info(f"sandbox stopped (pid {info.pid})")


@app.command("status", cls=Command)
def status_cmd(ctx: typer.Context) -> None:
    """Is the emulator running, where, and is it answering? Exit 40 when it is not running."""
    from replctl.errors import SandboxError
    from replctl.sandbox.state import healthy, running

    st = state(ctx)
    info = running()
    ok = info is not None and healthy(info.endpoint)
    if st.output.json:
        st.output.emit_json({"running": info is not None, "healthy": ok, **(info.to_dict() if info else {})})
    elif info is not None:
        st.output.line(f"sandbox running at {info.endpoint} (pid {info.pid}); "
                       f"{'answering' if ok else 'NOT answering'}; log {info.log}")
    if info is None:
        raise SandboxError("the sandbox is not running", hint="run `replctl sandbox start`")
    if not ok:
        raise SandboxError(f"the sandbox process {info.pid} does not answer", hint="run `replctl sandbox stop`")


@app.command("reset", cls=Command)
def reset_cmd(ctx: typer.Context) -> None:
    """Forget every resource in the emulator, then bootstrap the accounts again."""
    from replctl.errors import SandboxError
    from replctl.sandbox.bootstrap import bootstrap
    from replctl.sandbox.state import forget_queued_events, post, running

    st = state(ctx)
    info = running()
    if info is None:
        raise SandboxError("the sandbox is not running", hint="run `replctl sandbox start`")
    post(info.endpoint, "/moto-api/reset")
    forget_queued_events()
    summary = bootstrap(st.config(), info.endpoint, log=st.output.info)
    if st.output.json:
        st.output.emit_json({"reset": True, "bootstrap": summary})
    else:
        st.output.info("sandbox reset and bootstrapped")


@app.command("invoke", cls=Command, epilog=(
    "Examples:  replctl --sandbox sandbox invoke replication-monitor --env dev   (the heartbeat schedule: "
    "heartbeat, lag, S3 replication)  ·  "
    "replctl --sandbox sandbox invoke replication-monitor --env dev --kind queued   (the Parameter Store "
    "changes EventBridge routed to it)  ·  replctl --sandbox sandbox invoke stream-processor --env dev   "
    "(the table's new stream records)  ·  replctl --sandbox sandbox invoke config-validator -e dev -e staging "
    "-e prod   (the validation sweep in each environment)"))
def invoke_cmd(
    ctx: typer.Context,
    function: str = typer.Argument(..., help="replication-monitor, config-validator or stream-processor."),
    env: list[str] = typer.Option(..., "--env", "-e", help="Environment whose deployed function to run; "
                                  "repeat it to run the function of each, in the order given."),
    event: Path = typer.Option(None, "--event", help="Event JSON file (default: a built-in event for the function).",
                               exists=True, dir_okay=False),
    kind: str = typer.Option(None, "--kind", help="Built-in event when --event is absent: schedule "
                             "(heartbeat rule), validation (validation-sweep rule), stream (the table's new "
                             "stream records), queued (every event EventBridge routed to the function, one "
                             "invocation each), ssm-change (a Parameter Store Change for --name)."),
    name: str = typer.Option(None, "--name", help="Parameter name for --kind ssm-change."),
) -> None:
    """Run a function's real handler in-process against the sandbox, as `sam local invoke` would.

    The handler gets the environment variables of the deployed function and credentials of the
    function's account; its EMF metric lines are delivered to the sandbox's CloudWatch. Without
    --event or --kind: replication-monitor runs its heartbeat schedule, config-validator its
    validation sweep, stream-processor the table's new stream records. Each run prints its
    response on one line (`-o json`: the whole result).
    """
    from replctl.errors import ConfigError, SandboxError
    from replctl.sandbox.invoke import invoke

    st = state(ctx)
    st.config()
    st.factory()  # checks the sandbox is running
    try:
        payload = json.loads(event.read_text()) if event is not None else None
    except ValueError as exc:
        raise ConfigError(f"--event {event}: not JSON ({exc})", hint="pass an event as AWS delivers it") from exc
    results = [invoke(st.config(), st.factory(), function, e, event=payload, kind=kind, name=name,
                      log=st.output.info) for e in env]
    if st.output.json:
        st.output.emit_json(results[0] if len(results) == 1 else results)
    else:
        for result in results:
            responses = result["response"] if result.get("event_kind") == "queued" else [result.get("response")]
            for response in responses:
                st.output.line(json.dumps(response, default=str))
    errors = [f"{r['environment']}: {r['error']}" for r in results if r.get("error")]
    if errors:
        raise SandboxError(f"the handler raised {'; '.join(errors)}",
                           hint="AWS would retry the event and then send it to the function's DLQ")
