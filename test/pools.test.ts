// Resource pools (DESIGN.md §3 "Scheduler"): named pools from the config (`gpu: { concurrency: 2 }`,
// `api: { ratePerSecond: 20 }`) that actions and steps name, factory- and action-level
// `ratePerSecond`, validation of pool names, and Query.pools. Concurrency is proved by counting in
// flight from inside the actions; rates by counting starts against a fake clock (never wall time).
import { describe, expect, it, vi } from 'vitest'
import { z } from 'zod'
import {
  ProjectOrchestrator, ValidationError, defineFactory, type ActionContext, type OrchestratorConfig, type StepDefinition,
} from '../src/index.ts'
import { Pool, PoolSet, type Waiter } from '../src/engine/pools.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { latch, until } from './support/barrier.ts'
import { PoolsDocument } from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

const POOLS = { gpu: { concurrency: 2 }, api: { ratePerSecond: 20 }, single: { concurrency: 1 } }
let server: TestServer | undefined

const opened = openedPerTest({
  before: () => vi.useRealTimers(),
  after: async () => {
    await server?.close()
    server = undefined
  },
})

function orchestrator(config: OrchestratorConfig = {}): ProjectOrchestrator {
  const o = opened.orchestrator({ pools: POOLS, ...config })
  return o
}

class Gauge {
  current = 0
  max = 0
  total = 0
  enter(): void {
    this.current++
    this.total++
    this.max = Math.max(this.max, this.current)
  }
  exit(): void {
    this.current--
  }
}

/**
 * `gpu.render` declares `pool: 'gpu'`; `gpu.plain` declares no pool; `gpu.tpu` names a pool that is
 * not configured. Each call is counted in `all` and in its action's gauge, and waits on `gate` (when
 * given) or a few ms.
 */
function gpuFactory(gate?: { wait(): Promise<void> }) {
  const all = new Gauge()
  const render = new Gauge()
  const plain = new Gauge()
  const body = (g: Gauge) => async (_: unknown, ctx: ActionContext) => {
    all.enter()
    g.enter()
    try {
      if (gate) await gate.wait()
      else await new Promise((r) => setTimeout(r, 3))
      return { step: ctx.stepId }
    } finally {
      all.exit()
      g.exit()
    }
  }
  const input = z.object({ item: z.unknown().optional() })
  const factory = defineFactory({
    name: 'gpu',
    actions: {
      render: { input, pool: 'gpu', run: body(render) },
      plain: { input, run: body(plain) },
      tpu: { input, pool: 'tpu', run: body(new Gauge()) },
    },
  })
  return { factory, all, render, plain }
}

function steps(n: number, action: string, extra: Partial<StepDefinition> = {}): StepDefinition[] {
  return Array.from({ length: n }, (_, i) => ({ id: `s${i + 1}`, factory: 'gpu', action, params: {}, ...extra }))
}

function poolsOf(o: ProjectOrchestrator) {
  return Object.fromEntries(o.coordinator.listPools().map((p) => [p.name, p]))
}

describe('named concurrency pools', () => {
  it("an action declaring pool 'gpu' never has 3 in flight across 10 concurrent runs, and reaches 2", async () => {
    const o = orchestrator()
    const g = gpuFactory()
    o.registerFactory('gpu', g.factory)
    const wf = await o.createWorkflow('render_many', { parallel: true, steps: steps(3, 'render') })
    const started = await Promise.all(Array.from({ length: 10 }, () => o.startWorkflow(wf)))
    const results = await Promise.all(started.map((s) => o.waitForRun(s.runId)))
    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(g.render.total).toBe(30)
    expect(g.render.max).toBe(2)
    // The pool is empty again once everything finished.
    expect(poolsOf(o)['pool:gpu']).toMatchObject({ concurrency: 2, inUse: 0, waiting: 0 })
  })

  it("a step-level pool adds to the action's: both limits hold, and the step holds a slot of each", async () => {
    const o = orchestrator()
    const g = gpuFactory()
    o.registerFactory('gpu', g.factory)
    // render (pool gpu: 2) + step pool single (1): the stricter one wins across runs.
    const narrowed = await o.createWorkflow('narrowed', { parallel: true, steps: steps(4, 'render', { pool: 'single' }) })
    // plain (no pool of its own) + step pool gpu: limited to 2.
    const pooled = await o.createWorkflow('pooled', { parallel: true, steps: steps(4, 'plain', { pool: 'gpu' }) })
    const a = await Promise.all(Array.from({ length: 3 }, () => o.startWorkflow(narrowed)))
    await Promise.all(a.map((s) => o.waitForRun(s.runId)))
    expect(g.render.total).toBe(12)
    expect(g.render.max).toBe(1)
    const b = await Promise.all(Array.from({ length: 3 }, () => o.startWorkflow(pooled)))
    const results = await Promise.all(b.map((s) => o.waitForRun(s.runId)))
    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(g.plain.total).toBe(12)
    expect(g.plain.max).toBe(2)

    // While one gated step of render with step pool single runs, it holds a slot of both pools.
    const gate = latch()
    const o2 = orchestrator()
    const gated = gpuFactory(gate)
    o2.registerFactory('gpu', gated.factory)
    const wf = await o2.createWorkflow('one', { steps: steps(1, 'render', { pool: 'single' }) })
    const { runId } = await o2.startWorkflow(wf)
    await until(() => gated.all.current === 1)
    expect(poolsOf(o2)['pool:gpu']).toMatchObject({ inUse: 1 })
    expect(poolsOf(o2)['pool:single']).toMatchObject({ inUse: 1 })
    gate.open()
    expect((await o2.waitForRun(runId)).status).toBe('SUCCEEDED')
    expect(poolsOf(o2)['pool:gpu']).toMatchObject({ inUse: 0 })
    expect(poolsOf(o2)['pool:single']).toMatchObject({ inUse: 0 })
  })

  it("a forEach step's pool applies to each of its items", async () => {
    const o = orchestrator()
    const g = gpuFactory()
    o.registerFactory('gpu', g.factory)
    const wf = await o.createWorkflow('each_pooled', {
      steps: [{ id: 'each', factory: 'gpu', action: 'plain', pool: 'gpu', forEach: Array.from({ length: 8 }, (_, i) => i), params: { item: '{{ item }}' } }],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(g.plain.total).toBe(8)
    expect(g.plain.max).toBe(2)
  })

  it('an unknown pool in a step is a ValidationError with a did-you-mean; one in an action fails its step', async () => {
    const o = orchestrator()
    const g = gpuFactory()
    o.registerFactory('gpu', g.factory)
    const error = await o
      .createWorkflow('bad_pool', { steps: [{ factory: 'gpu', action: 'plain', params: {}, pool: ['single', 'gpux'] }] })
      .then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toEqual([
      { path: 'steps[0].pool', message: 'pool "gpux" is not configured (did you mean "gpu"?)' },
    ])
    expect(o.catalog.workflows({ limit: 10 })).toHaveLength(0)

    // An action's own pool is the factory author's: not checked against the config until it runs.
    const wf = await o.createWorkflow('tpu', { steps: steps(1, 'tpu') })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('FAILED')
    expect(result.steps.s1).toMatchObject({ status: 'FAILED', attempts: 0 })
    expect(result.steps.s1!.error).toContain('pool "tpu" is not configured')
  })
})

describe('rate pools (token bucket) against a fake clock', () => {
  it('Pool: starts full (one second of tokens), refills at the rate, caps at one second, and reports when the next token is due', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(1_000_000)
    const p = new Pool('x', Infinity, 2)
    expect(p.free).toBe(true)
    p.take()
    p.take()
    expect(p.free).toBe(false)
    expect(p.msUntilToken).toBe(500)
    vi.setSystemTime(1_000_499)
    expect(p.free).toBe(false)
    // 0.998 tokens: the next is due in about a millisecond (floating point may round it up to 2).
    expect(p.msUntilToken).toBeGreaterThanOrEqual(1)
    expect(p.msUntilToken).toBeLessThanOrEqual(2)
    vi.setSystemTime(1_000_500)
    expect(p.free).toBe(true)
    p.take()
    expect(p.free).toBe(false)
    // A long idle spell refills only up to the capacity (2 tokens), not 10 seconds' worth. (As in
    // PoolSet.acquire, `free` is asked before each `take`: it is what refills the bucket.)
    vi.setSystemTime(1_010_500)
    expect(p.free).toBe(true)
    p.take()
    expect(p.free).toBe(true)
    p.take()
    expect(p.free).toBe(false)
    expect(p.inUse).toBe(5)

    // Concurrency and rate together: a full pool is blocked by its slots, whatever the tokens.
    const both = new Pool('y', 1, 10)
    both.take()
    expect(both.free).toBe(false)
    expect(both.msUntilToken).toBe(0)
    both.inUse--
    expect(both.free).toBe(true)
  })

  it('PoolSet: waiters blocked by a rate start when their tokens are due, in order, without a release', () => {
    vi.useFakeTimers()
    vi.setSystemTime(0)
    const set = new PoolSet()
    const pool = set.pool('rate', Infinity, 2)
    const starts: [number, number][] = []
    const waiters: Waiter[] = Array.from({ length: 6 }, (_, i) => ({ pools: [pool], start: () => starts.push([i, Date.now()]) }))
    for (const w of waiters) set.acquire(w)
    expect(starts).toEqual([[0, 0], [1, 0]])
    expect(pool.queued).toBe(4)
    vi.advanceTimersByTime(499)
    expect(starts).toHaveLength(2)
    vi.advanceTimersByTime(1)
    expect(starts).toEqual([[0, 0], [1, 0], [2, 500]])
    // A cancelled waiter is dropped when reached and gives its token to the next.
    waiters[3]!.cancelled = true
    vi.advanceTimersByTime(500)
    expect(starts.at(-1)).toEqual([4, 1000])
    vi.advanceTimersByTime(500)
    expect(starts).toEqual([[0, 0], [1, 0], [2, 500], [4, 1000], [5, 1500]])
    expect(pool.queued).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it("the named pool 'api' (20/s): 30 parallel calls start 20 at once, then one per 50 ms of clock", async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const t0 = Date.now()
    const o = orchestrator()
    const starts: number[] = []
    o.registerFactory('net', defineFactory({
      name: 'net',
      actions: { call: { input: z.object({}), pool: 'api', run: () => (starts.push(Date.now()), { ok: true }) } },
    }))
    const wf = await o.createWorkflow('calls', {
      parallel: true,
      steps: Array.from({ length: 30 }, (_, i) => ({ id: `c${i}`, factory: 'net', action: 'call', params: {} })),
    })
    const { runId } = await o.startWorkflow(wf)
    await until(() => starts.length === 20 && poolsOf(o)['pool:api']!.waiting === 10)
    expect(poolsOf(o)['pool:api']).toMatchObject({ concurrency: null, ratePerSecond: 20, waiting: 10 })
    // The clock stands still: however long the engine waits for a token, none comes.
    await pause()
    expect(starts).toHaveLength(20)
    vi.setSystemTime(t0 + 50)
    await until(() => starts.length === 21)
    await pause()
    expect(starts).toHaveLength(21)
    vi.setSystemTime(t0 + 149)
    await until(() => starts.length === 22)
    await pause()
    expect(starts).toHaveLength(22)
    // A whole second later the remaining 8 are due at once (the bucket holds up to 20).
    vi.setSystemTime(t0 + 1149)
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(starts).toHaveLength(30)
    expect(starts.filter((t) => t === t0)).toHaveLength(20)
    expect(starts.filter((t) => t === t0 + 50)).toHaveLength(1)
    expect(starts.filter((t) => t === t0 + 149)).toHaveLength(1)
    expect(starts.filter((t) => t === t0 + 1149)).toHaveLength(8)
  })

  it('factory-level and action-level ratePerSecond both hold, across runs, and are listed as pools', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const t0 = Date.now()
    const o = orchestrator()
    const starts: { action: string; at: number }[] = []
    const record = (action: string) => () => (starts.push({ action, at: Date.now() }), { ok: true })
    o.registerFactory('ext', defineFactory({
      name: 'ext',
      ratePerSecond: 10,
      actions: {
        any: { input: z.object({}), run: record('any') },
        slow: { input: z.object({}), ratePerSecond: 5, run: record('slow') },
      },
    }))
    const wf = await o.createWorkflow('limited', {
      parallel: true,
      steps: [
        ...Array.from({ length: 4 }, (_, i) => ({ id: `slow${i}`, factory: 'ext', action: 'slow', params: {} })),
        ...Array.from({ length: 4 }, (_, i) => ({ id: `any${i}`, factory: 'ext', action: 'any', params: {} })),
      ],
    })
    const runs = await Promise.all([o.startWorkflow(wf), o.startWorkflow(wf)])
    const count = (action?: string) => starts.filter((s) => !action || s.action === action).length
    // 16 calls: the factory's 10 tokens go first, and of those at most 5 to `slow` (its own bucket).
    await until(() => count() === 10)
    await pause()
    expect(count()).toBe(10)
    expect(count('slow')).toBe(5)
    expect(count('any')).toBe(5)
    const pools = poolsOf(o)
    expect(pools['factory:ext']).toMatchObject({ ratePerSecond: 10, concurrency: null })
    expect(pools['action:ext.slow']).toMatchObject({ ratePerSecond: 5, concurrency: null })
    expect(pools['factory:ext']!.waiting + pools['action:ext.slow']!.waiting).toBe(6)
    // 100 ms of clock: one factory token, half a `slow` token, so only an `any` call starts.
    vi.setSystemTime(t0 + 100)
    await until(() => count() === 11)
    await pause()
    expect(count()).toBe(11)
    expect(count('slow')).toBe(5)
    // Two seconds on, both buckets have refilled: the rest start at that instant.
    vi.setSystemTime(t0 + 2100)
    const results = await Promise.all(runs.map((r) => o.waitForRun(r.runId)))
    expect(results.every((r) => r.status === 'SUCCEEDED')).toBe(true)
    expect(count('slow')).toBe(8)
    expect(count('any')).toBe(8)
    expect(starts.map((s) => s.at - t0).sort((x, y) => x - y)).toEqual([...Array(10).fill(0), 100, ...Array(5).fill(2100)])
  })
})

describe('Query.pools', () => {
  it('lists workers, pool:gpu and pool:api with inUse and waiting, live while a gated run holds the gpu pool', async () => {
    const gate = latch()
    const g = gpuFactory(gate)
    server = await startTestServer({ pools: { gpu: { concurrency: 2 }, api: { ratePerSecond: 20 } }, factories: { gpu: g.factory } })
    const idle = (await server.request(PoolsDocument)).data!.pools
    const byName = (list: typeof idle) => Object.fromEntries(list.map((p) => [p.name, p]))
    expect(byName(idle)).toMatchObject({
      workers: { concurrency: null, ratePerSecond: null, inUse: 0, waiting: 0 },
      'pool:gpu': { concurrency: 2, ratePerSecond: null, inUse: 0, waiting: 0 },
      'pool:api': { concurrency: null, ratePerSecond: 20, inUse: 0, waiting: 0 },
    })

    const o = server.orchestrator
    const wf = await o.createWorkflow('gated', { parallel: true, steps: steps(3, 'render') })
    const { runId } = await o.startWorkflow(wf)
    await until(() => g.render.current === 2)
    const busy = byName((await server.request(PoolsDocument)).data!.pools)
    expect(busy['pool:gpu']).toMatchObject({ concurrency: 2, inUse: 2, waiting: 1 })
    // The queued step took no slot anywhere: all-or-nothing.
    expect(busy.workers).toMatchObject({ inUse: 2, waiting: 0 })
    expect(busy['pool:api']).toMatchObject({ inUse: 0, waiting: 0 })
    // Per-run pools are not listed.
    expect(Object.keys(busy).some((n) => n.startsWith('run:') || n.startsWith('group:'))).toBe(false)

    gate.open()
    expect((await o.waitForRun(runId)).status).toBe('SUCCEEDED')
    expect(g.render.max).toBe(2)
    const after = byName((await server.request(PoolsDocument)).data!.pools)
    expect(after['pool:gpu']).toMatchObject({ inUse: 0, waiting: 0 })
    expect(after.workers).toMatchObject({ inUse: 0, waiting: 0 })
  })
})

/** Lets real timers and I/O run for a while (the fake clock stands still meanwhile). */
function pause(): Promise<void> {
  return new Promise((r) => setTimeout(r, 120))
}
