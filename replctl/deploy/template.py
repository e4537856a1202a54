"""The StackSet template: load it, check it, read its parameters, decide how to send it.

Checks run before any AWS call: the text must be a YAML/JSON mapping with `Resources` (the
CloudFormation short-form tags such as `!Ref` are understood), and cfn-lint must report no error
or warning — the same bar `make lint` sets, with the project's own rules (E91xx: least privilege,
bucket and function hardening) taken from the rules bundled with replctl and made mandatory, so the
gate is the same whatever directory replctl runs in. cfn-lint (a runtime dependency) runs
in-process when it is importable, else as the `cfn-lint` command, else the check is skipped with a
note. Lint results are cached by content hash for the life of the process.

`template_transform` is the only seam for changing the text before it is compared with the
stack set and uploaded (identity by default). Linting always looks at the file on disk: the
template is written for AWS, and an emulator adapter must not hide a finding.

CloudFormation takes at most 51,200 bytes inline (`TemplateBody`); anything larger must be
uploaded to S3 and passed as `TemplateURL` (AWS CloudFormation quotas). The URL's host carries
the DNS suffix of the region's partition (`amazonaws.com`, `amazonaws.com.cn` in aws-cn, ...),
which botocore's endpoint data knows.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from replctl.errors import ConfigError, TemplateError

#: CloudFormation's limit for `TemplateBody`; larger templates go through S3 (`TemplateURL`).
INLINE_LIMIT_BYTES = 51_200


def identity(text: str) -> str:
    return text


@functools.lru_cache(maxsize=None)
def dns_suffix(region: str) -> str:
    """The DNS suffix of `region`'s partition, from botocore's endpoint data (no hand table)."""
    from botocore.exceptions import UnknownRegionError
    from botocore.loaders import create_loader
    from botocore.regions import EndpointResolver

    resolver = EndpointResolver(create_loader().load_data("endpoints"))
    try:
        partition = resolver.get_partition_for_region(region)
    except UnknownRegionError:
        raise ConfigError(f"region {region} is in no partition botocore knows",
                          hint="check the region name, or upgrade boto3/botocore if the region is new") from None
    return str(resolver.get_partition_dns_suffix(partition))


def s3_object_url(bucket: str, region: str, key: str) -> str:
    """The virtual-hosted-style HTTPS URL CloudFormation reads a `TemplateURL` from."""
    return f"https://{bucket}.s3.{region}.{dns_suffix(region)}/{key}"


@dataclass(frozen=True)
class TemplateParameter:
    """One entry of the template's `Parameters` section."""

    name: str
    type: str
    default: str | None
    no_echo: bool = False


@dataclass(frozen=True)
class Template:
    """The template as replctl will send it (after the transform)."""

    path: Path
    text: str
    parameters: Mapping[str, TemplateParameter]

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def needs_url(self) -> bool:
        """True when the template is too large to pass inline."""
        return self.size > INLINE_LIMIT_BYTES


@dataclass(frozen=True)
class Finding:
    """One cfn-lint result."""

    rule: str
    severity: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.rule} ({self.severity}) {self.message}"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation's short-form intrinsic tags (!Ref, !Sub, ...)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def parse_template(text: str, where: str) -> dict[str, Any]:
    """The template as a mapping; TemplateError (with the line) if it is not one."""
    try:
        doc = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(f"{where}: not valid YAML{line}: {problem}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise TemplateError(f"{where}: not valid YAML: nested too deeply") from None
    if not isinstance(doc, dict):
        raise TemplateError(f"{where}: a template must be a mapping with a Resources section")
    if not isinstance(doc.get("Resources"), dict) or not doc["Resources"]:
        raise TemplateError(f"{where}: the template has no Resources")
    return doc


def template_parameters(doc: Mapping[str, Any], where: str) -> Mapping[str, TemplateParameter]:
    """The declared parameters, with defaults rendered as CloudFormation strings."""
    raw = doc.get("Parameters") or {}
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: Parameters must be a mapping")
    out: dict[str, TemplateParameter] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or "Type" not in spec:
            raise TemplateError(f"{where}: parameter {name} needs a Type")
        default = spec.get("Default")
        out[str(name)] = TemplateParameter(
            name=str(name),
            type=str(spec["Type"]),
            default=None if default is None else _cfn_string(default),
            no_echo=str(spec.get("NoEcho", "false")).lower() == "true",
        )
    return MappingProxyType(out)


def _cfn_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_cfn_string(v) for v in value)
    return str(value)


def load_template(path: Path, transform: Callable[[str], str] = identity) -> Template:
    """Read and parse the template, apply the transform, and read its parameters."""
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read the template {path}: {exc.strerror or exc}") from None
    parse_template(original, str(path))
    text = transform(original)
    doc = parse_template(text, f"{path} (as transformed)") if text != original else parse_template(text, str(path))
    return Template(path=path, text=text, parameters=template_parameters(doc, str(path)))


# --------------------------------------------------------------------------- cfn-lint

_LINT_CACHE: dict[tuple[str, tuple[str, ...]], tuple[Finding, ...]] = {}


def lint_findings(path: Path, regions: Sequence[str], *,
                  note: Callable[[str], None] | None = None) -> tuple[Finding, ...] | None:
    """Every cfn-lint finding of the file, informational ones too (None: cfn-lint is unavailable)."""
    text = path.read_bytes()
    key = (hashlib.sha256(text).hexdigest(), tuple(sorted(regions)))
    findings = _LINT_CACHE.get(key)
    if findings is None:
        found = _lint(path, list(regions), note)
        if found is None:
            return None
        findings = tuple(found)
        _LINT_CACHE[key] = findings
    return findings


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    """The findings the gate refuses a template for: errors and warnings."""
    return [f for f in findings if f.severity in ("error", "warning")]


def lint_template(path: Path, regions: Sequence[str], *, note: Callable[[str], None] | None = None) -> None:
    """Run cfn-lint on the file; TemplateError listing every error and warning."""
    findings = lint_findings(path, regions, note=note)
    if findings is None:
        return
    refused = blocking(findings)
    if refused:
        listing = "\n".join(f"  - {f}" for f in refused)
        raise TemplateError(
            f"{path}: cfn-lint found {len(refused)} problem{'s' if len(refused) != 1 else ''}\n{listing}",
            hint="fix the template (run `make lint`); nothing was sent to AWS",
        )


#: The project's rule ids start with this; mandatory, so a template's Metadata cannot switch them off.
PROJECT_RULES = "E91"


def _lint(path: Path, regions: list[str], note: Callable[[str], None] | None) -> list[Finding] | None:
    try:
        from cfnlint.api import lint_file
    except ImportError:
        return _lint_subprocess(path, regions, note)
    from replctl.resources import bundle

    # A plain mapping: cfn-lint's ConfigMixIn reads append_rules from the manual arguments too,
    # though its ManualArgs type does not list it.
    config: Any = {"regions": regions, "append_rules": [str(bundle().lint_rules)], "mandatory_checks": [PROJECT_RULES]}
    matches = lint_file(path, config=config)
    return [Finding(m.rule.id, str(m.rule.severity).lower(), int(m.linenumber), m.message) for m in matches]


def _lint_subprocess(path: Path, regions: list[str], note: Callable[[str], None] | None) -> list[Finding] | None:
    from replctl.resources import bundle

    exe = shutil.which("cfn-lint")
    if exe is None:
        if note is not None:
            note("cfn-lint is not installed: the template was not linted (pip install cfn-lint)")
        return None
    proc = subprocess.run(  # noqa: S603 - fixed executable, our own file
        [exe, "--format", "parseable", "--regions", *regions, "--append-rules", str(bundle().lint_rules),
         "--mandatory-checks", PROJECT_RULES, "--", str(path)],
        capture_output=True, text=True, check=False,
    )
    findings = []
    for line in proc.stdout.splitlines():
        # parseable: file:line:col:endline:endcol:rule:message
        parts = line.split(":", 6)
        if len(parts) == 7:
            rule = parts[5]
            severity = {"E": "error", "W": "warning"}.get(rule[:1], "informational")
            findings.append(Finding(rule, severity, int(parts[1]), parts[6]))
    if proc.returncode not in (0, 2, 4, 6, 8, 10, 12, 14) and not findings:
        raise TemplateError(f"cfn-lint could not check {path}: {proc.stderr.strip()[:500]}")
    return findings
