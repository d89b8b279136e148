// How much later a normal subscriber gets the last event of a busy run while stalled clients are
// connected, against the same run with nobody else connected: the performance half of
// test/slow-subscribers.test.ts (the test keeps the correctness half: every event, in order; every
// stalled client dropped by the limit; bounded memory). A ratio, so run it on a quiet machine:
//   npx tsx bench/tools/slow-subscribers-probe.ts [stalled=200] [rounds=3]
// It used to be asserted in the test as "at most 2 × alone + 5 s", which a loaded machine broke.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { ROOT, gql, serve } from '../../test/helpers/serve.ts'
import { stalledSubscriber } from '../../test/helpers/raw-ws.ts'
import { median } from '../stats.ts'

const STALLED = Number(process.argv[2] ?? 200)
const ROUNDS = Number(process.argv[3] ?? 3)
const FIREHOSE = 'subscription { events { seq type stepId payload } }'
const RUN_EVENTS = 'subscription ($runId: ID!) { runEvents(runId: $runId) { seq type } }'
const burst = { steps: Array.from({ length: 4 }, (_, i) => ({ id: `talk${i + 1}`, factory: 'loop', action: 'chatty', params: { logs: 5000, bytes: 1000 } })) }

async function run(url: string): Promise<string> {
  const c = (await gql(url, 'mutation ($d: JSON!) { createWorkflow(input: { name: "chatty", definition: $d }) { ... on CreateWorkflowSuccess { workflow { id } } } }', { d: burst })).createWorkflow
  return (await gql(url, 'mutation ($id: ID!) { executeWorkflow(input: { workflowId: $id }) { ... on ExecuteWorkflowSuccess { run { id } } } }', { id: c.workflow.id })).executeWorkflow.run.id
}

async function follow(url: string, runId: string): Promise<number> {
  const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 })
  const started = performance.now()
  await new Promise<void>((resolve, reject) => client.subscribe({ query: RUN_EVENTS, variables: { runId } }, { next: () => {}, error: reject, complete: resolve }))
  await client.dispose()
  return performance.now() - started
}

const dir = mkdtempSync(join(tmpdir(), 'conveyor-slow-probe-'))
const alone: number[] = []
const withStalled: number[] = []
try {
  for (let round = 0; round < ROUNDS; round++) {
    const proc = serve(join(dir, `r${round}.db`), { config: join(ROOT, 'test/fixtures/slow-subscribers.config.ts') })
    const url = await proc.url()
    await follow(url, await run(url)) // warm-up
    alone.push(await follow(url, await run(url)))
    const stalled = []
    for (let i = 0; i < STALLED; i += 20) stalled.push(...(await Promise.all(Array.from({ length: Math.min(20, STALLED - i) }, () => stalledSubscriber(url, FIREHOSE)))))
    withStalled.push(await follow(url, await run(url)))
    for (const c of stalled) c.destroy()
    await proc.kill()
    console.log(`round ${round + 1}: alone ${Math.round(alone.at(-1)!)} ms, with ${STALLED} stalled ${Math.round(withStalled.at(-1)!)} ms`)
  }
  const a = median(alone)
  const w = median(withStalled)
  console.log(JSON.stringify({ stalled: STALLED, rounds: ROUNDS, aloneMs: Math.round(a), withStalledMs: Math.round(w), ratio: Number((w / a).toFixed(2)) }))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
