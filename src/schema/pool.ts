import { builder } from './builder.ts'

interface PoolShape {
  name: string
  concurrency: number | null
  ratePerSecond: number | null
  inUse: number
  waiting: number
}

export const PoolType = builder.objectRef<PoolShape>('Pool').implement({
  description: 'A limit shared across runs: the worker pool, a named pool of the config, or a factory\'s or action\'s own.',
  fields: (t) => ({
    name: t.exposeString('name', { description: '`workers`, `pool:<name>`, `factory:<name>` or `action:<factory>.<action>`.' }),
    concurrency: t.exposeInt('concurrency', { nullable: true, description: 'Slots; null when unlimited.' }),
    ratePerSecond: t.exposeFloat('ratePerSecond', { nullable: true }),
    inUse: t.exposeInt('inUse'),
    waiting: t.exposeInt('waiting', { description: 'Steps queued for a slot.' }),
  }),
})

builder.queryField('pools', (t) =>
  t.field({ type: [PoolType], resolve: (_, __, ctx) => ctx.orchestrator.coordinator.listPools() }),
)
