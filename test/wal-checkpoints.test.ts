// WAL checkpoints off the main thread (src/db/wal-checkpointer.ts): a database that is written to
// a lot has its WAL copied back by a worker thread instead of inside commits; the data stays whole,
// the main connection still closes last (final checkpoint, WAL removed), and if the worker ends,
// commits checkpoint again.
import { describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Connection } from '../src/db/connection.ts'
import { defineFactory } from '../src/index.ts'
import { metricsText } from '../src/metrics.ts'
import { openedPerTest } from './support/opened.ts'
import { until } from './support/barrier.ts'

const opened = openedPerTest()

const autocheckpoint = (c: Connection) => c.sqlite.pragma('wal_autocheckpoint', { simple: true })

/** `n` transactions, each inserting 50 rows of ~1 KB into a table of its own. */
function write(c: Connection, n: number, from = 0): void {
  c.sqlite.exec('create table if not exists t (k integer primary key, v text)')
  const insert = c.sqlite.prepare('insert into t (k, v) values (?, ?)')
  for (let i = from; i < from + n; i++) {
    c.transaction(() => {
      for (let j = 0; j < 50; j++) insert.run(i * 50 + j, 'x'.repeat(1000))
    })
  }
}

describe('background WAL checkpoints', () => {
  it('start once the WAL is large, copy it back off the main thread, and keep every row', async () => {
    const path = join(opened.tempDir('conveyor-wal-'), 'c.db')
    const c = opened.track(new Connection(path, { backgroundCheckpoints: { afterWalBytes: 1024 * 1024, intervalMs: 20, checkEveryMs: 0 } }))
    write(c, 5)
    // Five small commits: the WAL is not large enough yet; SQLite checkpoints inside commits.
    expect(c.checkpointer).toBeUndefined()
    expect(autocheckpoint(c)).toBe(1000)
    write(c, 200, 5)
    expect(c.checkpointer).toBeDefined()
    // Commits no longer checkpoint: the worker does.
    expect(autocheckpoint(c)).toBe(0)
    const checkpointer = c.checkpointer!
    await until(() => checkpointer.stats.passes > 0 && checkpointer.stats.frames > 0 && checkpointer.stats.copied === checkpointer.stats.frames)
    expect(checkpointer.stats.errors).toBe(0)
    write(c, 100, 205)
    c.close()
    // The main connection closed last: it made the final checkpoint and removed the WAL.
    expect(existsSync(`${path}-wal`)).toBe(false)
    const again = opened.track(new Connection(path, { backgroundCheckpoints: false }))
    expect((again.sqlite.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(305 * 50)
    expect(again.sqlite.pragma('integrity_check', { simple: true })).toBe('ok')
  })

  it('an idle database is checkpointed less and less often, and at the fast rate again once commits come', async () => {
    const path = join(opened.tempDir('conveyor-wal-'), 'c.db')
    const c = opened.track(new Connection(path, { backgroundCheckpoints: { afterWalBytes: 1, intervalMs: 10, maxIntervalMs: 80, checkEveryMs: 0 } }))
    write(c, 20)
    const checkpointer = c.checkpointer!
    expect(checkpointer.stats.intervalMs).toBe(10)
    // Nothing is written from here: every pass finds nothing new, and the wait doubles at each one.
    const seen: number[] = []
    await until(() => {
      if (seen.at(-1) !== checkpointer.stats.intervalMs) seen.push(checkpointer.stats.intervalMs)
      return checkpointer.stats.intervalMs === 80
    })
    // Only ever up (a poll may miss a step): 10 → 20 → 40 → 80.
    expect(seen).toEqual([...seen].sort((a, b) => a - b))
    expect(seen.every((ms) => [10, 20, 40, 80].includes(ms))).toBe(true)
    // It stays at the cap over the next idle passes.
    const atCap = checkpointer.stats.passes
    await until(() => checkpointer.stats.passes >= atCap + 3)
    expect(checkpointer.stats.intervalMs).toBe(80)
    // A commit: the next pass finds it and the fast rate is back.
    write(c, 1, 20)
    checkpointer.nudge()
    await until(() => checkpointer.stats.intervalMs === 10)
    expect(checkpointer.stats.errors).toBe(0)
  })

  it('a worker that ends early hands checkpoints back to the commits', async () => {
    const path = join(opened.tempDir('conveyor-wal-'), 'c.db')
    const c = opened.track(new Connection(path, { backgroundCheckpoints: { afterWalBytes: 1, checkEveryMs: 0 } }))
    write(c, 2)
    expect(c.checkpointer).toBeDefined()
    expect(autocheckpoint(c)).toBe(0)
    await (c.checkpointer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate()
    await until(() => autocheckpoint(c) === 1000)
  })

  it('never start with backgroundCheckpoints: false, nor for an in-memory database', () => {
    const path = join(opened.tempDir('conveyor-wal-'), 'c.db')
    const off = opened.track(new Connection(path, { backgroundCheckpoints: false }))
    write(off, 200)
    expect(off.checkpointer).toBeUndefined()
    expect(autocheckpoint(off)).toBe(1000)
    const memory = opened.track(new Connection(':memory:', { backgroundCheckpoints: { afterWalBytes: 1, checkEveryMs: 0 } }))
    write(memory, 32)
    expect(memory.checkpointer).toBeUndefined()
  })

  it('an orchestrator on a busy database file moves its checkpoints to the worker, and its runs are whole', async () => {
    const database = join(opened.tempDir('conveyor-wal-'), 'c.db')
    const o = opened.orchestrator({ database })
    o.registerFactory('w', defineFactory({ name: 'w', actions: { pad: { run: (input: { i: number }) => ({ i: input.i, pad: 'y'.repeat(2000) }) } } }))
    const id = await o.createWorkflow('wide', {
      parallel: true,
      steps: Array.from({ length: 300 }, (_, i) => ({ id: `s${i}`, factory: 'w', action: 'pad', params: { i } })),
    })
    const results = []
    for (let r = 0; r < 8; r++) results.push(await o.executeWorkflow(id))
    expect(results.every((r) => r.status === 'SUCCEEDED' && Object.keys(r.steps).length === 300)).toBe(true)
    expect(o.context.conn.checkpointer).toBeDefined()
    const rows = o.context.conn.sqlite.prepare("select count(*) as n from steps where status = 'SUCCEEDED'").get() as { n: number }
    expect(rows.n).toBe(8 * 300)
    // /metrics tells the passes apart from commit checkpoints.
    const checkpointer = o.context.conn.checkpointer!
    checkpointer.nudge()
    await until(() => checkpointer.stats.passes > 0)
    const passes = Number(/^conveyor_wal_checkpoint_passes_total (\d+)$/m.exec(metricsText(o))?.[1])
    expect(passes).toBeGreaterThan(0)
    expect(metricsText(o)).toMatch(/^conveyor_wal_checkpoint_errors_total 0$/m)
    expect(Number(/^conveyor_wal_checkpoint_interval_seconds (\S+)$/m.exec(metricsText(o))?.[1])).toBeGreaterThanOrEqual(0.1)
  })
})
