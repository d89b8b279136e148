// How large a value the engine takes and stores. Checked before anything is queued: a value SQLite
// would refuse (SQLITE_TOOBIG) must fail its own step or request with a clear message, never reach
// a commit, and a huge one would hold every commit that carries it.
import { ValidationError } from './errors.ts'

export interface ValueLimits {
  /** Step and run outputs, run inputs, params and signal payloads, as JSON text. Default 16 MiB. */
  maxValueBytes: number
  /** A log, progress or error message; a longer one is cut (saying how much was cut). Default 64 KiB. */
  maxMessageBytes: number
  /** One artifact's bytes (`ctx.artifact`; written to disk on the event loop). Default 64 MiB. */
  maxArtifactBytes: number
}

export const DEFAULT_VALUE_LIMITS: ValueLimits = { maxValueBytes: 16 * 1024 * 1024, maxMessageBytes: 64 * 1024, maxArtifactBytes: 64 * 1024 * 1024 }

/** The limits of a config, checked: each a positive whole number of bytes. */
export function valueLimits(given: Partial<ValueLimits> = {}): ValueLimits {
  const limits = { ...DEFAULT_VALUE_LIMITS, ...given }
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`limits.${key} must be a positive whole number of bytes, not ${JSON.stringify(value)}`)
  }
  return limits
}

/** The UTF-8 size of `text` when it is over `limit`, else undefined (a UTF-16 unit is at most 3 bytes: short texts are not measured). */
export function bytesOver(text: string, limit: number): number | undefined {
  if (text.length * 3 <= limit) return undefined
  const bytes = Buffer.byteLength(text)
  return bytes > limit ? bytes : undefined
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`
  return `${bytes} bytes`
}

/** "`what` is 17.0 MB; the limit is 16.0 MB (`setting`)" */
export function sizeMessage(what: string, bytes: number, limit: number, setting?: string): string {
  return `${what} is ${formatBytes(bytes)}; the limit is ${formatBytes(limit)}${setting ? ` (${setting})` : ''}`
}

/** Throws a ValidationError when `value`'s JSON text is larger than `limit` (a request's input, params or payload). */
export function assertStorableSize(value: unknown, what: string, limit: number): void {
  if (value === undefined) return
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    return // not JSON: the caller's other checks say so
  }
  const over = text === undefined ? undefined : bytesOver(text, limit)
  if (over !== undefined) {
    const message = sizeMessage(what, over, limit)
    throw new ValidationError(message, [{ path: what, message }])
  }
}

/** `text` cut to at most `limit` bytes of UTF-8 (about: cut by UTF-16 units), saying how much was cut. */
export function clipMessage(text: string, limit: number): string {
  if (text.length * 3 <= limit) return text
  const bytes = Buffer.byteLength(text)
  if (bytes <= limit) return text
  const kept = Buffer.from(text).subarray(0, limit).toString().replace(/\uFFFD$/, '')
  return `${kept}… (${formatBytes(bytes - Buffer.byteLength(kept))} more cut)`
}
