import { builder } from './builder.ts'
import { StepRef } from './refs.ts'
import { StepStatusEnum } from './enums.ts'
import { ATTEMPTS_BOUND, listComplexity, listSize } from './pagination.ts'
import type { AttemptRecord } from '../engine/catalog.ts'
import type { StepStatus } from '../engine/interfaces.ts'

export const StepAttemptType = builder.objectRef<AttemptRecord>('StepAttempt').implement({
  description: 'One try of a step.',
  fields: (t) => ({
    attempt: t.exposeInt('attempt'),
    status: t.exposeString('status', { description: 'RUNNING, SUCCEEDED, FAILED, CANCELLED or INTERRUPTED (the process stopped).' }),
    error: t.exposeString('error', { nullable: true }),
    startedAt: t.field({ type: 'DateTime', resolve: (a) => a.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (a) => a.finishedAt }),
  }),
})

StepRef.implement({
  description: 'One node of a run: an action call or a nested group, keyed by a stable path.',
  fields: (t) => ({
    stepId: t.exposeString('stepId', { description: 'Stable path within the run: `analyze`, `publish.upload`.' }),
    parentStepId: t.exposeString('parentStepId', { nullable: true }),
    kind: t.exposeString('kind', { description: '`action` or `group`.' }),
    factory: t.string({ resolve: (s) => s.factory ?? '' }),
    action: t.string({ resolve: (s) => s.action ?? '' }),
    status: t.field({ type: StepStatusEnum, resolve: (s) => s.status as StepStatus }),
    attempts: t.exposeInt('attempts'),
    params: t.field({ type: 'JSON', nullable: true, resolve: (s) => s.params }),
    output: t.field({ type: 'JSON', nullable: true, resolve: (s) => s.output }),
    error: t.exposeString('error', { nullable: true }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (s) => s.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (s) => s.finishedAt }),
    attemptHistory: t.loadableGroup({
      type: StepAttemptType,
      description: `The latest \`last\` attempts (default ${ATTEMPTS_BOUND.default}, at most ${ATTEMPTS_BOUND.max}), oldest first; \`attempts\` says how many there were.`,
      args: { last: t.arg.int({ required: false, defaultValue: ATTEMPTS_BOUND.default }) },
      complexity: listComplexity(ATTEMPTS_BOUND),
      byPath: true,
      // Keys are run + step; one statement loads the attempts of every step asked for.
      load: async (keys: string[], ctx, args) =>
        ctx.orchestrator.catalog.attemptsBySteps(
          keys.map((k) => ({ runId: k.split('\u0000')[0]!, stepId: k.split('\u0000')[1]! })),
          listSize(args.last, ATTEMPTS_BOUND),
        ),
      group: (a) => `${a.runId}\u0000${a.stepId}`,
      resolve: (s, args) => (listSize(args.last, ATTEMPTS_BOUND), `${s.runId}\u0000${s.stepId}`),
    }),
  }),
})
