// Synchronisation helpers for tests that must prove overlap without timing thresholds.

/**
 * A barrier for `parties` callers: `arrive()` resolves only once all of them have arrived. Actions
 * that run one after another can never all arrive, so they fail with a clear message (a deadlock
 * guard, not a speed assertion) instead of hanging the test.
 */
export function barrier(parties: number, label = 'barrier', guardMs = 5_000) {
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

/** Resolves once `check()` is true (polls the event loop; the test timeout is the only limit). */
export async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 2))
}
