// Typed errors of the library. The GraphQL layer maps the first three onto its error union members.
import type { ValidationIssue } from './interfaces.ts'

export class ConveyorError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** A definition, input or argument was rejected; nothing was stored. */
export class ValidationError extends ConveyorError {
  constructor(message: string, readonly issues: ValidationIssue[]) {
    super(message)
  }
}

export class NotFoundError extends ConveyorError {}

/** The request is well-formed but conflicts with the current state (e.g. cancelling a finished run). */
export class ConflictError extends ConveyorError {}

/** Thrown by an action to fail its step at once, without further retries. */
export class NonRetryableError extends ConveyorError {}

/** The step or run ran out of time. Retryable for steps. */
export class TimeoutError extends ConveyorError {}

/** The run was cancelled or the engine is shutting down. */
export class CancelledError extends ConveyorError {}

/**
 * The database refused a change (disk full, read-only, locked past the busy timeout, I/O error);
 * nothing was changed. `code` is SQLite's (e.g. SQLITE_FULL).
 */
export class StorageError extends ConveyorError {
  constructor(message: string, readonly code: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** An error from SQLite (better-sqlite3's SqliteError carries a `SQLITE_*` code). */
export function isSqliteError(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code
  return error instanceof Error && typeof code === 'string' && code.startsWith('SQLITE_')
}

export function isRetryable(error: unknown): boolean {
  if (error instanceof NonRetryableError || error instanceof CancelledError) return false
  if (error && typeof error === 'object' && (error as { retryable?: unknown }).retryable === false) return false
  return true
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name
  if (typeof error === 'string') return error
  try {
    return JSON.stringify(error)
  } catch {
    return String(error)
  }
}
