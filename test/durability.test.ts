// Durability: a run survives SIGKILL of its process at arbitrary moments and finishes after a
// restart with no step lost, no duplicate terminal event, and a strictly increasing seq.
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import Database from 'better-sqlite3'
import { ProjectOrchestrator } from '../src/index.ts'
import { workFactory } from './fixtures/crash-workflow.ts'

const WORKER = new URL('./fixtures/crash-worker.ts', import.meta.url).pathname
const dirs: string[] = []
const children: ChildProcess[] = []

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL')
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-crash-'))
  dirs.push(dir)
  return join(dir, 'conveyor.db')
}

/** Starts the worker and resolves with the first JSON line it prints. */
function startWorker(db: string, mode: 'start' | 'resume'): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, db, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', (line) => resolve({ child, line: JSON.parse(line) }))
    child.once('exit', (code) => reject(new Error(`worker exited early with ${code}`)))
  })
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

/** Reads the database from outside (as another process would) until `ready` holds. */
async function waitFor<T>(db: string, ready: (sqlite: Database.Database) => T | false | undefined): Promise<T> {
  for (;;) {
    const sqlite = new Database(db, { readonly: true, fileMustExist: true })
    try {
      const value = ready(sqlite)
      if (value !== undefined && value !== false) return value
    } finally {
      sqlite.close()
    }
    await new Promise((r) => setTimeout(r, 10))
  }
}

function succeededSteps(sqlite: Database.Database, runId: string): number {
  return (sqlite.prepare("select count(*) as n from steps where run_id = ? and status = 'SUCCEEDED'").get(runId) as { n: number }).n
}

// Hang bound from the work: each test starts up to three worker processes (tsx start-up: seconds of
// CPU, a minute or more each on a loaded machine with the suite's other files beside it).
const WORKERS_MS = 600_000

describe('crash safety', () => {
  it('finishes a run after SIGKILLs at several points, each step succeeding exactly once', async () => {
    const db = tempDb()
    const { child, line } = await startWorker(db, 'start')
    const runId = line.runId as string
    // Kill mid-chain, then mid-fan-out, then while the retry timer waits; restart in between.
    await waitFor(db, (s) => succeededSteps(s, runId) >= 4)
    await kill(child)
    let next = await startWorker(db, 'resume')
    // Mid-fan-out: while its members (1 s each) run. Not "after n steps": the members end together,
    // and a kill just after them would interrupt the timer's first attempt instead.
    await waitFor(db, (s) => (s.prepare("select count(*) as n from steps where run_id = ? and step_id like 'fan.%' and status = 'RUNNING'").get(runId) as { n: number }).n > 0)
    await kill(next.child)
    next = await startWorker(db, 'resume')
    // Killed while the retry timer waits. On a machine slow enough that the previous process got past
    // the timer before its kill (or this one past it before a look), the kill comes after it: the run
    // must still end the same, so do not wait for a state that is gone.
    const timer = await waitFor(db, (s) => {
      const row = s.prepare("select status from steps where run_id = ? and step_id = 'timer'").get(runId) as { status: string }
      return row.status === 'RETRY_SCHEDULED' || row.status === 'SUCCEEDED' ? row.status : undefined
    })
    if (timer !== 'RETRY_SCHEDULED') console.log('durability: the kill came after the retry timer had fired')
    await kill(next.child)

    // The last restart happens in this process, through the library API.
    const orchestrator = new ProjectOrchestrator({ database: db })
    orchestrator.registerFactory('work', workFactory)
    const result = await orchestrator.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    const stepIds = Object.keys(result.steps)
    expect(stepIds).toHaveLength(12 + 1 + 6 + 1 + 4)
    for (const id of stepIds) expect(result.steps[id]!.status, id).toBe('SUCCEEDED')

    const history = await orchestrator.getHistory(runId)
    const seqs = history.map((e) => e.seq)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!)
    expect(history.filter((e) => e.type === 'RUN_SUCCEEDED')).toHaveLength(1)
    expect(history.filter((e) => e.type.startsWith('RUN_') && ['RUN_FAILED', 'RUN_CANCELLED'].includes(e.type))).toHaveLength(0)
    for (const id of stepIds) {
      expect(history.filter((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === id), id).toHaveLength(1)
    }
    // The durable retry timer fired once: the flaky step ran exactly two counted attempts to success.
    expect(result.steps.timer!.output).toMatchObject({ attempt: expect.any(Number) })
    expect(history.filter((e) => e.type === 'STEP_RETRY_SCHEDULED' && e.stepId === 'timer')).toHaveLength(1)
    // Every attempt of every step carries the same idempotency key.
    for (const id of stepIds.filter((s) => s.startsWith('s'))) {
      expect((result.steps[id]!.output as { key: string }).key).toBe(`${runId}:${id}`)
    }
    await orchestrator.close()
  }, WORKERS_MS)

  it('re-runs a step interrupted mid-attempt as a new attempt and records the interruption', async () => {
    const db = tempDb()
    const { child, line } = await startWorker(db, 'start')
    const runId = line.runId as string
    // Wait until the fan-out group is running: its members take 1 s each, long enough to be caught on a busy machine.
    await waitFor(db, (s) => {
      const row = s.prepare("select count(*) as n from steps where run_id = ? and step_id like 'fan.%' and status = 'RUNNING'").get(runId) as { n: number }
      return row.n > 0
    })
    await kill(child)
    const sqlite = new Database(db, { readonly: true })
    const interrupted = sqlite
      .prepare("select step_id as stepId, attempts from steps where run_id = ? and status = 'RUNNING' and kind = 'action'")
      .all(runId) as { stepId: string; attempts: number }[]
    sqlite.close()
    expect(interrupted.length).toBeGreaterThan(0)

    const orchestrator = new ProjectOrchestrator({ database: db })
    orchestrator.registerFactory('work', workFactory)
    const result = await orchestrator.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    const attempts = orchestrator.context.conn.sqlite
      .prepare('select step_id as stepId, attempt, status from step_attempts where run_id = ? order by id')
      .all(runId) as { stepId: string; attempt: number; status: string }[]
    for (const { stepId, attempts: before } of interrupted) {
      expect(result.steps[stepId]!.attempts).toBe(before + 1)
      const rows = attempts.filter((a) => a.stepId === stepId)
      expect(rows.map((r) => r.status)).toEqual([...Array(before - 1).fill('FAILED'), 'INTERRUPTED', 'SUCCEEDED'])
    }
    await orchestrator.close()
  }, WORKERS_MS)

  it('resumes runs whose factory is registered only after the restart', async () => {
    const db = tempDb()
    const { child, line } = await startWorker(db, 'start')
    const runId = line.runId as string
    await waitFor(db, (s) => succeededSteps(s, runId) >= 2)
    await kill(child)
    const orchestrator = new ProjectOrchestrator({ database: db })
    // Recovery begins before the factory exists: ready steps wait for it instead of failing.
    orchestrator.coordinator.recover()
    await new Promise((r) => setTimeout(r, 30))
    expect(orchestrator.coordinator.isActive(runId)).toBe(true)
    orchestrator.registerFactory('work', workFactory)
    const result = await orchestrator.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    await orchestrator.close()
  }, WORKERS_MS)
})
