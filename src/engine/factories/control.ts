// `control`: actions for tests, benchmarks and demos.
import { z } from 'zod'
import { defineFactory } from '../factory.ts'
import { NonRetryableError } from '../errors.ts'

export const controlFactory = defineFactory({
  name: 'control',
  description: 'Built-in: no-op and deliberate failure, for tests, benchmarks and demos.',
  actions: {
    noop: {
      description: 'Returns its params unchanged.',
      input: z.record(z.string(), z.unknown()),
      run: (params) => params,
    },
    fail: {
      description: 'Fails on purpose with the given message; retryable unless told otherwise.',
      input: z.object({ message: z.string().default('failed on purpose'), retryable: z.boolean().default(true) }),
      run: ({ message, retryable }) => {
        throw retryable ? new Error(message) : new NonRetryableError(message)
      },
    },
  },
})
