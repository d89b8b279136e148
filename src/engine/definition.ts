// The shape of a workflow definition (DESIGN.md §2) as a zod schema: a superset of the seed's
// `{ steps: [{factory, action, params}], factories, parallel }`. Semantic checks live in validation.ts.
import { z } from 'zod'
import type { StepDefinition, WorkflowDefinition } from './interfaces.ts'

export const IDENTIFIER = /^[A-Za-z_][\w-]*$/

const retryPolicy = z.strictObject({
  maxAttempts: z.int().min(1).max(1000).optional(),
  backoff: z.enum(['fixed', 'exponential', 'linear']).optional(),
  initialMs: z.number().min(0).max(86_400_000).optional(),
  maxMs: z.number().min(0).max(86_400_000 * 7).optional(),
  jitter: z.union([z.boolean(), z.number().min(0).max(1)]).optional(),
})

const expressionOrBool = z.union([z.string().min(1), z.boolean()])

const timeout = z.int().min(1).max(86_400_000 * 365)

// Recursive: groups hold steps, sub-workflows hold whole definitions.
const stepSchema: z.ZodType<StepDefinition> = z.lazy(() =>
  z.strictObject({
    id: z.string().regex(IDENTIFIER, 'must start with a letter or _ and hold only letters, digits, _ and -').optional(),
    description: z.string().optional(),
    factory: z.string().min(1).optional(),
    action: z.string().min(1).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    dependsOn: z.array(z.string().min(1)).optional(),
    when: expressionOrBool.optional(),
    retry: retryPolicy.optional(),
    timeoutMs: timeout.optional(),
    continueOnError: z.boolean().optional(),
    forEach: z.union([z.string().min(1), z.array(z.unknown())]).optional(),
    steps: z.array(stepSchema).min(1).optional(),
    parallel: z.boolean().optional(),
    maxParallel: z.int().min(1).optional(),
    template: z.string().min(1).optional(),
    workflow: workflowSchema.optional(),
    compensate: z.boolean().optional(),
    pool: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  }),
)

export const workflowSchema: z.ZodType<WorkflowDefinition> = z.lazy(() =>
  z.strictObject({
    name: z.string().optional(),
    description: z.string().optional(),
    steps: z.array(stepSchema).min(1, 'a workflow needs at least one step'),
    factories: z.array(z.string().min(1)).optional(),
    parallel: z.boolean().optional(),
    maxParallel: z.int().min(1).optional(),
    input: z.record(z.string(), z.unknown()).optional(),
    timeoutMs: timeout.optional(),
    onFailure: z.enum(['fail', 'continue', 'rollback']).optional(),
    failGraceMs: z.int().min(0).max(86_400_000).optional(),
    output: z.unknown().optional(),
    retry: retryPolicy.optional(),
    stepTimeoutMs: timeout.optional(),
  }),
)

/** `steps[0].params.x` style path from a zod issue path. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else out += out ? `.${String(key)}` : String(key)
  }
  return out || '(root)'
}
