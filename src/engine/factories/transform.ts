// `transform`: reshape data between steps with a JSONata expression (sandboxed, no JavaScript).
import jsonata from 'jsonata'
import { z } from 'zod'
import { defineFactory } from '../factory.ts'
import { NonRetryableError } from '../errors.ts'
import { evaluateInSandbox, needsSandbox } from '../expression-sandbox.ts'
import { EXPRESSION_LIMITS } from '../expressions.ts'
import { assertSizeWithin, boundGrowth, sizedBuiltins } from '../expression-size.ts'

/** Guardrails of one evaluation: JSONata's own timeout and recursion depth limits. */
const EVALUATION_LIMITS = { timeout: 5_000, stack: 1_000 }

function compile(expression: string): jsonata.Expression {
  try {
    return jsonata(expression, EVALUATION_LIMITS)
  } catch (error) {
    throw new NonRetryableError(`expression does not parse: ${describe(error)}`)
  }
}

function describe(error: unknown): string {
  const e = error as { message?: string; position?: number; code?: string }
  return `${e.message ?? String(error)}${e.position !== undefined ? ` (at ${e.position})` : ''}`
}

/** JSONata marks result sequences with extra properties and may answer undefined: plain JSON out. */
function plain(value: unknown): unknown {
  const text = JSON.stringify(value)
  return text === undefined ? null : JSON.parse(text)
}

const builtins = sizedBuiltins(() => EXPRESSION_LIMITS.maxResultBytes)

export const transformFactory = defineFactory({
  name: 'transform',
  description: 'Built-in: reshape and merge data with JSONata expressions.',
  actions: {
    map: {
      description:
        'Evaluates a JSONata expression over `input` (usually an expression such as "{{ steps }}"). ' +
        'Also bound: $steps (outputs of succeeded steps by id), $previous (the output of the step before), $runInput (the run\'s input). ' +
        'No match gives null.',
      input: z.strictObject({
        expression: z
          .string()
          .min(1)
          .superRefine((text, ctx) => {
            try {
              jsonata(text)
            } catch (error) {
              ctx.addIssue({ code: 'custom', message: `expression does not parse: ${describe(error)}` })
            }
          })
          .describe('a JSONata expression'),
        input: z.unknown().optional().describe('the value the expression is evaluated over'),
      }),
      run: async ({ expression, input }, ctx) => {
        const expr = compile(expression)
        const bindings = { steps: ctx.steps, previous: ctx.previous ?? null, runInput: ctx.input ?? null }
        if (needsSandbox(expr)) {
          // Regexes and the built-ins that can block inside one call run in a worker, stopped at the budget.
          try {
            const limits = { ...EVALUATION_LIMITS, maxResultBytes: EXPRESSION_LIMITS.maxResultBytes }
            return plain(await evaluateInSandbox(expression, input ?? null, bindings, limits, ctx.signal))
          } catch (error) {
            if (ctx.signal.aborted) throw ctx.signal.reason
            throw new NonRetryableError(`expression failed: ${describe(error)}`)
          }
        }
        // Stops a long evaluation once the step is cancelled or timed out.
        expr.assign(Symbol.for('jsonata.__evaluate_entry') as unknown as string, () => {
          if (ctx.signal.aborted) throw ctx.signal.reason
        })
        // The same size bound as `{{ }}` expressions, while it builds and on its result.
        boundGrowth(expr, () => EXPRESSION_LIMITS.maxResultBytes)
        try {
          const result = await expr.evaluate(input ?? null, { ...bindings, ...(await builtins) })
          assertSizeWithin(result, EXPRESSION_LIMITS.maxResultBytes)
          return plain(result)
        } catch (error) {
          if (ctx.signal.aborted) throw ctx.signal.reason
          throw new NonRetryableError(`expression failed: ${describe(error)}`)
        }
      },
    },
  },
})
