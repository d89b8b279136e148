// Pause and resume (DESIGN.md §3 "Cancel / pause / resume"): a paused run starts nothing new, lets
// running actions finish, and continues where it stopped on resume; it finishes only after resume.
// Proved through the library and through GraphQL over HTTP. Ordering and counting only.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { z } from 'zod'
import { ConflictError, NotFoundError, defineFactory, type RunEvent } from '../src/index.ts'
import { latch, until } from './support/barrier.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import {
  CancelRunDocument, CreateWorkflowDocument, EventsPageDocument, ExecuteWorkflowDocument, PauseRunDocument, ResumeRunDocument,
  RunLineageDocument,
} from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined

const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
  },
})

const orchestrator = opened.orchestrator

/** `gate.wait` blocks until the test opens the gate; counts calls and the most in flight at once. */
function gated() {
  const gate = latch()
  const stats = { calls: 0, running: 0, maxRunning: 0, aborted: 0 }
  const factory = defineFactory({
    name: 'gate',
    actions: {
      wait: {
        input: z.object({ n: z.number() }),
        run: async ({ n }, ctx) => {
          stats.calls++
          stats.running++
          stats.maxRunning = Math.max(stats.maxRunning, stats.running)
          try {
            await new Promise<void>((resolve, reject) => {
              ctx.signal.addEventListener('abort', () => {
                stats.aborted++
                reject(ctx.signal.reason)
              }, { once: true })
              void gate.wait().then(resolve)
            })
            return { n }
          } finally {
            stats.running--
          }
        },
      },
      quick: { input: z.object({ n: z.number() }), run: ({ n }) => (stats.calls++, { n }) },
    },
  })
  return { factory, gate, stats }
}

/** Lets queued commits and any (wrong) dispatch they would trigger happen: a few event-loop turns. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
}

function fanOut(n: number) {
  return { parallel: true, steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, factory: 'gate', action: 'wait', params: { n: i } })) }
}

function between(history: RunEvent[], from: RunEvent['type'], to: RunEvent['type']): RunEvent[] {
  const a = history.findIndex((e) => e.type === from)
  const b = history.findIndex((e) => e.type === to)
  expect(a, from).toBeGreaterThanOrEqual(0)
  expect(b, to).toBeGreaterThan(a)
  return history.slice(a + 1, b)
}

function countStatus(steps: Record<string, { status: string }>, status: string): number {
  return Object.values(steps).filter((s) => s.status === status).length
}

describe('pause and resume (library)', () => {
  it('a paused run of 100 parallel steps starts nothing new, lets running actions finish, and completes after resume', async () => {
    const g = gated()
    const o = orchestrator({ coordinator: { maxWorkers: 10 } })
    o.registerFactory('gate', g.factory)
    const id = await o.createWorkflow('fan', fanOut(100))
    const { runId } = await o.startWorkflow(id)
    await until(() => g.stats.calls === 10)

    const paused = await o.pauseRun(runId)
    expect(paused.status).toBe('PAUSED')
    expect(countStatus(paused.steps, 'RUNNING')).toBe(10)
    expect(countStatus(paused.steps, 'READY')).toBe(90)

    // The ten running actions finish while paused; their slots free up but nothing new starts.
    g.gate.open()
    await until(() => countStatus(o.coordinator.readResult(runId).steps, 'SUCCEEDED') === 10)
    await settle()
    const during = await o.getRun(runId)
    expect(during.status).toBe('PAUSED')
    expect(countStatus(during.steps, 'SUCCEEDED')).toBe(10)
    expect(countStatus(during.steps, 'READY')).toBe(90)
    expect(g.stats.calls).toBe(10)

    // The gate is open: the run may already have finished by the time resumeRun answers.
    const resumed = await o.resumeRun(runId)
    expect(['RUNNING', 'SUCCEEDED']).toContain(resumed.status)
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(countStatus(result.steps, 'SUCCEEDED')).toBe(100)
    expect(g.stats.calls).toBe(100)
    expect(g.stats.maxRunning).toBeLessThanOrEqual(10)

    const history = await o.getHistory(runId)
    expect(history.filter((e) => e.type === 'RUN_PAUSED')).toHaveLength(1)
    expect(history.filter((e) => e.type === 'RUN_RESUMED')).toHaveLength(1)
    const pausedWindow = between(history, 'RUN_PAUSED', 'RUN_RESUMED')
    expect(pausedWindow.filter((e) => e.type === 'STEP_STARTED')).toHaveLength(0)
    // What finished during the pause is exactly what was running when it began.
    const runningAtPause = new Set(Object.entries(paused.steps).filter(([, s]) => s.status === 'RUNNING').map(([k]) => k))
    const finishedInPause = pausedWindow.filter((e) => e.type === 'STEP_SUCCEEDED').map((e) => e.stepId!)
    expect(new Set(finishedInPause)).toEqual(runningAtPause)
    const afterResume = history.slice(history.findIndex((e) => e.type === 'RUN_RESUMED'))
    expect(afterResume.filter((e) => e.type === 'STEP_STARTED')).toHaveLength(90)
    expect(history.at(-1)!.type).toBe('RUN_SUCCEEDED')
  })

  it('a paused run whose last running step finishes stays PAUSED until it is resumed', async () => {
    const g = gated()
    const o = orchestrator()
    o.registerFactory('gate', g.factory)
    const id = await o.createWorkflow('one', { steps: [{ id: 'only', factory: 'gate', action: 'wait', params: { n: 1 } }] })
    const { runId } = await o.startWorkflow(id)
    await until(() => g.stats.calls === 1)
    await o.pauseRun(runId)
    let finished = false
    const waiting = o.waitForRun(runId).then((r) => ((finished = true), r))

    g.gate.open()
    await until(() => o.coordinator.readResult(runId).steps.only!.status === 'SUCCEEDED')
    await settle()
    expect((await o.getRun(runId)).status).toBe('PAUSED')
    expect(finished).toBe(false)
    expect((await o.getHistory(runId)).some((e) => e.type === 'RUN_SUCCEEDED')).toBe(false)

    await o.resumeRun(runId)
    const result = await waiting
    expect(result.status).toBe('SUCCEEDED')
    expect(result.output).toEqual({ only: { n: 1 } })
    const types = (await o.getHistory(runId)).map((e) => e.type)
    expect(types.indexOf('RUN_SUCCEEDED')).toBeGreaterThan(types.indexOf('RUN_RESUMED'))
  })

  it('a step whose dependency finishes during the pause stays PENDING until resume', async () => {
    const g = gated()
    const o = orchestrator()
    o.registerFactory('gate', g.factory)
    const id = await o.createWorkflow('chain', {
      steps: [
        { id: 'a', factory: 'gate', action: 'wait', params: { n: 1 } },
        { id: 'b', factory: 'gate', action: 'quick', params: { n: 2 } },
      ],
    })
    const { runId } = await o.startWorkflow(id)
    await until(() => g.stats.calls === 1)
    await o.pauseRun(runId)
    g.gate.open()
    await until(() => o.coordinator.readResult(runId).steps.a!.status === 'SUCCEEDED')
    await settle()
    const during = await o.getRun(runId)
    expect(during.status).toBe('PAUSED')
    expect(during.steps.b!.status).toBe('PENDING')
    expect(g.stats.calls).toBe(1)
    await o.resumeRun(runId)
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.b!.output).toEqual({ n: 2 })
    expect(g.stats.calls).toBe(2)
  })

  it('pause and resume refuse the wrong states: ConflictError, or NotFoundError for an unknown run', async () => {
    const g = gated()
    const o = orchestrator()
    o.registerFactory('gate', g.factory)
    const id = await o.createWorkflow('one', { steps: [{ id: 'only', factory: 'gate', action: 'wait', params: { n: 1 } }] })
    const { runId } = await o.startWorkflow(id)
    await until(() => g.stats.calls === 1)
    await expect(o.resumeRun(runId)).rejects.toBeInstanceOf(ConflictError)
    await o.pauseRun(runId)
    await expect(o.pauseRun(runId)).rejects.toBeInstanceOf(ConflictError)
    await o.resumeRun(runId)
    g.gate.open()
    expect((await o.waitForRun(runId)).status).toBe('SUCCEEDED')
    await expect(o.pauseRun(runId)).rejects.toThrow(ConflictError)
    await expect(o.pauseRun(runId)).rejects.toThrow(/SUCCEEDED/)
    await expect(o.resumeRun(runId)).rejects.toBeInstanceOf(ConflictError)
    await expect(o.pauseRun('run_doesnotexist')).rejects.toBeInstanceOf(NotFoundError)
    await expect(o.resumeRun('run_doesnotexist')).rejects.toBeInstanceOf(NotFoundError)
    // The refused calls left no trace in the history.
    const types = (await o.getHistory(runId)).map((e) => e.type)
    expect(types.filter((x) => x === 'RUN_PAUSED')).toHaveLength(1)
    expect(types.filter((x) => x === 'RUN_RESUMED')).toHaveLength(1)
  })

  it('cancelling a paused run aborts what runs, cancels the rest and starts nothing', async () => {
    const g = gated()
    const o = orchestrator({ coordinator: { maxWorkers: 2 } })
    o.registerFactory('gate', g.factory)
    const id = await o.createWorkflow('fan', fanOut(6))
    const { runId } = await o.startWorkflow(id)
    await until(() => g.stats.calls === 2)
    await o.pauseRun(runId)
    const cancelled = await o.cancelRun(runId)
    expect(cancelled.status).toBe('CANCELLED')
    expect(countStatus(cancelled.steps, 'CANCELLED')).toBe(6)
    expect(g.stats.aborted).toBe(2)
    await settle()
    expect(g.stats.calls).toBe(2)
    const history = await o.getHistory(runId)
    const afterPause = history.slice(history.findIndex((e) => e.type === 'RUN_PAUSED'))
    expect(afterPause.filter((e) => e.type === 'STEP_STARTED')).toHaveLength(0)
    expect(history.at(-1)!.type).toBe('RUN_CANCELLED')
    await expect(o.resumeRun(runId)).rejects.toBeInstanceOf(ConflictError)
  })
})

describe('pause across a restart', () => {
  it('a run paused when the process stops is still PAUSED after a restart, starts nothing, and finishes after resume', async () => {
    const dir = opened.tempDir('conveyor-pause-')
    const db = join(dir, 'conveyor.db')
    const g = gated()
    const first = orchestrator({ database: db, coordinator: { maxWorkers: 1 } })
    first.registerFactory('gate', g.factory)
    const id = await first.createWorkflow('fan', fanOut(3))
    const { runId } = await first.startWorkflow(id)
    await until(() => g.stats.calls === 1)
    await first.pauseRun(runId)
    // Stops with one action running (its attempt is interrupted) and two steps READY.
    await first.close()

    const again = gated()
    again.gate.open()
    const second = orchestrator({ database: db, coordinator: { maxWorkers: 1 } })
    second.registerFactory('gate', again.factory)
    second.coordinator.recover()
    await until(() => second.coordinator.isActive(runId))
    await settle()
    const during = await second.getRun(runId)
    expect(during.status).toBe('PAUSED')
    expect(countStatus(during.steps, 'READY')).toBe(3)
    expect(again.stats.calls).toBe(0)

    await second.resumeRun(runId)
    const result = await second.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(again.stats.calls).toBe(3)
    const history = await second.getHistory(runId)
    const afterPause = history.slice(history.findIndex((e) => e.type === 'RUN_PAUSED'), history.findIndex((e) => e.type === 'RUN_RESUMED'))
    expect(afterPause.filter((e) => e.type === 'STEP_STARTED')).toHaveLength(0)
    const attempts = second.context.conn.sqlite
      .prepare("select status from step_attempts where run_id = ? and step_id = 's0' order by attempt")
      .all(runId) as { status: string }[]
    expect(attempts.map((a) => a.status)).toEqual(['INTERRUPTED', 'SUCCEEDED'])
  })
})

describe('pause and resume (GraphQL)', () => {
  async function setup(maxWorkers?: number) {
    const g = gated()
    t = await startTestServer({ factories: { gate: g.factory }, coordinator: { maxWorkers } })
    const created = (await t.request(CreateWorkflowDocument, { name: 'gql_pause', definition: fanOut(4) })).data!.createWorkflow
    if (created.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(created))
    const started = (await t.request(ExecuteWorkflowDocument, { workflowId: created.workflow.id })).data!.executeWorkflow
    if (started.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(started))
    return { g, t, runId: started.run.id }
  }

  it('pauseRun / resumeRun mutations: typed results, conflicts as ConflictError members, events in the log', async () => {
    const { g, t, runId } = await setup(2)
    await until(() => g.stats.calls === 2)

    const resumeRunning = (await t.request(ResumeRunDocument, { runId })).data!.resumeRun
    expect(resumeRunning).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/RUNNING/) })

    const paused = (await t.request(PauseRunDocument, { runId })).data!.pauseRun
    expect(paused).toEqual({ __typename: 'RunSuccess', run: { id: runId, status: 'PAUSED' } })
    g.gate.open()
    await until(() => countStatus(t.orchestrator.coordinator.readResult(runId).steps, 'SUCCEEDED') === 2)
    await settle()
    const during = (await t.request(RunLineageDocument, { id: runId })).data!.run!
    expect(during.status).toBe('PAUSED')
    expect(during.steps.map((s) => s.status).sort()).toEqual(['READY', 'READY', 'SUCCEEDED', 'SUCCEEDED'])
    expect(g.stats.calls).toBe(2)

    const resumed = (await t.request(ResumeRunDocument, { runId })).data!.resumeRun
    expect(resumed).toMatchObject({ __typename: 'RunSuccess', run: { id: runId } })
    expect((await t.orchestrator.waitForRun(runId)).status).toBe('SUCCEEDED')

    const pauseFinished = (await t.request(PauseRunDocument, { runId })).data!.pauseRun
    expect(pauseFinished).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/SUCCEEDED/) })
    const missing = (await t.request(PauseRunDocument, { runId: 'run_doesnotexist' })).data!.pauseRun
    expect(missing.__typename).toBe('NotFoundError')

    const events = (await t.request(EventsPageDocument, { runId, first: 100 })).data!.events.edges.map((e) => e.node)
    const types = events.map((e) => e.type)
    const p = types.indexOf('RUN_PAUSED')
    const r = types.indexOf('RUN_RESUMED')
    expect(p).toBeGreaterThan(0)
    expect(r).toBeGreaterThan(p)
    expect(types.slice(p, r)).not.toContain('STEP_STARTED')
    expect(types.slice(p, r).filter((x) => x === 'STEP_SUCCEEDED')).toHaveLength(2)
    expect(types.slice(r).filter((x) => x === 'STEP_STARTED')).toHaveLength(2)
    expect(types.at(-1)).toBe('RUN_SUCCEEDED')
  })

  it('cancelRun on a paused run settles it CANCELLED', async () => {
    const { g, t, runId } = await setup(1)
    await until(() => g.stats.calls === 1)
    expect((await t.request(PauseRunDocument, { runId })).data!.pauseRun).toMatchObject({ run: { status: 'PAUSED' } })
    const cancelled = (await t.request(CancelRunDocument, { runId })).data!.cancelRun
    expect(cancelled).toEqual({ __typename: 'RunSuccess', run: { id: runId, status: 'CANCELLED' } })
    const run = (await t.request(RunLineageDocument, { id: runId })).data!.run!
    expect(run.steps.every((s) => s.status === 'CANCELLED')).toBe(true)
    expect(g.stats.calls).toBe(1)
    expect((await t.request(ResumeRunDocument, { runId })).data!.resumeRun.__typename).toBe('ConflictError')
  })
})
