// A workflow's `input` declaration: JSON Schema, or the simple map `{ name: { type, default, required } }`.
// Both become one zod schema that checks a run's input and fills in defaults.
import { z, type ZodType } from 'zod'
import type { ValidationIssue } from './interfaces.ts'
import { formatPath } from './definition.ts'

const SIMPLE_TYPES: Record<string, () => ZodType> = {
  string: () => z.string(),
  number: () => z.number(),
  integer: () => z.int(),
  boolean: () => z.boolean(),
  object: () => z.record(z.string(), z.unknown()),
  array: () => z.array(z.unknown()),
  any: () => z.unknown(),
}

const simpleField = z.strictObject({
  type: z.enum(Object.keys(SIMPLE_TYPES) as [string, ...string[]]).optional(),
  default: z.unknown().optional(),
  required: z.boolean().optional(),
  description: z.string().optional(),
})

function isJsonSchema(spec: Record<string, unknown>): boolean {
  return typeof spec.type === 'string' || '$schema' in spec || 'properties' in spec
}

const compiled = new WeakMap<object, ZodType>()

function schemaOf(spec: Record<string, unknown>): ZodType {
  let schema = compiled.get(spec)
  if (schema) return schema
  if (isJsonSchema(spec)) {
    schema = z.fromJSONSchema(spec as Parameters<typeof z.fromJSONSchema>[0])
  } else {
    const shape: Record<string, ZodType> = {}
    for (const [name, raw] of Object.entries(spec)) {
      const field = simpleField.parse(raw)
      let s = SIMPLE_TYPES[field.type ?? 'any']!()
      if (field.default !== undefined) s = s.default(field.default as never)
      else if (!field.required) s = s.optional()
      shape[name] = s
    }
    schema = z.looseObject(shape)
  }
  compiled.set(spec, schema)
  return schema
}

/** Problems with the declaration itself. */
export function inputIssues(spec: Record<string, unknown>): ValidationIssue[] {
  if (isJsonSchema(spec)) {
    try {
      schemaOf(spec)
      return []
    } catch (error) {
      return [{ path: 'input', message: `not a usable JSON Schema: ${(error as Error).message}` }]
    }
  }
  const issues: ValidationIssue[] = []
  for (const [name, raw] of Object.entries(spec)) {
    const r = simpleField.safeParse(raw)
    if (!r.success) issues.push(...r.error.issues.map((i) => ({ path: formatPath(i.path, `input.${name}`), message: i.message })))
  }
  return issues
}

/** Checks a run's input against the declaration and returns it with defaults filled in. */
export function checkRunInput(
  spec: Record<string, unknown> | undefined,
  input: unknown,
): { value: unknown; issues: ValidationIssue[] } {
  if (!spec) return { value: input ?? {}, issues: [] }
  const r = schemaOf(spec).safeParse(input ?? {})
  if (r.success) return { value: r.data, issues: [] }
  return { value: undefined, issues: r.error.issues.map((i) => ({ path: formatPath(i.path, 'input'), message: i.message })) }
}

/**
 * What a run was asked to do (its checked input and bound params) as one comparable string: JSON with
 * object keys sorted, so `{a, b}` and `{b, a}` are the same request. Compares idempotent retries.
 */
export function requestFingerprint(input: unknown, params: unknown): string {
  return canonicalJson({ input: input ?? null, params: params ?? null })
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value ?? null)
}
