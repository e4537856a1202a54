"""Decide the plan from what is deployed: pure, no AWS call.

`build_plan` checks the template (YAML, cfn-lint) before any AWS call, then reads what is
deployed (`observe`: DescribeStackSet, ListStackInstances, DescribeStackInstance,
ListStackSetOperations, HeadBucket/HeadObject) and hands both to `decide`, a pure function that
returns a `Plan`: preparation steps (artifact buckets and uploads, the template upload, creating
the stack set) and one wave per environment in rollout order, then wiring waves. Steps are
frozen dataclasses; `rollout.apply` dispatches on them with `match`. `plan`, `deploy --dry-run`
and `deploy` all show the same value; nothing below the CLI knows about dry runs.

How a wave brings an environment forward (AWS CloudFormation API Reference, UpdateStackSet /
CreateStackInstances / UpdateStackInstances; docs/deploy.md has the table):

* The stack set's template, stack-set-level parameters and settings change once, in the first
  wave that has instances, with `UpdateStackSet` limited to that environment's accounts and
  regions. Because it specifies the template and the `Parameters` property, AWS "marks all stack
  instances with a status of OUTDATED prior to updating the stack instances in the specified
  accounts" — so it is used once per change, never to bring a later environment forward.
* A later environment is brought forward with `UpdateStackInstances` carrying its complete
  override list: the stack set's current template and parameters reach the named instances
  only, other instances keep their status, and an override of a parameter the new template
  drops is gone in the same operation that brings the template (AWS would otherwise reject the
  stack update: "Parameters: [X] do not exist in the template").
* An override of a parameter the new template adds is set only once the instance runs that
  template ("Once a stack instance has been updated with the new parameter, you can then
  override the parameter value using UpdateStackInstances"): the bring-forward leaves it out,
  a second UpdateStackInstances sets it.
* Missing instances are created with `CreateStackInstances` (they get the stack set's current
  template). When the template is about to change and the first environment has no instances
  yet, they are created first and then updated with the rest, so `UpdateStackSet` never names
  an instance that does not exist (AWS: StackInstanceNotFoundException).
* In the first wave, overrides of parameters the new template drops are removed *before* the
  `UpdateStackSet` ("During stack set updates, any parameters overridden for a stack instance
  aren't updated, but retain their overridden value"), and override changes come *after* it
  (an override can only name a parameter the stack set has).
* A parameter list passed to CreateStackInstances/UpdateStackInstances is the complete set of
  overrides: a parameter left out takes the stack set's value.
* An instance AWS excludes from operations (INOPERABLE, a failed import, a suspended account)
  stops the plan with the remedy for its state (`Refused`, exit 9).

Replication wiring (DESIGN §3.3): an environment's `ReplicateTo<Env>` override is "true" only
when that downstream environment's bucket exists, i.e. all its instances exist and are
CURRENT/SUCCEEDED (once on, it stays on while they exist, so an update in progress downstream
does not switch replication off). On a first rollout dev and staging are deployed with their
targets off, prod is deployed, and then wiring waves switch the targets on (dev, then staging)
— within the same deploy, after prod succeeded.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from replctl.config import Config, Environment
from replctl.deploy.model import (
    HIDDEN,
    SENSITIVE_PARAMETERS,
    ArtifactLike,
    ArtifactRow,
    BringForward,
    CreateArtifactBucket,
    CreateInstances,
    CreateStackSet,
    GrantArtifactReaders,
    InstanceRow,
    InstanceState,
    Key,
    Observed,
    ParameterChange,
    Plan,
    StackSetState,
    Step,
    UpdateOverrides,
    UpdateStackSet,
    UploadArtifact,
    UploadTemplate,
    Wave,
    params,
)
from replctl.deploy.parameters import (
    artifact_bucket,
    artifact_key,
    desired_parameters,
    flag_parameter,
    template_key,
    template_url,
)
from replctl.deploy.template import Template, parse_template, template_parameters
from replctl.errors import Refused, TemplateError
from replctl.statuses import DetailedStatus, excluded_from_updates


def groups(keys: Sequence[Key], value: Callable[[Key], Any] = lambda k: None) -> list[tuple[tuple[str, ...], tuple[str, ...], Any]]:
    """Split instances into (accounts, regions, value) groups whose cross product is exact.

    StackSet calls name accounts × regions; an instance set that is not a full product (or whose
    instances need different override values) needs one call per group. Order is stable.
    """
    by_value: dict[Any, dict[str, list[str]]] = {}
    for account, region in keys:
        by_value.setdefault(value((account, region)), {}).setdefault(account, []).append(region)
    out = []
    for v, per_account in by_value.items():
        by_regions: dict[tuple[str, ...], list[str]] = {}
        for account, regions in per_account.items():
            by_regions.setdefault(tuple(regions), []).append(account)
        for regions, accounts in by_regions.items():
            out.append((tuple(accounts), regions, v))
    return out


@dataclass(frozen=True)
class Situation:
    """What `decide`'s steps share: its inputs, and the facts derived from them once."""

    config: Config
    template: Template
    artifacts: tuple[ArtifactLike, ...]
    observed: Observed
    selected: tuple[Environment, ...]
    desired: Mapping[str, str]
    by_key: Mapping[Key, InstanceState]
    template_changed: bool
    params_changed: bool
    settings_changed: bool
    established: Mapping[str, bool]  # every instance exists and is CURRENT/SUCCEEDED
    present: Mapping[str, bool]  # every instance exists

    @property
    def ss(self) -> StackSetState | None:
        return self.observed.stack_set

    @property
    def envs(self) -> tuple[Environment, ...]:
        return self.config.environments

    @property
    def selected_names(self) -> frozenset[str]:
        return frozenset(e.name for e in self.selected)

    @property
    def content_pending(self) -> bool:
        """The stack set itself must change (template, parameters or settings): one UpdateStackSet."""
        return self.template_changed or self.params_changed or self.settings_changed

    def current(self, key: Key) -> dict[str, str]:
        """The instance's overrides as AWS reports them."""
        return dict(self.by_key[key].overrides)

    def flags(self, e: Environment, final: bool) -> dict[str, str]:
        """ReplicateTo<Env> values for `e`: during its rollout wave (final=False) or after wiring."""
        out: dict[str, str] = {}
        position = self.envs.index(e)
        for d in self.envs:
            name = flag_parameter(d.name)
            if name not in self.template.parameters:
                continue
            if self.envs.index(d) <= position:
                out[name] = "false"
                continue
            deployed = {dict(self.by_key[k].overrides).get(name) if k in self.by_key else None for k in e.instances()}
            already = deployed == {"true"}
            if final:
                on = self.established[d.name] or (self.present[d.name] and already) or d.name in self.selected_names
            elif self.present[e.name] and len(deployed) == 1:
                # An existing environment keeps its targets during its rollout wave; switching one
                # on is the wiring waves' job (after every environment of this rollout succeeded).
                on = already and self.present[d.name]
            else:
                on = self.established[d.name]
            out[name] = "true" if on else "false"
        return out

    def overrides(self, e: Environment, region: str, flag_values: Mapping[str, str]) -> dict[str, str]:
        """The complete override list of `e`'s instances in `region`."""
        values: dict[str, str] = {}
        if "Environment" in self.template.parameters:
            values["Environment"] = e.name
        values.update(flag_values)
        if region != self.config.stackset.home_region and "ArtifactBucketName" in self.template.parameters:
            values["ArtifactBucketName"] = artifact_bucket(self.config, region)
        values.update(dict(e.parameters))
        return values

    def interim(self, e: Environment) -> dict[str, dict[str, str]]:
        """Per region, the overrides `e` gets in its rollout wave (targets not yet switched on)."""
        return {r: self.overrides(e, r, self.flags(e, final=False)) for r in e.regions}

    def added_parameters(self) -> frozenset[str]:
        """Parameters the local template declares and the stack set's current one does not."""
        assert self.ss is not None
        try:
            before = set(template_parameters(parse_template(self.ss.template_body, "the stack set's template"), ""))
        except TemplateError:  # an unreadable body: the stack set's parameter names are what we know
            before = {k for k, _ in self.ss.parameters}
        return frozenset(set(self.template.parameters) - before)


def situation(config: Config, template: Template, artifacts: Sequence[ArtifactLike], observed: Observed,
              only: str | None = None) -> Situation:
    """The facts `decide` works from (pure)."""
    ss = observed.stack_set
    desired = desired_parameters(config, template, artifacts)
    by_key = {i.key: i for i in observed.instances}
    defaults = {p.name: p.default for p in template.parameters.values()}

    def effective(values: Mapping[str, str]) -> dict[str, str | None]:
        return {p: values.get(p, defaults[p]) for p in template.parameters}

    return Situation(
        config=config, template=template, artifacts=tuple(artifacts), observed=observed,
        selected=tuple(config.select([only]) if only else config.environments),
        desired=desired, by_key=by_key,
        template_changed=ss is not None and ss.template_body != template.text,
        params_changed=ss is not None and effective(dict(ss.parameters)) != effective(desired),
        settings_changed=(ss is not None and ss.managed_execution is not None
                          and ss.managed_execution != config.stackset.managed_execution),
        established={e.name: all(k in by_key and by_key[k].ok for k in e.instances()) for e in config.environments},
        present={e.name: all(k in by_key for k in e.instances()) for e in config.environments},
    )


def decide(
    config: Config,
    template: Template,
    artifacts: Sequence[ArtifactLike],
    observed: Observed,
    *,
    only: str | None = None,
    force: bool = False,
) -> Plan:
    """The plan: what to create, upload and update, wave by wave. Pure."""
    sit = situation(config, template, artifacts, observed, only)
    refuse_excluded_instances(sit)
    refuse_retained_data(sit)
    if only and not force:
        refuse_unless_upstream_current(sit)
    preparation, artifact_rows, url = prepare_steps(sit)
    waves, actions = rollout_waves(sit)
    waves += wiring_waves(sit, actions)
    sensitive = frozenset({p.name for p in template.parameters.values() if p.no_echo} | SENSITIVE_PARAMETERS)
    ss = sit.ss
    return Plan(
        stack_set=config.stackset.name,
        region=config.stackset.home_region,
        exists=ss is not None,
        permission_model=config.stackset.permission_model,
        template_path=str(config.stackset.template),
        template_body=template.text,
        template_url=url,
        template_diff=template_diff(sit),
        parameters=params(sit.desired),
        parameter_changes=parameter_changes(sit, sensitive),
        managed_execution=(ss.managed_execution if ss else None, config.stackset.managed_execution),
        instances=instance_rows(sit, actions),
        artifacts=tuple(artifact_rows),
        preparation=tuple(reader_grants(sit, preparation, waves) + preparation),
        waves=tuple(waves),
        running_operations=observed.running,
        notes=notes(sit),
        sensitive=sensitive,
    )


# -- refusals -----------------------------------------------------------------------------------

#: What to do about an instance AWS's operations do not reach, by the state that excludes it.
REMEDIES = {
    DetailedStatus.INOPERABLE: (
        "a DeleteStackInstances failed and left the stack unstable; AWS excludes it from further "
        "updates. Delete the instance but keep its stack: aws cloudformation delete-stack-instances "
        "--stack-set-name {name} --accounts {account} --regions {region} --retain-stacks --call-as {call_as}; "
        "then delete the retained stack in {account}/{region} by hand, and replctl deploy creates the "
        "instance again"),
    DetailedStatus.FAILED_IMPORT: (
        "importing the stack into the stack set failed and left it unstable; fix the cause shown in "
        "the stack's events, then retry the import (aws cloudformation import-stacks-to-stack-set)"),
    DetailedStatus.SKIPPED_SUSPENDED_ACCOUNT: (
        "AWS skipped it because the account was suspended when the last operation ran. Reopen the "
        "account, then let StackSets reach it again: aws cloudformation update-stack-instances "
        "--stack-set-name {name} --accounts {account} --regions {region} --call-as {call_as}; or "
        "take the account out of the estate file and delete its instance"),
}


def refuse_excluded_instances(sit: Situation) -> None:
    """Refuse (exit 9) when a selected environment has an instance AWS's operations do not reach."""
    lines = []
    for e in sit.selected:
        for key in e.instances():
            inst = sit.by_key.get(key)
            state = excluded_from_updates(inst.status, inst.detailed) if inst else None
            if inst is None or state is None:
                continue
            remedy = REMEDIES[state].format(name=sit.config.stackset.name, account=key[0], region=key[1],
                                            call_as=sit.config.stackset.call_as)
            lines.append(f"  {e.name} {key[0]} {key[1]}: {inst.label()} — {remedy}")
    if lines:
        raise Refused("refusing to deploy: AWS does not update these stack instances:\n" + "\n".join(lines),
                      hint="fix each instance as described, then re-run replctl deploy; nothing was changed")


def refuse_retained_data(sit: Situation) -> None:
    """Refuse (exit 9), before any change, to create an instance where a destroy retained its data.

    The bucket and the table have fixed names, so creating the stack would fail on "already
    exists" half-way through the environment. Adopting them (resource import, then
    ImportStacksToStackSet) is not done: docs/destroy.md says why.
    """
    lines = [f"  {env} {account} {region}: {kind} {name}" for env, account, region, kind, name in sit.observed.retained
             if env in sit.selected_names]
    if not lines:
        return
    envs = list(dict.fromkeys(r[0] for r in sit.observed.retained if r[0] in sit.selected_names))
    raise Refused(
        "refusing to deploy: a destroy retained data where instances would be created, and the stack would "
        "fail creating resources with these names:\n" + "\n".join(lines),
        hint=("two ways out: remove it (gone for good) with replctl destroy " + " ".join(f"--env {e}" for e in envs)
              + " --delete-data, then deploy; or keep what you need first — copy the objects out (aws s3 sync) and "
              "export the table (DynamoDB export to S3) — then remove it the same way. replctl does not adopt "
              "retained data (docs/destroy.md, coming back); nothing was changed"))


def refuse_unless_upstream_current(sit: Situation) -> None:
    """`--env X` alone: every upstream environment must be current on the same template."""
    target = sit.selected[0]
    upstream = sit.envs[: sit.envs.index(target)]
    if not upstream:
        return
    reasons: list[str] = []
    if sit.ss is None:
        reasons.append("the stack set does not exist yet")
    elif sit.content_pending:
        what = "template or parameters" if sit.template_changed or sit.params_changed else "settings"
        reasons.append(f"the local {what} differ from the stack set's, so "
                       f"{', '.join(u.name for u in upstream)} {'is' if len(upstream) == 1 else 'are'} "
                       "not on this template")
    for u in upstream:
        if not sit.established[u.name]:
            bad = [f"{a}/{r} {sit.by_key[(a, r)].label() if (a, r) in sit.by_key else 'missing'}"
                   for a, r in u.instances() if not ((a, r) in sit.by_key and sit.by_key[(a, r)].ok)]
            reasons.append(f"{u.name} is not current: {', '.join(bad)}")
    if reasons:
        raise Refused(
            f"refusing to deploy {target.name} on its own: " + "; ".join(reasons),
            hint=f"deploy the upstream environments first (replctl deploy), or pass --force to deploy {target.name} anyway",
        )


# -- preparation ----------------------------------------------------------------------------------


def prepare_steps(sit: Situation) -> tuple[list[Step], list[ArtifactRow], str | None]:
    """Artifact buckets and uploads, the template upload, and the stack set itself."""
    config, template, ss = sit.config, sit.template, sit.ss
    preparation: list[Step] = []
    rows: list[ArtifactRow] = []
    for region in config.regions:
        bucket = artifact_bucket(config, region)
        if bucket not in sit.observed.buckets:
            readers = tuple(a for e in sit.envs if region in e.regions for a in e.account_ids)
            preparation.append(CreateArtifactBucket(region, bucket, readers))
        for a in sit.artifacts:
            key = artifact_key(config, a)
            there = (bucket, key) in sit.observed.objects
            rows.append(ArtifactRow(region, bucket, key, a.function, "present" if there else "upload"))
            if not there:
                preparation.append(UploadArtifact(region, bucket, key, a.function, str(a.path), a.size))
    url = None
    if template.needs_url:
        home = config.stackset.home_region
        bucket = artifact_bucket(config, home)
        key = template_key(config, template)
        url = template_url(bucket, home, key)
        if bucket not in sit.observed.buckets and not any(
                isinstance(s, CreateArtifactBucket) and s.bucket == bucket for s in preparation):
            preparation.append(CreateArtifactBucket(home, bucket, ()))
        if (bucket, key) not in sit.observed.objects and (ss is None or sit.content_pending):
            preparation.append(UploadTemplate(home, bucket, key, template.size))
    if ss is None:
        preparation.append(CreateStackSet(config.stackset.name, config.stackset.permission_model))
    return preparation, rows, url


def reader_grants(sit: Situation, preparation: Sequence[Step], waves: Sequence[Wave]) -> list[Step]:
    """An account added to an environment must be able to read the ZIPs before its instance is
    created (Lambda fetches the code as that account's execution role)."""
    created = {st.bucket for st in preparation if isinstance(st, CreateArtifactBucket)}
    grants: list[Step] = []
    for region in sit.config.regions:
        bucket = artifact_bucket(sit.config, region)
        creating = any(isinstance(st, CreateInstances) and region in st.regions for w in waves for st in w.steps)
        if creating and bucket not in created:
            readers = tuple(a for e in sit.envs if region in e.regions for a in e.account_ids)
            grants.append(GrantArtifactReaders(region, bucket, readers))
    return grants


# -- waves ------------------------------------------------------------------------------------------


def rollout_waves(sit: Situation) -> tuple[list[Wave], dict[Key, str]]:
    """One wave per selected environment: the first carries the stack set change, the rest follow."""
    actions: dict[Key, str] = {}
    waves: list[Wave] = []
    applied_here = False  # UpdateStackSet is in this plan: every later instance will be OUTDATED
    for e in sit.selected:
        if sit.content_pending and not applied_here:
            steps = first_wave(sit, e, actions)
            applied_here = True
        else:
            steps = later_wave(sit, e, applied_here, actions)
        waves.append(Wave(e.name, "rollout", tuple(steps)))
    return waves, actions


def _creates(e: Environment, targets: Sequence[Key], values: Mapping[str, Mapping[str, str]]) -> list[Step]:
    return [CreateInstances(e.name, a, r, v, e.organizational_unit_id)
            for a, r, v in groups(targets, lambda k: params(values[k[1]]))]


def _override_updates(e: Environment, targets: Sequence[Key], values: Mapping[Key, Mapping[str, str]],
                      why: str) -> list[Step]:
    return [UpdateOverrides(e.name, a, r, v, why, e.organizational_unit_id)
            for a, r, v in groups(targets, lambda k: params(values[k]))]


def first_wave(sit: Situation, e: Environment, actions: dict[Key, str]) -> list[Step]:
    """The environment that carries the change: UpdateStackSet limited to its instances."""
    ss, ou = sit.ss, e.organizational_unit_id
    assert ss is not None
    keys = list(e.instances())
    existing = [k for k in keys if k in sit.by_key]
    missing = [k for k in keys if k not in sit.by_key]
    interim = sit.interim(e)
    actions.update({k: "create" for k in missing})
    if not sit.observed.instances:
        # No instance anywhere: an UpdateStackSet without accounts touches nothing.
        return [UpdateStackSet(e.name, (), (), ou), *_creates(e, missing, interim)]
    steps: list[Step] = []
    now = {k: sit.current(k) for k in existing}
    # Overrides of parameters the new template drops go first: the stack set update keeps an
    # instance's overrides (UpdateStackInstances: they "retain their overridden value").
    stale = [k for k in existing if set(now[k]) - set(sit.template.parameters)]
    now.update({k: {p: v for p, v in now[k].items() if p in sit.template.parameters} for k in stale})
    steps += _override_updates(e, stale, now, "drop overrides of removed parameters")
    if missing:
        # Created with the stack set's current template first, so the UpdateStackSet below names
        # only instances that exist; they can override only parameters the stack set has now.
        old = {k for k, _ in ss.parameters}
        restricted = {r: {p: v for p, v in interim[r].items() if p in old} for r in e.regions}
        steps += _creates(e, missing, restricted)
        now.update({k: restricted[k[1]] for k in missing})
    steps.append(UpdateStackSet(e.name, tuple(e.account_ids), tuple(e.regions), ou))
    differing = [k for k in keys if now[k] != interim[k[1]]]
    steps += _override_updates(e, differing, {k: interim[k[1]] for k in keys}, "per-environment values")
    actions.update({k: "update" for k in existing})
    return steps


def later_wave(sit: Situation, e: Environment, applied_here: bool, actions: dict[Key, str]) -> list[Step]:
    """Create what is missing; bring what is behind to the stack set's template with
    UpdateStackInstances and the complete override list; update overrides that differ."""
    keys = list(e.instances())
    existing = [k for k in keys if k in sit.by_key]
    missing = [k for k in keys if k not in sit.by_key]
    interim = sit.interim(e)
    wanted = {k: interim[k[1]] for k in keys}
    steps = _creates(e, missing, interim)
    actions.update({k: "create" for k in missing})
    behind = [k for k in existing if applied_here or not sit.by_key[k].ok]
    added = sit.added_parameters() if applied_here else None
    lacking = {k: _not_declared_yet(set(wanted[k]) - set(sit.current(k)), added) for k in behind}
    first = {k: {p: v for p, v in wanted[k].items() if p not in lacking[k]} for k in behind}
    steps += [BringForward(e.name, a, r, v, e.organizational_unit_id)
              for a, r, v in groups(behind, lambda k: params(first[k]))]
    steps += _override_updates(e, [k for k in behind if lacking[k]], wanted, "override parameters the new template adds")
    actions.update({k: "bring forward" for k in behind})
    differing = [k for k in existing if k not in behind and sit.current(k) != wanted[k]]
    steps += _override_updates(e, differing, wanted, "per-environment values")
    for k in differing:
        actions.setdefault(k, "update overrides")
    return steps


def _not_declared_yet(newly_overridden: set[str], added: frozenset[str] | None) -> frozenset[str]:
    """Which newly overridden parameters the instance's stack may not declare yet: an override of
    one waits until the bring-forward has deployed the template that adds it. `added` is None when
    resuming: which template an OUTDATED instance runs is unknown, so every new override waits."""
    return frozenset(newly_overridden if added is None else newly_overridden & added)


def wiring_waves(sit: Situation, actions: dict[Key, str]) -> list[Wave]:
    """Switch on replication towards environments this rollout brought up, after all of them."""
    waves: list[Wave] = []
    for e in sit.selected:
        before, after = sit.flags(e, final=False), sit.flags(e, final=True)
        if before == after:
            continue
        targets = [d for d in sit.envs if before.get(flag_parameter(d.name)) != after.get(flag_parameter(d.name))]
        final = {k: sit.overrides(e, k[1], after) for k in e.instances()}
        why = "enable replication to " + ", ".join(d.name for d in targets)
        waves.append(Wave(e.name, "wiring", tuple(_override_updates(e, list(e.instances()), final, why))))
        for k in e.instances():
            actions.setdefault(k, "update overrides")
    return waves


# -- what the plan shows ------------------------------------------------------------------------


def parameter_changes(sit: Situation, sensitive: frozenset[str]) -> tuple[ParameterChange, ...]:
    """Stack-set parameters and each selected environment's overrides, before → after."""

    def change(scope: str, name: str, b: str | None, a: str | None, note: str = "") -> ParameterChange:
        if name in sensitive:
            return ParameterChange(scope, name, None if b is None else HIDDEN, None if a is None else HIDDEN,
                                   "sensitive: value not shown")
        return ParameterChange(scope, name, b, a, note)

    changes: list[ParameterChange] = []
    ss = sit.ss
    before_ss = dict(ss.parameters) if ss is not None else {}
    if ss is None or sit.template_changed or sit.params_changed:
        for name in sorted(set(before_ss) | set(sit.desired)):
            b, a = before_ss.get(name), sit.desired.get(name)
            if b != a:
                changes.append(change("stack set", name, b, a))
    for e in sit.envs:
        if e.name not in sit.selected_names:
            continue
        final = {r: sit.overrides(e, r, sit.flags(e, final=True)) for r in e.regions}
        interim = sit.interim(e)
        names = sorted({p for k in e.instances() if k in sit.by_key for p in sit.current(k)}
                       | {p for v in final.values() for p in v})
        for name in names:
            befores = {sit.current(k).get(name) if k in sit.by_key else None for k in e.instances()}
            afters = {final[r].get(name) for r in e.regions}
            b = befores.pop() if len(befores) == 1 else "(mixed)"
            a = afters.pop() if len(afters) == 1 else "(per region)"
            if b != a:
                note = "" if {interim[r].get(name) for r in e.regions} == {a} else "switched on after its target exists"
                changes.append(change(e.name, name, b, a, note))
    return tuple(changes)


def instance_rows(sit: Situation, actions: Mapping[Key, str]) -> tuple[InstanceRow, ...]:
    rows: list[InstanceRow] = []
    for e in sit.envs:
        for k in e.instances():
            inst = sit.by_key.get(k)
            action = actions.get(k, "none") if e.name in sit.selected_names else "not selected"
            rows.append(InstanceRow(e.name, k[0], k[1], inst.label() if inst else "missing", action,
                                    inst.reason if inst else None))
    return tuple(rows)


def notes(sit: Situation) -> tuple[str, ...]:
    out: list[str] = []
    ours = {k for e in sit.envs for k in e.instances()}
    for i in sit.observed.instances:
        if i.key not in ours:
            out.append(f"instance {i.account}/{i.region} is not in {sit.config.path.name}; replctl leaves it alone")
    ss, model = sit.ss, sit.config.stackset.permission_model
    if ss is not None and ss.permission_model and ss.permission_model != model:
        out.append(f"the stack set is {ss.permission_model} but the config says {model}; "
                   "replctl does not change the permission model")
    running = sit.observed.running
    if running:
        out.append(f"operation{'s' if len(running) > 1 else ''} {', '.join(running)} "
                   "still running; deploy waits for it before planning")
    return tuple(out)


def template_diff(sit: Situation) -> str:
    ss = sit.ss
    if ss is not None and not sit.template_changed:
        return ""
    return "".join(difflib.unified_diff(
        (ss.template_body if ss else "").splitlines(keepends=True),
        sit.template.text.splitlines(keepends=True),
        fromfile=f"stack set {sit.config.stackset.name}" if ss else "/dev/null",
        tofile=str(sit.config.stackset.template),
    ))
