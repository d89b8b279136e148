// Saga rollback (DESIGN.md §3): compensations run newest-completed first, each recorded as its own
// events; opted-out steps and actions without compensate are skipped; a failing compensation is
// recorded and the rest still run. Through onFailure: 'rollback', rollbackRun (library and GraphQL),
// and event replays that continue past RUN_FAILED into the later rollback.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { print } from 'graphql'
import { z } from 'zod'
import {
  ConflictError, NonRetryableError, NotFoundError, defineFactory, type ActionContext, type RunEvent, type WorkflowDefinition,
} from '../src/index.ts'
import { latch, until } from './support/barrier.ts'
import { collect, startTestServer, type TestServer } from './helpers/server.ts'
import { RollbackRunDocument, RunEventsDocument, RunLineageDocument } from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined

const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
  },
})

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
}

const orchestrator = opened.orchestrator

/**
 * `saga.book` books `name` (waiting for the test's gate of that name, if it made one) and its
 * compensation cancels the booking; `saga.plain` has no compensation; `saga.badRefund` has one that
 * throws; `saga.boom` fails. Compensation calls are recorded in order, with what they were given.
 */
function sagaFactory() {
  const gates = new Map<string, ReturnType<typeof latch>>()
  const compensations: { stepId: string; input: unknown; output: unknown; key: string }[] = []
  const calls: string[] = []
  /** Steps whose compensation never finishes (a process stopped mid-rollback). */
  const hang = new Set<string>()
  /** While down, badRefund's compensation throws. */
  const refund = { down: true }
  const note = (input: unknown, output: unknown, ctx: ActionContext) =>
    compensations.push({ stepId: ctx.stepId, input, output, key: ctx.idempotencyKey })
  const factory = defineFactory({
    name: 'saga',
    actions: {
      book: {
        input: z.object({ name: z.string() }),
        run: async ({ name }, ctx) => {
          calls.push(ctx.stepId)
          await gates.get(name)?.wait()
          return { booking: name }
        },
        compensate: async (input, output, ctx) => {
          note(input, output, ctx)
          if (hang.has(ctx.stepId)) await new Promise(() => {})
        },
      },
      plain: { input: z.object({}), run: (_, ctx) => (calls.push(ctx.stepId), { plain: true }) },
      badRefund: {
        input: z.object({}),
        run: (_, ctx) => (calls.push(ctx.stepId), { paid: true }),
        compensate: (input, output, ctx) => {
          note(input, output, ctx)
          if (refund.down) throw new Error('refund service down')
        },
      },
      boom: {
        input: z.object({}),
        run: (_, ctx) => {
          calls.push(ctx.stepId)
          throw new NonRetryableError('boom')
        },
      },
    },
  })
  const gate = (name: string) => {
    const l = latch()
    gates.set(name, l)
    return l
  }
  return { factory, gate, compensations, calls, hang, refund, order: () => compensations.map((c) => c.stepId) }
}

const book = (id: string, extra: Record<string, unknown> = {}) => ({ id, factory: 'saga', action: 'book', params: { name: id }, ...extra })
const ofType = (history: RunEvent[], type: RunEvent['type']) => history.filter((e) => e.type === type).map((e) => e.stepId)

describe('onFailure: rollback', () => {
  it('compensates succeeded steps in reverse completion order, skipping opted-out steps and actions without compensate', async () => {
    const saga = sagaFactory()
    const o = orchestrator()
    o.registerFactory('saga', saga.factory)
    const gates = { p1: saga.gate('p1'), p2: saga.gate('p2'), p3: saga.gate('p3') }
    const id = await o.createWorkflow('trip', {
      parallel: true,
      onFailure: 'rollback',
      steps: [
        book('p1'), book('p2'), book('p3'),
        book('c', { compensate: false, dependsOn: ['p1', 'p2', 'p3'] }),
        { id: 'd', factory: 'saga', action: 'plain', params: {}, dependsOn: ['c'] },
        book('e', { dependsOn: ['d'] }),
        { id: 'f', factory: 'saga', action: 'boom', params: {}, dependsOn: ['e'] },
      ],
    } satisfies WorkflowDefinition)
    const { runId } = await o.startWorkflow(id)
    // Completion order p2, p3, p1 (not declaration order), then c, d, e; f fails.
    for (const name of ['p2', 'p3', 'p1'] as const) {
      gates[name].open()
      await until(() => o.coordinator.readResult(runId).steps[name]!.status === 'SUCCEEDED')
    }
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('ROLLED_BACK')
    expect(saga.order()).toEqual(['e', 'p1', 'p3', 'p2'])
    // Each compensation got the step's params and output.
    expect(saga.compensations.find((c) => c.stepId === 'p1')).toMatchObject({ input: { name: 'p1' }, output: { booking: 'p1' }, key: `${runId}:p1:compensate` })
    expect(Object.fromEntries(Object.entries(result.steps).map(([k, s]) => [k, s.status]))).toEqual({
      p1: 'COMPENSATED', p2: 'COMPENSATED', p3: 'COMPENSATED', c: 'SUCCEEDED', d: 'SUCCEEDED', e: 'COMPENSATED', f: 'FAILED',
    })

    const history = await o.getHistory(runId)
    const runTypes = history.filter((e) => e.stepId === null).map((e) => e.type)
    expect(runTypes).toEqual(['RUN_CREATED', 'RUN_STARTED', 'RUN_ROLLING_BACK', 'RUN_ROLLED_BACK'])
    expect(ofType(history, 'STEP_COMPENSATING')).toEqual(['e', 'p1', 'p3', 'p2'])
    expect(ofType(history, 'STEP_COMPENSATED')).toEqual(['e', 'p1', 'p3', 'p2'])
    // Each compensation is its own pair of events: COMPENSATING then COMPENSATED, one step at a time.
    const pairs = history.filter((e) => e.type === 'STEP_COMPENSATING' || e.type === 'STEP_COMPENSATED').map((e) => `${e.type}:${e.stepId}`)
    expect(pairs).toEqual(['e', 'p1', 'p3', 'p2'].flatMap((s) => [`STEP_COMPENSATING:${s}`, `STEP_COMPENSATED:${s}`]))
    const rollingBack = history.find((e) => e.type === 'RUN_ROLLING_BACK')!
    expect((rollingBack.payload as { error: string }).error).toMatch(/f/)
    expect(history.at(-1)).toMatchObject({ type: 'RUN_ROLLED_BACK', payload: { compensated: ['e', 'p1', 'p3', 'p2'], skipped: ['d', 'c'] } })
    expect(history.findIndex((e) => e.type === 'STEP_COMPENSATING')).toBeGreaterThan(history.findIndex((e) => e.type === 'RUN_ROLLING_BACK'))
  })

  it('a step still running after failGraceMs is aborted and the rollback goes on without it', async () => {
    const saga = sagaFactory()
    const o = orchestrator()
    o.registerFactory('saga', saga.factory)
    saga.gate('stuck') // never opened: the booking hangs
    const id = await o.createWorkflow('hung-trip', {
      parallel: true,
      onFailure: 'rollback',
      failGraceMs: 20,
      steps: [book('stuck'), book('a'), { id: 'f', factory: 'saga', action: 'boom', params: {}, dependsOn: ['a'] }],
    } satisfies WorkflowDefinition)
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('ROLLED_BACK')
    expect(result.steps.stuck!.status).toBe('CANCELLED')
    expect(result.steps.a!.status).toBe('COMPENSATED')
    // Only what succeeded is compensated: the aborted booking never finished.
    expect(saga.order()).toEqual(['a'])
  })

  it('a failing compensation is recorded, the others still run, and the run ends FAILED naming the step', async () => {
    const saga = sagaFactory()
    const o = orchestrator()
    o.registerFactory('saga', saga.factory)
    const id = await o.createWorkflow('pay', {
      onFailure: 'rollback',
      steps: [book('a'), { id: 'b', factory: 'saga', action: 'badRefund', params: {} }, book('c'), { id: 'f', factory: 'saga', action: 'boom', params: {} }],
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('FAILED')
    expect(result.error).toMatch(/compensation failed for b\b/)
    expect(result.error).toMatch(/step f failed: boom/)
    // b's compensation failed and a's still ran after it.
    expect(saga.order()).toEqual(['c', 'b', 'a'])
    expect(result.steps.a!.status).toBe('COMPENSATED')
    expect(result.steps.c!.status).toBe('COMPENSATED')
    expect(result.steps.b).toMatchObject({ status: 'COMPENSATION_FAILED', error: expect.stringMatching(/refund service down/) })

    const history = await o.getHistory(runId(result))
    const compensationFailures = history.filter((e) => e.type === 'STEP_FAILED' && (e.payload as { compensation?: boolean }).compensation === true)
    expect(compensationFailures).toHaveLength(1)
    expect(compensationFailures[0]).toMatchObject({ stepId: 'b', payload: { compensation: true, error: expect.stringMatching(/refund service down/) } })
    // The original failure of f is not a compensation failure.
    expect(history.find((e) => e.type === 'STEP_FAILED' && e.stepId === 'f')!.payload).not.toHaveProperty('compensation')
    expect(ofType(history, 'STEP_COMPENSATED')).toEqual(['c', 'a'])
    expect(history.at(-1)).toMatchObject({ type: 'RUN_FAILED', payload: { failed: ['b'], compensated: ['c', 'a'] } })
    expect(history.filter((e) => e.type === 'RUN_FAILED')).toHaveLength(1)
  })

  it('rolling back a run whose compensation failed tries that compensation again, and only that one', async () => {
    const saga = sagaFactory()
    const o = orchestrator()
    o.registerFactory('saga', saga.factory)
    const id = await o.createWorkflow('pay-again', {
      onFailure: 'rollback',
      steps: [book('a'), { id: 'b', factory: 'saga', action: 'badRefund', params: {} }, { id: 'f', factory: 'saga', action: 'boom', params: {} }],
    })
    const first = await o.executeWorkflow(id)
    expect(first.status).toBe('FAILED')
    expect(first.steps.b!.status).toBe('COMPENSATION_FAILED')
    expect(saga.order()).toEqual(['b', 'a'])

    // While the refund service is still down, a second rollback fails the same way.
    const again = await o.rollbackRun(first.runId)
    expect(again.status).toBe('FAILED')
    expect(again.error).toMatch(/compensation failed for b\b/)
    expect(saga.order()).toEqual(['b', 'a', 'b'])

    saga.refund.down = false
    const last = await o.rollbackRun(first.runId)
    expect(last.status).toBe('ROLLED_BACK')
    expect(saga.order()).toEqual(['b', 'a', 'b', 'b'])
    expect(last.steps.b).toEqual({ status: 'COMPENSATED', output: { paid: true }, attempts: 1 })
    expect(last.steps.a!.status).toBe('COMPENSATED')
    expect(last.steps.f!.status).toBe('FAILED')
    const history = await o.getHistory(first.runId)
    expect(history.filter((e) => e.stepId === null).map((e) => e.type)).toEqual([
      'RUN_CREATED', 'RUN_STARTED', 'RUN_ROLLING_BACK', 'RUN_FAILED', 'RUN_ROLLING_BACK', 'RUN_FAILED', 'RUN_ROLLING_BACK', 'RUN_ROLLED_BACK',
    ])
    expect(history.at(-1)).toMatchObject({ payload: { compensated: ['b'], skipped: [] } })
    // Rolled back for good: nothing is left to compensate.
    await expect(o.rollbackRun(first.runId)).rejects.toBeInstanceOf(ConflictError)
  })
})

function runId(r: { runId: string }): string {
  return r.runId
}

describe('rollbackRun (library)', () => {
  it('rolls back a SUCCEEDED run; rolling back again, a run in flight or an unknown run is refused', async () => {
    const saga = sagaFactory()
    const o = orchestrator()
    o.registerFactory('saga', saga.factory)
    const id = await o.createWorkflow('ok', { steps: [book('a'), book('b'), { id: 'c', factory: 'saga', action: 'plain', params: {} }] })
    const done = await o.executeWorkflow(id)
    expect(done.status).toBe('SUCCEEDED')
    expect(saga.order()).toEqual([])

    const rolled = await o.rollbackRun(done.runId)
    expect(rolled.status).toBe('ROLLED_BACK')
    expect(saga.order()).toEqual(['b', 'a'])
    expect(rolled.steps.c!.status).toBe('SUCCEEDED')
    const history = await o.getHistory(done.runId)
    const runTypes = history.filter((e) => e.stepId === null).map((e) => e.type)
    expect(runTypes).toEqual(['RUN_CREATED', 'RUN_STARTED', 'RUN_SUCCEEDED', 'RUN_ROLLING_BACK', 'RUN_ROLLED_BACK'])

    await expect(o.rollbackRun(done.runId)).rejects.toBeInstanceOf(ConflictError)
    await expect(o.rollbackRun('run_doesnotexist')).rejects.toBeInstanceOf(NotFoundError)
    expect(saga.order()).toEqual(['b', 'a'])

    const gate = saga.gate('slow')
    const slowId = await o.createWorkflow('slow', { steps: [book('slow')] })
    const { runId: inFlight } = await o.startWorkflow(slowId)
    await until(() => saga.calls.includes('slow'))
    await expect(o.rollbackRun(inFlight)).rejects.toThrow(ConflictError)
    gate.open()
    expect((await o.waitForRun(inFlight)).status).toBe('SUCCEEDED')
    expect(saga.order()).toEqual(['b', 'a'])
  })

  it('replaying the events of a run that FAILED and was rolled back later goes on past RUN_FAILED to RUN_ROLLED_BACK', async () => {
    const saga = sagaFactory()
    const o = orchestrator()
    o.registerFactory('saga', saga.factory)
    const id = await o.createWorkflow('fails', { steps: [book('a'), { id: 'f', factory: 'saga', action: 'boom', params: {} }] })
    const failed = await o.executeWorkflow(id)
    expect(failed.status).toBe('FAILED')
    expect((await o.rollbackRun(failed.runId)).status).toBe('ROLLED_BACK')

    const replayed: RunEvent[] = []
    // The stream ends by itself (untilRunFinished): a hang here would time the test out.
    for await (const e of o.events({ runId: failed.runId }, { untilRunFinished: true })) replayed.push(e)
    const types = replayed.map((e) => e.type)
    expect(types.indexOf('RUN_FAILED')).toBeGreaterThan(0)
    expect(types.slice(types.indexOf('RUN_FAILED'))).toEqual(['RUN_FAILED', 'RUN_ROLLING_BACK', 'STEP_COMPENSATING', 'STEP_COMPENSATED', 'RUN_ROLLED_BACK'])
    expect(replayed.map((e) => e.seq)).toEqual((await o.getHistory(failed.runId)).map((e) => e.seq))
  })
})

describe('rollback across a restart', () => {
  it('a rollback stopped mid-way resumes on the next start, waits for its factory, and compensates the rest', async () => {
    const dir = opened.tempDir('conveyor-rollback-')
    const db = join(dir, 'conveyor.db')
    const saga = sagaFactory()
    const first = orchestrator({ database: db })
    first.registerFactory('saga', saga.factory)
    // b's compensation never finishes in the first process.
    saga.hang.add('b')
    const id = await first.createWorkflow('trip', {
      onFailure: 'rollback', steps: [book('a'), book('b'), { id: 'f', factory: 'saga', action: 'boom', params: {} }],
    })
    const { runId } = await first.startWorkflow(id)
    await until(() => saga.order().includes('b'))
    await first.close()
    expect(saga.order()).toEqual(['b'])
    saga.hang.clear()

    const second = orchestrator({ database: db })
    // Recovery starts before the factory is registered: the compensations wait instead of being skipped.
    second.coordinator.recover()
    await settle()
    expect((await second.getRun(runId)).status).toBe('ROLLING_BACK')
    expect(saga.order()).toEqual(['b'])
    second.registerFactory('saga', saga.factory)
    const result = await second.waitForRun(runId)
    expect(result.status).toBe('ROLLED_BACK')
    // b's interrupted compensation is tried again (at-least-once), then a's.
    expect(saga.order()).toEqual(['b', 'b', 'a'])
    expect(result.steps.a!.status).toBe('COMPENSATED')
    expect(result.steps.b!.status).toBe('COMPENSATED')
    const history = await second.getHistory(runId)
    expect(history.at(-1)).toMatchObject({ type: 'RUN_ROLLED_BACK', payload: { compensated: ['b', 'a'], skipped: [] } })
  })
})

describe('rollbackRun (GraphQL)', () => {
  it('rollbackRun on a SUCCEEDED run ends ROLLED_BACK; again, in flight, or unknown are typed errors', async () => {
    const saga = sagaFactory()
    t = await startTestServer({ factories: { saga: saga.factory } })
    const id = await t.orchestrator.createWorkflow('ok', { steps: [book('a'), book('b')] })
    const done = await t.orchestrator.executeWorkflow(id)
    expect(done.status).toBe('SUCCEEDED')

    const res = (await t.request(RollbackRunDocument, { runId: done.runId })).data!.rollbackRun
    expect(res.__typename).toBe('RunSuccess')
    if (res.__typename !== 'RunSuccess') return
    expect(['ROLLING_BACK', 'ROLLED_BACK']).toContain(res.run.status)
    await until(() => t!.orchestrator.coordinator.readResult(done.runId).status === 'ROLLED_BACK')
    const run = (await t.request(RunLineageDocument, { id: done.runId })).data!.run!
    expect(run.status).toBe('ROLLED_BACK')
    expect(run.steps.map((s) => [s.stepId, s.status])).toEqual([['a', 'COMPENSATED'], ['b', 'COMPENSATED']])
    expect(saga.order()).toEqual(['b', 'a'])

    const again = (await t.request(RollbackRunDocument, { runId: done.runId })).data!.rollbackRun
    expect(again).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/ROLLED_BACK/) })
    const missing = (await t.request(RollbackRunDocument, { runId: 'run_doesnotexist' })).data!.rollbackRun
    expect(missing.__typename).toBe('NotFoundError')

    const gate = saga.gate('slow')
    const slowId = await t.orchestrator.createWorkflow('slow', { steps: [book('slow')] })
    const { runId: inFlight } = await t.orchestrator.startWorkflow(slowId)
    await until(() => saga.calls.includes('slow'))
    const conflict = (await t.request(RollbackRunDocument, { runId: inFlight })).data!.rollbackRun
    expect(conflict).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/RUNNING/) })
    gate.open()
    expect((await t.orchestrator.waitForRun(inFlight)).status).toBe('SUCCEEDED')
    expect(saga.order()).toEqual(['b', 'a'])
  })

  it('a runEvents replay over graphql-ws of a FAILED-then-rolled-back run continues to RUN_ROLLED_BACK and completes', async () => {
    const saga = sagaFactory()
    t = await startTestServer({ factories: { saga: saga.factory } })
    const id = await t.orchestrator.createWorkflow('fails', { steps: [book('a'), book('b'), { id: 'f', factory: 'saga', action: 'boom', params: {} }] })
    const failed = await t.orchestrator.executeWorkflow(id)
    expect(failed.status).toBe('FAILED')
    const res = (await t.request(RollbackRunDocument, { runId: failed.runId })).data!.rollbackRun
    expect(res.__typename).toBe('RunSuccess')
    await until(() => t!.orchestrator.coordinator.readResult(failed.runId).status === 'ROLLED_BACK')

    type Ev = { runEvents: { type: string; stepId: string | null; seq: number } }
    // No stop condition: the subscription must complete on its own after RUN_ROLLED_BACK.
    const sub = collect<Ev>(t.ws(), print(RunEventsDocument), { runId: failed.runId })
    const events = (await sub.done).map((i) => i.runEvents)
    expect(sub.errors).toEqual([])
    const types = events.map((e) => `${e.type}${e.stepId ? `:${e.stepId}` : ''}`)
    expect(types.slice(types.indexOf('RUN_FAILED'))).toEqual([
      'RUN_FAILED', 'RUN_ROLLING_BACK', 'STEP_COMPENSATING:b', 'STEP_COMPENSATED:b', 'STEP_COMPENSATING:a', 'STEP_COMPENSATED:a', 'RUN_ROLLED_BACK',
    ])
    expect(events.map((e) => e.seq)).toEqual((await t.orchestrator.getHistory(failed.runId)).map((e) => e.seq))
  })
})
