"""The scripted fake StackSet service follows the AWS API reference, one rule per test.

The rollout tests rely on the fake; these tests pin the fake to what AWS documents, so that a
rollout that passes against it would pass against AWS. Each test names the rule it checks, as
quoted where the fake implements it (tests/unit/deploy/fake_stacksets.py).

GIVEN a fake with three instances deployed (dev, staging, prod; one region unless a test says
otherwise), WHEN a StackSet API is called the way the rule describes, THEN the fake answers as
the sentence says.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.unit.deploy.fake_stacksets import DEV, PROD, REGION, STAGING, FakeClock, FakeStackSets

NAME = "ss"
T1 = """\
Parameters:
  Environment: {Type: String}
  Colour: {Type: String, Default: blue}
Resources:
  P: {Type: AWS::SSM::Parameter, Properties: {Name: x, Type: String, Value: !Ref Colour}}
"""
T2 = T1.replace("Resources:", "  Size: {Type: String, Default: s}\nResources:")  # adds Size
T3 = T1.replace("  Colour: {Type: String, Default: blue}\n", "")  # drops Colour
ACCOUNTS = (DEV, STAGING, PROD)


def pairs(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


class Fake:
    """A FakeStackSets with three deployed instances, and shortcuts for calling it."""

    def __init__(self, *, managed: bool = False, regions: tuple[str, ...] = (REGION,)) -> None:
        self.clock = FakeClock()
        self.cfn = FakeStackSets(self.clock, duration=30)
        self.cfn.create_stack_set(StackSetName=NAME, TemplateBody=T1, ManagedExecution={"Active": managed},
                                  Parameters=pairs(Environment="dev", Colour="blue"))
        for account, env in zip(ACCOUNTS, ("dev", "staging", "prod")):
            self.run(self.cfn.create_stack_instances, Accounts=[account], Regions=list(regions),
                     ParameterOverrides=pairs(Environment=env))

    def run(self, call: Any, **kw: Any) -> str:
        """Start an operation and let it finish."""
        op_id = call(StackSetName=NAME, **kw)["OperationId"]
        self.settle()
        return str(op_id)

    def settle(self) -> None:
        while any(not op.settled for op in self.cfn.operations.values()):
            self.clock.sleep(10)
            self.cfn.list_stack_set_operations(StackSetName=NAME)

    def status(self, region: str = REGION) -> dict[str, str]:
        return {a: self.cfn.instances[(a, region)].status for a in ACCOUNTS}

    def deployed(self, account: str, region: str = REGION) -> dict[str, str]:
        return dict(self.cfn.instances[(account, region)].deployed_parameters or {})


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture()
def fake() -> Fake:
    return Fake()


# -- which instances become OUTDATED ---------------------------------------------------------------


def test_update_with_a_template_marks_every_instance_outdated_and_deploys_the_named(fake: Fake) -> None:
    """UpdateStackSet, Accounts: "If the stack set update includes changes to the template ...
    CloudFormation marks all stack instances with a status of OUTDATED prior to updating the stack
    instances in the specified accounts"."""
    fake.run(fake.cfn.update_stack_set, TemplateBody=T2, Parameters=pairs(Environment="dev", Colour="blue"),
             Accounts=[DEV], Regions=[REGION])
    assert fake.status() == {DEV: "CURRENT", STAGING: "OUTDATED", PROD: "OUTDATED"}
    assert fake.cfn.instances[(DEV, REGION)].deployed_template == T2
    assert fake.cfn.instances[(STAGING, REGION)].deployed_template == T1


def test_update_with_only_the_parameters_property_marks_every_instance_outdated(fake: Fake) -> None:
    """... "or the Parameters property": previous template and previous values still count."""
    fake.run(fake.cfn.update_stack_set, UsePreviousTemplate=True, Accounts=[STAGING], Regions=[REGION],
             Parameters=[{"ParameterKey": "Environment", "UsePreviousValue": True},
                         {"ParameterKey": "Colour", "UsePreviousValue": True}])
    assert fake.status() == {DEV: "OUTDATED", STAGING: "CURRENT", PROD: "OUTDATED"}


def test_update_without_template_or_parameters_leaves_the_others_alone(fake: Fake) -> None:
    """"If the stack set update does not include changes to the template or parameters,
    CloudFormation updates the stack instances in the specified accounts and AWS Regions, while
    leaving all other stack instances with their existing stack instance status.\""""
    fake.run(fake.cfn.update_stack_set, UsePreviousTemplate=True, Accounts=[STAGING], Regions=[REGION])
    assert fake.status() == {DEV: "CURRENT", STAGING: "CURRENT", PROD: "CURRENT"}
    assert fake.cfn.instances[(STAGING, REGION)].deployments == 2


def test_update_without_accounts_updates_every_instance(fake: Fake) -> None:
    """"To update all the stack instances associated with this stack set, don't specify the
    Accounts or Regions properties.\""""
    fake.run(fake.cfn.update_stack_set, TemplateBody=T2, Parameters=pairs(Environment="dev", Colour="red"))
    assert fake.status() == {a: "CURRENT" for a in ACCOUNTS}
    assert {fake.deployed(a)["Colour"] for a in ACCOUNTS} == {"red"}


def test_accounts_need_regions(fake: Fake) -> None:
    """"If you specify accounts, you must also specify the AWS Regions in which to update stack set instances.\""""
    with pytest.raises(ClientError) as info:
        fake.cfn.update_stack_set(StackSetName=NAME, UsePreviousTemplate=True, Accounts=[DEV])
    assert code(info) == "ValidationError"


def test_update_naming_a_missing_instance_is_refused(fake: Fake) -> None:
    """UpdateStackSet errors: StackInstanceNotFoundException, "The specified stack instance doesn't exist.\""""
    with pytest.raises(ClientError) as info:
        fake.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Accounts=["444444444444"], Regions=[REGION])
    assert code(info) == "StackInstanceNotFoundException"
    assert fake.cfn.stack_set["TemplateBody"] == T1  # refused before anything changed


def test_a_failed_update_still_updates_the_stack_set_and_new_instances_use_it(fake: Fake) -> None:
    """"Even if the stack set operation created by updating the stack set fails ..., the stack set
    is updated with your changes. Subsequent CreateStackInstances calls on the specified stack set
    use the updated stack set.\""""
    fake.cfn.failures[(DEV, REGION)] = "boom"
    fake.run(fake.cfn.update_stack_set, TemplateBody=T2, Accounts=[DEV], Regions=[REGION])
    assert fake.cfn.operations[list(fake.cfn.operations)[-1]].status == "FAILED"
    assert fake.cfn.stack_set["TemplateBody"] == T2
    fake.run(fake.cfn.create_stack_instances, Accounts=["444444444444"], Regions=[REGION],
             ParameterOverrides=pairs(Environment="qa"))
    assert fake.cfn.instances[("444444444444", REGION)].deployed_template == T2


def test_update_stack_instances_brings_only_the_named_to_the_current_template(fake: Fake) -> None:
    """UpdateStackInstances deploys the stack set's current template to the named instances; the
    others keep their status (CodePipeline's stack-instances action "updates outdated stack instances")."""
    fake.run(fake.cfn.update_stack_set, TemplateBody=T2, Accounts=[DEV], Regions=[REGION])
    fake.run(fake.cfn.update_stack_instances, Accounts=[STAGING], Regions=[REGION],
             ParameterOverrides=pairs(Environment="staging"))
    assert fake.status() == {DEV: "CURRENT", STAGING: "CURRENT", PROD: "OUTDATED"}
    assert fake.cfn.instances[(STAGING, REGION)].deployed_template == T2


def test_update_stack_instances_only_where_instances_exist(fake: Fake) -> None:
    """"You can only update stack instances in AWS Regions and accounts where they already exist".\""""
    with pytest.raises(ClientError) as info:
        fake.cfn.update_stack_instances(StackSetName=NAME, Accounts=["444444444444"], Regions=[REGION])
    assert code(info) == "StackInstanceNotFoundException"


# -- override merging --------------------------------------------------------------------------------


def test_the_override_list_is_complete_use_previous_value_keeps_and_no_list_keeps_all(fake: Fake) -> None:
    """ParameterOverrides: "To override the current value for a parameter, include the parameter
    and specify its value"; "To leave an overridden parameter set to its present value, include the
    parameter and specify UsePreviousValue as true"; "To set an overridden parameter back to the
    value specified in the stack set, specify a parameter list but don't include the parameter in
    the list"; "To leave all parameters set to their present values, don't specify this property at all.\""""
    fake.run(fake.cfn.update_stack_instances, Accounts=[DEV], Regions=[REGION],
             ParameterOverrides=pairs(Environment="dev", Colour="green"))
    assert fake.deployed(DEV) == {"Environment": "dev", "Colour": "green"}
    fake.run(fake.cfn.update_stack_instances, Accounts=[DEV], Regions=[REGION],
             ParameterOverrides=[{"ParameterKey": "Environment", "UsePreviousValue": True}])
    assert fake.deployed(DEV) == {"Environment": "dev", "Colour": "blue"}  # Colour back to the stack set's
    fake.run(fake.cfn.update_stack_instances, Accounts=[DEV], Regions=[REGION])
    assert fake.cfn.instances[(DEV, REGION)].overrides == {"Environment": "dev"}


def test_overrides_survive_stack_set_updates(fake: Fake) -> None:
    """UpdateStackInstances: "During stack set updates, any parameters overridden for a stack
    instance aren't updated, but retain their overridden value.\""""
    fake.run(fake.cfn.update_stack_set, TemplateBody=T1, Parameters=pairs(Environment="base", Colour="red"),
             Accounts=list(ACCOUNTS), Regions=[REGION])
    assert [fake.deployed(a) for a in ACCOUNTS] == [{"Environment": e, "Colour": "red"}
                                                    for e in ("dev", "staging", "prod")]
    assert fake.cfn.instances[(PROD, REGION)].overrides == {"Environment": "prod"}


# -- parameter existence ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["create_stack_instances", "update_stack_instances"])
def test_only_parameters_the_stack_set_has_can_be_overridden(fake: Fake, api: str) -> None:
    """"You can only override the parameter values that are specified in the stack set".\""""
    with pytest.raises(ClientError) as info:
        getattr(fake.cfn, api)(StackSetName=NAME, Accounts=[DEV], Regions=[REGION],
                               ParameterOverrides=pairs(Environment="dev", Size="l"))
    assert code(info) == "ValidationError"


def test_a_new_parameter_is_overridden_only_once_the_instance_runs_its_template(fake: Fake) -> None:
    """"Once a stack instance has been updated with the new parameter, you can then override the
    parameter value using UpdateStackInstances.\""""
    fake.run(fake.cfn.update_stack_set, TemplateBody=T2, Parameters=pairs(Environment="dev", Colour="blue", Size="s"),
             Accounts=[DEV], Regions=[REGION])
    with pytest.raises(ClientError) as info:
        fake.cfn.update_stack_instances(StackSetName=NAME, Accounts=[STAGING], Regions=[REGION],
                                        ParameterOverrides=pairs(Environment="staging", Size="l"))
    assert code(info) == "ValidationError"
    fake.run(fake.cfn.update_stack_instances, Accounts=[DEV], Regions=[REGION],
             ParameterOverrides=pairs(Environment="dev", Size="l"))
    assert fake.deployed(DEV)["Size"] == "l"


def test_a_stack_given_a_parameter_its_template_lacks_fails(fake: Fake) -> None:
    """A stack is validated against its template: "Parameters: [X] do not exist in the template".
    dev keeps its Colour override through the update that drops Colour, so its stack update fails."""
    fake.run(fake.cfn.update_stack_instances, Accounts=[DEV], Regions=[REGION],
             ParameterOverrides=pairs(Environment="dev", Colour="green"))
    fake.run(fake.cfn.update_stack_set, TemplateBody=T3, Parameters=pairs(Environment="dev"),
             Accounts=[DEV], Regions=[REGION])
    inst = fake.cfn.instances[(DEV, REGION)]
    assert (inst.status, inst.detailed, inst.reason) == (
        "OUTDATED", "FAILED", "Parameters: [Colour] do not exist in the template")


def test_stack_set_parameters_must_be_in_the_template(fake: Fake) -> None:
    with pytest.raises(ClientError) as info:
        fake.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T3, Parameters=pairs(Environment="dev", Colour="x"),
                                  Accounts=[DEV], Regions=[REGION])
    assert code(info) == "ValidationError" and "Parameters: [Colour] do not exist" in str(info.value)


# -- failure tolerance -------------------------------------------------------------------------------


def test_within_the_tolerance_the_operation_succeeds_with_the_instance_failed() -> None:
    """StackSetOperation SUCCEEDED: "completed ... without exceeding the failure tolerance"."""
    fake = Fake()
    fake.cfn.failures[(STAGING, REGION)] = "boom"
    op = fake.run(fake.cfn.update_stack_set, TemplateBody=T2, Accounts=list(ACCOUNTS), Regions=[REGION],
                  OperationPreferences={"FailureToleranceCount": 1})
    assert fake.cfn.operations[op].status == "SUCCEEDED"
    assert fake.status() == {DEV: "CURRENT", STAGING: "OUTDATED", PROD: "CURRENT"}


def test_beyond_the_tolerance_the_region_stops_and_later_regions_are_not_attempted() -> None:
    """FailureToleranceCount: "The number of accounts, per Region, for which this operation can
    fail before CloudFormation stops the operation in that Region. If the operation is stopped in a
    Region, CloudFormation doesn't attempt the operation in any subsequent Regions." (default 0)"""
    fake = Fake(regions=(REGION, "eu-west-1"))
    fake.cfn.failures[(DEV, REGION)] = "boom"
    op = fake.run(fake.cfn.update_stack_set, TemplateBody=T2, Accounts=list(ACCOUNTS),
                  Regions=[REGION, "eu-west-1"])
    results = fake.cfn.operations[op].results
    assert fake.cfn.operations[op].status == "FAILED"
    assert [results[(a, REGION)][0] for a in ACCOUNTS] == ["FAILED", "CANCELLED", "CANCELLED"]
    assert {results[(a, "eu-west-1")][0] for a in ACCOUNTS} == {"CANCELLED"}
    assert {fake.cfn.instances[(a, "eu-west-1")].deployed_template for a in ACCOUNTS} == {T1}


# -- one operation at a time -----------------------------------------------------------------------


def test_a_second_operation_is_refused_without_managed_execution(fake: Fake) -> None:
    """OperationInProgressException: "Only one operation can be performed for a stack set at a given time.\""""
    fake.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Accounts=[DEV], Regions=[REGION])
    with pytest.raises(ClientError) as info:
        fake.cfn.update_stack_instances(StackSetName=NAME, Accounts=[STAGING], Regions=[REGION])
    assert code(info) == "OperationInProgressException"


def test_with_managed_execution_operations_queue_in_request_order() -> None:
    """ManagedExecution: "If there are already running or queued operations, StackSets queues all
    incoming operations"; "StackSets starts queued operations in request order.\""""
    fake = Fake(managed=True)
    first = fake.cfn.update_stack_set(StackSetName=NAME, TemplateBody=T2, Accounts=[DEV], Regions=[REGION])
    second = fake.cfn.update_stack_instances(StackSetName=NAME, Accounts=[STAGING], Regions=[REGION])
    ops = fake.cfn.operations
    assert (ops[first["OperationId"]].status, ops[second["OperationId"]].status) == ("RUNNING", "QUEUED")
    assert ops[second["OperationId"]].start == ops[first["OperationId"]].end
    fake.settle()
    assert fake.status() == {DEV: "CURRENT", STAGING: "CURRENT", PROD: "OUTDATED"}


def test_an_operation_id_starts_one_operation(fake: Fake) -> None:
    """OperationIdAlreadyExistsException: "The specified operation ID already exists.\""""
    fake.run(fake.cfn.update_stack_instances, Accounts=[DEV], Regions=[REGION], OperationId="op-x")
    with pytest.raises(ClientError) as info:
        fake.cfn.update_stack_instances(StackSetName=NAME, Accounts=[DEV], Regions=[REGION], OperationId="op-x")
    assert code(info) == "OperationIdAlreadyExistsException"


# -- INOPERABLE and CallAs ---------------------------------------------------------------------------


def test_inoperable_instances_are_excluded_from_stack_set_updates(fake: Fake) -> None:
    """StackInstanceComprehensiveStatus, INOPERABLE: "Stacks in this state are excluded from further
    UpdateStackSet operations.\""""
    fake.cfn.set_instance_state((PROD, REGION), "INOPERABLE", "INOPERABLE")
    op = fake.run(fake.cfn.update_stack_set, TemplateBody=T2)
    assert (PROD, REGION) not in fake.cfn.operations[op].targets
    assert fake.status() == {DEV: "CURRENT", STAGING: "CURRENT", PROD: "INOPERABLE"}
    assert fake.cfn.instances[(PROD, REGION)].deployed_template == T1


def test_a_delegated_administrator_must_call_as_one(fake: Fake) -> None:
    """CallAs: "If you are signed in to a delegated administrator account, specify DELEGATED_ADMIN.\""""
    fake.cfn.delegated_admin = True
    with pytest.raises(ClientError) as info:
        fake.cfn.describe_stack_set(StackSetName=NAME)
    assert code(info) == "StackSetNotFoundException"
    assert fake.cfn.describe_stack_set(StackSetName=NAME, CallAs="DELEGATED_ADMIN")["StackSet"]["StackSetName"] == NAME
    fake.cfn.create_stack_set(StackSetName=NAME, TemplateBody=T1, CallAs="SELF")
    assert len(fake.cfn.created_as_self) == 1  # the caller's own account, not the organization's stack set


# -- events and the event queue ---------------------------------------------------------------------
#
# GIVEN the fake service announcing its changes through the bus into the fake SQS queue (World with
# events), WHEN operations run and the queue is called, THEN the events are the two CloudFormation
# documents, stamped when the change happened, and the queue answers as the SQS API reference says.


@pytest.fixture()
def world() -> Any:
    from tests.unit.deploy.fake_stacksets import World

    w = World(events=True)
    w.cfn.create_stack_set(StackSetName="replctl-replication", TemplateBody=T1, Parameters=pairs(Environment="dev"),
                           ManagedExecution={"Active": False})
    return w


def _events(world: Any) -> list[tuple[str, str, str]]:
    """(detail-type short, status or account:detailed, time) of every event the bus published."""
    out = []
    for e in world.bus.published:
        d = e["detail"]
        if "stack-set-operation-id" in d:
            out.append(("operation", d["status-details"]["status"], e["time"]))
        else:
            out.append(("instance", f"{d['stack-id'].split(':')[4]}:{d['status-details']['detailed-status']}", e["time"]))
    return out


def test_an_operation_publishes_its_and_its_instances_status_changes_when_they_happen(world: Any) -> None:
    """StackSet Operation Status Change (status RUNNING | SUCCEEDED | ...) and StackSet StackInstance
    Status Change (detailed-status PENDING | RUNNING | SUCCEEDED | ...): one per change."""
    start = world.clock()
    world.cfn.durations = [20]
    world.cfn.create_stack_instances(StackSetName="replctl-replication", Accounts=[DEV, STAGING], Regions=[REGION])
    world.clock.sleep(25)
    world.cfn.list_stack_set_operations(StackSetName="replctl-replication")  # any call brings the fake up to now
    from datetime import datetime, timezone

    at = lambda s: datetime.fromtimestamp(start + s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    assert _events(world) == [
        ("operation", "RUNNING", at(0)), ("instance", f"{DEV}:RUNNING", at(0)), ("instance", f"{STAGING}:PENDING", at(0)),
        ("instance", f"{DEV}:SUCCEEDED", at(10)), ("instance", f"{STAGING}:RUNNING", at(10)),
        ("instance", f"{STAGING}:SUCCEEDED", at(20)), ("operation", "SUCCEEDED", at(20))]
    first = world.bus.published[0]
    assert (first["source"], first["account"], first["region"]) == ("aws.cloudformation", "123456789012", REGION)
    assert first["detail"]["stack-set-arn"].startswith(f"arn:aws:cloudformation:{REGION}:123456789012:stackset/replctl-replication:")


def test_receive_returns_at_once_when_a_message_is_there_and_long_polls_otherwise(world: Any) -> None:
    """ReceiveMessage WaitTimeSeconds: "If a message is available, the call returns sooner than
    WaitTimeSeconds"; otherwise it waits that long."""
    q = world.queue
    start = world.clock()
    assert q.receive_message(QueueUrl=q.url, WaitTimeSeconds=20, MaxNumberOfMessages=10)["Messages"] == []
    assert world.clock() - start == 20
    q.send("hello", world.clock() + 3)
    got = q.receive_message(QueueUrl=q.url, WaitTimeSeconds=20, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["hello"] and world.clock() - start == 23


def test_a_received_message_is_hidden_for_the_visibility_timeout_then_comes_back(world: Any) -> None:
    """ReceiveMessage: a returned message "is not returned on subsequent ReceiveMessage requests for the
    duration of the VisibilityTimeout"; not deleted, it comes back (at least once delivery)."""
    q = world.queue
    q.send("x", world.clock())
    first = q.receive_message(QueueUrl=q.url, WaitTimeSeconds=0, MaxNumberOfMessages=1, VisibilityTimeout=15)["Messages"]
    assert q.receive_message(QueueUrl=q.url, WaitTimeSeconds=0, MaxNumberOfMessages=1)["Messages"] == []
    start = world.clock()
    again = q.receive_message(QueueUrl=q.url, WaitTimeSeconds=20, MaxNumberOfMessages=1)["Messages"]
    assert world.clock() - start == 15
    assert again[0]["MessageId"] == first[0]["MessageId"] and again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]


def test_only_the_latest_receipt_handle_deletes(world: Any) -> None:
    """DeleteMessage: "You must provide the most recently received receipt handle ... (otherwise, the
    request succeeds, but the message will not be deleted)"."""
    q = world.queue
    q.send("x", world.clock())
    old = q.receive_message(QueueUrl=q.url, VisibilityTimeout=0, MaxNumberOfMessages=1)["Messages"][0]["ReceiptHandle"]
    new = q.receive_message(QueueUrl=q.url, MaxNumberOfMessages=1)["Messages"][0]["ReceiptHandle"]
    q.delete_message_batch(QueueUrl=q.url, Entries=[{"Id": "0", "ReceiptHandle": old}])
    assert len(q.pending()) == 1
    q.delete_message_batch(QueueUrl=q.url, Entries=[{"Id": "0", "ReceiptHandle": new}])
    assert q.pending() == []


def test_a_new_visibility_timeout_counts_from_the_change(world: Any) -> None:
    """ChangeMessageVisibility: "the 10 seconds begin to count from the time that you make the
    ChangeMessageVisibility call"."""
    q = world.queue
    q.send("x", world.clock())
    handle = q.receive_message(QueueUrl=q.url, MaxNumberOfMessages=1)["Messages"][0]["ReceiptHandle"]
    world.clock.sleep(7)
    q.change_message_visibility_batch(QueueUrl=q.url, Entries=[{"Id": "0", "ReceiptHandle": handle,
                                                                "VisibilityTimeout": 10}])
    start = world.clock()
    q.receive_message(QueueUrl=q.url, WaitTimeSeconds=20, MaxNumberOfMessages=1)
    assert world.clock() - start == 10


def test_a_missing_queue_is_queue_does_not_exist(world: Any) -> None:
    """GetQueueUrl (Errors): QueueDoesNotExist (AWS.SimpleQueueService.NonExistentQueue in the query protocol)."""
    world.queue.exists = False
    with pytest.raises(ClientError) as info:
        world.queue.get_queue_url(QueueName="replctl-replication-events", QueueOwnerAWSAccountId="123456789012")
    assert code(info) == "AWS.SimpleQueueService.NonExistentQueue"


def test_the_bus_delays_drops_duplicates_and_reorders_as_scripted(world: Any) -> None:
    bus = world.bus
    bus.delay = lambda e: 2.0
    bus.drop = lambda e: e["detail"].get("stack-set-operation-id") is not None \
        and e["detail"]["status-details"]["status"] == "RUNNING"
    bus.duplicate = lambda e: True
    bus.reorder = True
    world.cfn.durations = [0.5]
    world.cfn.create_stack_instances(StackSetName="replctl-replication", Accounts=[DEV], Regions=[REGION])
    start = world.clock()
    world.clock.sleep(1)
    world.cfn.list_stack_set_operations(StackSetName="replctl-replication")

    def kind(body: str) -> str:
        d = json.loads(body)["detail"]
        return f"operation {d['status-details']['status']}" if "stack-set-operation-id" in d else \
            f"instance {d['status-details']['detailed-status']}"

    # The operation's RUNNING dropped; each batch of changes delivered last-first once its last change
    # happened (the start at 0 s; the end at 0.5 s), 2 s later, and again 1 s after that.
    assert [(kind(m.body), m.visible_at - start) for m in world.queue.messages] == [
        ("instance RUNNING", 2.0), ("instance RUNNING", 3.0),
        ("operation SUCCEEDED", 2.5), ("operation SUCCEEDED", 3.5), ("instance SUCCEEDED", 2.5), ("instance SUCCEEDED", 3.5)]
    assert [e["detail"]["status-details"]["status"] for e in bus.dropped] == ["RUNNING"]
