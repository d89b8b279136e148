// Retention: runs that finished longer ago than `maxAgeMs` are pruned with their steps, attempts,
// events and artifacts in bounded transactions (at most `rowBatchSize` rows each: one run can own a
// million events), with a turn of the event loop between any two, so the engine and the server never
// wait on it. Afterwards the freed pages go back to the filesystem (incremental vacuum, in bounded
// steps too) and the WAL file, grown by the deletes, is truncated.
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import type { Connection } from '../db/connection.ts'
import { findPrunableRuns, pruneRunsStep, runFamily } from '../db/sql/pruneRuns.ts'
import { freePages, vacuumStep } from '../db/sql/reclaimSpace.ts'

export interface RetentionConfig {
  /** Runs finished longer ago than this are pruned. */
  maxAgeMs: number
  /** How often to look for them (default: hourly). */
  intervalMs?: number
  /** Runs pruned together (default 100). */
  batchSize?: number
  /** Rows (events, attempts, steps, artifacts) deleted per transaction (default 5,000). */
  rowBatchSize?: number
  /** Free pages given back to the filesystem per transaction after a prune (default 2,048: 8 MiB). */
  vacuumPages?: number
}

/** Totals since start, for tests and logs. */
export interface RetentionStats {
  runs: number
  /** Transactions that deleted rows. */
  batches: number
  rows: number
  /** Transactions of incremental vacuum, and the pages they gave back. */
  vacuumSteps: number
  pagesFreed: number
  walTruncations: number
}

/** The longest delay a Node timer takes as given. */
const MAX_TIMER_MS = 2_147_483_647

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

export class Retention {
  readonly stats: RetentionStats = { runs: 0, batches: 0, rows: 0, vacuumSteps: 0, pagesFreed: 0, walTruncations: 0 }
  private timer: NodeJS.Timeout | undefined
  private running: Promise<number> | undefined
  private stopped = false

  constructor(private readonly conn: Connection, private readonly config: RetentionConfig, private readonly logger?: Logger) {}

  start(): void {
    // Node fires an interval above 2^31-1 ms every millisecond instead: cap it (about 24.8 days).
    const every = Math.min(this.config.intervalMs ?? 3_600_000, MAX_TIMER_MS)
    this.timer = setInterval(() => {
      // A failed pass (disk full, locked database) is tried again at the next interval.
      this.prune().catch((error: unknown) => this.logger?.error({ err: error }, 'retention failed'))
    }, every)
    this.timer.unref()
  }

  /** Prunes everything due now; resolves with the number of runs deleted. */
  prune(now = Date.now()): Promise<number> {
    this.running ??= this.pruneAll(now).finally(() => (this.running = undefined))
    return this.running
  }

  private async pruneAll(now: number): Promise<number> {
    const before = now - this.config.maxAgeMs
    const batch = this.config.batchSize ?? 100
    const rowBatch = Math.max(1, this.config.rowBatchSize ?? 5_000)
    let total = 0
    let rows = 0
    while (!this.stopped) {
      const ids = findPrunableRuns(this.conn, before, batch).map((r) => r.id)
      if (ids.length === 0) break
      const family = runFamily(this.conn, ids)
      const dirs = new Set<string>()
      for (let first = true; ; first = false) {
        // Let the engine's own work in between two transactions.
        if (!first) await nextTurn()
        if (this.stopped) return total
        const step = this.conn.transaction(() => pruneRunsStep(this.conn, family, rowBatch))
        this.stats.batches++
        this.stats.rows += step.rows
        rows += step.rows
        for (const path of step.paths) {
          rmSync(path, { force: true })
          dirs.add(dirname(path))
        }
        if (step.done) break
      }
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
      total += ids.length
      this.stats.runs += ids.length
      await nextTurn()
    }
    if (total === 0 || this.stopped) return total
    const freed = await this.reclaimSpace()
    if (this.stopped) return total
    const wal = await this.conn.truncateWal()
    if (!wal.busy) this.stats.walTruncations++
    this.logger?.info({ runs: total, rows, pagesFreed: freed, walTruncated: !wal.busy }, 'retention pruned finished runs')
    return total
  }

  /** Gives the pages the deletes freed back to the filesystem, a bounded step per turn. */
  private async reclaimSpace(): Promise<number> {
    const pages = this.config.vacuumPages ?? 2_048
    let freed = 0
    while (!this.stopped && freePages(this.conn) > 0) {
      const n = vacuumStep(this.conn, pages)
      this.stats.vacuumSteps++
      // Nothing moved: a database without incremental auto-vacuum (connection.ts switches them).
      if (n <= 0) break
      freed += n
      await nextTurn()
    }
    this.stats.pagesFreed += freed
    return freed
  }

  stop(): void {
    this.stopped = true
    clearInterval(this.timer)
  }
}
