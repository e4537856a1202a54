"""The estate files `replctl init` writes, rendered from the operator's answers (pure).

The text is the commented estate file a team keeps in its infrastructure repository. It uses the
template and functions bundled with replctl unless the estate was ejected, in which case it names
the copies beside it. The sandbox estate is the same shape on the emulator's fixed accounts, so
`replctl --sandbox ...` works from the same directory before any real account exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from replctl.config import ACCOUNT_RE, KNOWN_ENVIRONMENTS, REGION_RE, STACKSET_NAME_RE

#: The emulator's accounts (replctl.sandbox.state, environments.sandbox.yaml); also the placeholders
#: `--no-input` writes for accounts it was not given, so the files load and validate-accounts says
#: what is wrong with them.
SANDBOX_ACCOUNTS = {"admin": "123456789012", "dev": "111111111111", "staging": "222222222222",
                    "prod": "333333333333"}
SANDBOX_REGION = "us-east-1"
DEFAULT_STACK_SET = "replctl-replication"

ESTATE_FILE = "environments.yaml"
SANDBOX_ESTATE_FILE = "environments.sandbox.yaml"
#: Where `--eject` puts the copies, relative to the estate file (what the estate then names).
EJECTED_TEMPLATE = "cfn/replication.yaml"
EJECTED_FUNCTIONS = "lambda"


@dataclass(frozen=True)
class Answers:
    """What the operator tells `init`; the rest of the estate file takes its defaults."""

    admin_account: str
    accounts: tuple[tuple[str, str], ...]  # (environment, account id) in rollout order
    region: str
    external_id: str
    stack_set: str = DEFAULT_STACK_SET

    def account(self, environment: str) -> str:
        return dict(self.accounts)[environment]


def problems(a: Answers) -> list[str]:
    """Every reason the answers cannot make a valid estate, as `--option: why` lines."""
    found = []
    for option, value in (("--admin-account", a.admin_account), *((f"--{e}-account", v) for e, v in a.accounts)):
        if not ACCOUNT_RE.match(value):
            found.append(f"{option}: '{value}' is not a 12-digit AWS account id")
    seen: dict[str, str] = {}
    for who, value in (("admin", a.admin_account), *a.accounts):
        if value in seen:
            found.append(f"--{who}-account: {value} is also the {seen[value]} account; each environment "
                         "needs its own account, apart from the admin account")
        seen.setdefault(value, who)
    if not REGION_RE.match(a.region):
        found.append(f"--region: '{a.region}' is not a region name like us-east-1")
    if not STACKSET_NAME_RE.match(a.stack_set):
        found.append(f"--stack-set: '{a.stack_set}' is not a StackSet name (a letter, then letters, digits, hyphens)")
    if tuple(e for e, _ in a.accounts) != KNOWN_ENVIRONMENTS:
        found.append(f"environments must be {', '.join(KNOWN_ENVIRONMENTS)}")
    return found


def sandbox_answers(a: Answers) -> Answers:
    """The same estate on the emulator's accounts and region."""
    return replace(a, admin_account=SANDBOX_ACCOUNTS["admin"], region=SANDBOX_REGION,
                   accounts=tuple((e, SANDBOX_ACCOUNTS[e]) for e, _ in a.accounts))


def _source_lines(ejected: bool) -> str:
    if ejected:
        return (
            "  # The template every environment runs: the copy `replctl init --eject` wrote, relative\n"
            "  # to this file. The functions are built from the `lambda/` folder beside this file\n"
            "  # (replctl uses a lambda/ folder next to the estate file when there is one).\n"
            f"  template: {EJECTED_TEMPLATE}\n"
        )
    return (
        "  # The template every environment runs. Left out: the template bundled with the installed\n"
        "  # replctl, and its functions (`replctl --version` prints their digest; upgrading replctl\n"
        "  # can change them, and `replctl plan` shows the diff). `replctl init --eject` copies both\n"
        "  # here for teams that customise them, and sets:\n"
        f"  # template: {EJECTED_TEMPLATE}\n"
    )


def _header(sandbox: bool) -> str:
    if sandbox:
        return (
            f"# {SANDBOX_ESTATE_FILE} — the estate `replctl --sandbox ...` uses: the same framework on the\n"
            "# local emulator (`replctl sandbox start`, needs `replctl[sandbox]`), whose admin account is\n"
            f"# {SANDBOX_ACCOUNTS['admin']} and whose dev, staging and prod accounts are fixed. Every key is\n"
            f"# explained in {ESTATE_FILE}; only what differs is noted here.\n"
        )
    return (
        f"# {ESTATE_FILE} — the whole estate replctl rolls out and watches (written by `replctl init`).\n"
        "# Loaded strictly: unknown keys are errors, account ids must be quoted 12-digit strings, and\n"
        "# every problem is reported at once with its YAML path and line. Check it without AWS:\n"
        "#   replctl validate-accounts --config-only\n"
        "# The order of `environments` is the rollout order: a later environment is never touched\n"
        "# before every earlier one succeeded.\n"
    )


def _stackset(a: Answers, sandbox: bool, ejected: bool) -> str:
    bucket = "replctl-sandbox-artifacts-{account_id}-{region}" if sandbox else "replctl-artifacts-{account_id}-{region}"
    managed = ("  # The emulator does not implement managed execution, so the sandbox runs without it.\n"
               "  managed_execution: false\n") if sandbox else (
               "  # Let CloudFormation queue non-conflicting operations instead of failing with\n"
               "  # OperationInProgressException (StackSets \"managed execution\").\n"
               "  managed_execution: true\n")
    wait = ("    initial_interval_seconds: 0.2\n    max_interval_seconds: 2\n    timeout_seconds: 120\n"
            if sandbox else
            "    # First poll after this many seconds; the interval doubles up to max_interval_seconds.\n"
            "    initial_interval_seconds: 2\n"
            "    max_interval_seconds: 20\n"
            "    # Give up waiting (the operation keeps running in AWS; re-run to attach) after this long.\n"
            "    timeout_seconds: 3600\n")
    wait += (
        "    # auto: wait by CloudFormation's StackSet events where the administration bootstrap created\n"
        "    # the event queue (WaitByEvents), else poll as above, saying once why; events: the queue is\n"
        "    # required; poll: never look for it.\n"
        "    mode: auto\n"
        "    # Waiting by event, read the operation this often even when no event came (a lost event).\n"
        f"    safety_poll_seconds: {5 if sandbox else 60}\n")
    return (
        "# How the StackSet itself is created and operated.\n"
        "stackset:\n"
        "  # StackSet name (letters, digits and hyphens; starts with a letter).\n"
        f"  name: {a.stack_set}\n"
        f"{_source_lines(ejected)}"
        "  # Region the StackSet lives in (its \"home\" region in the admin account).\n"
        f"  home_region: {a.region}\n"
        "  # SELF_MANAGED: the roles of the bootstrap templates (stackset-administration-role.yaml in\n"
        "  # the admin account, stackset-execution-role.yaml in every target account).\n"
        "  permission_model: SELF_MANAGED\n"
        "  # SELF from the admin account; DELEGATED_ADMIN only for a SERVICE_MANAGED stack set run from\n"
        "  # a delegated administrator account (passed as CallAs on every StackSets call).\n"
        "  call_as: SELF\n"
        "  administration_role_name: AWSCloudFormationStackSetAdministrationRole\n"
        "  execution_role_name: AWSCloudFormationStackSetExecutionRole\n"
        "  # Artifact bucket for the function ZIPs and large templates, one per region, created by\n"
        "  # `replctl deploy`; {account_id} and {region} are the admin account and each region.\n"
        f"  artifact_bucket: {bucket}\n"
        "  artifact_prefix: replctl/\n"
        f"{managed}"
        "  # Passed to every StackSet operation (AWS StackSetOperationPreferences).\n"
        "  operation_preferences:\n"
        "    # Stop at the first failed account; work on one account at a time.\n"
        "    failure_tolerance_count: 0\n"
        "    max_concurrent_count: 1\n"
        "    region_concurrency_type: SEQUENTIAL\n"
        "  # How replctl waits on StackSet operations.\n"
        "  wait:\n"
        f"{wait}"
    )


def _environments(a: Answers) -> str:
    out = ["# The environments, in rollout order: dev, then staging, then prod.", "environments:"]
    logs = {"dev": "30", "staging": "90", "prod": "365"}
    for i, (env, account) in enumerate(a.accounts):
        if i == 0:
            out.append("  # Each: its account (quoted), regions, Parameter Store hierarchy, overrides and gate.")
        out += [
            f"  - name: {env}",
            f"    account_id: \"{account}\"",
            f"    regions: [{a.region}]",
            f"    ssm_path: /app/{env}/config",
            "    parameters:",
            f"      LogRetentionDays: \"{logs.get(env, '90')}\"",
            "    gate:",
            "      # Require none of this environment's alarms to be in ALARM before the next starts.",
            "      alarms: true",
        ]
    return "\n".join(out) + "\n"


def render_estate(a: Answers, *, ejected: bool = False, sandbox: bool = False) -> str:
    """The commented estate file for `a` (the sandbox variant when `sandbox`)."""
    return (
        f"{_header(sandbox)}\n"
        "# Schema version of this file; replctl refuses versions it does not know.\n"
        "version: 1\n\n"
        "# The StackSet administration account: where replctl runs its CloudFormation calls and\n"
        "# where the artifact bucket lives.\n"
        "admin:\n"
        f"  account_id: \"{a.admin_account}\"\n"
        "  # Optional role to assume in the admin account (cfn/operator-policy.yaml creates one);\n"
        "  # omit it to use the caller's own credentials.\n"
        f"  # role_arn: arn:aws:iam::{a.admin_account}:role/replctl/replctl-operator\n\n"
        f"{_stackset(a, sandbox, ejected)}\n"
        "# Role replctl assumes in each target account to read status (the execution-role bootstrap\n"
        "# template creates it).\n"
        "observer_role_name: replctl-observer\n\n"
        "# Role `replctl destroy --delete-data` assumes in each target account to remove the data\n"
        "# (the same bootstrap template creates it); only used with --delete-data.\n"
        "data_remover_role_name: replctl-data-remover\n\n"
        "# Root of every environment's Parameter Store hierarchy: each owns <ssm_prefix>/<name>/config.\n"
        "ssm_prefix: /app\n\n"
        "# Template parameters common to all environments; replctl sets the environment, accounts,\n"
        "# artifact locations and replication targets itself.\n"
        "parameters:\n"
        "  ResourcePrefix: replctl\n"
        "  ReplicationRoleName: replctl-replication-agent\n"
        "  # External id upstream functions present when assuming the agent role: unique per estate.\n"
        f"  ReplicationExternalId: {a.external_id}\n"
        "  DynamoDBTableName: replctl-metadata\n"
        "  # Bucket name prefix; each bucket is <prefix>-<environment>-<account id>.\n"
        "  ReplicationBucketName: replctl-config\n"
        "  MirrorSecureStrings: \"false\"\n"
        "  # Alarm when metadata replication lag exceeds this many seconds.\n"
        "  MetadataLagThresholdSeconds: \"1\"\n"
        "  # Alarm when S3 replication latency exceeds this many seconds (S3 without RTC: ~15 minutes).\n"
        "  S3ReplicationLatencyThresholdSeconds: \"900\"\n\n"
        "# Health thresholds `replctl status` judges against.\n"
        "thresholds:\n"
        "  metadata_lag_seconds: 1\n"
        "  s3_latency_seconds: 900\n"
        "  heartbeat_max_age_seconds: 900\n"
        "  lookback_minutes: 30\n\n"
        f"{_environments(a)}"
    )
