// The one place that says which status may follow which. Every transition in the engine goes
// through `assertRunTransition` / `assertStepTransition`, so an illegal change is a bug caught at once.
import type { RunStatus, StepStatus } from './interfaces.ts'
import { ConflictError } from './errors.ts'

const RUN: Record<RunStatus, readonly RunStatus[]> = {
  PENDING: ['RUNNING', 'CANCELLED', 'FAILED', 'TIMED_OUT'],
  RUNNING: ['PAUSED', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'ROLLING_BACK'],
  PAUSED: ['RUNNING', 'CANCELLED', 'TIMED_OUT', 'FAILED', 'ROLLING_BACK'],
  ROLLING_BACK: ['ROLLED_BACK', 'FAILED'],
  SUCCEEDED: ['ROLLING_BACK'],
  FAILED: ['ROLLING_BACK'],
  CANCELLED: ['ROLLING_BACK'],
  TIMED_OUT: ['ROLLING_BACK'],
  ROLLED_BACK: [],
}

const STEP: Record<StepStatus, readonly StepStatus[]> = {
  // PENDING -> FAILED: its `when` or `{{ }}` params could not be evaluated.
  PENDING: ['READY', 'SKIPPED', 'CANCELLED', 'RUNNING', 'FAILED'],
  READY: ['RUNNING', 'SKIPPED', 'CANCELLED', 'FAILED'],
  // RUNNING -> RUNNING is a new attempt after a crash (recovery re-dispatches an interrupted attempt).
  RUNNING: ['RUNNING', 'SUCCEEDED', 'FAILED', 'RETRY_SCHEDULED', 'WAITING', 'CANCELLED'],
  WAITING: ['RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'],
  RETRY_SCHEDULED: ['READY', 'RUNNING', 'CANCELLED'],
  SUCCEEDED: ['COMPENSATING'],
  FAILED: [],
  SKIPPED: [],
  CANCELLED: [],
  // A compensation interrupted by a restart is tried again (at-least-once).
  COMPENSATING: ['COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'],
  COMPENSATED: [],
  // Its compensation threw: a later rollbackRun tries it again.
  COMPENSATION_FAILED: ['COMPENSATING'],
}

export function canRunTransition(from: RunStatus, to: RunStatus): boolean {
  return RUN[from].includes(to)
}

export function canStepTransition(from: StepStatus, to: StepStatus): boolean {
  return STEP[from].includes(to)
}

export function assertRunTransition(runId: string, from: RunStatus, to: RunStatus): void {
  if (!canRunTransition(from, to)) throw new ConflictError(`run ${runId} cannot go from ${from} to ${to}`)
}

export function assertStepTransition(stepId: string, from: StepStatus, to: StepStatus): void {
  if (!canStepTransition(from, to)) throw new ConflictError(`step ${stepId} cannot go from ${from} to ${to}`)
}

export const SETTLED_STEP_STATUSES: ReadonlySet<StepStatus> = new Set([
  'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED', 'COMPENSATED', 'COMPENSATION_FAILED',
])
