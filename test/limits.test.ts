// Concurrency limits hold ACROSS concurrent runs (DESIGN.md §3 "Scheduler"): the global worker pool
// (`coordinator.maxWorkers`), each run's `maxParallel` (definition or orchestrator default), per-action
// and per-factory `concurrency`, and a nested group's `maxParallel`. Every test counts in-flight
// actions from inside the actions themselves (increment on entry, decrement on exit, keep the max) and
// proves both sides: the limit is reached, and it is never exceeded. No wall-clock assertions.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ProjectOrchestrator, defineFactory, type ActionContext, type StepDefinition,
} from '../src/index.ts'
import { openedPerTest } from './support/opened.ts'
import { until } from './support/barrier.ts'

const opened = openedPerTest()

const orchestrator = opened.orchestrator

/** Counts actions in flight: `current`, the highest `max` ever seen, and `total` entries. */
class Gauge {
  current = 0
  max = 0
  total = 0
  enter(): void {
    this.current++
    this.total++
    if (this.current > this.max) this.max = this.current
  }
  exit(): void {
    this.current--
  }
}

/** One gauge per key (run id, action name, group ...), made on first use. */
class Gauges {
  private readonly map = new Map<string, Gauge>()
  of(key: string): Gauge {
    let g = this.map.get(key)
    if (!g) {
      g = new Gauge()
      this.map.set(key, g)
    }
    return g
  }
  keys(): string[] {
    return [...this.map.keys()]
  }
  maxes(): Record<string, number> {
    return Object.fromEntries([...this.map].map(([k, g]) => [k, g.max]))
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    }, { once: true })
  })
}

/** A promise the test resolves by hand. */
function deferred<T = void>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}


/**
 * A factory whose `work` action tracks itself in `global` and in per-key gauges (by run, by step
 * group prefix, by action) and sleeps `ms` (default 5) honouring the abort signal.
 */
function trackedFactory(name: string, options: { concurrency?: number; actionConcurrency?: Record<string, number> } = {}) {
  const global = new Gauge()
  const byRun = new Gauges()
  const byAction = new Gauges()
  const byGroup = new Gauges()
  const calls: { runId: string; stepId: string; action: string }[] = []
  const body = (action: string) => async (input: { ms?: number }, ctx: ActionContext) => {
    const group = ctx.stepId.includes('.') ? ctx.stepId.slice(0, ctx.stepId.lastIndexOf('.')) : '(top)'
    const gauges = [global, byRun.of(ctx.runId), byAction.of(action), byGroup.of(group)]
    // Every enclosing group too (outer.inner.x counts for "outer" and "outer.inner").
    const parts = ctx.stepId.split('.')
    for (let i = 1; i < parts.length - 1; i++) gauges.push(byGroup.of(parts.slice(0, i).join('.')))
    for (const g of gauges) g.enter()
    calls.push({ runId: ctx.runId, stepId: ctx.stepId, action })
    try {
      await sleep(input.ms ?? 5, ctx.signal)
      return { step: ctx.stepId }
    } finally {
      for (const g of gauges) g.exit()
    }
  }
  const input = z.object({ ms: z.number().optional() })
  const factory = defineFactory({
    name,
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    actions: {
      work: { input, run: body('work'), ...(options.actionConcurrency?.work ? { concurrency: options.actionConcurrency.work } : {}) },
      other: { input, run: body('other'), ...(options.actionConcurrency?.other ? { concurrency: options.actionConcurrency.other } : {}) },
    },
  })
  return { factory, global, byRun, byAction, byGroup, calls }
}

function parallelSteps(n: number, factory: string, action = 'work', params: Record<string, unknown> = {}): StepDefinition[] {
  return Array.from({ length: n }, (_, i) => ({ id: `s${i + 1}`, factory, action, params }))
}

async function startMany(o: ProjectOrchestrator, workflowId: string, n: number): Promise<string[]> {
  const started = await Promise.all(Array.from({ length: n }, () => o.startWorkflow(workflowId)))
  return started.map((s) => s.runId)
}

describe('coordinator.maxWorkers (global in-flight actions across all runs)', () => {
  it('5 concurrent runs of 6 parallel steps each never exceed 3 in flight, reach 3, and all succeed', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 3 } })
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('fan', { parallel: true, steps: parallelSteps(6, 't') })

    const runIds = await startMany(o, wf, 5)
    const results = await Promise.all(runIds.map((id) => o.waitForRun(id)))

    expect(new Set(runIds).size).toBe(5)
    expect(t.global.max).toBe(3)
    expect(t.global.current).toBe(0)
    expect(t.global.total).toBe(30)
    for (const r of results) {
      expect(r.status).toBe('SUCCEEDED')
      expect(Object.values(r.steps).map((s) => s.status)).toEqual(Array(6).fill('SUCCEEDED'))
      expect(Object.values(r.steps).every((s) => s.attempts === 1)).toBe(true)
    }
    // Every run got its six steps run exactly once.
    for (const id of runIds) expect(t.calls.filter((c) => c.runId === id)).toHaveLength(6)
  })

  it('the limit also holds for a burst of single-step runs and for runs of different workflows', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 2 } })
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const one = await o.createWorkflow('one', { steps: [{ factory: 't', action: 'work' }] })
    const two = await o.createWorkflow('two', { parallel: true, steps: parallelSteps(3, 't', 'other') })

    const ids = [...(await startMany(o, one, 6)), ...(await startMany(o, two, 3))]
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))

    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(t.global.total).toBe(6 + 9)
    expect(t.global.max).toBe(2)
  })

  it('a slot held by a cancelled run is released: queued runs proceed', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 1 } })
    const entered = deferred()
    const blocking = defineFactory({
      name: 'b',
      actions: {
        hold: {
          run: (_: unknown, ctx: ActionContext) => {
            entered.resolve()
            // Settles only when aborted.
            return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))
          },
        },
      },
    })
    const t = trackedFactory('t')
    o.registerFactory('b', blocking)
    o.registerFactory('t', t.factory)
    const holder = await o.createWorkflow('holder', { steps: [{ factory: 'b', action: 'hold' }] })
    const worker = await o.createWorkflow('worker', { parallel: true, steps: parallelSteps(3, 't') })

    const { runId: holdRun } = await o.startWorkflow(holder)
    await entered.promise
    const { runId: workRun } = await o.startWorkflow(worker)
    // The only slot is taken: none of the worker's steps may start.
    await sleep(10)
    expect(t.global.total).toBe(0)
    expect((await o.getRun(workRun)).steps.s1!.status).toBe('READY')

    const cancelled = await o.cancelRun(holdRun)
    expect(cancelled.status).toBe('CANCELLED')
    const done = await o.waitForRun(workRun)
    expect(done.status).toBe('SUCCEEDED')
    expect(t.global.total).toBe(3)
    expect(t.global.max).toBe(1)
  })

  it('steps of a cancelled run that were queued for a slot never start, and the pool keeps working', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 1 } })
    const release = deferred()
    const entered = deferred()
    const gate = defineFactory({
      name: 'g',
      actions: {
        hold: {
          run: async () => {
            entered.resolve()
            await release.promise
            return 'released'
          },
        },
      },
    })
    const t = trackedFactory('t')
    o.registerFactory('g', gate)
    o.registerFactory('t', t.factory)
    const holder = await o.createWorkflow('holder', { steps: [{ factory: 'g', action: 'hold' }] })
    const queued = await o.createWorkflow('queued', { parallel: true, steps: parallelSteps(3, 't') })

    const { runId: holdRun } = await o.startWorkflow(holder)
    await entered.promise
    const { runId: queuedRun } = await o.startWorkflow(queued)
    const cancelled = await o.cancelRun(queuedRun)
    expect(cancelled.status).toBe('CANCELLED')
    expect(Object.values(cancelled.steps).map((s) => s.status)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED'])

    release.resolve()
    expect((await o.waitForRun(holdRun)).status).toBe('SUCCEEDED')
    // A fresh run gets the freed slot; the cancelled run's queued steps were skipped, not started.
    const later = await o.executeWorkflow(queued)
    expect(later.status).toBe('SUCCEEDED')
    expect(t.calls.filter((c) => c.runId === queuedRun)).toHaveLength(0)
    expect(t.calls.filter((c) => c.runId === later.runId)).toHaveLength(3)
    expect(t.global.max).toBe(1)
  })

  it('a slot held by a step that timed out is released', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 1 } })
    const hang = defineFactory({
      name: 'h',
      actions: {
        hang: { run: (_: unknown, ctx: ActionContext) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) },
      },
    })
    const t = trackedFactory('t')
    o.registerFactory('h', hang)
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('mixed', {
      parallel: true,
      steps: [
        { id: 'stuck', factory: 'h', action: 'hang', timeoutMs: 20, continueOnError: true },
        ...parallelSteps(3, 't'),
      ],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.stuck!.status).toBe('FAILED')
    expect(r.steps.stuck!.error).toMatch(/timed out/)
    expect(['s1', 's2', 's3'].map((s) => r.steps[s]!.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED'])
    expect(t.global.max).toBe(1)
  })
})

describe('workflow maxParallel (per run)', () => {
  it('maxParallel in the definition bounds each run at 2, while two runs together reach 4', async () => {
    const o = orchestrator()
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('bounded', { parallel: true, maxParallel: 2, steps: parallelSteps(6, 't', 'work', { ms: 10 }) })

    const ids = await startMany(o, wf, 2)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))

    expect(results.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED'])
    expect(t.byRun.keys().sort()).toEqual([...ids].sort())
    for (const id of ids) {
      expect(t.byRun.of(id).max).toBe(2)
      expect(t.byRun.of(id).total).toBe(6)
    }
    // The limit is per run, not global.
    expect(t.global.max).toBe(4)
  })

  it('the orchestrator-wide default workflow.maxParallel applies when the definition sets none', async () => {
    const o = orchestrator({ workflow: { maxParallel: 2 } })
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('defaulted', { parallel: true, steps: parallelSteps(6, 't', 'work', { ms: 10 }) })

    const ids = await startMany(o, wf, 2)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))

    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    for (const id of ids) expect(t.byRun.of(id).max).toBe(2)
    expect(t.global.max).toBe(4)
  })

  it("a definition's own maxParallel overrides the orchestrator default", async () => {
    const o = orchestrator({ workflow: { maxParallel: 1 } })
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('own', { parallel: true, maxParallel: 3, steps: parallelSteps(6, 't') })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('SUCCEEDED')
    expect(t.byRun.of(r.runId).max).toBe(3)
  })

  it('maxParallel and maxWorkers combine: the tighter one wins', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 3 } })
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('both', { parallel: true, maxParallel: 2, steps: parallelSteps(5, 't', 'work', { ms: 10 }) })
    const ids = await startMany(o, wf, 3)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))
    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    for (const id of ids) expect(t.byRun.of(id).max).toBeLessThanOrEqual(2)
    expect(Math.max(...ids.map((id) => t.byRun.of(id).max))).toBe(2)
    expect(t.global.max).toBe(3)
    expect(t.global.total).toBe(15)
  })
})

describe('per-action and per-factory concurrency (across runs)', () => {
  it('an action with concurrency 2 never has more than 2 calls in flight across 10 concurrent runs', async () => {
    const o = orchestrator()
    const t = trackedFactory('t', { actionConcurrency: { work: 2 } })
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('pooled', { parallel: true, steps: parallelSteps(3, 't') })

    const ids = await startMany(o, wf, 10)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))

    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(t.byAction.of('work').total).toBe(30)
    expect(t.byAction.of('work').max).toBe(2)
    expect(t.global.max).toBe(2)
  })

  it("an action's pool does not limit the factory's other actions", async () => {
    const o = orchestrator()
    const t = trackedFactory('t', { actionConcurrency: { work: 1 } })
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('two_actions', {
      parallel: true,
      steps: [...parallelSteps(4, 't', 'work', { ms: 10 }), ...parallelSteps(4, 't', 'other', { ms: 10 }).map((s, i) => ({ ...s, id: `o${i + 1}` }))],
    })
    const ids = await startMany(o, wf, 2)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))
    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(t.byAction.of('work').max).toBe(1)
    // `other` has no limit: both runs' four calls start together.
    expect(t.byAction.of('other').max).toBe(8)
  })

  it('a factory-level concurrency holds across all its actions and all runs', async () => {
    const o = orchestrator()
    const t = trackedFactory('t', { concurrency: 3 })
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('factory_pool', {
      parallel: true,
      steps: [...parallelSteps(4, 't', 'work'), ...parallelSteps(4, 't', 'other').map((s, i) => ({ ...s, id: `o${i + 1}` }))],
    })

    const ids = await startMany(o, wf, 5)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))

    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(t.global.total).toBe(40)
    // Both actions together, across five runs: exactly the factory's limit.
    expect(t.global.max).toBe(3)
    expect(t.byAction.of('work').total).toBe(20)
    expect(t.byAction.of('other').total).toBe(20)
  })

  it('a factory limit and a tighter action limit apply together; another factory is not affected', async () => {
    const o = orchestrator()
    const limited = trackedFactory('lim', { concurrency: 3, actionConcurrency: { work: 1 } })
    const free = trackedFactory('free')
    o.registerFactory('lim', limited.factory)
    o.registerFactory('free', free.factory)
    const wf = await o.createWorkflow('two_factories', {
      parallel: true,
      steps: [
        ...parallelSteps(4, 'lim', 'work').map((s, i) => ({ ...s, id: `w${i + 1}` })),
        ...parallelSteps(4, 'lim', 'other').map((s, i) => ({ ...s, id: `o${i + 1}` })),
        ...parallelSteps(4, 'free', 'work').map((s, i) => ({ ...s, id: `f${i + 1}` })),
      ],
    })
    const ids = await startMany(o, wf, 3)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))

    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(limited.byAction.of('work').max).toBe(1)
    expect(limited.global.max).toBe(3)
    expect(free.global.max).toBe(12)
  })
})

describe('nested group maxParallel', () => {
  it('a group with maxParallel 2 runs at most 2 members at once', async () => {
    const o = orchestrator()
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('grouped', {
      steps: [
        { id: 'first', factory: 't', action: 'work' },
        { id: 'fan', parallel: true, maxParallel: 2, steps: parallelSteps(6, 't') },
        { id: 'last', factory: 't', action: 'work' },
      ],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('SUCCEEDED')
    expect(t.byGroup.of('fan').total).toBe(6)
    expect(t.byGroup.of('fan').max).toBe(2)
    expect(r.steps.fan!.status).toBe('SUCCEEDED')
    expect(Object.keys(r.steps.fan!.output as object).sort()).toEqual(['s1', 's2', 's3', 's4', 's5', 's6'])
    // Sequential around the group: first before any member, last after all of them.
    const order = t.calls.map((c) => c.stepId)
    expect(order[0]).toBe('first')
    expect(order[order.length - 1]).toBe('last')
  })

  it('the group limit bounds only its members, and holds in every concurrent run', async () => {
    const o = orchestrator()
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('side_by_side', {
      parallel: true,
      steps: [
        { id: 'g', parallel: true, maxParallel: 1, steps: parallelSteps(3, 't', 'work', { ms: 10 }) },
        ...parallelSteps(3, 't', 'work', { ms: 10 }).map((s, i) => ({ ...s, id: `top${i + 1}` })),
      ],
    })
    const ids = await startMany(o, wf, 3)
    const results = await Promise.all(ids.map((id) => o.waitForRun(id)))
    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    // The group pool is per run: one member per run at a time, three runs side by side.
    expect(t.byGroup.of('g').max).toBe(3)
    for (const id of ids) {
      const members = t.calls.filter((c) => c.runId === id && c.stepId.startsWith('g.'))
      expect(members).toHaveLength(3)
      // Per run: 1 group member + 3 top-level steps at once.
      expect(t.byRun.of(id).max).toBe(4)
    }
  })

  it('nested groups: every enclosing maxParallel applies', async () => {
    const o = orchestrator()
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const inner = (id: string) => ({
      id, parallel: true, maxParallel: 2,
      steps: parallelSteps(4, 't', 'work', { ms: 10 }),
    })
    const wf = await o.createWorkflow('nested', {
      steps: [{ id: 'outer', parallel: true, maxParallel: 3, steps: [inner('a'), inner('b')] }],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('SUCCEEDED')
    expect(t.byGroup.of('outer.a').max).toBe(2)
    expect(t.byGroup.of('outer.b').max).toBe(2)
    expect(t.byGroup.of('outer').max).toBe(3)
    expect(t.byGroup.of('outer').total).toBe(8)
  })

  it('a group maxParallel combines with the run maxParallel (the tighter wins)', async () => {
    const o = orchestrator()
    const t = trackedFactory('t')
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('tighter', {
      maxParallel: 2,
      steps: [{ id: 'g', parallel: true, maxParallel: 5, steps: parallelSteps(6, 't') }],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('SUCCEEDED')
    expect(t.byGroup.of('g').max).toBe(2)
  })
})

describe('a run waiting for a slot', () => {
  it('keeps its step READY (not RUNNING) until a slot frees', async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 1 } })
    const release = deferred()
    const entered = deferred()
    const gate = defineFactory({
      name: 'g',
      actions: {
        hold: {
          run: async () => {
            entered.resolve()
            await release.promise
            return 1
          },
        },
      },
    })
    const t = trackedFactory('t')
    o.registerFactory('g', gate)
    o.registerFactory('t', t.factory)
    const holder = await o.createWorkflow('holder', { steps: [{ factory: 'g', action: 'hold' }] })
    const waiting = await o.createWorkflow('waiting', { steps: [{ id: 'x', factory: 't', action: 'work' }] })
    const { runId: a } = await o.startWorkflow(holder)
    await entered.promise
    const { runId: b } = await o.startWorkflow(waiting)
    await until(() => o.context.conn.sqlite.prepare("select status from steps where run_id = ? and step_id = 'x'").pluck().get(b) === 'READY', 'x READY')
    const history = await o.getHistory(b)
    expect(history.map((e) => e.type)).toContain('STEP_READY')
    expect(history.map((e) => e.type)).not.toContain('STEP_STARTED')
    release.resolve()
    expect((await o.waitForRun(a)).status).toBe('SUCCEEDED')
    const done = await o.waitForRun(b)
    expect(done.status).toBe('SUCCEEDED')
    const types = (await o.getHistory(b)).filter((e) => e.stepId === 'x').map((e) => e.type)
    expect(types).toEqual(['STEP_READY', 'STEP_STARTED', 'STEP_SUCCEEDED'])
  })
})

describe('pool bookkeeping', () => {
  it("a run's own pools (maxParallel, group maxParallel) are forgotten once it finishes or is cancelled", async () => {
    const o = orchestrator({ coordinator: { maxWorkers: 4 } })
    const t = trackedFactory('t', { concurrency: 3, actionConcurrency: { work: 2 } })
    o.registerFactory('t', t.factory)
    const wf = await o.createWorkflow('pooled_groups', {
      maxParallel: 3,
      steps: [{ id: 'g', parallel: true, maxParallel: 2, steps: [{ id: 'inner', parallel: true, maxParallel: 1, steps: parallelSteps(3, 't') }, ...parallelSteps(2, 't')] }],
    })
    const ids = await startMany(o, wf, 3)
    // While running, each run has its own run and group pools.
    const during = o.coordinator.pools.list().map((p) => p.name)
    for (const id of ids) expect(during).toEqual(expect.arrayContaining([`run:${id}`, `group:${id}:g`, `group:${id}:g.inner`]))
    await o.cancelRun(ids[0]!)
    await Promise.all(ids.slice(1).map((id) => o.waitForRun(id)))
    const left = o.coordinator.pools.list()
    // Only the long-lived pools remain: the global one, the factory's and the action's.
    expect(left.map((p) => p.name).sort()).toEqual(['action:t.work', 'factory:t', 'workers'])
    expect(left.every((p) => p.inUse === 0 && p.queued === 0)).toBe(true)
  })

  it('registering a factory again with another concurrency applies the new limit', async () => {
    const o = orchestrator()
    const first = trackedFactory('t', { concurrency: 1 })
    o.registerFactory('t', first.factory)
    const wf = await o.createWorkflow('rereg', { parallel: true, steps: parallelSteps(6, 't') })
    expect((await o.executeWorkflow(wf)).status).toBe('SUCCEEDED')
    expect(first.global.max).toBe(1)

    const second = trackedFactory('t', { concurrency: 3 })
    o.registerFactory('t', second.factory)
    expect((await o.executeWorkflow(wf)).status).toBe('SUCCEEDED')
    expect(second.global.max).toBe(3)

    const third = trackedFactory('t', { concurrency: 2 })
    o.registerFactory('t', third.factory)
    expect((await o.executeWorkflow(wf)).status).toBe('SUCCEEDED')
    expect(third.global.max).toBe(2)
  })
})
