// Rerun from failure (DESIGN.md §3): retryRun makes a new run of the same version that reuses the
// outputs of succeeded steps (their actions are not called again) and runs the failed step (or
// fromStep) and everything downstream, optionally with edited params; the runs are linked both ways.
// Through the library, GraphQL over HTTP, and across a SIGKILL of the retried run's process.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ConflictError, NonRetryableError, NotFoundError, ValidationError, controlFactory, defineFactory, type RunEvent, type WorkflowDefinition,
} from '../src/index.ts'
import { latch, until } from './support/barrier.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { crashKit } from './helpers/child.ts'
import { CreateWorkflowDocument, ExecuteWorkflowDocument, RetryRunDocument, RunLineageDocument } from './generated/graphql.ts'
import { approveThenChargeWorkflow, shopFactory } from './fixtures/run-control-workflow.ts'
import { openedPerTest } from './support/opened.ts'

const WORKER = new URL('./fixtures/run-control-worker.ts', import.meta.url).pathname
const kit = crashKit()
let t: TestServer | undefined

const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
    kit.cleanup()
  },
})

const orchestrator = opened.orchestrator

/**
 * `pay.load` returns {value: n * 10}; `pay.charge` fails (non-retryable) unless amount > 0;
 * `pay.ship` echoes its params; `pay.hold` waits for the test's gate. Every call is recorded.
 */
function payFactory() {
  const calls: { runId: string; stepId: string; params: unknown }[] = []
  const gate = latch()
  const record = (ctx: { runId: string; stepId: string }, params: unknown) => calls.push({ runId: ctx.runId, stepId: ctx.stepId, params })
  const factory = defineFactory({
    name: 'pay',
    actions: {
      load: { input: z.object({ n: z.number() }), run: ({ n }, ctx) => (record(ctx, { n }), { value: n * 10 }) },
      charge: {
        input: z.object({ amount: z.number() }),
        run: ({ amount }, ctx) => {
          record(ctx, { amount })
          if (amount <= 0) throw new NonRetryableError(`amount must be positive, got ${amount}`)
          return { charged: amount }
        },
      },
      ship: { input: z.object({ total: z.number(), charged: z.number() }), run: (params, ctx) => (record(ctx, params), params) },
      hold: { input: z.object({}), run: async (params, ctx) => (record(ctx, params), await gate.wait(), { held: true }) },
    },
  })
  const count = (stepId: string, runId?: string) => calls.filter((c) => c.stepId === stepId && (!runId || c.runId === runId)).length
  return { factory, calls, count, gate }
}

/** Four steps; step 3's amount is wrong; step 4 uses the outputs of steps 1–3. */
const checkout = (amount: number): WorkflowDefinition => ({
  steps: [
    { id: 's1', factory: 'pay', action: 'load', params: { n: 1 } },
    { id: 's2', factory: 'pay', action: 'load', params: { n: 2 } },
    { id: 's3', factory: 'pay', action: 'charge', params: { amount } },
    {
      id: 's4', factory: 'pay', action: 'ship',
      params: { total: '{{ steps.s1.output.value + steps.s2.output.value }}', charged: '{{ steps.s3.output.charged }}' },
    },
  ],
})

/** a → grp { g1 → g2, g3 } → z: inside the group g2 depends on g1, g3 on nothing. */
const nested: WorkflowDefinition = {
  steps: [
    { id: 'a', factory: 'pay', action: 'load', params: { n: 1 } },
    {
      id: 'grp', parallel: true,
      steps: [
        { id: 'g1', factory: 'pay', action: 'load', params: { n: 2 } },
        { id: 'g2', factory: 'pay', action: 'load', params: { n: 3 }, dependsOn: ['g1'] },
        { id: 'g3', factory: 'pay', action: 'load', params: { n: 4 } },
      ],
    },
    { id: 'z', factory: 'pay', action: 'load', params: { n: 5 } },
  ],
}

function reused(history: RunEvent[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const e of history) {
    const from = (e.payload as { reusedFrom?: unknown } | null)?.reusedFrom
    if (e.type === 'STEP_SUCCEEDED' && from !== undefined) out[e.stepId!] = from
  }
  return out
}

const started = (history: RunEvent[]) => history.filter((e) => e.type === 'STEP_STARTED').map((e) => e.stepId)

describe('retryRun (library)', () => {
  it('reruns the failed step with corrected params, reusing the outputs of the steps before it', async () => {
    const pay = payFactory()
    const o = orchestrator()
    o.registerFactory('pay', pay.factory)
    const id = await o.createWorkflow('checkout', checkout(-5))
    const first = await o.executeWorkflow(id)
    expect(first.status).toBe('FAILED')
    expect(first.steps.s3).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/amount must be positive/) })
    expect(first.steps.s4!.status).toBe('CANCELLED')
    expect([pay.count('s1'), pay.count('s2'), pay.count('s3'), pay.count('s4')]).toEqual([1, 1, 1, 0])

    const { runId } = await o.retryRun(first.runId, { params: { amount: 7 } })
    expect(runId).not.toBe(first.runId)
    const second = await o.waitForRun(runId)
    expect(second.status).toBe('SUCCEEDED')
    // Steps 1–2 were not called again; 3 ran with the corrected params; 4 ran with the reused outputs.
    expect([pay.count('s1'), pay.count('s2'), pay.count('s3'), pay.count('s4')]).toEqual([1, 1, 2, 1])
    expect(pay.calls.filter((c) => c.runId === runId).map((c) => c.stepId)).toEqual(['s3', 's4'])
    expect(pay.calls.find((c) => c.runId === runId && c.stepId === 's3')!.params).toEqual({ amount: 7 })
    expect(second.steps.s1!.output).toEqual(first.steps.s1!.output)
    expect(second.steps.s2!.output).toEqual(first.steps.s2!.output)
    expect(second.steps.s3!.output).toEqual({ charged: 7 })
    expect(second.steps.s4!.output).toEqual({ total: 30, charged: 7 })
    // The result, built as the run ended (reused steps included), is what its rows hold.
    expect(JSON.stringify(second)).toBe(JSON.stringify(o.coordinator.readResult(runId)))

    const history = await o.getHistory(runId)
    expect(reused(history)).toEqual({ s1: first.runId, s2: first.runId })
    expect(started(history)).toEqual(['s3', 's4'])
    expect(history[0]).toMatchObject({ type: 'RUN_CREATED', payload: { retryOf: first.runId } })
    expect(history.at(-1)!.type).toBe('RUN_SUCCEEDED')
    // The original run is left as it was.
    expect((await o.getRun(first.runId)).status).toBe('FAILED')
    // Retrying the successful retry from step 4 keeps the edited params of step 3 (reused, not re-run).
    const third = await o.waitForRun((await o.retryRun(runId, { fromStep: 's4' })).runId)
    expect(third.status).toBe('SUCCEEDED')
    expect(third.steps.s3!.output).toEqual({ charged: 7 })
    expect([pay.count('s3'), pay.count('s4')]).toEqual([2, 2])
  })

  it('fromStep reruns that step and everything downstream of it', async () => {
    const pay = payFactory()
    const o = orchestrator()
    o.registerFactory('pay', pay.factory)
    const id = await o.createWorkflow('checkout', checkout(3))
    const first = await o.executeWorkflow(id)
    expect(first.status).toBe('SUCCEEDED')
    const second = await o.waitForRun((await o.retryRun(first.runId, { fromStep: 's2' })).runId)
    expect(second.status).toBe('SUCCEEDED')
    expect([pay.count('s1'), pay.count('s2'), pay.count('s3'), pay.count('s4')]).toEqual([1, 2, 2, 2])
    const history = await o.getHistory(second.runId)
    expect(reused(history)).toEqual({ s1: first.runId })
    expect(started(history)).toEqual(['s2', 's3', 's4'])
    expect(second.steps.s4!.output).toEqual({ total: 30, charged: 3 })
  })

  it('fromStep inside a nested group reruns it and what is downstream; the group\'s other members are reused', async () => {
    const pay = payFactory()
    const o = orchestrator()
    o.registerFactory('pay', pay.factory)
    const id = await o.createWorkflow('nested', nested)
    const first = await o.executeWorkflow(id)
    expect(first.status).toBe('SUCCEEDED')

    const second = await o.waitForRun((await o.retryRun(first.runId, { fromStep: 'grp.g1' })).runId)
    expect(second.status).toBe('SUCCEEDED')
    const history = await o.getHistory(second.runId)
    expect(reused(history)).toEqual({ a: first.runId, 'grp.g3': first.runId })
    expect(new Set(started(history))).toEqual(new Set(['grp', 'grp.g1', 'grp.g2', 'z']))
    expect(pay.calls.filter((c) => c.runId === second.runId).map((c) => c.stepId).sort()).toEqual(['grp.g1', 'grp.g2', 'z'])
    // The group's output still has the reused member's output.
    expect(second.steps.grp!.output).toEqual({ g1: { value: 20 }, g2: { value: 30 }, g3: { value: 40 } })
    expect(JSON.stringify(second)).toBe(JSON.stringify(o.coordinator.readResult(second.runId)))

    // Naming the group reruns all of its members (and z), reusing only a.
    const third = await o.waitForRun((await o.retryRun(first.runId, { fromStep: 'grp' })).runId)
    expect(third.status).toBe('SUCCEEDED')
    expect(reused(await o.getHistory(third.runId))).toEqual({ a: first.runId })
    expect(pay.calls.filter((c) => c.runId === third.runId).map((c) => c.stepId).sort()).toEqual(['grp.g1', 'grp.g2', 'grp.g3', 'z'])
  })

  it('a step skipped by its `when` does not make the steps after it run again', async () => {
    const pay = payFactory()
    const o = orchestrator()
    o.registerFactory('pay', pay.factory)
    const def = checkout(-1)
    const id = await o.createWorkflow('optional', {
      steps: [{ id: 'opt', factory: 'pay', action: 'load', params: { n: 9 }, when: false }, ...def.steps.map((s) => (s.id === 's1' ? { ...s, dependsOn: ['opt'] } : s))],
    })
    const first = await o.executeWorkflow(id)
    expect(first.status).toBe('FAILED')
    expect(first.steps.opt!.status).toBe('SKIPPED')
    const second = await o.waitForRun((await o.retryRun(first.runId, { params: { amount: 4 } })).runId)
    expect(second.status).toBe('SUCCEEDED')
    expect(reused(await o.getHistory(second.runId))).toEqual({ s1: first.runId, s2: first.runId })
    expect(pay.calls.filter((c) => c.runId === second.runId).map((c) => c.stepId)).toEqual(['s3', 's4'])
    // The condition is evaluated again in the new run: still false, still skipped.
    expect(second.steps.opt!.status).toBe('SKIPPED')
    expect(pay.count('opt')).toBe(0)
  })

  it('refuses what it cannot do: unknown fromStep, a run in flight, ambiguous params, an unknown run, nothing to rerun', async () => {
    const pay = payFactory()
    const o = orchestrator()
    o.registerFactory('pay', pay.factory)
    const id = await o.createWorkflow('nested', nested)
    const done = await o.executeWorkflow(id)
    const unknown = await o.retryRun(done.runId, { fromStep: 'grp.g4' }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(ValidationError)
    expect((unknown as ValidationError).issues).toEqual([{ path: 'fromStep', message: expect.stringMatching(/unknown step "grp.g4".*did you mean/) }])
    // Every step succeeded and no fromStep: there is nothing to rerun.
    await expect(o.retryRun(done.runId)).rejects.toBeInstanceOf(ConflictError)
    await expect(o.retryRun('run_doesnotexist')).rejects.toBeInstanceOf(NotFoundError)

    const holdId = await o.createWorkflow('hold', { steps: [{ id: 'h', factory: 'pay', action: 'hold', params: {} }] })
    const { runId: inFlight } = await o.startWorkflow(holdId)
    await until(() => pay.count('h') === 1)
    await expect(o.retryRun(inFlight)).rejects.toBeInstanceOf(ConflictError)
    pay.gate.open()
    expect((await o.waitForRun(inFlight)).status).toBe('SUCCEEDED')

    const twoFailed = await o.createWorkflow('two', {
      parallel: true, onFailure: 'continue',
      steps: [
        { id: 'c1', factory: 'pay', action: 'charge', params: { amount: -1 } },
        { id: 'c2', factory: 'pay', action: 'charge', params: { amount: -2 } },
      ],
    })
    const failed = await o.executeWorkflow(twoFailed)
    expect(failed.status).toBe('FAILED')
    const ambiguous = await o.retryRun(failed.runId, { params: { amount: 1 } }).catch((e: unknown) => e)
    expect(ambiguous).toBeInstanceOf(ValidationError)
    expect((ambiguous as ValidationError).issues[0]).toMatchObject({ path: 'fromStep', message: expect.stringMatching(/2 steps failed/) })
    await expect(o.retryRun(failed.runId, { params: [1] as never, fromStep: 'c1' })).rejects.toBeInstanceOf(ValidationError)
    // None of the refused calls made a run.
    const runs = o.context.conn.sqlite.prepare('select count(*) as n from runs where retry_of is not null').get() as { n: number }
    expect(runs.n).toBe(0)
    // Naming the step makes it unambiguous: c1 is fixed, c2 (also rerun, unchanged) fails again.
    const partial = await o.waitForRun((await o.retryRun(failed.runId, { fromStep: 'c1', params: { amount: 1 } })).runId)
    expect(partial.status).toBe('FAILED')
    expect(partial.steps.c1).toMatchObject({ status: 'SUCCEEDED', output: { charged: 1 } })
    expect(partial.steps.c2!.status).toBe('FAILED')
  })
})

describe('retryRun (GraphQL)', () => {
  it('retryRun returns the new run; parentRun, retryOf and retries link the two', async () => {
    const pay = payFactory()
    t = await startTestServer({ factories: { pay: pay.factory } })
    const created = (await t.request(CreateWorkflowDocument, { name: 'checkout', definition: checkout(0) })).data!.createWorkflow
    if (created.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(created))
    const exec = (await t.request(ExecuteWorkflowDocument, { workflowId: created.workflow.id })).data!.executeWorkflow
    if (exec.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(exec))
    const firstId = exec.run.id
    expect((await t.orchestrator.waitForRun(firstId)).status).toBe('FAILED')

    const retried = (await t.request(RetryRunDocument, { runId: firstId, params: { amount: 12 } })).data!.retryRun
    if (retried.__typename !== 'RunSuccess') throw new Error(JSON.stringify(retried))
    const secondId = retried.run.id
    expect(secondId).not.toBe(firstId)
    expect(retried.run).toMatchObject({ retryOf: firstId, parentRun: { id: firstId } })
    expect((await t.orchestrator.waitForRun(secondId)).status).toBe('SUCCEEDED')

    const second = (await t.request(RunLineageDocument, { id: secondId })).data!.run!
    expect(second).toMatchObject({ status: 'SUCCEEDED', retryOf: firstId, parentRun: { id: firstId, status: 'FAILED' }, retries: [] })
    expect(Object.fromEntries(second.steps.map((s) => [s.stepId, s.output]))).toEqual({
      s1: { value: 10 }, s2: { value: 20 }, s3: { charged: 12 }, s4: { total: 30, charged: 12 },
    })
    const first = (await t.request(RunLineageDocument, { id: firstId })).data!.run!
    expect(first).toMatchObject({ status: 'FAILED', retryOf: null, parentRun: null, retries: [{ id: secondId, status: 'SUCCEEDED', retryOf: firstId }] })
    expect([pay.count('s1'), pay.count('s2'), pay.count('s3'), pay.count('s4')]).toEqual([1, 1, 2, 1])
  })

  it('typed errors: unknown fromStep is a ValidationError, a run in flight a ConflictError, an unknown run a NotFoundError', async () => {
    const pay = payFactory()
    t = await startTestServer({ factories: { pay: pay.factory } })
    const id = await t.orchestrator.createWorkflow('nested', nested)
    const done = await t.orchestrator.executeWorkflow(id)
    const bad = (await t.request(RetryRunDocument, { runId: done.runId, fromStep: 'nope' })).data!.retryRun
    expect(bad).toMatchObject({ __typename: 'ValidationError', issues: [{ path: 'fromStep', message: expect.stringMatching(/unknown step "nope"/) }] })
    const missing = (await t.request(RetryRunDocument, { runId: 'run_doesnotexist' })).data!.retryRun
    expect(missing.__typename).toBe('NotFoundError')

    const holdId = await t.orchestrator.createWorkflow('hold', { steps: [{ id: 'h', factory: 'pay', action: 'hold', params: {} }] })
    const { runId } = await t.orchestrator.startWorkflow(holdId)
    await until(() => pay.count('h') === 1)
    const conflict = (await t.request(RetryRunDocument, { runId })).data!.retryRun
    expect(conflict).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/RUNNING/) })
    pay.gate.open()
    await t.orchestrator.waitForRun(runId)
    expect((await t.request(RunLineageDocument, { id: done.runId })).data!.run!.retries).toEqual([])
  })
})

describe('retryRun across a crash', () => {
  it('the edited params of a retried run survive a SIGKILL of its process', async () => {
    const db = kit.tempDb()
    const { child, line } = await kit.start(WORKER, [db, 'retry'])
    const failedRunId = line.failedRunId as string
    const runId = line.runId as string
    // The retried run waits on its approval: `charge` (with the edited params) has not run yet.
    await kit.waitFor(db, (s) => {
      const row = s.prepare("select status from steps where run_id = ? and step_id = 'approve'").get(runId) as { status: string } | undefined
      return row?.status === 'WAITING' ? true : undefined
    })
    await kit.kill(child)

    const o = orchestrator({ database: db })
    o.registerFactory('control', controlFactory)
    o.registerFactory('shop', shopFactory)
    await until(() => o.coordinator.isActive(runId))
    expect((await o.getRun(runId)).steps.charge!.status).toBe('PENDING')
    await o.signalRun(runId, 'approve', { ok: true })
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.charge!.output).toEqual({ charged: 9 })
    // The definition still says -1: the 9 came from the retried run's stored params.
    expect(approveThenChargeWorkflow.steps[1]!.params).toEqual({ amount: -1 })
    const history = await o.getHistory(runId)
    expect(history.find((e) => e.type === 'STEP_STARTED' && e.stepId === 'charge')!.payload).toEqual({ params: { amount: 9 } })
    expect((await o.getRun(failedRunId)).status).toBe('CANCELLED')
  })
})
