// Asks @cloud-copilot/iam-simulate for the IAM decision of a batch of requests, in one process.
//
// The offline permission proof (tests/iamproof.py) is a hand-written evaluator; this is its second
// opinion from a maintained simulator with its own IAM data. Used by
// tests/unit/cfn/test_differential_proof.py; run it by hand with
//   node tests/tools/iam_simulate.mjs < batch.json
//
// stdin: {"policies": {id: {"kind": "identity|boundary|resource|trust", "document": {...}}},
//         "simulations": [{"identity": [id...], "boundary": [id...] | null, "resource_policy": id | null,
//                          "principal": arn, "action": "svc:Name", "resource": arn | "*",
//                          "account": resource account id, "context": {key: str | [str]},
//                          "expect": true | false | null}]}
// Policies are given once by id and named from the simulations: a batch asks the same few policies
// tens of thousands of times.
// stdout: one entry per simulation, in order: {"result": "Allowed" | "ImplicitlyDenied" |
//         "ExplicitlyDenied" | "Error", "errors"?, "ignored_context_keys": [...], "explain"?}.
// "explain" (the statements that decided, and those that matched the action but not the rest) is
// given when the result is not `expect` (or no expectation was given), to keep agreeing answers short.
import { runSimulation } from '@cloud-copilot/iam-simulate'
import {
  createValidatedPolicy,
  validateIdentityPolicy,
  validateResourcePolicy,
  validateTrustPolicy
} from '@cloud-copilot/iam-policy'

// Each policy is validated once, by the rules of its kind (a trust policy has no Resource element).
const VALIDATORS = {
  identity: validateIdentityPolicy,
  boundary: validateIdentityPolicy,
  resource: validateResourcePolicy,
  trust: validateTrustPolicy
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = []
    process.stdin.on('data', (chunk) => chunks.push(chunk))
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    process.stdin.on('error', reject)
  })
}

function validated(policies) {
  const out = {}
  for (const [id, { kind, document }] of Object.entries(policies)) {
    const validate = VALIDATORS[kind]
    if (!validate) throw new Error(`policy ${id}: unknown kind ${kind}`)
    out[id] = { id, policy: createValidatedPolicy(document, validate) }
  }
  return out
}

function named(ids, table) {
  return (ids ?? []).map((id) => {
    if (!table[id]) throw new Error(`unknown policy id ${id}`)
    return { name: id, policy: table[id].policy }
  })
}

function statementSummary(analysis) {
  const e = analysis.explain
  return {
    policy: analysis.policyId,
    sid: e.identifier,
    effect: e.effect,
    action: e.actionMatch,
    principal: e.principalMatch,
    resource: e.resourceMatch,
    condition: e.conditionMatch,
    ...(e.resources !== undefined && { resources: e.resources }),
    ...(e.notResources !== undefined && { notResources: e.notResources }),
    ...(e.conditions !== undefined && { conditions: e.conditions })
  }
}

function analysisSummary(analysis) {
  if (!analysis) return undefined
  return {
    result: analysis.result,
    allow: analysis.allowStatements.map(statementSummary),
    deny: analysis.denyStatements.map(statementSummary),
    // Statements for this action that failed on resource, principal or condition: why an Allow missed.
    near: analysis.unmatchedStatements.filter((s) => s.actionMatch).map(statementSummary)
  }
}

function explain(result) {
  const analyses = result.resultType === 'single' ? [result.result] : result.results
  return analyses.map((r) => ({
    resourceType: r.resourceType,
    resourcePattern: r.resourcePattern,
    blockedBy: r.analysis.blockedBy,
    identity: analysisSummary(r.analysis.identityAnalysis),
    permissionBoundary: analysisSummary(r.analysis.permissionBoundaryAnalysis),
    resourcePolicy: analysisSummary(r.analysis.resourceAnalysis)
  }))
}

async function simulate(s, table) {
  const simulation = {
    request: {
      principal: s.principal,
      action: s.action,
      resource: { resource: s.resource, accountId: s.account },
      contextVariables: s.context ?? {}
    },
    identityPolicies: named(s.identity, table),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(s.boundary && { permissionBoundaryPolicies: named(s.boundary, table) }),
    ...(s.resource_policy && { resourcePolicy: table[s.resource_policy].policy })
  }
  const result = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (result.resultType === 'error') {
    return { result: 'Error', errors: result.errors, ignored_context_keys: [] }
  }
  const ignored = (result.resultType === 'single' ? [result.result] : result.results).flatMap(
    (r) => r.ignoredContextKeys ?? []
  )
  const out = { result: result.overallResult, ignored_context_keys: [...new Set(ignored)] }
  const allowed = result.overallResult === 'Allowed'
  if (s.expect === undefined || s.expect === null || s.expect !== allowed) {
    out.explain = explain(result)
  }
  return out
}

async function main() {
  const batch = JSON.parse(await readStdin())
  const table = validated(batch.policies ?? {})
  const out = []
  for (const s of batch.simulations) {
    out.push(await simulate(s, table))
  }
  process.stdout.write(JSON.stringify(out))
}

main().catch((err) => {
  process.stderr.write(`iam_simulate: ${err.stack ?? err}\n`)
  process.exit(2)
})
