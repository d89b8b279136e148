// Durable waits. An action returns `waitForSignal()` or `sleepUntil()` instead of a value: its step
// goes WAITING (its slot is freed) until `signalRun` delivers a payload or the timer fires. The wait
// is stored on the step row, so it survives restarts and fires once.

const WAIT = Symbol.for('conveyor.wait')

export interface WaitSpec {
  /** Wake on `signalRun(runId, stepId, payload)`; the payload becomes the step's output. */
  signal?: boolean
  /** Epoch ms: a timer wakes the step then (a delay), or fails it (a signal that never came). */
  until?: number
}

export interface WaitInstruction extends WaitSpec {
  [WAIT]: true
}

/** Waits for `signalRun`; with `timeoutMs`, fails the step if no signal arrives in time. */
export function waitForSignal(options: { timeoutMs?: number } = {}): WaitInstruction {
  return { [WAIT]: true, signal: true, until: options.timeoutMs ? Date.now() + options.timeoutMs : undefined }
}

/** A durable timer: the step succeeds at `until` (epoch ms), surviving restarts. */
export function sleepUntil(until: number): WaitInstruction {
  return { [WAIT]: true, until }
}

export function isWaitInstruction(value: unknown): value is WaitInstruction {
  return !!value && typeof value === 'object' && (value as Record<symbol, unknown>)[WAIT] === true
}

/** What is stored on a WAITING step's row. */
export function waitRecord(spec: WaitSpec): { waiting: { signal: boolean; until: number | null } } {
  return { waiting: { signal: !!spec.signal, until: spec.until ?? null } }
}

export function readWaitRecord(output: unknown): WaitSpec | undefined {
  const w = (output as { waiting?: { signal?: boolean; until?: number | null } } | null)?.waiting
  return w ? { signal: !!w.signal, until: w.until ?? undefined } : undefined
}
