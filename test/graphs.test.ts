// Graph shapes beyond the seed's two modes: dependsOn branching and merging, `when` conditions,
// inline nested groups mixing sequential and parallel, failure policies and the run output.
import { describe, expect, it } from 'vitest'
import { type ActionContext, type RunEvent, type WorkflowDefinition } from '../src/index.ts'
import { barrier, latch } from './support/barrier.ts'
import { openedPerTest } from './support/opened.ts'

const opened = openedPerTest()

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms))

/**
 * One factory `t` whose actions log `start <stepId>` / `end <stepId>`. `work` returns its params
 * (after an optional wait on a named barrier or latch); `boom` throws.
 */
function setup() {
  const o = opened.orchestrator()
  const log: string[] = []
  const calls: { stepId: string; params: Record<string, unknown>; steps: Record<string, unknown>; previous: unknown }[] = []
  const waits = new Map<string, () => Promise<void>>()
  o.registerFactory('t', {
    async work(params: Record<string, unknown>, ctx: ActionContext) {
      log.push(`start ${ctx.stepId}`)
      calls.push({ stepId: ctx.stepId, params, steps: { ...ctx.steps }, previous: ctx.previous })
      const wait = waits.get(ctx.stepId)
      if (wait) await wait()
      else await tick(2)
      log.push(`end ${ctx.stepId}`)
      return { step: ctx.stepId, ...params }
    },
    async boom(params: { message?: string }, ctx: ActionContext) {
      log.push(`start ${ctx.stepId}`)
      const wait = waits.get(ctx.stepId)
      if (wait) await wait()
      log.push(`fail ${ctx.stepId}`)
      throw new Error(params.message ?? `${ctx.stepId} exploded`)
    },
  })
  const run = async (definition: WorkflowDefinition, input?: unknown) => {
    const id = await o.createWorkflow(`w${opened.count()}_${Math.random().toString(36).slice(2, 8)}`, definition)
    const result = await o.executeWorkflow(id, input)
    const history = await o.getHistory(result.runId)
    return { result, history }
  }
  return { o, log, calls, waits, run }
}

const seqOf = (history: RunEvent[], type: string, stepId: string) => {
  const e = history.find((x) => x.type === type && x.stepId === stepId)
  if (!e) throw new Error(`no ${type} for ${stepId}`)
  return e.seq
}
const stepEvents = (history: RunEvent[], stepId: string) => history.filter((e) => e.stepId === stepId).map((e) => e.type)

describe('dependsOn: branching and merging', () => {
  it('runs a diamond a → (b, c) → d: b and c overlap, d sees both outputs', async () => {
    const { log, calls, waits, run } = setup()
    const middle = barrier(2, 'b and c')
    waits.set('b', () => middle.arrive())
    waits.set('c', () => middle.arrive())
    const { result, history } = await run({
      steps: [
        { id: 'a', factory: 't', action: 'work', params: { n: 1 } },
        { id: 'b', factory: 't', action: 'work', params: { n: '{{ steps.a.output.n + 1 }}' }, dependsOn: ['a'] },
        { id: 'c', factory: 't', action: 'work', params: { n: '{{ steps.a.output.n + 2 }}' }, dependsOn: ['a'] },
        {
          id: 'd', factory: 't', action: 'work', dependsOn: ['b', 'c'],
          params: { sum: '{{ steps.b.output.n + steps.c.output.n }}', both: ['{{ steps.b.output }}', '{{ steps.c.output }}'] },
        },
      ],
    })
    expect(result.status).toBe('SUCCEEDED')
    expect(middle.arrived).toBe(2)
    // a first, d last; b and c both started before either ended.
    expect(log[0]).toBe('start a')
    expect(log[1]).toBe('end a')
    expect(log.slice(2, 4).sort()).toEqual(['start b', 'start c'])
    expect(log.slice(4, 6).sort()).toEqual(['end b', 'end c'])
    expect(log.slice(6)).toEqual(['start d', 'end d'])

    const d = calls.find((c) => c.stepId === 'd')!
    expect(d.params).toEqual({ sum: 5, both: [{ step: 'b', n: 2 }, { step: 'c', n: 3 }] })
    expect(d.steps).toEqual({ a: { step: 'a', n: 1 }, b: { step: 'b', n: 2 }, c: { step: 'c', n: 3 } })
    // Two dependencies: no single previous.
    expect(d.previous).toBeUndefined()
    expect(calls.find((c) => c.stepId === 'b')!.previous).toEqual({ step: 'a', n: 1 })

    // The log proves the order too.
    expect(seqOf(history, 'STEP_SUCCEEDED', 'a')).toBeLessThan(seqOf(history, 'STEP_STARTED', 'b'))
    expect(seqOf(history, 'STEP_SUCCEEDED', 'a')).toBeLessThan(seqOf(history, 'STEP_STARTED', 'c'))
    expect(seqOf(history, 'STEP_STARTED', 'c')).toBeLessThan(seqOf(history, 'STEP_SUCCEEDED', 'b'))
    expect(seqOf(history, 'STEP_STARTED', 'b')).toBeLessThan(seqOf(history, 'STEP_SUCCEEDED', 'c'))
    expect(seqOf(history, 'STEP_SUCCEEDED', 'b')).toBeLessThan(seqOf(history, 'STEP_READY', 'd'))
    expect(seqOf(history, 'STEP_SUCCEEDED', 'c')).toBeLessThan(seqOf(history, 'STEP_READY', 'd'))
    // Only d is a leaf.
    expect(result.output).toEqual({ d: { step: 'd', sum: 5, both: [{ step: 'b', n: 2 }, { step: 'c', n: 3 }] } })
  })

  it('dependsOn wins over sequential order in a sequential workflow', async () => {
    const { log, waits, run } = setup()
    // In a sequential workflow `late` would wait for `early`; its dependsOn says it needs only `root`.
    const both = barrier(2, 'early and late')
    waits.set('early', () => both.arrive())
    waits.set('late', () => both.arrive())
    const { result } = await run({
      parallel: false,
      steps: [
        { id: 'root', factory: 't', action: 'work', params: {} },
        { id: 'early', factory: 't', action: 'work', params: {} },
        { id: 'late', factory: 't', action: 'work', params: {}, dependsOn: ['root'] },
        { id: 'tail', factory: 't', action: 'work', params: {} },
      ],
    })
    expect(result.status).toBe('SUCCEEDED')
    expect(both.arrived).toBe(2)
    // `tail` follows the step before it (`late`) only.
    expect(log.indexOf('start tail')).toBeGreaterThan(log.indexOf('end late'))
    // Leaves: `early` (nothing depends on it) and `tail`.
    expect(Object.keys(result.output as object).sort()).toEqual(['early', 'tail'])
  })
})

describe('when conditions', () => {
  it('skips a step whose condition is false; its dependents still run and can test its status', async () => {
    const { log, calls, run } = setup()
    const { result, history } = await run(
      {
        parallel: true,
        input: { mode: { type: 'string', default: 'light' } },
        steps: [
          { id: 'probe', factory: 't', action: 'work', params: { level: 2 } },
          { id: 'deep', factory: 't', action: 'work', params: {}, dependsOn: ['probe'], when: "{{ input.mode = 'deep' }}" },
          { id: 'never', factory: 't', action: 'work', params: {}, when: false },
          { id: 'bare', factory: 't', action: 'work', params: {}, dependsOn: ['probe'], when: 'steps.probe.output.level > 1' },
          {
            id: 'fallback', factory: 't', action: 'work', dependsOn: ['deep'],
            when: "steps.deep.status = 'SKIPPED'",
            params: { deepStatus: '{{ steps.deep.status }}', deepOutput: '{{ steps.deep.output }}' },
          },
          { id: 'report', factory: 't', action: 'work', dependsOn: ['deep', 'never', 'fallback'], params: { never: '{{ steps.never.status }}' } },
          { id: 'notSkipped', factory: 't', action: 'work', dependsOn: ['fallback'], when: "steps.deep.status != 'SKIPPED'", params: {} },
        ],
      },
      {},
    )
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.deep!.status).toBe('SKIPPED')
    expect(result.steps.never!.status).toBe('SKIPPED')
    expect(result.steps.notSkipped!.status).toBe('SKIPPED')
    expect(result.steps.bare!.status).toBe('SUCCEEDED')
    expect(result.steps.fallback).toEqual({
      status: 'SUCCEEDED', output: { step: 'fallback', deepStatus: 'SKIPPED', deepOutput: null }, attempts: 1,
    })
    expect(result.steps.report!.output).toEqual({ step: 'report', never: 'SKIPPED' })
    // A skipped step never reaches its action.
    expect(calls.map((c) => c.stepId).sort()).toEqual(['bare', 'fallback', 'probe', 'report'])
    expect(log).not.toContain('start deep')
    expect(stepEvents(history, 'deep')).toEqual(['STEP_SKIPPED'])
    const skipped = history.find((e) => e.type === 'STEP_SKIPPED' && e.stepId === 'deep')!
    expect(skipped.payload).toMatchObject({ reason: 'when is false' })
  })

  it('the same workflow takes the other branch for other input', async () => {
    const { run } = setup()
    const def: WorkflowDefinition = {
      input: { mode: { type: 'string', default: 'light' } },
      parallel: true,
      steps: [
        { id: 'deep', factory: 't', action: 'work', params: {}, when: "{{ input.mode = 'deep' }}" },
        { id: 'fallback', factory: 't', action: 'work', params: {}, dependsOn: ['deep'], when: "steps.deep.status = 'SKIPPED'" },
      ],
    }
    const light = await run(def)
    expect([light.result.steps.deep!.status, light.result.steps.fallback!.status]).toEqual(['SKIPPED', 'SUCCEEDED'])
    const deep = await run(def, { mode: 'deep' })
    expect([deep.result.steps.deep!.status, deep.result.steps.fallback!.status]).toEqual(['SUCCEEDED', 'SKIPPED'])
  })

  it('a skipped group skips its members and the run still finishes', async () => {
    const { calls, run } = setup()
    const { result } = await run({
      steps: [
        { id: 'first', factory: 't', action: 'work', params: {} },
        {
          id: 'optional', when: '{{ input.publish = true }}', parallel: true,
          steps: [
            { id: 'upload', factory: 't', action: 'work', params: {} },
            { id: 'nested', steps: [{ id: 'inner', factory: 't', action: 'work', params: {} }] },
          ],
        },
        { id: 'last', factory: 't', action: 'work', params: { optional: '{{ steps.optional.status }}' } },
      ],
    }, { publish: false })
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.optional!.status).toBe('SKIPPED')
    expect(result.steps['optional.upload']!.status).toBe('SKIPPED')
    expect(result.steps['optional.nested']!.status).toBe('SKIPPED')
    expect(result.steps['optional.nested.inner']!.status).toBe('SKIPPED')
    expect(result.steps.last!.output).toEqual({ step: 'last', optional: 'SKIPPED' })
    expect(calls.map((c) => c.stepId)).toEqual(['first', 'last'])
  })

  it('a condition that cannot be evaluated fails its step instead of hanging the run', async () => {
    const { calls, run } = setup()
    const { result } = await run({
      steps: [
        { id: 'a', factory: 't', action: 'work', params: {} },
        { id: 'b', factory: 't', action: 'work', params: {}, when: '$number("not a number") > 1' },
        { id: 'c', factory: 't', action: 'work', params: {} },
      ],
    })
    expect(result.status).toBe('FAILED')
    expect(result.steps.b!.status).toBe('FAILED')
    expect(result.steps.b!.error).toMatch(/^when: /)
    expect(result.steps.c!.status).toBe('CANCELLED')
    expect(calls.map((c) => c.stepId)).toEqual(['a'])
  })

  it('params that cannot be evaluated fail their step (not the process)', async () => {
    const { calls, run } = setup()
    const { result, history } = await run({
      onFailure: 'continue',
      parallel: true,
      steps: [
        { id: 'a', factory: 't', action: 'work', params: { v: 'x' } },
        { id: 'b', factory: 't', action: 'work', params: { n: '{{ $number(steps.a.output.v) }}' }, dependsOn: ['a'] },
        { id: 'c', factory: 't', action: 'work', params: {}, dependsOn: ['b'] },
        { id: 'd', factory: 't', action: 'work', params: {}, dependsOn: ['a'] },
      ],
    })
    expect(result.status).toBe('FAILED')
    expect(result.steps.b).toMatchObject({ status: 'FAILED', attempts: 0 })
    expect(result.steps.b!.error).toMatch(/^params: expression/)
    expect(result.steps.c!.status).toBe('SKIPPED')
    expect(result.steps.d!.status).toBe('SUCCEEDED')
    expect(calls.map((c) => c.stepId).sort()).toEqual(['a', 'd'])
    expect(stepEvents(history, 'b')).toEqual(['STEP_FAILED'])
  })
})

describe('nested groups: mixed sequential and parallel', () => {
  it('runs a parallel group inside a sequential workflow, in order, with dotted ids', async () => {
    const { log, calls, waits, run } = setup()
    const fanOut = barrier(3, 'publish members')
    waits.set('publish.upload', () => fanOut.arrive())
    waits.set('publish.notify', () => fanOut.arrive())
    waits.set('publish.archive.compress', () => fanOut.arrive())
    const { result, history } = await run({
      parallel: false,
      steps: [
        { id: 'render', factory: 't', action: 'work', params: { file: 'video.mp4' } },
        {
          id: 'publish',
          parallel: true,
          steps: [
            { id: 'upload', factory: 't', action: 'work', params: { file: '{{ steps.render.output.file }}' } },
            { id: 'notify', factory: 't', action: 'work', params: { channel: 'ops' } },
            {
              id: 'archive', // a sequential group inside the parallel one
              steps: [
                { id: 'compress', factory: 't', action: 'work', params: {} },
                { id: 'store', factory: 't', action: 'work', params: { prev: '{{ previous.step }}' } },
              ],
            },
          ],
        },
        { id: 'done', factory: 't', action: 'work', params: { uploaded: '{{ steps.`publish.upload`.output.file }}' } },
      ],
    })
    expect(result.status).toBe('SUCCEEDED')
    expect(fanOut.arrived).toBe(3)
    expect(Object.keys(result.steps).sort()).toEqual([
      'done', 'publish', 'publish.archive', 'publish.archive.compress', 'publish.archive.store', 'publish.notify',
      'publish.upload', 'render',
    ])

    const at = (entry: string) => {
      const i = log.indexOf(entry)
      expect(i, entry).toBeGreaterThanOrEqual(0)
      return i
    }
    // render before every member of publish; every member before done.
    for (const m of ['publish.upload', 'publish.notify', 'publish.archive.compress', 'publish.archive.store']) {
      expect(at('end render')).toBeLessThan(at(`start ${m}`))
      expect(at(`end ${m}`)).toBeLessThan(at('start done'))
    }
    // The three parallel members all started before any of them ended.
    const lastStart = Math.max(at('start publish.upload'), at('start publish.notify'), at('start publish.archive.compress'))
    const firstEnd = Math.min(at('end publish.upload'), at('end publish.notify'), at('end publish.archive.compress'))
    expect(lastStart).toBeLessThan(firstEnd)
    // Inside the sequential sub-group: compress then store.
    expect(at('end publish.archive.compress')).toBeLessThan(at('start publish.archive.store'))

    expect(calls.find((c) => c.stepId === 'publish.upload')!.params).toEqual({ file: 'video.mp4' })
    expect(calls.find((c) => c.stepId === 'publish.archive.store')!.params).toEqual({ prev: 'publish.archive.compress' })
    expect(calls.find((c) => c.stepId === 'done')!.params).toEqual({ uploaded: 'video.mp4' })

    // A group's output maps its members' local ids to their outputs; the step after it sees it as previous.
    const publishOutput = {
      upload: { step: 'publish.upload', file: 'video.mp4' },
      notify: { step: 'publish.notify', channel: 'ops' },
      archive: {
        compress: { step: 'publish.archive.compress' },
        store: { step: 'publish.archive.store', prev: 'publish.archive.compress' },
      },
    }
    expect(result.steps.publish!.output).toEqual(publishOutput)
    expect(calls.find((c) => c.stepId === 'done')!.previous).toEqual(publishOutput)
    expect(result.output).toEqual({ done: { step: 'done', uploaded: 'video.mp4' } })

    // The group starts after render succeeded and settles after all its members.
    expect(seqOf(history, 'STEP_SUCCEEDED', 'render')).toBeLessThan(seqOf(history, 'STEP_STARTED', 'publish'))
    for (const m of ['publish.upload', 'publish.notify', 'publish.archive']) {
      expect(seqOf(history, 'STEP_SUCCEEDED', m)).toBeLessThan(seqOf(history, 'STEP_SUCCEEDED', 'publish'))
    }
    expect(seqOf(history, 'STEP_SUCCEEDED', 'publish')).toBeLessThan(seqOf(history, 'STEP_STARTED', 'done'))
  })

  it('a sequential group inside a parallel workflow keeps its own order while siblings overlap it', async () => {
    const { log, waits, run } = setup()
    const gate = barrier(2, 'side and chain.one')
    waits.set('side', () => gate.arrive())
    waits.set('chain.one', () => gate.arrive())
    const { result } = await run({
      parallel: true,
      steps: [
        { id: 'side', factory: 't', action: 'work', params: {} },
        {
          id: 'chain',
          steps: [
            { id: 'one', factory: 't', action: 'work', params: {} },
            { id: 'two', factory: 't', action: 'work', params: {} },
            { id: 'three', factory: 't', action: 'work', params: {} },
          ],
        },
      ],
    })
    expect(result.status).toBe('SUCCEEDED')
    expect(gate.arrived).toBe(2)
    const order = log.filter((l) => l.includes('chain.'))
    expect(order).toEqual(['start chain.one', 'end chain.one', 'start chain.two', 'end chain.two', 'start chain.three', 'end chain.three'])
    expect(result.output).toEqual({
      side: { step: 'side' },
      chain: { one: { step: 'chain.one' }, two: { step: 'chain.two' }, three: { step: 'chain.three' } },
    })
  })
})

describe('failure policies', () => {
  it("default 'fail': nothing new is dispatched after the failure, the rest is CANCELLED, the run FAILED", async () => {
    const { o, log, waits, run } = setup()
    // `slow` is running when `bad` fails; it may finish, but `after` (its dependent) must never start.
    const release = latch()
    waits.set('slow', () => release.wait())
    let sawFailure = false
    o.subscribe({ types: ['STEP_FAILED'] }, (e) => {
      if (e.stepId === 'bad') {
        sawFailure = true
        release.open()
      }
    })
    const { result, history } = await run({
      parallel: true,
      steps: [
        { id: 'slow', factory: 't', action: 'work', params: {} },
        { id: 'bad', factory: 't', action: 'boom', params: { message: 'disk on fire' } },
        { id: 'after', factory: 't', action: 'work', params: {}, dependsOn: ['slow'] },
        { id: 'afterBad', factory: 't', action: 'work', params: {}, dependsOn: ['bad'] },
      ],
    })
    expect(sawFailure).toBe(true)
    expect(result.status).toBe('FAILED')
    expect(result.error).toContain('bad')
    expect(result.error).toContain('disk on fire')
    expect(result.steps.bad).toEqual({ status: 'FAILED', output: null, attempts: 1, error: 'disk on fire' })
    // The step already running was allowed to finish...
    expect(result.steps.slow!.status).toBe('SUCCEEDED')
    // ...but nothing started after the failure.
    expect(result.steps.after!.status).toBe('CANCELLED')
    expect(result.steps.afterBad!.status).toBe('CANCELLED')
    expect(log).not.toContain('start after')
    expect(log).not.toContain('start afterBad')
    const failedAt = seqOf(history, 'STEP_FAILED', 'bad')
    expect(history.filter((e) => e.seq > failedAt && (e.type === 'STEP_STARTED' || e.type === 'STEP_READY'))).toEqual([])
    expect(history.at(-1)).toMatchObject({ type: 'RUN_FAILED', status: 'FAILED' })
  })

  it("a running step that hangs after the failure is aborted once failGraceMs is up: its signal fires, it is CANCELLED, the run ends FAILED", async () => {
    const { o, run } = setup()
    let reason: unknown
    o.registerFactory('h', {
      // Never settles by itself and ignores its signal: the worst an action can do.
      hang(_params: unknown, ctx: ActionContext) {
        ctx.signal.addEventListener('abort', () => (reason = ctx.signal.reason))
        return new Promise(() => {})
      },
    })
    const { result, history } = await run({
      parallel: true,
      failGraceMs: 30,
      steps: [
        { id: 'stuck', factory: 'h', action: 'hang', params: {} },
        { id: 'bad', factory: 't', action: 'boom', params: { message: 'no disk' } },
      ],
    })
    expect(result.status).toBe('FAILED')
    expect(result.error).toBe('step bad failed: no disk')
    expect(result.steps.bad!.status).toBe('FAILED')
    expect(result.steps.stuck!.status).toBe('CANCELLED')
    expect(reason).toBeInstanceOf(Error)
    expect((reason as Error).name).toBe('CancelledError')
    expect((reason as Error).message).toMatch(/still running 30 ms after the run failed \(failGraceMs\)/)
    const attempts = o.context.conn.sqlite
      .prepare("select attempt, status, error from step_attempts where run_id = ? and step_id = 'stuck'")
      .all(result.runId) as { attempt: number; status: string; error: string }[]
    expect(attempts).toEqual([{ attempt: 1, status: 'CANCELLED', error: expect.stringMatching(/failGraceMs/) }])
    expect(seqOf(history, 'STEP_CANCELLED', 'stuck')).toBeGreaterThan(seqOf(history, 'STEP_FAILED', 'bad'))
    expect(history.at(-1)).toMatchObject({ type: 'RUN_FAILED', status: 'FAILED' })
  })

  it('failGraceMs: 0 aborts the running steps as soon as one fails', async () => {
    const { o, run } = setup()
    let aborted = false
    o.registerFactory('h', {
      async wait(_params: unknown, ctx: ActionContext) {
        // Ends only on abort (and then late: the engine must not wait for it).
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
        aborted = true
        await tick(50)
        return { late: true }
      },
    })
    const { result } = await run({
      parallel: true,
      failGraceMs: 0,
      steps: [
        { id: 'waiting', factory: 'h', action: 'wait', params: {} },
        { id: 'bad', factory: 't', action: 'boom', params: {} },
      ],
    })
    expect(aborted).toBe(true)
    expect(result.status).toBe('FAILED')
    expect(result.steps.waiting).toMatchObject({ status: 'CANCELLED', output: null })
  })

  it("default 'fail' ends the run when a step fails while another step's params are still being evaluated", async () => {
    const { calls, run } = setup()
    // `bad` fails at once; `b` is still evaluating its {{ }} params (JSONata is asynchronous) at that moment.
    const { result } = await run(
      {
        parallel: true,
        steps: [
          { id: 'bad', factory: 't', action: 'boom', params: {} },
          { id: 'b', factory: 't', action: 'work', params: { q: '{{ input.q }}', r: '{{ $string(input.q) & "!" }}' } },
        ],
      },
      { q: 1 },
    )
    expect(result.status).toBe('FAILED')
    expect(result.steps.bad!.status).toBe('FAILED')
    // Either b was stopped before dispatch or it had already started: it never starts after the failure.
    expect(['CANCELLED', 'SUCCEEDED']).toContain(result.steps.b!.status)
    if (result.steps.b!.status === 'CANCELLED') expect(calls.map((c) => c.stepId)).not.toContain('b')
  })

  it("default 'fail' in a sequential workflow cancels the steps after the failed one", async () => {
    const { log, run } = setup()
    const { result } = await run({
      steps: [
        { id: 'one', factory: 't', action: 'work', params: {} },
        { id: 'two', factory: 't', action: 'boom', params: {} },
        { id: 'three', factory: 't', action: 'work', params: {} },
        { id: 'group', steps: [{ id: 'four', factory: 't', action: 'work', params: {} }] },
      ],
    })
    expect(result.status).toBe('FAILED')
    expect(result.error).toBe('step two failed: two exploded')
    expect(Object.fromEntries(Object.entries(result.steps).map(([k, v]) => [k, v.status]))).toEqual({
      one: 'SUCCEEDED', two: 'FAILED', three: 'CANCELLED', group: 'CANCELLED', 'group.four': 'CANCELLED',
    })
    expect(log).toEqual(['start one', 'end one', 'start two', 'fail two'])
    expect(result.output).toBeNull()
  })

  it("onFailure 'continue': independent branches still run, dependents of the failure are SKIPPED, the run FAILED", async () => {
    const { log, run } = setup()
    const { result, history } = await run({
      onFailure: 'continue',
      parallel: true,
      steps: [
        { id: 'bad', factory: 't', action: 'boom', params: {} },
        { id: 'child', factory: 't', action: 'work', params: {}, dependsOn: ['bad'] },
        { id: 'grandchild', factory: 't', action: 'work', params: {}, dependsOn: ['child'] },
        { id: 'first', factory: 't', action: 'work', params: {} },
        { id: 'independent', factory: 't', action: 'work', params: {}, dependsOn: ['first'] },
        { id: 'merge', factory: 't', action: 'work', params: {}, dependsOn: ['independent', 'child'] },
      ],
    })
    expect(result.status).toBe('FAILED')
    expect(result.error).toBe('step(s) failed: bad')
    expect(result.steps.bad!.status).toBe('FAILED')
    expect(result.steps.child).toMatchObject({ status: 'SKIPPED', error: 'skipped: a step it depends on failed' })
    expect(result.steps.grandchild!.status).toBe('SKIPPED')
    expect(result.steps.merge!.status).toBe('SKIPPED')
    expect(result.steps.first!.status).toBe('SUCCEEDED')
    expect(result.steps.independent!.status).toBe('SUCCEEDED')
    expect(log).toContain('end independent')
    expect(log.filter((l) => /child|merge/.test(l))).toEqual([])
    expect(history.at(-1)!.type).toBe('RUN_FAILED')
  })

  it("onFailure 'continue' keeps dispatching steps that become ready after the failure", async () => {
    const { o, log, waits, run } = setup()
    const release = latch()
    waits.set('slow', () => release.wait())
    o.subscribe({ types: ['STEP_FAILED'] }, (e) => {
      if (e.stepId === 'bad') release.open()
    })
    const { result, history } = await run({
      onFailure: 'continue',
      parallel: true,
      steps: [
        { id: 'slow', factory: 't', action: 'work', params: {} },
        { id: 'bad', factory: 't', action: 'boom', params: {} },
        { id: 'later', factory: 't', action: 'work', params: {}, dependsOn: ['slow'] },
      ],
    })
    expect(result.status).toBe('FAILED')
    expect(result.steps.later!.status).toBe('SUCCEEDED')
    expect(log).toContain('end later')
    expect(seqOf(history, 'STEP_FAILED', 'bad')).toBeLessThan(seqOf(history, 'STEP_STARTED', 'later'))
  })

  it("onFailure 'continue' fails a group whose member failed and skips the group's dependents", async () => {
    const { calls, run } = setup()
    const { result } = await run({
      onFailure: 'continue',
      steps: [
        {
          id: 'group', parallel: true,
          steps: [
            { id: 'ok', factory: 't', action: 'work', params: {} },
            { id: 'bad', factory: 't', action: 'boom', params: {} },
          ],
        },
        { id: 'after', factory: 't', action: 'work', params: {} },
        { id: 'nestedAfter', steps: [{ id: 'x', factory: 't', action: 'work', params: {} }] },
      ],
    })
    expect(result.status).toBe('FAILED')
    expect(result.steps['group.ok']!.status).toBe('SUCCEEDED')
    expect(result.steps['group.bad']!.status).toBe('FAILED')
    expect(result.steps.group).toMatchObject({ status: 'FAILED', error: 'member step(s) failed: group.bad' })
    expect(result.steps.after!.status).toBe('SKIPPED')
    expect(result.steps.nestedAfter!.status).toBe('SKIPPED')
    expect(result.steps['nestedAfter.x']!.status).toBe('SKIPPED')
    expect(calls.map((c) => c.stepId)).toEqual(['group.ok'])
  })

  it('continueOnError: the run SUCCEEDS, dependents run and see the FAILED status and error', async () => {
    const { calls, run } = setup()
    const { result, history } = await run({
      steps: [
        { id: 'fetch', factory: 't', action: 'boom', params: { message: 'feed down' }, continueOnError: true },
        {
          id: 'render', factory: 't', action: 'work',
          params: { status: '{{ steps.fetch.status }}', error: '{{ steps.fetch.error }}', data: '{{ steps.fetch.output }}' },
        },
        { id: 'retryLater', factory: 't', action: 'work', params: {}, dependsOn: ['fetch'], when: "steps.fetch.status = 'FAILED'" },
      ],
    })
    expect(result.status).toBe('SUCCEEDED')
    expect(result.error).toBeUndefined()
    expect(result.steps.fetch).toEqual({ status: 'FAILED', output: null, attempts: 1, error: 'feed down' })
    expect(result.steps.render!.output).toEqual({ step: 'render', status: 'FAILED', error: 'feed down', data: null })
    expect(result.steps.retryLater!.status).toBe('SUCCEEDED')
    // The failed step's output is not in ctx.steps; previous is absent.
    const render = calls.find((c) => c.stepId === 'render')!
    expect(render.steps).toEqual({})
    expect(render.previous).toBeUndefined()
    expect(stepEvents(history, 'fetch')).toEqual(['STEP_READY', 'STEP_STARTED', 'STEP_FAILED'])
    expect(history.at(-1)!.type).toBe('RUN_SUCCEEDED')
  })
})

describe('run output', () => {
  it('evaluates the output expression against the finished steps and input', async () => {
    const { run } = setup()
    const { result, history } = await run(
      {
        input: { symbol: { type: 'string', required: true } },
        parallel: true,
        steps: [
          { id: 'price', factory: 't', action: 'work', params: { value: 42.5 } },
          { id: 'volume', factory: 't', action: 'work', params: { value: 1000 } },
        ],
        output: {
          symbol: '{{ input.symbol }}',
          price: '{{ steps.price.output.value }}',
          notional: '{{ steps.price.output.value * steps.volume.output.value }}',
          summary: '{{ input.symbol }}: {{ steps.price.output.value }} x {{ steps.volume.output.value }}',
          statuses: ['{{ steps.price.status }}', '{{ steps.volume.status }}'],
          constant: 1,
        },
      },
      { symbol: 'BTC' },
    )
    expect(result.status).toBe('SUCCEEDED')
    expect(result.output).toEqual({
      symbol: 'BTC', price: 42.5, notional: 42500, summary: 'BTC: 42.5 x 1000', statuses: ['SUCCEEDED', 'SUCCEEDED'], constant: 1,
    })
    expect(history.at(-1)).toMatchObject({ type: 'RUN_SUCCEEDED' })
  })

  it('a single-expression output keeps its type', async () => {
    const { run } = setup()
    const { result } = await run({
      steps: [{ id: 'a', factory: 't', action: 'work', params: { list: [1, 2, 3] } }],
      output: '{{ $sum(steps.a.output.list) }}',
    })
    expect(result.output).toBe(6)
  })

  it('an output expression that fails at run time fails the run', async () => {
    const { run } = setup()
    const { result } = await run({
      steps: [{ id: 'a', factory: 't', action: 'work', params: {} }],
      output: '{{ $number("NaN?") }}',
    })
    expect(result.status).toBe('FAILED')
    expect(result.error).toMatch(/^output: /)
    expect(result.steps.a!.status).toBe('SUCCEEDED')
  })

  it('defaults to the outputs of the leaf steps, including skipped leaves as null', async () => {
    const { run } = setup()
    const { result } = await run({
      parallel: true,
      steps: [
        { id: 'root', factory: 't', action: 'work', params: {} },
        { id: 'left', factory: 't', action: 'work', params: { side: 'L' }, dependsOn: ['root'] },
        { id: 'right', factory: 't', action: 'work', params: { side: 'R' }, dependsOn: ['root'] },
        { id: 'off', factory: 't', action: 'work', params: {}, when: false },
      ],
    })
    expect(result.output).toEqual({ left: { step: 'left', side: 'L' }, right: { step: 'right', side: 'R' }, off: null })
  })
})

describe('history', () => {
  it('records every step transition of a sequential run in order', async () => {
    const { o, run } = setup()
    const { result, history } = await run({
      steps: [
        { id: 'a', factory: 't', action: 'work', params: {} },
        { id: 'b', factory: 't', action: 'work', params: {} },
      ],
    })
    expect(history.map((e) => [e.type, e.stepId])).toEqual([
      ['RUN_CREATED', null], ['RUN_STARTED', null],
      ['STEP_READY', 'a'], ['STEP_STARTED', 'a'], ['STEP_SUCCEEDED', 'a'],
      ['STEP_READY', 'b'], ['STEP_STARTED', 'b'], ['STEP_SUCCEEDED', 'b'],
      ['RUN_SUCCEEDED', null],
    ])
    expect(history.every((e) => e.runId === result.runId)).toBe(true)
    // Paging returns the same log.
    const firstPage = await o.getHistory(result.runId, { limit: 4 })
    const rest = await o.getHistory(result.runId, { after: firstPage.at(-1)!.seq })
    expect([...firstPage, ...rest]).toEqual(history)
  })
})
