// Shared types of the engine: statuses, events, definitions, the action context and results.
import type { ZodType } from 'zod'

export const RUN_STATUSES = [
  'PENDING', 'RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'ROLLING_BACK', 'ROLLED_BACK',
] as const
export type RunStatus = (typeof RUN_STATUSES)[number]

export const STEP_STATUSES = [
  'PENDING', 'READY', 'RUNNING', 'WAITING', 'RETRY_SCHEDULED', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELLED',
  'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED',
] as const
export type StepStatus = (typeof STEP_STATUSES)[number]

export const EVENT_TYPES = [
  'RUN_CREATED', 'RUN_STARTED', 'RUN_PAUSED', 'RUN_RESUMED', 'RUN_SUCCEEDED', 'RUN_FAILED', 'RUN_CANCELLED',
  'RUN_TIMED_OUT', 'RUN_ROLLING_BACK', 'RUN_ROLLED_BACK', 'STEP_READY', 'STEP_STARTED', 'STEP_PROGRESS', 'STEP_LOG',
  'STEP_RETRY_SCHEDULED', 'STEP_WAITING', 'STEP_SUCCEEDED', 'STEP_FAILED', 'STEP_SKIPPED', 'STEP_CANCELLED',
  'STEP_COMPENSATING', 'STEP_COMPENSATED',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

/** One record of the append-only event log. `seq` is the global cursor. */
export interface RunEvent {
  seq: number
  type: EventType
  runId: string
  workflowId: string
  stepId: string | null
  attempt: number | null
  status: string | null
  at: number
  payload: unknown
}

export interface EventFilter {
  runId?: string
  workflowId?: string
  types?: readonly EventType[]
}

// ---- Workflow definitions (DESIGN.md §2) ----

export type BackoffKind = 'fixed' | 'exponential' | 'linear'

export interface RetryPolicy {
  maxAttempts?: number
  backoff?: BackoffKind
  initialMs?: number
  maxMs?: number
  /** true, or a fraction 0..1 of the delay that is randomised. */
  jitter?: boolean | number
}

export interface StepDefinition {
  id?: string
  factory?: string
  action?: string
  params?: Record<string, unknown>
  dependsOn?: string[]
  when?: string | boolean
  retry?: RetryPolicy
  timeoutMs?: number
  continueOnError?: boolean
  forEach?: string | unknown[]
  /** An inline nested group: the seed's "mixed patterns". */
  steps?: StepDefinition[]
  parallel?: boolean
  maxParallel?: number
  template?: string
  workflow?: WorkflowDefinition
  compensate?: boolean
  description?: string
  /** Named pools (from the config's `pools`) this step takes a slot of, besides its action's. */
  pool?: string | string[]
}

export type InputFieldSpec = { type?: string; default?: unknown; required?: boolean; description?: string }

export interface WorkflowDefinition {
  name?: string
  description?: string
  steps: StepDefinition[]
  factories?: string[]
  parallel?: boolean
  maxParallel?: number
  input?: Record<string, unknown>
  timeoutMs?: number
  onFailure?: 'fail' | 'continue' | 'rollback'
  /**
   * After a failure stops the run (`onFailure` fail or rollback), how long its running actions
   * may take to finish before they are aborted and cancelled (default 60,000; 0 aborts at once).
   */
  failGraceMs?: number
  output?: unknown
  retry?: RetryPolicy
  stepTimeoutMs?: number
}

export interface ValidationIssue {
  path: string
  message: string
}

export interface ValidationResult {
  valid: boolean
  issues: ValidationIssue[]
}

// ---- Factories (the action contract) ----

export interface ActionContext {
  runId: string
  workflowId: string
  stepId: string
  attempt: number
  signal: AbortSignal
  /** Same for every attempt of one step of one run: lets factories deduplicate side effects. */
  idempotencyKey: string
  /** Outputs of the steps that have succeeded so far, by step id. */
  steps: Record<string, unknown>
  /** Output of the step before (the single dependency), as in the seed's context passing. */
  previous: unknown
  input: unknown
  params: Record<string, unknown>
  progress(fraction: number, message?: string): void
  log(message: string, data?: unknown): void
  /** Stores a file this step produced; it is listed on the run and step and downloadable. */
  artifact(file: { name: string; mimeType: string; data: Uint8Array | string }): { id: string; name: string; mimeType: string; size: number }
}

export interface ActionDefinition<I = any, O = any> {
  description?: string
  input?: ZodType<I>
  output?: ZodType<O>
  run(input: I, ctx: ActionContext): Promise<O> | O
  compensate?(input: I, output: O, ctx: ActionContext): Promise<unknown> | unknown
  timeoutMs?: number
  retry?: RetryPolicy
  /** Maximum in-flight calls of this action across all runs. */
  concurrency?: number
  /** Maximum calls started per second across all runs. */
  ratePerSecond?: number
  /** Named pools (from the config's `pools`) every call of this action takes a slot of. */
  pool?: string | string[]
}

export interface FactoryDefinition {
  name: string
  description?: string
  /** Maximum in-flight calls of any action of this factory across all runs. */
  concurrency?: number
  /** Maximum calls of its actions started per second across all runs. */
  ratePerSecond?: number
  actions: Record<string, ActionDefinition>
  /** Optional check of what the factory depends on (a service, a key); see `checkFactoryHealth`. */
  health?: () => Promise<FactoryHealthResult> | FactoryHealthResult
}

/** What a factory's health check answers. */
export interface FactoryHealthResult {
  ok: boolean
  message?: string
}

// ---- Results ----

export interface StepResult {
  status: StepStatus
  output: unknown
  error?: string
  attempts: number
}

export interface RunResult {
  runId: string
  workflowId: string
  status: RunStatus
  output: unknown
  error?: string
  steps: Record<string, StepResult>
}

export interface WorkflowStatus extends RunResult {
  name: string
}

export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set([
  'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'ROLLED_BACK',
])
