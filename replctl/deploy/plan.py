"""The entry point of planning: check the template, read AWS, decide. Makes no mutating call.

`build_plan` checks the template (YAML, cfn-lint) and the configured parameters before any AWS
call, reads what is deployed (`observe`), and hands both to `decide`, a pure function that
returns the `Plan` value (`model`). `plan`, `deploy --dry-run` and `deploy` all show that same
value; nothing below the CLI knows about dry runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from replctl.config import Config
from replctl.deploy.decide import decide
from replctl.deploy.model import ArtifactLike, Clients, Plan
from replctl.deploy.observe import observe
from replctl.deploy.parameters import check_parameters
from replctl.deploy.template import Template, identity, lint_template, load_template


def prepare_template(
    config: Config,
    template_transform: Callable[[str], str] = identity,
    *,
    lint: bool = True,
    note: Callable[[str], None] | None = None,
) -> Template:
    """Load the template (YAML check), lint the file, apply the transform. No AWS call."""
    template = load_template(config.stackset.template, template_transform)
    if lint:
        lint_template(config.stackset.template, config.regions, note=note)
    return template


def build_plan(
    config: Config,
    clients: Clients,
    *,
    artifacts: Sequence[ArtifactLike],
    template_transform: Callable[[str], str] = identity,
    only: str | None = None,
    force: bool = False,
    lint: bool = True,
    note: Callable[[str], None] | None = None,
    template: Template | None = None,
) -> Plan:
    """Check the template, read AWS, and decide. Makes no mutating call.

    `template_transform` is applied to the template text before it is compared with the stack
    set and uploaded (identity by default; the sandbox passes its adapter). Pass `template` when
    `prepare_template` already ran.
    """
    if only is not None:
        config.environment(only)  # unknown names are a ConfigError before anything else
    if template is None:
        template = prepare_template(config, template_transform, lint=lint, note=note)
    check_parameters(config, template, artifacts)
    observed = observe(config, clients, template, artifacts)
    return decide(config, template, artifacts, observed, only=only, force=force)
