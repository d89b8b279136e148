// Disk and database trouble (issue 7, item 3).
// - Read-only: a database file or directory the process may not write, a read-only filesystem, a
//   file that is not a database → `conveyor serve` exits non-zero at start-up with a message naming
//   the path, and the file is left as it was. Turned read-only while serving → mutations fail with a
//   clear STORAGE_UNAVAILABLE error, and work again once writes are allowed.
// - Disk full: a real small filesystem (a 16 MiB tmpfs filled up, when this runs as root) and SQLite's max_page_count
//   (everywhere) → the engine reports commit errors (log, /metrics), keeps the queued changes, refuses
//   new runs with a clear error, never corrupts the database, and finishes the work once there is
//   space again — in the same process, or after a SIGKILL and a restart.
// - Locked: another process holds a write transaction → changes wait (busy timeout) and commit when
//   it is released; a lock held past the busy timeout gives a clear error for a direct write.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import Database from 'better-sqlite3'
import { ROOT, gql, integrity, killServers, post, readDb, serve, spawnCli, type Json } from './helpers/serve.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { latch, until, within } from './support/barrier.ts'
import pino from 'pino'
import { defineFactory, orchestratorFromConfig } from '../src/index.ts'

const CONFIG = join(ROOT, 'test/fixtures/crash-loop.config.ts')
// Hang bounds for tests that start `conveyor serve` (a few seconds of CPU each; minutes on a loaded machine).
const SLOW = 300_000
const dir = mkdtempSync(join(tmpdir(), 'conveyor-disk-'))
const mounts: string[] = []
let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
  await killServers()
})
afterAll(() => {
  for (const m of mounts.splice(0)) {
    try {
      execFileSync('umount', ['-l', m])
    } catch {
      // Not mounted any more.
    }
  }
  rmSync(dir, { recursive: true, force: true })
})

const isRoot = process.getuid?.() === 0
/** Root ignores file modes: permission cases run the CLI as `nobody` then. */
const unprivileged = isRoot ? { uid: 65534, gid: 65534 } : undefined

function canMount(): boolean {
  if (!isRoot) return false
  const probe = join(dir, 'mount-probe')
  mkdirSync(probe, { recursive: true })
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' })
    execFileSync('umount', [probe], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const MOUNT = canMount()

function tmpfs(name: string, size: string): string {
  const path = join(dir, name)
  mkdirSync(path, { recursive: true })
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0777`, 'tmpfs', path])
  mounts.push(path)
  return path
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

function migrated(path: string): string {
  // A real Conveyor database: the migrate command, as a user would make it.
  execFileSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'migrate', '--db', path], { cwd: ROOT, stdio: 'ignore' })
  return path
}

/**
 * `serve` that must fail at start-up: exit code and stderr. Waits for the exit however long start-up
 * takes (seconds of CPU for tsx; much longer on a loaded machine); a server that starts instead is
 * seen listening and stopped, and only a hang of `within`'s bound fails the wait itself.
 */
async function refusedStart(db: string, user = unprivileged): Promise<{ code: number | null; stderr: string; listening: boolean }> {
  const proc = spawnCli(['--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--db', db, '--config', CONFIG], {}, user)
  const listening = await proc.waitForLog('conveyor listening', Number.POSITIVE_INFINITY)
  if (listening) await proc.kill()
  const exit = await within(proc.exited, `serve --db ${db} to exit`, SLOW)
  return { code: exit.code, stderr: proc.stderr, listening: listening !== undefined }
}

const CREATE = `mutation ($n: String!, $d: JSON!) { createWorkflow(input: { name: $n, definition: $d }) { __typename ... on CreateWorkflowSuccess { workflow { id } } ... on Error { message } } }`
const EXECUTE = `mutation ($id: ID!) { executeWorkflow(input: { workflowId: $id }) { __typename ... on ExecuteWorkflowSuccess { run { id status } } ... on Error { message } } }`

/** A chain of control.noop steps, each carrying `kb` KiB of params (and as much output). */
const heavy = (steps: number, kb: number) => ({
  steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i}`, factory: 'control', action: 'noop', params: { i, blob: 'x'.repeat(kb * 1024) } })),
})

function expectStorageError(body: Json, sqlite?: RegExp): void {
  expect(body.errors, JSON.stringify(body)).toBeDefined()
  const error = body.errors[0]
  expect(error.extensions?.code, JSON.stringify(error)).toBe('STORAGE_UNAVAILABLE')
  if (sqlite) expect(error.extensions.sqlite).toMatch(sqlite)
  expect(error.message).not.toMatch(/Unexpected error/)
}

async function metric(origin: string, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`${origin}/metrics`)).text())
  return m ? Number(m[1]) : NaN
}

describe('a read-only or unusable database: a clear error at start-up, the file untouched', () => {
  it('file not writable, directory not writable, read-only filesystem, not a database: exit 1 naming the path', async () => {
    const cases: { name: string; db: string; before?: string; user?: { uid: number; gid: number } }[] = []

    // The file is read-only (mode 0444) in a writable directory.
    const roFileDir = join(dir, 'ro-file')
    mkdirSync(roFileDir)
    const roFile = migrated(join(roFileDir, 'conveyor.db'))
    chmodSync(roFile, 0o444)
    chmodSync(roFileDir, 0o777)
    cases.push({ name: 'read-only file', db: roFile, before: sha(roFile) })

    // A new database in a directory the process may not write.
    const roDir = join(dir, 'ro-dir')
    mkdirSync(roDir)
    chmodSync(roDir, 0o555)
    cases.push({ name: 'read-only directory', db: join(roDir, 'conveyor.db') })

    // A file that is not a database at all.
    const garbage = join(dir, 'garbage.db')
    writeFileSync(garbage, Buffer.alloc(8192, 7))
    cases.push({ name: 'not a database', db: garbage, before: sha(garbage), user: undefined })

    // A read-only filesystem holding a valid database (root only: a tmpfs remounted read-only).
    if (MOUNT) {
      const fs = tmpfs('ro-fs', '8m')
      const db = migrated(join(fs, 'conveyor.db'))
      execFileSync('mount', ['-o', 'remount,ro', fs])
      cases.push({ name: 'read-only filesystem', db, before: sha(db), user: undefined })
    }

    // One at a time: each start-up is CPU-bound, so in parallel they only compete for the same cores.
    const results: Awaited<ReturnType<typeof refusedStart>>[] = []
    for (const c of cases) results.push(await refusedStart(c.db, 'user' in c ? c.user : unprivileged))
    cases.forEach((c, i) => {
      const r = results[i]!
      expect(r.listening, `${c.name}: must not start`).toBe(false)
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(1)
      expect(r.stderr, c.name).toContain(`cannot open database ${c.db}`)
      if (c.before) expect(sha(c.db), `${c.name}: file unchanged`).toBe(c.before)
    })
    chmodSync(roFile, 0o644)
    expect(integrity(roFile)).toBe('ok')
    console.log(`disk-trouble: start-up refused for ${cases.map((c) => c.name).join(', ')}`)
  }, SLOW)

  it('turned read-only while serving: mutations fail with STORAGE_UNAVAILABLE, and work again afterwards', async () => {
    const db = join(dir, 'query-only.db')
    t = await startTestServer({ database: db })
    const sqlite = t.orchestrator.context.conn.sqlite
    const id = (await gql(t.url, CREATE, { n: 'before', d: heavy(2, 1) })).createWorkflow.workflow.id
    sqlite.pragma('query_only = ON')
    const refused = await post(t.url, CREATE, { n: 'during', d: heavy(2, 1) })
    expectStorageError(refused.body, /SQLITE_READONLY/)
    expect((await fetch(t.url.replace('/graphql', '/healthz'))).status).toBe(200)
    sqlite.pragma('query_only = OFF')
    const run = (await gql(t.url, EXECUTE, { id })).executeWorkflow
    expect(run.__typename).toBe('ExecuteWorkflowSuccess')
    expect((await t.orchestrator.waitForRun(run.run.id)).status).toBe('SUCCEEDED')
    expect(readDb(db, (s) => (s.prepare('select count(*) as n from workflows').get() as { n: number }).n)).toBe(1)
    expect(integrity(db)).toBe('ok')
  }, SLOW)
})

describe('a full disk', () => {
  it('simulated with max_page_count: commit errors reported, queue kept, new runs refused clearly, work finished once space returns', async () => {
    const db = join(dir, 'page-limit.db')
    t = await startTestServer({ database: db })
    const origin = new URL(t.url).origin
    const { sqlite } = t.orchestrator.context.conn
    const id = (await gql(t.url, CREATE, { n: 'heavy', d: heavy(4, 64) })).createWorkflow.workflow.id
    const pages = sqlite.pragma('page_count', { simple: true }) as number
    sqlite.pragma(`max_page_count = ${pages}`)

    // A direct write fails at once, clearly.
    expectStorageError((await post(t.url, CREATE, { n: 'more', d: heavy(2, 64) })).body, /SQLITE_FULL/)
    // A run's creation waits in the queue while commits fail...
    const first = post(t.url, EXECUTE, { id })
    const journal = t.orchestrator.context.journal
    await until(() => journal.failing, 'the run creation\'s commit to be refused')
    expect(journal.failing).toBe(true)
    expect((journal.lastError as { code?: string }).code).toBe('SQLITE_FULL')
    // ...further runs are refused at once with the reason, and the failures show in /metrics.
    const second = await post(t.url, EXECUTE, { id })
    expectStorageError(second.body, /SQLITE_FULL/)
    expect(second.body.errors[0].message).toMatch(/refusing changes/)
    expect(await metric(origin, 'conveyor_commit_failures_total')).toBeGreaterThan(0)
    expect(await metric(origin, 'conveyor_journal_pending')).toBeGreaterThan(0)
    expect(integrity(db)).toBe('ok')

    // Space again: the queued changes commit and the run finishes.
    sqlite.pragma('max_page_count = 1073741823')
    const answer = await first
    expect(answer.body.data.executeWorkflow.__typename, JSON.stringify(answer.body)).toBe('ExecuteWorkflowSuccess')
    const result = await t.orchestrator.waitForRun(answer.body.data.executeWorkflow.run.id)
    expect(result.status).toBe('SUCCEEDED')
    expect(journal.failing).toBe(false)
    expect(readDb(db, (s) => (s.prepare('select count(*) as n from runs').get() as { n: number }).n)).toBe(1)
    expect(integrity(db)).toBe('ok')
  }, SLOW)

  it('while commits fail, no new action starts (its start and result could not be recorded); the chain goes on once space returns', async () => {
    const calls: string[] = []
    const o = orchestratorFromConfig({ database: join(dir, 'gate.db') }, { logger: pino({ level: 'silent' }) })
    try {
      // Each step's output is 64 KB: every commit needs new pages, so a page limit refuses it.
      const hold = latch()
      o.registerFactory('big', defineFactory({
        name: 'big',
        actions: {
          write: {
            run: async (_: unknown, ctx) => {
              calls.push(ctx.stepId)
              if (ctx.stepId === 's2') await hold.wait()
              // Like real I/O, an action ends in a later turn, after the commit of the turn it started in.
              await new Promise((resolve) => setImmediate(resolve))
              return 'x'.repeat(64 * 1024)
            },
          },
        },
      }))
      const steps = Array.from({ length: 20 }, (_, i) => ({ id: `s${i}`, factory: 'big', action: 'write', ...(i ? { dependsOn: [`s${i - 1}`] } : {}) }))
      const id = await o.createWorkflow('gated_chain', { steps })
      const { sqlite } = o.context.conn
      const journal = o.context.journal
      const { runId } = await o.startWorkflow(id)
      // s2 is running; its 64 KB result will not fit.
      await until(() => calls.length === 3 && journal.pending === 0)
      sqlite.pragma(`max_page_count = ${sqlite.pragma('page_count', { simple: true }) as number}`)
      hold.open()
      await until(() => journal.failing)
      // s3's start is queued in the commit of s2's result (write-ahead: it is called only once that
      // commit is done). That commit is refused; many refused retries later (every 50 ms), s3 has
      // not been called.
      const failures = journal.failures
      await until(() => journal.failures >= failures + 10)
      expect(calls, 'actions started while the database refused every commit').toEqual(['s0', 's1', 's2'])
      expect(journal.failing).toBe(true)

      sqlite.pragma('max_page_count = 1073741823')
      const result = await o.waitForRun(runId)
      expect(result.status).toBe('SUCCEEDED')
      expect(calls).toEqual(steps.map((s) => s.id))
      expect(integrity(join(dir, 'gate.db'))).toBe('ok')
    } finally {
      await o.close()
    }
  }, SLOW)

  it.skipIf(!MOUNT)('a real 16 MiB filesystem filling up: the server keeps going, recovers when space is freed, and a restart after SIGKILL resumes', async () => {
    const fs = tmpfs('full', '16m')
    const db = join(fs, 'conveyor.db')
    const filler = join(fs, 'filler')
    const proc = serve(db, { config: CONFIG })
    const url = await proc.url()
    const origin = new URL(url).origin
    const id = (await gql(url, CREATE, { n: 'heavy', d: heavy(6, 48) })).createWorkflow.workflow.id
    const fill = () => {
      const { bavail, bsize } = statfsSync(fs)
      try {
        writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - 64 * 1024)))
      } catch (error) {
        // The server wrote meanwhile and took the last pages: the disk is full all the same.
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
      }
    }
    fill()

    // Not awaited: the run's creation may itself have to wait for space.
    const started = post(url, EXECUTE, { id })
    // Either the run's creation itself waits for space, or a later step's commit fails: both show as commit errors.
    const failing = async () => (await metric(origin, 'conveyor_commit_failures_total')) > 0
    await until(failing, { what: 'commits to fail once the disk is full', everyMs: 20 })
    expect(await failing(), 'commits fail once the disk is full').toBe(true)
    await until(() => proc.logs().some((l) => l.msg === 'commit failed'), { what: "the 'commit failed' log line", everyMs: 20 })
    const logged = proc.logs().find((l) => l.msg === 'commit failed')
    expect(JSON.stringify(logged?.err)).toMatch(/SQLITE_FULL|SQLITE_IOERR/)
    expectStorageError((await post(url, CREATE, { n: 'more', d: heavy(2, 96) })).body)
    expect((await fetch(`${origin}/healthz`)).status).toBe(200)

    // Space is freed: everything queued commits and the run finishes.
    unlinkSync(filler)
    const answer = (await started).body
    expect(answer.data?.executeWorkflow?.__typename, JSON.stringify(answer)).toBe('ExecuteWorkflowSuccess')
    const runId = answer.data.executeWorkflow.run.id
    const status = async () => (await gql(url, 'query ($id: ID!) { run(id: $id) { status } }', { id: runId })).run?.status
    await until(async () => !['PENDING', 'RUNNING'].includes(await status()), { what: `run ${runId} to finish`, everyMs: 20 })
    expect(await status()).toBe('SUCCEEDED')

    // Full again, and killed while commits fail; the restart (with space) resumes the new run.
    const again = (await gql(url, EXECUTE, { id })).executeWorkflow.run.id
    fill()
    // Killed once changes wait for space (or, if the run got through before the disk filled, once it ended).
    const statusOf = async (id: string) => (await gql(url, 'query ($id: ID!) { run(id: $id) { status } }', { id })).run?.status as string | undefined
    await until(async () => (await metric(origin, 'conveyor_journal_pending')) > 0 || !['PENDING', 'RUNNING'].includes((await statusOf(again))!), {
      what: 'changes queued behind the full disk', everyMs: 20,
    })
    await proc.kill()
    expect(integrity(db)).toBe('ok')
    unlinkSync(filler)
    const next = serve(db, { config: CONFIG })
    const url2 = await next.url()
    let final: string | undefined
    await until(async () => {
      final = (await gql(url2, 'query ($id: ID!) { run(id: $id) { status } }', { id: again })).run?.status
      return final !== undefined && !['PENDING', 'RUNNING'].includes(final)
    }, { what: `run ${again} to finish after the restart`, everyMs: 20 })
    expect(final).toBe('SUCCEEDED')
    next.signal('SIGTERM')
    expect(await next.exited).toEqual({ code: 0, signal: null })
    expect(integrity(db)).toBe('ok')
  }, SLOW)
})

/**
 * Another process takes the write lock (BEGIN IMMEDIATE); resolves once it holds it. It lets go on
 * `release()`, or `holdMs` after `release(holdMs)` reached it (a timer in that process: the test's
 * own event loop may be stuck in SQLite's busy wait meanwhile). `released` gives the time (Date.now())
 * just before its COMMIT, once it has exited.
 */
async function holdLock(db: string): Promise<{ release(holdMs?: number): void; released: Promise<number> }> {
  const script = `
    const Database = require(${JSON.stringify(join(ROOT, 'node_modules/better-sqlite3'))})
    const db = new Database(process.argv[1])
    db.exec('BEGIN IMMEDIATE')
    console.log('locked')
    require('node:readline').createInterface({ input: process.stdin }).once('line', (line) => {
      setTimeout(() => { console.log(String(Date.now())); db.exec('COMMIT'); db.close(); process.exit(0) }, Number(line))
    })`
  const child = spawn(process.execPath, ['-e', script, db], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const out: string[] = []
  lines.on('line', (line) => out.push(line))
  await within(new Promise<void>((resolve) => lines.once('line', () => resolve())), 'the lock holder to take the lock')
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  return {
    release: (holdMs = 0) => child.stdin!.write(`${holdMs}\n`),
    released: exited.then(() => Number(out[1])),
  }
}

describe('a locked database', () => {
  it('a write lock held by another process: changes wait for it (busy timeout) and commit once it is released', async () => {
    const db = join(dir, 'locked.db')
    t = await startTestServer({ database: db })
    const id = (await gql(t.url, CREATE, { n: 'locked', d: heavy(3, 1) })).createWorkflow.workflow.id

    // Held for 2.5 s from when the run is requested, less than the busy timeout (5 s): the commit
    // simply waits. (This process's event loop is stuck in SQLite's busy wait meanwhile, so the lock
    // holder times its release itself.)
    let lock = await holdLock(db)
    lock.release(2500)
    const run = (await gql(t.url, EXECUTE, { id })).executeWorkflow
    const answeredAt = Date.now()
    expect(run.__typename).toBe('ExecuteWorkflowSuccess')
    expect(answeredAt, 'answered only once the lock was released').toBeGreaterThanOrEqual(await lock.released)
    expect((await t.orchestrator.waitForRun(run.run.id)).status).toBe('SUCCEEDED')
    expect(t.orchestrator.context.journal.failures).toBe(0)

    // Held until the test lets go, past the busy timeout: a direct write gives up with a clear error
    // after 5 s; a run's changes are retried by the journal and commit once the lock is gone.
    lock = await holdLock(db)
    const since = Date.now()
    const refused = await post(t.url, CREATE, { n: 'blocked', d: heavy(1, 1) })
    expect(Date.now() - since).toBeGreaterThanOrEqual(4500)
    expectStorageError(refused.body, /SQLITE_BUSY/)
    const journal = t.orchestrator.context.journal
    const failures = journal.failures
    const queuedAnswer = gql(t.url, EXECUTE, { id })
    await until(() => journal.failures > failures, { what: "the run creation's commit to be refused while locked", everyMs: 20 })
    lock.release()
    const releasedAt = await lock.released
    const queued = (await queuedAnswer).executeWorkflow
    expect(queued.__typename).toBe('ExecuteWorkflowSuccess')
    expect(Date.now()).toBeGreaterThanOrEqual(releasedAt)
    expect((await t.orchestrator.waitForRun(queued.run.id)).status).toBe('SUCCEEDED')
    expect(readDb(db, (s) => (s.prepare("select count(*) as n from runs where status = 'SUCCEEDED'").get() as { n: number }).n)).toBe(2)
    expect(integrity(db)).toBe('ok')
  }, SLOW)
})
