// Property-based tests over workflow definitions (issue 7, item 5), with fast-check: random graphs
// (ids, dependsOn with cycles and unknown ids, nested groups, parallel flags, forEach, inline
// sub-workflows), names, `{{ }}` expressions, `when` conditions, retry policies and params.
// For every input, `validate()` either accepts it — and then a run of it ends in a terminal state by
// the rules: every step settled, no step started before its dependencies settled (checked on the
// event order), at most one STEP_SUCCEEDED per step, exactly one terminal run event and it is the
// last — or rejects it with issues that each have a path and a message, and then `createWorkflow`
// writes nothing (row counts unchanged). Nothing ever throws anything else, and the engine keeps
// working afterwards. FUZZ_SEED=<n> reproduces a run (the seed is printed); FUZZ_RUNS sizes it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { orchestratorFromConfig, ValidationError, type ProjectOrchestrator, type RunResult } from '../src/index.ts'
import { until } from './support/barrier.ts'

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const VALIDATE_RUNS = RUNS * 10

let o: ProjectOrchestrator
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
const resultsAtEnd = new Map<string, RunResult>()
const figures = { validated: 0, accepted: 0, rejected: 0, runs: 0, byStatus: {} as Record<string, number>, steps: 0 }

beforeAll(() => {
  console.log(`fuzz seed: ${SEED} (FUZZ_SEED=${SEED} reproduces it; runs ${RUNS}, validate-only ${VALIDATE_RUNS})`)
  process.on('unhandledRejection', onUnhandled)
  o = orchestratorFromConfig({})
  // Each run's result as its rows say when its terminal event commits (listening after the engine).
  o.context.bus.listen((events) => {
    for (const e of events) if (e.stepId === null && TERMINAL_RUN.has(e.type.slice(4))) resultsAtEnd.set(e.runId, o.coordinator.readResult(e.runId))
  })
})
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  console.log(`fuzz summary: ${JSON.stringify({ seed: SEED, ...figures })}`)
  await o.close()
})

// ------------------------------------------------------------------------------ generators

/** `arb` one time in `every`, else absent. */
const sometimes = <T>(arb: fc.Arbitrary<T>, every = 4): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: every - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb })
/** An object without its undefined fields. */
const defined = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T

const ids = ['a', 'b', 'c', 'd', 'e', 'f']
/** Mostly right, now and then `wrong`. */
const rarely = <T, U>(right: fc.Arbitrary<T>, wrong: fc.Arbitrary<U>, odds = 30): fc.Arbitrary<T | U> =>
  fc.oneof({ weight: odds, arbitrary: right }, { weight: 1, arbitrary: wrong })

const idArb = rarely(
  fc.constantFrom(...ids),
  fc.oneof(fc.constantFrom('1x', 'a.b', '', 'with space', '__proto__', 'constructor', 'x'.repeat(300)), fc.string({ maxLength: 8 })),
  60,
)

/** JSONata-ish text: valid paths and operators, broken syntax, random strings. */
const jsonataArb = fc.oneof(
  fc.constantFrom(
    'steps.a.output', 'steps.b.status', 'input.x', 'params.q', 'previous', 'run.id', 'workflow.name', '$count(steps)',
    '1 + 2', '"a" & "b"', '$string(previous)', 'steps.a.output.n > 1', 'true', 'false', '$exists(input.y)', '[1, 2, 3]',
    '$sum([1..5])', '$uppercase("x")', 'item', 'index', '$not(false)', 'steps.`a.b`.output',
    '(', '1 +', '$nope(', ']', '{{', '}}', '"unterminated', '$match("abc", /b/)', '$$', '**', 'a[0].b',
  ),
  fc.string({ maxLength: 12 }),
)
const templateArb = fc.oneof(
  jsonataArb.map((e) => `{{ ${e} }}`),
  fc.tuple(fc.string({ maxLength: 5 }), jsonataArb).map(([t, e]) => `${t} {{ ${e} }} !`),
  jsonataArb.map((e) => `{{ ${e}`),
  fc.string({ maxLength: 10 }),
)
const jsonArb = fc.jsonValue({ maxDepth: 2 })
const paramsArb = fc.dictionary(fc.constantFrom('x', 'y', 'n', 'message', 'ms', 'q'), fc.oneof(jsonArb, templateArb), { maxKeys: 3 })

/** Params that usually fit the action, sometimes not. */
function paramsFor(factory: string | undefined, action: string | undefined): fc.Arbitrary<unknown> {
  const usual =
    factory === 'control' && action === 'delay' ? fc.record({ ms: fc.integer({ min: 0, max: 20 }) })
    : factory === 'control' && action === 'fail' ? fc.record({ message: fc.string({ maxLength: 10 }), retryable: fc.boolean() }, { requiredKeys: [] })
    : factory === 'transform' && action === 'map' ? fc.record({ expression: jsonataArb, input: fc.oneof(jsonArb, templateArb) }, { requiredKeys: ['expression'] })
    : paramsArb
  return fc.oneof({ weight: 20, arbitrary: usual }, { weight: 1, arbitrary: paramsArb }, { weight: 1, arbitrary: jsonArb })
}

const actionArb = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(['control', 'noop'], ['control', 'noop'], ['control', 'delay'], ['control', 'fail'], ['transform', 'map']) },
  // Not control.approval: without a signal it waits for one for ever, by design.
  { weight: 1, arbitrary: fc.constantFrom(['control', 'nop'], ['contrl', 'noop'], ['nope', 'nope'], ['http', 'request']) },
) as fc.Arbitrary<[string, string]>

const retryArb = fc.record({
  maxAttempts: rarely(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0, -1, 1.5)),
  backoff: rarely(fc.constantFrom('fixed', 'linear', 'exponential'), fc.constant('sideways')),
  initialMs: rarely(fc.integer({ min: 0, max: 10 }), fc.constant(-1)),
}, { requiredKeys: [] })

const { step: stepArb } = fc.letrec<{ step: Record<string, unknown>; steps: Record<string, unknown>[] }>((tie) => ({
  step: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    // An action step.
    fc.tuple(actionArb, fc.record({
      id: sometimes(idArb, 2), dependsOn: sometimes(fc.array(idArb, { maxLength: 2 }), 6), when: sometimes(fc.oneof(fc.boolean(), jsonataArb, templateArb)),
      retry: sometimes(retryArb), continueOnError: sometimes(fc.boolean()), timeoutMs: sometimes(fc.integer({ min: 1, max: 500 })),
      forEach: sometimes(fc.oneof(fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }), jsonataArb), 6),
    })).chain(([[factory, action], rest]) =>
      fc.tuple(paramsFor(factory, action), fc.nat(5)).map(([params, n]) => defined({ factory, action, ...(n > 0 ? { params } : {}), ...rest }))),
    // A nested group.
    fc.record({ id: sometimes(idArb, 2), parallel: sometimes(fc.boolean(), 2), steps: tie('steps'), dependsOn: sometimes(fc.array(idArb, { maxLength: 2 })), maxParallel: sometimes(rarely(fc.integer({ min: 1, max: 3 }), fc.constant(0))) }).map(defined),
    // An inline sub-workflow.
    fc.record({ id: sometimes(idArb, 2), workflow: fc.record({ steps: tie('steps'), parallel: sometimes(fc.boolean(), 2) }).map(defined) }).map(defined),
  ),
  steps: rarely(fc.array(tie('step'), { minLength: 1, maxLength: 3 }), fc.constant([])),
}))

const definitionArb = fc.record({
  steps: rarely(fc.array(stepArb, { minLength: 1, maxLength: 6 }), fc.constantFrom([], {}, null)),
  parallel: sometimes(fc.boolean(), 2),
  onFailure: sometimes(fc.constantFrom('fail', 'continue', 'rollback', 'fail', 'continue', 'rollback', 'explode'), 2),
  maxParallel: sometimes(rarely(fc.integer({ min: 1, max: 4 }), fc.constant(0))),
  output: sometimes(fc.oneof(templateArb, jsonArb)),
  timeoutMs: sometimes(fc.integer({ min: 2000, max: 5000 })),
  input: sometimes(fc.constantFrom({ x: { type: 'number', default: 1 } }, { y: { type: 'string', required: true } })),
  factories: sometimes(fc.oneof(fc.constant(['control', 'transform', 'http']), fc.subarray(['control', 'transform', 'http', 'nope']))),
}).map(defined)

/** Expressions that parse (they may still fail or give null at run time). */
const goodExpressionArb = fc.constantFrom(
  'steps.a.output', 'steps.b.status', 'input.x', 'params.q', 'previous', 'run.id', 'workflow.name', '$count(steps)',
  '1 + 2', '"a" & "b"', '$string(previous)', 'steps.a.output.x > 1', 'true', 'false', '$exists(input.y)', '[1, 2, 3]',
  '$sum([1..5])', '$uppercase("x")', '$not(false)', '$match("abc", /b/).match', 'steps.c.error', '$length("abc") = 3',
)
const goodTemplateArb = fc.oneof(goodExpressionArb.map((e) => `{{ ${e} }}`), fc.string({ maxLength: 6 }).filter((t) => !t.includes('{{')))
const goodParamsArb = (factory: string, action: string): fc.Arbitrary<Record<string, unknown>> =>
  action === 'delay' ? fc.record({ ms: fc.integer({ min: 0, max: 15 }) })
  : action === 'fail' ? fc.record({ message: fc.string({ maxLength: 8 }), retryable: fc.boolean() }, { requiredKeys: [] })
  : factory === 'transform' ? fc.record({ expression: goodExpressionArb, input: fc.oneof(fc.jsonValue({ maxDepth: 1 }), goodTemplateArb) }, { requiredKeys: ['expression'] })
  : fc.dictionary(fc.constantFrom('x', 'y', 'q'), fc.oneof(fc.jsonValue({ maxDepth: 1 }), goodTemplateArb), { maxKeys: 3 })

/** Definitions valid by construction, except that dependsOn may name later steps (cycles) now and then. */
const cleanDefinitionArb: fc.Arbitrary<unknown> = fc.uniqueArray(fc.constantFrom(...ids), { minLength: 1, maxLength: 6 }).chain((stepIds) =>
  fc.record({
    parallel: fc.boolean(),
    onFailure: fc.constantFrom('fail', 'continue', 'rollback'),
    steps: fc.tuple(...stepIds.map((id, i) =>
      fc.tuple(
        fc.constantFrom(['control', 'noop'], ['control', 'noop'], ['control', 'delay'], ['control', 'fail'], ['transform', 'map']),
        sometimes(fc.subarray(stepIds.slice(0, i), { maxLength: Math.min(2, i) }), 2),
        sometimes(rarely(fc.constant(stepIds), fc.constant(['zz']), 4), 12),
        sometimes(fc.oneof(fc.boolean(), goodExpressionArb), 5),
        sometimes(fc.record({ maxAttempts: fc.integer({ min: 1, max: 3 }), initialMs: fc.integer({ min: 0, max: 5 }), backoff: fc.constantFrom('fixed', 'linear', 'exponential') }), 4),
        sometimes(fc.boolean(), 4),
        sometimes(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }), 8),
      ).chain(([[factory, action], deps, anyDeps, when, retry, continueOnError, forEach]) =>
        goodParamsArb(factory, action).map((params) => defined({
          id, factory, action, params, dependsOn: anyDeps ?? deps, when, retry, continueOnError,
          ...(forEach ? { forEach, params: { ...params, ...(action === 'noop' ? { item: '{{ item }}' } : {}) } } : {}),
        }))),
    )),
  }))

/** Mostly plausible definitions; sometimes anything at all. */
const anyDefinitionArb = fc.oneof(
  { weight: 8, arbitrary: cleanDefinitionArb },
  { weight: 8, arbitrary: definitionArb as fc.Arbitrary<unknown> },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.record({ steps: fc.anything({ maxDepth: 2 }) }) },
)

// ------------------------------------------------------------------------------ checks

const TERMINAL_RUN = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'ROLLED_BACK'])
const SETTLED_STEP = new Set(['SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED', 'COMPENSATED', 'COMPENSATION_FAILED'])
const SETTLE_EVENTS = new Set(['STEP_SUCCEEDED', 'STEP_FAILED', 'STEP_SKIPPED', 'STEP_CANCELLED'])

function counts(): Record<string, number> {
  const out: Record<string, number> = {}
  for (const table of ['workflows', 'workflow_versions', 'templates', 'runs', 'steps', 'step_attempts', 'events']) {
    out[table] = (o.context.conn.sqlite.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n
  }
  return out
}

function checkIssues(issues: { path: unknown; message: unknown }[]): void {
  expect(issues.length).toBeGreaterThan(0)
  for (const issue of issues) {
    expect(typeof issue.path, JSON.stringify(issue)).toBe('string')
    expect((issue.path as string).length, JSON.stringify(issue)).toBeGreaterThan(0)
    expect(typeof issue.message).toBe('string')
    expect((issue.message as string).length).toBeGreaterThan(0)
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer))
}

async function checkDefinition(definition: unknown): Promise<void> {
  const before = counts()
  let result: ReturnType<ProjectOrchestrator['workflows']['validate']>
  try {
    result = o.workflows.validate(definition)
  } catch (error) {
    throw new Error(`validate() threw: ${(error as Error).stack}`)
  }
  figures.validated++
  expect(typeof result.valid).toBe('boolean')
  if (!result.valid) {
    figures.rejected++
    checkIssues(result.issues)
    const error = await o.createWorkflow('fuzz', definition).then(() => undefined, (e: unknown) => e)
    expect(error, 'createWorkflow rejects what validate rejects').toBeInstanceOf(ValidationError)
    checkIssues((error as ValidationError).issues)
    expect(counts(), 'nothing written for a rejected definition').toEqual(before)
    return
  }
  figures.accepted++
  expect(result.issues).toEqual([])
  const workflowId = await o.createWorkflow('fuzz', definition)
  resultsAtEnd.clear()
  // A required input may be missing: that is a ValidationError too, and starts nothing.
  let runId: string
  try {
    runId = (await o.startWorkflow(workflowId, { x: 2 })).runId
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError)
    checkIssues((error as ValidationError).issues)
    return
  }
  // A hang bound: every generated run has step and run timeouts of at most a few seconds.
  const run = await withTimeout(o.waitForRun(runId), 60_000, `run ${runId} of ${JSON.stringify(definition)}`)
  // The result handed to waiters (built as the run ends) is what its rows said then, field for field and in row order.
  expect(resultsAtEnd.has(runId)).toBe(true)
  expect(JSON.stringify(run)).toBe(JSON.stringify(resultsAtEnd.get(runId)))
  figures.runs++
  figures.byStatus[run.status] = (figures.byStatus[run.status] ?? 0) + 1
  // A rollback may still be going on after RUN_FAILED turned into ROLLING_BACK: wait for the end of it.
  let final = await o.getRun(runId)
  await until(async () => TERMINAL_RUN.has((final = await o.getRun(runId)).status), { what: `the rollback of ${runId} to end`, everyMs: 10 })
  expect(TERMINAL_RUN.has(final.status), `run ended ${final.status}`).toBe(true)
  for (const [stepId, step] of Object.entries(final.steps)) {
    figures.steps++
    expect(SETTLED_STEP.has(step.status), `${stepId} is ${step.status}`).toBe(true)
  }

  const history = await o.getHistory(runId)
  const terminal = history.filter((e) => e.type === `RUN_${final.status}`)
  expect(terminal, 'one terminal run event').toHaveLength(1)
  expect(history.at(-1)!.type, 'the terminal event is the last').toBe(`RUN_${final.status}`)
  const seqs = history.map((e) => e.seq)
  expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
  const succeeded = new Map<string, number>()
  for (const e of history) if (e.type === 'STEP_SUCCEEDED' && e.stepId) succeeded.set(e.stepId, (succeeded.get(e.stepId) ?? 0) + 1)
  for (const [stepId, n] of succeeded) expect(n, `${stepId} succeeded ${n} times`).toBe(1)

  // No step started before its dependencies settled, nor before its group started.
  const graph = o.workflows.load(workflowId).graph
  const settledAt = new Map<string, number>()
  for (const e of history) if (e.stepId && SETTLE_EVENTS.has(e.type) && !settledAt.has(e.stepId)) settledAt.set(e.stepId, e.seq)
  const startedAt = new Map<string, number>()
  for (const e of history) if (e.stepId && e.type === 'STEP_STARTED' && !startedAt.has(e.stepId)) startedAt.set(e.stepId, e.seq)
  for (const node of graph.nodes.values()) {
    const start = startedAt.get(node.id)
    if (start === undefined) continue
    for (const dep of node.deps) {
      const done = settledAt.get(dep)
      expect(done, `${node.id} started but its dependency ${dep} never settled`).toBeDefined()
      expect(start, `${node.id} started before its dependency ${dep} settled`).toBeGreaterThan(done!)
    }
    if (node.parent) expect(start, `${node.id} started before its group ${node.parent}`).toBeGreaterThan(startedAt.get(node.parent) ?? Infinity)
  }
}

// ------------------------------------------------------------------------------ properties

describe('fuzzing workflow definitions', () => {
  it(`validate() never throws and every rejection has paths (${VALIDATE_RUNS} inputs)`, () => {
    fc.assert(
      fc.property(anyDefinitionArb, (definition) => {
        const result = o.workflows.validate(definition)
        figures.validated++
        if (result.valid) expect(result.issues).toEqual([])
        else checkIssues(result.issues)
      }),
      { numRuns: VALIDATE_RUNS, seed: SEED },
    )
  })

  it(`accepted definitions run by the rules; rejected ones write nothing (${RUNS} inputs)`, async () => {
    await fc.assert(fc.asyncProperty(anyDefinitionArb, checkDefinition), { numRuns: RUNS, seed: SEED, endOnFailure: true })
    // A fair share of the inputs were accepted and run (the generator is not only producing garbage).
    expect(figures.runs).toBeGreaterThan(RUNS / 5)
    expect(figures.rejected).toBeGreaterThan(RUNS / 10)
  }, 600_000)

  it('the engine is still healthy: nothing unhandled, and a normal workflow runs', async () => {
    expect(unhandled).toEqual([])
    const id = await o.createWorkflow('after_fuzz', { steps: [{ id: 'a', factory: 'control', action: 'noop', params: { ok: true } }, { id: 'b', factory: 'control', action: 'noop', params: { v: '{{ steps.a.output.ok }}' } }] })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.b!.output).toEqual({ v: true })
  })
})
