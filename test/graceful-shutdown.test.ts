// Graceful shutdown (issue 7, item 2), beyond cli-server.test.ts's basic case: SIGTERM to
// `conveyor serve` during busy runs.
// - An action that ignores its abort signal and outlives the grace period (CONVEYOR_DRAIN_MS) does
//   not hold the process: it exits 0 long before the action would end (its result never recorded), with subscribers
//   connected — one of them a client that stopped reading — and `pragma integrity_check` ok; the next
//   start resumes the run, the interrupted attempt recorded as INTERRUPTED.
// - While draining, running actions finish and are recorded, and nothing new starts; the process
//   exits as soon as they are done (not at the end of the grace period).
// No bound here is a guess at the machine's speed: each is the length of the work the process must
// not wait for (a 120 s action, a 120 s grace period), so only that wait can break it.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { ROOT, gql, integrity, killServers, readDb, serve, sleep, type Json } from './helpers/serve.ts'
import { stalledSubscriber } from './helpers/raw-ws.ts'

const CONFIG = join(ROOT, 'test/fixtures/crash-loop.config.ts')
const SLOW = 300_000
/** Longer than any start-up, run or shutdown here, even on a loaded machine: what must not be waited for. */
const LONG_MS = 120_000
const dir = mkdtempSync(join(tmpdir(), 'conveyor-shutdown-'))
afterEach(killServers)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function start(url: string, name: string, definition: unknown): Promise<string> {
  const c = (await gql(url, 'mutation ($n: String!, $d: JSON!) { createWorkflow(input: { name: $n, definition: $d }) { __typename ... on CreateWorkflowSuccess { workflow { id } } ... on Error { message } } }', { n: name, d: definition })).createWorkflow
  expect(c.__typename, JSON.stringify(c)).toBe('CreateWorkflowSuccess')
  const r = (await gql(url, 'mutation ($id: ID!) { executeWorkflow(input: { workflowId: $id }) { __typename ... on ExecuteWorkflowSuccess { run { id } } ... on Error { message } } }', { id: c.workflow.id })).executeWorkflow
  expect(r.__typename, JSON.stringify(r)).toBe('ExecuteWorkflowSuccess')
  return r.run.id
}

const RUN = 'query ($id: ID!) { run(id: $id) { status error steps { stepId status attemptHistory { attempt status } } } }'

async function poll(url: string, runId: string, until: (run: Json) => boolean, timeoutMs = LONG_MS): Promise<Json> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const run = (await gql(url, RUN, { id: runId })).run
    if (until(run)) return run
    if (Date.now() > deadline) throw new Error(`run ${runId} did not get there: ${JSON.stringify(run)}`)
    await sleep(25)
  }
}

const stepRows = (db: string, runId: string) =>
  readDb(db, (s) => Object.fromEntries((s.prepare('select step_id as id, status from steps where run_id = ?').all(runId) as { id: string; status: string }[]).map((r) => [r.id, r.status])))

describe('SIGTERM during busy runs', () => {
  it('an action that ignores its signal and outlives the grace period: exit 0 in time, consistent database, resumed after a restart', async () => {
    const db = join(dir, 'stubborn.db')
    const drainMs = 800
    const first = serve(db, { config: CONFIG, env: { CONVEYOR_DRAIN_MS: String(drainMs) } })
    const url = await first.url()
    // A stubborn action (120 s, deaf to ctx.signal) beside a busy fan-out and a chain.
    const runId = await start(url, 'stubborn', {
      parallel: true,
      steps: [
        { id: 'stubborn', factory: 'loop', action: 'stubborn', params: { n: 1, ms: LONG_MS } },
        { id: 'fan', parallel: true, steps: Array.from({ length: 8 }, (_, i) => ({ id: `f${i}`, factory: 'loop', action: 'step', params: { n: i, ms: 300 } })) },
        { id: 'after', factory: 'loop', action: 'step', params: { n: 9, ms: 10 }, dependsOn: ['fan'] },
      ],
    })
    // Subscribers: a normal graphql-ws client and one that stopped reading.
    const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 })
    const seen: string[] = []
    let closedWith: unknown
    client.subscribe<{ runEvents: { type: string } }>({ query: 'subscription ($id: ID!) { runEvents(runId: $id) { type } }', variables: { id: runId } }, {
      next: (v) => seen.push(v.data!.runEvents.type), error: (e) => (closedWith = e), complete: () => {},
    })
    const stalled = await stalledSubscriber(url, 'subscription { events { seq payload } }')
    await poll(url, runId, (r) => r.steps.some((s: Json) => s.stepId === 'stubborn' && s.status === 'RUNNING'))

    const signalled = Date.now()
    first.signal('SIGTERM')
    const exit = await first.exited
    const tookMs = Date.now() - signalled
    expect(exit, first.stderr).toEqual({ code: 0, signal: null })
    expect(first.logs().map((l) => l.msg).at(-1)).toBe('stopped')
    // It did not wait for the stubborn action (its result is not recorded either: below).
    expect(tookMs, `exit ${tookMs} ms after SIGTERM`).toBeLessThan(LONG_MS)
    expect(integrity(db)).toBe('ok')
    expect((closedWith as { code?: number } | undefined)?.code, 'the subscriber was told the server is going away').toBe(1001)
    expect(seen[0]).toBe('RUN_CREATED')
    stalled.destroy()
    await client.dispose()
    // The stubborn step was abandoned mid-attempt; the run waits for the next start.
    expect(readDb(db, (s) => (s.prepare('select status from runs where id = ?').get(runId) as { status: string }).status)).toBe('RUNNING')
    expect(stepRows(db, runId).stubborn).toBe('RUNNING')

    const second = serve(db, { config: CONFIG })
    const url2 = await second.url()
    const run = await poll(url2, runId, (r) => !['PENDING', 'RUNNING'].includes(r.status))
    expect(run.status, run.error).toBe('SUCCEEDED')
    const stubborn = run.steps.find((s: Json) => s.stepId === 'stubborn')
    expect(stubborn.attemptHistory.map((a: Json) => a.status)).toEqual(['INTERRUPTED', 'SUCCEEDED'])
    for (const step of run.steps as Json[]) expect(step.status, step.stepId).toBe('SUCCEEDED')
    second.signal('SIGTERM')
    expect(await second.exited).toEqual({ code: 0, signal: null })
    expect(integrity(db)).toBe('ok')
  }, SLOW)

  it('draining: running actions finish and are recorded, nothing new starts, and the process exits once they are done', async () => {
    const db = join(dir, 'drain.db')
    const first = serve(db, { config: CONFIG, env: { CONVEYOR_DRAIN_MS: String(LONG_MS) } })
    const url = await first.url()
    const runId = await start(url, 'chain', { steps: [1, 2, 3, 4].map((n) => ({ id: `s${n}`, factory: 'loop', action: 'step', params: { n, ms: 700 } })) })
    await poll(url, runId, (r) => r.steps.some((s: Json) => s.stepId === 's1' && s.status === 'RUNNING'))
    const signalled = Date.now()
    first.signal('SIGTERM')
    expect(await first.exited).toEqual({ code: 0, signal: null })
    const tookMs = Date.now() - signalled
    // s1 (700 ms) finished; the process did not wait out the grace period.
    expect(tookMs).toBeLessThan(LONG_MS)
    expect(integrity(db)).toBe('ok')
    expect(stepRows(db, runId)).toEqual({ s1: 'SUCCEEDED', s2: 'PENDING', s3: 'PENDING', s4: 'PENDING' })
    const started = readDb(db, (s) => (s.prepare("select step_id as id from events where run_id = ? and type = 'STEP_STARTED'").all(runId) as { id: string }[]).map((r) => r.id))
    expect(started).toEqual(['s1'])

    const second = serve(db, { config: CONFIG })
    const run = await poll(await second.url(), runId, (r) => r.status !== 'RUNNING')
    expect(run.status, run.error).toBe('SUCCEEDED')
    // s1 is not run again: it finished during the drain.
    expect(run.steps.find((s: Json) => s.stepId === 's1').attemptHistory).toEqual([{ attempt: 1, status: 'SUCCEEDED' }])
    second.signal('SIGTERM')
    expect(await second.exited).toEqual({ code: 0, signal: null })
  }, SLOW)
})
