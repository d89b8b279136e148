// A step of a run in flight, as RunExecution and its collaborators (attempts, forEach, sub-workflows,
// waits) see it, and the transitions only RunExecution makes. A collaborator gets a narrow interface
// of the run built on `StepTransitions`, never the RunExecution itself: no import cycle, and each
// file says what it needs of the run.
import type { StepStatus } from './interfaces.ts'
import type { GraphNode } from './graph.ts'
import type { Pool, Waiter } from './pools.ts'
import type { AttemptAbort } from './attempt-context.ts'
import type { WaitSpec } from './wait.ts'

export interface StepState {
  node: GraphNode
  status: StepStatus
  attempts: number
  output: unknown
  error: string | undefined
  /** Dependencies not settled yet. */
  remaining: number
  /** Members of a group not settled yet. */
  childrenLeft: number
  /** A dependency failed (or was skipped because of a failure): this step will be skipped. */
  upstreamFailed: boolean
  /** A member of this group failed. */
  memberFailed: boolean
  params: Record<string, unknown> | undefined
  preparing: boolean
  /** Waiting for the journal to admit it before it becomes READY (see `enqueue`). */
  admitting: boolean
  /** Attempts only: the running attempt's abort (its AbortSignal is made only if the action reads `ctx.signal`). */
  controller?: AttemptAbort
  /** The attempt's timeout, the retry's delay or the wait's wake-up (one at a time); settling clears it. */
  timer?: NodeJS.Timeout
  /** Attempts only: the pool slots the running attempt holds. */
  held?: Pool[]
  /** Queued for pool slots (RunExecution's `acquire`). */
  waiter?: Waiter
  /** Attempts only: bumped when an attempt ends, so a late result of an abandoned attempt is ignored. */
  token: number
  startedAt?: number
  /** Waits only: set while WAITING, what wakes the step. */
  wait?: WaitSpec
  /** A forEach item's params, resolved when the list was expanded: used as they are. */
  fixedParams?: Record<string, unknown>
  /** A forEach step's items, in order (made at run time, so not in the shared graph). */
  items?: string[]
}

/** What settling a step records with it. */
export interface Settlement {
  output?: unknown
  outputText?: string
  error?: string
  reason?: string
  retryable?: boolean
  upstreamFailed?: boolean
}

export type SettledStatus = 'SUCCEEDED' | 'FAILED' | 'SKIPPED' | 'CANCELLED'

/** The step transitions RunExecution owns: a collaborator asks for them, it never sets a status itself. */
export interface StepTransitions {
  /** Every status change goes through the one table of legal transitions (states.ts). */
  moveTo(state: StepState, to: StepStatus): void
  /** Settles the step, records it, and lets its dependents and its group go on. */
  settle(state: StepState, status: SettledStatus, extra: Settlement): void
  fail(state: StepState, error: string, retryable: boolean): void
}
