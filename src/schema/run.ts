import { GraphQLError } from 'graphql'
import { builder } from './builder.ts'
import { RunConnection, RunRef, StepRef, WorkflowRef } from './refs.ts'
import { RunStatusEnum } from './enums.ts'
import { asResult, ConflictErrorType, NotFoundErrorType, ValidationErrorType } from './errors.ts'
import { connection, pageSize, connectionComplexity, listComplexity, listSize, STEPS_BOUND } from './pagination.ts'
import { rawId } from './ids.ts'
import { NotFoundError } from '../engine/errors.ts'
import type { RunRecord, StepRecord } from '../engine/catalog.ts'
import type { RunStatus } from '../engine/interfaces.ts'
import type { GraphQLContext } from './context.ts'

RunRef.implement({
  description: 'One execution of one workflow version with an input.',
  fields: (t) => ({
    workflow: t.field({ type: WorkflowRef, resolve: (r) => r.workflowId }),
    workflowVersion: t.exposeInt('workflowVersion'),
    status: t.field({ type: RunStatusEnum, resolve: (r) => r.status as RunStatus }),
    input: t.field({ type: 'JSON', nullable: true, resolve: (r) => r.input }),
    output: t.field({ type: 'JSON', nullable: true, resolve: (r) => r.output }),
    error: t.exposeString('error', { nullable: true }),
    idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
    steps: t.loadableGroup({
      type: StepRef,
      description: `The run's steps in declaration order (nested group members after their group): the first \`first\` (default ${STEPS_BOUND.default}, at most ${STEPS_BOUND.max}) after the step \`after\`. For the next page pass the last step's \`id\` as \`after\`.`,
      args: {
        first: t.arg.int({ required: false, defaultValue: STEPS_BOUND.default }),
        after: t.arg.id({ required: false, description: 'A Step id: the page starts after that step.' }),
      },
      complexity: listComplexity(STEPS_BOUND),
      // Arguments reach the loader: one loader per place in the query, so one statement per place.
      byPath: true,
      load: async (runIds: string[], ctx, args) =>
        ctx.orchestrator.catalog.stepsByRunIds(runIds, { first: listSize(args.first, STEPS_BOUND), afterId: stepCursor(args.after) }),
      group: (s) => (s as StepRecord).runId,
      resolve: (r, args) => (listSize(args.first, STEPS_BOUND), stepCursor(args.after), r.id),
    }),
    parentRun: t.field({
      type: RunRef,
      nullable: true,
      description: 'The run this one retries (retryRun), or the run whose step started it (a sub-workflow).',
      resolve: (r) => r.retryOf ?? r.parentRunId,
    }),
    retryOf: t.exposeString('retryOf', { nullable: true }),
    retries: t.field({
      type: [RunRef],
      description: 'Runs made by retryRun from this one, oldest first.',
      resolve: (r, _, ctx) => ctx.orchestrator.catalog.retriesOf(r.id),
    }),
    childRuns: t.field({
      type: [RunRef],
      description: 'Sub-workflow runs started by this run\'s steps.',
      resolve: (r, _, ctx) => ctx.orchestrator.catalog.childRunsOf(r.id),
    }),
    parentStepId: t.exposeString('parentStepId', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.createdAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.finishedAt }),
  }),
})

/** The row id of the Step id given as `after`, or a BAD_USER_INPUT error. */
function stepCursor(after: string | number | null | undefined): number | undefined {
  if (after == null) return undefined
  const id = rawId(String(after), 'Step')
  if (id === undefined || !/^\d{1,15}$/.test(id)) {
    throw new GraphQLError(`"${after}" is not a Step id (use the id of the last step of the previous page)`, { extensions: { code: 'BAD_USER_INPUT' } })
  }
  return Number(id)
}

export function loadRun(ctx: GraphQLContext, id: string): RunRecord | null {
  const runId = rawId(id, 'Run')
  if (!runId) return null
  return ctx.orchestrator.catalog.runsByIds([runId])[0] ?? null
}

builder.queryFields((t) => ({
  run: t.field({
    type: RunRef,
    nullable: true,
    args: { id: t.arg.id() },
    resolve: (_, { id }, ctx) => loadRun(ctx, id),
  }),
  runs: t.connection({
    complexity: connectionComplexity,
    type: RunRef,
    description: 'Runs, newest first; filter by status, workflow and creation time.',
    args: {
      status: t.arg({ type: RunStatusEnum, required: false }),
      workflowId: t.arg.id({ required: false }),
      createdAfter: t.arg({ type: 'DateTime', required: false }),
      createdBefore: t.arg({ type: 'DateTime', required: false }),
    },
    resolve: (_, args, ctx) => {
      const size = pageSize(args)
      const workflowId = args.workflowId ? rawId(args.workflowId, 'Workflow') ?? '\u0000' : undefined
      const rows = ctx.orchestrator.catalog.runs({
        limit: size + 1,
        before: args.after ?? undefined,
        status: args.status ?? undefined,
        workflowId,
        createdAfter: args.createdAfter?.getTime(),
        createdBefore: args.createdBefore?.getTime(),
      })
      return connection(rows, size, (r) => r.id, args.after)
    },
  }, RunConnection),
}))

class ExecuteWorkflowSuccess {
  constructor(readonly run: RunRecord, readonly created: boolean) {}
}
builder.objectType(ExecuteWorkflowSuccess, {
  name: 'ExecuteWorkflowSuccess',
  isTypeOf: (v) => v instanceof ExecuteWorkflowSuccess,
  fields: (t) => ({
    run: t.field({ type: RunRef, resolve: (s) => s.run }),
    created: t.exposeBoolean('created', { description: 'False when an earlier request with the same idempotencyKey started this run.' }),
  }),
})

class RunSuccess {
  constructor(readonly run: RunRecord) {}
}
builder.objectType(RunSuccess, {
  name: 'RunSuccess',
  isTypeOf: (v) => v instanceof RunSuccess,
  fields: (t) => ({ run: t.field({ type: RunRef, resolve: (s) => s.run }) }),
})

const ExecuteWorkflowResult = builder.unionType('ExecuteWorkflowResult', {
  types: [ExecuteWorkflowSuccess, ValidationErrorType, NotFoundErrorType, ConflictErrorType],
})
const RunResult = builder.unionType('RunResult', { types: [RunSuccess, NotFoundErrorType, ConflictErrorType] })
// retryRun also rejects its arguments (an unknown fromStep, params without a step to apply to).
const RetryRunResult = builder.unionType('RetryRunResult', { types: [RunSuccess, ValidationErrorType, NotFoundErrorType, ConflictErrorType] })

const ExecuteWorkflowInput = builder.inputType('ExecuteWorkflowInput', {
  fields: (t) => ({
    workflowId: t.id(),
    input: t.field({ type: 'JSON', required: false }),
    idempotencyKey: t.string({ required: false, description: 'A retried request with the same key returns the same run; the same key with another input is a ConflictError.' }),
  }),
})

const RunInput = builder.inputType('RunInput', { fields: (t) => ({ runId: t.id() }) })

export function mustLoadRun(ctx: GraphQLContext, id: string): RunRecord {
  const run = loadRun(ctx, id)
  if (!run) throw new NotFoundError(`run ${id} not found`)
  return run
}

builder.mutationFields((t) => ({
  executeWorkflow: t.field({
    type: ExecuteWorkflowResult,
    description: 'Starts a run of the workflow\'s current version; returns at once (watch it with runEvents).',
    args: { input: t.arg({ type: ExecuteWorkflowInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(async () => {
        const workflowId = rawId(input.workflowId, 'Workflow')
        if (!workflowId) throw new NotFoundError(`workflow ${input.workflowId} not found`)
        const { runId, created } = await ctx.orchestrator.coordinator.start(workflowId, input.input ?? undefined, {
          idempotencyKey: input.idempotencyKey ?? undefined,
        })
        return new ExecuteWorkflowSuccess(mustLoadRun(ctx, runId), created)
      }),
  }),
  cancelRun: t.field({
    type: RunResult,
    description: 'Aborts running actions and settles the run CANCELLED. A finished run gives ConflictError.',
    args: { input: t.arg({ type: RunInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(async () => {
        const run = mustLoadRun(ctx, input.runId)
        await ctx.orchestrator.cancelRun(run.id)
        return new RunSuccess(mustLoadRun(ctx, run.id))
      }),
  }),
  pauseRun: t.field({
    type: RunResult,
    description: 'No new steps start until resumeRun; running actions finish. RUN_PAUSED.',
    args: { input: t.arg({ type: RunInput }) },
    resolve: (_, { input }, ctx) => control(ctx, input.runId, (id) => ctx.orchestrator.pauseRun(id)),
  }),
  resumeRun: t.field({
    type: RunResult,
    description: 'Dispatch continues where the pause left it. RUN_RESUMED.',
    args: { input: t.arg({ type: RunInput }) },
    resolve: (_, { input }, ctx) => control(ctx, input.runId, (id) => ctx.orchestrator.resumeRun(id)),
  }),
  signalRun: t.field({
    type: RunResult,
    description: 'Delivers a payload to a step waiting for a signal (control.approval); it becomes the step\'s output.',
    args: { input: t.arg({ type: SignalRunInput }) },
    resolve: (_, { input }, ctx) => control(ctx, input.runId, (id) => ctx.orchestrator.signalRun(id, input.stepId, input.payload ?? null)),
  }),
  rollbackRun: t.field({
    type: RunResult,
    description: 'Compensates the succeeded steps of a finished run, newest first. Returns the run ROLLING_BACK; watch it with runEvents.',
    args: { input: t.arg({ type: RunInput }) },
    resolve: (_, { input }, ctx) =>
      control(ctx, input.runId, async (id) => {
        const done = ctx.orchestrator.rollbackRun(id)
        const started = new Promise((resolve) => ctx.orchestrator.context.journal.afterCommit(() => resolve(null)))
        // Typed errors (not found, not finished) reject at once and are reported; otherwise the
        // run is returned ROLLING_BACK as soon as that is committed.
        await Promise.race([done, started])
        done.catch(() => {})
      }),
  }),
  retryRun: t.field({
    type: RetryRunResult,
    description: 'A new run of the same version: succeeded steps are reused, the failed step (or fromStep) and everything downstream run again, with params replacing that step\'s params if given. Returns the new run.',
    args: { input: t.arg({ type: RetryRunInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(async () => {
        const run = mustLoadRun(ctx, input.runId)
        const { runId } = await ctx.orchestrator.retryRun(run.id, {
          fromStep: input.fromStep ?? undefined,
          params: (input.params ?? undefined) as Record<string, unknown> | undefined,
        })
        return new RunSuccess(mustLoadRun(ctx, runId))
      }),
  }),
}))

const SignalRunInput = builder.inputType('SignalRunInput', {
  fields: (t) => ({ runId: t.id(), stepId: t.string(), payload: t.field({ type: 'JSON', required: false }) }),
})

const RetryRunInput = builder.inputType('RetryRunInput', {
  fields: (t) => ({
    runId: t.id(),
    fromStep: t.string({ required: false, description: 'Run again from this step; default: the failed step(s).' }),
    params: t.field({ type: 'JSON', required: false, description: 'Edited params for that step.' }),
  }),
})

function control(ctx: GraphQLContext, id: string, act: (runId: string) => Promise<unknown>) {
  return asResult(async () => {
    const run = mustLoadRun(ctx, id)
    await act(run.id)
    return new RunSuccess(mustLoadRun(ctx, run.id))
  })
}

builder.subscriptionFields((t) => ({
  runUpdated: t.field({
    type: RunRef,
    description: 'The run, each time it or one of its steps changes; ends when the run finishes.',
    args: { runId: t.arg.id() },
    subscribe: (_, { runId }, ctx) => {
      const run = runOrGraphQLError(ctx, runId)
      return ctx.orchestrator.events({ runId: run.id }, { after: 'HEAD', untilRunFinished: true })
    },
    // Each event is a nudge: read the run afresh so the client sees committed state.
    resolve: (event, _, ctx) => ctx.orchestrator.catalog.runsByIds([event.runId])[0]!,
  }),
}))

/** Outside mutation results (queries, subscriptions) a missing run is a GraphQL error with a code. */
export function runOrGraphQLError(ctx: GraphQLContext, id: string): RunRecord {
  const run = loadRun(ctx, id)
  if (!run) throw new GraphQLError(`run ${id} not found`, { extensions: { code: 'NOT_FOUND' } })
  return run
}
