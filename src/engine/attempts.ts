// How one attempt of an action step runs, once it holds its pool slots: its params are checked, it
// gets a timeout and an abort, its STARTED is committed before the action is called (write-ahead), and
// what it returns is checked (the action's output schema, JSON, limits.maxValueBytes) before the
// step settles, goes WAITING, or is scheduled for a retry. Attempt counting (`inFlight`, the token
// that makes a late result of an abandoned attempt harmless) lives here; what the step does next
// is the run's (StepTransitions).
import type { ActionContext } from './interfaces.ts'
import type { RegisteredAction } from './factory.ts'
import type { Pool } from './pools.ts'
import type { ExecutionHost } from './execution-host.ts'
import type { RunSpec } from './run-spec.ts'
import type { StepRecorder } from './step-recorder.ts'
import type { StepState, StepTransitions } from './step-state.ts'
import type { StepWaits } from './waits.ts'
import { resolveRetry, retryDelay } from './retry.ts'
import { CancelledError, errorMessage, isRetryable, NonRetryableError, TimeoutError } from './errors.ts'
import { summarize, toJsonText } from './summary.ts'
import { jsonSizeUpTo } from './expression-size.ts'
import { bytesOver, clipMessage, formatBytes, sizeMessage } from './value-limits.ts'
import { AttemptAbort, AttemptContext } from './attempt-context.ts'
import { isWaitInstruction } from './wait.ts'

/** What attempts need of the run they belong to. */
export interface AttemptRun extends StepTransitions {
  readonly id: string
  readonly spec: RunSpec
  /** RUNNING, not stopping, ending or shut down: a new attempt may start, a retry may be scheduled. */
  readonly active: boolean
  /** Queues the step for its next attempt (a retry that is due). */
  enqueue(state: StepState, recovered: boolean): void
}

export type AttemptHost = Pick<ExecutionHost, 'pools' | 'limits' | 'artifacts' | 'draining'>

export class StepAttempts {
  /** Attempts holding their slots (started, not ended): the run ends only when none is left. */
  inFlight = 0

  constructor(
    private readonly run: AttemptRun,
    private readonly host: AttemptHost,
    private readonly rec: StepRecorder,
    /** `ctx.steps`: the run's outputs of succeeded steps. */
    private readonly outputs: Record<string, unknown>,
    private readonly waits: StepWaits,
  ) {}

  /** The step got its slots (`pools`): a new attempt RUNNING, its action called once that is committed. */
  start(state: StepState, action: RegisteredAction, pools: Pool[]): void {
    state.waiter = undefined
    if (state.status !== 'READY' || !this.run.active || this.host.draining) {
      this.host.pools.release(pools)
      return
    }
    const attempt = ++state.attempts
    this.run.moveTo(state, 'RUNNING')
    state.held = pools
    state.startedAt = Date.now()
    const token = state.token
    const rawParams = state.params ?? {}
    this.inFlight++
    const controller = new AttemptAbort()
    state.controller = controller
    const timeoutMs = state.node.def.timeoutMs ?? action.definition.timeoutMs ?? this.run.spec.definition.stepTimeoutMs
    if (timeoutMs) {
      state.timer = setTimeout(() => {
        if (state.token !== token || state.status !== 'RUNNING') return
        const error = new TimeoutError(`step ${state.node.id} timed out after ${timeoutMs} ms`)
        controller.abort(error)
        this.conclude(state, () => this.failed(state, action, error))
      }, timeoutMs)
    }

    const parsed = action.definition.input ? action.definition.input.safeParse(rawParams) : { success: true as const, data: rawParams }
    const start = { runId: this.run.id, stepId: state.node.id, attempt, params: rawParams, at: state.startedAt }
    if (!parsed.success) {
      // Recorded started and failed, never called.
      this.rec.started(state, start, { params: summarize(rawParams) }, noop)
      const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ')
      this.conclude(state, () => this.failed(state, action, new NonRetryableError(`invalid params: ${detail}`)))
      return
    }
    // Write-ahead: the action is called once its STARTED attempt (and everything before it) is committed.
    this.rec.started(state, start, { params: summarize(rawParams) }, () => this.invoke(state, action, token, controller, parsed.data as Record<string, unknown>))
  }

  /** The run is cancelled or timed out: aborts the running attempt and records it CANCELLED (the run then settles the step). */
  cancel(state: StepState, reason: Error): void {
    state.controller?.abort(reason)
    this.end(state)
    this.rec.attemptEnded(state.node.id, state.attempts, 'CANCELLED', reason.message)
  }

  /** Shutdown: aborts the running attempt without recording anything (the next start runs it again). */
  abandon(state: StepState, reason: Error): void {
    if (state.status === 'RUNNING' && state.controller) {
      state.controller.abort(reason)
      this.end(state)
    }
  }

  /** RETRY_SCHEDULED: queued again after `delayMs` (also for a retry found in its row after a restart). */
  armRetry(state: StepState, delayMs: number): void {
    state.timer = setTimeout(() => {
      state.timer = undefined
      if (state.status !== 'RETRY_SCHEDULED' || !this.run.active) return
      this.run.enqueue(state, false)
    }, delayMs)
  }

  /** Calls the action of an attempt whose start is committed, unless the attempt ended meanwhile (timed out, cancelled, shut down). */
  private invoke(state: StepState, action: RegisteredAction, token: number, controller: AttemptAbort, params: Record<string, unknown>): void {
    if (state.token !== token || state.status !== 'RUNNING') return
    const ctx = this.contextFor(state, state.attempts, controller, token, params)
    let promise: Promise<unknown>
    try {
      promise = Promise.resolve(action.definition.run(params, ctx))
    } catch (error) {
      promise = Promise.reject(error)
    }
    promise.then(
      (output) => {
        if (state.token !== token || state.status !== 'RUNNING') return
        this.conclude(state, () => this.succeeded(state, action, output))
      },
      (error) => {
        if (state.token !== token || state.status !== 'RUNNING') return
        this.conclude(state, () => this.failed(state, action, error))
      },
    )
  }

  private contextFor(state: StepState, attempt: number, abort: AttemptAbort, token: number, params: Record<string, unknown>): ActionContext {
    const stepId = state.node.id
    const runId = this.run.id
    // The methods are assigned below, not written in a literal: tsx (esbuild's keepNames) wraps each
    // named function of a literal in a `__name()` call (an Object.defineProperty) on every attempt.
    const ctx: ActionContext = new AttemptContext(
      abort, runId, this.run.spec.workflowId, stepId, attempt, `${runId}:${stepId}`, this.outputs,
      state.node.previous ? this.outputs[state.node.previous] : undefined, this.run.spec.input, params,
    )
    ctx.progress = (fraction: number, message?: string) => {
      if (!isLive(state, token)) return
      const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0
      this.rec.noted(state, 'STEP_PROGRESS', { fraction: f, message: message === undefined ? null : clipMessage(String(message), this.host.limits.maxMessageBytes) })
    }
    ctx.artifact = (file) => {
      // An abandoned attempt (timed out, cancelled) must not leave files behind.
      if (!isLive(state, token)) throw new CancelledError('this attempt is no longer current')
      const saved = this.host.artifacts.save(runId, stepId, file, (insert, info) =>
        this.rec.noted(state, 'STEP_LOG', {
          message: `artifact ${info.name}${info.mimeTypeReplaced ? `: ${info.mimeTypeReplaced}` : ''}`, artifact: { id: info.id, name: info.name, mimeType: info.mimeType, size: info.size },
        }, insert),
      )
      return { id: saved.id, name: saved.name, mimeType: saved.mimeType, size: saved.size }
    }
    ctx.log = (message: string, data?: unknown) => {
      if (!isLive(state, token)) return
      this.rec.noted(state, 'STEP_LOG', { message: clipMessage(String(message), this.host.limits.maxMessageBytes), data: summarize(data) })
    }
    return ctx
  }

  /** Frees what an attempt held (its slots too, unless `release` is false: then they are returned); late results of it are ignored from now on. */
  private end(state: StepState, release = true): Pool[] | undefined {
    state.token++
    clearTimeout(state.timer)
    state.timer = undefined
    state.controller = undefined
    if (!state.held) return undefined
    const held = state.held
    state.held = undefined
    this.inFlight--
    if (release) this.host.pools.release(held)
    return held
  }

  /**
   * Ends an attempt and records its outcome before its slots go to the next waiter: releasing first
   * would start a queued step (of this run, on a full pool) before a failure here stops the run.
   */
  private conclude(state: StepState, outcome: () => void): void {
    const held = this.end(state, false)
    try {
      outcome()
    } finally {
      if (held) this.host.pools.release(held)
    }
  }

  private succeeded(state: StepState, action: RegisteredAction, raw: unknown): void {
    if (isWaitInstruction(raw)) {
      this.waits.start(state, { signal: raw.signal, until: raw.until })
      return
    }
    let output: unknown
    let outputText: string
    let checked = raw
    if (action.definition.output) {
      const parsed = action.definition.output.safeParse(raw)
      if (!parsed.success) {
        const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(output)'}: ${i.message}`).join('; ')
        this.failed(state, action, new NonRetryableError(`output does not match the action's schema: ${detail}`))
        return
      }
      checked = parsed.data
    }
    const limit = this.host.limits.maxValueBytes
    try {
      // Measured before it is serialised: a huge output is refused without making its text.
      if (jsonSizeUpTo(checked, limit) > limit) {
        this.failed(state, action, new NonRetryableError(`output is larger than the limit of ${formatBytes(limit)} (limits.maxValueBytes)`))
        return
      }
      // The JSON text is kept for the step row and the event's summary: stringified once.
      ;({ value: output, text: outputText } = toJsonText(checked))
    } catch (error) {
      // A cycle, a BigInt, or nesting deep enough to overflow the stack while serialising.
      const why = error instanceof RangeError ? 'it is nested too deeply' : errorMessage(error)
      this.failed(state, action, new NonRetryableError(`output cannot be stored as JSON: ${why}`))
      return
    }
    // Escapes are not counted above.
    const bytes = bytesOver(outputText, limit)
    if (bytes !== undefined) {
      this.failed(state, action, new NonRetryableError(sizeMessage('output', bytes, limit, 'limits.maxValueBytes')))
      return
    }
    this.rec.attemptEnded(state.node.id, state.attempts, 'SUCCEEDED', null)
    this.run.settle(state, 'SUCCEEDED', { output, outputText })
  }

  /** A retryable failure with attempts left is scheduled again (while the run is active); else the step fails. */
  private failed(state: StepState, action: RegisteredAction, error: unknown): void {
    const message = clipMessage(errorMessage(error), this.host.limits.maxMessageBytes)
    const attempt = state.attempts
    this.rec.attemptEnded(state.node.id, attempt, 'FAILED', message)
    const policy = resolveRetry(state.node.def.retry, action.definition.retry, this.run.spec.definition.retry)
    if (isRetryable(error) && attempt < policy.maxAttempts && this.run.active) {
      const delayMs = retryDelay(policy, attempt, error)
      const wakeAt = Date.now() + delayMs
      this.run.moveTo(state, 'RETRY_SCHEDULED')
      state.error = message
      this.rec.retryScheduled(state, wakeAt, message, { error: message, delayMs, nextAttempt: attempt + 1, wakeAt })
      this.armRetry(state, delayMs)
      return
    }
    this.run.fail(state, message, isRetryable(error))
  }
}

/** The current attempt of the step is `token` and still running (a late call of an abandoned one is ignored). */
function isLive(state: StepState, token: number): boolean {
  return state.token === token && state.status === 'RUNNING'
}

function noop(): void {}
