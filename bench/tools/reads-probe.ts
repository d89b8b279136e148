// The events page of scenario 6 alone, many samples, optionally profiled from after the seeding:
//   npx tsx bench/tools/reads-probe.ts [events=1000000] [samples=1000] [profile.cpuprofile]
// PROBE_RUNS=1000 PROBE_QUERY=runs: the runs page of scenario 6 instead (over that many 10-step runs).
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { chainDefinition, openConveyor, seedEventLog } from '../harness.ts'
import { inFlight } from '../stats.ts'
import { percentile } from '../stats.ts'
import { startServer } from '../../src/server.ts'

const events = Number(process.argv[2] ?? 1_000_000)
const samples = Number(process.argv[3] ?? 1000)
const profileTo = process.argv[4]
const RUNS = `query { runs(first: 100) { edges { node { id status workflow { id name } steps { stepId status } } } pageInfo { hasNextPage endCursor } } }`
const QUERY = process.env.PROBE_QUERY === 'runs' ? RUNS : process.env.PROBE_QUERY ?? `query Events($runId: ID!, $after: String) { events(runId: $runId, after: $after, first: 100) { edges { cursor node { seq type stepId at payload } } pageInfo { hasNextPage endCursor } } }`

const bench = openConveyor()
const { orchestrator } = bench
const big = await seedEventLog(orchestrator, events)
const runs = Number(process.env.PROBE_RUNS ?? 0)
if (runs > 0) {
  const chain = await orchestrator.createWorkflow('seeded', chainDefinition(10, 'control', 'noop'))
  await inFlight(Array.from({ length: runs }), 100, () => orchestrator.executeWorkflow(chain))
}
const server = await startServer({ orchestrator, host: '127.0.0.1', port: 0 })
const post = async () => {
  const res = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query: QUERY, variables: { runId: big.runId, after: null } }),
  })
  const body = (await res.json()) as { data?: { events: { edges: unknown[] } } }
  if (!process.env.PROBE_QUERY && body.data?.events.edges.length !== 100) throw new Error(JSON.stringify(body))
}
for (let i = 0; i < 50; i++) await post()
const session = new Session()
if (profileTo) {
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
}
const times: number[] = []
const cpu = process.cpuUsage()
for (let i = 0; i < samples; i++) {
  const s = performance.now()
  await post()
  times.push(performance.now() - s)
}
const c = process.cpuUsage(cpu)
if (profileTo) {
  const { profile } = await session.post('Profiler.stop')
  writeFileSync(profileTo, JSON.stringify(profile))
}
console.log(JSON.stringify({ p50: percentile(times, 50), p99: percentile(times, 99), cpuPerRequestMs: (c.user + c.system) / samples / 1000 }))
await server.close()
await bench.done()
