"""The values replctl gives the template: stack-set parameters, switches, artifact and template keys.

The per-environment switches (`ReplicateTo<Env>`), the account ids, and where the function ZIPs
and the template are uploaded.

A new template parameter that replctl computes starts here (`desired_parameters`); one the
operator sets needs nothing but `environments.yaml` (`check_parameters` verifies every
configured and required parameter against the template before any AWS call). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from replctl.config import Config
from replctl.deploy.model import ArtifactLike
from replctl.deploy.template import Template, s3_object_url
from replctl.errors import ConfigError, TemplateError

#: Which template parameter carries which function's ZIP key (docs/contract.md).
FUNCTION_PARAMETERS = {
    "replication_monitor": "ReplicationMonitorCodeKey",
    "config_validator": "ConfigValidatorCodeKey",
    "stream_processor": "StreamProcessorCodeKey",
}


def flag_parameter(environment: str) -> str:
    """The template parameter switching replication towards `environment` on."""
    return f"ReplicateTo{environment[:1].upper()}{environment[1:]}"


def account_parameter(environment: str) -> str:
    return f"AccountId{environment[:1].upper()}{environment[1:]}"


def artifact_key(config: Config, artifact: ArtifactLike) -> str:
    return f"{config.stackset.artifact_prefix}{artifact.key}"


def template_key(config: Config, template: Template) -> str:
    return f"{config.stackset.artifact_prefix}templates/{config.stackset.name}-{template.sha256[:16]}.yaml"


def template_url(bucket: str, region: str, key: str) -> str:
    """Where CloudFormation reads the uploaded template; the host follows the region's partition."""
    return s3_object_url(bucket, region, key)


def artifact_bucket(config: Config, region: str) -> str:
    return config.stackset.artifact_bucket_for(config.admin.account_id, region)


def desired_parameters(config: Config, template: Template, artifacts: Sequence[ArtifactLike]) -> dict[str, str]:
    """Stack-set-level parameters: the common ones plus those replctl computes.

    `Environment` here is the first environment's; every instance overrides it. The replication
    targets default to off at stack-set level; each instance overrides them.
    """
    computed: dict[str, str] = {
        "Environment": config.environments[0].name,
        "AdminAccountId": config.admin.account_id,
        "SSMPathPrefix": config.ssm_prefix,
        "ArtifactBucketName": artifact_bucket(config, config.stackset.home_region),
        "ObserverRoleName": config.observer_role_name,
    }
    for env in config.environments:
        computed[account_parameter(env.name)] = env.account_id
        computed[flag_parameter(env.name)] = "false"
    for a in artifacts:
        name = FUNCTION_PARAMETERS.get(a.function)
        if name is not None:
            computed[name] = artifact_key(config, a)
    merged = {**dict(config.parameters), **computed}
    # UpdateStackInstances/CreateStackInstances can only override parameters the stack set has,
    # so every per-environment parameter is also set at stack-set level (to the template default,
    # or the first environment's value when there is none).
    for env in config.environments:
        for name, value in env.parameters.items():
            if name not in merged and name in template.parameters:
                default = template.parameters[name].default
                merged[name] = default if default is not None else value
    return {k: v for k, v in merged.items() if k in template.parameters}


def check_parameters(config: Config, template: Template, artifacts: Sequence[ArtifactLike]) -> None:
    """Every configured parameter exists in the template and every required one gets a value."""
    problems = [f"parameters.{k}: the template has no parameter {k}"
                for k in config.parameters if k not in template.parameters]
    for env in config.environments:
        problems += [f"environments[{env.name}].parameters.{k}: the template has no parameter {k}"
                     for k in env.parameters if k not in template.parameters]
    if problems:
        raise ConfigError(f"{config.path}: {len(problems)} parameter problem{'s' if len(problems) > 1 else ''} "
                          f"against {config.stackset.template.name}", tuple(problems))
    have = set(desired_parameters(config, template, artifacts))
    for env in config.environments:
        have |= set(env.parameters)
    missing = sorted(p.name for p in template.parameters.values() if p.default is None and p.name not in have)
    if missing:
        functions = {v: k for k, v in FUNCTION_PARAMETERS.items()}
        hints = [f"{m} (no {functions[m]} artifact was built)" if m in functions else m for m in missing]
        raise TemplateError(
            f"{template.path}: no value for parameter{'s' if len(missing) > 1 else ''} without a Default: "
            + ", ".join(hints),
            hint="set them under parameters: in environments.yaml",
        )
