"""checkov over cfn/, and the rule that every suppressed finding carries a written reason.

The checkov run is `slow` (~60 s to create .venv-checkov the first time, ~12 s afterwards): it
runs scripts/checkov.sh exactly as CI does and requires no failed check, no parsing error and a
non-zero resource count (checkov exits 0 on an unparseable template, so the count matters).
The reason checks are fast and read the templates only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = sorted((REPO / "cfn").glob("*.yaml"))


def _resources_with_metadata():
    for path in TEMPLATES:
        template, matches = decode(str(path))
        assert not matches, matches
        yield path.name, "(template)", template.get("Metadata") or {}
        for name, resource in (template.get("Resources") or {}).items():
            yield path.name, name, resource.get("Metadata") or {}


def _checkov_skips():
    for template, resource, metadata in _resources_with_metadata():
        for skip in (metadata.get("checkov") or {}).get("skip") or []:
            yield template, resource, skip


def _cfn_lint_ignores():
    for template, resource, metadata in _resources_with_metadata():
        config = (metadata.get("cfn-lint") or {}).get("config")
        if config and config.get("ignore_checks"):
            yield template, resource, config


def skip_problems(skips) -> list[str]:
    """checkov skips that do not name a check or do not say why (at least a short sentence)."""
    problems = []
    for template, resource, skip in skips:
        if not str(skip.get("id", "")).startswith("CKV"):
            problems.append(f"{template}:{resource}: skip without a check id: {skip}")
        if len(str(skip.get("comment") or "").strip()) < 20:
            problems.append(f"{template}:{resource}: skips {skip.get('id')} without a reason")
    return problems


def ignore_problems(ignores) -> list[str]:
    """cfn-lint ignores without an x-reason next to them."""
    return [
        f"{template}:{resource}: ignores {config['ignore_checks']} without x-reason"
        for template, resource, config in ignores
        if not str(config.get("x-reason") or "").strip()
    ]


def test_every_checkov_skip_names_a_check_and_says_why():
    skips = list(_checkov_skips())
    assert skips, "expected the documented checkov skips (docs/template.md)"
    assert skip_problems(skips) == []


def test_every_cfn_lint_ignore_has_an_x_reason():
    assert ignore_problems(_cfn_lint_ignores()) == []


def test_reason_checks_reject_missing_reasons():
    assert skip_problems([("t.yaml", "Bucket", {"id": "CKV_AWS_18"})]) == ["t.yaml:Bucket: skips CKV_AWS_18 without a reason"]
    assert skip_problems([("t.yaml", "Bucket", {"id": "CKV_AWS_18", "comment": "because"})]) != []
    assert skip_problems([("t.yaml", "Bucket", {"comment": "a perfectly good reason, but for what?"})]) != []
    assert ignore_problems([("t.yaml", "Fn", {"ignore_checks": ["W3005"]})]) == ["t.yaml:Fn: ignores ['W3005'] without x-reason"]
    assert ignore_problems([("t.yaml", "Fn", {"ignore_checks": ["W3005"], "x-reason": "kept until v2"})]) == []


@pytest.mark.slow
def test_checkov_passes_with_no_failed_checks_and_parses_every_template():
    result = subprocess.run(
        [str(REPO / "scripts" / "checkov.sh")], cwd=REPO, capture_output=True, text=True, check=False, timeout=900
    )
    # No report at all (checkov could not be installed or did not run) is a failure, never a skip.
    assert result.stdout.strip(), f"scripts/checkov.sh produced no report (exit {result.returncode}):\n{result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    (cloudformation,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    summary = cloudformation["summary"]
    failed = cloudformation["results"].get("failed_checks", [])
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 0
    assert summary["failed"] == 0, "\n".join(f'{f["check_id"]} {f["resource"]} {f["file_path"]}' for f in failed)
    assert result.returncode == 0, result.stderr[-2000:]
    # Every skip checkov applied is one recorded in a template, with its comment.
    applied = {(Path(s["file_path"]).name, s["resource"].split(".", 1)[1], s["check_id"]) for s in cloudformation["results"].get("skipped_checks", [])}
    recorded = {(t, r, s["id"]) for t, r, s in _checkov_skips()}
    assert applied == recorded
