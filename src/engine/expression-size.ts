// How large a value an expression builds, bounded while it is built and measured as JSON text
// without making that text (a list holding one 16 MB string a million times is small in memory and
// 16 TB as JSON). Used for `{{ }}` templates and transform.map alike.
import jsonata from 'jsonata'
const MB = 1024 * 1024

/** An expression's result, or a value it built on the way, is larger than the limit. */
export class ExpressionSizeError extends Error {
  /** `bytes` is exact, or with `atLeast` where measuring stopped (past the limit). */
  constructor(readonly bytes: number, readonly limitBytes: number, atLeast = false) {
    const [size, limit] = [formatMb(bytes), formatMb(limitBytes)]
    // Just past the limit both round alike: say the bytes then.
    super(atLeast
      ? `expression result is larger than the limit of ${limit}`
      : size === limit
        ? `expression result is ${bytes} bytes; the limit is ${limitBytes} bytes (${limit})`
        : `expression result is ${size}; the limit is ${limit}`)
    this.name = 'ExpressionSizeError'
  }
}

export function formatMb(bytes: number): string {
  const mb = bytes / MB
  return `${mb >= 10 ? Math.round(mb) : Math.round(mb * 10) / 10} MB`
}

/**
 * The length of `value` as JSON (strings without their escapes), or the first count past `limit`:
 * the walk stops there, so it visits at most about `limit` nodes.
 */
export function jsonSizeUpTo(value: unknown, limit: number): number {
  let size = 0
  const seen: object[] = []
  const walk = (v: unknown): void => {
    if (size > limit) return
    if (typeof v === 'string') size += v.length + 2
    else if (typeof v === 'number' || typeof v === 'boolean') size += String(v).length
    else if (v === null) size += 4
    else if (Array.isArray(v)) {
      if (seen.includes(v)) return // a cycle: JSON refuses it later, with its own message
      seen.push(v)
      size += 1 + v.length
      for (const x of v) if (size <= limit) walk(x)
      seen.pop()
    } else if (typeof v === 'object') {
      if (seen.includes(v)) return
      seen.push(v)
      size += 1
      for (const [k, x] of Object.entries(v)) {
        if (size > limit) break
        size += k.length + 4
        walk(x)
      }
      seen.pop()
    }
  }
  walk(value)
  return size
}

/** JSONata calls this after every evaluation step (its hook for debuggers): growth fails there. */
const AFTER_EACH_STEP = Symbol.for('jsonata.__evaluate_exit')

/**
 * Makes `expr` fail as soon as one step builds a string, or a list, larger than `limit()` allows:
 * `$s & $s` doubles a string in one cheap step, 128 MB in 24 of them. A string's length is known
 * without copying it; a list is at least two bytes an item. What is turned into text in one native
 * call is measured before: a list or object given to `&` (as its operand's step ends) and to
 * `$string` or `$join` (see `sizedBuiltins`): a list of a million references to one 16 MB string
 * is small, its text is not.
 */
export function boundGrowth(expr: jsonata.Expression, limit: () => number): void {
  const operands = concatOperands(expr.ast())
  expr.assign(AFTER_EACH_STEP as unknown as string, (node: object, _input: unknown, _env: unknown, result: unknown) => {
    const max = limit()
    if (typeof result === 'string' && result.length > max) throw new ExpressionSizeError(result.length, max)
    if (Array.isArray(result) && result.length * 2 > max) throw new ExpressionSizeError(result.length * 2, max)
    if (result !== null && typeof result === 'object' && operands.has(node)) assertSizeWithin(result, max)
  })
}

/** The operands of every `&` in the tree: JSONata turns a list or object there into JSON text. */
function concatOperands(ast: unknown): WeakSet<object> {
  const out = new WeakSet<object>()
  const seen = new WeakSet<object>()
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object' || node instanceof RegExp || seen.has(node)) return
    seen.add(node)
    const n = node as { type?: unknown; value?: unknown; lhs?: object; rhs?: object }
    if (n.type === 'binary' && n.value === '&') {
      if (n.lhs) out.add(n.lhs)
      if (n.rhs) out.add(n.rhs)
    }
    for (const value of Object.values(node)) visit(value)
  }
  visit(ast)
  return out
}

interface NativeFunction {
  _jsonata_function: true
  implementation: (...args: unknown[]) => unknown
  signature?: unknown
}

const natives = Promise.all([jsonata('$string').evaluate(null), jsonata('$join').evaluate(null)]) as Promise<[NativeFunction, NativeFunction]>

/**
 * `$string` and `$join` that measure what they would make first, to pass as bindings (they shadow
 * the built-ins; same signatures, same results otherwise).
 */
export async function sizedBuiltins(limit: () => number): Promise<Record<string, unknown>> {
  const [string, join] = await natives
  return {
    string: {
      ...string,
      implementation(this: unknown, ...args: unknown[]) {
        if (args[0] !== null && typeof args[0] === 'object') assertSizeWithin(args[0], limit())
        return string.implementation.apply(this, args)
      },
    },
    join: {
      ...join,
      implementation(this: unknown, ...args: unknown[]) {
        const [strings, separator] = args as [unknown, unknown]
        if (Array.isArray(strings)) {
          const max = limit()
          const gap = typeof separator === 'string' ? separator.length : 0
          let size = 0
          for (const x of strings) {
            size += (typeof x === 'string' ? x.length : 0) + gap
            if (size > max) throw new ExpressionSizeError(size, max, true)
          }
        }
        return join.implementation.apply(this, args)
      },
    },
  }
}

/** Throws ExpressionSizeError when `value` as JSON would be larger than `limit` bytes. */
export function assertSizeWithin(value: unknown, limit: number): void {
  const size = jsonSizeUpTo(value, limit)
  // A list or object is measured only until it is past the limit.
  if (size > limit) throw new ExpressionSizeError(size, limit, typeof value === 'object' && value !== null)
}
