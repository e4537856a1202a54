"""Decide the teardown from what AWS reports: pure, no AWS call.

The order (DESIGN §3.4) never leaves a live environment replicating into something half-removed:

1. **unwire** — every environment that stays and replicates or mirrors to a removed one gets its
   `ReplicateTo<Env>` override switched off (UpdateStackInstances with its complete override
   list, so nothing else changes), and is verified CURRENT/SUCCEEDED before anything is deleted;
2. **delete** — the removed environments' stack instances, in reverse rollout order (prod before
   staging before dev), each environment's deletion waited on and checked before the next;
3. **stack set** — deleted once no instance is left (only when the whole estate goes);
4. **data** — with `--delete-data` only, after its instances are gone (the bucket and the table
   are DeletionPolicy Retain, so the stack deletion left them): the bucket emptied and deleted,
   the table's DR replicas (ExtraReplicaRegions) removed one by one from its region, then its
   deletion protection turned off and the table deleted, and the parameters replctl wrote — the
   environment's hierarchy and the mirrors it received, in its own account, and its mirrors in
   every downstream account.

Everything is decided from what AWS reports, so a re-run after a failure or Ctrl-C plans only
what is left, and a teardown of what is already gone plans nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from replctl.config import Config, Environment
from replctl.deploy.decide import groups
from replctl.deploy.model import DeleteInstances, DeleteStackSet, InstanceRow, InstanceState, Key, UpdateOverrides, params
from replctl.deploy.parameters import flag_parameter
from replctl.destroy.model import (
    AccountData,
    DeleteParameters,
    DeleteTable,
    EmptyBucket,
    Facts,
    Phase,
    RemoveReplica,
    Retained,
    TableState,
    TeardownPlan,
    TeardownStep,
)
from replctl.errors import ConfigError, Refused
from replctl.statuses import excluded_from_updates


def selected(config: Config, names: Sequence[str]) -> tuple[Environment, ...]:
    """The environments to remove, in rollout order (all when none is named)."""
    if not names:
        return config.environments
    unknown = [n for n in names if n not in config.names]
    if unknown:
        raise ConfigError(f"unknown environment(s) {', '.join(unknown)}; the estate has {', '.join(config.names)}")
    return tuple(e for e in config.environments if e.name in names)


def hierarchy(config: Config, environment: str) -> str:
    return f"{config.ssm_prefix}/{environment}/config"


def decide(config: Config, facts: Facts, names: Sequence[str] = (), *, delete_data: bool = False) -> TeardownPlan:
    """The teardown plan: phases in order, what is retained. Pure."""
    removed = selected(config, names)
    gone = {e.name for e in removed}
    by_key = {i.key: i for i in facts.instances}
    refuse_unreachable(config, removed, by_key)
    phases = [*unwire_phases(config, gone, by_key), *delete_phases(removed, by_key)]
    ours = {k for e in config.environments for k in e.instances()}
    foreign = [i for i in facts.instances if i.key not in ours]
    whole = len(removed) == len(config.environments)
    if facts.stack_set is not None and whole and not foreign:
        phases.append(Phase("stack set", "", (DeleteStackSet(config.stackset.name),)))
    if delete_data:
        phases += data_phases(config, removed, facts.data)
    return TeardownPlan(
        stack_set=config.stackset.name,
        region=config.stackset.home_region,
        exists=facts.stack_set is not None,
        environments=tuple(e.name for e in removed),
        whole_estate=whole,
        delete_data=delete_data,
        instances=instance_rows(config, gone, by_key, phases),
        phases=tuple(p for p in phases if p.steps),
        retained=() if delete_data else retained(config, gone, facts.data),
        running_operations=facts.running,
        notes=tuple(f"instance {i.account}/{i.region} is not in {config.path.name}; destroy leaves it, and so "
                    "the stack set, alone" for i in foreign if whole),
        data=facts.data,
    )


def refuse_unreachable(config: Config, removed: Sequence[Environment], by_key: Mapping[Key, InstanceState]) -> None:
    """An instance AWS's operations do not reach stops the plan with its remedy (exit 9)."""
    lines = []
    for e in removed:
        for key in e.instances():
            inst = by_key.get(key)
            if inst is not None and excluded_from_updates(inst.status, inst.detailed) is not None:
                lines.append(f"  {e.name} {key[0]} {key[1]}: {inst.label()}" + (f" — {inst.reason}" if inst.reason else ""))
    if lines:
        name, call_as = config.stackset.name, config.stackset.call_as
        raise Refused(
            "refusing to destroy: AWS excludes these stack instances from operations (a failed delete or "
            "import leaves a stack unstable):\n" + "\n".join(lines),
            hint=("delete each instance but keep its stack: aws cloudformation delete-stack-instances "
                  f"--stack-set-name {name} --accounts ACCOUNT --regions REGION --retain-stacks --call-as {call_as}; "
                  "then delete the stack in that account by hand (after fixing what made its deletion fail) "
                  "and re-run replctl destroy; nothing was changed"))


def unwire_phases(config: Config, gone: set[str], by_key: Mapping[Key, InstanceState]) -> list[Phase]:
    """Environments that stay stop replicating and mirroring to the removed ones."""
    phases = []
    for e in config.environments:
        if e.name in gone:
            continue
        off = {flag_parameter(d) for d in gone}
        wanted: dict[Key, dict[str, str]] = {}
        for key in e.instances():
            inst = by_key.get(key)
            if inst is None:
                continue
            now = dict(inst.overrides)
            if any(now.get(f) == "true" for f in off):
                wanted[key] = {k: ("false" if k in off else v) for k, v in now.items()}
        if not wanted:
            continue
        targets = [d for d in config.names if flag_parameter(d) in off and any(
            dict(by_key[k].overrides).get(flag_parameter(d)) == "true" for k in wanted)]
        why = "stop replicating and mirroring to " + ", ".join(targets)
        steps = tuple(UpdateOverrides(e.name, a, r, v, why, e.organizational_unit_id)
                      for a, r, v in groups(list(wanted), lambda k: params(wanted[k])))
        phases.append(Phase("unwire", e.name, steps))
    return phases


def delete_phases(removed: Sequence[Environment], by_key: Mapping[Key, InstanceState]) -> list[Phase]:
    """The removed environments' instances, prod before staging before dev."""
    phases = []
    for e in reversed(removed):
        present = [k for k in e.instances() if k in by_key]
        steps = tuple(DeleteInstances(e.name, a, r, e.organizational_unit_id) for a, r, _ in groups(present))
        phases.append(Phase("delete", e.name, steps))
    return phases


def data_phases(config: Config, removed: Sequence[Environment], data: Sequence[AccountData]) -> list[Phase]:
    """Each removed environment's bucket, table and parameters, and its mirrors downstream."""
    at = {(d.account, d.region): d for d in data}
    order = config.names
    phases = []
    planned: set[tuple[str, str, str]] = set()  # (account, region, name): each parameter once
    for e in reversed(removed):
        steps: list[TeardownStep] = []
        for account, region in e.instances():
            d = at.get((account, region))
            if d is None:
                continue
            if d.bucket_exists:
                steps.append(EmptyBucket(e.name, account, region, d.bucket))
            if d.table_region is not None:
                # Replicas first: deleting the table in its region would leave them, a global table of
                # their own ("You can delete a replica table the same way you would delete any other
                # table. Deleting the global table stops replication to that Region and deletes the
                # table copy kept in that Region", DynamoDB Developer Guide, global tables FAQ).
                steps += [RemoveReplica(e.name, account, d.table_region, d.table, r) for r in d.replicas]
                steps.append(DeleteTable(e.name, account, d.table_region, d.table))
        # Its own hierarchy and the mirrors it received (upstream hierarchies), in its accounts; its
        # mirrors in every downstream environment's accounts.
        own = [hierarchy(config, n) for n in order[: order.index(e.name) + 1]]
        mine = hierarchy(config, e.name)
        for other in config.environments:
            paths = own if other.name == e.name else [mine] if order.index(other.name) > order.index(e.name) else []
            for account, region in other.instances():
                d = at.get((account, region))
                names = tuple(n for n in (d.parameters if d else ()) if any(n.startswith(p + "/") for p in paths)
                              and (account, region, n) not in planned)
                planned.update((account, region, n) for n in names)
                if names:
                    steps.append(DeleteParameters(other.name, account, region, tuple(paths), names))
        phases.append(Phase("data", e.name, tuple(steps)))
    return phases


def retained(config: Config, gone: set[str], data: Sequence[AccountData]) -> tuple[Retained, ...]:
    """What outlives the teardown, with the command that removes it."""
    out = []
    for d in data:
        if d.environment not in gone:
            continue
        how = f"replctl destroy --env {d.environment} --delete-data"
        if d.bucket_exists:
            out.append(Retained(d.environment, d.account, d.region, "bucket", d.bucket, how))
        if d.table_region is not None:
            kind = "table" if d.table_region == d.region else "replica"
            out.append(Retained(d.environment, d.account, d.table_region, kind, d.table, how))
        out += [Retained(d.environment, d.account, r, "replica", d.table, how) for r in d.replicas]
    return tuple(out)


def replica_removal(state: TableState, replica_region: str, requested: bool) -> str:
    """The next move in removing the replica in `replica_region`, from the table's state. Pure.

    "request": send UpdateTable with ReplicaUpdates Delete now; "wait": read again later; "done":
    the replica is gone and the table ACTIVE, so the next UpdateTable is accepted ("UpdateTable is
    an asynchronous operation; while it's executing, the table status changes from ACTIVE to
    UPDATING. While it's UPDATING, you can't issue another UpdateTable request", DynamoDB API
    reference, UpdateTable). A replica already DELETING (an earlier run's request) is waited for,
    not requested again.
    """
    status = state.replica_status(replica_region)
    if status is None:
        return "done" if state.status == "ACTIVE" else "wait"
    if requested or status == "DELETING" or state.status != "ACTIVE":
        return "wait"
    return "request"


def instance_rows(config: Config, gone: set[str], by_key: Mapping[Key, InstanceState],
                  phases: Sequence[Phase]) -> tuple[InstanceRow, ...]:
    unwired = {(a, r) for p in phases if p.kind == "unwire" for s in p.steps
               if isinstance(s, UpdateOverrides) for a in s.accounts for r in s.regions}
    rows = []
    for e in config.environments:
        for key in e.instances():
            inst = by_key.get(key)
            if e.name in gone:
                action = "delete" if inst else "none (gone)"
            else:
                action = "unwire" if key in unwired else "keep"
            rows.append(InstanceRow(e.name, key[0], key[1], inst.label() if inst else "missing", action,
                                    inst.reason if inst else None))
    return tuple(rows)
