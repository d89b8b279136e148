// Group commit. Every state change is queued with its event; one transaction per turn of the event
// loop commits all of them, and only then are the events published and waiters told. A burst of
// concurrent step transitions therefore costs one commit, not one each.
import type { Connection } from '../db/connection.ts'
import { insertEvents, type NewEvent } from '../db/sql/insertEvent.ts'
import type { RunEvent } from './interfaces.ts'

/** Writes the rows a commit queued for it (`Journal.recordRow`), several per statement. */
export type RowWriter<T> = (conn: Connection, rows: T[]) => void

export interface Entry {
  /** The run the change belongs to: a refused change stops that run's later changes of the batch. */
  runId: string | undefined
  apply?: () => void
  /** Or one row for `writer` (see `recordRow`). */
  writer: RowWriter<never> | undefined
  row: unknown
  event?: NewEvent
  after?: () => void
  /** The queue generation it was recorded in: entries of one generation commit in one transaction. */
  gen: number
  /** `apply` is redundant: a later entry of the same commit writes everything it writes (see `supersede`). */
  skip: boolean
  /** The database refused this change (or an earlier one of its run in the same batch): it was not written and `after` is not called. */
  refused: boolean
}

/** Told when a run's change was refused for good (not busy, not a full disk: a change SQLite will never take). */
export type RefusalListener = (runId: string, error: Error) => void

export type CommitListener = (events: RunEvent[]) => void

/** Changes per commit before new actions wait for the next one (see `Journal.admit`). */
export const MAX_BATCH = 1000
const NOOP = () => {}

export class Journal {
  private queue: Entry[] = []
  /** Bumped each time a batch is taken from the queue. */
  private gen = 0
  private scheduled = false
  private retryTimer: NodeJS.Timeout | undefined
  private closed = false
  /** Number of commits so far; tests read it to see that changes were batched. */
  commits = 0
  /** Commits the database refused (each retry counts). */
  failures = 0
  lastError: Error | undefined
  private lastReported = 0
  /** Starts waiting for room in a commit, or for the database to take commits again (see `admit`). */
  private admissions: (() => void)[] = []
  private admitted = 0
  /** A waiting start is running (admitWaiting): what it admits in turn is part of it. */
  private admitting = false

  /** Set by the coordinator: a run whose change was refused must not go on as if it had been stored. */
  onRefused: RefusalListener = () => {}

  constructor(
    private readonly conn: Connection,
    private readonly onCommit: CommitListener,
    private readonly onError: (error: Error) => void = () => {},
  ) {}

  /**
   * Queues a state change (`apply` runs inside the commit's transaction) and its event. `after` runs
   * once they are committed, never if they were refused.
   */
  record(apply: (() => void) | undefined, event?: NewEvent, after?: () => void, runId = event?.runId): Entry | undefined {
    // After close, late results of abandoned actions are dropped: recovery redoes that work on the next start.
    if (this.closed) return undefined
    const entry: Entry = { runId, apply, writer: undefined, row: undefined, event, after, gen: this.gen, skip: false, refused: false }
    this.queue.push(entry)
    this.schedule()
    return entry
  }

  /**
   * Queues one row for `writer`, which writes all the rows of a commit together (multi-row INSERTs:
   * a statement per row costs more than the row), after every `apply` of that commit and before its
   * events. Only for a row that no `apply` of the same commit writes after it.
   */
  recordRow<T>(writer: RowWriter<T>, row: T, runId?: string): Entry | undefined {
    if (this.closed) return undefined
    const entry: Entry = { runId, apply: undefined, writer: writer as RowWriter<never>, row, event: undefined, after: undefined, gen: this.gen, skip: false, refused: false }
    this.queue.push(entry)
    this.schedule()
    return entry
  }

  /**
   * Drops the row writes (`apply`, never the event) of an entry that is still queued, because the
   * caller is about to queue an entry that writes everything it would have written. True when
   * dropped: the caller's entry then commits in the same transaction, so it must write those
   * columns too. False when the entry was committed already (or is being retried): write as usual.
   * If a batch has to be committed entry by entry (one change was refused), every `apply` runs,
   * dropped or not, so the replacing write must be correct after the dropped one as well.
   */
  supersede(entry: Entry | undefined): boolean {
    if (entry === undefined || entry.gen !== this.gen || this.closed) return false
    entry.skip = true
    return true
  }

  /** Runs `after` once everything queued so far is committed. */
  afterCommit(after: () => void): void {
    this.record(undefined, undefined, after)
  }

  get pending(): number {
    return this.queue.length
  }

  /** The last commit was refused for a reason that may pass (disk full, read-only, busy, I/O) and changes are waiting. */
  get failing(): boolean {
    return this.lastError !== undefined && isTransient(this.lastError) && this.queue.length > 0
  }

  /**
   * Runs `start` (a new action starting) now, or later in order, after a commit, when it would be
   * admitted then. It waits while the database refuses commits (disk full, read-only): nothing should
   * run whose start and result could not be recorded. And it waits while this commit already holds
   * `MAX_BATCH` changes: actions that settle at once (no I/O) would otherwise start one another in
   * one unbroken chain of promise callbacks, and a whole run would go out as one commit at its end,
   * its subscribers hearing nothing until then.
   */
  admit(start: () => void): void {
    // A start admitted from inside one that waited (a step made READY after waiting, starting its
    // attempt) goes now if there is room, not behind the other waiters: it is the same start.
    if ((this.admitting || this.admissions.length === this.admitted) && this.admits()) start()
    else this.admissions.push(start)
  }

  private admits(): boolean {
    return this.closed || (!this.failing && this.queue.length < MAX_BATCH)
  }

  /** Starts what waited for room, in order, until this commit is full again. */
  private admitWaiting(): void {
    while (this.admitted < this.admissions.length && this.admits()) {
      const start = this.admissions[this.admitted]!
      this.admissions[this.admitted++] = NOOP
      this.admitting = true
      try {
        start()
      } finally {
        this.admitting = false
      }
    }
    if (this.admitted === this.admissions.length) {
      this.admissions = []
      this.admitted = 0
    }
  }

  private schedule(): void {
    if (this.scheduled || this.retryTimer) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  /** Commits everything queued; returns false (and keeps the queue) when the database refused. */
  flush(): boolean {
    if (this.queue.length === 0) {
      if (this.admitted < this.admissions.length) this.admitWaiting()
      return true
    }
    const batch = this.queue
    this.queue = []
    this.gen++
    let committed: RunEvent[]
    let refusedRuns: Map<string, Error> | undefined
    try {
      committed = this.commit(batch)
    } catch (error) {
      this.failures++
      // A refusal that lasts (a full disk) is retried every 50 ms: report the first, then every 5 s.
      const repeated = this.lastError !== undefined && this.lastError.message === (error as Error).message
      if (!repeated || Date.now() - this.lastReported >= 5000) {
        this.lastReported = Date.now()
        this.onError(error as Error)
      }
      this.lastError = error as Error
      if (!isTransient(error)) {
        refusedRuns = new Map()
        committed = this.commitOneByOne(batch, refusedRuns)
      } else {
        // Nothing of the batch was written (busy, disk full, I/O): put it back and try again shortly.
        this.queue = batch.concat(this.queue)
        if (!this.closed && !this.retryTimer) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined
            this.flush()
          }, 50)
        }
        return false
      }
    }
    this.commits++
    this.lastError = undefined
    if (committed.length > 0) this.onCommit(committed)
    for (const entry of batch) if (!entry.refused) entry.after?.()
    if (refusedRuns) for (const [runId, error] of refusedRuns) this.onRefused(runId, error)
    if (this.admitted < this.admissions.length) this.admitWaiting()
    // Work queued by the callbacks goes in the next commit.
    if (this.queue.length > 0) this.schedule()
    return true
  }

  /**
   * One bad change must not hold back the others: commit them one at a time. A refused change is
   * not written, and neither is any later change of the same run in the batch (a run must never
   * record SUCCEEDED over a step transition that is missing); the run is told (`onRefused`).
   */
  private commitOneByOne(batch: Entry[], refusedRuns: Map<string, Error>): RunEvent[] {
    const committed: RunEvent[] = []
    for (const entry of batch) {
      if (entry.runId !== undefined && refusedRuns.has(entry.runId)) {
        entry.refused = true
        continue
      }
      try {
        const events = this.commit([entry], false)
        for (const e of events) committed.push(e)
      } catch (e) {
        entry.refused = true
        if (entry.runId !== undefined) refusedRuns.set(entry.runId, e as Error)
        this.onError(e as Error)
      }
    }
    return committed
  }

  private commit(batch: Entry[], honourSkip = true): RunEvent[] {
    const events: NewEvent[] = []
    const committed: RunEvent[] = []
    this.conn.transaction(() => {
      let rows: Map<RowWriter<never>, unknown[]> | undefined
      for (const entry of batch) {
        if (!(honourSkip && entry.skip)) {
          if (entry.apply) entry.apply()
          else if (entry.writer) {
            rows ??= new Map()
            const list = rows.get(entry.writer)
            if (list) list.push(entry.row)
            else rows.set(entry.writer, [entry.row])
          }
        }
        if (entry.event) events.push(entry.event)
      }
      if (rows) for (const [writer, list] of rows) writer(this.conn, list as never[])
      // The events go in after the row writes, in one multi-row INSERT per 50: the same rows and seqs
      // in the same order as one INSERT each after its entry's write (no write reads the events).
      const first = insertEvents(this.conn, events)
      for (let i = 0; i < events.length; i++) {
        // A literal, not `{ ...e, seq }`: spreading and adding a key takes V8's slow path (~2 µs an event).
        const e = events[i]!
        committed.push({ type: e.type, runId: e.runId, workflowId: e.workflowId, stepId: e.stepId, attempt: e.attempt, status: e.status, at: e.at, payload: e.payload, seq: first + i } as RunEvent)
      }
    })
    return committed
  }

  close(): void {
    this.flush()
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
  }
}

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|PROTOCOL|NOMEM)/.test(code)
}
