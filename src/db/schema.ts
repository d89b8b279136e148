// Tables of Conveyor. Times are epoch milliseconds; JSON columns hold definitions, inputs and outputs.
// Later features (signals, timers, sub-runs, reruns, versions) already have their columns here.
import { sqliteTable, text, integer, index, uniqueIndex, primaryKey } from 'drizzle-orm/sqlite-core'

export const factories = sqliteTable('factories', {
  name: text('name').primaryKey(),
  description: text('description').notNull().default(''),
  kind: text('kind').notNull().default('local'), // local | remote
  registeredAt: integer('registered_at').notNull(),
})

export const factoryActions = sqliteTable(
  'factory_actions',
  {
    factory: text('factory').notNull().references(() => factories.name, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    inputSchema: text('input_schema', { mode: 'json' }),
    outputSchema: text('output_schema', { mode: 'json' }),
  },
  (t) => [primaryKey({ columns: [t.factory, t.name] })],
)

export const templates = sqliteTable(
  'templates',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    name: text('name').notNull(),
    version: integer('version').notNull(),
    definition: text('definition', { mode: 'json' }).notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [uniqueIndex('templates_name_version').on(t.name, t.version)],
)

export const workflows = sqliteTable(
  'workflows',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    currentVersion: integer('current_version').notNull(),
    templateName: text('template_name'),
    templateVersion: integer('template_version'),
    params: text('params', { mode: 'json' }),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('workflows_name').on(t.name), index('workflows_created').on(t.createdAt)],
)

export const workflowVersions = sqliteTable(
  'workflow_versions',
  {
    workflowId: text('workflow_id').notNull().references(() => workflows.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    definition: text('definition', { mode: 'json' }).notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.workflowId, t.version] })],
)

export const runs = sqliteTable(
  'runs',
  {
    id: text('id').primaryKey(),
    workflowId: text('workflow_id').notNull().references(() => workflows.id, { onDelete: 'cascade' }),
    workflowVersion: integer('workflow_version').notNull(),
    status: text('status').notNull(),
    input: text('input', { mode: 'json' }),
    output: text('output', { mode: 'json' }),
    error: text('error'),
    idempotencyKey: text('idempotency_key'),
    parentRunId: text('parent_run_id'),
    parentStepId: text('parent_step_id'),
    retryOf: text('retry_of'),
    // Params bound to this run (a sub-workflow's or template's), given to steps that have none.
    params: text('params', { mode: 'json' }),
    // Edited params per step id, from retryRun: they replace the definition's params for that step.
    stepParams: text('step_params', { mode: 'json' }),
    deadlineAt: integer('deadline_at'),
    createdAt: integer('created_at').notNull(),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
  },
  (t) => [
    // Pages are newest first by id (ids sort by creation time): a filtered page walks one of these
    // backwards and stops at its size, instead of sorting every run with that status or workflow.
    index('runs_status_id').on(t.status, t.id),
    index('runs_workflow_id').on(t.workflowId, t.id),
    index('runs_created').on(t.createdAt),
    index('runs_parent').on(t.parentRunId),
    index('runs_retry_of').on(t.retryOf),
    index('runs_finished').on(t.finishedAt),
    uniqueIndex('runs_idempotency').on(t.workflowId, t.idempotencyKey),
  ],
)

export const steps = sqliteTable(
  'steps',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id').notNull().references(() => runs.id, { onDelete: 'cascade' }),
    stepId: text('step_id').notNull(),
    parentStepId: text('parent_step_id'),
    kind: text('kind').notNull(), // action | group
    factory: text('factory'),
    action: text('action'),
    status: text('status').notNull(),
    params: text('params', { mode: 'json' }),
    output: text('output', { mode: 'json' }),
    error: text('error'),
    attempts: integer('attempts').notNull().default(0),
    // When a RETRY_SCHEDULED or WAITING step wakes up; read back on recovery (by run) so timers are durable.
    wakeAt: integer('wake_at'),
    // Order in which steps settled SUCCEEDED: rollback compensates in reverse of it.
    completedOrder: integer('completed_order'),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
  },
  // No index on status: no query selects steps by status, and one would be rewritten on every
  // transition of every step (READY, RUNNING, SUCCEEDED...).
  // steps_run_order: a page of a run's steps in declaration order reads a range and stops (the API's
  // Run.steps(first)); only inserts write it, status changes do not.
  (t) => [uniqueIndex('steps_run_step').on(t.runId, t.stepId), index('steps_run_order').on(t.runId, t.id)],
)

export const stepAttempts = sqliteTable(
  'step_attempts',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    runId: text('run_id').notNull().references(() => runs.id, { onDelete: 'cascade' }),
    stepId: text('step_id').notNull(),
    attempt: integer('attempt').notNull(),
    status: text('status').notNull(),
    error: text('error'),
    startedAt: integer('started_at').notNull(),
    finishedAt: integer('finished_at'),
  },
  (t) => [uniqueIndex('step_attempts_run_step_attempt').on(t.runId, t.stepId, t.attempt)],
)

export const events = sqliteTable(
  'events',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    runId: text('run_id').notNull(),
    workflowId: text('workflow_id').notNull(),
    stepId: text('step_id'),
    attempt: integer('attempt'),
    type: text('type').notNull(),
    status: text('status'),
    at: integer('at').notNull(),
    payload: text('payload', { mode: 'json' }),
  },
  (t) => [index('events_run_seq').on(t.runId, t.seq), index('events_workflow_seq').on(t.workflowId, t.seq)],
)

export const artifacts = sqliteTable(
  'artifacts',
  {
    id: text('id').primaryKey(),
    runId: text('run_id').notNull().references(() => runs.id, { onDelete: 'cascade' }),
    stepId: text('step_id'),
    name: text('name').notNull(),
    mimeType: text('mime_type').notNull(),
    size: integer('size').notNull(),
    path: text('path').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('artifacts_run').on(t.runId)],
)

// API tokens (`conveyor token create`): only the SHA-256 of the secret is kept, never the secret.
export const apiTokens = sqliteTable('api_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  hash: text('hash').notNull(),
  scopes: text('scopes', { mode: 'json' }).notNull().$type<string[]>(),
  createdAt: integer('created_at').notNull(),
  lastUsedAt: integer('last_used_at'),
  revokedAt: integer('revoked_at'),
})

export type RunRow = typeof runs.$inferSelect
export type StepRow = typeof steps.$inferSelect
export type EventRow = typeof events.$inferSelect
export type WorkflowRow = typeof workflows.$inferSelect
export type WorkflowVersionRow = typeof workflowVersions.$inferSelect
export type TemplateRow = typeof templates.$inferSelect
export type ApiTokenRow = typeof apiTokens.$inferSelect
