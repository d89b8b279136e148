// What WAL checkpoints cost a stream of commits, and what moving them to a worker thread gains
// (BENCHMARKS.md, "Fix 6"). Usage: npx tsx bench/tools/checkpoint-probe.ts [pairs]
// 1. Plain better-sqlite3: 200 transactions of 600 rows into a table shaped like `events`, with
//    SQLite's checkpoints inside commits (wal_autocheckpoint 1000) and with none.
// 2. 1,000 chains × 10 through bench/harness.ts, alternating: checkpoints inside commits
//    (background start disabled) and on the worker thread (the default).
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { conveyorChains } from '../harness.ts'
import { Connection } from '../../src/db/connection.ts'

const pairs = Number(process.argv[2] ?? 3)
const dir = mkdtempSync(join(tmpdir(), 'conveyor-ckpt-'))
try {
  for (const auto of [1000, 0]) {
    const db = new Database(join(dir, `raw-${auto}.db`))
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma(`wal_autocheckpoint = ${auto}`)
    db.exec('create table e (seq integer primary key autoincrement, run text, wf text, type text, payload text); create index e_run on e(run, seq); create index e_wf on e(wf, seq)')
    const insert = db.prepare('insert into e (run, wf, type, payload) values (?, ?, ?, ?)')
    const commit = db.transaction((k: number) => {
      for (let i = 0; i < 600; i++) insert.run(`run_${(k * 7 + i) % 200}_abcdefghijklmnopqrstu`, 'wf_bench_chain', 'STEP_SUCCEEDED', '{"output":{"i":1},"durationMs":0}')
    })
    const t0 = performance.now()
    for (let k = 0; k < 200; k++) commit(k)
    console.log(`raw: wal_autocheckpoint ${auto}: ${(performance.now() - t0).toFixed(0)} ms`)
    db.close()
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const proto = Connection.prototype as unknown as { startBackgroundCheckpoints(): void }
const start = proto.startBackgroundCheckpoints
for (let i = 0; i < pairs; i++) {
  for (const background of [false, true]) {
    proto.startBackgroundCheckpoints = background ? start : () => {}
    const r = await conveyorChains({ runs: 1000, steps: 10, concurrency: 200 })
    console.log(`chains, checkpoints ${background ? 'on the worker' : 'in commits  '}: ${Math.round(r.stepsPerSec)} steps/s, ${r.cpuUsPerStep.toFixed(0)} µs CPU per step`)
  }
}
