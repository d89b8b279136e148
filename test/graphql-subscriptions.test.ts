// Live step-level events over graphql-ws and SSE, replay-then-tail without gaps or duplicates.
import { afterEach, describe, expect, it } from 'vitest'
import { print } from 'graphql'
import { z } from 'zod'
import { defineFactory } from '../src/index.ts'
import { startTestServer, collect, sse, type TestServer } from './helpers/server.ts'
import { until } from './support/barrier.ts'
import { AllEventsDocument, CreateWorkflowDocument, ExecuteWorkflowDocument, RunEventBatchesDocument, RunEventsDocument, RunUpdatedDocument } from './generated/graphql.ts'

type Ev = { runEvents: { cursor: string; seq: number; type: string; stepId: string | null; runId: string } }
type Batch = { runEventBatches: { cursor: string; events: Ev['runEvents'][] } }

/** An action that waits until the test opens its gate: keeps a run in flight while clients come and go. */
function gated() {
  let open!: () => void
  const gate = new Promise<void>((resolve) => (open = resolve))
  const factory = defineFactory({
    name: 'gate',
    actions: {
      wait: { input: z.object({ n: z.number() }), run: async ({ n }) => (await gate, { n }) },
      quick: { input: z.object({ n: z.number() }), run: async ({ n }) => ({ n }) },
    },
  })
  return { factory, open }
}

let t: TestServer
afterEach(async () => {
  await t?.close()
})

async function createWorkflow(definition: unknown): Promise<string> {
  const r = await t.request(CreateWorkflowDocument, { name: 'sub_test', definition })
  const result = r.data!.createWorkflow
  if (result.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(result))
  return result.workflow.id
}

async function execute(workflowId: string): Promise<string> {
  const r = await t.request(ExecuteWorkflowDocument, { workflowId })
  const result = r.data!.executeWorkflow
  if (result.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(result))
  return result.run.id
}

const threeSteps = {
  steps: [
    { id: 'a', factory: 'gate', action: 'quick', params: { n: 1 } },
    { id: 'b', factory: 'gate', action: 'quick', params: { n: 2 } },
    { id: 'c', factory: 'gate', action: 'quick', params: { n: 3 } },
  ],
}

function expectStepLevelOrder(events: { type: string; stepId: string | null; seq: number }[], steps: string[]) {
  const seqs = events.map((e) => e.seq)
  expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
  expect(new Set(seqs).size).toBe(seqs.length)
  for (const step of steps) {
    const started = events.findIndex((e) => e.type === 'STEP_STARTED' && e.stepId === step)
    const succeeded = events.findIndex((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === step)
    expect(started, `${step} started`).toBeGreaterThanOrEqual(0)
    expect(succeeded, `${step} succeeded`).toBeGreaterThan(started)
  }
  expect(events.at(-1)!.type).toBe('RUN_SUCCEEDED')
}

describe('subscriptions', () => {
  it('graphql-ws: a subscriber sees every step event of a run started by a mutation, in seq order', async () => {
    const { factory } = gated()
    t = await startTestServer({ factories: { gate: factory } })
    const workflowId = await createWorkflow(threeSteps)
    const client = t.ws()
    // Subscribe first (the firehose for this workflow), then start the run.
    // From cursor 0 for this (new) workflow: deterministic however long the subscription takes to start.
    const firehose = collect<{ events: Ev['runEvents'] }>(client, print(AllEventsDocument), { workflowId, after: '0' }, (items) =>
      items.some((i) => i.events.type === 'RUN_SUCCEEDED'),
    )
    const runId = await execute(workflowId)
    const live = (await firehose.done).map((i) => i.events)
    expect(live.every((e) => e.runId === runId)).toBe(true)
    expect(live[0]!.type).toBe('RUN_CREATED')
    expectStepLevelOrder(live, ['a', 'b', 'c'])
    // runEvents for the same run (no cursor) replays from the start and completes at the end.
    const replay = (await collect<Ev>(client, print(RunEventsDocument), { runId }).done).map((i) => i.runEvents)
    expect(replay.map((e) => e.seq)).toEqual(live.map((e) => e.seq))
  })

  it('SSE: the same stream over server-sent events', async () => {
    const { factory } = gated()
    t = await startTestServer({ factories: { gate: factory } })
    const workflowId = await createWorkflow(threeSteps)
    const runId = await execute(workflowId)
    const events = (await sse<Ev>(t.url, print(RunEventsDocument), { runId })).map((i) => i.runEvents)
    expect(events[0]!.type).toBe('RUN_CREATED')
    expectStepLevelOrder(events, ['a', 'b', 'c'])
  })

  it('a client that reconnects with its last cursor gets every later event exactly once', async () => {
    const { factory, open } = gated()
    t = await startTestServer({ factories: { gate: factory } })
    const workflowId = await createWorkflow({
      parallel: true,
      steps: [
        ...Array.from({ length: 5 }, (_, i) => ({ id: `q${i}`, factory: 'gate', action: 'quick', params: { n: i } })),
        ...Array.from({ length: 5 }, (_, i) => ({ id: `w${i}`, factory: 'gate', action: 'wait', params: { n: i } })),
      ],
    })
    const runId = await execute(workflowId)
    const first = collect<Ev>(t.ws(), print(RunEventsDocument), { runId }, (items) =>
      items.filter((i) => i.runEvents.type === 'STEP_SUCCEEDED').length >= 3,
    )
    const part1 = (await first.done).map((i) => i.runEvents)
    const cursor = part1.at(-1)!.cursor
    // Disconnected: the run goes on without this client.
    open()
    await t.orchestrator.waitForRun(runId)
    const part2 = (await collect<Ev>(t.ws(), print(RunEventsDocument), { runId, after: cursor }).done).map((i) => i.runEvents)
    const all = [...part1, ...part2].map((e) => e.seq)
    const history = (await t.orchestrator.getHistory(runId)).map((e) => e.seq)
    expect(all).toEqual(history)
  })

  it('"HEAD" skips the past; runUpdated follows the run to its end', async () => {
    const { factory, open } = gated()
    t = await startTestServer({ factories: { gate: factory } })
    const workflowId = await createWorkflow({ steps: [{ id: 'w', factory: 'gate', action: 'wait', params: { n: 1 } }, { id: 'z', factory: 'gate', action: 'quick', params: { n: 2 } }] })
    const runId = await execute(workflowId)
    // The past is committed (w is waiting at its gate) before "HEAD" is asked for...
    await until(async () => (await t!.orchestrator.getHistory(runId)).some((e) => e.type === 'STEP_STARTED' && e.stepId === 'w'), 'w to start')
    const listeners = t.orchestrator.context.bus.size
    const client = t.ws()
    const head = collect<Ev>(client, print(RunEventsDocument), { runId, after: 'HEAD' })
    const updates = collect<{ runUpdated: { status: string; steps: { stepId: string; status: string }[] } }>(client, print(RunUpdatedDocument), { runId })
    // ...and both subscriptions listen before anything new happens.
    await until(() => t!.orchestrator.context.bus.size >= listeners + 2, 'both subscriptions to listen')
    open()
    const events = (await head.done).map((i) => i.runEvents)
    expect(events.some((e) => e.type === 'RUN_CREATED' || e.type === 'RUN_STARTED')).toBe(false)
    expect(events.map((e) => e.type)).toContain('STEP_SUCCEEDED')
    expect(events.at(-1)!.type).toBe('RUN_SUCCEEDED')
    const runs = (await updates.done).map((i) => i.runUpdated)
    expect(runs.at(-1)!.status).toBe('SUCCEEDED')
    expect(runs.at(-1)!.steps.every((s) => s.status === 'SUCCEEDED')).toBe(true)
  })

  it('rejects an unknown run and a bad cursor with errors, and keeps serving', async () => {
    t = await startTestServer({})
    const client = t.ws()
    const missing = collect(client, print(RunEventsDocument), { runId: 'run_missing' })
    expect(await missing.done).toEqual([])
    expect(missing.errors).toMatchObject([{ message: 'run run_missing not found', extensions: { code: 'NOT_FOUND' } }])
    const r = await t.request(print(RunEventsDocument), { runId: 'run_missing', after: 'not-a-cursor' })
    expect(r.errors).toMatchObject([{ extensions: { code: 'BAD_USER_INPUT' } }])
    const health = await fetch(t.url.replace('/graphql', '/healthz'))
    expect(health.status).toBe(200)
  })

  it('many subscribers of the same operation: each gets exactly its own stream (cursor, run), over graphql-ws and SSE', async () => {
    // The server executes an event once for all subscribers of the same document and variables;
    // what each one is sent must still follow its own cursor and run.
    const { factory, open } = gated()
    t = await startTestServer({ factories: { gate: factory } })
    const listeners = t.orchestrator.context.bus.size
    const workflowId = await createWorkflow({
      parallel: true,
      steps: [
        ...Array.from({ length: 4 }, (_, i) => ({ id: `q${i}`, factory: 'gate', action: 'quick', params: { n: i } })),
        ...Array.from({ length: 4 }, (_, i) => ({ id: `w${i}`, factory: 'gate', action: 'wait', params: { n: i } })),
      ],
    })
    const runId = await execute(workflowId)
    const other = await execute(workflowId)
    // A cursor from the part of the run already committed (the quick steps).
    const early = (await collect<Ev>(t.ws(), print(RunEventsDocument), { runId }, (items) => items.length >= 3).done).at(-1)!.runEvents.cursor
    await until(() => t.orchestrator.context.bus.size === listeners)
    const same = Array.from({ length: 4 }, () => collect<Ev>(t.ws(), print(RunEventsDocument), { runId }))
    const resumed = collect<Ev>(t.ws(), print(RunEventsDocument), { runId, after: early })
    const otherRun = collect<Ev>(t.ws(), print(RunEventsDocument), { runId: other })
    const batched = Array.from({ length: 2 }, () => collect<Batch>(t.ws(), print(RunEventBatchesDocument), { runId }))
    const overSse = sse<Ev>(t.url, print(RunEventsDocument), { runId })
    // Release the run once every stream is live, so the rest of the run reaches them all from the
    // event bus (the events the server executes once for the subscribers of the same operation).
    await until(() => t.orchestrator.context.bus.size === listeners + 9)
    open()
    await t.orchestrator.waitForRun(runId)
    await t.orchestrator.waitForRun(other)
    const history = (await t.orchestrator.getHistory(runId)).map((e) => e.seq)
    const seqs = (items: Ev[]) => items.map((i) => i.runEvents.seq)
    for (const c of same) expect(seqs(await c.done)).toEqual(history)
    expect(seqs(await resumed.done)).toEqual(history.filter((seq) => seq > Number(early)))
    expect(seqs(await otherRun.done)).toEqual((await t.orchestrator.getHistory(other)).map((e) => e.seq))
    for (const c of batched) expect((await c.done).flatMap((b) => b.runEventBatches.events.map((e) => e.seq))).toEqual(history)
    expect(seqs(await overSse)).toEqual(history)
  })

  it('runEventBatches: the batches are the run\'s events in order, each batch resumable by its cursor', async () => {
    const { factory, open } = gated()
    t = await startTestServer({ factories: { gate: factory } })
    const workflowId = await createWorkflow({
      parallel: true,
      steps: [
        // ~240 events committed before the gate opens: the first batch is a message of > 16 KiB,
        // which the server sends in fragments from one shared buffer (shared-subscriptions.ts).
        ...Array.from({ length: 80 }, (_, i) => ({ id: `q${i}`, factory: 'gate', action: 'quick', params: { n: i } })),
        { id: 'w', factory: 'gate', action: 'wait', params: { n: 0 } },
      ],
    })
    const runId = await execute(workflowId)
    const batchesOf = (items: Batch[]) => items.map((i) => i.runEventBatches)
    const listeners = t.orchestrator.context.bus.size
    await until(() => t.orchestrator.coordinator.readResult(runId).steps.w?.status === 'RUNNING')
    const all = collect<Batch>(t.ws(), print(RunEventBatchesDocument), { runId })
    const twin = collect<Batch>(t.ws(), print(RunEventBatchesDocument), { runId })
    const small = collect<Batch>(t.ws(), print(RunEventBatchesDocument), { runId, maxEvents: 2 })
    await until(() => t.orchestrator.context.bus.size === listeners + 3)
    open()
    await t.orchestrator.waitForRun(runId)
    const history = (await t.orchestrator.getHistory(runId)).map((e) => e.seq)
    expect(JSON.stringify(batchesOf(await all.done)[0]).length).toBeGreaterThan(16 * 1024)
    for (const batches of [batchesOf(await all.done), batchesOf(await twin.done), batchesOf(await small.done)]) {
      expect(batches.flatMap((b) => b.events.map((e) => e.seq))).toEqual(history)
      for (const b of batches) {
        expect(b.events.length).toBeGreaterThan(0)
        expect(b.cursor).toBe(b.events.at(-1)!.cursor)
        expect(b.events.every((e) => e.runId === runId)).toBe(true)
      }
    }
    const smallBatches = batchesOf(await small.done)
    expect(smallBatches.every((b) => b.events.length <= 2)).toBe(true)
    // The replay of the committed part comes in full batches: more than one event per message.
    expect(batchesOf(await all.done)[0]!.events.length).toBeGreaterThan(1)
    // Resuming after a batch's cursor: the rest, exactly once.
    const cursor = smallBatches[1]!.cursor
    const rest = batchesOf(await collect<Batch>(t.ws(), print(RunEventBatchesDocument), { runId, after: cursor }).done)
    expect(rest.flatMap((b) => b.events.map((e) => e.seq))).toEqual(history.filter((seq) => seq > Number(cursor)))
    // And over SSE.
    const overSse = (await sse<Batch>(t.url, print(RunEventBatchesDocument), { runId })).map((i) => i.runEventBatches)
    expect(overSse.flatMap((b) => b.events.map((e) => e.seq))).toEqual(history)
    // maxEvents out of range, an unknown run: errors, nothing streamed.
    for (const [variables, code] of [[{ runId, maxEvents: 0 }, 'BAD_USER_INPUT'], [{ runId, maxEvents: 1001 }, 'BAD_USER_INPUT'], [{ runId: 'run_missing' }, 'NOT_FOUND']] as const) {
      const bad = collect(t.ws(), print(RunEventBatchesDocument), variables)
      expect(await bad.done).toEqual([])
      expect(bad.errors, JSON.stringify(variables)).toMatchObject([{ extensions: { code } }])
    }
  })
})
