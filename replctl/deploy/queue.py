"""The event queue: this stack set's StackSet events as SQS messages, long-polled while a wait lasts.

cfn/stackset-administration-role.yaml (WaitByEvents, on by default) creates `<stack set>-events`
in the home region with a rule sending it CloudFormation's StackSet events for this stack set.
`EventQueue` is that queue as one replctl run sees it: found once (GetQueueUrl), or found
unusable once — not bootstrapped, or denied — and then said once, after which every wait polls
as before (`stackset.wait.mode: events` makes that an error instead; `poll` never looks).
`Listener` is one wait's use of it: it receives, lets `replctl.deploy.events` sort each message,
deletes what is done with, hands other operations' messages back, and tells the waiter
(`replctl.waiting.wait_by_event`) when its operation's terminal event came.

SQS semantics relied on (SQS API reference unless named): ReceiveMessage WaitTimeSeconds —
"If a message is available, the call returns sooner than WaitTimeSeconds", at most 20
("The maximum long polling wait time is 20 seconds", Developer Guide, "Setting-up long
polling"); MaxNumberOfMessages "Valid values: 1 to 10"; a received message is hidden for the
visibility timeout and comes back unless deleted (DeleteMessage); a standard queue delivers at
least once and out of order ("be sure that your code can handle the case where the same message
has been delivered more than once"); ChangeMessageVisibility's new timeout counts "from the time
that you make the ChangeMessageVisibility call". The batch forms are authorised by the single
actions ("setting permissions for SendMessage, DeleteMessage, or ChangeMessageVisibility sets
permissions for the corresponding batch versions", Developer Guide, "Amazon SQS batch actions").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from replctl.aws import error_code, is_transient, translate
from replctl.config import Config, WaitSettings
from replctl.deploy.events import (
    Event, Heard, Message, Verdict, Waiting, ends_wait, hand_back_seconds, heard, read_event, sort_event,
)
from replctl.errors import DeployError
from replctl.waiting import Woke

#: "The maximum long polling wait time is 20 seconds" (SQS Developer Guide, "Setting-up long polling").
LONG_POLL_SECONDS = 20
#: ReceiveMessage MaxNumberOfMessages, and the most entries a batch call takes.
BATCH = 10
#: GetQueueUrl/ReceiveMessage on a queue that does not exist: the query protocol's code and the JSON
#: protocol's (botocore maps both to QueueDoesNotExist).
MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException"})
BOOTSTRAP_HINT = ("deploy cfn/stackset-administration-role.yaml with WaitByEvents=true in the home region, or set "
                  "stackset.wait.mode: poll")


class EventQueue:
    """The queue of this stack set's events for one replctl run (shared by attach and apply)."""

    def __init__(self, sqs: Callable[[], Any], *, name: str | None, account: str, region: str,
                 mode: str = "auto") -> None:
        self._sqs_maker = sqs
        self._sqs: Any = None
        self.name, self.account, self.region, self.mode = name, account, region, mode
        self.url: str | None = None
        self.why_not: str | None = None  # set once the queue is known to be unusable
        self._said = False
        self.finished: set[str] = set()  # operations this run finished waiting on

    @classmethod
    def for_config(cls, sqs: Callable[[], Any], config: Config) -> EventQueue:
        ss = config.stackset
        return cls(sqs, name=ss.event_queue_name, account=config.admin.account_id, region=ss.home_region,
                   mode=ss.wait.mode)

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = self._sqs_maker()
        return self._sqs

    # -- is it there -----------------------------------------------------------------------------

    def ready(self, say: Callable[[str], None]) -> bool:
        """True when waits can listen here; otherwise says once why (auto) or refuses (events)."""
        if self.mode == "poll":
            return False
        if self.url is None and self.why_not is None:
            self._find()
        if self.url is not None:
            return True
        self._unusable(say)
        return False

    def _find(self) -> None:
        if self.name is None:
            self.why_not = "the stack set's name is too long for an event queue name (<name>-events, 80 characters)"
            return
        try:
            self.url = str(self.sqs.get_queue_url(QueueName=self.name, QueueOwnerAWSAccountId=self.account)["QueueUrl"])
        except Exception as exc:
            self.why_not = self._reason(exc)

    def _reason(self, exc: BaseException) -> str:
        """Why the queue cannot be used, for the one note; anything but an AWS refusal is raised."""
        code = error_code(exc)
        where = f"{self.name} in {self.account} {self.region}"
        if code in MISSING:
            return f"there is no event queue {where}"
        if code in DENIED:
            return f"reading the event queue {where} is denied ({code})"
        if code or is_transient(exc):
            return f"the event queue {where} could not be read ({code or type(exc).__name__})"
        raise translate(exc) from exc

    def _unusable(self, say: Callable[[str], None]) -> None:
        if self.mode == "events":
            raise DeployError(f"stackset.wait.mode is events, but {self.why_not}",
                              hint=BOOTSTRAP_HINT.replace("or set stackset.wait.mode: poll",
                                                          "or set stackset.wait.mode: auto (or poll)")
                              + "; an operation already started keeps running, and a re-run waits for it")
        if not self._said:
            self._said = True
            say(f"waiting by polling: {self.why_not} ({BOOTSTRAP_HINT})")

    def lost(self, exc: BaseException, say: Callable[[str], None]) -> None:
        """The queue failed under a wait (deleted, or a permission removed): poll from now on."""
        self.url, self.why_not = None, self._reason(exc)
        self._unusable(say)

    # -- messages --------------------------------------------------------------------------------

    def receive(self, seconds: float) -> list[Message]:
        # Whole seconds, at least one: a zero wait is a short poll, which would spin until the next read.
        wait = min(LONG_POLL_SECONDS, max(1, math.ceil(seconds)))
        answer = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait,
                                          MessageSystemAttributeNames=["ApproximateReceiveCount"])
        return [Message(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""),
                        int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)))
                for m in answer.get("Messages", [])]

    def delete(self, messages: Sequence[Message]) -> None:
        for chunk in _chunks(messages):
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(chunk)])

    def hand_back(self, messages: Sequence[Message]) -> None:
        for chunk in _chunks(messages):
            self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt, "VisibilityTimeout": hand_back_seconds(m.receive_count)}
                for i, m in enumerate(chunk)])

    def listener(self, who: Waiting, *, on_progress: Callable[[Heard], None], say: Callable[[str], None],
                 sleep: Callable[[float], None], settings: WaitSettings) -> Listener:
        return Listener(self, who, on_progress=on_progress, say=say, sleep=sleep, settings=settings)


def _chunks(messages: Sequence[Message]) -> list[Sequence[Message]]:
    return [messages[i:i + BATCH] for i in range(0, len(messages), BATCH)]


class Listener:
    """One wait's listening: `listen(seconds)` for `replctl.waiting.wait_by_event`."""

    def __init__(self, queue: EventQueue, who: Waiting, *, on_progress: Callable[[Heard], None],
                 say: Callable[[str], None], sleep: Callable[[float], None], settings: WaitSettings) -> None:
        self.queue, self.who = queue, who
        self.on_progress, self.say, self.sleep, self.settings = on_progress, say, sleep, settings
        self.heard = Heard()

    def listen(self, seconds: float) -> Woke:
        try:
            messages = self.queue.receive(seconds)
        except Exception as exc:
            if is_transient(exc):
                # Throttled or a dropped connection: wait a little rather than ask again at once.
                self.sleep(min(seconds, self.settings.initial_interval_seconds))
                return Woke.QUIET
            self.queue.lost(exc, self.say)
            return Woke.GONE
        return self._take(messages)

    def _take(self, messages: list[Message]) -> Woke:
        mine: list[Event] = []
        done_with: list[Message] = []
        foreign: list[Message] = []
        for message in messages:
            event = read_event(message.body)
            match sort_event(event, self.who):
                case Verdict.MINE if event is not None:
                    mine.append(event)
                    done_with.append(message)
                case Verdict.FOREIGN:
                    foreign.append(message)
                case _:  # FINISHED, JUNK
                    done_with.append(message)
        before, self.heard = self.heard, heard(self.heard, mine)
        try:
            self.queue.delete(done_with)
            self.queue.hand_back(foreign)
        except Exception as exc:
            if not is_transient(exc):
                # A message not deleted comes back and would wake the wait again: stop listening.
                self.queue.lost(exc, self.say)
                return Woke.GONE
        if self.heard != before:
            self.on_progress(self.heard)
        if ends_wait(mine, self.who.operation_id):
            return Woke.EVENT
        return Woke.HEARD if mine else Woke.QUIET

