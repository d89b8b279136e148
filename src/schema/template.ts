import { builder } from './builder.ts'
import { asResult, ValidationErrorType, type TypedError } from './errors.ts'
import { CreateWorkflowResult, CreateWorkflowSuccess, mustLoadWorkflow } from './workflow.ts'
import { pageSize, connection, connectionComplexity } from './pagination.ts'
import type { TemplateInfo } from '../engine/workflow-manager.ts'

export const TemplateType = builder.objectRef<TemplateInfo>('Template')
TemplateType.implement({
  description: 'A reusable, parameterised, versioned workflow definition.',
  fields: (t) => ({
    name: t.exposeString('name'),
    version: t.exposeInt('version'),
    definition: t.field({ type: 'JSON', resolve: (x) => x.definition }),
    createdAt: t.field({ type: 'DateTime', resolve: (x) => x.createdAt }),
    versions: t.field({
      type: [TemplateType],
      description: 'Every version, newest first.',
      resolve: (x, _, ctx) => ctx.orchestrator.catalog.templateVersions(x.name) as TemplateInfo[],
    }),
  }),
})

builder.queryFields((t) => ({
  templates: t.connection({
    complexity: connectionComplexity,
    type: TemplateType,
    description: 'The latest version of every template, by name.',
    resolve: (_, args, ctx) => {
      const size = pageSize(args)
      const rows = ctx.orchestrator.catalog.templates({ limit: size + 1, afterName: args.after ?? undefined }) as TemplateInfo[]
      return connection(rows, size, (x) => x.name, args.after)
    },
  }, { name: 'TemplateConnection' }),
  template: t.field({
    type: TemplateType,
    nullable: true,
    args: { name: t.arg.string(), version: t.arg.int({ required: false }) },
    resolve: (_, { name, version }, ctx) => ctx.orchestrator.workflows.getTemplate(name, version ?? undefined) ?? null,
  }),
}))

class RegisterTemplateSuccess {
  constructor(readonly template: TemplateInfo) {}
}
builder.objectType(RegisterTemplateSuccess, {
  name: 'RegisterTemplateSuccess',
  isTypeOf: (v) => v instanceof RegisterTemplateSuccess,
  fields: (t) => ({ template: t.field({ type: TemplateType, resolve: (s) => s.template }) }),
})

const RegisterTemplateResult = builder.unionType('RegisterTemplateResult', {
  types: [RegisterTemplateSuccess, ValidationErrorType],
})

const RegisterTemplateInput = builder.inputType('RegisterTemplateInput', {
  fields: (t) => ({ name: t.string(), definition: t.field({ type: 'JSON' }) }),
})

const CreateWorkflowFromTemplateInput = builder.inputType('CreateWorkflowFromTemplateInput', {
  fields: (t) => ({
    template: t.string(),
    name: t.string({ required: false, description: 'Defaults to the template\'s name.' }),
    params: t.field({ type: 'JSON', required: false, description: 'Bound params: steps without params receive them.' }),
    version: t.int({ required: false, description: 'Defaults to the latest version.' }),
  }),
})

builder.mutationFields((t) => ({
  registerTemplate: t.field({
    type: RegisterTemplateResult,
    description: 'Registers a template; a changed definition becomes its next version.',
    args: { input: t.arg({ type: RegisterTemplateInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(() => new RegisterTemplateSuccess(ctx.orchestrator.workflows.registerTemplate(input.name, input.definition))) as Promise<
        RegisterTemplateSuccess | TypedError
      >,
  }),
  createWorkflowFromTemplate: t.field({
    type: CreateWorkflowResult,
    args: { input: t.arg({ type: CreateWorkflowFromTemplateInput }) },
    resolve: (_, { input }, ctx) =>
      asResult(async () => {
        const id = await ctx.orchestrator.workflows.createFromTemplate(input.template, {
          name: input.name ?? undefined,
          params: (input.params ?? undefined) as Record<string, unknown> | undefined,
          version: input.version ?? undefined,
        })
        return new CreateWorkflowSuccess(mustLoadWorkflow(ctx, id))
      }),
  }),
}))

