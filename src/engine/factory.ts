// Factories: `defineFactory` for typed ones, and plain objects whose methods are actions (the seed
// passes instances). The registry is what validation and dispatch look actions up in.
import { z, type ZodType } from 'zod'
import { distance } from 'fastest-levenshtein'
import type { ActionDefinition, FactoryDefinition, FactoryHealthResult } from './interfaces.ts'
import { errorMessage } from './errors.ts'

export function defineFactory<const A extends Record<string, ActionDefinition>>(
  definition: {
    name: string
    description?: string
    concurrency?: number
    ratePerSecond?: number
    actions: A
    health?: () => Promise<FactoryHealthResult> | FactoryHealthResult
  },
): FactoryDefinition & { actions: A } {
  return definition
}

/** Anything `registerFactory` accepts: a defined factory or an object whose methods are its actions. */
export type FactoryLike = FactoryDefinition | object

export interface RegisteredAction {
  factory: string
  name: string
  definition: ActionDefinition
  inputJsonSchema: Record<string, unknown>
  outputJsonSchema: Record<string, unknown> | null
}

export interface RegisteredFactory {
  name: string
  description: string
  concurrency?: number
  ratePerSecond?: number
  actions: Map<string, RegisteredAction>
  /** The factory's own health check (factories made with `defineFactory` may declare one). */
  health?: () => Promise<FactoryHealthResult> | FactoryHealthResult
}

export interface FactoryHealthReport extends FactoryHealthResult {
  checkedAt: Date
}

export const HEALTH_CHECK_TIMEOUT_MS = 2000

/**
 * Runs a factory's health check with a deadline. A check that throws, times out or answers
 * something other than `{ ok: boolean }` reports ok: false with the reason; a factory without a
 * check reports ok: true, "no health check". Concurrent callers share one check.
 */
export function checkFactoryHealth(factory: RegisteredFactory, timeoutMs = HEALTH_CHECK_TIMEOUT_MS): Promise<FactoryHealthReport> {
  // Callers asking while a check runs share it: a burst of health queries makes one call to what the
  // factory depends on, not one each.
  const running = checksInFlight.get(factory)
  if (running) return running
  const check = runHealthCheck(factory, timeoutMs).finally(() => checksInFlight.delete(factory))
  checksInFlight.set(factory, check)
  return check
}

const checksInFlight = new WeakMap<RegisteredFactory, Promise<FactoryHealthReport>>()

async function runHealthCheck(factory: RegisteredFactory, timeoutMs: number): Promise<FactoryHealthReport> {
  if (!factory.health) return { ok: true, message: 'no health check', checkedAt: new Date() }
  let timer: NodeJS.Timeout | undefined
  try {
    const check = factory.health
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`health check timed out after ${timeoutMs} ms`)), timeoutMs)
    })
    const result = await Promise.race([Promise.resolve().then(() => check()), deadline])
    if (!result || typeof result !== 'object' || typeof (result as { ok?: unknown }).ok !== 'boolean') {
      return { ok: false, message: 'health check did not answer { ok: boolean }', checkedAt: new Date() }
    }
    const message = (result as { message?: unknown }).message
    return { ok: result.ok, message: typeof message === 'string' ? message : undefined, checkedAt: new Date() }
  } catch (error) {
    return { ok: false, message: errorMessage(error), checkedAt: new Date() }
  } finally {
    clearTimeout(timer)
  }
}

function isFactoryDefinition(value: object): value is FactoryDefinition {
  const actions = (value as { actions?: unknown }).actions
  return !!actions && typeof actions === 'object' && Object.values(actions).every(
    (a) => a && typeof a === 'object' && typeof (a as { run?: unknown }).run === 'function',
  )
}

/** Methods of an instance, walking its prototype chain (class instances keep methods there). */
function methodsOf(object: object): Map<string, (...args: unknown[]) => unknown> {
  const methods = new Map<string, (...args: unknown[]) => unknown>()
  for (let o: object | null = object; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key === 'constructor' || key.startsWith('_') || methods.has(key)) continue
      const value = (object as Record<string, unknown>)[key]
      if (typeof value === 'function') methods.set(key, (value as (...args: unknown[]) => unknown).bind(object))
    }
  }
  return methods
}

function jsonSchemaOf(schema: ZodType | undefined): Record<string, unknown> | null {
  if (!schema) return null
  try {
    return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  } catch {
    return { type: 'object' }
  }
}

export function normaliseFactory(name: string, factory: FactoryLike): RegisteredFactory {
  const actions = new Map<string, RegisteredAction>()
  let description = ''
  let concurrency: number | undefined
  let ratePerSecond: number | undefined
  let health: RegisteredFactory['health']
  if (isFactoryDefinition(factory)) {
    description = factory.description ?? ''
    concurrency = factory.concurrency
    ratePerSecond = factory.ratePerSecond
    if (typeof factory.health === 'function') health = factory.health.bind(factory)
    for (const [actionName, definition] of Object.entries(factory.actions)) {
      actions.set(actionName, {
        factory: name,
        name: actionName,
        definition,
        inputJsonSchema: jsonSchemaOf(definition.input) ?? { type: 'object' },
        outputJsonSchema: jsonSchemaOf(definition.output),
      })
    }
  } else {
    description = typeof (factory as { description?: unknown }).description === 'string'
      ? (factory as { description: string }).description
      : ''
    for (const [actionName, fn] of methodsOf(factory)) {
      actions.set(actionName, {
        factory: name,
        name: actionName,
        definition: { run: (input, ctx) => fn(input, ctx) },
        inputJsonSchema: { type: 'object' },
        outputJsonSchema: null,
      })
    }
  }
  if (actions.size === 0) throw new TypeError(`factory "${name}" has no actions`)
  return { name, description, concurrency, ratePerSecond, actions, health }
}

/** Longest name given a suggestion: a typo of an identifier is short, and one comparison costs its length². */
export const SUGGEST_MAX_NAME = 100
/** Candidates looked at, at most, for one suggestion: the first ones given (callers give the likeliest first). */
export const SUGGEST_MAX_CANDIDATES = 10_000

/** ` (did you mean "x"?)` when a candidate is within a third of the name's length in edits (at least 2), else ''. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  if (name.length > SUGGEST_MAX_NAME) return ''
  const limit = Math.max(2, Math.floor(name.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  let looked = 0
  for (const candidate of candidates) {
    if (looked++ >= SUGGEST_MAX_CANDIDATES) break
    // A length that far off cannot be within `limit` edits: no need to compute the distance.
    if (Math.abs(candidate.length - name.length) > limit) continue
    const d = distance(name, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= limit ? ` (did you mean "${best}"?)` : ''
}

export class FactoryRegistry {
  private readonly factories = new Map<string, RegisteredFactory>()
  private readonly listeners = new Set<(factory: RegisteredFactory) => void>()

  register(name: string, factory: FactoryLike): RegisteredFactory {
    if (!/^[A-Za-z_][\w-]*$/.test(name)) throw new TypeError(`factory name "${name}" must be an identifier`)
    const registered = normaliseFactory(name, factory)
    this.factories.set(name, registered)
    for (const listener of this.listeners) listener(registered)
    return registered
  }

  onRegister(listener: (factory: RegisteredFactory) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  get(name: string): RegisteredFactory | undefined {
    return this.factories.get(name)
  }

  action(factory: string, action: string): RegisteredAction | undefined {
    return this.factories.get(factory)?.actions.get(action)
  }

  has(name: string): boolean {
    return this.factories.has(name)
  }

  /** Runs the named factory's health check (see `checkFactoryHealth`); undefined for an unknown name. */
  async health(name: string, timeoutMs?: number): Promise<FactoryHealthReport | undefined> {
    const factory = this.factories.get(name)
    return factory ? checkFactoryHealth(factory, timeoutMs) : undefined
  }

  names(): string[] {
    return [...this.factories.keys()]
  }

  list(): RegisteredFactory[] {
    return [...this.factories.values()]
  }
}
