// Retention (DESIGN.md §3 "No history cap"): finished runs older than `retention.maxAgeMs` are
// pruned with their steps, step attempts, events, artifact rows and artifact files, a batch per
// transaction; newer runs and runs still in flight are kept, and the engine runs on meanwhile.
// The clock is faked (Date only; timers stay real) so that "old" is exact, not a matter of timing.
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { ProjectOrchestrator, defineFactory } from '../src/index.ts'
import type { RetentionConfig } from '../src/engine/retention.ts'
import { latch, until } from './support/barrier.ts'
import { openedPerTest } from './support/opened.ts'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 1)

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(T0)
})

const opened = openedPerTest({
  before: () => vi.useRealTimers(),
})

/** An orchestrator on a database file in a fresh folder (artifacts go beside it), with `files`. */
function setup(retention: Partial<RetentionConfig> = {}) {
  const dir = opened.tempDir('conveyor-retention-')
  const o = opened.orchestrator({ database: join(dir, 'conveyor.db'), retention: { maxAgeMs: DAY, intervalMs: 10 * DAY, ...retention } })
  const gate = latch()
  o.registerFactory('files', defineFactory({
    name: 'files',
    actions: {
      // Stores a small text file as an artifact of the step.
      make: {
        input: z.object({ text: z.string() }),
        run: ({ text }, ctx) => ctx.artifact({ name: `${ctx.stepId.replace(/[^\w.-]/g, '_')}.txt`, mimeType: 'text/plain', data: text }),
      },
      hold: { input: z.object({}), run: async () => (await gate.wait(), { held: true }) },
    },
  }))
  return { o, gate, dir }
}

const twoFiles = {
  steps: [
    { id: 'a', factory: 'files', action: 'make', params: { text: 'alpha' } },
    { id: 'b', factory: 'files', action: 'make', params: { text: '{{ input.text }}' } },
  ],
}

/** Rows a run owns, per table, and the paths of its artifact files. */
function footprint(o: ProjectOrchestrator, runId: string) {
  const db = o.context.conn.sqlite
  const count = (table: string) => (db.prepare(`select count(*) as n from ${table} where ${table === 'runs' ? 'id' : 'run_id'} = ?`).get(runId) as { n: number }).n
  return {
    runs: count('runs'),
    steps: count('steps'),
    step_attempts: count('step_attempts'),
    events: count('events'),
    artifacts: count('artifacts'),
    paths: (db.prepare('select path from artifacts where run_id = ?').all(runId) as { path: string }[]).map((r) => r.path),
  }
}

async function runs(o: ProjectOrchestrator, workflowId: string, n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const r = await o.executeWorkflow(workflowId, { text: `run ${i}` })
    expect(r.status).toBe('SUCCEEDED')
    ids.push(r.runId)
  }
  return ids
}

describe('retention', () => {
  it('prunes finished runs older than maxAgeMs with steps, attempts, events, artifact rows and files; keeps newer and in-flight runs', async () => {
    const { o, gate } = setup()
    const wf = await o.createWorkflow('files', twoFiles)
    const holding = await o.createWorkflow('holding', { steps: [{ id: 'wait', factory: 'files', action: 'hold', params: {} }] })

    // Day 0: three runs finish, one starts and keeps running; a FAILED run finishes too.
    const old = await runs(o, wf, 3)
    const failedWf = await o.createWorkflow('fails', { steps: [{ id: 'bad', factory: 'files', action: 'make', params: { text: '{{ 1 }}' } }] })
    const failed = await o.executeWorkflow(failedWf)
    expect(failed.status).toBe('FAILED')
    const { runId: inFlight } = await o.startWorkflow(holding)
    // Day 10: two more runs finish.
    vi.setSystemTime(T0 + 10 * DAY)
    const fresh = await runs(o, wf, 2)

    const before = Object.fromEntries([...old, failed.runId, inFlight, ...fresh].map((id) => [id, footprint(o, id)]))
    for (const id of [...old, ...fresh]) {
      expect(before[id]).toMatchObject({ runs: 1, steps: 2, step_attempts: 2, artifacts: 2 })
      expect(before[id]!.events).toBeGreaterThan(5)
      for (const path of before[id]!.paths) expect(existsSync(path), path).toBe(true)
    }

    const pruned = await o.retention!.prune(T0 + 10 * DAY)
    expect(pruned).toBe(4)

    for (const id of [...old, failed.runId]) {
      expect(footprint(o, id), id).toEqual({ runs: 0, steps: 0, step_attempts: 0, events: 0, artifacts: 0, paths: [] })
      // The files and the run's artifact folder are gone.
      for (const path of before[id]!.paths) {
        expect(existsSync(path), path).toBe(false)
        expect(existsSync(dirname(path))).toBe(false)
      }
      await expect(o.getRun(id)).rejects.toThrow(/not found/)
    }
    // Newer runs and the run in flight are untouched.
    for (const id of [...fresh, inFlight]) {
      expect(footprint(o, id), id).toEqual(before[id])
      for (const path of before[id]!.paths) expect(existsSync(path), path).toBe(true)
    }
    expect(o.coordinator.isActive(inFlight)).toBe(true)

    // The run in flight finishes now (day 10): it is new, so a second prune keeps it.
    gate.open()
    expect((await o.waitForRun(inFlight)).status).toBe('SUCCEEDED')
    expect(await o.retention!.prune(T0 + 10 * DAY)).toBe(0)
    expect(footprint(o, inFlight).runs).toBe(1)
    // Eleven days on, everything that is left is old.
    expect(await o.retention!.prune(T0 + 21 * DAY)).toBe(3)
    expect(o.catalog.runs({ limit: 10 })).toHaveLength(0)
  })

  it('runs on its own every intervalMs; an interval past the timer limit does not degrade into a busy loop', async () => {
    const { o } = setup({ intervalMs: 365 * DAY })
    const spy = vi.spyOn(o.retention!, 'prune')
    // Node turns a delay above 2^31-1 ms into 1 ms: uncapped, this pause would see dozens of prunes.
    await new Promise((r) => setTimeout(r, 50))
    expect(spy).not.toHaveBeenCalled()

    const { o: o2 } = setup({ intervalMs: 5 })
    const wf = await o2.createWorkflow('files', twoFiles)
    const [old] = await runs(o2, wf, 1)
    vi.setSystemTime(T0 + 2 * DAY)
    // The timer prunes with the (fake) clock's now: the run is two days old.
    await until(() => footprint(o2, old!).runs === 0)
    expect(footprint(o2, old!)).toEqual({ runs: 0, steps: 0, step_attempts: 0, events: 0, artifacts: 0, paths: [] })
  })

  it('works in batches: batchSize 2 with 5 old runs deletes 2 per transaction and yields in between, then all 5', async () => {
    const { o } = setup({ batchSize: 2 })
    const wf = await o.createWorkflow('files', twoFiles)
    const old = await runs(o, wf, 5)
    const left = () => old.filter((id) => footprint(o, id).runs === 1).length
    expect(left()).toBe(5)
    const pruning = o.retention!.prune(T0 + 2 * DAY)
    // The first batch is deleted before prune yields to the event loop; the rest come later.
    expect(left()).toBe(3)
    expect(await pruning).toBe(5)
    expect(left()).toBe(0)
    for (const id of old) expect(footprint(o, id)).toEqual({ runs: 0, steps: 0, step_attempts: 0, events: 0, artifacts: 0, paths: [] })
  })

  it('the engine keeps running runs while pruning: a run started before a prune succeeds with its artifacts', async () => {
    const { o } = setup({ batchSize: 1 })
    const wf = await o.createWorkflow('files', twoFiles)
    const old = await runs(o, wf, 5)
    vi.setSystemTime(T0 + 3 * DAY)
    const many = await o.createWorkflow('many', {
      steps: [{ id: 'f', factory: 'files', action: 'make', forEach: Array.from({ length: 20 }, (_, i) => `file ${i}`), params: { text: '{{ item }}' } }],
    })
    const { runId } = await o.startWorkflow(many)
    const pruning = o.retention!.prune(T0 + 3 * DAY)
    const [pruned, result] = await Promise.all([pruning, o.waitForRun(runId)])
    expect(pruned).toBe(5)
    expect(result.status).toBe('SUCCEEDED')
    expect((result.steps.f!.output as { name: string }[]).map((a) => a.name)).toEqual(Array.from({ length: 20 }, (_, i) => `f_${i}_.txt`))
    const kept = footprint(o, runId)
    expect(kept).toMatchObject({ runs: 1, steps: 21, step_attempts: 20, artifacts: 20 })
    for (const path of kept.paths) expect(existsSync(path)).toBe(true)
    for (const id of old) expect(footprint(o, id).runs).toBe(0)
    // A prune while the run is still in flight never touches it, however old its start.
    const { o: o2, gate } = setup()
    const holding = await o2.createWorkflow('holding', { steps: [{ id: 'wait', factory: 'files', action: 'hold', params: {} }] })
    const { runId: held } = await o2.startWorkflow(holding)
    await until(() => o2.coordinator.readResult(held).steps.wait!.status === 'RUNNING')
    expect(await o2.retention!.prune(T0 + 100 * DAY)).toBe(0)
    gate.open()
    expect((await o2.waitForRun(held)).status).toBe('SUCCEEDED')
  })
})

describe('retention and sub-workflows', () => {
  it('prunes a parent run together with its child runs, and never a child alone', async () => {
    const { o } = setup()
    const wf = await o.createWorkflow('parent', {
      steps: [{ id: 'sub', workflow: { steps: [{ id: 'a', factory: 'files', action: 'make', params: { text: 'child' } }] }, params: {} }],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    const [child] = o.catalog.childRunsOf(result.runId)
    expect(child).toBeDefined()
    const count = (table: string, runId: string) =>
      (o.context.conn.sqlite.prepare(`select count(*) as n from ${table} where run_id = ?`).get(runId) as { n: number }).n
    const runs = () => (o.context.conn.sqlite.prepare('select id from runs').all() as { id: string }[]).map((r) => r.id).sort()

    // Make the child look old on its own: it is not pruned while its parent is kept.
    o.context.conn.sqlite.prepare('update runs set finished_at = ? where id = ?').run(T0 - 10 * DAY, child!.id)
    expect(await o.retention!.prune(T0 + DAY / 2)).toBe(0)
    expect(runs()).toEqual([result.runId, child!.id].sort())

    // Once the parent is old enough, both go, with their events and steps.
    expect(await o.retention!.prune(T0 + 2 * DAY)).toBe(1)
    expect(runs()).toEqual([])
    for (const id of [result.runId, child!.id]) {
      expect(count('events', id)).toBe(0)
      expect(count('steps', id)).toBe(0)
    }
  })
})

describe('retention of a large run', () => {
  /** A finished run of twoFiles that owns `events` more events and `steps` more steps and attempts. */
  async function bigRun(o: ProjectOrchestrator, events: number, steps: number) {
    const wf = await o.createWorkflow('files', twoFiles)
    const { runId } = await o.executeWorkflow(wf, { text: 'big' })
    const db = o.context.conn.sqlite
    const payload = JSON.stringify({ note: 'x'.repeat(200) })
    const insertEvent = db.prepare(`insert into events (run_id, workflow_id, step_id, type, status, at, payload) values (?, ?, 's', 'STEP_LOG', null, ?, ?)`)
    const insertStep = db.prepare(`insert into steps (run_id, step_id, kind, status, params, output) values (?, ?, 'action', 'SUCCEEDED', ?, ?)`)
    const insertAttempt = db.prepare(`insert into step_attempts (run_id, step_id, attempt, status, started_at) values (?, ?, 1, 'SUCCEEDED', ?)`)
    db.transaction(() => {
      for (let i = 0; i < events; i++) insertEvent.run(runId, wf, T0, payload)
      for (let i = 0; i < steps; i++) {
        insertStep.run(runId, `extra${i}`, payload, payload)
        insertAttempt.run(runId, `extra${i}`, T0)
      }
    })()
    return runId
  }

  const pragma = (o: ProjectOrchestrator, name: string) => o.context.conn.sqlite.pragma(name, { simple: true }) as number

  /**
   * Prunes with a counter that a setImmediate loop bumps on every turn of the event loop, and the
   * counter's value at each transaction the prune opens.
   */
  async function pruneCountingTurns(o: ProjectOrchestrator, now: number) {
    const conn = o.context.conn
    const turnsAt: number[] = []
    let turns = 0
    let ticking = true
    const tick = () => {
      turns++
      if (ticking) setImmediate(tick)
    }
    setImmediate(tick)
    const transaction = conn.transaction
    conn.transaction = <T>(fn: () => T): T => (turnsAt.push(turns), transaction.call(conn, fn) as T)
    try {
      return { pruned: await o.retention!.prune(now), turnsAt }
    } finally {
      conn.transaction = transaction
      ticking = false
    }
  }

  it('a run with 50,000 events is pruned in bounded transactions with turns of the event loop between them; the file shrinks and the WAL is truncated', async () => {
    const { o, dir } = setup({ rowBatchSize: 2_000, vacuumPages: 256 })
    const path = join(dir, 'conveyor.db')
    const runId = await bigRun(o, 50_000, 2_000)
    expect(pragma(o, 'auto_vacuum')).toBe(2)
    const pagesBefore = pragma(o, 'page_count')
    const rows = footprint(o, runId)
    expect(rows.events).toBeGreaterThan(50_000)

    const { pruned, turnsAt } = await pruneCountingTurns(o, T0 + 2 * DAY)
    expect(pruned).toBe(1)
    expect(footprint(o, runId)).toEqual({ runs: 0, steps: 0, step_attempts: 0, events: 0, artifacts: 0, paths: [] })
    // 54,000+ rows at 2,000 a transaction: at least 27 delete transactions, then vacuum steps of
    // 256 pages; the event loop turned between every two of them.
    const { stats } = o.retention!
    expect(stats.batches).toBeGreaterThanOrEqual(27)
    expect(stats.rows).toBe(rows.events + rows.steps + rows.step_attempts + rows.artifacts + 1)
    expect(stats.vacuumSteps).toBeGreaterThan(5)
    expect(turnsAt.length).toBe(stats.batches + stats.vacuumSteps)
    for (let i = 1; i < turnsAt.length; i++) expect(turnsAt[i], `transaction ${i}`).toBeGreaterThan(turnsAt[i - 1]!)

    // The freed pages went back to the filesystem, and the WAL the deletes grew is empty.
    expect(pragma(o, 'freelist_count')).toBeLessThan(16)
    expect(pragma(o, 'page_count')).toBeLessThan(pagesBefore / 4)
    expect(statSync(path).size).toBe(pragma(o, 'page_count') * pragma(o, 'page_size'))
    expect(statSync(`${path}-wal`).size).toBe(0)
    expect(stats.walTruncations).toBe(1)
    expect(o.context.conn.sqlite.pragma('integrity_check', { simple: true })).toBe('ok')
    console.log(`retention: ${stats.rows} rows in ${stats.batches} transactions, ${stats.pagesFreed} pages freed in ${stats.vacuumSteps} steps; pages ${pagesBefore} -> ${pragma(o, 'page_count')}, WAL ${statSync(`${path}-wal`).size} bytes`)
  })

  it('with WAL checkpoints on the worker thread, the truncation runs there', async () => {
    const { o, dir } = setup({ rowBatchSize: 5_000 })
    const path = join(dir, 'conveyor.db')
    const runId = await bigRun(o, 20_000, 0)
    o.context.conn.startBackgroundCheckpoints()
    const checkpointer = o.context.conn.checkpointer!
    const truncate = vi.spyOn(checkpointer, 'truncate')
    expect(await o.retention!.prune(T0 + 2 * DAY)).toBe(1)
    expect(footprint(o, runId).events).toBe(0)
    expect(truncate).toHaveBeenCalledTimes(1)
    await expect(truncate.mock.results[0]!.value).resolves.toMatchObject({ busy: false })
    expect(statSync(`${path}-wal`).size).toBe(0)
    expect(pragma(o, 'freelist_count')).toBeLessThan(16)
  })
})
