"""Every rule of the strict environments.yaml loader, with the exact path, line and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from replctl.config import Config, load_config, parse_config
from replctl.errors import ConfigError, ExitCode
from tests.conftest import REPO

VALID = """\
version: 1
admin:
  account_id: "123456789012"
stackset:
  name: replctl-replication
  template: t.yaml
  home_region: us-east-1
  artifact_bucket: replctl-artifacts-{account_id}-{region}
ssm_prefix: /app
parameters:
  ResourcePrefix: replctl
environments:
  - name: dev
    account_id: "111111111111"
    regions: [us-east-1]
    ssm_path: /app/dev/config
  - name: staging
    account_id: "222222222222"
    regions: [us-east-1]
    ssm_path: /app/staging/config
  - name: prod
    account_id: "333333333333"
    regions: [us-east-1]
    ssm_path: /app/prod/config
    parameters:
      LogRetentionDays: 365
"""


@pytest.fixture()
def where(tmp_path: Path) -> Path:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    return tmp_path / "environments.yaml"


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing `needle`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth - 1]


def problems(text: str, where: Path) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, where)
    assert info.value.exit_code == ExitCode.CONFIG
    return info.value.problems


def test_valid_config_loads_into_frozen_values(where: Path) -> None:
    config = parse_config(VALID, where)
    assert isinstance(config, Config)
    assert config.names == ("dev", "staging", "prod")
    assert config.environment("prod").parameters == {"LogRetentionDays": "365"}
    assert config.environment("dev").instances() == (("111111111111", "us-east-1"),)
    assert config.stackset.artifact_bucket_for("123456789012", "eu-west-1") == "replctl-artifacts-123456789012-eu-west-1"
    with pytest.raises(AttributeError):
        config.environments[0].name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.environments[0].parameters["x"] = "y"  # type: ignore[index]


def test_the_example_estate_loads() -> None:
    config = load_config(REPO / "environments.yaml")
    assert config.names == ("dev", "staging", "prod")
    assert config.stackset.operation_preferences.to_api(["us-east-1"])["FailureToleranceCount"] == 0


def test_empty_file(where: Path) -> None:
    with pytest.raises(ConfigError, match="the file is empty"):
        parse_config("# only a comment\n", where)


def test_yaml_syntax_error_names_the_line(where: Path) -> None:
    text = VALID.replace("regions: [us-east-1]\n    ssm_path: /app/dev", "regions: [us-east-1\n    ssm_path: /app/dev", 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text, where)
    assert "not valid YAML (line" in info.value.message


def test_top_level_not_a_mapping(where: Path) -> None:
    assert problems("- a\n- b\n", where) == ("top level (line 1): must be a mapping, not a list",)


def test_unknown_key_with_did_you_mean(where: Path) -> None:
    text = VALID.replace("    ssm_path: /app/staging/config", "    ssm_pth: /app/staging/config")
    got = problems(text, where)
    line = line_of(text, "ssm_pth")
    assert f"environments[1].ssm_pth (line {line}): unknown key 'ssm_pth'; did you mean 'ssm_path'?" in got
    assert f"environments[1] (line {line_of(text, '- name: staging')}): missing required key 'ssm_path'" in got


def test_missing_required_key(where: Path) -> None:
    text = VALID.replace("  home_region: us-east-1\n", "")
    assert problems(text, where) == (f"stackset (line {line_of(text, 'name: replctl-replication')}): "
                                     "missing required key 'home_region'",)


def test_wrong_types(where: Path) -> None:
    text = VALID.replace("regions: [us-east-1]", "regions: us-east-1", 1).replace("version: 1", "version: one")
    got = problems(text, where)
    assert f"version (line 1): must be an integer, not the string 'one'" in got
    assert (f"environments[0].regions (line {line_of(text, 'regions: us-east-1')}): "
            "must be a list, not the string 'us-east-1'") in got


def test_duplicate_environment_names(where: Path) -> None:
    text = VALID.replace("- name: staging", "- name: dev")
    got = problems(text, where)
    assert (f"environments[1].name (line {line_of(text, '- name: dev', 2)}): "
            "duplicate environment name 'dev' (also environments[0])") in got


def test_same_account_in_two_environments(where: Path) -> None:
    text = VALID.replace('account_id: "333333333333"', 'account_id: "222222222222"')
    got = problems(text, where)
    assert (f"environments[2].account_id (line {line_of(text, '222222222222', 2)}): account 222222222222 is "
            "already used by environment 'staging'; each account belongs to one environment") in got


def test_account_id_unquoted_number_that_lost_its_leading_zero(where: Path) -> None:
    # 012345670123 is an octal number to YAML 1.1: loaded naively it would become 1402941523.
    text = VALID.replace('account_id: "333333333333"', "account_id: 012345670123")
    got = problems(text, where)
    assert got == (f"environments[2].account_id (line {line_of(text, '012345670123')}): must be a 12-digit "
                   "string in quotes; YAML read the unquoted 012345670123 as a number (which drops leading "
                   'zeros): write "012345670123"',)


@pytest.mark.parametrize("raw", ["333333333333", "012345678901"])
def test_account_id_any_unquoted_digits_are_refused(where: Path, raw: str) -> None:
    text = VALID.replace('account_id: "333333333333"', f"account_id: {raw}")
    got = problems(text, where)
    assert got == (f"environments[2].account_id (line {line_of(text, raw)}): must be a 12-digit string in "
                   f"quotes; YAML read the unquoted {raw} as a number (which drops leading zeros): "
                   f'write "{raw}"',)


def test_account_id_wrong_length_and_non_digits(where: Path) -> None:
    text = VALID.replace('"222222222222"', '"22222222222"').replace('"333333333333"', '"33333333333x"')
    got = problems(text, where)
    assert (f"environments[1].account_id (line {line_of(text, '22222222222')}): must be a 12-digit string "
            "('22222222222' has 11 digits)") in got
    assert (f"environments[2].account_id (line {line_of(text, '33333333333x')}): must be a 12-digit string "
            "('33333333333x' has non-digits)") in got


def test_malformed_region(where: Path) -> None:
    text = VALID.replace("regions: [us-east-1]", "regions: [us-east-1, US_EAST_1]", 1)
    assert problems(text, where) == (f"environments[0].regions[1] (line {line_of(text, 'US_EAST_1')}): "
                                     "'US_EAST_1' is not a region name like 'us-east-1'",)


def test_ssm_path_not_under_prefix_and_environment(where: Path) -> None:
    text = VALID.replace("ssm_path: /app/prod/config", "ssm_path: /app/staging/config")
    assert problems(text, where) == (f"environments[2].ssm_path (line {line_of(text, 'ssm_path: /app/staging', 2)}): "
                                     "'/app/staging/config' is not under the configured prefix and environment: "
                                     "expected '/app/prod/config'",)


def test_every_problem_is_reported_at_once_in_line_order(where: Path) -> None:
    text = (VALID.replace("version: 1", "version: 1\nverison: 2")
            .replace('"111111111111"', "111111111111")
            .replace("home_region: us-east-1", "home_region: useast1"))
    got = problems(text, where)
    assert len(got) == 3
    assert [int(p.split("(line ")[1].split(")")[0]) for p in got] == sorted(
        int(p.split("(line ")[1].split(")")[0]) for p in got)
    assert got[0].startswith("verison (line 2): unknown key 'verison'; did you mean 'version'?")


def test_duplicate_yaml_keys_are_errors(where: Path) -> None:
    text = VALID.replace("ssm_prefix: /app\n", "ssm_prefix: /app\nssm_prefix: /other\n")
    assert problems(text, where) == ("ssm_prefix (line 10): duplicate key (first at line 9)",)


def test_reserved_parameter_cannot_be_configured(where: Path) -> None:
    text = VALID.replace("  ResourcePrefix: replctl", "  Environment: prod")
    assert problems(text, where) == (f"parameters.Environment (line {line_of(text, 'Environment: prod')}): "
                                     "'Environment' is set by replctl and cannot be configured",)


def test_environments_must_follow_the_replication_order(where: Path) -> None:
    text = VALID.replace("- name: staging", "- name: TMP").replace("- name: prod", "- name: staging")
    text = text.replace("- name: TMP", "- name: prod").replace("/app/staging/config", "X").replace(
        "/app/prod/config", "/app/staging/config").replace("X", "/app/prod/config")
    got = problems(text, where)
    assert got == (f"environments (line {line_of(text, '- name: dev')}): environments must be dev, staging, "
                   "prod in that order (replication flows one way, in rollout order); found dev, prod, staging",)


def test_unknown_environment_name_lists_the_valid_ones(where: Path) -> None:
    config = parse_config(VALID, where)
    with pytest.raises(ConfigError) as info:
        config.select(["qa"])
    assert info.value.message == "unknown environment 'qa' (valid: dev, staging, prod)."
    with pytest.raises(ConfigError, match="Did you mean 'prod'"):
        config.select(["prd"])
    assert [e.name for e in config.select(["prod", "dev"])] == ["dev", "prod"]


def test_operation_preferences_are_exclusive_and_bounded(where: Path) -> None:
    text = VALID.replace(
        "  artifact_bucket:",
        "  operation_preferences:\n    failure_tolerance_count: 0\n    failure_tolerance_percentage: 120\n"
        "  artifact_bucket:",
    )
    got = problems(text, where)
    assert any("set failure_tolerance_count or failure_tolerance_percentage, not both" in p for p in got)
    assert any("failure_tolerance_percentage" in p and "must be at most 100, not 120" in p for p in got)


def test_missing_template_file(where: Path) -> None:
    (where.parent / "t.yaml").unlink()
    got = problems(VALID, where)
    assert got == (f"stackset.template (line 6): no template file at {where.parent / 't.yaml'}",)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")


def test_every_environment_runs_in_the_regions_of_the_ones_before_it(where: Path) -> None:
    """The agent role of a region trusts the upstream function roles of that region, and functions
    reach downstream in their own region: different regions would break replication silently."""
    text = VALID.replace("regions: [us-east-1]", "regions: [us-east-1, eu-west-1]", 1)
    got = problems(text, where)
    assert any(p.startswith("environments[1].regions") and "staging must also run in eu-west-1 (where dev runs)" in p
               for p in got), got
    assert any(p.startswith("environments[2].regions") for p in got), got
    # A downstream environment may run in more regions than the ones before it.
    more = VALID.replace("regions: [us-east-1]", "regions: [us-east-1, eu-west-1]").replace(
        "regions: [us-east-1, eu-west-1]", "regions: [us-east-1]", 2)
    assert [e.regions for e in parse_config(more, where).environments] == [
        ("us-east-1",), ("us-east-1",), ("us-east-1", "eu-west-1")]


def test_strict_failure_tolerance_bounds_max_concurrent_count(where: Path) -> None:
    prefs = "  operation_preferences:\n    failure_tolerance_count: 1\n    max_concurrent_count: {}\n{}  artifact_bucket:"
    over = problems(VALID.replace("  artifact_bucket:", prefs.format(3, "")), where)
    assert any("stackset.operation_preferences.max_concurrent_count" in p and "failure_tolerance_count + 1 (2)" in p
               for p in over), over
    at_bound = parse_config(VALID.replace("  artifact_bucket:", prefs.format(2, "")), where)
    assert at_bound.stackset.operation_preferences.max_concurrent_count == 2
    soft = "    concurrency_mode: SOFT_FAILURE_TOLERANCE\n"
    parse_config(VALID.replace("  artifact_bucket:", prefs.format(3, soft)), where)
