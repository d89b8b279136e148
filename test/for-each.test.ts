// forEach (DESIGN.md §2): a step with `forEach` fans out at run time into one action step per item
// (`render[0]`, `render[1]`, ...) with `item` and `index` in scope; its output is the items' outputs
// in order, bounded by the step's and the workflow's maxParallel, and durable across a SIGKILL.
// Through the library, GraphQL over HTTP, and a crashed child process. No wall-clock assertions.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ProjectOrchestrator, ValidationError, controlFactory, defineFactory, type ActionContext, type OrchestratorConfig, type WorkflowDefinition,
} from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { crashKit } from './helpers/child.ts'
import { until } from './support/barrier.ts'
import { CreateWorkflowDocument, ExecuteWorkflowDocument, RunDocument } from './generated/graphql.ts'
import { slowFactory } from './fixtures/fanout-workflow.ts'
import { openedPerTest } from './support/opened.ts'

const WORKER = new URL('./fixtures/fanout-worker.ts', import.meta.url).pathname
const kit = crashKit()
let server: TestServer | undefined

const opened = openedPerTest({
  after: async () => {
    await server?.close()
    server = undefined
    kit.cleanup()
  },
})

function orchestrator(config: OrchestratorConfig = {}): ProjectOrchestrator {
  const o = opened.orchestrator(config)
  o.registerFactory('control', controlFactory)
  return o
}

/**
 * `fan.render` returns `{ n: value * 10, index }` for a number (and echoes anything else), after an
 * optional wait on `gate(index)`; `fan.boom` fails (non-retryable) for `fail: true`. Every call is
 * recorded with its step id and params, and the number in flight is tracked (current and max).
 */
function fanFactory(options: { gate?: (index: number, ctx: ActionContext) => Promise<void> } = {}) {
  const calls: { runId: string; stepId: string; params: Record<string, unknown> }[] = []
  const finished: string[] = []
  const flight = { current: 0, max: 0 }
  const factory = defineFactory({
    name: 'fan',
    actions: {
      render: {
        input: z.object({ value: z.unknown(), index: z.number().optional() }),
        run: async (params, ctx) => {
          calls.push({ runId: ctx.runId, stepId: ctx.stepId, params })
          flight.current++
          flight.max = Math.max(flight.max, flight.current)
          try {
            if (options.gate) await options.gate(params.index ?? -1, ctx)
            else await new Promise((r) => setTimeout(r, 2))
            finished.push(ctx.stepId)
            return typeof params.value === 'number' ? { n: params.value * 10, index: params.index } : { value: params.value, index: params.index }
          } finally {
            flight.current--
          }
        },
      },
      boom: {
        input: z.object({ value: z.number(), fail: z.boolean() }),
        run: ({ value, fail }, ctx) => {
          calls.push({ runId: ctx.runId, stepId: ctx.stepId, params: { value, fail } })
          if (fail) throw new Error(`item ${value} broke`)
          return { ok: value }
        },
      },
    },
  })
  return { factory, calls, finished, flight }
}

/** A promise per index, resolved by hand. */
function gates(n: number) {
  const resolvers: (() => void)[] = []
  const promises = Array.from({ length: n }, (_, i) => new Promise<void>((r) => (resolvers[i] = r)))
  return { wait: (i: number) => promises[i]!, open: (i: number) => resolvers[i]!(), openAll: () => resolvers.forEach((r) => r()) }
}

describe('forEach over a list', () => {
  it('fans out over a list expression: one step per item with item and index, outputs in order, usable downstream', async () => {
    const o = orchestrator()
    // Item i waits for item i+1 to finish: the items complete in reverse order.
    const g = gates(4)
    const fan = fanFactory({
      gate: async (i) => {
        if (i < 3) await g.wait(i + 1)
        setImmediate(() => g.open(i))
      },
    })
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_expression', {
      steps: [
        { id: 'x', factory: 'control', action: 'noop', params: { items: [1, 2, 3, 4] } },
        { id: 'render', factory: 'fan', action: 'render', forEach: '{{ steps.x.output.items }}', params: { value: '{{ item }}', index: '{{ index }}' } },
        { id: 'total', factory: 'control', action: 'noop', params: { sum: '{{ $sum(steps.render.output.n) }}', count: '{{ $count(steps.render.output) }}' } },
      ],
      output: '{{ steps.render.output }}',
    })
    const result = await o.executeWorkflow(wf)

    expect(result.status).toBe('SUCCEEDED')
    // One child step per item, ids render[0]..render[3], each with its own item and index.
    const itemIds = Object.keys(result.steps).filter((id) => id.startsWith('render['))
    expect(itemIds.sort()).toEqual(['render[0]', 'render[1]', 'render[2]', 'render[3]'])
    expect(fan.calls.map((c) => [c.stepId, c.params]).sort()).toEqual([
      ['render[0]', { value: 1, index: 0 }], ['render[1]', { value: 2, index: 1 }],
      ['render[2]', { value: 3, index: 2 }], ['render[3]', { value: 4, index: 3 }],
    ])
    // They finished last first, and the collected output is still in item order.
    expect(fan.finished).toEqual(['render[3]', 'render[2]', 'render[1]', 'render[0]'])
    const expected = [{ n: 10, index: 0 }, { n: 20, index: 1 }, { n: 30, index: 2 }, { n: 40, index: 3 }]
    expect(result.steps.render).toMatchObject({ status: 'SUCCEEDED', output: expected })
    expect(result.output).toEqual(expected)
    expect(result.steps.total!.output).toEqual({ sum: 100, count: 4 })
    for (let i = 0; i < 4; i++) expect(result.steps[`render[${i}]`]).toMatchObject({ status: 'SUCCEEDED', output: expected[i], attempts: 1 })
    // The events: STEP_STARTED of the forEach announces the items; each item succeeds once.
    const history = await o.getHistory(result.runId)
    expect(history.find((e) => e.type === 'STEP_STARTED' && e.stepId === 'render')!.payload).toMatchObject({ items: 4 })
    for (const id of itemIds) expect(history.filter((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === id)).toHaveLength(1)
  })

  it('fans out over a literal array (objects too), with item and index interpolated into strings', async () => {
    const o = orchestrator()
    const fan = fanFactory()
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_literal', {
      steps: [
        { id: 'render', factory: 'fan', action: 'render', forEach: [{ name: 'a' }, { name: 'b' }, { name: 'c' }], params: { value: 'file-{{ index }}-{{ item.name }}', index: '{{ index }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.render!.output).toEqual([
      { value: 'file-0-a', index: 0 }, { value: 'file-1-b', index: 1 }, { value: 'file-2-c', index: 2 },
    ])
    // The default run output (the leaf) is the forEach's array.
    expect(result.output).toEqual({ render: result.steps.render!.output })
    expect(fan.calls).toHaveLength(3)
  })

  it('a single JSONata value (not an array) counts as one item', async () => {
    const o = orchestrator()
    const fan = fanFactory()
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_single', {
      steps: [
        { id: 'x', factory: 'control', action: 'noop', params: { one: 7, rows: [{ v: 5 }] } },
        { id: 'scalar', factory: 'fan', action: 'render', forEach: '{{ steps.x.output.one }}', params: { value: '{{ item }}', index: '{{ index }}' } },
        // A path into a one-element array: JSONata gives the single value, not a list.
        { id: 'path', factory: 'fan', action: 'render', forEach: '{{ steps.x.output.rows.v }}', params: { value: '{{ item }}', index: '{{ index }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.scalar!.output).toEqual([{ n: 70, index: 0 }])
    expect(result.steps.path!.output).toEqual([{ n: 50, index: 0 }])
    expect(Object.keys(result.steps).filter((id) => id.includes('['))).toEqual(['scalar[0]', 'path[0]'])
  })

  it('an empty list: the forEach succeeds with [] without calling the action, and the run goes on', async () => {
    const o = orchestrator()
    const fan = fanFactory()
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_empty', {
      steps: [
        { id: 'x', factory: 'control', action: 'noop', params: { items: [] } },
        { id: 'fromExpr', factory: 'fan', action: 'render', forEach: '{{ steps.x.output.items }}', params: { value: '{{ item }}' } },
        { id: 'literal', factory: 'fan', action: 'render', forEach: [], params: { value: '{{ item }}' } },
        { id: 'after', factory: 'control', action: 'noop', params: { a: '{{ $count(steps.fromExpr.output) }}', b: '{{ steps.literal.status }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.fromExpr).toMatchObject({ status: 'SUCCEEDED', output: [] })
    expect(result.steps.literal).toMatchObject({ status: 'SUCCEEDED', output: [] })
    expect(result.steps.after!.output).toEqual({ a: 0, b: 'SUCCEEDED' })
    expect(fan.calls).toHaveLength(0)
    expect(Object.keys(result.steps).some((id) => id.includes('['))).toBe(false)
  })

  it('`when` false skips the whole forEach: no item steps, no calls; its dependents still run', async () => {
    const o = orchestrator()
    const fan = fanFactory()
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_when', {
      input: { go: { type: 'boolean', default: false } },
      steps: [
        { id: 'render', factory: 'fan', action: 'render', when: '{{ input.go }}', forEach: [1, 2, 3], params: { value: '{{ item }}' } },
        { id: 'after', factory: 'control', action: 'noop', params: { status: '{{ steps.render.status }}' } },
      ],
    })
    const skipped = await o.executeWorkflow(wf, { go: false })
    expect(skipped.status).toBe('SUCCEEDED')
    expect(skipped.steps.render!.status).toBe('SKIPPED')
    expect(skipped.steps.after!.output).toEqual({ status: 'SKIPPED' })
    expect(Object.keys(skipped.steps).some((id) => id.includes('['))).toBe(false)
    expect(fan.calls).toHaveLength(0)

    // The same workflow with go: true fans out, so the skip was the condition's doing.
    const ran = await o.executeWorkflow(wf, { go: true })
    expect(ran.steps.render).toMatchObject({ status: 'SUCCEEDED', output: [{ n: 10 }, { n: 20 }, { n: 30 }] })
    expect(fan.calls).toHaveLength(3)
  })
})

describe('forEach limits', () => {
  it("the step's maxParallel bounds the items in flight, and is reached", async () => {
    const o = orchestrator()
    const fan = fanFactory({ gate: () => new Promise((r) => setTimeout(r, 3)) })
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_bounded', {
      steps: [
        { id: 'render', factory: 'fan', action: 'render', forEach: Array.from({ length: 12 }, (_, i) => i), maxParallel: 3, params: { value: '{{ item }}', index: '{{ index }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(fan.calls).toHaveLength(12)
    expect(fan.flight.max).toBe(3)
    expect((result.steps.render!.output as { n: number }[]).map((r) => r.n)).toEqual(Array.from({ length: 12 }, (_, i) => i * 10))
  })

  it("the workflow's maxParallel bounds the items too, counting the run's other steps", async () => {
    const o = orchestrator()
    const held = gates(1)
    const all = { current: 0, max: 0 }
    const items = { current: 0, max: 0, done: 0 }
    const enter = (g: { current: number; max: number }) => { g.current++; g.max = Math.max(g.max, g.current) }
    const factory = defineFactory({
      name: 'fan',
      actions: {
        render: {
          input: z.object({ value: z.number() }),
          run: async ({ value }) => {
            enter(all)
            enter(items)
            await new Promise((r) => setTimeout(r, 3))
            all.current--
            items.current--
            items.done++
            return { n: value }
          },
        },
        hold: {
          input: z.object({}),
          run: async () => {
            enter(all)
            await held.wait(0)
            all.current--
            return { held: true }
          },
        },
      },
    })
    o.registerFactory('fan', factory)
    const wf = await o.createWorkflow('each_run_bounded', {
      parallel: true,
      maxParallel: 2,
      steps: [
        { id: 'hold', factory: 'fan', action: 'hold', params: {} },
        { id: 'render', factory: 'fan', action: 'render', forEach: Array.from({ length: 8 }, (_, i) => i), params: { value: '{{ item }}' } },
      ],
    })
    const { runId } = await o.startWorkflow(wf)
    // `hold` takes one of the run's two slots: all 8 items go through the other, one at a time.
    await until(() => items.done === 8)
    expect(items.max).toBe(1)
    expect(all.max).toBe(2)
    held.open(0)
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(all.max).toBe(2)
    expect(result.steps.render!.output).toEqual(Array.from({ length: 8 }, (_, i) => ({ n: i })))
  })
})

describe('forEach failures', () => {
  const failing: WorkflowDefinition = {
    steps: [
      { id: 'render', factory: 'fan', action: 'boom', forEach: [1, 2, 3], maxParallel: 1, params: { value: '{{ item }}', fail: '{{ item = 2 }}' } },
      { id: 'after', factory: 'control', action: 'noop', params: { got: '{{ steps.render.output }}' } },
    ],
  }

  it('a failing item fails the forEach and the run (default onFailure): later items do not start', async () => {
    const o = orchestrator()
    const fan = fanFactory()
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_fail', failing)
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('FAILED')
    expect(result.error).toContain('render')
    expect(result.steps['render[0]']).toMatchObject({ status: 'SUCCEEDED', output: { ok: 1 } })
    expect(result.steps['render[1]']).toMatchObject({ status: 'FAILED', error: 'item 2 broke' })
    // maxParallel 1: the third item was still waiting for its slot and was cancelled with the run.
    expect(result.steps['render[2]']!.status).toBe('CANCELLED')
    expect(result.steps.render!.status).toBe('FAILED')
    expect(result.steps.render!.error).toContain('render[1]')
    expect(result.steps.after!.status).not.toBe('SUCCEEDED')
    expect(fan.calls.map((c) => c.stepId)).toEqual(['render[0]', 'render[1]'])
  })

  it('continueOnError on the forEach step: the run succeeds and the failed item is null in the output', async () => {
    const o = orchestrator()
    const fan = fanFactory()
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_continue', {
      ...failing,
      steps: [{ ...failing.steps[0]!, continueOnError: true }, failing.steps[1]!],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps['render[1]']).toMatchObject({ status: 'FAILED', error: 'item 2 broke' })
    expect(result.steps.render).toMatchObject({ status: 'SUCCEEDED', output: [{ ok: 1 }, null, { ok: 3 }] })
    expect(result.steps.after!.output).toEqual({ got: [{ ok: 1 }, null, { ok: 3 }] })
    expect(fan.calls.map((c) => c.stepId)).toEqual(['render[0]', 'render[1]', 'render[2]'])
  })

  it('a list expression that fails at run time fails the forEach step with the stage named', async () => {
    const o = orchestrator()
    const fan = fanFactory()
    o.registerFactory('fan', fan.factory)
    const wf = await o.createWorkflow('each_bad_runtime', {
      steps: [
        { id: 'x', factory: 'control', action: 'noop', params: { items: 'abc' } },
        { id: 'render', factory: 'fan', action: 'render', forEach: '{{ $number(steps.x.output.items) }}', params: { value: '{{ item }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('FAILED')
    expect(result.steps.render!.status).toBe('FAILED')
    expect(result.steps.render!.error).toMatch(/^forEach: /)
    expect(fan.calls).toHaveLength(0)
  })
})

describe('forEach validation', () => {
  it('forEach on a group, or with an expression that does not parse, is a ValidationError with paths', async () => {
    const o = orchestrator()
    o.registerFactory('fan', fanFactory().factory)
    const error = await o
      .createWorkflow('each_invalid', {
        steps: [
          { id: 'x', factory: 'control', action: 'noop', params: {} },
          { id: 'g', forEach: [1, 2], steps: [{ factory: 'fan', action: 'render', params: { value: 1 } }] },
          { id: 'render', factory: 'fan', action: 'render', forEach: '{{ steps.x.output.items[ }}', params: { value: '{{ item }}' } },
        ],
      })
      .then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(ValidationError)
    const issues = (error as ValidationError).issues
    expect(issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: 'steps[1].forEach', message: expect.stringContaining('factory and action') }),
      expect.objectContaining({ path: 'steps[2].forEach' }),
    ]))
    // Nothing was stored.
    expect(o.catalog.workflows({ limit: 10 })).toHaveLength(0)
  })

  it('over GraphQL: createWorkflow reports the same issues, and a valid forEach runs with its items listed as steps', async () => {
    const fan = fanFactory()
    server = await startTestServer({ factories: { fan: fan.factory } })
    const bad = await server.request(CreateWorkflowDocument, {
      name: 'each_bad',
      definition: { steps: [{ id: 'render', factory: 'fan', action: 'render', forEach: '{{ ]] }}', params: { value: 1 } }] },
    })
    const badResult = bad.data!.createWorkflow
    expect(badResult.__typename).toBe('ValidationError')
    if (badResult.__typename !== 'ValidationError') throw new Error('unreachable')
    expect(badResult.issues.map((i) => i.path)).toContain('steps[0].forEach')

    const created = await server.request(CreateWorkflowDocument, {
      name: 'each_good',
      definition: { steps: [{ id: 'render', factory: 'fan', action: 'render', forEach: [5, 6], params: { value: '{{ item }}', index: '{{ index }}' } }] },
    })
    const c = created.data!.createWorkflow
    if (c.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(created))
    const executed = await server.request(ExecuteWorkflowDocument, { workflowId: c.workflow.id })
    const e = executed.data!.executeWorkflow
    if (e.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(executed))
    const runId = e.run.id
    await server.orchestrator.waitForRun(runId)
    const run = (await server.request(RunDocument, { id: runId })).data!.run!
    expect(run.status).toBe('SUCCEEDED')
    const byId = Object.fromEntries(run.steps.map((s) => [s.stepId, s]))
    expect(byId.render).toMatchObject({ status: 'SUCCEEDED', output: [{ n: 50, index: 0 }, { n: 60, index: 1 }] })
    expect(byId['render[0]']).toMatchObject({ status: 'SUCCEEDED', params: { value: 5, index: 0 }, output: { n: 50, index: 0 } })
    expect(byId['render[1]']).toMatchObject({ status: 'SUCCEEDED', params: { value: 6, index: 1 }, output: { n: 60, index: 1 } })
  })
})

describe('forEach durability', () => {
  it('SIGKILL mid-forEach: after reopening, every item succeeded exactly once and the outputs are in order', async () => {
    const db = kit.tempDb()
    const { child, line } = await kit.start(WORKER, [db, 'forEach'])
    const runId = line.runId as string
    // Kill while some items are done and others are running.
    const seen = await kit.waitFor(db, (s) => {
      const rows = s.prepare("select status, count(*) as n from steps where run_id = ? and step_id like 'render[%' group by status").all(runId) as { status: string; n: number }[]
      const by = Object.fromEntries(rows.map((r) => [r.status, r.n]))
      return (by.SUCCEEDED ?? 0) >= 3 && (by.RUNNING ?? 0) > 0 ? by : undefined
    })
    await kit.kill(child)
    expect(seen.SUCCEEDED).toBeLessThan(12)

    const o = opened.orchestrator({ database: db })
    o.registerFactory('slow', slowFactory)
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    const items = Array.from({ length: 12 }, (_, i) => `render[${i}]`)
    expect(Object.keys(result.steps).filter((id) => id.startsWith('render[')).sort()).toEqual([...items].sort())
    for (const id of items) expect(result.steps[id]!.status, id).toBe('SUCCEEDED')
    const history = await o.getHistory(runId)
    for (const id of items) expect(history.filter((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === id), id).toHaveLength(1)
    expect(history.filter((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === 'render')).toHaveLength(1)
    expect(history.filter((e) => e.type === 'RUN_SUCCEEDED')).toHaveLength(1)
    // Outputs in item order, each with its own step's idempotency key; the step after read them all.
    const output = result.steps.render!.output as { value: string; index: number; key: string }[]
    expect(output.map((r) => r.value)).toEqual(Array.from({ length: 12 }, (_, i) => `item-${i}`))
    expect(output.map((r) => r.index)).toEqual(Array.from({ length: 12 }, (_, i) => i))
    expect(output.map((r) => r.key)).toEqual(items.map((id) => `${runId}:${id}`))
    expect(result.output).toEqual(Array.from({ length: 12 }, (_, i) => `item-${i}`))
  })
})
