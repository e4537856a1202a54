"""`replctl init`: the rendered estate files load as written, prompts re-ask on bad answers,
`--no-input` never asks, existing files are never overwritten without `--force`, and `--eject`
copies exactly the bundled template and functions and points the estate at them.

No AWS: the estate files are checked with the strict loader (the same one every command uses).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replctl.cli import app
from replctl.config import load_config, parse_config
from replctl.errors import ExitCode
from replctl.init.estate import SANDBOX_ACCOUNTS, Answers, problems, render_estate, sandbox_answers
from replctl.package import functions_dir
from replctl.resources import BOOTSTRAP_TEMPLATES, TEMPLATE, bundle, tree_sha256

runner = CliRunner()
ACCOUNTS = {"admin": "111122223333", "dev": "222233334444", "staging": "333344445555", "prod": "444455556666"}
ANSWERS = Answers(admin_account=ACCOUNTS["admin"], region="eu-west-1", external_id="replctl-0123456789ab",
                  accounts=(("dev", ACCOUNTS["dev"]), ("staging", ACCOUNTS["staging"]), ("prod", ACCOUNTS["prod"])))
OPTIONS = ["--admin-account", ACCOUNTS["admin"], "--dev-account", ACCOUNTS["dev"], "--staging-account",
           ACCOUNTS["staging"], "--prod-account", ACCOUNTS["prod"]]


def init(*argv: str, input: str | None = None):
    return runner.invoke(app, ["init", *argv], input=input)


def flat(text: str) -> str:
    """Messages as one line (rich wraps stderr at the console width)."""
    return " ".join(text.split())


# -- rendering (pure) ---------------------------------------------------------------------------


def test_rendered_estate_loads_with_the_answers_and_the_bundled_template(tmp_path: Path) -> None:
    config = parse_config(render_estate(ANSWERS), tmp_path / "environments.yaml")
    assert config.admin.account_id == ACCOUNTS["admin"]
    assert [(e.name, e.account_id, e.regions) for e in config.environments] == [
        (e, ACCOUNTS[e], ("eu-west-1",)) for e in ("dev", "staging", "prod")]
    assert config.stackset.home_region == "eu-west-1"
    assert config.stackset.template == bundle().template
    assert config.parameters["ReplicationExternalId"] == "replctl-0123456789ab"
    assert [e.ssm_path for e in config.environments] == ["/app/dev/config", "/app/staging/config", "/app/prod/config"]


def test_sandbox_estate_is_on_the_emulators_accounts(tmp_path: Path) -> None:
    text = render_estate(sandbox_answers(ANSWERS), sandbox=True)
    config = parse_config(text, tmp_path / "environments.sandbox.yaml")
    assert config.admin.account_id == SANDBOX_ACCOUNTS["admin"] == "123456789012"
    assert [e.account_id for e in config.environments] == [SANDBOX_ACCOUNTS[e] for e in ("dev", "staging", "prod")]
    assert config.stackset.managed_execution is False  # the emulator has none
    assert "sandbox" in config.stackset.artifact_bucket


def test_ejected_estate_names_the_copies(tmp_path: Path) -> None:
    text = render_estate(ANSWERS, ejected=True)
    assert "\n  template: cfn/replication.yaml\n" in text
    with pytest.raises(Exception, match="no template file"):  # the copy is not there yet
        parse_config(text, tmp_path / "environments.yaml")
    (tmp_path / "cfn").mkdir()
    (tmp_path / "cfn" / TEMPLATE).write_bytes(bundle().template.read_bytes())
    assert parse_config(text, tmp_path / "environments.yaml").stackset.template == tmp_path / "cfn" / TEMPLATE


def test_every_problem_with_the_answers_is_named() -> None:
    bad = Answers(admin_account="12345", region="mars-1", external_id="x", stack_set="1bad",
                  accounts=(("dev", "222233334444"), ("staging", "222233334444"), ("prod", "0444455556666")))
    found = problems(bad)
    assert any(p.startswith("--admin-account: '12345'") for p in found)
    assert any(p.startswith("--staging-account: 222233334444 is also the dev account") for p in found)
    assert any(p.startswith("--prod-account: '0444455556666'") for p in found)
    assert any(p.startswith("--region: 'mars-1'") for p in found)
    assert any(p.startswith("--stack-set: '1bad'") for p in found)
    assert problems(ANSWERS) == []


# -- the command --------------------------------------------------------------------------------


def test_prompts_ask_for_each_value_and_reask_on_a_bad_one(tmp_path: Path) -> None:
    answers = "\n".join([
        "not-an-account", ACCOUNTS["admin"],           # re-asked after a bad id
        ACCOUNTS["admin"], ACCOUNTS["dev"],             # re-asked: the admin account is taken
        ACCOUNTS["staging"], ACCOUNTS["prod"],
        "Mars", "ap-southeast-2",                       # re-asked after a bad region
    ]) + "\n"
    result = init(str(tmp_path), input=answers)
    assert result.exit_code == 0, result.output
    assert "'not-an-account' is not a 12-digit AWS account id" in flat(result.stderr)
    assert f"{ACCOUNTS['admin']} is already the admin account" in flat(result.stderr)
    assert "'Mars' is not a region name" in flat(result.stderr)
    config = load_config(tmp_path / "environments.yaml")
    assert config.admin.account_id == ACCOUNTS["admin"]
    assert [e.account_id for e in config.environments] == [ACCOUNTS[e] for e in ("dev", "staging", "prod")]
    assert config.stackset.home_region == "ap-southeast-2"
    assert "admin account id [123456789012]:" in result.stderr  # prompts go to stderr (CliRunner echoes input on stdout)


def test_prompts_are_skipped_for_values_given_as_options(tmp_path: Path) -> None:
    result = init(str(tmp_path), *OPTIONS, input="\n")  # only the region is asked; Enter takes the default
    assert result.exit_code == 0, result.output
    assert "account id" not in result.stderr
    assert load_config(tmp_path / "environments.yaml").stackset.home_region == "us-east-1"


def test_no_input_at_a_prompt_is_refused_with_a_hint(tmp_path: Path) -> None:
    result = init(str(tmp_path), input="")
    assert result.exit_code == ExitCode.ABORTED
    assert "--no-input" in flat(result.stderr)
    assert not (tmp_path / "environments.yaml").exists()


def test_no_input_never_asks_and_names_the_placeholders(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-o", "json", "init", str(tmp_path), "--no-input", "--dev-account", ACCOUNTS["dev"]])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["placeholders"] == ["admin", "staging", "prod"]
    assert out["files"] == ["environments.yaml", "environments.sandbox.yaml"]
    assert "placeholder account ids (the sandbox's) for: admin, staging, prod" in flat(result.stderr)
    config = load_config(tmp_path / "environments.yaml")
    assert [e.account_id for e in config.environments] == [ACCOUNTS["dev"], "222222222222", "333333333333"]
    assert load_config(tmp_path / "environments.sandbox.yaml").admin.account_id == "123456789012"


def test_region_comes_from_the_global_option(tmp_path: Path) -> None:
    result = init(str(tmp_path), "--no-input", *OPTIONS, "--region", "eu-central-1")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "environments.yaml")
    assert config.stackset.home_region == "eu-central-1"
    assert {r for e in config.environments for r in e.regions} == {"eu-central-1"}


def test_bad_options_are_a_usage_error_and_write_nothing(tmp_path: Path) -> None:
    result = init(str(tmp_path), "--no-input", *OPTIONS[:-1], ACCOUNTS["dev"])  # prod = dev
    assert result.exit_code == ExitCode.CONFIG
    assert "--prod-account: 222233334444 is also the dev account" in flat(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "environments.yaml").write_text("# ours\n")
    result = init(str(tmp_path), "--no-input", *OPTIONS)
    assert result.exit_code == ExitCode.REFUSED
    assert "not overwriting environments.yaml" in flat(result.stderr) and "--force" in result.stderr
    assert (tmp_path / "environments.yaml").read_text() == "# ours\n"
    assert not (tmp_path / "environments.sandbox.yaml").exists()  # nothing is written when one file exists

    forced = init(str(tmp_path), "--no-input", *OPTIONS, "--force")
    assert forced.exit_code == 0, forced.output
    assert "overwrote environments.yaml" in forced.stderr
    assert load_config(tmp_path / "environments.yaml").admin.account_id == ACCOUNTS["admin"]


def test_a_file_where_the_directory_should_be_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "estate").write_text("")
    result = init(str(tmp_path / "estate"), "--no-input")
    assert result.exit_code == ExitCode.CONFIG
    assert "is a file, not a directory" in flat(result.stderr)


def test_eject_copies_the_bundled_template_and_functions_and_points_at_them(tmp_path: Path) -> None:
    result = init(str(tmp_path / "infra"), "--no-input", *OPTIONS, "--eject")
    assert result.exit_code == 0, result.output
    infra = tmp_path / "infra"
    for name in (TEMPLATE, *BOOTSTRAP_TEMPLATES):
        assert (infra / "cfn" / name).read_bytes() == bundle().cfn.joinpath(name).read_bytes()
    # The same sources, and nothing else (no caches or byte code from this machine's runs).
    assert tree_sha256(infra / "lambda") == tree_sha256(bundle().functions)
    assert not list((infra / "lambda").rglob("__pycache__"))
    for config_file in ("environments.yaml", "environments.sandbox.yaml"):
        config = load_config(infra / config_file)
        assert config.stackset.template == infra / "cfn" / TEMPLATE
    assert functions_dir(infra) == infra / "lambda"  # what deploy and sandbox invoke build and run


def test_without_eject_the_functions_are_the_bundled_ones(tmp_path: Path) -> None:
    assert init(str(tmp_path), "--no-input").exit_code == 0
    assert functions_dir(tmp_path) == bundle().functions
    assert not (tmp_path / "lambda").exists() and not (tmp_path / "cfn").exists()


def test_a_lambda_folder_already_there_is_pointed_out(tmp_path: Path) -> None:
    (tmp_path / "lambda").mkdir()  # e.g. the team's own functions, unrelated to replctl
    result = init(str(tmp_path), "--no-input")
    assert result.exit_code == 0
    assert "replctl builds the functions from a lambda/ folder beside the estate file" in flat(result.stderr)
    assert functions_dir(tmp_path) == tmp_path / "lambda"


def test_no_sandbox_estate_when_asked(tmp_path: Path) -> None:
    assert init(str(tmp_path), "--no-input", "--no-sandbox-estate").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environments.yaml"]
