"""The project's cfn-lint rules (lint/cfnlint_rules, E9101-E9105) and the committed config.

GIVEN the committed .cfnlintrc.yaml (informational checks on, project rules appended and
mandatory), WHEN cfn-lint runs on the small bad templates in tests/fixtures/templates, THEN each
rule reports exactly the flaws planted there (and nothing on the "quiet" lines next to them);
WHEN it runs on every template in cfn/, THEN it reports nothing at all.

cfn-lint runs as a subprocess from the repository root, exactly as a developer or CI would, so the
config file, rule loading and mandatory checks are all exercised.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "templates"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
PROJECT_RULES = ("E9101", "E9102", "E9103", "E9104", "E9105")

# fixture -> Counter of (rule id, line) the rule must report, nothing more, nothing less.
EXPECTED = {
    "bad_iam_actions.yaml": Counter({
        ("E9101", 20): 1,   # Action "*"
        ("E9101", 23): 2,   # s3:* and dynamodb:Get* in an Allow
        ("E9101", 26): 2,   # Allow + NotAction (and its wildcard)
        ("E9101", 29): 1,   # wildcard service in a Deny
        ("E9101", 58): 1,   # ignored in Metadata, reported anyway: the rule is mandatory
    }),
    "bad_iam_resources.yaml": Counter({
        ("E9102", 13): 1,   # s3:GetObject on "*"
        ("E9102", 16): 1,   # PutMetricData without cloudwatch:namespace
        ("E9102", 20): 1,   # NotResource
        ("E9102", 31): 1,   # "*" hidden in an Fn::If branch
    }),
    "bad_trust_policy.yaml": Counter({
        ("E9103", 16): 1,   # account root ARN
        ("E9103", 27): 1,   # bare account id
        ("E9103", 28): 1,   # !Sub ...:root of an account parameter
        ("E9103", 29): 1,   # !Ref of an account parameter
        ("E9103", 39): 1,   # Principal "*"
        ("E9103", 62): 1,   # GitHub's OIDC provider with the audience but no subject
    }),
    "bad_s3_bucket.yaml": Counter({
        ("E9104", 4): 4,    # PlainBucket: versioning, encryption, public access block, TLS policy
        ("E9104", 6): 1,    # AlmostBucket: its policy has no TLS deny
        ("E9104", 8): 1,    # AlmostBucket: RestrictPublicBuckets false
    }),
    "bad_lambda_function.yaml": Counter({
        ("E9105", 22): 2,   # BareFunction: no DLQ, no log group
        ("E9105", 42): 1,   # UnretainedLogGroup: no retention
    }),
}


def _cfn_lint(*paths: Path) -> list[dict]:
    """cfn-lint's JSON findings, run from the repository root so .cfnlintrc.yaml applies."""
    result = subprocess.run(
        [str(CFN_LINT), "-f", "json", "--", *(str(p.relative_to(REPO)) for p in paths)],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.stderr.strip() == "", result.stderr
    return json.loads(result.stdout or "[]")


@pytest.fixture(scope="module")
def fixture_findings() -> dict[str, list[dict]]:
    findings = _cfn_lint(*sorted(FIXTURES.glob("*.yaml")))
    by_file: dict[str, list[dict]] = {}
    for finding in findings:
        by_file.setdefault(Path(finding["Filename"]).name, []).append(finding)
    return by_file


def test_config_enables_informational_checks_project_rules_and_makes_them_mandatory():
    config = yaml.safe_load((REPO / ".cfnlintrc.yaml").read_text())
    assert config["include_checks"] == ["I"]
    assert config["regions"] == ["us-east-1"]
    assert config["append_rules"] == ["lint/cfnlint_rules"]
    assert sorted(config["mandatory_checks"]) == list(PROJECT_RULES)


def test_every_fixture_is_covered():
    assert sorted(p.name for p in FIXTURES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_rule_fires_exactly_on_the_planted_flaws(fixture_findings, fixture):
    got = Counter(
        (f["Rule"]["Id"], f["Location"]["Start"]["LineNumber"])
        for f in fixture_findings.get(fixture, [])
        if f["Rule"]["Id"] in PROJECT_RULES
    )
    assert got == EXPECTED[fixture]


def test_project_rules_are_loaded_under_their_ids():
    result = subprocess.run([str(CFN_LINT), "--list-rules"], cwd=REPO, capture_output=True, text=True, check=True)
    listed = {line.split(":", 1)[0] for line in result.stdout.splitlines()}
    assert set(PROJECT_RULES) <= listed


def test_every_cfn_template_is_lint_clean_with_the_committed_config():
    templates = sorted((REPO / "cfn").glob("*.yaml"))
    assert {p.name for p in templates} >= {
        "replication.yaml", "stackset-administration-role.yaml", "stackset-execution-role.yaml"
    }
    findings = _cfn_lint(*templates)
    assert findings == [], "\n".join(
        f'{f["Filename"]}:{f["Location"]["Start"]["LineNumber"]} {f["Rule"]["Id"]} {f["Message"]}' for f in findings
    )


def test_config_template_glob_covers_every_cfn_template():
    config = yaml.safe_load((REPO / ".cfnlintrc.yaml").read_text())
    covered = {p for pattern in config["templates"] for p in REPO.glob(pattern)}
    assert covered == set((REPO / "cfn").glob("*.yaml"))


@pytest.mark.parametrize("template", sorted(p.name for p in (REPO / "cfn").glob("*.yaml")))
def test_every_resource_has_a_comment_saying_why_it_exists(template):
    """Each resource is introduced by a "# Why: ..." comment block (DESIGN §1)."""
    lines = (REPO / "cfn" / template).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if re.fullmatch(r"  [A-Za-z0-9]+:", line)]
    in_resources = lines.index("Resources:")
    end = next((i for i, line in enumerate(lines) if i > in_resources and re.fullmatch(r"[A-Za-z]+:", line)), len(lines))
    missing = []
    for start in (s for s in starts if in_resources < s < end):
        block = []
        i = start - 1
        while i >= 0 and lines[i].startswith("  #"):
            block.append(lines[i])
            i -= 1
        if not any(line.strip().startswith("# Why:") for line in block):
            missing.append(lines[start].strip())
    assert missing == []
