// Redundant row writes are dropped when a later change of the same commit writes everything they
// would have (Journal.supersede): a step that becomes READY, starts and succeeds in one commit
// updates its row once and inserts its attempt finished. The events are always all written, and
// the rows end exactly as if every write had been made.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { defineFactory, type ProjectOrchestrator } from '../src/index.ts'
import { Connection } from '../src/db/connection.ts'
import { Journal } from '../src/engine/journal.ts'
import { settleStep } from '../src/db/sql/settleStep.ts'
import type { RunEvent } from '../src/engine/interfaces.ts'
import { openedPerTest } from './support/opened.ts'

const opened = openedPerTest()

function orchestrator(): ProjectOrchestrator {
  const o = opened.orchestrator({ database: join(opened.tempDir('conveyor-rows-'), 'c.db') })
  o.registerFactory(
    'work',
    defineFactory({
      name: 'work',
      actions: {
        sync: { run: (input: unknown) => input },
        later: { run: async (input: unknown) => new Promise((resolve) => setTimeout(() => resolve(input), 5)) },
        flaky: {
          retry: { maxAttempts: 2, backoff: 'fixed', initialMs: 0 },
          run: (input: unknown, ctx) => {
            if (ctx.attempt === 1) throw new Error('first attempt fails')
            return input
          },
        },
      },
    }),
  )
  return o
}

const chain = (action: string, n: number) => ({
  parallel: false,
  steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, factory: 'work', action, params: { i } })),
})

interface StepRowCheck {
  step_id: string
  status: string
  attempts: number
  params: string
  output: string
  started_at: number | null
  finished_at: number | null
  completed_order: number | null
  wake_at: number | null
}

function rows(o: ProjectOrchestrator, runId: string) {
  const sqlite = o.context.conn.sqlite
  return {
    steps: sqlite.prepare('SELECT * FROM steps WHERE run_id = ? ORDER BY id').all(runId) as StepRowCheck[],
    attempts: sqlite.prepare('SELECT * FROM step_attempts WHERE run_id = ? ORDER BY id').all(runId) as {
      step_id: string; attempt: number; status: string; error: string | null; started_at: number; finished_at: number | null
    }[],
    events: sqlite.prepare('SELECT type, step_id, attempt FROM events WHERE run_id = ? ORDER BY seq').all(runId) as {
      type: string; step_id: string | null; attempt: number | null
    }[],
  }
}

function expectCompleteRows(o: ProjectOrchestrator, runId: string, n: number, attempts = 1) {
  const { steps, attempts: tries, events } = rows(o, runId)
  expect(steps).toHaveLength(n)
  steps.forEach((s, i) => {
    expect(s).toMatchObject({ step_id: `s${i}`, status: 'SUCCEEDED', attempts, completed_order: i + 1, wake_at: null })
    expect(JSON.parse(s.params)).toEqual({ i })
    expect(JSON.parse(s.output)).toEqual({ i })
    expect(s.started_at).toEqual(expect.any(Number))
    expect(s.finished_at).toBeGreaterThanOrEqual(s.started_at!)
  })
  const succeeded = tries.filter((a) => a.status === 'SUCCEEDED')
  expect(succeeded.map((a) => [a.step_id, a.attempt])).toEqual(steps.map((s) => [s.step_id, attempts]))
  for (const a of succeeded) expect(a.finished_at).toBeGreaterThanOrEqual(a.started_at)
  // Every transition's event is in the log, in order, for every step.
  for (let i = 0; i < n; i++) {
    const types = events.filter((e) => e.step_id === `s${i}`).map((e) => e.type)
    const once = ['STEP_READY', 'STEP_STARTED', 'STEP_SUCCEEDED']
    expect(attempts === 1 ? types : types.slice(-3)).toEqual(once)
  }
}

describe('row writes of a step', () => {
  it('a step that becomes ready, starts and succeeds in one commit leaves complete rows and every event', async () => {
    const o = orchestrator()
    const statements: Record<number, number> = {}
    for (const n of [5, 10]) {
      const id = await o.createWorkflow(`sync${n}`, chain('sync', n))
      const before = o.context.conn.statementCount
      const result = await o.executeWorkflow(id)
      statements[n] = o.context.conn.statementCount - before
      expect(result.status).toBe('SUCCEEDED')
      expectCompleteRows(o, result.runId, n)
    }
    // A chain of synchronous steps runs in one commit: each step costs its 3 events, 1 attempt row
    // and 1 step row update (not 3 step row updates and an attempt INSERT + UPDATE: 8).
    expect((statements[10]! - statements[5]!) / 5).toBeLessThanOrEqual(5)
  })

  it('steps made ready while the commit is full become READY with their start: one step row write each', async () => {
    const o = orchestrator()
    const n = 3000
    const id = await o.createWorkflow('wide', {
      parallel: true, maxParallel: n, steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, factory: 'work', action: 'sync', params: { i } })),
    })
    const before = o.context.conn.statementCount
    const commits = o.context.journal.commits
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    // More steps than one commit holds (Journal.admit): most of them waited for a later commit.
    expect(o.context.journal.commits - commits).toBeGreaterThan(3)
    // 3 events, 1 attempt row, 1 step row update per step, plus the run's few statements: no READY
    // update of its own for the steps that waited.
    expect((o.context.conn.statementCount - before) / n).toBeLessThan(5.1)
    const { steps, attempts, events } = rows(o, result.runId)
    expect(steps.every((s) => s.status === 'SUCCEEDED' && s.attempts === 1 && s.started_at !== null && s.finished_at !== null)).toBe(true)
    expect(steps.map((s) => JSON.parse(s.params).i)).toEqual(steps.map((_, i) => i))
    expect(attempts.filter((a) => a.status === 'SUCCEEDED')).toHaveLength(n)
    const byStep = new Map<string, string[]>()
    for (const e of events) if (e.step_id) byStep.set(e.step_id, [...(byStep.get(e.step_id) ?? []), e.type])
    expect(byStep.size).toBe(n)
    for (const types of byStep.values()) expect(types).toEqual(['STEP_READY', 'STEP_STARTED', 'STEP_SUCCEEDED'])
  })

  it('an attempt that ends in a later commit writes its RUNNING rows first, then finishes them', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('later', chain('later', 3))
    const seen: { type: string; stepId: string | null; status: string | null }[] = []
    const reader = o.context.conn.sqlite.prepare('SELECT status, attempts, started_at FROM steps WHERE run_id = ? AND step_id = ?')
    const attemptRow = o.context.conn.sqlite.prepare('SELECT status FROM step_attempts WHERE run_id = ? AND step_id = ? AND attempt = 1')
    o.subscribe({}, (e: RunEvent) => {
      if (e.type !== 'STEP_STARTED') return
      // Published after its commit: the RUNNING step row and attempt row are there.
      const row = reader.get(e.runId, e.stepId) as { status: string; attempts: number; started_at: number }
      seen.push({ type: e.type, stepId: e.stepId, status: row.status })
      expect(row).toMatchObject({ status: 'RUNNING', attempts: 1, started_at: expect.any(Number) })
      expect(attemptRow.get(e.runId, e.stepId)).toEqual({ status: 'RUNNING' })
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(seen.map((s) => s.stepId)).toEqual(['s0', 's1', 's2'])
    expectCompleteRows(o, result.runId, 3)
  })

  it('a failed attempt and its retry keep both attempt rows', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('flaky', chain('flaky', 2))
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expectCompleteRows(o, result.runId, 2, 2)
    const { attempts } = rows(o, result.runId)
    // Each step's attempts in id order (as the API lists them); across steps, a finished attempt's
    // row is inserted at the end of its commit (Journal.recordRow), after rows other steps' writes inserted.
    const byStep = [...attempts].sort((a, b) => a.step_id.localeCompare(b.step_id))
    expect(byStep.map((a) => [a.step_id, a.attempt, a.status])).toEqual([
      ['s0', 1, 'FAILED'], ['s0', 2, 'SUCCEEDED'], ['s1', 1, 'FAILED'], ['s1', 2, 'SUCCEEDED'],
    ])
  })
})

describe('settling UPDATE by row id', () => {
  it('finds every step row of a new run by its id, not through steps_run_step', async () => {
    const o = orchestrator()
    const conn = o.context.conn
    const texts: string[] = []
    const statement = conn.statement.bind(conn)
    conn.statement = (sql: string) => (texts.push(sql), statement(sql))
    const wide = await o.createWorkflow('wide', {
      parallel: true, steps: Array.from({ length: 250 }, (_, i) => ({ id: `s${i}`, factory: 'work', action: i % 2 ? 'sync' : 'later', params: { i } })),
    })
    const results = []
    for (const id of [wide, await o.createWorkflow('seq', chain('later', 3))]) results.push(await o.executeWorkflow(id))
    expect(results.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED'])
    const settles = texts.filter((t) => t.includes('completed_order = ?'))
    expect(settles.length).toBe(253)
    // Only the by-id form ran: each hint matched its run and step (a wrong one falls back to the key).
    expect(settles.every((t) => t.includes('WHERE id = ? AND run_id = ? AND step_id = ?'))).toBe(true)
    expectCompleteRows(o, results[1]!.runId, 3)
    const wideRows = rows(o, results[0]!.runId).steps
    expect(wideRows.map((r) => [r.step_id, r.status, JSON.parse(r.output).i])).toEqual(wideRows.map((_, i) => [`s${i}`, 'SUCCEEDED', i]))
  })

  it('a wrong id hint updates nothing else: the row is found by run and step', async () => {
    const o = orchestrator()
    const conn = o.context.conn
    const result = await o.executeWorkflow(await o.createWorkflow('two', chain('sync', 2)))
    const row = (stepId: string) => conn.sqlite.prepare('SELECT id, status, error FROM steps WHERE run_id = ? AND step_id = ?').get(result.runId, stepId) as { id: number; status: string; error: string | null }
    const s0 = row('s0')
    const s1 = row('s1')
    conn.transaction(() => settleStep(conn, { runId: result.runId, stepId: 's1', status: 'FAILED', error: 'moved', at: 1, rowId: s0.id }))
    expect(row('s0')).toEqual(s0)
    expect(row('s1')).toEqual({ id: s1.id, status: 'FAILED', error: 'moved' })
  })
})

describe('Journal.supersede', () => {
  function journal() {
    const conn = new Connection(':memory:')
    conn.sqlite.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)')
    const committed: RunEvent[][] = []
    const errors: Error[] = []
    const j = new Journal(conn, (events) => committed.push(events), (e) => errors.push(e))
    const put = (k: string, v: string) => () => void conn.sqlite.prepare('INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v').run(k, v)
    const table = () => conn.sqlite.prepare('SELECT k, v FROM t ORDER BY k').all()
    const event = (type: string) => ({ type, runId: 'r', workflowId: 'w', stepId: null, attempt: null, status: null, at: 1, payload: {} })
    return { conn, j, put, table, event, committed, errors }
  }

  it('drops the row write of an entry still queued, never its event', () => {
    const { conn, j, put, table, event, committed } = journal()
    const ready = j.record(put('a', 'ready'), event('STEP_READY'))
    expect(j.supersede(ready)).toBe(true)
    j.record(put('b', 'started'), event('STEP_STARTED'))
    j.flush()
    expect(table()).toEqual([{ k: 'b', v: 'started' }])
    expect(committed.flat().map((e) => e.type)).toEqual(['STEP_READY', 'STEP_STARTED'])
    expect(committed.flat().map((e) => e.seq)).toEqual([1, 2])
    conn.close()
  })

  it('keeps the write of an entry already committed', () => {
    const { conn, j, put, table, event } = journal()
    const ready = j.record(put('a', 'ready'), event('STEP_READY'))
    j.flush()
    expect(j.supersede(ready)).toBe(false)
    expect(table()).toEqual([{ k: 'a', v: 'ready' }])
    expect(j.supersede(undefined)).toBe(false)
    conn.close()
  })

  it('a batch committed entry by entry (one change refused) runs every write, superseded or not', () => {
    const { conn, j, put, table, event, committed, errors } = journal()
    const ready = j.record(put('a', 'ready'), event('STEP_READY'))
    expect(j.supersede(ready)).toBe(true)
    j.record(put('b', 'started'), event('STEP_STARTED'))
    j.record(() => void conn.sqlite.prepare('INSERT INTO missing_table VALUES (1)').run(), event('BROKEN'))
    j.flush()
    expect(errors.length).toBeGreaterThan(0)
    expect(table()).toEqual([{ k: 'a', v: 'ready' }, { k: 'b', v: 'started' }])
    expect(committed.flat().map((e) => e.type)).toEqual(['STEP_READY', 'STEP_STARTED'])
    conn.close()
  })
})
