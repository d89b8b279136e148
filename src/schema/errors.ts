// Typed errors in mutation results: the engine's ValidationError, NotFoundError and ConflictError
// become union members, never bare strings. Anything else is a real server error.
import { builder } from './builder.ts'
import { ConflictError, NotFoundError, ValidationError } from '../engine/errors.ts'
import type { ValidationIssue } from '../engine/interfaces.ts'

export const ErrorInterface = builder.interfaceRef<Error>('Error').implement({
  fields: (t) => ({ message: t.exposeString('message') }),
})

export const ValidationIssueType = builder.objectRef<ValidationIssue>('ValidationIssue').implement({
  description: 'One problem, with the path of the offending field (e.g. `steps[1].action`).',
  fields: (t) => ({ path: t.exposeString('path'), message: t.exposeString('message') }),
})

export const ValidationErrorType = builder.objectType(ValidationError, {
  name: 'ValidationError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ValidationError,
  fields: (t) => ({ issues: t.field({ type: [ValidationIssueType], resolve: (e) => e.issues }) }),
})

export const NotFoundErrorType = builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof NotFoundError,
  fields: () => ({}),
})

export const ConflictErrorType = builder.objectType(ConflictError, {
  name: 'ConflictError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ConflictError,
  fields: () => ({}),
})

export type TypedError = ValidationError | NotFoundError | ConflictError

/** Runs a mutation; the engine's typed errors are returned as union members, others rethrown. */
export async function asResult<T>(run: () => Promise<T> | T): Promise<T | TypedError> {
  try {
    return await run()
  } catch (error) {
    if (error instanceof ValidationError || error instanceof NotFoundError || error instanceof ConflictError) return error
    throw error
  }
}

