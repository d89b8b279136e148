import { GraphQLError } from 'graphql'
import { builder } from './builder.ts'
import { RunRef } from './refs.ts'
import { EventTypeEnum } from './enums.ts'
import { connection, MAX_PAGE, pageSize, parseSeqCursor, connectionComplexity } from './pagination.ts'
import { rawId } from './ids.ts'
import { runOrGraphQLError } from './run.ts'
import type { EventType, RunEvent } from '../engine/interfaces.ts'

export const RunEventType = builder.objectRef<RunEvent>('RunEvent').implement({
  description: 'An append-only record of something that happened to a run or one of its steps.',
  fields: (t) => ({
    cursor: t.string({ description: 'Resume a subscription or page after this event.', resolve: (e) => String(e.seq) }),
    seq: t.exposeInt('seq', { description: 'Global, strictly increasing position in the log.' }),
    type: t.field({ type: EventTypeEnum, resolve: (e) => e.type }),
    runId: t.id({ resolve: (e) => e.runId }),
    run: t.field({ type: RunRef, resolve: (e) => e.runId }),
    workflowId: t.id({ resolve: (e) => e.workflowId }),
    stepId: t.exposeString('stepId', { nullable: true }),
    status: t.exposeString('status', { nullable: true }),
    attempt: t.exposeInt('attempt', { nullable: true }),
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
    payload: t.field({ type: 'JSON', nullable: true, resolve: (e) => e.payload }),
  }),
})

/** Largest `maxEvents` of `runEventBatches` (and its default). */
export const MAX_BATCH_EVENTS = 1000

export const RunEventBatchType = builder.objectRef<RunEvent[]>('RunEventBatch').implement({
  description: 'Consecutive events of a run (at least one), in seq order: one message of `runEventBatches`.',
  fields: (t) => ({
    events: t.field({ type: [RunEventType], resolve: (batch) => batch }),
    cursor: t.string({ description: 'The last event\'s cursor: resume after the whole batch.', resolve: (batch) => String(batch.at(-1)!.seq) }),
  }),
})

builder.queryFields((t) => ({
  events: t.connection({
    complexity: connectionComplexity,
    type: RunEventType,
    description: 'The event log in seq order, after a cursor: the same log the subscriptions stream.',
    args: {
      runId: t.arg.id({ required: false }),
      workflowId: t.arg.id({ required: false }),
      types: t.arg({ type: [EventTypeEnum], required: false }),
    },
    resolve: (_, args, ctx) => {
      const size = pageSize(args)
      const after = parseSeqCursor(args.after, false) as number
      const rows = ctx.orchestrator.catalog.events({
        afterSeq: after,
        limit: Math.min(size, MAX_PAGE) + 1,
        runId: args.runId ? rawId(args.runId, 'Run') ?? '\u0000' : undefined,
        workflowId: args.workflowId ? rawId(args.workflowId, 'Workflow') ?? '\u0000' : undefined,
        types: args.types ?? undefined,
      })
      return connection(rows, size, (e) => String(e.seq), args.after)
    },
  }, { name: 'RunEventConnection' }),
}))

builder.subscriptionFields((t) => ({
  runEvents: t.field({
    type: RunEventType,
    description: 'The run\'s events: those after `after` (a cursor; "HEAD" for only new ones; none for all), then live ones. Ends after the run\'s terminal event.',
    args: { runId: t.arg.id(), after: t.arg.string({ required: false }) },
    subscribe: (_, { runId, after }, ctx) => {
      const cursor = parseSeqCursor(after, true)
      const run = runOrGraphQLError(ctx, runId)
      return ctx.orchestrator.events({ runId: run.id }, { after: cursor, untilRunFinished: true })
    },
    resolve: (e) => e,
  }),
  runEventBatches: t.field({
    type: RunEventBatchType,
    description:
      'The same events as `runEvents` (same `after`, same end), several to a message: each batch holds the next event and every later one ' +
      'already committed when it is sent, up to `maxEvents` (default and at most 1000). Fewer, larger messages for a client that follows a busy run.',
    args: {
      runId: t.arg.id(),
      after: t.arg.string({ required: false }),
      maxEvents: t.arg.int({ required: false }),
    },
    subscribe: (_, { runId, after, maxEvents }, ctx) => {
      const cursor = parseSeqCursor(after, true)
      const run = runOrGraphQLError(ctx, runId)
      const max = maxEvents ?? MAX_BATCH_EVENTS
      if (!Number.isInteger(max) || max < 1 || max > MAX_BATCH_EVENTS) {
        throw new GraphQLError(`maxEvents must be between 1 and ${MAX_BATCH_EVENTS}`, { extensions: { code: 'BAD_USER_INPUT' } })
      }
      return ctx.orchestrator.events({ runId: run.id }, { after: cursor, untilRunFinished: true }).batches(max)
    },
    resolve: (batch) => batch,
  }),
  events: t.field({
    type: RunEventType,
    description: 'Every event (a firehose for dashboards), optionally for one workflow or some types.',
    args: {
      after: t.arg.string({ required: false }),
      workflowId: t.arg.id({ required: false }),
      types: t.arg({ type: [EventTypeEnum], required: false }),
    },
    subscribe: (_, { after, workflowId, types }, ctx) =>
      ctx.orchestrator.events(
        {
          workflowId: workflowId ? rawId(workflowId, 'Workflow') ?? '\u0000' : undefined,
          types: (types ?? undefined) as EventType[] | undefined,
        },
        { after: after === undefined || after === null ? 'HEAD' : parseSeqCursor(after, true) },
      ),
    resolve: (e) => e,
  }),
}))
