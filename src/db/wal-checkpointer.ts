// Checkpoints of a WAL database off the main thread. SQLite's own checkpoint runs inside the commit
// that crosses `wal_autocheckpoint` pages: that commit copies the WAL back into the database file
// and syncs it, and the event loop waits for the disk (more than half of the time of a busy
// commit stream here, see BENCHMARKS.md). Once started, the main connection never checkpoints on
// commit; a worker thread does it every `intervalMs` on a connection of its own (less often while
// nothing is committed: the wait doubles up to `maxIntervalMs`).
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import type Database from 'better-sqlite3'

export interface WalCheckpointerOptions {
  /** Time between two checkpoint passes while commits come in. Default 100 ms. */
  intervalMs?: number
  /** While passes find no new commit, the time between them doubles up to this. Default 3,200 ms. */
  maxIntervalMs?: number
  /** WAL frames (pages) past which a pass waits for a pause between commits to reuse the WAL. */
  restartFrames?: number
  busyTimeoutMs?: number
}

/** What `wal_checkpoint(TRUNCATE)` answered: `busy` when a reader or writer kept it from finishing. */
export interface TruncateResult {
  busy: boolean
  frames: number
  copied: number
}

export interface CheckpointStats {
  passes: number
  /** Frames in the WAL at the last pass, and how many of them were in the database file after it. */
  frames: number
  copied: number
  errors: number
  lastError: string | undefined
  /** The wait before the next pass: `intervalMs`, or longer while the database is idle. */
  intervalMs: number
}

const driver = createRequire(import.meta.url).resolve('better-sqlite3')

export class WalCheckpointer {
  readonly stats: CheckpointStats
  private readonly worker: Worker
  private readonly closed = new Int32Array(new SharedArrayBuffer(4))
  private stopped = false
  private exited = false
  /** Callers of truncate() waiting for the worker, in the order they asked (it answers in order). */
  private readonly truncating: ((result: TruncateResult | Error) => void)[] = []

  /** `sqlite` is the main connection: it stops checkpointing on commit now, and again if the worker dies. */
  constructor(private readonly sqlite: Database.Database, path: string, options: WalCheckpointerOptions = {}) {
    const intervalMs = options.intervalMs ?? 100
    const maxIntervalMs = Math.max(intervalMs, options.maxIntervalMs ?? 3200)
    this.stats = { passes: 0, frames: 0, copied: 0, errors: 0, lastError: undefined, intervalMs }
    this.worker = new Worker(new URL('./wal-checkpoint-worker.cjs', import.meta.url), {
      workerData: {
        driver, path, closed: this.closed,
        intervalMs, maxIntervalMs, restartFrames: options.restartFrames ?? 16_384, busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      },
    })
    // It must not keep a process alive that has nothing else to do.
    this.worker.unref()
    this.worker.on('message', (m: { type: string; frames?: number; copied?: number; busy?: boolean; message?: string; intervalMs?: number }) => {
      if (m.type === 'truncated') this.truncating.shift()?.({ busy: m.busy!, frames: m.frames!, copied: m.copied! })
      else if (m.type === 'truncate-error') this.truncating.shift()?.(new Error(m.message))
      else if (m.type === 'pass') {
        this.stats.passes++
        this.stats.frames = m.frames!
        this.stats.copied = m.copied!
        this.stats.intervalMs = m.intervalMs!
      } else if (m.type === 'error') {
        this.stats.errors++
        this.stats.lastError = m.message
      }
    })
    // Whatever ends the thread early, the WAL must not grow without bound: commits checkpoint again.
    const fallBack = (error?: unknown) => {
      if (error) {
        this.stats.errors++
        this.stats.lastError = String((error as Error)?.message ?? error)
      }
      if (!this.stopped && this.sqlite.open) this.sqlite.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT}`)
      for (const answer of this.truncating.splice(0)) answer(new Error('the WAL checkpoint worker ended'))
    }
    this.worker.on('error', fallBack)
    this.worker.on('exit', () => {
      this.exited = true
      fallBack()
    })
    this.sqlite.pragma('wal_autocheckpoint = 0')
  }

  /** Asks for a pass now (tests; a pass also runs every `intervalMs`, or less often while idle). */
  nudge(): void {
    if (!this.stopped) this.worker.postMessage('pass')
  }

  /**
   * Copies the whole WAL back and truncates it to zero bytes, on the worker (after large deletes:
   * the copy and sync of a WAL of hundreds of MB must not hold up the event loop). Rejects when the
   * worker is gone or the checkpoint failed; the caller may then do it on its own connection.
   */
  truncate(): Promise<TruncateResult> {
    if (this.stopped || this.exited) return Promise.reject(new Error('the WAL checkpoint worker is not running'))
    return new Promise((resolve, reject) => {
      this.truncating.push((r) => (r instanceof Error ? reject(r) : resolve(r)))
      this.worker.postMessage('truncate')
    })
  }

  /**
   * Closes the worker's connection and waits (at most `timeoutMs`) until it has, so the main
   * connection closes last and does the final checkpoint, as without a worker.
   */
  stop(timeoutMs = 2000): void {
    if (this.stopped) return
    this.stopped = true
    if (!this.exited) {
      this.worker.postMessage('close')
      if (Atomics.wait(this.closed, 0, 0, timeoutMs) === 'timed-out') void this.worker.terminate()
    }
    if (this.sqlite.open) this.sqlite.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT}`)
    for (const answer of this.truncating.splice(0)) answer(new Error('the WAL checkpoint worker stopped'))
  }
}

/** SQLite's default `wal_autocheckpoint`, in pages. */
export const DEFAULT_AUTOCHECKPOINT = 1000
