// Write-ahead dispatch (DESIGN.md §3): an action is called only after a commit that holds its run,
// its step's STARTED attempt with the params it receives, and every step output it can see. Each
// action here looks at the database from a second, read-only connection the moment it is called.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { controlFactory, type ActionContext, type WorkflowDefinition } from '../src/index.ts'
import { committedProbe, type CommittedProbe } from './support/committed-probe.ts'
import { until } from './support/barrier.ts'
import { openedPerTest } from './support/opened.ts'

const opened = openedPerTest()

function setup() {
  const database = join(opened.tempDir(), 'conveyor.db')
  const o = opened.orchestrator({ database })
  o.registerFactory('control', controlFactory)
  // The probe opens the file once the orchestrator has created it.
  const probe: CommittedProbe = opened.track(committedProbe(database))
  const missing: string[] = []
  let calls = 0
  const look = (params: unknown, ctx: ActionContext) => {
    calls++
    missing.push(...probe.check(params, ctx))
  }
  o.registerFactory('w', {
    async step(params: Record<string, unknown>, ctx: ActionContext) {
      look(params, ctx)
      await new Promise((r) => setImmediate(r))
      return { step: ctx.stepId, n: (params.n as number | undefined) ?? 0 }
    },
    // At once, no await: the next step is dispatched from the same turn of the event loop.
    now(params: Record<string, unknown>, ctx: ActionContext) {
      look(params, ctx)
      return { step: ctx.stepId }
    },
    flaky(params: Record<string, unknown>, ctx: ActionContext) {
      look(params, ctx)
      if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} fails`)
      return { attempt: ctx.attempt }
    },
  })
  const run = async (definition: WorkflowDefinition, input?: unknown) => {
    const id = await o.createWorkflow(`wf_${opened.count()}_${Math.random().toString(36).slice(2, 8)}`, definition)
    return o.executeWorkflow(id, input)
  }
  return { o, run, missing, calls: () => calls }
}

const chain = (n: number, action = 'now'): WorkflowDefinition => ({
  steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, factory: 'w', action, params: { n: i } })),
})

describe('write-ahead dispatch: what an action acts on is committed when it is called', () => {
  it('chains: 60 ten-step chains at once, actions that return at once and after a turn', async () => {
    const { o, missing, calls } = setup()
    const fast = await o.createWorkflow('chain_now', chain(10, 'now'))
    const slow = await o.createWorkflow('chain_step', chain(10, 'step'))
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => o.executeWorkflow(i % 2 ? fast : slow, { i })))
    expect(results.map((r) => r.status)).toEqual(Array(60).fill('SUCCEEDED'))
    expect(calls()).toBe(600)
    expect(missing).toEqual([])
  })

  it('fan-out, diamonds and templates over upstream outputs', async () => {
    const { run, missing, calls } = setup()
    const fan = await run({
      steps: [
        { id: 'fan', parallel: true, steps: Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, factory: 'w', action: 'now', params: { n: i } })) },
        { id: 'join', factory: 'w', action: 'step', params: { n: '{{ $count($keys(steps.fan.output)) }}' } },
      ],
    })
    expect(fan.status).toBe('SUCCEEDED')
    const diamond = await run({
      steps: [
        { id: 'a', factory: 'w', action: 'now', params: { n: 1 } },
        { id: 'b', factory: 'w', action: 'step', dependsOn: ['a'], params: { n: 2 } },
        { id: 'c', factory: 'w', action: 'now', dependsOn: ['a'], params: { n: 3 } },
        { id: 'd', factory: 'w', action: 'now', dependsOn: ['b', 'c'], params: { n: '{{ steps.b.output.n + steps.c.output.n }}' } },
      ],
    })
    expect(diamond.status).toBe('SUCCEEDED')
    expect(diamond.steps.d!.output).toEqual({ step: 'd' })
    expect(calls()).toBe(51 + 4)
    expect(missing).toEqual([])
  })

  it('forEach items, a sub-workflow child run and retried attempts', async () => {
    const { o, run, missing, calls } = setup()
    o.workflows.registerTemplate('child', chain(3, 'step'))
    const result = await run(
      {
        steps: [
          { id: 'list', factory: 'w', action: 'now' },
          { id: 'each', factory: 'w', action: 'step', forEach: '{{ input.items }}', params: { n: '{{ item }}' } },
          { id: 'sub', template: 'child', params: {} },
          { id: 'retry', factory: 'w', action: 'flaky', retry: { maxAttempts: 3, backoff: 'fixed', initialMs: 1 } },
        ],
      },
      { items: [1, 2, 3, 4, 5] },
    )
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.retry!.attempts).toBe(3)
    expect(calls()).toBe(1 + 5 + 3 + 3)
    expect(missing).toEqual([])
  })

  it('after a signal: the step that reads the approval runs on its committed output', async () => {
    const { o, missing, calls } = setup()
    const id = await o.createWorkflow('approved', {
      steps: [
        { id: 'approve', factory: 'control', action: 'approval', params: { message: 'go?' } },
        { id: 'after', factory: 'w', action: 'now', params: { n: 1 } },
      ],
    })
    const { runId } = await o.startWorkflow(id)
    await until(() => o.coordinator.readResult(runId).steps.approve!.status === 'WAITING')
    await o.signalRun(runId, 'approve', { approved: true })
    expect((await o.waitForRun(runId)).status).toBe('SUCCEEDED')
    expect(calls()).toBe(1)
    expect(missing).toEqual([])
  })
})
