"""`replctl lint`: the deploy gate's template check, on its own and offline (editors, pre-commit, CI)."""

from __future__ import annotations

from pathlib import Path

import typer

from replctl.commands import Command, command_app, state

app = command_app()


@app.command("lint", cls=Command, epilog=(
    "Examples:  replctl lint   (the template environments.yaml names)  ·  replctl lint --template "
    "cfn/replication.yaml -o json  ·  as a pre-commit hook: see .pre-commit-hooks.yaml"))
def lint_cmd(
    ctx: typer.Context,
    template: Path = typer.Option(None, "--template", help="Lint this file instead of the estate's template.",
                                  dir_okay=False, show_default="stackset.template of the estate file"),
) -> None:
    """Lint the estate's template as `deploy` does before any AWS call: cfn-lint with replctl's rules.

    The estate file is loaded strictly first (so a broken environments.yaml fails here too); the
    template is linted for every region the environments run in, with replctl's own rules (least
    privilege, bucket and function hardening) mandatory. Exit 0 when nothing blocks a deploy, 5 when
    an error or warning does. No AWS call.
    """
    from replctl.errors import TemplateError
    from replctl.deploy.template import blocking, lint_findings

    st = state(ctx)
    config = st.config()
    path = template if template is not None else config.stackset.template
    if not path.is_file():
        raise TemplateError(f"no template file at {path}", hint="pass --template PATH or fix stackset.template")
    findings = lint_findings(path, config.regions, note=st.output.note)
    if findings is None:
        raise TemplateError(f"{path} was not linted: cfn-lint is not installed", hint="pip install cfn-lint")
    refused = blocking(findings)
    if st.output.json:
        st.output.emit_json({"template": str(path), "regions": list(config.regions), "ok": not refused,
                             "findings": [{"rule": f.rule, "severity": f.severity, "line": f.line,
                                           "message": f.message} for f in findings]})
    else:
        for f in findings:
            st.output.line(f"{path}:{f}")
    if refused:
        raise TemplateError(f"{path}: {len(refused)} finding(s) would stop a deploy",
                            hint="fix them; `replctl deploy` refuses this template before any AWS call")
    if not st.output.json:
        st.output.info(f"{path}: no finding blocks a deploy ({len(findings)} informational)")
