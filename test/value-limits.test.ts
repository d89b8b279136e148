// Sizes the engine takes (limits.maxValueBytes, maxMessageBytes, maxArtifactBytes), checked before
// anything is queued; and a change the database refuses for good fails its run instead of being
// dropped while the run goes on to SUCCEEDED.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import pino from 'pino'
import { ProjectOrchestrator, ValidationError, controlFactory, type ActionContext, type OrchestratorConfig } from '../src/index.ts'
import { until } from './support/barrier.ts'
import { openedPerTest } from './support/opened.ts'

const opened = openedPerTest()
const KB = 1024

function setup(config: OrchestratorConfig = {}) {
  const o = opened.orchestrator({ database: join(opened.tempDir(), 'c.db'), ...config })
  o.registerFactory('control', controlFactory)
  o.registerFactory('t', {
    /** Returns a string of `bytes` characters. */
    big: (params: { bytes: number }) => ({ text: 'x'.repeat(params.bytes) }),
    echo: (params: Record<string, unknown>) => params,
    chatty: (params: { bytes: number }, ctx: ActionContext) => {
      ctx.log('y'.repeat(params.bytes))
      ctx.progress(0.5, 'z'.repeat(params.bytes))
      return { ok: true }
    },
    file: (params: { bytes: number }, ctx: ActionContext) => ctx.artifact({ name: 'f.bin', mimeType: 'application/octet-stream', data: new Uint8Array(params.bytes) }),
  })
  return o
}

const runCount = (o: ProjectOrchestrator) => o.context.conn.sqlite.prepare('SELECT count(*) FROM runs').pluck().get()

describe('value limits', () => {
  it('a step output past maxValueBytes fails the step with its size and the limit; the run follows its failure policy', async () => {
    const o = setup({ limits: { maxValueBytes: 64 * KB } })
    const id = await o.createWorkflow('big', {
      steps: [
        { id: 'small', factory: 't', action: 'big', params: { bytes: 1000 } },
        { id: 'large', factory: 't', action: 'big', params: { bytes: 200 * KB } },
        { id: 'after', factory: 't', action: 'echo', params: {} },
      ],
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('FAILED')
    expect(result.steps.small!.status).toBe('SUCCEEDED')
    expect(result.steps.large!.status).toBe('FAILED')
    expect(result.steps.large!.error).toBe('output is larger than the limit of 64.0 KB (limits.maxValueBytes)')
    expect(result.steps.after!.status).not.toBe('SUCCEEDED')
    const history = await o.getHistory(result.runId)
    expect(history.filter((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === 'large')).toEqual([])
    expect(history.at(-1)!.type).toBe('RUN_FAILED')
  })

  it('just over the limit, counting escapes, it says the size exactly', async () => {
    const o = setup({ limits: { maxValueBytes: 10 * KB } })
    o.registerFactory('q', { quotes: () => '"'.repeat(6 * KB) })
    const result = await o.executeWorkflow(await o.createWorkflow('q', { steps: [{ id: 'q', factory: 'q', action: 'quotes' }] }))
    expect(result.steps.q!.error).toBe('output is 12.0 KB; the limit is 10.0 KB (limits.maxValueBytes)')
  })

  it('a run output past the limit fails the run', async () => {
    const o = setup({ limits: { maxValueBytes: 64 * KB } })
    const id = await o.createWorkflow('out', {
      steps: [
        { id: 'a', factory: 't', action: 'big', params: { bytes: 40 * KB } },
        { id: 'b', factory: 't', action: 'big', params: { bytes: 40 * KB }, dependsOn: [] },
      ],
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('FAILED')
    expect(result.error).toMatch(/^output: the run output is 80\.\d KB; the limit is 64\.0 KB \(limits\.maxValueBytes\)$/)
    expect(result.steps.a!.status).toBe('SUCCEEDED')
  })

  it('input, params and a signal payload past the limit are refused before anything is stored', async () => {
    const o = setup({ limits: { maxValueBytes: 16 * KB } })
    const id = await o.createWorkflow('sig', { steps: [{ id: 'wait', factory: 'control', action: 'approval', params: {} }] })
    const before = runCount(o)
    await expect(o.startWorkflow(id, { blob: 'x'.repeat(20 * KB) })).rejects.toThrow(/^input is 20\.0 KB; the limit is 16\.0 KB$/)
    await expect(o.startWorkflow(id, {}, { params: { blob: 'x'.repeat(20 * KB) } })).rejects.toThrow(ValidationError)
    expect(runCount(o)).toBe(before)
    const { runId } = await o.startWorkflow(id)
    await until(() => o.coordinator.readResult(runId).steps.wait!.status === 'WAITING')
    await expect(o.signalRun(runId, 'wait', { blob: 'x'.repeat(20 * KB) })).rejects.toThrow(/^payload is 20\.0 KB; the limit is 16\.0 KB$/)
    expect(o.coordinator.readResult(runId).steps.wait!.status).toBe('WAITING')
    await o.signalRun(runId, 'wait', { ok: true })
    expect((await o.waitForRun(runId)).status).toBe('SUCCEEDED')
  })

  it('log and progress messages past maxMessageBytes are cut, saying how much', async () => {
    const o = setup({ limits: { maxMessageBytes: 1 * KB } })
    const result = await o.executeWorkflow(await o.createWorkflow('chat', { steps: [{ id: 'c', factory: 't', action: 'chatty', params: { bytes: 5000 } }] }))
    expect(result.status).toBe('SUCCEEDED')
    const history = await o.getHistory(result.runId)
    const log = history.find((e) => e.type === 'STEP_LOG')!.payload as { message: string }
    const progress = history.find((e) => e.type === 'STEP_PROGRESS')!.payload as { message: string }
    expect(log.message).toBe(`${'y'.repeat(1024)}… (3.9 KB more cut)`)
    expect(progress.message).toBe(`${'z'.repeat(1024)}… (3.9 KB more cut)`)
  })

  it('an artifact past maxArtifactBytes is refused to the action; nothing is written', async () => {
    const o = setup({ limits: { maxArtifactBytes: 4 * KB } })
    const result = await o.executeWorkflow(await o.createWorkflow('file', { steps: [{ id: 'f', factory: 't', action: 'file', params: { bytes: 5000 } }] }))
    expect(result.status).toBe('FAILED')
    expect(result.steps.f!.error).toBe('artifact "f.bin" is 4.9 KB; the limit is 4.0 KB (limits.maxArtifactBytes)')
    expect(o.catalog.artifactsByRunIds([result.runId])).toEqual([])
  })

  it('a bad limit is refused before the database is opened', () => {
    expect(() => new ProjectOrchestrator({ limits: { maxValueBytes: -1 } })).toThrow('limits.maxValueBytes must be a positive whole number of bytes, not -1')
  })
})

describe('a change the database refuses for good', () => {
  it('fails its run with its unsettled steps, never RUN_SUCCEEDED over the missing step; other runs of the commit go on', async () => {
    // Quiet: the refusal is logged as an error, as it should be.
    const o = setup({ logger: pino({ level: 'silent' }) })
    // A change SQLite will never take (as SQLITE_TOOBIG would be): settling step "bad" as SUCCEEDED.
    o.context.conn.sqlite.exec(`CREATE TRIGGER refuse_bad BEFORE UPDATE OF status ON steps
      WHEN NEW.step_id = 'bad' AND NEW.status = 'SUCCEEDED' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`)
    const id = await o.createWorkflow('refused', {
      steps: [
        { id: 'ok', factory: 't', action: 'echo', params: { n: 1 } },
        { id: 'bad', factory: 't', action: 'echo', params: { n: 2 } },
        { id: 'last', factory: 't', action: 'echo', params: { n: 3 } },
      ],
    })
    const good = await o.createWorkflow('good', { steps: [{ id: 'fine', factory: 't', action: 'echo', params: {} }] })
    const [result, other] = await Promise.all([o.executeWorkflow(id), o.executeWorkflow(good)])
    expect(other.status).toBe('SUCCEEDED')
    expect(result.status).toBe('FAILED')
    expect(result.error).toMatch(/^a change of this run could not be stored: refused by the test$/)
    expect(result.steps.ok!.status).toBe('SUCCEEDED')
    expect(result.steps.bad!.status).toBe('FAILED')
    expect(result.steps.last!.status).toBe('FAILED')
    const history = await o.getHistory(result.runId)
    const types = history.map((e) => e.type)
    expect(types).not.toContain('RUN_SUCCEEDED')
    expect(history.filter((e) => e.stepId === 'bad' && e.type === 'STEP_SUCCEEDED')).toEqual([])
    expect(types.at(-1)).toBe('RUN_FAILED')
    expect(history.at(-1)!.payload).toMatchObject({ failedSteps: ['bad', 'last'] })
    // The step after it never ran: nothing was dispatched on state that was not stored.
    const attempts = o.context.conn.sqlite.prepare("SELECT count(*) FROM step_attempts WHERE run_id = ? AND step_id = 'last'").pluck().get(result.runId)
    expect(attempts).toBe(0)
  })
})
