// Small statistics helpers for the benchmarks: percentiles (nearest rank) and medians.

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return Number.NaN
  const sorted = [...finite].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** p50 and p99 of a list of latencies (ms). */
export function latencySummary(values: readonly number[]): { p50: number; p99: number; max: number; n: number } {
  return { p50: percentile(values, 50), p99: percentile(values, 99), max: values.length ? Math.max(...values) : Number.NaN, n: values.length }
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export function now(): number {
  return performance.now()
}

/** Runs `task` over `items` with at most `limit` in flight; resolves when all are done. */
export async function inFlight<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      await task(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

export function mb(bytes: number): number {
  return bytes / (1024 * 1024)
}

/**
 * Chains run before the measured ones, by Conveyor and by every peer alike: enough for V8 to have
 * optimised the hot paths and sized its heap (with 50, a round measured ~20 µs per step of JIT and
 * GC warm-up on top of the steady state).
 */
export const CHAIN_WARMUP_RUNS = 500

/** Steps of the fan-out run before the measured one, for Conveyor and the BullMQ flow alike (200 before run E). */
export const FAN_OUT_WARMUP_STEPS = 2000
