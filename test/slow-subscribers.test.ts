// Slow or vanished subscribers (issue 7, item 4): 200 graphql-ws clients subscribe to the event
// firehose and then stop reading. The server (a child process, measured through /metrics) must not
// grow its memory with them, must not hold a normal client back (it still gets every event of a run,
// in order, to the end), and must close the stalled sockets once they fall behind by more than
// `server.maxBufferedBytes` (here 256 KiB) — with close code 4413 for a client still able to read it.
// Everything here waits on conditions; how much slower the normal client is with the stalled ones
// around is a performance figure, printed here and measured by bench/tools/slow-subscribers-probe.ts.
import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { ROOT, gql, killServers, readDb, serve } from './helpers/serve.ts'
import { until } from './support/barrier.ts'
import { stalledSubscriber, type StalledClient } from './helpers/raw-ws.ts'
import { stalledSseSubscriber } from './helpers/raw-sse.ts'

const CONFIG = join(ROOT, 'test/fixtures/slow-subscribers.config.ts')
const STALLED = Number(process.env.STALLED_CLIENTS ?? 200)
const STALLED_SSE = Number(process.env.STALLED_SSE_CLIENTS ?? 50)
// Hang bound: a server child, 200 sockets and ~20 MB of events twice (minutes on a loaded machine).
const SLOW = 600_000
const dir = mkdtempSync(join(tmpdir(), 'conveyor-slow-'))
afterAll(async () => {
  await killServers()
  rmSync(dir, { recursive: true, force: true })
})

const FIREHOSE = 'subscription { events { seq type stepId payload } }'
const RUN_EVENTS = 'subscription ($runId: ID!, $after: String) { runEvents(runId: $runId, after: $after) { seq type cursor } }'
/** The close code of a subscriber dropped for unread data (src/ws-flow-control.ts). */
const TOO_SLOW = 1013

async function metric(origin: string, name: string): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text)
  if (!m) throw new Error(`no ${name} in /metrics`)
  return Number(m[1])
}

/** A chain of `chatty` steps: `steps` × `logs` STEP_LOG events of ~1 KB each. */
function chattyWorkflow(steps: number, logs: number) {
  return { steps: Array.from({ length: steps }, (_, i) => ({ id: `talk${i + 1}`, factory: 'loop', action: 'chatty', params: { logs, bytes: 1000 } })) }
}

async function createAndRun(url: string, definition: unknown): Promise<string> {
  const c = (await gql(url, 'mutation ($d: JSON!) { createWorkflow(input: { name: "chatty", definition: $d }) { ... on CreateWorkflowSuccess { workflow { id } } ... on Error { message } } }', { d: definition })).createWorkflow
  const r = (await gql(url, 'mutation ($id: ID!) { executeWorkflow(input: { workflowId: $id }) { ... on ExecuteWorkflowSuccess { run { id } } ... on Error { message } } }', { id: c.workflow.id })).executeWorkflow
  return r.run.id
}

/**
 * A well-behaved client: every event of the run, and how long until the last one. On a loaded
 * machine even it can fall 256 KiB behind for a moment and be dropped as too slow (1013): it then
 * resumes from its cursor, as a client should, and `drops` counts that (a figure, not a check).
 */
async function follow(url: string, runId: string): Promise<{ seqs: number[]; ms: number; drops: number }> {
  const started = Date.now()
  const seqs: number[] = []
  let cursor: string | null = null
  let drops = 0
  for (;;) {
    const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 })
    try {
      const ended = await new Promise<'complete' | 'dropped'>((resolve, reject) => {
        client.subscribe<{ runEvents: { seq: number; cursor: string } }>({ query: RUN_EVENTS, variables: { runId, after: cursor } }, {
          next: (v) => {
            seqs.push(v.data!.runEvents.seq)
            cursor = v.data!.runEvents.cursor
          },
          error: (e) => ((e as { code?: number })?.code === TOO_SLOW ? resolve('dropped') : reject(e)),
          complete: () => resolve('complete'),
        })
      })
      if (ended === 'complete') return { seqs, ms: Date.now() - started, drops }
      drops++
    } finally {
      await client.dispose()
    }
  }
}

/**
 * A server of its own, and the reference: the burst the test will repeat, followed by a normal
 * client with nobody else connected (every event of it, and how long it took).
 */
async function serveWithReference(file: string) {
  const db = join(dir, file)
  const proc = serve(db, { config: CONFIG })
  const url = await proc.url()
  const seqsOf = (runId: string) => readDb(db, (s) => (s.prepare('select seq from events where run_id = ? order by seq').all(runId) as { seq: number }[]).map((r) => r.seq))
  const burst = chattyWorkflow(4, 5000)
  const warm = await createAndRun(url, burst)
  const reference = await follow(url, warm)
  expect(reference.seqs).toEqual(seqsOf(warm))
  return { proc, url, origin: new URL(url).origin, seqsOf, burst, reference }
}

/** Reading again, each stalled client finds its connection closed by the server; then the server stops cleanly. */
async function expectClosedAndStop(stalled: StalledClient[], proc: ReturnType<typeof serve>): Promise<void> {
  for (const c of stalled) c.drain()
  let open = stalled.length
  for (const c of stalled) void c.closed.then(() => open--)
  // Bounded only as a hang: the server closed (or is closing) them all already.
  await until(() => open === 0, { what: 'the server to close every stalled socket', everyMs: 50 }).catch(() => {})
  for (const c of stalled) c.destroy()
  expect(open, 'stalled sockets the server left open').toBe(0)
  proc.signal('SIGTERM')
  expect(await proc.exited).toEqual({ code: 0, signal: null })
}

describe('slow and vanished subscribers', () => {
  it(`${STALLED} clients that stop reading: bounded memory, other clients unaffected, stalled sockets closed`, async () => {
    const { proc, url, origin, seqsOf, burst, reference } = await serveWithReference('slow.db')
    const rssBefore = await metric(origin, 'conveyor_process_resident_bytes')
    const heapBefore = await metric(origin, 'conveyor_process_heap_used_bytes')

    const stalled: StalledClient[] = []
    for (let i = 0; i < STALLED; i += 20) {
      stalled.push(...(await Promise.all(Array.from({ length: Math.min(20, STALLED - i) }, () => stalledSubscriber(url, FIREHOSE)))))
    }
    expect(await metric(origin, 'conveyor_ws_clients')).toBe(STALLED)

    // ~20 MB of events: every stalled client falls far behind.
    const busy = await createAndRun(url, burst)
    const normal = await follow(url, busy)
    expect(normal.seqs, 'the normal client got every event of the run, in order').toEqual(seqsOf(busy))
    const rssPeak = await metric(origin, 'conveyor_process_resident_bytes')
    const heapPeak = await metric(origin, 'conveyor_process_heap_used_bytes')
    // The log lines come through a pipe, not the socket the normal client read: wait for them.
    const droppedNow = () => proc.logs().filter((l) => l.msg === 'closing a WebSocket client that stopped reading')
    // (The normal client's own drops, if the machine was too slow for it, are logged too.)
    const expectedDrops = STALLED + reference.drops + normal.drops
    await until(() => droppedNow().length >= expectedDrops, { what: `${expectedDrops} 'closing a WebSocket client that stopped reading' lines`, everyMs: 50 }).catch(() => {})
    const dropped = droppedNow()
    // A dropped client that does not answer the close is destroyed a second after it: those the
    // limit dropped near the end of the burst may still be counted for that second.
    let wsOpen = await metric(origin, 'conveyor_ws_clients')
    await until(async () => (wsOpen = await metric(origin, 'conveyor_ws_clients')) === 0, { what: 'every WebSocket to be closed', everyMs: 100 }).catch(() => {})

    const figures = {
      stalled: STALLED, events: normal.seqs.length, referenceMs: reference.ms, withStalledMs: normal.ms, normalDrops: reference.drops + normal.drops, dropped: dropped.length, wsOpenAfter: wsOpen,
      rssBeforeMB: Math.round(rssBefore / 2 ** 20), rssPeakMB: Math.round(rssPeak / 2 ** 20),
      heapBeforeMB: Math.round(heapBefore / 2 ** 20), heapPeakMB: Math.round(heapPeak / 2 ** 20),
    }
    console.log(`slow-subscribers: ${JSON.stringify(figures)}`)

    // Every stalled client was dropped by the limit (not by the 30 s keep-alive), while the burst ran.
    expect(dropped.length, 'stalled clients closed for unread data').toBe(expectedDrops)
    expect(wsOpen, 'WebSocket connections still open after the burst').toBe(0)
    // The normal client was not held back by them: it got every event, to the end (above); how much
    // later than alone is a performance figure (printed above; bench/tools/slow-subscribers-probe.ts).
    // Memory: the stalled clients cost far less than the data they failed to read (200 × 20 MB).
    expect(heapPeak - heapBefore).toBeLessThan(100 * 2 ** 20)
    expect(rssPeak - rssBefore).toBeLessThan(200 * 2 ** 20)

    await expectClosedAndStop(stalled, proc)
  }, SLOW)

  it(`${STALLED_SSE} SSE subscribers that stop reading: bounded memory, other clients unaffected, closed after server.maxStallMs`, async () => {
    const { proc, url, origin, seqsOf, burst } = await serveWithReference('slow-sse.db')
    const heapBefore = await metric(origin, 'conveyor_process_heap_used_bytes')

    const stalled: StalledClient[] = []
    for (let i = 0; i < STALLED_SSE; i += 10) {
      stalled.push(...(await Promise.all(Array.from({ length: Math.min(10, STALLED_SSE - i) }, () => stalledSseSubscriber(url, FIREHOSE)))))
    }
    const busy = await createAndRun(url, burst)
    const normal = await follow(url, busy)
    expect(normal.seqs, 'the normal client got every event of the run, in order').toEqual(seqsOf(busy))
    const heapPeak = await metric(origin, 'conveyor_process_heap_used_bytes')

    // Each stalled stream is closed once it has waited maxStallMs (2 s here) for its client to read.
    const closedByLimit = () => proc.logs().filter((l) => l.msg === 'closing an SSE subscriber that stopped reading').length
    await until(() => closedByLimit() >= STALLED_SSE, { what: `${STALLED_SSE} SSE subscribers closed by the stall limit`, everyMs: 100 })
    console.log(`slow-subscribers (SSE): ${JSON.stringify({ stalled: STALLED_SSE, events: normal.seqs.length, closed: closedByLimit(), heapBeforeMB: Math.round(heapBefore / 2 ** 20), heapPeakMB: Math.round(heapPeak / 2 ** 20) })}`)
    expect(closedByLimit()).toBe(STALLED_SSE)
    // Memory: far less than the 50 × ~20 MB they failed to read.
    expect(heapPeak - heapBefore).toBeLessThan(100 * 2 ** 20)
    await expectClosedAndStop(stalled, proc)
  }, SLOW)
})
