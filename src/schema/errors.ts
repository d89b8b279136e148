// Typed errors in mutation results: the engine's ValidationError, NotFoundError and ConflictError
// become union members, never bare strings. Anything else is a real server error.
import { builder } from './builder.ts'
import { GraphQLError } from 'graphql'
import { ConflictError, NotFoundError, StorageError, ValidationError, isSqliteError } from '../engine/errors.ts'
import type { ValidationIssue } from '../engine/interfaces.ts'

export const ErrorInterface = builder.interfaceRef<{ message: string }>('Error').implement({
  fields: (t) => ({ message: t.exposeString('message') }),
})

export const ValidationIssueType = builder.objectRef<ValidationIssue>('ValidationIssue').implement({
  description: 'One problem, with the path of the offending field (e.g. `steps[1].action`).',
  fields: (t) => ({ path: t.exposeString('path'), message: t.exposeString('message') }),
})

// Resolvers must not return Error instances (graphql-js treats them as failures), so typed errors
// travel as plain objects tagged with their GraphQL type.
export interface TypedError {
  typename: 'ValidationError' | 'NotFoundError' | 'ConflictError'
  message: string
  issues: ValidationIssue[]
}

const typedErrorType = (name: TypedError['typename'], description: string) =>
  builder.objectRef<TypedError>(name).implement({
    description,
    interfaces: [ErrorInterface],
    isTypeOf: (value) => (value as TypedError).typename === name,
    fields: (t) => (name === 'ValidationError' ? { issues: t.field({ type: [ValidationIssueType], resolve: (e) => e.issues }) } : {}) as never,
  })

export const ValidationErrorType = typedErrorType('ValidationError', 'The input was rejected; nothing was changed. Every problem is listed with its path.')
export const NotFoundErrorType = typedErrorType('NotFoundError', 'No object with that id or name.')
export const ConflictErrorType = typedErrorType('ConflictError', 'The request conflicts with the current state, e.g. cancelling a finished run.')

/** Runs a mutation; the engine's typed errors are returned as union members, others rethrown. */
export async function asResult<T>(run: () => Promise<T> | T): Promise<T | TypedError> {
  try {
    return await run()
  } catch (error) {
    if (error instanceof ValidationError) return { typename: 'ValidationError', message: error.message, issues: error.issues }
    if (error instanceof NotFoundError) return { typename: 'NotFoundError', message: error.message, issues: [] }
    if (error instanceof ConflictError) return { typename: 'ConflictError', message: error.message, issues: [] }
    throw storageGraphQLError(error) ?? error
  }
}

/**
 * The database refused the change (disk full, read-only, locked, I/O): a clear GraphQL error with
 * code STORAGE_UNAVAILABLE instead of a masked "Unexpected error".
 */
export function storageGraphQLError(error: unknown): GraphQLError | undefined {
  if (!(error instanceof StorageError) && !isSqliteError(error)) return undefined
  const { code, message: reason } = error as Error & { code: string }
  const message = error instanceof StorageError ? reason : `the database refused the change (${code}: ${reason}); nothing was changed`
  return new GraphQLError(message, { extensions: { code: 'STORAGE_UNAVAILABLE', sqlite: code } })
}
