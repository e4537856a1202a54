"""StackSet behaviour as AWS documents it, through botocore hooks on the admin CloudFormation client.

moto 5.2 keeps StackSet metadata only: it never updates a deployed stack, always reports every
instance CURRENT, replaces (does not merge) the stack set's parameters with an instance's
overrides, and an UpdateStackSet naming instances overwrites their overrides with the stack
set's parameters; and it publishes none of CloudFormation's StackSet events. The hooks below make
the admin CloudFormation client answer as AWS does, each rule quoting the AWS CloudFormation API
reference sentence it follows, and publish the operation and instance status events an operation
causes (`announce`), which the bootstrap's rule routes to the event queue replctl waits on. The
emulation's own calls go through plain clients outside the factory, so replctl's call accounting
never sees them. tests/functional/sandbox/test_stacksets.py has a test per rule, and
test_stackset_events.py tests the events.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from replctl import cfnyaml
from replctl.sandbox.adapt.skipped import complete_skipped_resources



#: The operations whose results the emulation completes.
OPERATIONS = ("CreateStackInstances", "UpdateStackInstances", "UpdateStackSet")


def merged_parameters(stack_set_params: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What AWS deploys: the stack set's parameters with the instance's overrides on top."""
    values = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack_set_params}
    for p in overrides:
        if p.get("UsePreviousValue"):
            continue
        values[p["ParameterKey"]] = p.get("ParameterValue", "")
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def resolved_overrides(given: list[dict[str, Any]] | None, previous: dict[str, str]) -> dict[str, str]:
    """An instance's overrides after Create/UpdateStackInstances sent `given` (None: not sent).

    UpdateStackInstances, ParameterOverrides: "To leave all parameters set to their present
    values, don't specify this property at all"; "To leave an overridden parameter set to its
    present value, include the parameter and specify UsePreviousValue as true"; "To set an
    overridden parameter back to the value specified in the stack set, specify a parameter list
    but don't include the parameter in the list."
    """
    if given is None:
        return dict(previous)
    return {p["ParameterKey"]: previous.get(p["ParameterKey"], "") if p.get("UsePreviousValue")
            else p.get("ParameterValue", "") for p in given}


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


class StatusBook:
    """Each instance's status as AWS would report it, by stack set id (moto says CURRENT always).

    Kept in a JSON file next to the sandbox's server state, so a later `replctl` process sees
    what an earlier one's operations left; a stack set id is new whenever the emulator is reset.
    Without a path (tests, bench) it lives in memory.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: dict[str, dict[str, dict[str, str]]] = {}

    @classmethod
    def for_sandbox(cls) -> StatusBook:
        from replctl.sandbox.state import state_dir

        return cls(state_dir() / "stackset-status.json")

    def _load(self) -> dict[str, dict[str, dict[str, str]]]:
        if self.path is None:
            return self._memory
        try:
            return dict(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, stack_set_id: str, account: str, region: str) -> dict[str, str] | None:
        return self._load().get(stack_set_id, {}).get(f"{account}/{region}")

    def record(self, stack_set_id: str, states: dict[tuple[str, str], dict[str, str]]) -> None:
        data = self._load()
        book = data.setdefault(stack_set_id, {})
        book.update({f"{a}/{r}": s for (a, r), s in states.items()})
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.path)

    def forget(self, stack_set_id: str, keys: list[tuple[str, str]]) -> None:
        """Deleted instances: no status left to correct (a new instance in their place starts afresh)."""
        data = self._load()
        book = data.get(stack_set_id, {})
        for a, r in keys:
            book.pop(f"{a}/{r}", None)
        if self.path is not None and self.path.exists():
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.path)


CURRENT = {"Status": "CURRENT", "DetailedStatus": "SUCCEEDED"}
OUTDATED = {"Status": "OUTDATED", "DetailedStatus": "SUCCEEDED"}


class StackSetEmulation:
    """botocore hooks that make moto's StackSets answer like AWS's for the calls replctl makes."""

    def __init__(self, session_for_account: Callable[[str, str], Any], plain_client: Callable[[Any], Any],
                 book: StatusBook | None = None, log: Callable[[str], None] | None = None,
                 events_client: Callable[[Any], Any] | None = None):
        self._session_for = session_for_account
        self._plain_for = plain_client  # the admin client -> an unhooked client to the same endpoint
        self.book = book or StatusBook()
        self._log = log or (lambda _m: None)
        self._lock = threading.RLock()
        # The admin client -> an EventBridge client of the admin account (None: publish no events).
        self._events_for = events_client

    def install(self, cfn_client: Any) -> None:
        events = cfn_client.meta.events
        plain = self._plain_for(cfn_client)
        for op in OPERATIONS:
            events.register(f"provide-client-params.cloudformation.{op}", self._before(plain))
            events.register(f"after-call.cloudformation.{op}", self._after(plain))
        events.register("provide-client-params.cloudformation.DeleteStackInstances", self._before_delete(plain))
        events.register("after-call.cloudformation.DeleteStackInstances", self._after_delete(plain))
        events.register("after-call.cloudformation.ListStackInstances", self._correct_listing)
        events.register("after-call.cloudformation.DescribeStackInstance", self._correct_instance)

    # -- before the call: what AWS would keep, and what moto needs ---------------------------------

    def _before(self, plain: Any) -> Callable[..., None]:
        def hook(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            name = params["StackSetName"]
            try:
                ss = plain.describe_stack_set(StackSetName=name)["StackSet"]
            except Exception:  # noqa: BLE001 - the call itself will report the missing stack set
                return
            request = copy.deepcopy(params)
            if model.name != "UpdateStackSet":
                _check_overridable(model.name, request.get("ParameterOverrides") or [], ss)
            targets = self._targets(plain, name, request)
            context["replctl_emulation"] = {
                "request": request, "stack_set_id": ss["StackSetId"], "targets": targets,
                "previous": {k: _overrides(plain, name, k) for k in targets if model.name != "CreateStackInstances"},
            }
            if model.name == "CreateStackInstances" and params.get("ParameterOverrides"):
                # CreateStackInstances, ParameterOverrides: overrides apply on top of the stack set's
                # values; moto replaces them instead ("Missing parameter ..."), so it gets the merge.
                params["ParameterOverrides"] = merged_parameters(ss.get("Parameters", []), params["ParameterOverrides"])

        return hook

    def _targets(self, plain: Any, name: str, request: dict[str, Any]) -> list[tuple[str, str]]:
        accounts = request.get("Accounts") or request.get("DeploymentTargets", {}).get("Accounts") or []
        if accounts:
            return [(a, r) for r in request.get("Regions", []) for a in accounts]
        # UpdateStackSet, Accounts: "To update all the stack instances associated with this stack
        # set, don't specify the Accounts or Regions properties."
        return _instance_keys(plain, name)

    # -- after the call: overrides, stacks and statuses as AWS leaves them -------------------------

    def _after(self, plain: Any) -> Callable[..., None]:
        def hook(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            state = context.get("replctl_emulation")
            if state is None or parsed.get("Error") or "OperationId" not in parsed:
                return
            with self._lock:
                states = self._complete(plain, model.name, state)
                if self._events_for is not None:
                    self.announce(plain, self._events_for(plain), model.name, state, parsed["OperationId"], states)

        return hook

    def _complete(self, plain: Any, op: str, state: dict[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
        request, targets = state["request"], state["targets"]
        name = request["StackSetName"]
        ss = plain.describe_stack_set(StackSetName=name)["StackSet"]
        given = request.get("ParameterOverrides")
        if op == "UpdateStackSet":
            # UpdateStackInstances: "During stack set updates, any parameters overridden for a stack
            # instance aren't updated, but retain their overridden value." (moto overwrote them)
            overrides = dict(state["previous"])
        else:
            overrides = {k: resolved_overrides(given, state["previous"].get(k, {})) for k in targets}
        for (account, region), values in overrides.items():
            plain.update_stack_instances(StackSetName=name, Accounts=[account], Regions=[region],
                                         ParameterOverrides=_pairs(values))  # metadata only in moto
        states: dict[tuple[str, str], dict[str, str]] = {}
        if op == "UpdateStackSet" and any(k in request for k in ("TemplateBody", "TemplateURL", "Parameters")):
            # UpdateStackSet, Accounts: "If the stack set update includes changes to the template (that
            # is, if the TemplateBody or TemplateURL properties are specified), or the Parameters
            # property, CloudFormation marks all stack instances with a status of OUTDATED prior to
            # updating the stack instances in the specified accounts and AWS Regions." Otherwise it
            # leaves "all other stack instances with their existing stack instance status".
            states.update({k: OUTDATED for k in _instance_keys(plain, name)})
        for account, region in targets:
            # The operation deploys the stack set's current template and parameters to the named
            # instances (UpdateStackSet: "Subsequent CreateStackInstances calls on the specified stack
            # set use the updated stack set"; UpdateStackInstances updates outdated instances).
            params_now = merged_parameters(ss.get("Parameters", []), _pairs(overrides.get((account, region), {})))
            failure = self.reconcile(name, account, region, _template_body(ss), params_now)
            states[(account, region)] = CURRENT if failure is None else {
                "Status": "OUTDATED", "DetailedStatus": "FAILED", "StatusReason": failure}
        self.book.record(ss["StackSetId"], states)
        return states

    def reconcile(self, stack_set: str, account: str, region: str, template_body: str,
                  parameters: list[dict[str, str]]) -> str | None:
        """Bring the instance's stack to the stack set's template/parameters and fill what moto
        skipped; the stack update's error when it fails (AWS then reports the instance FAILED)."""
        with self._lock:
            session = self._session_for(account, region)
            cfn = session.client("cloudformation")
            stack = instance_stack_name(cfn, stack_set)
            if stack is None:
                return None
            declared = set(cfnyaml.load(template_body).get("Parameters") or {})
            unknown = sorted({p["ParameterKey"] for p in parameters} - declared)
            if unknown:
                # A stack is validated against its template (AWS: "Parameters: [X] do not exist in the
                # template"); moto accepts any parameter, so the check is made here.
                return f"Parameters: [{', '.join(unknown)}] do not exist in the template"
            try:
                cfn.update_stack(StackName=stack, TemplateBody=template_body, Parameters=parameters,
                                 Capabilities=["CAPABILITY_NAMED_IAM"])
                self._log(f"sandbox: stack in {account}/{region} brought to the stack set's template and parameters")
            except Exception as exc:  # noqa: BLE001 - reported as the instance's failure, as AWS does
                if "No updates are to be performed" not in str(exc):
                    return str(exc)
            values = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
            complete_skipped_resources(session, cfn, stack, template_body, values, account=account, region=region)
            return None

    # -- DeleteStackInstances: the stack goes with everything the sandbox added to it ---------------

    def _before_delete(self, plain: Any) -> Callable[..., None]:
        def hook(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            if params.get("RetainStacks"):
                # DeleteStackInstances, RetainStacks: "Removes the stack instances from the specified
                # stack set, but doesn't delete the stacks." moto deletes them anyway (moto-notes §1).
                from replctl.sandbox.adapt import NotEmulated

                raise NotEmulated("DeleteStackInstances with RetainStacks true (moto deletes the stacks)")
            try:
                ss = plain.describe_stack_set(StackSetName=params["StackSetName"])["StackSet"]
            except Exception:  # noqa: BLE001 - the call itself will report the missing stack set
                return
            targets = self._targets(plain, params["StackSetName"], params)
            context["replctl_delete"] = {"request": copy.deepcopy(params), "stack_set_id": ss["StackSetId"],
                                         "targets": targets,
                                         "alarms": {k: self._alarms_of(params["StackSetName"], *k) for k in targets}}

        return hook

    def _alarms_of(self, stack_set: str, account: str, region: str) -> list[str]:
        session = self._session_for(account, region)
        cfn = session.client("cloudformation")
        stack = instance_stack_name(cfn, stack_set)
        if stack is None:
            return []
        from replctl.sandbox.adapt.skipped import skipped_alarm_names

        return skipped_alarm_names(session, cfn, stack, account=account, region=region)

    def _after_delete(self, plain: Any) -> Callable[..., None]:
        def hook(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            state = context.get("replctl_delete")
            if state is None or parsed.get("Error") or "OperationId" not in parsed:
                return
            with self._lock:
                for (account, region), names in state["alarms"].items():
                    # Deleting a stack deletes its resources (DeletionPolicy Retain aside): the alarms
                    # the sandbox created in moto's place go with it.
                    if names:
                        self._session_for(account, region).client("cloudwatch").delete_alarms(AlarmNames=names)
                self.book.forget(state["stack_set_id"], state["targets"])
                if self._events_for is not None:
                    # A delete is an operation like any other: its events reach the waiting queue.
                    self.announce(plain, self._events_for(plain), "DeleteStackInstances", state,
                                  parsed["OperationId"], {})

        return hook

    # -- the events CloudFormation would publish ------------------------------------------------------

    def announce(self, plain: Any, events: Any, api: str, state: dict[str, Any], operation_id: str,
                 states: dict[tuple[str, str], dict[str, str]]) -> None:
        """Publish the operation's StackSet events, as CloudFormation does in the administration
        account when an operation and its instances change status (CloudFormation User Guide,
        event-detail-stackset-operation-status-change.html and
        event-detail-stackset-stack-instance-status-change.html), so replctl's waits in the sandbox
        go by event as they do on AWS. moto's operations finish within the call, so every change is
        published at once, in the order AWS makes them: the operation RUNNING, each target
        instance's result, the operation's final status (what DescribeStackSetOperation says)."""
        from replctl.sandbox.adapt.eventbridge import stackset_instance_entry, stackset_operation_entry

        name = state["request"]["StackSetName"]
        ss = plain.describe_stack_set(StackSetName=name)["StackSet"]
        arn = ss.get("StackSetARN") or f"arn:aws:cloudformation:{plain.meta.region_name}:{ss['StackSetId']}"
        final = plain.describe_stack_set_operation(StackSetName=name, OperationId=operation_id)["StackSetOperation"]
        stacks = {(s["Account"], s["Region"]): s.get("StackId", "")
                  for page in plain.get_paginator("list_stack_instances").paginate(StackSetName=name)
                  for s in page.get("Summaries", [])}
        # The instance event's action: "CREATE | UPDATE | DELETE | DETECT_DRIFT".
        action = {"CreateStackInstances": "CREATE", "DeleteStackInstances": "DELETE"}.get(api, "UPDATE")
        entries = [stackset_operation_entry(arn, operation_id, "RUNNING")]
        for key in state["targets"]:
            st = states.get(key, CURRENT)
            stack_id = stacks.get(key) or f"arn:aws:cloudformation:{key[1]}:{key[0]}:stack/StackSet-{name}/{operation_id}"
            entries.append(stackset_instance_entry(arn, stack_id, action, st["Status"],
                                                   st["DetailedStatus"], st.get("StatusReason")))
        entries.append(stackset_operation_entry(arn, operation_id, final["Status"]))
        for i in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
            events.put_events(Entries=entries[i:i + 10])

    # -- what replctl reads ----------------------------------------------------------------------

    def _correct(self, summary: dict[str, Any]) -> None:
        state = self.book.get(str(summary.get("StackSetId", "")), summary.get("Account", ""), summary.get("Region", ""))
        if state is None:
            return
        summary["Status"] = state["Status"]
        summary["StackInstanceStatus"] = {"DetailedStatus": state["DetailedStatus"]}
        summary.pop("StatusReason", None)
        if state.get("StatusReason"):
            summary["StatusReason"] = state["StatusReason"]

    def _correct_listing(self, parsed: dict[str, Any], **_: Any) -> None:
        for summary in parsed.get("Summaries") or []:
            self._correct(summary)

    def _correct_instance(self, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("StackInstance"):
            self._correct(parsed["StackInstance"])


def _check_overridable(api: str, overrides: list[dict[str, Any]], stack_set: dict[str, Any]) -> None:
    # UpdateStackInstances: "You can only override the parameter values that are specified in the
    # stack set; to add or delete a parameter itself, use UpdateStackSet" (moto accepts any name).
    have = {p["ParameterKey"] for p in stack_set.get("Parameters", [])}
    unknown = sorted({p["ParameterKey"] for p in overrides} - have)
    if unknown:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "ValidationError", "Message": f"Parameters {unknown} are not "
                                     "specified in the stack set; only those can be overridden"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, api)


def _instance_keys(plain: Any, name: str) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for page in plain.get_paginator("list_stack_instances").paginate(StackSetName=name):
        keys += [(s["Account"], s["Region"]) for s in page.get("Summaries", [])]
    return keys


def _overrides(plain: Any, name: str, key: tuple[str, str]) -> dict[str, str]:
    try:
        inst = plain.describe_stack_instance(StackSetName=name, StackInstanceAccount=key[0],
                                             StackInstanceRegion=key[1])["StackInstance"]
    except Exception:  # noqa: BLE001 - not there yet: the call itself will say so
        return {}
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in inst.get("ParameterOverrides") or []}


def _template_body(stack_set: dict[str, Any]) -> str:
    return str(stack_set["TemplateBody"])


class AccountClients:
    """`.client(service)` in one account and region, through the factory (endpoint, caching)."""

    def __init__(self, factory: Any, account: str, region: str, role_arn: str) -> None:
        self.factory, self.account, self.region, self.role_arn = factory, account, region, role_arn

    def client(self, service: str) -> Any:
        return self.factory.client(service, region=self.region, account=self.account, role_arn=self.role_arn)


def install_stackset_emulation(factory: Any, execution_role_name: str, log: Callable[[str], None] | None = None,
                               book: StatusBook | None = None) -> StackSetEmulation:
    """Make every admin CloudFormation client from `factory` answer like AWS's StackSets (status
    kept in the sandbox's state folder unless `book` says otherwise), and keep bucket-policy Deny
    statements away from the emulator (see `without_denies`)."""

    def plain(client: Any) -> Any:
        return factory.base_session().client("cloudformation", region_name=client.meta.region_name,
                                             endpoint_url=client.meta.endpoint_url)

    def events(client: Any) -> Any:
        return factory.base_session().client("events", region_name=client.meta.region_name,
                                             endpoint_url=client.meta.endpoint_url)

    emulation = StackSetEmulation(
        lambda account, region: AccountClients(
            factory, account, region, f"arn:aws:iam::{account}:role/{execution_role_name}"),
        plain, book or StatusBook.for_sandbox(), log, events)

    def hook(service: str, account: str | None, client: Any) -> None:
        if service == "cloudformation" and account is None:
            emulation.install(client)
        if service == "s3":
            client.meta.events.register("provide-client-params.s3.PutBucketPolicy", without_denies)

    factory.add_client_hook(hook)
    return emulation


def without_denies(params: dict[str, Any], **_: Any) -> None:
    """moto enforces a bucket policy's Deny on every object call, whatever its Principal and
    Condition say (a TLS-only Deny blocks HTTPS uploads too), so the emulator gets the policy
    without its Deny statements. The policy replctl sends to AWS is unchanged."""
    try:
        policy = json.loads(params["Policy"])
    except (KeyError, TypeError, ValueError):
        return
    statements = policy.get("Statement", [])
    if isinstance(statements, list):
        policy["Statement"] = [st for st in statements if st.get("Effect") != "Deny"]
        params["Policy"] = json.dumps(policy)


def instance_stack_name(cfn: Any, stack_set: str) -> str | None:
    for page in cfn.get_paginator("list_stacks").paginate():
        for s in page.get("StackSummaries", []):
            if s["StackStatus"].startswith("DELETE"):
                continue
            n = s["StackName"]
            if n == f"StackSet:{stack_set}" or n.startswith(f"StackSet-{stack_set}-"):
                return str(n)
    return None
