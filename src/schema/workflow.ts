import { builder } from './builder.ts'
import { RunConnection, RunRef, WorkflowRef } from './refs.ts'
import { asResult, NotFoundErrorType, ValidationErrorType, ValidationIssueType } from './errors.ts'
import { connection, inKeyOrder, pageSize, connectionComplexity } from './pagination.ts'
import { rawId } from './ids.ts'
import type { WorkflowRecord, WorkflowVersionRecord } from '../engine/catalog.ts'
import type { ValidationResult } from '../engine/interfaces.ts'
import { NotFoundError } from '../engine/errors.ts'
import type { GraphQLContext } from './context.ts'

export const WorkflowVersionType = builder.objectRef<WorkflowVersionRecord>('WorkflowVersion').implement({
  description: 'One immutable version of a workflow\'s definition; runs pin the version they started on.',
  fields: (t) => ({
    version: t.exposeInt('version'),
    definition: t.field({ type: 'JSON', resolve: (v) => v.definition }),
    createdAt: t.field({ type: 'DateTime', resolve: (v) => v.createdAt }),
  }),
})

WorkflowRef.implement({
  description: 'A named, versioned workflow definition.',
  fields: (t) => ({
    name: t.exposeString('name'),
    version: t.exposeInt('currentVersion', { description: 'The current version.' }),
    definition: t.loadable({
      type: 'JSON',
      description: 'The current version\'s definition.',
      load: async (keys: string[], ctx) => {
        const parsed = keys.map((k) => ({ workflowId: k.split('@')[0]!, version: Number(k.split('@')[1]) }))
        const rows = ctx.orchestrator.catalog.workflowVersionsByKeys(parsed)
        return inKeyOrder(keys, rows, (r) => `${r.workflowId}@${r.version}`).map((r) => r?.definition ?? null)
      },
      resolve: (w) => `${w.id}@${w.currentVersion}`,
    }),
    versions: t.field({
      type: [WorkflowVersionType],
      description: 'Every version, newest first.',
      resolve: (w, _, ctx) => ctx.orchestrator.catalog.workflowVersions(w.id),
    }),
    templateName: t.exposeString('templateName', { nullable: true }),
    templateVersion: t.exposeInt('templateVersion', { nullable: true }),
    params: t.field({ type: 'JSON', nullable: true, description: 'Params bound when made from a template.', resolve: (w) => w.params }),
    runs: t.connection({
      complexity: connectionComplexity,
      type: RunRef,
      description: 'This workflow\'s runs, newest first.',
      resolve: (w, args, ctx) => {
        const size = pageSize(args)
        const rows = ctx.orchestrator.catalog.runs({ limit: size + 1, before: args.after ?? undefined, workflowId: w.id })
        return connection(rows, size, (r) => r.id, args.after)
      },
    }, RunConnection),
    latestRun: t.loadable({
      type: RunRef,
      nullable: true,
      load: async (ids: string[], ctx) => inKeyOrder(ids, ctx.orchestrator.catalog.latestRunsByWorkflowIds(ids), (r) => r.workflowId),
      resolve: (w) => w.id,
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (w) => w.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (w) => w.updatedAt }),
  }),
})

export const ValidationResultType = builder.objectRef<ValidationResult>('ValidationResult').implement({
  fields: (t) => ({
    valid: t.exposeBoolean('valid'),
    issues: t.field({ type: [ValidationIssueType], resolve: (r) => r.issues }),
  }),
})

export function loadWorkflow(ctx: GraphQLContext, id: string): WorkflowRecord | null {
  const workflowId = rawId(id, 'Workflow')
  return workflowId ? ctx.orchestrator.catalog.workflowsByIds([workflowId])[0] ?? null : null
}

function mustLoadWorkflow(ctx: GraphQLContext, id: string): WorkflowRecord {
  const w = loadWorkflow(ctx, id)
  if (!w) throw new NotFoundError(`workflow ${id} not found`)
  return w
}

builder.queryFields((t) => ({
  workflow: t.field({
    type: WorkflowRef,
    nullable: true,
    args: { id: t.arg.id() },
    resolve: (_, { id }, ctx) => loadWorkflow(ctx, id),
  }),
  workflows: t.connection({
    complexity: connectionComplexity,
    type: WorkflowRef,
    description: 'Workflows, newest first.',
    args: { name: t.arg.string({ required: false }) },
    resolve: (_, args, ctx) => {
      const size = pageSize(args)
      const rows = ctx.orchestrator.catalog.workflows({ limit: size + 1, before: args.after ?? undefined, name: args.name ?? undefined })
      return connection(rows, size, (w) => w.id, args.after)
    },
  }, { name: 'WorkflowConnection' }),
  validateWorkflow: t.field({
    type: ValidationResultType,
    description: 'Checks a definition against the registered factories without storing anything.',
    args: { definition: t.arg({ type: 'JSON' }) },
    resolve: (_, { definition }, ctx) => ctx.orchestrator.workflows.validate(definition),
  }),
}))

export class CreateWorkflowSuccess {
  constructor(readonly workflow: WorkflowRecord) {}
}
builder.objectType(CreateWorkflowSuccess, {
  name: 'CreateWorkflowSuccess',
  isTypeOf: (v) => v instanceof CreateWorkflowSuccess,
  fields: (t) => ({ workflow: t.field({ type: WorkflowRef, resolve: (s) => s.workflow }) }),
})

export const CreateWorkflowResult = builder.unionType('CreateWorkflowResult', {
  types: [CreateWorkflowSuccess, ValidationErrorType, NotFoundErrorType],
})

const CreateWorkflowInput = builder.inputType('CreateWorkflowInput', {
  fields: (t) => ({ name: t.string(), definition: t.field({ type: 'JSON' }) }),
})

const UpdateWorkflowInput = builder.inputType('UpdateWorkflowInput', {
  fields: (t) => ({ id: t.id(), definition: t.field({ type: 'JSON' }) }),
})

const RollbackWorkflowInput = builder.inputType('RollbackWorkflowInput', {
  fields: (t) => ({ id: t.id(), version: t.int({ description: 'The version whose definition becomes current again.' }) }),
})

builder.mutationFields((t) => ({
  updateWorkflow: t.field({
    type: CreateWorkflowResult,
    description: 'Validates the definition and makes it the next version. Runs already started keep theirs.',
    args: { input: t.arg({ type: UpdateWorkflowInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(async () => {
        const w = mustLoadWorkflow(ctx, input.id)
        await ctx.orchestrator.updateWorkflow(w.id, input.definition)
        return new CreateWorkflowSuccess(mustLoadWorkflow(ctx, w.id))
      }),
  }),
  rollbackWorkflow: t.field({
    type: CreateWorkflowResult,
    description: 'Makes an earlier version current again, as a new version.',
    args: { input: t.arg({ type: RollbackWorkflowInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(async () => {
        const w = mustLoadWorkflow(ctx, input.id)
        await ctx.orchestrator.rollbackWorkflow(w.id, input.version)
        return new CreateWorkflowSuccess(mustLoadWorkflow(ctx, w.id))
      }),
  }),
  createWorkflow: t.field({
    type: CreateWorkflowResult,
    description: 'Validates and stores a workflow (version 1). Every problem comes back in ValidationError.issues.',
    args: { input: t.arg({ type: CreateWorkflowInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(async () => {
        const id = await ctx.orchestrator.createWorkflow(input.name, input.definition)
        return new CreateWorkflowSuccess(mustLoadWorkflow(ctx, id))
      }),
  }),
}))

export { mustLoadWorkflow }
