// Conveyor's side of the benchmarks: every scenario on a durable SQLite file (WAL +
// synchronous=NORMAL, in a temp dir, never :memory:). Each function returns its measurements and
// what correctness it checked (runs SUCCEEDED, events committed = events published), so
// test/bench-smoke.test.ts can run them at a tiny size.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { defineFactory, orchestratorFromConfig, startServer, type Durability, type ProjectOrchestrator, type RunningServer } from '../src/index.ts'
import { Timeline } from './timeline.ts'
import { CHAIN_WARMUP_RUNS, FAN_OUT_WARMUP_STEPS, inFlight, latencySummary, mb, median, now, percentile } from './stats.ts'

export interface Correctness {
  runs: number
  succeeded: number
  /** Events committed to SQLite that never reached the event bus (must be 0). */
  eventsLost: number
}

export interface ThroughputResult {
  steps: number
  ms: number
  stepsPerSec: number
  /** Process CPU time (user + system) per step during the measured window, µs: steadier than wall time on a busy machine. */
  cpuUsPerStep: number
  correctness: Correctness
  dispatch?: { p50: number; p99: number; n: number }
  /** Start latency: the `executeWorkflow` call → the run's first action called (ms). */
  start?: { p50: number; p99: number; n: number }
  /** Anything worth printing beside the figure. */
  notes?: Record<string, number>
}

/**
 * How durable a commit is (the engine's `durability` option): 'process' = WAL + synchronous=NORMAL
 * (survives a crash of the process; the default), 'machine' = WAL + synchronous=FULL (survives a
 * crash of the machine: every commit waits for an fsync).
 */
export type { Durability }

/** A fresh orchestrator on a durable file in a temp dir; `done()` closes it and removes the dir. */
export function openConveyor(options: { maxWorkers?: number; maxParallel?: number; durability?: Durability } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-'))
  const database = join(dir, 'bench.db')
  const durability = options.durability ?? 'process'
  const orchestrator = orchestratorFromConfig({
    database,
    durability,
    coordinator: options.maxWorkers ? { maxWorkers: options.maxWorkers } : undefined,
    workflow: options.maxParallel ? { maxParallel: options.maxParallel } : undefined,
  })
  const sqlite = orchestrator.context.conn.sqlite
  const journal = sqlite.pragma('journal_mode', { simple: true })
  const wanted = durability === 'machine' ? 2 : 1 // FULL : NORMAL
  const synchronous = sqlite.pragma('synchronous', { simple: true })
  if (journal !== 'wal' || synchronous !== wanted) throw new Error(`bench database is not WAL + ${wanted === 2 ? 'FULL' : 'NORMAL'} (${journal}, ${synchronous})`)
  let published = 0
  const unlisten = orchestrator.context.bus.listen((events) => {
    published += events.length
  })
  return {
    orchestrator,
    database,
    durability,
    /** Events committed but not published so far (must be 0 once the journal is idle). */
    eventsLost(): number {
      const row = orchestrator.context.conn.sqlite.prepare('SELECT count(*) AS n FROM events').get() as { n: number }
      return row.n - published
    },
    async done(): Promise<void> {
      unlisten()
      await orchestrator.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** `bench.tick`: a no-op (same input schema as control.noop) that records when it was called and returned. */
export function timedFactory(timeline: Timeline) {
  return defineFactory({
    name: 'bench',
    actions: {
      tick: {
        input: z.record(z.string(), z.unknown()),
        run: (params, ctx) => {
          const i = Number(params.i)
          timeline.call(ctx.runId, i)
          timeline.ret(ctx.runId, i)
          return params
        },
      },
    },
  })
}

export function chainDefinition(steps: number, factory = 'bench', action = 'tick') {
  return { steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i}`, factory, action, params: { i } })), parallel: false }
}

/** Scenario 1 (and 4 at saturation): `runs` chains of `steps` sequential no-op steps, `concurrency` runs in flight. */
export async function conveyorChains(o: { runs: number; steps: number; concurrency: number; warmup?: number; durability?: Durability }): Promise<ThroughputResult> {
  const bench = openConveyor({ durability: o.durability })
  try {
    const timeline = new Timeline()
    bench.orchestrator.registerFactory('bench', timedFactory(timeline))
    const workflowId = await bench.orchestrator.createWorkflow('chain', chainDefinition(o.steps))
    const warm = o.warmup ?? CHAIN_WARMUP_RUNS
    await inFlight(Array.from({ length: warm }), Math.min(o.concurrency, warm), () => bench.orchestrator.executeWorkflow(workflowId))
    timeline.clear()
    const runIds: string[] = []
    const startLatencies: number[] = []
    let succeeded = 0
    const cpu0 = process.cpuUsage()
    const t0 = now()
    await inFlight(Array.from({ length: o.runs }), o.concurrency, async () => {
      const called = now()
      const result = await bench.orchestrator.executeWorkflow(workflowId)
      runIds.push(result.runId)
      const first = timeline.callAt(result.runId, 0)
      if (first !== undefined) startLatencies.push(first - called)
      if (result.status === 'SUCCEEDED' && Object.keys(result.steps).length === o.steps) succeeded++
    })
    const ms = now() - t0
    const cpu = cpuUs(cpu0)
    const steps = o.runs * o.steps
    const d = latencySummary(timeline.chainLatencies(runIds, o.steps))
    const s = latencySummary(startLatencies)
    return {
      steps, ms, stepsPerSec: (steps / ms) * 1000, cpuUsPerStep: cpu / steps,
      correctness: { runs: o.runs, succeeded, eventsLost: bench.eventsLost() },
      dispatch: { p50: d.p50, p99: d.p99, n: d.n },
      start: { p50: s.p50, p99: s.p99, n: s.n },
      notes: { commits: bench.orchestrator.context.journal.commits },
    }
  } finally {
    await bench.done()
  }
}

/** Scenario 4 at light load: one chain at a time. */
export async function conveyorDispatchLight(o: { runs: number; steps: number; warmup?: number; durability?: Durability }): Promise<ThroughputResult> {
  return conveyorChains({ runs: o.runs, steps: o.steps, concurrency: 1, warmup: o.warmup ?? 50, durability: o.durability })
}

/** Scenario 2: one run of `steps` parallel no-op steps (maxParallel = steps, maxWorkers high). */
export async function conveyorFanOut(o: { steps: number; warmupSteps?: number; durability?: Durability }): Promise<ThroughputResult> {
  const bench = openConveyor({ maxWorkers: 1_000_000, durability: o.durability })
  try {
    // Warm the code paths on a smaller fan-out first (the BullMQ flow warms up the same way).
    const small = await bench.orchestrator.createWorkflow('fan-warm', fanOutDefinition(Math.min(o.warmupSteps ?? FAN_OUT_WARMUP_STEPS, o.steps)))
    await bench.orchestrator.executeWorkflow(small)
    const c0 = now()
    const workflowId = await bench.orchestrator.createWorkflow('fan-out', fanOutDefinition(o.steps))
    const createMs = now() - c0
    const cpu0 = process.cpuUsage()
    const t0 = now()
    const result = await bench.orchestrator.executeWorkflow(workflowId)
    const ms = now() - t0
    const cpu = cpuUs(cpu0)
    const ok = result.status === 'SUCCEEDED' && Object.values(result.steps).filter((s) => s.status === 'SUCCEEDED').length === o.steps
    return {
      steps: o.steps, ms, stepsPerSec: (o.steps / ms) * 1000, cpuUsPerStep: cpu / o.steps,
      correctness: { runs: 1, succeeded: ok ? 1 : 0, eventsLost: bench.eventsLost() },
      notes: { createWorkflowMs: createMs, commits: bench.orchestrator.context.journal.commits },
    }
  } finally {
    await bench.done()
  }
}

function fanOutDefinition(steps: number) {
  return {
    steps: Array.from({ length: steps }, (_, i) => ({ id: `p${i}`, factory: 'control', action: 'noop', params: { i } })),
    parallel: true,
    maxParallel: steps,
  }
}

export const DIAMOND_WIDTH = 8

/** 1 → 8 → 1, a `when` and a `{{ }}` param on every step. */
export function diamondDefinition() {
  const middle = Array.from({ length: DIAMOND_WIDTH }, (_, k) => ({
    id: `b${k}`, factory: 'control', action: 'noop', dependsOn: ['root'],
    when: '{{ steps.root.status = "SUCCEEDED" }}',
    params: { v: `{{ steps.root.output.n + ${k} }}` },
  }))
  return {
    steps: [
      { id: 'root', factory: 'control', action: 'noop', when: '{{ input.go }}', params: { n: '{{ input.n }}' } },
      ...middle,
      {
        id: 'join', factory: 'control', action: 'noop', dependsOn: middle.map((m) => m.id),
        when: `{{ ${middle.map((m) => `steps.${m.id}.status = "SUCCEEDED"`).join(' and ')} }}`,
        params: { sum: `{{ ${middle.map((m) => `steps.${m.id}.output.v`).join(' + ')} }}` },
      },
    ],
    parallel: true,
  }
}

/** Scenario 3: `runs` diamonds, `concurrency` in flight; checks the join's sum. */
export async function conveyorDiamonds(o: { runs: number; concurrency: number }): Promise<ThroughputResult> {
  const bench = openConveyor()
  try {
    const workflowId = await bench.orchestrator.createWorkflow('diamond', diamondDefinition())
    await inFlight(Array.from({ length: Math.min(20, o.runs) }), 10, (_, i) => bench.orchestrator.executeWorkflow(workflowId, { go: true, n: i }))
    let succeeded = 0
    const cpu0 = process.cpuUsage()
    const t0 = now()
    await inFlight(Array.from({ length: o.runs }), o.concurrency, async (_, i) => {
      const result = await bench.orchestrator.executeWorkflow(workflowId, { go: true, n: i })
      const expected = DIAMOND_WIDTH * i + (DIAMOND_WIDTH * (DIAMOND_WIDTH - 1)) / 2
      const sum = (result.steps.join?.output as { sum?: number } | null)?.sum
      if (result.status === 'SUCCEEDED' && sum === expected && Object.values(result.steps).every((s) => s.status === 'SUCCEEDED')) succeeded++
    })
    const ms = now() - t0
    const cpu = cpuUs(cpu0)
    const steps = o.runs * (DIAMOND_WIDTH + 2)
    return {
      steps, ms, stepsPerSec: (steps / ms) * 1000, cpuUsPerStep: cpu / steps,
      correctness: { runs: o.runs, succeeded, eventsLost: bench.eventsLost() },
    }
  } finally {
    await bench.done()
  }
}

// ---------------------------------------------------------------- scenario 5: subscriptions

export interface SubscriptionResult {
  clients: number
  steps: number
  /** Events of the run after the subscribers' cursor, each expected by every client. */
  eventsPerClient: number
  /** Events delivered (one per client per event, batched or not). */
  deliveries: number
  /** WebSocket messages the clients received: = deliveries per event, fewer when batched. */
  messages: number
  p50: number
  p99: number
  max: number
  /** Client receive time − the time the server published the event's commit (the part the server's delivery controls). */
  fromCommitP50: number
  fromCommitP99: number
  /** Latency of the first event after the release, over all clients: one event fanned out to N. */
  firstEventP99: number
  eventsLost: number
  duplicatesOrDisorder: number
  rssBaseMb: number
  rssPeakMb: number
  rssGrowthMb: number
  /** Server RSS once every client is connected and subscribed, before the run is released, − base. */
  rssConnectedMb: number
  /** Deliveries per second, release to the last client's completion. */
  deliveriesPerSec: number
  /** Server process CPU (user + system) per delivery, release to the last client's completion: less noisy than latency on a shared machine. */
  serverCpuPerDeliveryUs: number
  ms: number
  correctness: Correctness
}

const CLIENT_SCRIPT = fileURLToPath(new URL('./sub-clients.ts', import.meta.url))
const SERVER_SCRIPTS = {
  conveyor: fileURLToPath(new URL('./sub-server.ts', import.meta.url)),
  frames: fileURLToPath(new URL('./frames-server.ts', import.meta.url)),
}

/**
 * The server (bench/sub-server.ts) and `clients` graphql-ws clients (bench/sub-clients.ts) each run
 * in a child process of their own, so the server's RSS is measured from a fresh process and the
 * clients' CPU is not the bench's. The clients subscribe to one run of `steps` steps whose first
 * step waits for a signal; once every subscription is live on the server the run is released.
 * Latency = client receive time − the event's `at`. `batched`: the clients use `runEventBatches`
 * (several events per message) instead of `runEvents`; latency is still per event. `server: 'frames'`:
 * the peer bench/frames-server.ts instead of Conveyor (the same clients against pre-serialised frames).
 */
export async function conveyorSubscriptions(o: { clients: number; steps: number; timeoutMs?: number; batched?: boolean; server?: keyof typeof SERVER_SCRIPTS }): Promise<SubscriptionResult> {
  const spawnChild = (script: string, args: string[] = [], nodeArgs: string[] = []) =>
    spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  // BENCH_SERVER_NODE_ARGS: extra node flags for the server child (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const serverProcess = spawnChild(SERVER_SCRIPTS[o.server ?? 'conveyor'], [String(o.steps)], process.env.BENCH_SERVER_NODE_ARGS?.split(/\s+/).filter(Boolean))
  let clientProcess: ChildProcess | undefined
  try {
    const server = messageQueue(serverProcess)
    const ready = (await server.next('ready', 120_000)) as { url: string; runId: string; cursor: number }
    clientProcess = spawnChild(CLIENT_SCRIPT)
    const clients = messageQueue(clientProcess)
    clientProcess.send({ type: 'start', url: ready.url.replace(/^http/, 'ws'), runId: ready.runId, after: String(ready.cursor), clients: o.clients, batched: o.batched ?? false })
    serverProcess.send({ type: 'wait-live', clients: o.clients })
    await server.next('live', 180_000)
    const t0 = now()
    serverProcess.send({ type: 'release' })
    const finished = (await server.next('finished', o.timeoutMs ?? 900_000)) as { status: string }
    await clients.next('completed', o.timeoutMs ?? 900_000)
    const ms = now() - t0
    serverProcess.send({ type: 'stop', cursor: ready.cursor })
    const stopped = (await server.next('stopped', 60_000)) as { rssBase: number; rssPeak: number; rssConnected: number; expected: number[]; eventsLost: number; serverCpuUs: number; committedAt: [number, number][] }
    clientProcess.send({ type: 'expected', seqs: stopped.expected, committedAt: stopped.committedAt })
    const report = (await clients.next('report', 60_000)) as unknown as ClientReport
    return {
      clients: o.clients, steps: o.steps, eventsPerClient: stopped.expected.length, deliveries: report.deliveries, messages: report.messages,
      p50: report.p50, p99: report.p99, max: report.max, firstEventP99: report.firstEventP99,
      fromCommitP50: report.fromCommitP50, fromCommitP99: report.fromCommitP99,
      eventsLost: report.lost, duplicatesOrDisorder: report.disorder,
      rssBaseMb: mb(stopped.rssBase), rssPeakMb: mb(stopped.rssPeak), rssGrowthMb: mb(stopped.rssPeak - stopped.rssBase), rssConnectedMb: mb(stopped.rssConnected - stopped.rssBase),
      deliveriesPerSec: (report.deliveries / ms) * 1000, ms,
      serverCpuPerDeliveryUs: report.deliveries > 0 ? stopped.serverCpuUs / report.deliveries : 0,
      correctness: {
        runs: 1, succeeded: finished.status === 'SUCCEEDED' ? 1 : 0,
        eventsLost: stopped.eventsLost + report.lost,
      },
    }
  } finally {
    for (const child of [clientProcess, serverProcess]) {
      if (!child || child.exitCode !== null) continue
      child.send?.({ type: 'exit' })
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)])
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  }
}

export interface ClientReport {
  type: 'report'
  deliveries: number
  messages: number
  p50: number
  p99: number
  max: number
  firstEventP99: number
  fromCommitP50: number
  fromCommitP99: number
  lost: number
  disorder: number
}

function messageQueue(child: ChildProcess) {
  const received: Record<string, unknown>[] = []
  const waiting: { type: string; resolve: (m: Record<string, unknown>) => void }[] = []
  let exited: Error | undefined
  child.on('message', (m: Record<string, unknown>) => {
    if (m.type === 'error') {
      exited = new Error(`subscription clients failed: ${String(m.message)}`)
      for (const w of waiting.splice(0)) w.resolve({ type: 'error' })
      return
    }
    const i = waiting.findIndex((w) => w.type === m.type)
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(m)
    else received.push(m)
  })
  child.on('exit', (code) => {
    exited ??= new Error(`subscription clients exited with ${code}`)
    for (const w of waiting.splice(0)) w.resolve({ type: 'error' })
  })
  return {
    async next(type: string, timeoutMs: number): Promise<Record<string, unknown>> {
      const i = received.findIndex((m) => m.type === type)
      if (i >= 0) return received.splice(i, 1)[0]!
      if (exited) throw exited
      let timer: NodeJS.Timeout | undefined
      const m = await Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiting.push({ type, resolve })),
        new Promise<Record<string, unknown>>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no "${type}" from the subscription clients after ${timeoutMs} ms`)), timeoutMs)
        }),
      ]).finally(() => clearTimeout(timer))
      if (m.type === 'error') throw exited ?? new Error('subscription clients failed')
      return m
    },
  }
}

// ---------------------------------------------------------------- scenario 6: reads

export interface ReadsResult {
  runsSeeded: number
  requestsPerSec: number
  runsPageP50: number
  statementsFirst10: number
  statementsFirst100: number
  eventsSeeded: number
  eventsFirstPageP50: number
  eventsFirstPageP99: number
  eventsMiddlePageP50: number
  eventsSqlP50: number
  correctness: Correctness
}

const RUNS_QUERY = `query Runs($first: Int!) { runs(first: $first) { edges { node { id status workflow { id name } steps { stepId status } } } pageInfo { hasNextPage endCursor } } }`
const EVENTS_QUERY = `query Events($runId: ID!, $after: String) { events(runId: $runId, after: $after, first: 100) { edges { cursor node { seq type stepId at payload } } pageInfo { hasNextPage endCursor } } }`

/**
 * Scenario 6: `runs(first: 100)` with workflow and steps over HTTP (requests/s with `concurrency`
 * clients for `durationMs`; SQL statements per request at first 10 and 100), then the first page
 * of `events(runId, after)` for a run with `events` events seeded in one bulk transaction.
 */
export async function conveyorReads(o: { runs: number; events: number; durationMs: number; concurrency: number; samples?: number }): Promise<ReadsResult> {
  const bench = openConveyor()
  let server: RunningServer | undefined
  try {
    const { orchestrator } = bench
    const workflowId = await orchestrator.createWorkflow('seeded', chainDefinition(10, 'control', 'noop'))
    let succeeded = 0
    await inFlight(Array.from({ length: o.runs }), 100, async () => {
      if ((await orchestrator.executeWorkflow(workflowId)).status === 'SUCCEEDED') succeeded++
    })
    const eventsLost = bench.eventsLost()
    const big = await seedEventLog(orchestrator, o.events)
    const middle = (orchestrator.context.conn.sqlite.prepare('SELECT seq FROM events WHERE run_id = ? ORDER BY seq LIMIT 1 OFFSET ?').get(big.runId, Math.floor(o.events / 2)) as { seq: number }).seq
    const runCount = o.runs + 1
    server = await startServer({ orchestrator, host: '127.0.0.1', port: 0 })
    const url = server.url
    const post = async (query: string, variables: Record<string, unknown>) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query, variables }),
      })
      const body = (await res.json()) as { data?: Record<string, { edges: unknown[] }>; errors?: unknown[] }
      if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`)
      return body.data!
    }
    const statements = async (first: number) => {
      await post(RUNS_QUERY, { first })
      const before = orchestrator.catalog.statementCount
      const data = await post(RUNS_QUERY, { first })
      if (data.runs!.edges.length !== Math.min(first, runCount)) throw new Error(`runs page has ${data.runs!.edges.length} edges`)
      return orchestrator.catalog.statementCount - before
    }
    const statementsFirst10 = await statements(10)
    const statementsFirst100 = await statements(100)
    // Throughput: `concurrency` clients in a loop for durationMs.
    const pageTimes: number[] = []
    let requests = 0
    const stopAt = now() + o.durationMs
    const t0 = now()
    await Promise.all(Array.from({ length: o.concurrency }, async () => {
      while (now() < stopAt) {
        const s = now()
        await post(RUNS_QUERY, { first: 100 })
        pageTimes.push(now() - s)
        requests++
      }
    }))
    const requestsPerSec = (requests / (now() - t0)) * 1000

    const samples = o.samples ?? 500
    const firstPage: number[] = []
    const middlePage: number[] = []
    const sqlTimes: number[] = []
    for (let i = 0; i < samples; i++) {
      let s = now()
      const first = await post(EVENTS_QUERY, { runId: big.runId, after: null })
      firstPage.push(now() - s)
      if (first.events!.edges.length !== 100) throw new Error('events first page is not 100 events')
      s = now()
      await post(EVENTS_QUERY, { runId: big.runId, after: String(middle) })
      middlePage.push(now() - s)
      s = now()
      orchestrator.catalog.events({ runId: big.runId, afterSeq: 0, limit: 101 })
      sqlTimes.push(now() - s)
    }
    return {
      runsSeeded: o.runs, requestsPerSec, runsPageP50: median(pageTimes), statementsFirst10, statementsFirst100,
      eventsSeeded: o.events,
      eventsFirstPageP50: percentile(firstPage, 50), eventsFirstPageP99: percentile(firstPage, 99),
      eventsMiddlePageP50: percentile(middlePage, 50), eventsSqlP50: percentile(sqlTimes, 50),
      correctness: { runs: o.runs, succeeded, eventsLost },
    }
  } finally {
    await server?.close()
    await bench.done()
  }
}

/**
 * A run of one step whose log is then padded to `events` events, bulk-inserted in one transaction
 * (before any server starts: the insert blocks the event loop for seconds, long enough to break
 * idle keep-alive connections).
 */
export async function seedEventLog(orchestrator: ProjectOrchestrator, events: number): Promise<{ runId: string }> {
  const one = await orchestrator.createWorkflow('big-log', { steps: [{ id: 'only', factory: 'control', action: 'noop', params: {} }] })
  const big = await orchestrator.executeWorkflow(one)
  const sqlite = orchestrator.context.conn.sqlite
  const insert = sqlite.prepare('INSERT INTO events (run_id, workflow_id, step_id, attempt, type, status, at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  const at = Date.now()
  sqlite.transaction(() => {
    for (let i = 0; i < events; i++) insert.run(big.runId, one, `s${i % 1000}`, 1, 'STEP_LOG', 'RUNNING', at, `{"message":"log line ${i}"}`)
  })()
  return { runId: big.runId }
}

/** CPU time (user + system, µs) this process used since `since`. */
export function cpuUs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since)
  return d.user + d.system
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export type { ProjectOrchestrator }
