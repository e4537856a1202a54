"""SSM mirroring I/O of ReplicationMonitorLambda: read sources and mirrors, carry out decisions.

What to do with each mirror is decided in monitor_logic (pure); this module reads and writes.
- `sync_parameter`: one changed parameter (a Parameter Store Change event), in every target.
- `reconcile`: the whole hierarchy against each target (the schedule); this also backfills
  parameters that existed before mirroring towards an environment was switched on.

Reads are batched and reused. The hierarchy is listed with GetParametersByPath pages of 10 (its
maximum: "MaxResults ... Maximum value of 10") without decryption, and a listed value is written
as listed: a stale listing cannot roll a mirror back, because a mirror is only replaced by a
strictly newer source (monitor_logic), and a source deleted after the listing has its mirror
removed by its Delete event or the next run. Only SecureStrings that must be written are read
again, decrypted, with GetParameters (10 names per call, its maximum: "ParameterNameList ...
Maximum number of 10 items"), so a run decrypts only what it writes. Mirror state (the marker
Description and the Type) comes from DescribeParameters pages of 50.

Every call is paid for from the invocation's `Budget`: the reconciliation stops before the
deadline and leaves the rest for the next run (`Outcome.left`); on throttling it backs off while
the budget allows, then stops the same way. A mirror whose type changed is deleted and, after
DeleteParameter's 30 s ("wait for at least 30 seconds to create a parameter with the same
name"), written again; that is only started when the budget can pay for the wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from monitor_logic import (
    REPLACE_WAIT_SECONDS,
    SECURE,
    DeleteMirror,
    KeepMirror,
    MirrorState,
    MirrorWork,
    PutMirror,
    ReplaceMirror,
    SourceParameter,
    decide_mirror,
    error_text,
    plan_mirrors,
    put_mirror_request,
)
from replshared.budget import THROTTLING_CODES, Budget, OutOfTime, error_code
from replshared.clients import AwsClients
from replshared.settings import Settings
from replshared.telemetry import Metrics, get_logger

logger = get_logger("replication-monitor")

BY_PATH_PAGE = 10  # GetParametersByPath MaxResults maximum
DESCRIBE_PAGE = 50  # DescribeParameters MaxResults maximum
VALUES_PER_CALL = 10  # GetParameters Names maximum
FILTER_VALUES = 50  # ParameterStringFilter Values maximum
REPLACE_MARGIN_SECONDS = 10.0  # the deletes, the re-check and the puts around the 30 s wait


class Stopped(Exception):
    """The run stops here (out of time, or still throttled); the rest is left for the next one."""


@dataclass
class Outcome:
    """What a mirroring run did."""

    written: int = 0  # puts and deletes carried out
    left: int = 0  # mirrors known to differ (or not compared) that this run did not get to
    failures: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early


@dataclass
class MirrorRun:
    """Everything one mirroring run needs; `stop_when_throttled` is off for events (a failed
    event goes back to Lambda's retries) and on for the schedule (the next run continues)."""

    settings: Settings
    clients: AwsClients
    metrics: Metrics
    budget: Budget
    trigger: str
    stop_when_throttled: bool = False

    @property
    def dims(self) -> dict[str, str]:
        return {"Environment": self.settings.environment}

    def call(self, fn: Any, **kwargs: Any) -> Any:
        """One AWS call paid from the budget; Stopped when the run must end here."""
        try:
            return self.budget.call(fn, **kwargs)
        except OutOfTime as error:
            raise Stopped(f"out of time: {error}") from error
        except Exception as error:
            if self.stop_when_throttled and error_code(error) in THROTTLING_CODES:
                raise Stopped(f"still throttled after backing off: {error_code(error)}") from error
            raise


# -- reads ----------------------------------------------------------------------------------


def _source(p: dict[str, Any], *, decrypted: bool) -> SourceParameter:
    plain = decrypted or p["Type"] != SECURE
    return SourceParameter(name=p["Name"], type=p["Type"], value=p["Value"] if plain else None,
                           version=int(p["Version"]), modified=p["LastModifiedDate"].timestamp())


def read_source(ssm: Any, name: str, *, with_decryption: bool) -> SourceParameter | None:
    """The source parameter's current state, or None when it does not exist."""
    try:
        parameter = ssm.get_parameter(Name=name, WithDecryption=with_decryption)["Parameter"]
    except Exception as error:
        if error_code(error) == "ParameterNotFound":
            return None
        raise
    return _source(parameter, decrypted=with_decryption)


def _mirror(p: dict[str, Any]) -> MirrorState:
    return MirrorState(name=p["Name"], description=p.get("Description"), type=p.get("Type"))


def read_mirror(ssm: Any, name: str) -> MirrorState | None:
    """A mirror's marker and type (DescribeParameters: GetParameter has no description)."""
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
    return next((_mirror(p) for p in found.get("Parameters", []) if p.get("Name") == name), None)


def _pages(run: MirrorRun, fn: Any, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = run.call(fn, **kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def list_sources(run: MirrorRun, ssm: Any, path: str) -> dict[str, SourceParameter]:
    """Every parameter below `path`, listed without decryption (SecureString values left unread)."""
    return {p["Name"]: _source(p, decrypted=False) for p in _pages(
        run, ssm.get_parameters_by_path, "Parameters", Path=path, Recursive=True, WithDecryption=False,
        MaxResults=BY_PATH_PAGE)}


def list_mirrors(run: MirrorRun, ssm: Any, path: str) -> dict[str, MirrorState]:
    filters = [{"Key": "Path", "Option": "Recursive", "Values": [path]}]
    return {p["Name"]: _mirror(p) for p in _pages(
        run, ssm.describe_parameters, "Parameters", ParameterFilters=filters, MaxResults=DESCRIBE_PAGE)}


def describe_mirrors(run: MirrorRun, ssm: Any, names: list[str]) -> dict[str, MirrorState]:
    """The current state of the named mirrors, up to 50 names per DescribeParameters call."""
    found: dict[str, MirrorState] = {}
    for i in range(0, len(names), FILTER_VALUES):
        filters = [{"Key": "Name", "Option": "Equals", "Values": names[i:i + FILTER_VALUES]}]
        found.update((p["Name"], _mirror(p)) for p in _pages(
            run, ssm.describe_parameters, "Parameters", ParameterFilters=filters, MaxResults=DESCRIBE_PAGE))
    return found


def read_values(run: MirrorRun, ssm: Any, names: list[str]) -> dict[str, SourceParameter | None]:
    """The named parameters decrypted, 10 per GetParameters call; None for those now gone."""
    found: dict[str, SourceParameter | None] = {}
    for i in range(0, len(names), VALUES_PER_CALL):
        answer = run.call(ssm.get_parameters, Names=names[i:i + VALUES_PER_CALL], WithDecryption=True)
        found.update((p["Name"], _source(p, decrypted=True)) for p in answer.get("Parameters", []))
        # "InvalidParameters: A list of parameters that aren't formatted correctly or don't run
        # during an execution" - for plain names, the ones that no longer exist.
        found.update((name, None) for name in answer.get("InvalidParameters", []))
    return found


# -- writes ---------------------------------------------------------------------------------


def _delete(ssm: Any, name: str) -> None:
    try:
        ssm.delete_parameter(Name=name)
    except Exception as error:
        if error_code(error) != "ParameterNotFound":
            raise


def _report_failure(run: MirrorRun, work: MirrorWork, source: SourceParameter | None, error: Exception,
                    out: Outcome) -> None:
    run.metrics.count("ParameterMirrorFailures", run.dims)
    text = error_text(error, source, error_code(error))
    out.failures.append(f"{work.name} -> {work.target}: {text}")
    logger.error("parameter mirror failed", extra={"parameter": work.name, "target": work.target,
                                                   "error": text[:500], "trigger": run.trigger})


def _report_done(run: MirrorRun, work: MirrorWork, action: Any, source: SourceParameter | None,
                 out: Outcome) -> None:
    out.written += 1
    run.metrics.count("ParametersMirrored", run.dims)
    logger.info("parameter mirror", extra={
        "parameter": work.name, "target": work.target, "action": type(action).__name__, "reason": action.reason,
        "source_version": source.version if source else None, "trigger": run.trigger})


def _apply_one(run: MirrorRun, work: MirrorWork, source: SourceParameter | None) -> None:
    ssm = run.clients.remote(work.target, "ssm")
    match work.action:
        case PutMirror():
            assert source is not None
            run.call(ssm.put_parameter, **put_mirror_request(source, run.settings.environment))
        case DeleteMirror():
            run.call(_delete, ssm=ssm, name=work.name)
        case other:
            raise TypeError(f"not a direct write: {type(other).__name__}")


def apply_work(run: MirrorRun, work: list[MirrorWork], sources: dict[str, SourceParameter | None]) -> Outcome:
    """Carry out puts and deletes in order, then the replacements; stop cleanly when told to."""
    out = Outcome()
    direct = [w for w in work if not isinstance(w.action, ReplaceMirror)]
    replacements = [w for w in work if isinstance(w.action, ReplaceMirror)]
    for index, item in enumerate(direct):
        try:
            _apply_one(run, item, sources.get(item.name))
        except Stopped as stop:
            out.left, out.stopped = len(direct) - index + len(replacements), str(stop)
            return out
        except Exception as error:  # noqa: BLE001 - reported per mirror, raised by the caller
            _report_failure(run, item, sources.get(item.name), error, out)
            continue
        _report_done(run, item, item.action, sources.get(item.name), out)
    _replace(run, replacements, sources, out)
    return out


def _replace(run: MirrorRun, work: list[MirrorWork], sources: dict[str, SourceParameter | None],
             out: Outcome) -> None:
    """Delete every mirror whose type changed, wait once, re-check, and put the new ones."""
    if not work:
        return
    if not run.budget.allows(REPLACE_WAIT_SECONDS + REPLACE_MARGIN_SECONDS):
        out.left += len(work)
        out.stopped = f"{len(work)} type change(s) need a {REPLACE_WAIT_SECONDS:.0f} s wait the time left cannot pay for"
        return
    deleted: list[MirrorWork] = []
    for index, item in enumerate(work):
        try:
            run.call(_delete, ssm=run.clients.remote(item.target, "ssm"), name=item.name)
        except Stopped as stop:
            out.left, out.stopped = out.left + len(work) - index, str(stop)
            break
        except Exception as error:  # noqa: BLE001
            _report_failure(run, item, sources.get(item.name), error, out)
            continue
        deleted.append(item)
    if not deleted:
        return
    try:
        run.budget.wait(REPLACE_WAIT_SECONDS)
    except OutOfTime as error:
        # The deleted mirrors are absent now: the next run puts them (more than 30 s later).
        out.left, out.stopped = out.left + len(deleted), f"out of time: {error}"
        return
    _put_replacements(run, deleted, sources, out)


def _put_replacements(run: MirrorRun, deleted: list[MirrorWork], sources: dict[str, SourceParameter | None],
                      out: Outcome) -> None:
    # Another writer may have put a newer mirror while this one was gone: decide again.
    try:
        states = {t: describe_mirrors(run, run.clients.remote(t, "ssm"), [w.name for w in deleted if w.target == t])
                  for t in sorted({w.target for w in deleted})}
    except Stopped as stop:
        out.left, out.stopped = out.left + len(deleted), str(stop)
        return
    for index, item in enumerate(deleted):
        source = sources.get(item.name)
        action = decide_mirror(source, states[item.target].get(item.name), source_env=run.settings.environment,
                               mirror_secure_strings=run.settings.mirror_secure_strings)
        if isinstance(action, KeepMirror):
            continue
        if not isinstance(action, PutMirror):
            out.left += 1  # changed again meanwhile: the next run decides afresh
            continue
        try:
            _apply_one(run, MirrorWork(item.name, item.target, action), source)
        except Stopped as stop:
            out.left, out.stopped = out.left + len(deleted) - index, str(stop)
            return
        except Exception as error:  # noqa: BLE001
            _report_failure(run, item, source, error, out)
            continue
        _report_done(run, item, item.action, source, out)


# -- the two entry points -------------------------------------------------------------------


def sync_parameter(run: MirrorRun, name: str) -> Outcome:
    """Bring every downstream mirror of `name` in line with the source."""
    settings, out = run.settings, Outcome()
    try:
        source = read_source(run.clients.local("ssm"), name, with_decryption=settings.mirror_secure_strings)
    except Exception as error:  # noqa: BLE001 - reported, then raised by the caller
        run.metrics.count("ParameterMirrorFailures", run.dims, len(settings.downstream))
        logger.error("source parameter unreadable", extra={"parameter": name, "error": f"{type(error).__name__}: {error}"[:500]})
        out.failures.append(f"{name}: cannot read the source: {type(error).__name__}: {error}")
        return out
    work = []
    for target in settings.downstream:
        item = MirrorWork(name, target, KeepMirror("not read"))
        try:
            mirror = read_mirror(run.clients.remote(target, "ssm"), name)
        except Exception as error:  # noqa: BLE001 - reported per target, then raised
            _report_failure(run, item, source, error, out)
            continue
        action = decide_mirror(source, mirror, source_env=settings.environment,
                               mirror_secure_strings=settings.mirror_secure_strings)
        if isinstance(action, KeepMirror):
            logger.info("parameter mirror", extra={"parameter": name, "target": target, "action": "KeepMirror",
                                                   "reason": action.reason, "trigger": run.trigger})
        else:
            work.append(MirrorWork(name, target, action))
    done = apply_work(run, work, {name: source})
    return Outcome(done.written, done.left, out.failures + done.failures, done.stopped)


def reconcile(run: MirrorRun) -> Outcome:
    """Compare the whole hierarchy with each downstream copy and fix what differs, in budget."""
    settings = run.settings
    hierarchy = settings.hierarchy(settings.environment)
    try:
        sources: dict[str, SourceParameter | None] = dict(list_sources(run, run.clients.local("ssm"), hierarchy))
    except Stopped as stop:
        return Outcome(stopped=f"listing {hierarchy}: {stop}")
    mirrors, out = {}, Outcome()
    for target in settings.downstream:
        try:
            mirrors[target] = list_mirrors(run, run.clients.remote(target, "ssm"), hierarchy)
        except Stopped as stop:
            return Outcome(left=len(sources) * len(settings.downstream), stopped=f"listing mirrors in {target}: {stop}")
        except Exception as error:  # noqa: BLE001 - this target is skipped, the failure raised later
            run.metrics.count("ParameterMirrorFailures", run.dims)
            out.failures.append(f"{hierarchy} -> {target}: {type(error).__name__}: {error}")
            logger.error("mirrors unreadable", extra={"hierarchy": hierarchy, "target": target,
                                                      "error": f"{type(error).__name__}: {error}"[:500]})
    plan = _plan(run, sources, mirrors)
    unread = sorted({w.name for w in plan if isinstance(w.action, PutMirror | ReplaceMirror)
                     and (s := sources.get(w.name)) is not None and s.value is None})
    if unread:
        try:
            sources.update(read_values(run, run.clients.local("ssm"), unread))
        except Stopped as stop:
            return Outcome(left=len(plan), failures=out.failures, stopped=f"reading values: {stop}")
        plan = _plan(run, sources, mirrors)  # the fresh values may be newer, or gone
    done = apply_work(run, plan, sources)
    return Outcome(done.written, done.left, out.failures + done.failures, done.stopped)


def _plan(run: MirrorRun, sources: dict[str, SourceParameter | None],
          mirrors: dict[str, dict[str, MirrorState]]) -> list[MirrorWork]:
    present = {name: s for name, s in sources.items() if s is not None}
    return plan_mirrors(present, mirrors, source_env=run.settings.environment,
                        mirror_secure_strings=run.settings.mirror_secure_strings)
