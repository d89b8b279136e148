// Synchronisation helpers for tests that must prove overlap without timing thresholds, and waits on
// conditions (never on a fixed sleep) whose only deadline bounds a hang.

/**
 * A barrier for `parties` callers: `arrive()` resolves only once all of them have arrived. Actions
 * that run one after another can never all arrive, so they fail with a clear message (a deadlock
 * guard, not a speed assertion) instead of hanging the test.
 */
export function barrier(parties: number, label = 'barrier', guardMs = 60_000) {
  let arrived = 0
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return {
    get arrived() {
      return arrived
    },
    async arrive(): Promise<void> {
      arrived++
      if (arrived >= parties) open()
      let timer: NodeJS.Timeout | undefined
      const guard = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${label}: only ${arrived} of ${parties} arrived, so they did not run at the same time`)),
          guardMs,
        )
      })
      try {
        await Promise.race([opened, guard])
      } finally {
        clearTimeout(timer)
      }
    },
  }
}

/** A one-shot latch that the test opens by hand. */
export function latch() {
  let open!: () => void
  let isOpen = false
  const opened = new Promise<void>((resolve) => (open = resolve))
  return {
    get isOpen() {
      return isOpen
    },
    open() {
      isOpen = true
      open()
    },
    wait: () => opened,
  }
}

/** How long a wait on a condition may take before it is called a hang: long, since it only bounds one. */
export const HANG_MS = 120_000

export interface UntilOptions {
  /** What is awaited, for the error message. */
  what?: string
  /** Gives up (throws) after this long: a hang bound, not a speed expectation. Default HANG_MS. */
  timeoutMs?: number
  /** Time between checks. Default 2 ms (a cheap in-process check); poll slower for I/O. */
  everyMs?: number
}

/**
 * Resolves once `check()` is true (sync or async; polls the event loop). Waits on the condition
 * however slow the machine is; only a hang (`timeoutMs`, default 120 s) fails it, with `what`.
 */
export async function until(check: () => boolean | Promise<boolean>, options: UntilOptions | string = {}): Promise<void> {
  const { what = 'condition', timeoutMs = HANG_MS, everyMs = 2 } = typeof options === 'string' ? { what: options } : options
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** `promise`, or an error naming `what` if it has not settled after `timeoutMs` (a hang bound). */
export async function within<T>(promise: Promise<T>, what: string, timeoutMs = HANG_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting for ${what} after ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, hang])
  } finally {
    clearTimeout(timer)
  }
}
