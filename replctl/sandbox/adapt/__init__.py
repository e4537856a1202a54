"""Everything the sandbox does because the emulator (moto 5.2) is not AWS — in this one package.

`cfn/replication.yaml` stays written for AWS. What moto lacks is handled here, each gap named,
one module per kind of gap: `template` (the text uploaded), `stacksets` (StackSet behaviour, on
the admin client), `skipped` (what moto's CloudFormation skips), `eventbridge` (inside the
emulator's process). This module says what is not emulated at all (`NOT_EMULATED`), and names
the refusal of a case the adaptation does not cover (`NotEmulated`).

Template, adapted on upload (`template.adapt_template_for_sandbox`, each substitution listed):
- `AWS::DynamoDB::GlobalTable` → `AWS::DynamoDB::Table` with the same keys, billing, stream
  and SSE (moto silently skips GlobalTable and crashes on `GetAtt StreamArn` of it).
- `AWS::Lambda::EventSourceMapping` removed: moto would hand stream records to Docker and
  drop them; the sandbox plays the mapping instead (`sandbox invoke` reads the stream).
- `AWS::KMS::Key`: `KeyPolicy` given as a JSON string and `Tags` in the API's TagKey/TagValue shape
  (moto breaks on both CloudFormation forms).
- Short-form `!Condition` inside `!Not/!And/!Or` (moto evaluates it wrongly) disappears because
  the adapted template is emitted in JSON long form.

StackSet behaviour, emulated through botocore hooks on the admin CloudFormation client
(`stacksets.install_stackset_emulation`; each rule quotes the API reference sentence it follows):
- instance parameter overrides are merged with the stack set's parameters (moto replaces), and
  kept across stack set updates (moto overwrites the named instances' overrides with the stack
  set's parameters on UpdateStackSet);
- UpdateStackSet / UpdateStackInstances / CreateStackInstances reach the deployed stacks (moto
  only updates metadata): the named instances' stacks get the stack set's current template and
  parameters, as StackSets would;
- instance status as AWS reports it: an UpdateStackSet that specifies the template or the
  Parameters property marks every instance OUTDATED, and the instances an operation deployed
  become CURRENT (or OUTDATED/FAILED with the stack update's error). moto says CURRENT always,
  so the sandbox keeps its own record (`StatusBook`, a file in the sandbox's state folder) and
  corrects ListStackInstances and DescribeStackInstance;
- the StackSet events CloudFormation publishes in the administration account (operation and
  instance status changes; moto publishes none), put on the admin account's default bus when an
  emulated operation completes, so the bootstrap's rule delivers them to the event queue and
  `deploy` waits by event in the sandbox as on AWS;
- after a stack is created or updated, the properties and types moto's CloudFormation skips are
  applied through the service APIs (`skipped.complete_skipped_resources`): bucket versioning,
  encryption, public access block, ownership controls and replication rules; table point-in-time
  recovery; and the CloudWatch alarms (created from the template's alarm definitions).

Bucket policies: moto enforces any Deny on every object call whatever its Principal and
Condition, so the emulator receives replctl's bucket policies without their Deny statements
(`stacksets.without_denies`); AWS gets them whole.

EventBridge and the events AWS services publish to it, adapted inside the emulator's process
(`eventbridge.install_emulator_adaptations`, installed by `replctl.sandbox.server`):
a rule without an event pattern (a schedule) or a disabled rule never matches an event; an event
routed to a Lambda target is queued for the function (`replctl.sandbox.asyncinvoke`) instead of
failing the PutEvents call; Parameter Store and CloudFormation publish their change events.

Not emulated (said once by the commands that would need them; see `NOT_EMULATED`).
"""

from __future__ import annotations


class NotEmulated(Exception):
    """A case the sandbox deliberately does not emulate: refused, rather than answered wrongly.

    Raised where AWS would do something the emulator cannot reproduce faithfully (e.g. an
    EventBridge input transformation on a Lambda target). Not a ReplctlError: it stops the
    emulator's handling of that one request and names what is missing.
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"sandbox: {what} is not emulated")
        self.what = what


#: What the emulator cannot do, by the command that would need it; each is said once per run.
NOT_EMULATED: dict[str, tuple[str, ...]] = {
    "deploy": (
        "the emulator runs StackSet operations instantly; StackSets' propagation of updates and the "
        "resource properties moto skips are applied by the sandbox (replctl.sandbox.adapt)",
        "bucket policies are not applied in the sandbox (moto enforces any Deny regardless of its conditions)",
    ),
    "status": (
        "the emulator never evaluates alarms: they stay OK unless set with set-alarm-state",
        "functions run only through `replctl sandbox invoke`; S3 replication and the stream mapping are "
        "played by it, so lag and metrics are as fresh as the last invoke",
    ),
}


def notes_for(command: str) -> tuple[str, ...]:
    return NOT_EMULATED.get(command, ())
