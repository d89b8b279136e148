// The event log: committed before anyone is told, batched into shared commits, and streamed to
// listeners in seq order without gaps or duplicates, however slow the listener.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { defineFactory, type ProjectOrchestrator, type RunEvent } from '../src/index.ts'
import { openedPerTest } from './support/opened.ts'

const noop = defineFactory({ name: 'control', actions: { noop: { run: async (input: unknown) => input } } })
const opened = openedPerTest()

function orchestrator(database?: string): ProjectOrchestrator {
  const o = opened.orchestrator({ database })
  o.registerFactory('control', noop)
  return o
}

function fileDb(): string {
  return join(opened.tempDir('conveyor-events-'), 'c.db')
}

const parallel = (n: number) => ({
  parallel: true,
  steps: Array.from({ length: n }, (_, i) => ({ id: `p${i}`, factory: 'control', action: 'noop', params: { i } })),
})

describe('event log', () => {
  it('commits each change with its event before a listener hears of it', async () => {
    const db = fileDb()
    const o = orchestrator(db)
    const id = await o.createWorkflow('w', parallel(5))
    // A second connection, as another process would open: what a listener is told must already be there.
    const reader = new Database(db, { readonly: true })
    const checked: string[] = []
    o.subscribe({}, (e) => {
      const row = reader.prepare('select type, step_id as stepId from events where seq = ?').get(e.seq) as { type: string } | undefined
      expect(row?.type).toBe(e.type)
      if (e.stepId && e.type === 'STEP_SUCCEEDED') {
        const step = reader.prepare('select status from steps where run_id = ? and step_id = ?').get(e.runId, e.stepId) as { status: string }
        expect(step.status).toBe('SUCCEEDED')
      }
      checked.push(e.type)
    })
    const result = await o.executeWorkflow(id)
    await until(() => checked.includes('RUN_SUCCEEDED'))
    reader.close()
    expect(result.status).toBe('SUCCEEDED')
    expect(checked.filter((t) => t === 'STEP_SUCCEEDED')).toHaveLength(5)
  })

  it('groups concurrent changes into shared commits (group commit)', async () => {
    const o = orchestrator(fileDb())
    const id = await o.createWorkflow('w', parallel(50))
    const before = o.context.journal.commits
    const results = await Promise.all(Array.from({ length: 10 }, () => o.executeWorkflow(id)))
    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    const commits = o.context.journal.commits - before
    const events = (o.context.conn.sqlite.prepare('select count(*) as n from events').get() as { n: number }).n
    // 10 runs × (50 steps × 3 events + 3 run events) = 1530 events; one commit each would be 1530.
    expect(events).toBe(1530)
    expect(commits).toBeLessThan(events / 10)
  })

  it('a long run of actions that settle at once is committed and published as it goes, not at its end', async () => {
    const o = orchestrator(fileDb())
    let heardBeforeLastStep = -1
    const published: number[] = []
    o.context.bus.listen((events) => published.push(events.length))
    o.registerFactory('tick', defineFactory({
      name: 'tick',
      actions: { go: { run: async (_: unknown, ctx) => void (ctx.stepId === 's1499' && (heardBeforeLastStep = heard.length)) } },
    }))
    // 1,500 steps, each starting as soon as the one before settles, with no I/O between them.
    const steps = Array.from({ length: 1500 }, (_, i) => ({ id: `s${i}`, factory: 'tick', action: 'go', ...(i ? { dependsOn: [`s${i - 1}`] } : {}) }))
    const id = await o.createWorkflow('long_chain', { steps })
    const heard: RunEvent[] = []
    const { runId } = await o.startWorkflow(id)
    o.subscribe({ runId }, (e) => void heard.push(e), { after: 0 })
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    // Subscribers heard of earlier steps before the last one started...
    expect(heardBeforeLastStep).toBeGreaterThan(1000)
    // ...because no commit took more than MAX_BATCH (1,000) changes plus the tail of the step being admitted.
    expect(published.length).toBeGreaterThan(3)
    expect(Math.max(...published)).toBeLessThanOrEqual(1010)
  })

  it('the events of one commit, however many, are published with the seqs and fields the log holds', async () => {
    const o = orchestrator(fileDb())
    const published: RunEvent[] = []
    o.context.bus.listen((events) => void published.push(...events))
    // 1,000 steps in commits of up to ~1,000 changes: events written several rows per INSERT, with a remainder.
    const id = await o.createWorkflow('wide', parallel(1000))
    const first = await o.executeWorkflow(id)
    const second = await o.executeWorkflow(id, { n: 1 })
    expect([first.status, second.status]).toEqual(['SUCCEEDED', 'SUCCEEDED'])
    const rows = (o.context.conn.sqlite.prepare('select * from events order by seq').all() as Record<string, unknown>[]).map((r) => ({
      seq: r.seq, type: r.type, runId: r.run_id, workflowId: r.workflow_id, stepId: r.step_id, attempt: r.attempt, status: r.status, at: r.at,
      payload: r.payload === null ? null : JSON.parse(r.payload as string),
    }))
    expect(rows).toHaveLength(2 * (1000 * 3 + 3))
    expect(published.map((e) => ({ ...e, payload: JSON.parse(JSON.stringify(e.payload)) }))).toEqual(rows)
  })

  it('delivers every event exactly once, in order, to a listener slower than the engine', async () => {
    const o = orchestrator(fileDb())
    const id = await o.createWorkflow('w', parallel(40))
    const seen: RunEvent[] = []
    // A tiny buffer forces the stream to fall back to reading the database while the listener lags.
    o.subscribe({}, async (e) => {
      await new Promise((r) => setTimeout(r, 2))
      seen.push(e)
    }, { bufferLimit: 5, chunkSize: 7 })
    const result = await o.executeWorkflow(id)
    const history = await o.getHistory(result.runId)
    // The run finished without waiting for the listener.
    expect(seen.length).toBeLessThan(history.length)
    await until(() => seen.length >= history.length)
    expect(seen.map((e) => e.seq)).toEqual(history.map((e) => e.seq))
  })

  it('takeNow hands out what next would without waiting, mixed with next, for one run among others', async () => {
    const o = orchestrator(fileDb())
    const id = await o.createWorkflow('w', parallel(30))
    const other = o.executeWorkflow(id)
    const mine = await o.startWorkflow(id)
    const stream = o.events({ runId: mine.runId }, { after: 0, untilRunFinished: true })
    const got: number[] = []
    for (let turn = 0; ; turn++) {
      // Alternate: everything at hand without waiting, then one awaited next.
      for (let e = stream.takeNow(); e; e = stream.takeNow()) got.push(e.seq)
      const step = await stream.next()
      if (step.done) break
      got.push(step.value.seq)
      if (turn % 3 === 0) await new Promise((r) => setTimeout(r, 1))
    }
    expect(stream.takeNow()).toBeUndefined()
    await other
    const history = await o.getHistory(mine.runId)
    expect(got).toEqual(history.map((e) => e.seq))
  })

  it('replays the backlog after a cursor, then tails live events, without gaps or duplicates', async () => {
    const o = orchestrator(fileDb())
    const id = await o.createWorkflow('w', { steps: [{ factory: 'control', action: 'noop' }, { factory: 'control', action: 'noop', id: 'second' }] })
    const first = await o.executeWorkflow(id)
    const firstHistory = await o.getHistory(first.runId)
    const cursor = firstHistory[3]!.seq
    const stream = o.events({ workflowId: id }, { after: cursor })
    const second = o.executeWorkflow(id)
    const got: RunEvent[] = []
    for await (const e of stream) {
      got.push(e)
      if (e.type === 'RUN_SUCCEEDED' && e.runId !== first.runId) break
    }
    const r2 = await second
    const all = [...firstHistory.slice(4), ...(await o.getHistory(r2.runId))]
    expect(got.map((e) => e.seq)).toEqual(all.map((e) => e.seq))
  })

  it("'HEAD' skips the past, and a run filter ends at the run's terminal event", async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('w', parallel(3))
    const old = await o.executeWorkflow(id)
    const head = o.events({}, { after: 'HEAD' })
    const { runId } = await o.startWorkflow(id)
    const got: RunEvent[] = []
    for await (const e of head) {
      got.push(e)
      if (e.type === 'RUN_SUCCEEDED') break
    }
    expect(got.every((e) => e.runId === runId)).toBe(true)
    expect(got[0]!.type).toBe('RUN_CREATED')

    const replay: string[] = []
    for await (const e of o.events({ runId: old.runId }, { untilRunFinished: true })) replay.push(e.type)
    expect(replay[0]).toBe('RUN_CREATED')
    expect(replay.at(-1)).toBe('RUN_SUCCEEDED')
    expect(replay).toEqual((await o.getHistory(old.runId)).map((e) => e.type))
  })

  it('progress and log calls become STEP_PROGRESS and STEP_LOG events', async () => {
    const o = orchestrator()
    o.registerFactory('media', defineFactory({
      name: 'media',
      actions: {
        render: {
          run: async (_: unknown, ctx) => {
            ctx.progress(0.25, 'frames')
            ctx.log('halfway', { frames: 5 })
            ctx.progress(7, 'clamped')
            return { ok: true }
          },
        },
      },
    }))
    const id = await o.createWorkflow('w', { steps: [{ factory: 'media', action: 'render' }] })
    const r = await o.executeWorkflow(id)
    const history = await o.getHistory(r.runId)
    const progress = history.filter((e) => e.type === 'STEP_PROGRESS').map((e) => e.payload)
    expect(progress).toEqual([{ fraction: 0.25, message: 'frames' }, { fraction: 1, message: 'clamped' }])
    expect(history.find((e) => e.type === 'STEP_LOG')?.payload).toEqual({ message: 'halfway', data: { frames: 5 } })
  })
})

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5))
}
