"""Asking iam-simulate the permission proof's questions (tests/tools/iam_simulate.mjs).

The proof's evaluator (tests/iamproof.py) is hand-written; `@cloud-copilot/iam-simulate` is a
maintained IAM simulator with its own IAM data. `ask` sends a batch of `Question`s to one node
process and returns the simulator's answer for each, so a differential test can compare the two.

A batch names each policy once (by a digest of its kind and statements) and each distinct simulation
once: the handler proof asks the same few policies tens of thousands of times, and many of its
questions are the same in several environment combinations.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.iamproof import Policy, Question

TOOLS = Path(__file__).resolve().parents[2] / "tools"
SCRIPT = TOOLS / "iam_simulate.mjs"

#: The proof's policy kinds as the simulator's: "A key policy is a resource policy for an AWS KMS
#: key" (KMS Developer Guide, "Key policies in AWS KMS"); "A role trust policy is a required
#: resource-based policy that is attached to a role in IAM" (IAM User Guide, "Roles terms and
#: concepts"), validated by the simulator's trust-policy rules (no Resource element).
_KINDS = {"identity": "identity", "boundary": "boundary", "resource": "resource", "key": "resource",
          "trust": "trust"}


@dataclass(frozen=True)
class Answer:
    """The simulator's answer to one question."""

    result: str  # Allowed | ImplicitlyDenied | ExplicitlyDenied | Error
    ignored_context_keys: tuple[str, ...] = ()
    errors: Mapping[str, Any] | None = None
    explain: Any = None

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"


@dataclass
class Batch:
    """Simulations for a list of questions: policies by digest, distinct simulations, and for each
    question the index of its simulation."""

    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    simulations: list[dict[str, Any]] = field(default_factory=list)
    index_of: list[int] = field(default_factory=list)
    dedupe: bool = True  # False only to measure the simulator on every question (bench/)
    _seen: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def add(self, question: Question, expect: bool | None) -> None:
        simulation = _simulation(question, self.policies)
        key = json.dumps(simulation, sort_keys=True) if self.dedupe else str(len(self.simulations))
        if key not in self._seen:
            self._seen[key] = len(self.simulations)
            self.simulations.append({**simulation, "expect": expect})
        self.index_of.append(self._seen[key])


def _policy_id(policy: Policy, table: dict[str, dict[str, Any]]) -> str:
    kind = _KINDS[policy.kind]
    document = {"Version": "2012-10-17", "Statement": list(policy.statements)}
    digest = hashlib.sha256(json.dumps([kind, document], sort_keys=True, default=str).encode()).hexdigest()[:12]
    key = f"{policy.name}#{digest}"
    table.setdefault(key, {"kind": kind, "document": document})
    return key


def resource_account(question: Question) -> str:
    """The account that owns the request's resource: the ARN's account field, else (S3 ARNs, "*") the
    caller's own, which is the only case the proof models for them."""
    parts = question.request.resource.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else question.request.account


def _simulation(question: Question, table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    request = question.request
    resource_policy = question.trust or question.key_policy or question.resource_policy
    if sum(p is not None for p in (question.trust, question.key_policy, question.resource_policy)) > 1:
        raise ValueError(f"{request.why}: more than one resource policy for one request")
    context = {k: list(v) if isinstance(v, tuple) else v for k, v in request.full_context().items()}
    return {
        "identity": [_policy_id(p, table) for p in question.identity],
        "boundary": [_policy_id(p, table) for p in question.boundary] or None,
        "resource_policy": _policy_id(resource_policy, table) if resource_policy else None,
        "principal": request.principal, "action": request.action, "resource": request.resource,
        "account": resource_account(question), "context": context,
    }


def require() -> None:
    """Fail (never skip: `make test` installs the node tools) when the simulator cannot run here."""
    assert shutil.which("node"), "node is needed to run iam-simulate"
    assert (TOOLS / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir(), (
        "iam-simulate is not installed: run `make venv` (npm ci --prefix tests/tools)")


def run(batch: Batch) -> list[Answer]:
    """The simulator's answer to each distinct simulation of `batch`, in one node process."""
    require()
    payload = json.dumps({"policies": batch.policies, "simulations": batch.simulations})
    done = subprocess.run(["node", str(SCRIPT)], input=payload, capture_output=True, text=True, check=False,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"iam_simulate.mjs failed ({done.returncode}): {done.stderr.strip()}")
    return [Answer(a["result"], tuple(a.get("ignored_context_keys", ())), a.get("errors"), a.get("explain"))
            for a in json.loads(done.stdout)]


def ask(questions: Sequence[tuple[Question, bool | None]]) -> list[Answer]:
    """The simulator's answer to each (question, the proof's decision), in order."""
    batch = Batch()
    for question, expect in questions:
        batch.add(question, expect)
    answers = run(batch)
    return [answers[i] for i in batch.index_of]
