// Retention: runs that finished longer ago than `maxAgeMs` are pruned with their steps, attempts,
// events and artifacts, a batch per turn of the event loop, so the engine never waits on it.
import { rmSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import type { Connection } from '../db/connection.ts'
import { deleteRuns, findPrunableRuns } from '../db/sql/pruneRuns.ts'

export interface RetentionConfig {
  /** Runs finished longer ago than this are pruned. */
  maxAgeMs: number
  /** How often to look for them (default: hourly). */
  intervalMs?: number
  /** Runs deleted per transaction (default 100). */
  batchSize?: number
}

/** The longest delay a Node timer takes as given. */
const MAX_TIMER_MS = 2_147_483_647

export class Retention {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<number> | undefined
  private stopped = false

  constructor(private readonly conn: Connection, private readonly config: RetentionConfig, private readonly logger?: Logger) {}

  start(): void {
    // Node fires an interval above 2^31-1 ms every millisecond instead: cap it (about 24.8 days).
    const every = Math.min(this.config.intervalMs ?? 3_600_000, MAX_TIMER_MS)
    this.timer = setInterval(() => void this.prune(), every)
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
    let total = 0
    while (!this.stopped) {
      const ids = findPrunableRuns(this.conn, before, batch).map((r) => r.id)
      if (ids.length === 0) break
      const { paths } = this.conn.transaction(() => deleteRuns(this.conn, ids))
      for (const path of paths) rmSync(path, { force: true })
      for (const dir of new Set(paths.map((p) => dirname(p)))) rmSync(dir, { recursive: true, force: true })
      total += ids.length
      // Let the engine's own work in between batches.
      await new Promise((resolve) => setImmediate(resolve))
    }
    if (total > 0) this.logger?.info({ runs: total }, 'retention pruned finished runs')
    return total
  }

  stop(): void {
    this.stopped = true
    clearInterval(this.timer)
  }
}
