// `{{ ... }}` expressions inside definitions. The inside is JSONata: sandboxed (no JS eval), and
// compiled once per distinct text. A string that is exactly one expression keeps the value's type;
// a string mixing text and expressions interpolates.
import jsonata from 'jsonata'
import { evaluateInSandbox, needsSandbox } from './expression-sandbox.ts'
import { ExpressionSizeError, assertSizeWithin, boundGrowth, sizedBuiltins } from './expression-size.ts'

export { ExpressionSizeError } from './expression-size.ts'

type Part = string | jsonata.Expression
interface Compiled {
  /** Set when the whole string is one expression: its value is returned as is. */
  whole?: jsonata.Expression
  parts?: Part[]
}

const cache = new Map<string, Compiled>()
const CACHE_LIMIT = 10_000

export class ExpressionError extends Error {
  constructor(readonly expression: string, message: string) {
    super(`expression "${expression.trim()}": ${message}`)
    this.name = 'ExpressionError'
  }
}

export function hasExpression(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('{{')
  if (Array.isArray(value)) return value.some(hasExpression)
  if (value && typeof value === 'object') return Object.values(value).some(hasExpression)
  return false
}

/**
 * `value` as data that `resolveTemplates` gives back unchanged: every `{{` in its strings becomes an
 * expression whose value is `{{` (its braces written as JSONata escapes, so it opens nothing itself).
 * For params a caller gives (retryRun's edits, bound params): data, never expressions to evaluate.
 * Values without `{{` are returned as they are.
 */
export function literalTemplates<T>(value: T): T {
  if (!hasExpression(value)) return value
  if (typeof value === 'string') return value.replaceAll('{{', LITERAL_BRACES) as T
  if (Array.isArray(value)) return value.map(literalTemplates) as T
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = literalTemplates(v)
  return out as T
}

const LITERAL_BRACES = '{{"\\u007b\\u007b"}}'

/** Default of `EXPRESSION_LIMITS.maxResultBytes`: 16 MiB. */
export const DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024

/**
 * Budget of one evaluation: a pathological expression fails instead of holding the engine. Those that
 * could block inside one built-in call (regexes, $pad, $sort, ranges…) run in a worker thread that is
 * stopped when the budget is spent (expression-sandbox.ts). `maxResultBytes` bounds what an expression
 * builds (as JSON text): each string or list while it is built (`$s & $s` doubling builds 128 MB in
 * 24 steps, each cheap), and every result; params and outputs are stored, logged and sent to
 * subscribers, so a bigger one stalls the whole server. Set it before starting runs to change it.
 */
export const EXPRESSION_LIMITS = { timeout: 1_000, stack: 500, maxResultBytes: DEFAULT_MAX_RESULT_BYTES }

/** Compiled expressions that must be evaluated in the sandbox, with their text. */
const sandboxed = new WeakMap<jsonata.Expression, string>()

function compileExpression(text: string): jsonata.Expression {
  try {
    const expr = jsonata(text, EXPRESSION_LIMITS)
    if (needsSandbox(expr)) sandboxed.set(expr, text)
    else boundGrowth(expr, () => EXPRESSION_LIMITS.maxResultBytes)
    return expr
  } catch (error) {
    const e = error as { message?: string; position?: number }
    throw new ExpressionError(text, `${e.message ?? 'does not parse'}${e.position !== undefined ? ` (at ${e.position})` : ''}`)
  }
}

/**
 * The `{{ … }}` of a template, in order (the inside holds at least one character; the first `}}`
 * closes). A scan with indexOf, not a lazy regex: on `{{{{{{…` without a `}}` the regex retried from
 * every brace, quadratic in the length (a 40 KB string took ~1 s).
 */
function scanTemplate(text: string): { matches: { start: number; end: number; inner: string }[]; unclosed: boolean } {
  const matches: { start: number; end: number; inner: string }[] = []
  let from = 0
  for (;;) {
    const start = text.indexOf('{{', from)
    if (start < 0) return { matches, unclosed: false }
    const close = text.indexOf('}}', start + 3)
    if (close < 0) return { matches, unclosed: true }
    matches.push({ start, end: close + 2, inner: text.slice(start + 2, close) })
    from = close + 2
  }
}

function compileTemplate(text: string): Compiled {
  const hit = cache.get(text)
  if (hit) return hit
  const { matches, unclosed } = scanTemplate(text)
  // Text left over between expressions must not open another one that never closes.
  if (unclosed) throw new ExpressionError(text, "'{{' is never closed with '}}'")
  let compiled: Compiled
  if (matches.length === 1 && matches[0]!.end - matches[0]!.start === text.trim().length) {
    compiled = { whole: compileExpression(matches[0]!.inner) }
  } else {
    // The same expression twice in one string is compiled once.
    const seen = new Map<string, jsonata.Expression>()
    const parts: Part[] = []
    let last = 0
    for (const m of matches) {
      if (m.start > last) parts.push(text.slice(last, m.start))
      let expr = seen.get(m.inner)
      if (!expr) seen.set(m.inner, (expr = compileExpression(m.inner)))
      parts.push(expr)
      last = m.end
    }
    if (last < text.length) parts.push(text.slice(last))
    compiled = { parts }
  }
  if (cache.size >= CACHE_LIMIT) cache.clear()
  cache.set(text, compiled)
  return compiled
}

/** Parse errors of every expression inside `value`, each with its path below `path`. */
export function expressionIssues(value: unknown, path: string): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = []
  const walk = (v: unknown, p: string) => {
    if (typeof v === 'string') {
      if (!v.includes('{{')) return
      try {
        compileTemplate(v)
      } catch (error) {
        issues.push({ path: p, message: (error as Error).message })
      }
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${p}[${i}]`))
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${p}.${k}`)
  }
  walk(value, path)
  return issues
}

/** Parse errors of a bare expression (used by `when` and `forEach`, where `{{ }}` is optional). */
export function bareExpressionIssue(text: string): string | undefined {
  try {
    if (text.includes('{{')) compileTemplate(text)
    else compileExpression(text)
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

async function evaluate(expr: jsonata.Expression, scope: object, text: string): Promise<unknown> {
  try {
    const source = sandboxed.get(expr)
    // The sandbox measures its result as JSON before sending it back (same limit, same message).
    if (source !== undefined) return await evaluateInSandbox(source, scope, undefined, EXPRESSION_LIMITS)
    const value = await expr.evaluate(scope, await builtins)
    checkSize(value)
    return value
  } catch (error) {
    throw new ExpressionError(text, (error as Error).message)
  }
}

/** `$string` and `$join` measured before they make text (expression-size.ts). */
const builtins = sizedBuiltins(() => EXPRESSION_LIMITS.maxResultBytes)

function checkSize(value: unknown): void {
  assertSizeWithin(value, EXPRESSION_LIMITS.maxResultBytes)
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/**
 * Resolves every `{{ }}` inside `value` (objects and arrays walked deeply) against `scope`. The
 * whole result is bounded like each expression's (many values just under the limit would not be).
 */
export async function resolveTemplates(value: unknown, scope: object): Promise<unknown> {
  if (!hasExpression(value)) return value
  const resolved = await resolveDeep(value, scope)
  checkSize(resolved)
  return resolved
}

async function resolveDeep(value: unknown, scope: object): Promise<unknown> {
  if (typeof value === 'string') {
    if (!value.includes('{{')) return value
    const compiled = compileTemplate(value)
    if (compiled.whole) return normalise(await evaluate(compiled.whole, scope, value))
    let out = ''
    for (const part of compiled.parts!) {
      out += typeof part === 'string' ? part : stringify(await evaluate(part, scope, value))
      // Each part is bounded; many of them could still add up.
      if (out.length > EXPRESSION_LIMITS.maxResultBytes) throw new ExpressionError(value, new ExpressionSizeError(out.length, EXPRESSION_LIMITS.maxResultBytes).message)
    }
    return out
  }
  if (Array.isArray(value)) {
    if (!hasExpression(value)) return value
    return Promise.all(value.map((v) => resolveDeep(v, scope)))
  }
  if (value && typeof value === 'object') {
    if (!hasExpression(value)) return value
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = await resolveDeep(v, scope)
    return out
  }
  return value
}

/** Evaluates a bare or `{{ }}`-wrapped expression to a value. */
export async function evaluateExpression(text: string, scope: object): Promise<unknown> {
  if (text.includes('{{')) return resolveTemplates(text, scope)
  return normalise(await evaluate(compileExpression(text), scope, text))
}

export function isTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0
  return Boolean(value)
}

// JSONata marks result sequences with extra properties; hand plain JSON values to the caller.
function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise)
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) !== Object.prototype) {
    return JSON.parse(JSON.stringify(value))
  }
  return value
}
