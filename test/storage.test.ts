// Storage: migrations from drizzle/ applied on open, durable-but-fast pragmas, and indexes that
// serve the engine's and the API's queries.
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Connection, MIGRATIONS_FOLDER } from '../src/db/connection.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function open(): Connection {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-storage-'))
  dirs.push(dir)
  return new Connection(join(dir, 'nested', 'c.db'))
}

describe('storage', () => {
  it('applies every checked-in migration on open, once', () => {
    const conn = open()
    const applied = conn.sqlite.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number }
    const files = readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith('.sql'))
    expect(applied.n).toBe(files.length)
    const tables = (conn.sqlite.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[]).map((r) => r.name)
    for (const t of ['factories', 'factory_actions', 'templates', 'workflows', 'workflow_versions', 'runs', 'steps', 'step_attempts', 'events', 'artifacts']) {
      expect(tables).toContain(t)
    }
    const path = conn.path
    conn.close()
    // Reopening does not apply them again.
    const again = new Connection(path)
    expect((again.sqlite.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number }).n).toBe(files.length)
    again.close()
  })

  it('runs in WAL mode with synchronous=NORMAL, foreign keys on and a busy timeout', () => {
    const conn = open()
    expect(conn.sqlite.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(conn.sqlite.pragma('synchronous', { simple: true })).toBe(1)
    expect(conn.sqlite.pragma('foreign_keys', { simple: true })).toBe(1)
    expect(conn.sqlite.pragma('busy_timeout', { simple: true })).toBeGreaterThan(0)
    conn.close()
  })

  it('serves events by run and seq, and runs by status and time, from indexes', () => {
    const conn = open()
    const plan = (sql: string) =>
      (conn.sqlite.prepare(`explain query plan ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ')
    expect(plan("select * from events where run_id = 'r' and seq > 10 order by seq limit 100")).toMatch(/USING INDEX events_run_seq/)
    expect(plan("select * from events where workflow_id = 'w' and seq > 10 order by seq limit 100")).toMatch(/USING INDEX events_workflow_seq/)
    expect(plan("select * from runs where status = 'RUNNING' order by created_at desc limit 20")).toMatch(/USING INDEX runs_status_created/)
    expect(plan("select * from runs where workflow_id = 'w' order by created_at desc limit 20")).toMatch(/USING INDEX runs_workflow_created/)
    expect(plan("select * from steps where run_id = 'r'")).toMatch(/USING INDEX steps_run_step/)
    conn.close()
  })

  it('enforces foreign keys', () => {
    const conn = open()
    expect(() =>
      conn.sqlite.prepare("insert into runs (id, workflow_id, workflow_version, status, created_at) values ('r', 'missing', 1, 'PENDING', 0)").run(),
    ).toThrow(/FOREIGN KEY/)
    conn.close()
  })
})
