// Peer: the one-transaction-per-transition SQLite ceiling. A plain synchronous better-sqlite3 loop
// on a file (WAL + synchronous=NORMAL) with the same table shape as Conveyor's steps and events:
// each transition is one transaction doing UPDATE step + INSERT event. A step goes through the
// same three transitions Conveyor records for it (STEP_READY, STEP_STARTED, STEP_SUCCEEDED), so
// steps/s = transitions/s ÷ 3. No orchestration at all: an upper bound for committing each
// transition on its own.
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { now } from '../stats.ts'

export const TRANSITIONS_PER_STEP = 3

export interface CeilingResult {
  steps: number
  transitions: number
  ms: number
  transitionsPerSec: number
  stepsPerSec: number
}

export function sqliteCeiling(o: { runs: number; stepsPerRun: number }): CeilingResult {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-ceiling-'))
  const db = new Database(join(dir, 'ceiling.db'))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.exec(`
      CREATE TABLE steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL, parent_step_id TEXT,
        kind TEXT NOT NULL, factory TEXT, action TEXT, status TEXT NOT NULL, params TEXT, output TEXT, error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, wake_at INTEGER, completed_order INTEGER, started_at INTEGER, finished_at INTEGER);
      CREATE UNIQUE INDEX steps_run_step ON steps (run_id, step_id);
      CREATE INDEX steps_status_wake ON steps (status, wake_at);
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, workflow_id TEXT NOT NULL, step_id TEXT,
        attempt INTEGER, type TEXT NOT NULL, status TEXT, at INTEGER NOT NULL, payload TEXT);
      CREATE INDEX events_run_seq ON events (run_id, seq);
      CREATE INDEX events_workflow_seq ON events (workflow_id, seq);
    `)
    const insertStep = db.prepare("INSERT INTO steps (run_id, step_id, kind, factory, action, status) VALUES (?, ?, 'action', 'control', 'noop', 'PENDING')")
    const runIds = Array.from({ length: o.runs }, (_, r) => `run_${r.toString().padStart(8, '0')}`)
    db.transaction(() => {
      for (const run of runIds) for (let s = 0; s < o.stepsPerRun; s++) insertStep.run(run, `s${s}`)
    })()
    const ready = db.prepare("UPDATE steps SET status = 'READY', params = ?, wake_at = NULL WHERE run_id = ? AND step_id = ?")
    const started = db.prepare("UPDATE steps SET status = 'RUNNING', attempts = 1, started_at = ? WHERE run_id = ? AND step_id = ?")
    const settled = db.prepare("UPDATE steps SET status = 'SUCCEEDED', output = ?, finished_at = ?, completed_order = ? WHERE run_id = ? AND step_id = ?")
    const event = db.prepare('INSERT INTO events (run_id, workflow_id, step_id, attempt, type, status, at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    const tx = (fn: () => void) => db.transaction(fn).immediate()
    const t0 = now()
    for (const run of runIds) {
      for (let s = 0; s < o.stepsPerRun; s++) {
        const step = `s${s}`
        const params = `{"i":${s}}`
        tx(() => {
          ready.run(params, run, step)
          event.run(run, 'wf_bench', step, null, 'STEP_READY', 'READY', Date.now(), '{}')
        })
        tx(() => {
          const at = Date.now()
          started.run(at, run, step)
          event.run(run, 'wf_bench', step, 1, 'STEP_STARTED', 'RUNNING', at, `{"params":${params}}`)
        })
        tx(() => {
          const at = Date.now()
          settled.run(params, at, s + 1, run, step)
          event.run(run, 'wf_bench', step, 1, 'STEP_SUCCEEDED', 'SUCCEEDED', at, `{"output":${params},"durationMs":0}`)
        })
      }
    }
    const ms = now() - t0
    const steps = o.runs * o.stepsPerRun
    const transitions = steps * TRANSITIONS_PER_STEP
    return { steps, transitions, ms, transitionsPerSec: (transitions / ms) * 1000, stepsPerSec: (steps / ms) * 1000 }
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
