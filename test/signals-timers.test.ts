// Signals and durable timers (DESIGN.md §3 "Signals / human in the loop"): control.approval waits
// (WAITING) for signalRun, whose payload becomes its output; control.delay is a timer that survives
// a SIGKILL and fires at the stored time. A WAITING step holds no worker slot.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ConflictError, NotFoundError, ProjectOrchestrator, controlFactory, defineFactory, type OrchestratorConfig, type RunEvent,
} from '../src/index.ts'
import { until } from './support/barrier.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { crashKit } from './helpers/child.ts'
import { RunLineageDocument, SignalRunDocument } from './generated/graphql.ts'
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

function orchestrator(config: OrchestratorConfig = {}): ProjectOrchestrator {
  const o = new ProjectOrchestrator(config)
  o.registerFactory('control', controlFactory)
  opened.track(o)
  return o
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
}

const ofType = (history: RunEvent[], type: RunEvent['type'], stepId: string) => history.filter((e) => e.type === type && e.stepId === stepId)

/** approve → publish, where publish's params read the approval's output. */
const approvalFlow = (approval: Record<string, unknown> = { message: 'ship it?' }) => ({
  steps: [
    { id: 'approve', factory: 'control', action: 'approval', params: approval },
    { id: 'publish', factory: 'control', action: 'noop', params: { by: '{{ steps.approve.output.by }}', note: 'approved: {{ steps.approve.output.approved }}' } },
  ],
})

describe('control.approval and signalRun (library)', () => {
  it('the step waits (STEP_WAITING), its dependents wait, and the signal\'s payload becomes its output', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('approval', approvalFlow())
    const { runId } = await o.startWorkflow(id)
    await until(() => o.coordinator.readResult(runId).steps.approve!.status === 'WAITING')
    await settle()
    const waiting = await o.getRun(runId)
    expect(waiting.status).toBe('RUNNING')
    expect(waiting.steps.publish!.status).toBe('PENDING')
    const before = await o.getHistory(runId)
    expect(ofType(before, 'STEP_WAITING', 'approve')).toHaveLength(1)
    expect(ofType(before, 'STEP_WAITING', 'approve')[0]!.payload).toEqual({ signal: true, until: null })
    expect(ofType(before, 'STEP_STARTED', 'publish')).toHaveLength(0)

    const signalled = await o.signalRun(runId, 'approve', { approved: true, by: 'alice' })
    expect(signalled.steps.approve).toMatchObject({ status: 'SUCCEEDED', output: { approved: true, by: 'alice' } })
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.publish!.output).toEqual({ by: 'alice', note: 'approved: true' })
    const history = await o.getHistory(runId)
    expect(ofType(history, 'STEP_SUCCEEDED', 'approve')[0]!.payload).toMatchObject({ output: { approved: true, by: 'alice' } })
    // One attempt: the approval action was called once; the signal completed that attempt.
    expect(ofType(history, 'STEP_STARTED', 'approve')).toHaveLength(1)
    expect(result.steps.approve!.attempts).toBe(1)
  })

  it('an approval with timeoutMs and no signal fails the step and the run', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('approval', approvalFlow({ timeoutMs: 30 }))
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('FAILED')
    expect(result.steps.approve).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/no signal arrived before/) })
    expect(result.steps.publish!.status).toBe('CANCELLED')
    const history = await o.getHistory(result.runId)
    const wait = ofType(history, 'STEP_WAITING', 'approve')[0]!.payload as { signal: boolean; until: number }
    expect(wait.signal).toBe(true)
    expect(typeof wait.until).toBe('number')
    await expect(o.signalRun(result.runId, 'approve', {})).rejects.toBeInstanceOf(ConflictError)
  })

  it('signalling a step that is not waiting is a ConflictError; an unknown step or run a NotFoundError', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('approval', {
      steps: [{ id: 'first', factory: 'control', action: 'noop', params: {} }, ...approvalFlow().steps],
    })
    const { runId } = await o.startWorkflow(id)
    await until(() => o.coordinator.readResult(runId).steps.approve!.status === 'WAITING')
    await expect(o.signalRun(runId, 'first', {})).rejects.toBeInstanceOf(ConflictError) // SUCCEEDED
    await expect(o.signalRun(runId, 'publish', {})).rejects.toBeInstanceOf(ConflictError) // PENDING
    await expect(o.signalRun(runId, 'nope', {})).rejects.toBeInstanceOf(NotFoundError)
    await expect(o.signalRun('run_doesnotexist', 'approve', {})).rejects.toBeInstanceOf(NotFoundError)
    // The refused signals changed nothing: the approval still waits and takes the next one.
    expect((await o.getRun(runId)).steps.approve!.status).toBe('WAITING')
    await o.signalRun(runId, 'approve', { by: 'bob' })
    expect((await o.waitForRun(runId)).steps.publish!.output).toMatchObject({ by: 'bob' })
    await expect(o.signalRun(runId, 'approve', {})).rejects.toBeInstanceOf(ConflictError)
  })

  it('a step waiting for a signal holds no worker slot (maxWorkers 1: a parallel step runs meanwhile)', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 1 } })
    const id = await o.createWorkflow('approval', {
      parallel: true,
      steps: [
        { id: 'approve', factory: 'control', action: 'approval', params: {} },
        { id: 'work', factory: 'control', action: 'noop', params: { n: 1 } },
      ],
    })
    const { runId } = await o.startWorkflow(id)
    // If the waiting approval kept the only slot, `work` could never run before the signal.
    await until(() => o.coordinator.readResult(runId).steps.work!.status === 'SUCCEEDED')
    expect((await o.getRun(runId)).steps.approve!.status).toBe('WAITING')
    await o.signalRun(runId, 'approve', { ok: 1 })
    expect((await o.waitForRun(runId)).status).toBe('SUCCEEDED')
  })
})

describe('control.delay', () => {
  it('waits, then succeeds with {firedAt, until}; until is the time asked for', async () => {
    const o = orchestrator()
    const at = Date.now() + 25
    const id = await o.createWorkflow('delay', {
      steps: [
        { id: 'ms', factory: 'control', action: 'delay', params: { ms: 20 } },
        { id: 'at', factory: 'control', action: 'delay', params: { until: at } },
        { id: 'iso', factory: 'control', action: 'delay', params: { until: new Date(at).toISOString() } },
      ],
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    for (const step of ['ms', 'at', 'iso']) {
      const out = result.steps[step]!.output as { firedAt: number; until: number }
      expect(out.firedAt, step).toBeGreaterThanOrEqual(out.until)
    }
    expect((result.steps.at!.output as { until: number }).until).toBe(at)
    expect((result.steps.iso!.output as { until: number }).until).toBe(at)
    const history = await o.getHistory(result.runId)
    const waited = ofType(history, 'STEP_WAITING', 'ms')[0]!.payload as { signal: boolean; until: number }
    expect(waited.signal).toBe(false)
    expect(waited.until).toBe((result.steps.ms!.output as { until: number }).until)
    // The timer, not a signal, finished it.
    await expect(o.signalRun(result.runId, 'ms', {})).rejects.toBeInstanceOf(ConflictError)
  })

  it('a delay holds no worker slot: with maxWorkers 1 a parallel step runs while it waits, and both complete', async () => {
    const seen: { atStart: unknown; sawFire: boolean }[] = []
    const o = orchestrator({ coordinator: { maxWorkers: 1 } })
    o.registerFactory('probe', defineFactory({
      name: 'probe',
      actions: {
        // Holds the only worker slot until the delay has fired.
        work: {
          input: z.object({}),
          run: async (_, ctx) => {
            const atStart = ctx.steps.wait
            await until(() => {
              try {
                return o.coordinator.readResult(ctx.runId).steps.wait!.status === 'SUCCEEDED'
              } catch {
                return false // the run's first commit may not have landed yet
              }
            })
            seen.push({ atStart, sawFire: true })
            return { done: true }
          },
        },
      },
    }))
    const id = await o.createWorkflow('slots', {
      parallel: true,
      steps: [
        { id: 'wait', factory: 'control', action: 'delay', params: { ms: 30 } },
        { id: 'work', factory: 'probe', action: 'work', params: {} },
      ],
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.wait!.status).toBe('SUCCEEDED')
    expect(result.steps.work!.output).toEqual({ done: true })
    // work started before the delay fired and was still running (holding the slot) when it fired.
    expect(seen).toEqual([{ atStart: undefined, sawFire: true }])
    const history = await o.getHistory(result.runId)
    const seqOf = (type: RunEvent['type'], step: string) => ofType(history, type, step)[0]!.seq
    expect(seqOf('STEP_STARTED', 'wait')).toBeLessThan(seqOf('STEP_STARTED', 'work'))
    expect(seqOf('STEP_STARTED', 'work')).toBeLessThan(seqOf('STEP_SUCCEEDED', 'wait'))
    expect(seqOf('STEP_SUCCEEDED', 'wait')).toBeLessThan(seqOf('STEP_SUCCEEDED', 'work'))
  })

  it('a delay survives SIGKILL: after a restart it fires once, at the time stored before the kill', async () => {
    const db = kit.tempDb()
    const { child, line } = await kit.start(WORKER, [db, 'delay'])
    const runId = line.runId as string
    const wakeAt = await kit.waitFor(db, (s) => {
      const row = s.prepare("select status, wake_at as wakeAt from steps where run_id = ? and step_id = 'wait'").get(runId) as
        | { status: string; wakeAt: number | null }
        | undefined
      return row?.status === 'WAITING' ? row.wakeAt! : undefined
    })
    expect(typeof wakeAt).toBe('number')
    await kit.kill(child)

    const o = orchestrator({ database: db })
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    const out = result.steps.wait!.output as { firedAt: number; until: number }
    expect(out.until).toBe(wakeAt)
    expect(out.firedAt).toBeGreaterThanOrEqual(out.until)
    expect(result.steps.after!.output).toEqual({ done: true })
    const history = await o.getHistory(runId)
    expect(ofType(history, 'STEP_SUCCEEDED', 'wait')).toHaveLength(1)
    // The delay action was not run again after the restart: one attempt, one STEP_STARTED.
    expect(ofType(history, 'STEP_STARTED', 'wait')).toHaveLength(1)
    expect(result.steps.wait!.attempts).toBe(1)
    expect(history.filter((e) => e.type === 'RUN_SUCCEEDED')).toHaveLength(1)
  })
})

describe('signalRun (GraphQL)', () => {
  it('delivers the payload as the step\'s output; typed errors for steps not waiting and unknown ids', async () => {
    t = await startTestServer()
    const id = await t.orchestrator.createWorkflow('approval', approvalFlow())
    const { runId } = await t.orchestrator.startWorkflow(id)
    await until(() => t!.orchestrator.coordinator.readResult(runId).steps.approve!.status === 'WAITING')

    const notWaiting = (await t.request(SignalRunDocument, { runId, stepId: 'publish', payload: {} })).data!.signalRun
    expect(notWaiting).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/PENDING/) })
    const unknownStep = (await t.request(SignalRunDocument, { runId, stepId: 'nope' })).data!.signalRun
    expect(unknownStep).toMatchObject({ __typename: 'NotFoundError', message: expect.stringMatching(/nope/) })
    const unknownRun = (await t.request(SignalRunDocument, { runId: 'run_doesnotexist', stepId: 'approve' })).data!.signalRun
    expect(unknownRun.__typename).toBe('NotFoundError')

    const ok = (await t.request(SignalRunDocument, { runId, stepId: 'approve', payload: { approved: true, by: 'carol' } })).data!.signalRun
    expect(ok.__typename).toBe('RunSuccess')
    if (ok.__typename !== 'RunSuccess') return
    expect(ok.run.steps.find((s) => s.stepId === 'approve')).toEqual({ stepId: 'approve', status: 'SUCCEEDED', output: { approved: true, by: 'carol' } })
    await t.orchestrator.waitForRun(runId)
    const run = (await t.request(RunLineageDocument, { id: runId })).data!.run!
    expect(run.status).toBe('SUCCEEDED')
    expect(run.steps.find((s) => s.stepId === 'publish')!.output).toEqual({ by: 'carol', note: 'approved: true' })
    const again = (await t.request(SignalRunDocument, { runId, stepId: 'approve', payload: {} })).data!.signalRun
    expect(again.__typename).toBe('ConflictError')
  })
})
