// The seed's own examples (seed/core-orchestration.md), translated to TypeScript and run unchanged
// through the public library API, plus context passing between steps in both directions:
// `{{ }}` expressions in params and `ctx` inside actions.
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  FactoryCoordinator, NotFoundError, ProjectOrchestrator, ValidationError, WorkflowManager, defineFactory,
  type ActionContext, type RunEvent,
} from '../src/index.ts'
import { barrier } from './support/barrier.ts'

const open: { close(): unknown }[] = []
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close()
})

function orchestrator(config: ConstructorParameters<typeof ProjectOrchestrator>[0] = {}): ProjectOrchestrator {
  const o = new ProjectOrchestrator(config)
  open.push(o)
  return o
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms))

/** The seed passes factory instances: a class whose methods are its actions. */
class MediaFactory {
  readonly calls: { action: string; params: unknown; previous: unknown }[] = []
  constructor(private readonly log: string[] = []) {}

  async create_media(params: { type: string; prompt: string }, ctx: ActionContext) {
    this.log.push('start create_media')
    this.calls.push({ action: 'create_media', params, previous: ctx.previous })
    await tick()
    this.log.push('end create_media')
    return { url: `https://cdn.example/${params.type}/${encodeURIComponent(params.prompt)}.png`, kind: params.type }
  }

  // Helpers starting with `_` are not actions.
  _internal() {
    return 'not an action'
  }
}

/** A plain object whose methods are actions. */
function researchFactory(log: string[] = []) {
  return {
    description: 'market research',
    async analyze_market(params: { symbol: string }, _ctx: ActionContext) {
      log.push('start analyze_market')
      // A window in which an engine that did not wait would start the next step.
      await tick(20)
      log.push('end analyze_market')
      return { symbol: params.symbol, trend: 'up', price: 64_000 }
    },
  }
}

function typeOrder(history: RunEvent[], type: string, stepId: string): number {
  const e = history.find((x) => x.type === type && x.stepId === stepId)
  expect(e, `${type} of ${stepId}`).toBeDefined()
  return e!.seq
}

describe('seed example: ProjectOrchestrator (sequential content_pipeline)', () => {
  it('creates, executes and reports the workflow exactly as the seed writes it', async () => {
    const orchestratorInstance = orchestrator({ workflow: { maxParallel: 4 }, coordinator: { maxWorkers: 4 } })
    const log: string[] = []
    const media = new MediaFactory(log)
    orchestratorInstance.registerFactory('media', media)
    orchestratorInstance.registerFactory('research', researchFactory(log))

    const workflowId = await orchestratorInstance.createWorkflow('content_pipeline', {
      steps: [
        { factory: 'research', action: 'analyze_market', params: { symbol: 'BTC' } },
        { factory: 'media', action: 'create_media', params: { type: 'image', prompt: 'BTC trend' } },
      ],
      factories: ['research', 'media'],
      parallel: false,
    })
    expect(typeof workflowId).toBe('string')

    // Before any run the status is known but empty.
    const before = await orchestratorInstance.getWorkflowStatus(workflowId)
    expect(before).toMatchObject({ workflowId, name: 'content_pipeline', status: null, runId: null, steps: {} })

    const result = await orchestratorInstance.executeWorkflow(workflowId)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.error).toBeUndefined()
    expect(result.steps).toEqual({
      analyze_market: { status: 'SUCCEEDED', output: { symbol: 'BTC', trend: 'up', price: 64_000 }, attempts: 1 },
      create_media: {
        status: 'SUCCEEDED', output: { url: 'https://cdn.example/image/BTC%20trend.png', kind: 'image' }, attempts: 1,
      },
    })
    // Sequential: the second step starts only after the first has finished.
    expect(log).toEqual(['start analyze_market', 'end analyze_market', 'start create_media', 'end create_media'])
    // Its params arrive untouched; the seed's context passing hands it the previous output.
    expect(media.calls).toEqual([
      { action: 'create_media', params: { type: 'image', prompt: 'BTC trend' }, previous: { symbol: 'BTC', trend: 'up', price: 64_000 } },
    ])
    // Default output: the outputs of the leaf steps (here the last one).
    expect(result.output).toEqual({ create_media: { url: 'https://cdn.example/image/BTC%20trend.png', kind: 'image' } })

    const status = await orchestratorInstance.getWorkflowStatus(workflowId)
    expect(status).toEqual({ ...result, workflowId, name: 'content_pipeline' })

    // The audit history records the same order.
    const history = await orchestratorInstance.getHistory(result.runId)
    expect(history[0]!.type).toBe('RUN_CREATED')
    expect(history.at(-1)!.type).toBe('RUN_SUCCEEDED')
    expect(typeOrder(history, 'STEP_SUCCEEDED', 'analyze_market')).toBeLessThan(typeOrder(history, 'STEP_READY', 'create_media'))
    const seqs = history.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
  })

  it('does not treat `_`-prefixed helpers or data fields of a factory as actions', async () => {
    const o = orchestrator()
    const registered = o.registerFactory('media', new MediaFactory())
    expect([...registered.actions.keys()]).toEqual(['create_media'])
    const research = o.registerFactory('research', researchFactory())
    expect([...research.actions.keys()]).toEqual(['analyze_market'])
    expect(research.description).toBe('market research')
  })
})

describe('seed example: parallel execution', () => {
  it('runs create_image, create_video and analyze_market at the same time', async () => {
    const o = orchestrator({ workflow: { maxParallel: 4 }, coordinator: { maxWorkers: 4 } })
    // Each action waits until all three have started: run one after another they would never finish.
    const all = barrier(3, 'parallel seed example')
    const inFlight: string[] = []
    let maxInFlight = 0
    const enter = async (name: string) => {
      inFlight.push(name)
      maxInFlight = Math.max(maxInFlight, inFlight.length)
      await all.arrive()
      inFlight.splice(inFlight.indexOf(name), 1)
    }
    o.registerFactory('media', {
      async create_image(params: Record<string, unknown>) {
        await enter('create_image')
        return { image: true, params }
      },
      async create_video() {
        await enter('create_video')
        return { video: true }
      },
    })
    o.registerFactory('research', {
      async analyze_market() {
        await enter('analyze_market')
        return { trend: 'up' }
      },
    })
    const id = await o.createWorkflow('parallel_example', {
      steps: [
        { factory: 'media', action: 'create_image', params: {} },
        { factory: 'media', action: 'create_video', params: {} },
        { factory: 'research', action: 'analyze_market', params: {} },
      ],
      parallel: true,
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(all.arrived).toBe(3)
    expect(maxInFlight).toBe(3)
    expect(result.steps).toEqual({
      create_image: { status: 'SUCCEEDED', output: { image: true, params: {} }, attempts: 1 },
      create_video: { status: 'SUCCEEDED', output: { video: true }, attempts: 1 },
      analyze_market: { status: 'SUCCEEDED', output: { trend: 'up' }, attempts: 1 },
    })
    // Every step is a leaf: the default output holds all three.
    expect(result.output).toEqual({ create_image: { image: true, params: {} }, create_video: { video: true }, analyze_market: { trend: 'up' } })
    // The log agrees: all three started before any finished.
    const history = await o.getHistory(result.runId)
    const lastStart = Math.max(...history.filter((e) => e.type === 'STEP_STARTED').map((e) => e.seq))
    const firstEnd = Math.min(...history.filter((e) => e.type === 'STEP_SUCCEEDED').map((e) => e.seq))
    expect(history.filter((e) => e.type === 'STEP_STARTED')).toHaveLength(3)
    expect(lastStart).toBeLessThan(firstEnd)
  })
})

describe('seed example: templates', () => {
  const researchDefined = (received: { action: string; input: unknown; stepId: string }[]) =>
    defineFactory({
      name: 'research',
      description: 'typed research factory',
      actions: {
        analyze_market: {
          description: 'analyses a market',
          input: z.object({ symbol: z.string().min(1) }),
          output: z.object({ symbol: z.string(), score: z.number() }),
          run: async (input, ctx) => {
            received.push({ action: 'analyze_market', input, stepId: ctx.stepId })
            return { symbol: input.symbol, score: 0.7 }
          },
        },
        initiate_research: {
          input: z.object({ symbol: z.string(), depth: z.number().default(2) }),
          run: async (input, ctx) => {
            received.push({ action: 'initiate_research', input, stepId: ctx.stepId })
            return { topic: `${input.symbol} outlook`, depth: input.depth, after: ctx.previous }
          },
        },
      },
    })

  const template = {
    steps: [
      { factory: 'research', action: 'analyze_market' },
      { factory: 'research', action: 'initiate_research' },
    ],
    factories: ['research'],
    parallel: false,
  }

  it('registerTemplate + createFromTemplate({params}) gives every step the bound params', async () => {
    const o = orchestrator()
    const received: { action: string; input: unknown; stepId: string }[] = []
    o.registerFactory('research', researchDefined(received))

    const info = o.workflows.registerTemplate('market_research_pipeline', template)
    expect(info).toMatchObject({ name: 'market_research_pipeline', version: 1 })
    // Registering the same definition again is not a new version; a changed one is.
    expect(o.workflows.registerTemplate('market_research_pipeline', template).version).toBe(1)

    const workflowId = await o.workflows.createFromTemplate('market_research_pipeline', { params: { symbol: 'ETH' } })
    expect(o.workflows.get(workflowId)).toMatchObject({
      name: 'market_research_pipeline', templateName: 'market_research_pipeline', templateVersion: 1, params: { symbol: 'ETH' },
    })
    const result = await o.executeWorkflow(workflowId)
    expect(result.status).toBe('SUCCEEDED')
    // Both steps received {symbol: 'ETH'}; the zod schema of the second filled in its default.
    expect(received).toEqual([
      { action: 'analyze_market', input: { symbol: 'ETH' }, stepId: 'analyze_market' },
      { action: 'initiate_research', input: { symbol: 'ETH', depth: 2 }, stepId: 'initiate_research' },
    ])
    expect(result.steps.initiate_research!.output).toEqual({ topic: 'ETH outlook', depth: 2, after: { symbol: 'ETH', score: 0.7 } })
    expect((await o.getWorkflowStatus(workflowId)).status).toBe('SUCCEEDED')

    // A second workflow from the same template with other params is independent.
    const btc = await o.workflows.createFromTemplate('market_research_pipeline', { params: { symbol: 'BTC' }, name: 'btc_research' })
    const btcResult = await o.executeWorkflow(btc)
    expect(btcResult.steps.analyze_market!.output).toEqual({ symbol: 'BTC', score: 0.7 })
    expect((await o.getWorkflowStatus(btc)).name).toBe('btc_research')

    const v2 = o.workflows.registerTemplate('market_research_pipeline', { ...template, parallel: true })
    expect(v2.version).toBe(2)
    expect(o.workflows.getTemplate('market_research_pipeline', 1)!.definition.parallel).toBe(false)
  })

  it('checks bound params against the action schemas and stores nothing when they fail', async () => {
    const o = orchestrator()
    o.registerFactory('research', researchDefined([]))
    o.workflows.registerTemplate('market_research_pipeline', template)
    const count = () => (o.context.conn.sqlite.prepare('select count(*) as n from workflows').get() as { n: number }).n
    const before = count()

    const error = await o.workflows.createFromTemplate('market_research_pipeline', { params: { symbol: 42 } }).catch((e) => e)
    expect(error).toBeInstanceOf(ValidationError)
    const paths = (error as ValidationError).issues.map((i) => i.path)
    expect(paths).toContain('steps[0].params.symbol')
    expect(paths).toContain('steps[1].params.symbol')
    expect(count()).toBe(before)

    await expect(o.workflows.createFromTemplate('no_such_template', { params: {} })).rejects.toBeInstanceOf(NotFoundError)
    expect(count()).toBe(before)
  })

  it('works on a stand-alone WorkflowManager exactly as in the seed snippet', async () => {
    const manager = new WorkflowManager()
    open.push(manager)
    manager.registerTemplate('market_research_pipeline', {
      steps: [
        { factory: 'research', action: 'analyze_market' },
        { factory: 'research', action: 'initiate_research' },
      ],
      factories: ['research'],
      parallel: false,
    })
    const workflowId = await manager.createFromTemplate('market_research_pipeline', { params: { symbol: 'ETH' } })
    expect(typeof workflowId).toBe('string')
    expect(manager.get(workflowId)).toMatchObject({ templateName: 'market_research_pipeline', params: { symbol: 'ETH' } })
    const compiled = manager.load(workflowId)
    expect(compiled.boundParams).toEqual({ symbol: 'ETH' })
    expect([...compiled.graph.nodes.keys()]).toEqual(['analyze_market', 'initiate_research'])
    expect(compiled.graph.nodes.get('initiate_research')!.deps).toEqual(['analyze_market'])
    // Without factories it cannot check names, but still checks structure.
    expect(manager.validate({ steps: [{ factory: 'anything', action: 'goes' }] }).valid).toBe(true)
    const cyclic = manager.validate({ steps: [{ id: 'a', factory: 'x', action: 'y', dependsOn: ['a'] }] })
    expect(cyclic.valid).toBe(false)
    expect(cyclic.issues[0]!.path).toBe('steps[0].dependsOn[0]')
  })
})

describe('seed example: stand-alone FactoryCoordinator', () => {
  it("coordinate('wf_123', {steps, parallel: true}, {media, research}) runs the steps together and returns the run result", async () => {
    const coordinator = new FactoryCoordinator({ maxWorkers: 4 })
    open.push(coordinator)
    const all = barrier(3, 'coordinator parallel')
    const media = new (class {
      async create_image(params: { prompt: string }) {
        await all.arrive()
        return { image: params.prompt }
      }
      async create_video(params: { prompt: string }) {
        await all.arrive()
        return { video: params.prompt }
      }
    })()
    const research = {
      async analyze_market(params: { symbol: string }, ctx: ActionContext) {
        await all.arrive()
        return { symbol: params.symbol, runId: ctx.runId, workflowId: ctx.workflowId }
      },
    }
    const result = await coordinator.coordinate(
      'wf_123',
      {
        steps: [
          { factory: 'media', action: 'create_image', params: { prompt: 'a' } },
          { factory: 'media', action: 'create_video', params: { prompt: 'b' } },
          { factory: 'research', action: 'analyze_market', params: { symbol: 'BTC' } },
        ],
        parallel: true,
      },
      { media, research },
    )
    expect(Object.keys(result).sort()).toEqual(['output', 'runId', 'status', 'steps', 'workflowId'])
    expect(result).toMatchObject({ workflowId: 'wf_123', status: 'SUCCEEDED' })
    expect(typeof result.runId).toBe('string')
    expect(result.steps).toEqual({
      create_image: { status: 'SUCCEEDED', output: { image: 'a' }, attempts: 1 },
      create_video: { status: 'SUCCEEDED', output: { video: 'b' }, attempts: 1 },
      analyze_market: { status: 'SUCCEEDED', output: { symbol: 'BTC', runId: result.runId, workflowId: 'wf_123' }, attempts: 1 },
    })
    expect(result.output).toEqual({
      create_image: { image: 'a' }, create_video: { video: 'b' }, analyze_market: result.steps.analyze_market!.output,
    })
    expect(all.arrived).toBe(3)

    // Coordinating the same id again is a new run of the same workflow.
    const again = await coordinator.coordinate('wf_123', {
      steps: [{ factory: 'research', action: 'analyze_market', params: { symbol: 'ETH' } }],
      parallel: true,
    })
    expect(again.runId).not.toBe(result.runId)
    expect(again.workflowId).toBe('wf_123')
    expect(again.steps.analyze_market!.output).toMatchObject({ symbol: 'ETH' })
  })

  it('returns the same result shape as ProjectOrchestrator.executeWorkflow', async () => {
    const coordinator = new FactoryCoordinator({ maxWorkers: 4 })
    open.push(coordinator)
    const factories = { research: { async analyze_market() { return 1 } } }
    const definition = { steps: [{ factory: 'research', action: 'analyze_market', params: {} }], parallel: true }
    const a = await coordinator.coordinate('wf_shape', definition, factories)
    const o = orchestrator()
    o.registerFactory('research', factories.research)
    const b = await o.executeWorkflow(await o.createWorkflow('shape', definition))
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort())
    expect(a.steps).toEqual(b.steps)
    expect(a.output).toEqual(b.output)
  })
})

describe('context passing', () => {
  it('a string that is exactly one {{ }} keeps its type; mixed text interpolates', async () => {
    const o = orchestrator()
    const seen: Record<string, unknown>[] = []
    o.registerFactory('research', {
      async analyze_market() {
        return { price: 64000.5, change: -3, stats: { high: 65000, low: 63000 }, tags: ['btc', 'crypto'], ok: true, name: 'BTC', none: null }
      },
    })
    o.registerFactory('media', {
      async create_media(params: Record<string, unknown>) {
        seen.push(params)
        return 'done'
      },
    })
    const id = await o.createWorkflow('types', {
      input: { symbol: { type: 'string', required: true } },
      steps: [
        { factory: 'research', action: 'analyze_market', params: {} },
        {
          factory: 'media',
          action: 'create_media',
          params: {
            price: '{{ steps.analyze_market.output.price }}',
            negative: '{{ steps.analyze_market.output.change }}',
            doubled: '{{ steps.analyze_market.output.price * 2 }}',
            stats: '{{ steps.analyze_market.output.stats }}',
            tags: '{{ steps.analyze_market.output.tags }}',
            ok: '{{ steps.analyze_market.output.ok }}',
            none: '{{ steps.analyze_market.output.none }}',
            padded: '  {{ steps.analyze_market.output.price }}  ',
            fromPrevious: '{{ previous.stats.high }}',
            status: '{{ steps.analyze_market.status }}',
            symbol: '{{ input.symbol }}',
            text: '{{ input.symbol }} at {{ steps.analyze_market.output.price }} USD',
            objectInText: 'stats={{ steps.analyze_market.output.stats }}',
            boolInText: 'ok: {{ steps.analyze_market.output.ok }}',
            nested: { deep: ['{{ steps.analyze_market.output.change }}', 'x{{ steps.analyze_market.output.name }}x'] },
            literal: 'no expression here',
            number: 7,
            runId: '{{ run.id }}',
            workflow: '{{ workflow.name }}',
          },
        },
      ],
    })
    const result = await o.executeWorkflow(id, { symbol: 'BTC' })
    expect(result.status).toBe('SUCCEEDED')
    expect(seen).toHaveLength(1)
    const p = seen[0]!
    expect(p.price).toBe(64000.5)
    expect(p.negative).toBe(-3)
    expect(p.doubled).toBe(128001)
    expect(p.stats).toEqual({ high: 65000, low: 63000 })
    expect(p.tags).toEqual(['btc', 'crypto'])
    expect(p.ok).toBe(true)
    expect(p.none).toBeNull()
    expect(p.padded).toBe(64000.5)
    expect(p.fromPrevious).toBe(65000)
    expect(p.status).toBe('SUCCEEDED')
    expect(p.symbol).toBe('BTC')
    expect(p.text).toBe('BTC at 64000.5 USD')
    expect(p.objectInText).toBe('stats={"high":65000,"low":63000}')
    expect(p.boolInText).toBe('ok: true')
    expect(p.nested).toEqual({ deep: [-3, 'xBTCx'] })
    expect(p.literal).toBe('no expression here')
    expect(p.number).toBe(7)
    expect(p.runId).toBe(result.runId)
    expect(p.workflow).toBe('types')
    // What the action got is what the step row recorded as its params.
    const row = o.context.conn.sqlite
      .prepare("select params from steps where run_id = ? and step_id = 'create_media'")
      .get(result.runId) as { params: string }
    expect(JSON.parse(row.params)).toEqual(p)
  })

  it('actions read ctx.steps, ctx.previous, ctx.input, ctx.runId, ctx.stepId, ctx.attempt and ctx.idempotencyKey', async () => {
    const o = orchestrator()
    type Seen = {
      stepId: string; runId: string; workflowId: string; attempt: number; key: string
      steps: Record<string, unknown>; previous: unknown; input: unknown; params: unknown; aborted: boolean
    }
    const seen: Seen[] = []
    let flakyCalls = 0
    const record = (params: unknown, ctx: ActionContext) =>
      seen.push({
        stepId: ctx.stepId, runId: ctx.runId, workflowId: ctx.workflowId, attempt: ctx.attempt, key: ctx.idempotencyKey,
        steps: structuredClone(ctx.steps), previous: structuredClone(ctx.previous), input: ctx.input, params: ctx.params,
        aborted: ctx.signal.aborted,
      })
    o.registerFactory('research', {
      async analyze_market(params: { symbol: string }, ctx: ActionContext) {
        record(params, ctx)
        return { symbol: params.symbol, score: 3 }
      },
      async initiate_research(params: unknown, ctx: ActionContext) {
        record(params, ctx)
        const prev = ctx.previous as { score: number }
        return { topic: `${(ctx.input as { symbol: string }).symbol} deep dive`, score: prev.score + 1 }
      },
      async flaky(params: unknown, ctx: ActionContext) {
        record(params, ctx)
        flakyCalls++
        if (ctx.attempt === 1) throw new Error('transient')
        return { fromSteps: Object.keys(ctx.steps).sort() }
      },
    })
    const id = await o.createWorkflow('ctx', {
      steps: [
        { factory: 'research', action: 'analyze_market', params: { symbol: '{{ input.symbol }}' } },
        { factory: 'research', action: 'initiate_research', params: {} },
        { factory: 'research', action: 'flaky', params: { n: 1 }, retry: { maxAttempts: 2, initialMs: 0, jitter: false } },
      ],
    })
    const result = await o.executeWorkflow(id, { symbol: 'SOL', extra: [1, 2] })
    expect(result.status).toBe('SUCCEEDED')
    expect(flakyCalls).toBe(2)
    expect(seen.map((s) => [s.stepId, s.attempt])).toEqual([
      ['analyze_market', 1], ['initiate_research', 1], ['flaky', 1], ['flaky', 2],
    ])
    for (const s of seen) {
      expect(s.runId).toBe(result.runId)
      expect(s.workflowId).toBe(id)
      expect(s.input).toEqual({ symbol: 'SOL', extra: [1, 2] })
      expect(s.aborted).toBe(false)
    }
    const [a, b, f1, f2] = seen as [Seen, Seen, Seen, Seen]
    expect(a.params).toEqual({ symbol: 'SOL' })
    expect(a.steps).toEqual({})
    expect(a.previous).toBeUndefined()
    expect(b.steps).toEqual({ analyze_market: { symbol: 'SOL', score: 3 } })
    expect(b.previous).toEqual({ symbol: 'SOL', score: 3 })
    expect(f1.steps).toEqual({ analyze_market: { symbol: 'SOL', score: 3 }, initiate_research: { topic: 'SOL deep dive', score: 4 } })
    expect(f1.previous).toEqual({ topic: 'SOL deep dive', score: 4 })
    expect(result.steps.flaky).toEqual({ status: 'SUCCEEDED', output: { fromSteps: ['analyze_market', 'initiate_research'] }, attempts: 2 })
    // One key per step of a run, the same for every attempt of it.
    expect(f1.key).toBe(f2.key)
    expect(new Set([a.key, b.key, f1.key]).size).toBe(3)
    for (const s of seen) expect(s.key).toContain(result.runId)

    // Another run of the same workflow gets other keys.
    const second = await o.executeWorkflow(id, { symbol: 'ADA' })
    const secondKeys = seen.filter((s) => s.runId === second.runId).map((s) => s.key)
    expect(secondKeys).toHaveLength(4)
    for (const k of secondKeys) expect([a.key, b.key, f1.key]).not.toContain(k)
  })

  it('previous is the single dependency; parallel steps without one get none', async () => {
    const o = orchestrator()
    const previous: Record<string, unknown> = {}
    o.registerFactory('f', {
      async emit(params: { v: number }, ctx: ActionContext) {
        previous[ctx.stepId] = ctx.previous
        return { v: params.v }
      },
    })
    const id = await o.createWorkflow('prev', {
      parallel: true,
      steps: [
        { id: 'a', factory: 'f', action: 'emit', params: { v: 1 } },
        { id: 'b', factory: 'f', action: 'emit', params: { v: 2 } },
        { id: 'c', factory: 'f', action: 'emit', params: { v: 3 }, dependsOn: ['b'] },
        { id: 'd', factory: 'f', action: 'emit', params: { v: '{{ previous }}' }, dependsOn: ['a', 'c'] },
      ],
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(previous).toEqual({ a: undefined, b: undefined, c: { v: 2 }, d: undefined })
    // With two dependencies there is no single "previous" in expressions either.
    expect(result.steps.d!.output).toEqual({ v: null })
  })

  it('step ids default to the action name; repeated actions get _2, _3', async () => {
    const o = orchestrator()
    const ids: string[] = []
    o.registerFactory('research', {
      async analyze_market(params: { n: number }, ctx: ActionContext) {
        ids.push(ctx.stepId)
        return params.n
      },
    })
    o.registerFactory('media', {
      async create_media(params: Record<string, unknown>, ctx: ActionContext) {
        ids.push(ctx.stepId)
        return params
      },
    })
    const id = await o.createWorkflow('ids', {
      steps: [
        { factory: 'research', action: 'analyze_market', params: { n: 1 } },
        { factory: 'research', action: 'analyze_market', params: { n: 2 } },
        { factory: 'media', action: 'create_media', params: { second: '{{ steps.analyze_market_2.output }}' } },
        { factory: 'research', action: 'analyze_market', params: { n: 3 } },
        { id: 'final', factory: 'media', action: 'create_media', params: { third: '{{ steps.analyze_market_3.output }}' } },
      ],
    })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(ids).toEqual(['analyze_market', 'analyze_market_2', 'create_media', 'analyze_market_3', 'final'])
    expect(Object.keys(result.steps)).toEqual(expect.arrayContaining(ids))
    expect(Object.keys(result.steps)).toHaveLength(5)
    expect(result.steps.create_media!.output).toEqual({ second: 2 })
    expect(result.steps.final!.output).toEqual({ third: 3 })

    // An explicit id reserves its name: the generated one moves on to the next free suffix.
    const graph = o.workflows.load(await o.createWorkflow('reserved', {
      steps: [
        { factory: 'research', action: 'analyze_market', params: { n: 1 } },
        { id: 'analyze_market', factory: 'media', action: 'create_media', params: {} },
      ],
    })).graph
    expect([...graph.nodes.keys()]).toEqual(['analyze_market_2', 'analyze_market'])
  })
})
