// The `ctx` an action's attempt gets, with an AbortSignal made only when the action reads
// `ctx.signal`. Most actions never read it, and Node builds an AbortSignal (an EventTarget) on the
// first read of `controller.signal`: ~2.5 µs, about 5 % of a no-op step's CPU.
import type { ActionContext } from './interfaces.ts'

/** An attempt's abort: fired on its signal if the action has read it, else on the signal it reads later. */
export class AttemptAbort {
  private controller: AbortController | undefined = undefined
  private aborted = false
  private reason: unknown = undefined

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController()
      // Read after the abort: the signal is aborted already, with the same reason.
      if (this.aborted) this.controller.abort(this.reason)
    }
    return this.controller.signal
  }

  /** Like AbortController.abort: only the first call counts. */
  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.controller?.abort(reason)
  }
}

/** `signal` assigned by an action: from then on a plain property, as it was before it was lazy. */
function setSignal(this: object, value: unknown): void {
  Object.defineProperty(this, 'signal', { value, writable: true, enumerable: true, configurable: true })
}

/**
 * A class only so that one shared accessor can reach the attempt's AttemptAbort through a private
 * field (a closure and descriptor per attempt would cost most of what the lazy signal saves).
 * `signal` is an own, enumerable property in its usual place, so `{ ...ctx }` and Object.keys see
 * the same keys, in the same order, as before. Fields are `declare`d so they are created in the
 * constructor in that order.
 */
export class AttemptContext implements ActionContext {
  declare runId: string
  declare workflowId: string
  declare stepId: string
  declare attempt: number
  declare signal: AbortSignal
  declare idempotencyKey: string
  declare steps: Record<string, unknown>
  declare previous: unknown
  declare input: unknown
  declare params: Record<string, unknown>
  declare progress: ActionContext['progress']
  declare artifact: ActionContext['artifact']
  declare log: ActionContext['log']
  readonly #abort: AttemptAbort

  private static readonly signalProperty: PropertyDescriptor = {
    get(this: AttemptContext) {
      return this.#abort.signal
    },
    set: setSignal,
    enumerable: true,
    configurable: true,
  }

  constructor(
    abort: AttemptAbort, runId: string, workflowId: string, stepId: string, attempt: number, idempotencyKey: string,
    steps: Record<string, unknown>, previous: unknown, input: unknown, params: Record<string, unknown>,
  ) {
    this.#abort = abort
    this.runId = runId
    this.workflowId = workflowId
    this.stepId = stepId
    this.attempt = attempt
    Object.defineProperty(this, 'signal', AttemptContext.signalProperty)
    this.idempotencyKey = idempotencyKey
    this.steps = steps
    this.previous = previous
    this.input = input
    this.params = params
    this.progress = unassigned
    this.artifact = unassigned
    this.log = unassigned
  }
}

/** Placeholder of a method assigned right after construction. */
function unassigned(): never {
  throw new Error('not assigned')
}
