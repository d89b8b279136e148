// Forward keyset pagination for Relay connections: fetch one row more than asked to know whether
// another page follows. Cursors are opaque strings (an id or a seq).
import { GraphQLError } from 'graphql'

export const MAX_PAGE = 500
export const DEFAULT_PAGE = 50

export interface ConnectionArgs {
  first?: number | null
  after?: string | null
  last?: number | null
  before?: string | null
}

export function pageSize(args: ConnectionArgs): number {
  if (args.last != null || args.before != null) {
    throw new GraphQLError('only forward pagination (first / after) is supported', { extensions: { code: 'BAD_USER_INPUT' } })
  }
  const first = args.first ?? DEFAULT_PAGE
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE) {
    throw new GraphQLError(`first must be between 0 and ${MAX_PAGE}`, { extensions: { code: 'BAD_USER_INPUT' } })
  }
  return first
}

export function connection<T>(rows: T[], size: number, cursorOf: (row: T) => string, after: string | null | undefined) {
  const nodes = rows.slice(0, size)
  const edges = nodes.map((node) => ({ cursor: cursorOf(node), node }))
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > size,
      hasPreviousPage: !!after,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  }
}

/** Rows come back from SQL in any order; DataLoader needs them in the order of its keys. */
export function inKeyOrder<K, T>(keys: readonly K[], rows: T[], keyOf: (row: T) => K): (T | null)[] {
  const map = new Map<K, T>()
  for (const row of rows) map.set(keyOf(row), row)
  return keys.map((k) => map.get(k) ?? null)
}

/** An event cursor: a seq, or 'HEAD' where allowed. */
export function parseSeqCursor(after: string | null | undefined, allowHead: boolean): number | 'HEAD' {
  if (after == null || after === '') return 0
  if (allowHead && after === 'HEAD') return 'HEAD'
  if (!/^\d{1,15}$/.test(after)) {
    throw new GraphQLError(`"${after}" is not a valid cursor${allowHead ? ' (use a cursor from an event, or "HEAD")' : ''}`, {
      extensions: { code: 'BAD_USER_INPUT' },
    })
  }
  return Number(after)
}

/** Query cost of a connection field: each requested item costs as much as its selection. */
export const connectionComplexity = (args: ConnectionArgs) => ({ field: 1, multiplier: Math.max(1, args.first ?? DEFAULT_PAGE) })

/**
 * A list field that is not a connection still has a declared bound: a `first` / `last` argument
 * with a default and a maximum. The query's cost multiplies by it (an unbounded list was costed as
 * 10 items, whatever it held), and the read stops at it.
 */
export interface ListBound {
  arg: 'first' | 'last'
  default: number
  max: number
}

/** A run's steps (Run.steps) and a step's attempts (Step.attemptHistory). */
export const STEPS_BOUND: ListBound = { arg: 'first', default: 50, max: MAX_PAGE }
export const ATTEMPTS_BOUND: ListBound = { arg: 'last', default: 20, max: 1000 }

/** The bound a request asked for, or a BAD_USER_INPUT error naming the limit. */
export function listSize(value: number | null | undefined, bound: ListBound): number {
  const n = value ?? bound.default
  if (!Number.isInteger(n) || n < 0 || n > bound.max) {
    throw new GraphQLError(`${bound.arg} must be between 0 and ${bound.max}`, { extensions: { code: 'BAD_USER_INPUT', limit: bound.max } })
  }
  return n
}

/** Query cost of a bounded list field: each item it may return costs as much as its selection. */
export const listComplexity = (bound: ListBound) => (args: Record<string, unknown>) => ({
  field: 1,
  multiplier: Math.max(1, Math.min(typeof args[bound.arg] === 'number' ? (args[bound.arg] as number) : bound.default, bound.max)),
})
