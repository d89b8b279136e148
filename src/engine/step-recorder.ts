// How one run's changes are stored: the only part of execution that knows the journal, the SQL
// transitions and the bookkeeping that saves row writes (row ids, superseded writes). RunExecution
// decides what happens; this records it, each change with its event, in commit order.
//
// Write-ahead: `started` hands the attempt back to be dispatched only once the commit holding it is
// done. Every change queued before it (the run's creation, the results of the steps it depends on)
// is in that commit or an earlier one, so an action never runs on state a crash could take back.
import type { Connection } from '../db/connection.ts'
import type { NewEvent } from '../db/sql/insertEvent.ts'
import { setRunStatus, type RunStatusChange } from '../db/sql/setRunStatus.ts'
import { markStepReady } from '../db/sql/markStepReady.ts'
import { insertStepAttempts, markStepRunning, startGroupStep, startStepAttempt, type StepAttemptStart } from '../db/sql/startStepAttempt.ts'
import { finishStepAttempt, insertFinishedStepAttempts } from '../db/sql/finishStepAttempt.ts'
import { settleStep } from '../db/sql/settleStep.ts'
import { scheduleStepRetry } from '../db/sql/scheduleStepRetry.ts'
import { markStepWaiting } from '../db/sql/markStepWaiting.ts'
import { insertSteps, type NewStep } from '../db/sql/createRun.ts'
import { failUnstoredRun } from '../db/sql/failUnstoredRun.ts'
import type { Entry, Journal, RowWriter } from './journal.ts'
import type { EventType, RunStatus, StepStatus } from './interfaces.ts'

/** What the recorder needs to know of a step to write its event. */
export interface RecordedStep {
  readonly node: { readonly id: string; readonly kind: string }
  readonly attempts: number
  readonly status: StepStatus
}

export interface StepSettlementChange {
  status: 'SUCCEEDED' | 'FAILED' | 'SKIPPED' | 'CANCELLED'
  output?: unknown
  outputText?: string
  error: string | null
  at: number
  completedOrder: number | null
}

/** A started attempt still in the open commit: finishing it there writes its row once. */
interface OpenAttempt {
  entry: Entry | undefined
  start: StepAttemptStart
}

export class StepRecorder {
  /** Step row ids by step id, when known: settling UPDATEs find the row by id. */
  private readonly rowIds = new Map<string, number>()
  /** READY's step UPDATE while it may still be superseded by STARTED's in the same commit. */
  private readonly readyEntries = new Map<string, Entry | undefined>()
  private readonly openAttempts = new Map<string, OpenAttempt>()
  /** The run was abandoned (shutdown): nothing more of it is recorded; the next start resumes it. */
  private halted = false

  constructor(
    private readonly conn: Connection,
    private readonly journal: Journal,
    readonly runId: string,
    private readonly workflowId: string,
  ) {}

  /** Step rows inserted in `ordered` order from row id `first` on (createRun). */
  noteRowIds(ordered: readonly { id: string }[], first: number): void {
    for (let i = 0; i < ordered.length; i++) this.rowIds.set(ordered[i]!.id, first + i)
  }

  noteRowId(stepId: string, id: number): void {
    this.rowIds.set(stepId, id)
  }

  halt(): void {
    this.halted = true
  }

  // ---------------------------------------------------------------- the run

  /** The run's status (its row unless `writeRow` is false) and its event; `after` once committed. */
  runChanged(change: Omit<RunStatusChange, 'runId' | 'at'>, type: EventType, payload: unknown, after?: () => void, writeRow = true): void {
    const at = Date.now()
    const status = change.status as RunStatus
    this.put(
      writeRow ? () => setRunStatus(this.conn, { runId: this.runId, at, ...change }) : undefined,
      this.event(type, null, payload, status),
      after,
    )
  }

  /**
   * The run ends FAILED because one of its changes was refused for good (failUnstoredRun). Recorded
   * even after `halt`: it is what the run records instead of what could not be stored.
   */
  runUnstored(error: string, after: () => void): void {
    const at = Date.now()
    const payload: { error: string; failedSteps?: string[] } = { error }
    this.journal.record(
      () => void (payload.failedSteps = failUnstoredRun(this.conn, this.runId, error, at)),
      this.event('RUN_FAILED', null, payload, 'FAILED'),
      after,
      this.runId,
    )
  }

  /** Runs `after` once everything recorded so far is committed. */
  afterCommit(after: () => void): void {
    this.put(undefined, undefined, after)
  }

  /** `start` runs now or, while the open commit is full or the database refuses commits, later (Journal.admit). */
  admit(start: () => void): void {
    this.journal.admit(start)
  }

  // ---------------------------------------------------------------- steps

  ready(step: RecordedStep, params: unknown, recovered: boolean): void {
    const stepId = step.node.id
    this.readyEntries.set(
      stepId,
      this.put(() => markStepReady(this.conn, this.runId, stepId, params), this.event('STEP_READY', step, recovered ? { recovered: true } : {})),
    )
  }

  /**
   * A new attempt RUNNING, with the params it receives. `dispatch` runs once that is committed
   * (write-ahead); if the database refuses it, it never runs and the run is told (Journal.onRefused).
   */
  started(step: RecordedStep, start: StepAttemptStart, payload: unknown, dispatch: () => void): void {
    const journal = this.journal
    const stepId = step.node.id
    // STARTED's UPDATE writes every column READY's does: queued in the same commit, READY's is not written (its event is).
    const ready = this.readyEntries.get(stepId)
    if (ready) {
      journal.supersede(ready)
      this.readyEntries.delete(stepId)
    }
    this.put(() => markStepRunning(this.conn, start), this.event('STEP_STARTED', step, payload), dispatch)
    // The attempt's row goes in with the commit's other new attempts, several per statement.
    this.openAttempts.set(stepId, { entry: this.putRow(insertStepAttempts, start), start })
  }

  /** The attempt ends: FAILED, CANCELLED, INTERRUPTED, WAITING or SUCCEEDED. */
  attemptEnded(stepId: string, attempt: number, status: string, error: string | null): void {
    const at = Date.now()
    const open = this.openAttempts.get(stepId)
    this.openAttempts.delete(stepId)
    // Started and ended in one commit (its params were invalid, it timed out at once): its row is
    // written once, finished.
    if (open && open.start.attempt === attempt && this.journal.supersede(open.entry)) {
      this.putRow(insertFinishedStepAttempts, { runId: this.runId, stepId, attempt, status, error, startedAt: open.start.at, at })
      return
    }
    this.put(() => finishStepAttempt(this.conn, { runId: this.runId, stepId, attempt, status, error, at }), undefined, undefined)
  }

  settled(step: RecordedStep, s: StepSettlementChange, payload: unknown): void {
    const stepId = step.node.id
    this.readyEntries.delete(stepId)
    const rowId = this.rowIds.get(stepId)
    this.put(
      () => settleStep(this.conn, { runId: this.runId, stepId, status: s.status, output: s.output, outputText: s.outputText, error: s.error, at: s.at, completedOrder: s.completedOrder, rowId }),
      this.event(`STEP_${s.status}` as EventType, step, payload),
    )
  }

  retryScheduled(step: RecordedStep, wakeAt: number, error: string, payload: unknown): void {
    this.put(() => scheduleStepRetry(this.conn, this.runId, step.node.id, wakeAt, error), this.event('STEP_RETRY_SCHEDULED', step, payload))
  }

  waiting(step: RecordedStep, wait: unknown, wakeAt: number | null, payload: unknown): void {
    this.put(() => markStepWaiting(this.conn, this.runId, step.node.id, wait, wakeAt), this.event('STEP_WAITING', step, payload))
  }

  /** A group (or a forEach, with its items' rows) RUNNING while its members run. */
  groupStarted(step: RecordedStep, at: number, payload: unknown, items?: NewStep[]): void {
    this.put(() => {
      startGroupStep(this.conn, this.runId, step.node.id, at)
      if (items) insertSteps(this.conn, this.runId, items)
    }, this.event('STEP_STARTED', step, payload))
  }

  /** A sub-workflow step RUNNING: its one attempt lasts as long as its child run. */
  subWorkflowStarted(step: RecordedStep, start: StepAttemptStart, payload: unknown): void {
    this.put(() => startStepAttempt(this.conn, start), this.event('STEP_STARTED', step, payload))
  }

  /** An event with no row change (progress, log), or a row written by `apply` (an artifact). */
  noted(step: RecordedStep, type: EventType, payload: unknown, apply?: () => void): void {
    this.put(apply, this.event(type, step, payload))
  }

  private put(apply: (() => void) | undefined, event?: NewEvent, after?: () => void): Entry | undefined {
    return this.halted ? undefined : this.journal.record(apply, event, after, this.runId)
  }

  private putRow<T>(writer: RowWriter<T>, row: T): Entry | undefined {
    return this.halted ? undefined : this.journal.recordRow(writer, row, this.runId)
  }

  private event(type: EventType, step: RecordedStep | null, payload: unknown, status?: string): NewEvent {
    return {
      type,
      runId: this.runId,
      workflowId: this.workflowId,
      stepId: step?.node.id ?? null,
      attempt: step && step.node.kind === 'action' ? step.attempts || null : null,
      status: status ?? step?.status ?? null,
      at: Date.now(),
      payload,
    }
  }
}
