import { builder } from './builder.ts'
import { checkFactoryHealth, type FactoryHealthReport, type RegisteredAction, type RegisteredFactory } from '../engine/factory.ts'

export const FactoryActionType = builder.objectRef<RegisteredAction>('FactoryAction').implement({
  description: 'One operation of a factory. inputSchema is JSON Schema, so a frontend can build a form from it.',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.string({ resolve: (a) => a.definition.description ?? '' }),
    inputSchema: t.field({ type: 'JSON', resolve: (a) => a.inputJsonSchema }),
    outputSchema: t.field({ type: 'JSON', nullable: true, resolve: (a) => a.outputJsonSchema }),
    timeoutMs: t.int({ nullable: true, resolve: (a) => a.definition.timeoutMs ?? null }),
    concurrency: t.int({ nullable: true, resolve: (a) => a.definition.concurrency ?? null }),
    retry: t.field({ type: 'JSON', nullable: true, resolve: (a) => a.definition.retry ?? null }),
  }),
})

export const FactoryHealthType = builder.objectRef<FactoryHealthReport>('FactoryHealth').implement({
  description: "The answer of a factory's health check, run when asked (with a 2 s deadline).",
  fields: (t) => ({
    ok: t.exposeBoolean('ok'),
    message: t.string({ nullable: true, resolve: (h) => h.message ?? null }),
    checkedAt: t.field({ type: 'DateTime', resolve: (h) => h.checkedAt }),
  }),
})

export const FactoryType = builder.objectRef<RegisteredFactory>('Factory').implement({
  description: 'A named provider of actions.',
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description'),
    concurrency: t.int({ nullable: true, resolve: (f) => f.concurrency ?? null }),
    actions: t.field({ type: [FactoryActionType], resolve: (f) => [...f.actions.values()] }),
    health: t.field({
      type: FactoryHealthType,
      description: 'Runs the factory\'s health check now: ok false when it fails, throws or takes longer than 2 s; ok true "no health check" when it has none.',
      resolve: (f) => checkFactoryHealth(f),
    }),
  }),
})

builder.queryFields((t) => ({
  factories: t.field({
    type: [FactoryType],
    resolve: (_, __, ctx) => ctx.orchestrator.context.registry.list(),
  }),
  factory: t.field({
    type: FactoryType,
    nullable: true,
    args: { name: t.arg.string() },
    resolve: (_, { name }, ctx) => ctx.orchestrator.context.registry.get(name) ?? null,
  }),
}))
