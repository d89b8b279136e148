// `control`: actions for tests, benchmarks and demos.
import { z } from 'zod'
import { defineFactory } from '../factory.ts'
import { NonRetryableError } from '../errors.ts'
import { sleepUntil, waitForSignal } from '../wait.ts'

export const controlFactory = defineFactory({
  name: 'control',
  description: 'Built-in: no-op, deliberate failure, approvals (signals) and durable delays.',
  actions: {
    noop: {
      description: 'Returns its params unchanged.',
      input: z.record(z.string(), z.unknown()),
      run: (params) => params,
    },
    approval: {
      description: 'Waits (WAITING) until signalRun(runId, stepId, payload); the payload becomes the output. Fails after timeoutMs without a signal.',
      input: z.object({ message: z.string().optional(), timeoutMs: z.int().positive().optional() }),
      run: ({ timeoutMs }) => waitForSignal({ timeoutMs }),
    },
    delay: {
      description: 'A durable timer: succeeds after ms milliseconds or at until (ISO time or epoch ms); survives restarts.',
      input: z
        .object({ ms: z.int().min(0).optional(), until: z.union([z.iso.datetime({ offset: true }), z.int().min(0)]).optional() })
        .refine((v) => (v.ms === undefined) !== (v.until === undefined), 'give exactly one of ms or until'),
      run: ({ ms, until }) => sleepUntil(until !== undefined ? new Date(until).getTime() : Date.now() + ms!),
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
