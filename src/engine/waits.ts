// Durable waits of a run's steps (wait.ts says what they are): an attempt that returned
// `waitForSignal()` or `sleepUntil()` leaves its step WAITING, slots freed, until `signal` delivers
// the payload or the wait's timer fires. The wait is on the step row, so a restart arms it again.
import type { StepRecorder } from './step-recorder.ts'
import type { StepState, StepTransitions } from './step-state.ts'
import { ConflictError, NotFoundError } from './errors.ts'
import { toJson } from './summary.ts'
import { readWaitRecord, waitRecord, type WaitSpec } from './wait.ts'

/** What waits need of the run they belong to. */
export interface WaitingRun extends StepTransitions {
  readonly id: string
  /** Settling its last steps: a timer that fires or a signal that arrives no longer counts. */
  readonly finalizing: boolean
  /** Shut down (see RunExecution.abandon): nothing more happens. */
  readonly abandoned: boolean
}

export class StepWaits {
  constructor(
    private readonly run: WaitingRun,
    private readonly rec: StepRecorder,
    private readonly states: ReadonlyMap<string, StepState>,
  ) {}

  /** The attempt returned a wait: it ends WAITING and the step waits (its row says for what). */
  start(state: StepState, wait: WaitSpec): void {
    this.run.moveTo(state, 'WAITING')
    state.wait = wait
    const record = waitRecord(wait)
    this.rec.attemptEnded(state.node.id, state.attempts, 'WAITING', null)
    this.rec.waiting(state, record, wait.until ?? null, record.waiting)
    this.arm(state)
  }

  /** After a restart: the wait as its row holds it (a row without one waits for a signal). */
  resume(state: StepState, output: unknown): void {
    state.wait = readWaitRecord(output) ?? { signal: true }
    this.arm(state)
  }

  /** Delivers `signalRun`'s payload to a step waiting for a signal: it becomes the step's output. */
  signal(stepId: string, payload: unknown): void {
    const state = this.states.get(stepId)
    if (!state) throw new NotFoundError(`run ${this.run.id} has no step "${stepId}"`)
    if (state.status !== 'WAITING' || !state.wait?.signal || this.run.finalizing) {
      throw new ConflictError(`step "${stepId}" of run ${this.run.id} is ${state.status}, not waiting for a signal`)
    }
    this.finish(state, 'SUCCEEDED', toJson(payload ?? null))
  }

  /** A wait with `until`: its timer succeeds a sleep, or fails a signal that did not come in time. */
  private arm(state: StepState): void {
    const until = state.wait?.until
    if (until === undefined) return
    state.timer = setTimeout(() => {
      state.timer = undefined
      if (state.status !== 'WAITING' || this.run.finalizing || this.run.abandoned) return
      if (state.wait?.signal) this.finish(state, 'FAILED', undefined, `no signal arrived before ${new Date(until).toISOString()}`)
      else this.finish(state, 'SUCCEEDED', { firedAt: Date.now(), until })
    }, Math.max(0, until - Date.now()))
  }

  private finish(state: StepState, status: 'SUCCEEDED' | 'FAILED', output: unknown, error?: string): void {
    this.rec.attemptEnded(state.node.id, state.attempts, status, error ?? null)
    state.wait = undefined
    if (status === 'SUCCEEDED') this.run.settle(state, 'SUCCEEDED', { output })
    else this.run.fail(state, error!, false)
  }
}
