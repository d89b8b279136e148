// How deep JSON-like input nests, found without recursion: checks, clones and serialisers that
// recurse overflow the stack on input nested a few thousand levels deep, so such input is refused
// before any of them runs.
import { ValidationError } from './errors.ts'
import { formatPath } from './definition.ts'

/** JSON values given to the engine or the API (inputs, params, payloads) nest at most this deep. */
export const MAX_JSON_DEPTH = 128

/** The path (keys and indexes) of the first value nested deeper than `limit` levels, or undefined. */
export function pathDeeperThan(input: unknown, limit: number): (string | number)[] | undefined {
  // Each entry: the value, its depth, and (for the path, built only when needed) its key and parent entry.
  const values: unknown[] = [input]
  const depths: number[] = [1]
  const keys: (string | number)[] = ['']
  const parents: number[] = [-1]
  for (let n = 0; n < values.length; n++) {
    const value = values[n]
    if (!value || typeof value !== 'object') continue
    if (depths[n]! > limit) {
      const path: (string | number)[] = []
      for (let at = n; at > 0; at = parents[at]!) path.unshift(keys[at]!)
      return path
    }
    const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value)
    for (const [key, child] of entries) {
      if (!child || typeof child !== 'object') continue
      values.push(child)
      depths.push(depths[n]! + 1)
      keys.push(key)
      parents.push(n)
    }
  }
  return undefined
}

/** Throws a ValidationError naming `what` and the path when `value` nests deeper than MAX_JSON_DEPTH. */
export function assertShallowJson(value: unknown, what: string): void {
  const deep = pathDeeperThan(value, MAX_JSON_DEPTH)
  if (deep) {
    const message = `nested more than ${MAX_JSON_DEPTH} levels deep`
    throw new ValidationError(`${what} is ${message}`, [{ path: formatPath(deep, what), message }])
  }
}
