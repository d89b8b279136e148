// Retry policy: the step's over the action's default over the workflow's default.
import type { RetryPolicy } from './interfaces.ts'

export interface ResolvedRetry {
  maxAttempts: number
  backoff: 'fixed' | 'exponential' | 'linear'
  initialMs: number
  maxMs: number
  jitter: number
}

export const DEFAULT_RETRY: ResolvedRetry = { maxAttempts: 1, backoff: 'exponential', initialMs: 1000, maxMs: 60_000, jitter: 0 }

export function resolveRetry(...layers: (RetryPolicy | undefined)[]): ResolvedRetry {
  const merged: ResolvedRetry = { ...DEFAULT_RETRY }
  // Later layers are less specific: apply them first so the most specific wins.
  for (const layer of [...layers].reverse()) {
    if (!layer) continue
    if (layer.maxAttempts !== undefined) merged.maxAttempts = layer.maxAttempts
    if (layer.backoff !== undefined) merged.backoff = layer.backoff
    if (layer.initialMs !== undefined) merged.initialMs = layer.initialMs
    if (layer.maxMs !== undefined) merged.maxMs = layer.maxMs
    if (layer.jitter !== undefined) merged.jitter = layer.jitter === true ? 1 : layer.jitter === false ? 0 : layer.jitter
  }
  return merged
}

/** Delay before attempt `attempt + 1`, after `attempt` attempts failed. Jitter takes up to that
 * fraction of the delay off at random ("equal jitter" at 0.5, "full jitter" at 1), never adds to the cap. */
export function backoffDelay(policy: ResolvedRetry, attempt: number, random: () => number = Math.random): number {
  let delay: number
  switch (policy.backoff) {
    case 'fixed':
      delay = policy.initialMs
      break
    case 'linear':
      delay = policy.initialMs * attempt
      break
    case 'exponential':
      delay = policy.initialMs * 2 ** (attempt - 1)
      break
  }
  delay = Math.min(delay, policy.maxMs)
  if (policy.jitter > 0) delay -= delay * policy.jitter * random()
  return Math.max(0, Math.round(delay))
}

/**
 * The delay before the next attempt after `error` ended attempt `attempt`. An error may carry
 * `retryAfterMs` (a finite number >= 0, e.g. from an HTTP `Retry-After` header): the server's word
 * then replaces the backoff, capped by the policy's `maxMs` and without jitter.
 */
export function retryDelay(policy: ResolvedRetry, attempt: number, error: unknown, random: () => number = Math.random): number {
  const after = error && typeof error === 'object' ? (error as { retryAfterMs?: unknown }).retryAfterMs : undefined
  if (typeof after === 'number' && Number.isFinite(after) && after >= 0) return Math.round(Math.min(after, policy.maxMs))
  return backoffDelay(policy, attempt, random)
}
