// Storage: migrations from drizzle/ applied on open, durable-but-fast pragmas, and indexes that
// serve the engine's and the API's queries.
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Connection, MIGRATIONS_FOLDER } from '../src/db/connection.ts'
import { listRuns } from '../src/db/sql/catalog.ts'

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

  it('creates databases with incremental auto-vacuum, and switches one created before it (auto_vacuum NONE) once, keeping its rows', () => {
    const fresh = open()
    expect(fresh.sqlite.pragma('auto_vacuum', { simple: true })).toBe(2)
    fresh.close()

    // A database as earlier versions made it: every migration, some rows, and pages freed by a delete.
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-storage-'))
    dirs.push(dir)
    const path = join(dir, 'old.db')
    const old = new Database(path)
    old.pragma('journal_mode = WAL')
    migrate(drizzle(old), { migrationsFolder: MIGRATIONS_FOLDER })
    old.prepare(`insert into factories (name, registered_at) values ('kept', 1)`).run()
    old.exec(`create table filler (v text); with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000) insert into filler select printf('%.500c', 'x') from n`)
    old.exec('drop table filler')
    expect(old.pragma('auto_vacuum', { simple: true })).toBe(0)
    expect(old.pragma('freelist_count', { simple: true })).toBeGreaterThan(100)
    old.close()

    const migrated = new Connection(path)
    expect(migrated.sqlite.pragma('auto_vacuum', { simple: true })).toBe(2)
    // The VACUUM that switched it also dropped the free pages, and its WAL was emptied.
    expect(migrated.sqlite.pragma('freelist_count', { simple: true })).toBe(0)
    expect(statSync(`${path}-wal`).size).toBe(0)
    expect(migrated.sqlite.prepare('select name from factories').all()).toEqual([{ name: 'kept' }])
    expect(migrated.sqlite.pragma('integrity_check', { simple: true })).toBe('ok')
    migrated.close()
    const again = new Connection(path)
    expect(again.sqlite.pragma('auto_vacuum', { simple: true })).toBe(2)
    again.close()
  })

  it('serves events by run and seq, and runs by status and time, from indexes', () => {
    const conn = open()
    const plan = (sql: string) =>
      (conn.sqlite.prepare(`explain query plan ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ')
    expect(plan("select * from events where run_id = 'r' and seq > 10 order by seq limit 100")).toMatch(/USING INDEX events_run_seq/)
    expect(plan("select * from events where workflow_id = 'w' and seq > 10 order by seq limit 100")).toMatch(/USING INDEX events_workflow_seq/)
    expect(plan("select * from steps where run_id = 'r'")).toMatch(/USING INDEX steps_run_(step|order)/)
    // A page of a run's steps (Run.steps(first, after)) reads a range in order and stops: no sort.
    const stepsPage = plan("select * from steps where run_id = 'r' and id > 10 order by id limit 50")
    expect(stepsPage).toMatch(/USING INDEX steps_run_order/)
    expect(stepsPage).not.toMatch(/TEMP B-TREE/)
    conn.close()
  })

  it('a filtered page of runs walks an index in page order: no sort of every run with that status or workflow', () => {
    const conn = open()
    // The statements the API's runs pages and a workflow's latest run actually run, as prepared.
    const prepared: string[] = []
    const statement = conn.statement.bind(conn)
    conn.statement = (sql: string) => (prepared.push(sql), statement(sql))
    const plan = (sql: string) => {
      const params = Array.from(sql.matchAll(/\?/g), () => 'x')
      return (conn.sqlite.prepare(`explain query plan ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join(' | ')
    }
    const cases: [Parameters<typeof listRuns>[1], RegExp][] = [
      [{ limit: 21, status: 'SUCCEEDED' }, /USING (COVERING )?INDEX runs_status_id/],
      [{ limit: 21, status: 'SUCCEEDED', before: 'run_x' }, /USING (COVERING )?INDEX runs_status_id/],
      [{ limit: 21, workflowId: 'wf_x' }, /USING (COVERING )?INDEX runs_workflow_id/],
      [{ limit: 21, workflowId: 'wf_x', before: 'run_x' }, /USING (COVERING )?INDEX runs_workflow_id/],
      [{ limit: 21 }, /USING (COVERING )?INDEX sqlite_autoindex_runs_1/],
    ]
    for (const [page, index] of cases) {
      prepared.length = 0
      listRuns(conn, page)
      expect(prepared).toHaveLength(1)
      const p = plan(prepared[0]!)
      expect(p, JSON.stringify(page)).toMatch(index)
      expect(p, JSON.stringify(page)).not.toMatch(/TEMP B-TREE/)
    }
    expect(plan('select max(id) from runs where workflow_id = ?')).toMatch(/USING COVERING INDEX runs_workflow_id/)
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
