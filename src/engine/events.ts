// The event bus (committed events, in seq order) and event streams that replay then tail it
// without gaps or duplicates. A stream buffers live events up to a bound; past it, it drops the
// buffer and reads the log from SQLite instead, so a slow reader never holds the engine back.
import type { Connection } from '../db/connection.ts'
import { lastEventSeq, listEvents } from '../db/sql/listEvents.ts'
import { getRun } from '../db/sql/getRun.ts'
import { TERMINAL_RUN_STATUSES, type EventFilter, type EventType, type RunEvent, type RunStatus } from './interfaces.ts'

export type EventListener = (event: RunEvent) => void

export class EventBus {
  private readonly listeners = new Set<(events: RunEvent[]) => void>()

  /** Called by the journal after each commit. Listeners share `events` (streams keep it): nobody may change it. */
  publish(events: RunEvent[]): void {
    for (const listener of this.listeners) {
      try {
        listener(events)
      } catch {
        // A listener's bug must not break the engine or other listeners.
      }
    }
  }

  listen(listener: (events: RunEvent[]) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  get size(): number {
    return this.listeners.size
  }
}

export const TERMINAL_RUN_EVENTS: ReadonlySet<EventType> = new Set([
  'RUN_SUCCEEDED', 'RUN_FAILED', 'RUN_CANCELLED', 'RUN_TIMED_OUT', 'RUN_ROLLED_BACK',
])

export function matches(filter: EventFilter, e: RunEvent): boolean {
  if (filter.runId !== undefined && e.runId !== filter.runId) return false
  if (filter.workflowId !== undefined && e.workflowId !== filter.workflowId) return false
  if (filter.types && filter.types.length > 0 && !filter.types.includes(e.type)) return false
  return true
}

export interface StreamOptions {
  /** A seq cursor: events after it. 'HEAD' = only events committed from now on. Default 0 (all). */
  after?: number | 'HEAD'
  /** Live events held for a slow reader before it falls back to reading the database. */
  bufferLimit?: number
  /** Rows read from the database at a time while catching up. */
  chunkSize?: number
  /** Ends the stream after the run's terminal event (for a run filter). */
  untilRunFinished?: boolean
}

export class EventStream implements AsyncIterableIterator<RunEvent> {
  private cursor: number
  // Live events not yet handed out: the published commits themselves (shared by every stream, not
  // copied per stream), read from `live[0]` at `liveAt`; `held` counts those matching the filter.
  private live: RunEvent[][] = []
  private liveAt = 0
  private held = 0
  private backlog: RunEvent[] = []
  private catchingUp = true
  private overflowed = false
  private done = false
  private checkedFinished = false
  private wake: (() => void) | undefined
  private readonly unlisten: () => void
  private readonly bufferLimit: number
  private readonly chunkSize: number

  constructor(
    private readonly conn: Connection,
    bus: EventBus,
    private readonly filter: EventFilter,
    private readonly options: StreamOptions = {},
  ) {
    this.bufferLimit = options.bufferLimit ?? 10_000
    this.chunkSize = options.chunkSize ?? 500
    // Listen first, then read the cursor: nothing committed in between can be missed.
    this.unlisten = bus.listen((events) => this.onCommitted(events))
    this.cursor = options.after === 'HEAD' ? lastEventSeq(conn) : (options.after ?? 0)
    if (options.after === 'HEAD') this.catchingUp = false
  }

  /** The seq of the last event handed out (the resume cursor). */
  get position(): number {
    return this.cursor
  }

  private onCommitted(events: RunEvent[]): void {
    if (this.done || this.overflowed) return
    let n = 0
    for (const e of events) if (matches(this.filter, e)) n++
    if (n === 0) return
    this.held += n
    if (this.held > this.bufferLimit) {
      // Too far behind: forget the buffer, catch up from the database instead.
      this.dropLive()
      this.overflowed = true
    } else {
      // A commit mostly of other events is copied, so a slow stream holds at most ~4 × what it matches.
      this.live.push(n * 4 >= events.length ? events : events.filter((e) => matches(this.filter, e)))
    }
    this.wake?.()
  }

  private readBacklog(): void {
    const rows = listEvents(this.conn, { ...this.filter, afterSeq: this.cursor, limit: this.chunkSize })
    this.backlog = rows as RunEvent[]
    if (rows.length < this.chunkSize) {
      // Caught up. Everything committed after the listener was attached is in `live` too
      // (deduplicated by seq below), and nothing later has been committed yet: go live.
      this.catchingUp = false
    }
  }

  private take(): RunEvent | undefined {
    for (;;) {
      if (this.backlog.length > 0) return this.backlog.shift()
      if (this.overflowed) {
        this.overflowed = false
        this.catchingUp = true
      }
      if (this.catchingUp) {
        this.dropLive()
        this.readBacklog()
        if (this.backlog.length > 0) continue
      }
      const e = this.nextLive()
      if (!e) return undefined
      if (e.seq > this.cursor) return e
    }
  }

  private nextLive(): RunEvent | undefined {
    while (this.live.length > 0) {
      const commit = this.live[0]!
      while (this.liveAt < commit.length) {
        const e = commit[this.liveAt++]!
        if (matches(this.filter, e)) {
          this.held--
          return e
        }
      }
      this.live.shift()
      this.liveAt = 0
    }
    return undefined
  }

  private dropLive(): void {
    this.live = []
    this.liveAt = 0
    this.held = 0
  }

  async next(): Promise<IteratorResult<RunEvent>> {
    for (;;) {
      if (this.done) return { done: true, value: undefined }
      const e = this.take()
      if (e) {
        this.handOut(e)
        return { done: false, value: e }
      }
      // Caught up on a run that had already finished before the cursor (a subscriber resuming after
      // the terminal event, or "HEAD" on a finished run): nothing more will come, so end now.
      if (this.options.untilRunFinished && !this.checkedFinished) {
        this.checkedFinished = true
        if (this.finishedBeforeCursor()) {
          this.finish()
          continue
        }
      }
      await new Promise<void>((resolve) => (this.wake = resolve))
      this.wake = undefined
    }
  }

  /** The event `next` would hand out now without waiting, handed out; undefined if it would wait. */
  takeNow(): RunEvent | undefined {
    if (this.done) return undefined
    const e = this.take()
    if (e) this.handOut(e)
    return e
  }

  /**
   * The next events as one list: at least one (waiting for it like `next`), then every further event
   * already available without waiting, up to `max`. Concatenated, the batches are exactly the events
   * `next` would have handed out one by one.
   */
  async nextBatch(max: number): Promise<IteratorResult<RunEvent[]>> {
    const first = await this.next()
    if (first.done) return { done: true, value: undefined }
    const batch = [first.value]
    while (batch.length < max && !this.done) {
      const e = this.take()
      if (!e) break
      this.handOut(e)
      batch.push(e)
    }
    return { done: false, value: batch }
  }

  /** This stream as an iterator of batches (`nextBatch`); ending it ends the stream. */
  batches(max: number): AsyncIterableIterator<RunEvent[]> {
    const iterator: AsyncIterableIterator<RunEvent[]> & { takeNow(): RunEvent[] | undefined } = {
      next: () => this.nextBatch(max),
      // The batch `next` would hand out now without waiting (see `takeNow` above).
      takeNow: () => {
        const first = this.takeNow()
        if (!first) return undefined
        const batch = [first]
        while (batch.length < max && !this.done) {
          const e = this.take()
          if (!e) break
          this.handOut(e)
          batch.push(e)
        }
        return batch
      },
      return: async () => {
        this.finish()
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]: () => iterator,
    }
    return iterator
  }

  private handOut(e: RunEvent): void {
    this.cursor = e.seq
    if (this.options.untilRunFinished && TERMINAL_RUN_EVENTS.has(e.type) && !this.continuesAfter(e)) this.finish()
  }

  private finishedBeforeCursor(): boolean {
    const runId = this.filter.runId
    if (runId === undefined) return false
    const status = getRun(this.conn, runId)?.status as RunStatus | undefined
    return status !== undefined && TERMINAL_RUN_STATUSES.has(status) && listEvents(this.conn, { runId, afterSeq: this.cursor, limit: 1 }).length === 0
  }

  /** A finished run can go on (a rollback after RUN_FAILED): a replay then keeps going past it. */
  private continuesAfter(e: RunEvent): boolean {
    if (listEvents(this.conn, { runId: e.runId, afterSeq: e.seq, limit: 1 }).length > 0) return true
    return getRun(this.conn, e.runId)?.status === 'ROLLING_BACK'
  }

  private finish(): void {
    this.done = true
    this.unlisten()
    this.dropLive()
    this.wake?.()
  }

  async return(): Promise<IteratorResult<RunEvent>> {
    this.finish()
    return { done: true, value: undefined }
  }

  /** Ends the stream from outside (shutdown). */
  close(): void {
    this.finish()
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}
