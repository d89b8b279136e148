// `npm run bench [-- --quick] [--repeat N] [--only chains,fanout,...] [--no-peers] [--no-write] [--json FILE]`
// `npm run bench -- --only durable [--peers conveyor,bullmq-aof,dbos,restate] [--workloads w1,w2,w3,w4] [--repeat N] [--quick]`
//   the durable group (bench/durable/): Conveyor in both durability modes against BullMQ on its own AOF
//   redis-server, DBOS Transact on PostgreSQL and Restate, each at a stated durability.
//
// Conveyor against its peers in one process on one machine: BullMQ on the local Redis, the
// one-transaction-per-transition SQLite ceiling, and the in-memory no-durability bound. Prints one
// table (medians over --repeat rounds) and writes it, the command and the machine to BENCHMARKS.md.
import { cpus, totalmem, loadavg, release } from 'node:os'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'
import {
  conveyorChains, conveyorDiamonds, conveyorDispatchLight, conveyorFanOut, conveyorReads, conveyorSubscriptions, DIAMOND_WIDTH,
  type Correctness,
} from './harness.ts'
import { bullChains, bullFanOut, redisReachable } from './peers/bullmq.ts'
import { sqliteCeiling } from './peers/sqlite-ceiling.ts'
import { memoryChains, memoryDiamonds, memoryFanOut } from './peers/memory.ts'
import { median, now } from './stats.ts'
import { buildTable, checkTargets, renderMarkdown, renderText, type Metrics } from './report.ts'
import { parseSystems, parseWorkloads, renderDurableMarkdown, renderDurableText, runDurable, SYSTEM_NAMES, type SystemName } from './durable/run.ts'
import { WORKLOADS, type Workload } from './durable/workloads.ts'

export const SCENARIOS = ['chains', 'fanout', 'diamonds', 'dispatch', 'subscriptions', 'reads'] as const
export type ScenarioName = (typeof SCENARIOS)[number]
/** Groups chosen with --only besides the scenarios: `durable` (not part of a plain `npm run bench`). */
const GROUPS = ['durable'] as const

export interface Sizes {
  chains: { runs: number; steps: number; concurrency: number }
  fanout: { steps: number }
  diamonds: { runs: number; concurrency: number }
  dispatch: { runs: number; steps: number }
  subscriptions: { clients: number; steps: number }
  reads: { runs: number; events: number; durationMs: number; concurrency: number }
}

export const FULL: Sizes = {
  chains: { runs: 1000, steps: 10, concurrency: 200 },
  fanout: { steps: 10_000 },
  diamonds: { runs: 500, concurrency: 100 },
  dispatch: { runs: 50, steps: 10 },
  subscriptions: { clients: 1000, steps: 1000 },
  reads: { runs: 1000, events: 1_000_000, durationMs: 5000, concurrency: 8 },
}

export const QUICK: Sizes = {
  chains: { runs: 400, steps: 10, concurrency: 200 },
  fanout: { steps: 10_000 },
  diamonds: { runs: 200, concurrency: 100 },
  dispatch: { runs: 20, steps: 10 },
  subscriptions: { clients: 200, steps: 200 },
  reads: { runs: 200, events: 100_000, durationMs: 2000, concurrency: 8 },
}

interface Options {
  quick: boolean
  repeat: number
  only: ScenarioName[]
  peers: boolean
  write: boolean
  json?: string
  durable: boolean
  /** The durable group's systems (--peers) and workloads (--workloads). */
  systems: SystemName[]
  workloads: Workload[]
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, repeat: 1, only: [...SCENARIOS], peers: true, write: true, durable: false, systems: [...SYSTEM_NAMES], workloads: [...WORKLOADS] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--quick') o.quick = true
    else if (a === '--repeat') o.repeat = Math.max(1, Number(argv[++i]))
    else if (a === '--only') {
      const names = argv[++i]!.split(',').map((s) => s.trim())
      for (const n of names) {
        if (!SCENARIOS.includes(n as ScenarioName) && !GROUPS.includes(n as (typeof GROUPS)[number])) throw new Error(`unknown scenario "${n}" (${[...SCENARIOS, ...GROUPS].join(', ')})`)
      }
      o.durable = names.includes('durable')
      o.only = names.filter((n) => n !== 'durable') as ScenarioName[]
    } else if (a === '--peers') o.systems = parseSystems(argv[++i]!)
    else if (a === '--workloads') o.workloads = parseWorkloads(argv[++i]!)
    else if (a === '--no-peers') o.peers = false
    else if (a === '--no-write') o.write = false
    else if (a === '--json') o.json = argv[++i]
    else throw new Error(`unknown argument ${a}`)
  }
  return o
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`)
}

function checkCorrect(what: string, c: Correctness): void {
  if (c.succeeded !== c.runs || c.eventsLost !== 0) {
    throw new Error(`${what}: ${c.succeeded}/${c.runs} runs succeeded, ${c.eventsLost} events lost`)
  }
}

/** One round of the chosen scenarios: a flat map of metric → value. */
async function round(sizes: Sizes, o: Options, redis: boolean): Promise<Metrics> {
  const m: Metrics = {}
  const peers = o.peers
  const step = async (label: string, fn: () => Promise<void> | void) => {
    const t = now()
    log(`${label}…`)
    await fn()
    log(`${label} done in ${((now() - t) / 1000).toFixed(1)} s`)
  }
  if (o.only.includes('chains')) {
    const s = sizes.chains
    await step(`chains: Conveyor ${s.runs} × ${s.steps}, ${s.concurrency} in flight`, async () => {
      const r = await conveyorChains(s)
      checkCorrect('chains', r.correctness)
      m['chains.conveyor.stepsPerSec'] = r.stepsPerSec
      m['chains.conveyor.ms'] = r.ms
      m['chains.conveyor.cpuUsPerStep'] = r.cpuUsPerStep
      m['dispatch.conveyor.saturated.p50'] = r.dispatch!.p50
      m['dispatch.conveyor.saturated.p99'] = r.dispatch!.p99
    })
    if (peers && redis) {
      await step('chains: BullMQ', async () => {
        const r = await bullChains(s)
        m['chains.bullmq.stepsPerSec'] = r.stepsPerSec
        m['dispatch.bullmq.saturated.p50'] = r.dispatch!.p50
        m['dispatch.bullmq.saturated.p99'] = r.dispatch!.p99
      })
    }
    if (peers) {
      await step('chains: SQLite 1-tx-per-transition ceiling', () => {
        const r = sqliteCeiling({ runs: s.runs, stepsPerRun: s.steps })
        m['chains.ceiling.stepsPerSec'] = r.stepsPerSec
        m['ceiling.transitionsPerSec'] = r.transitionsPerSec
      })
      await step('chains: in-memory DAG', async () => {
        const r = await memoryChains(s)
        m['chains.memory.stepsPerSec'] = r.stepsPerSec
        m['dispatch.memory.saturated.p50'] = r.dispatch!.p50
        m['dispatch.memory.saturated.p99'] = r.dispatch!.p99
      })
    }
  }
  if (o.only.includes('fanout')) {
    const s = sizes.fanout
    await step(`fan-out: Conveyor 1 × ${s.steps}`, async () => {
      const r = await conveyorFanOut(s)
      checkCorrect('fan-out', r.correctness)
      m['fanout.conveyor.ms'] = r.ms
      m['fanout.conveyor.stepsPerSec'] = r.stepsPerSec
      m['fanout.conveyor.cpuUsPerStep'] = r.cpuUsPerStep
      m['fanout.conveyor.createWorkflowMs'] = r.notes!.createWorkflowMs!
    })
    if (peers && redis) {
      await step('fan-out: BullMQ FlowProducer', async () => {
        const r = await bullFanOut(s)
        m['fanout.bullmq.ms'] = r.ms
        m['fanout.bullmq.stepsPerSec'] = r.stepsPerSec
      })
    }
    if (peers) {
      await step('fan-out: SQLite ceiling', () => {
        const r = sqliteCeiling({ runs: 1, stepsPerRun: s.steps })
        m['fanout.ceiling.ms'] = r.ms
        m['fanout.ceiling.stepsPerSec'] = r.stepsPerSec
      })
      await step('fan-out: in-memory DAG', async () => {
        const r = await memoryFanOut(s)
        m['fanout.memory.ms'] = r.ms
        m['fanout.memory.stepsPerSec'] = r.stepsPerSec
      })
    }
  }
  if (o.only.includes('diamonds')) {
    const s = sizes.diamonds
    await step(`diamonds: Conveyor ${s.runs} × (1 → ${DIAMOND_WIDTH} → 1)`, async () => {
      const r = await conveyorDiamonds(s)
      checkCorrect('diamonds', r.correctness)
      m['diamonds.conveyor.stepsPerSec'] = r.stepsPerSec
      m['diamonds.conveyor.ms'] = r.ms
      m['diamonds.conveyor.cpuUsPerStep'] = r.cpuUsPerStep
    })
    if (peers) {
      await step('diamonds: SQLite ceiling', () => {
        m['diamonds.ceiling.stepsPerSec'] = sqliteCeiling({ runs: s.runs, stepsPerRun: DIAMOND_WIDTH + 2 }).stepsPerSec
      })
      await step('diamonds: in-memory DAG', async () => {
        m['diamonds.memory.stepsPerSec'] = (await memoryDiamonds({ ...s, width: DIAMOND_WIDTH })).stepsPerSec
      })
    }
  }
  if (o.only.includes('dispatch')) {
    const s = sizes.dispatch
    await step(`dispatch (light): Conveyor ${s.runs} chains one at a time`, async () => {
      const r = await conveyorDispatchLight(s)
      checkCorrect('dispatch', r.correctness)
      m['dispatch.conveyor.light.p50'] = r.dispatch!.p50
      m['dispatch.conveyor.light.p99'] = r.dispatch!.p99
    })
    if (peers && redis) {
      await step('dispatch (light): BullMQ', async () => {
        const r = await bullChains({ ...s, concurrency: 1, workerConcurrency: 1, warmup: 50 })
        m['dispatch.bullmq.light.p50'] = r.dispatch!.p50
        m['dispatch.bullmq.light.p99'] = r.dispatch!.p99
      })
    }
    if (peers) {
      await step('dispatch (light): in-memory DAG', async () => {
        const r = await memoryChains({ ...s, concurrency: 1, warmup: 50 })
        m['dispatch.memory.light.p50'] = r.dispatch!.p50
        m['dispatch.memory.light.p99'] = r.dispatch!.p99
      })
    }
  }
  if (o.only.includes('subscriptions')) {
    const s = sizes.subscriptions
    // Per event (runEvents), then the same scenario with the opt-in batched subscription (runEventBatches): rows of their own.
    for (const batched of [false, true]) {
      const prefix = batched ? 'subsBatched' : 'subs'
      const label = batched ? 'subscriptions, batched' : 'subscriptions'
      await step(`${label}: ${s.clients} graphql-ws clients on ${batched ? 'runEventBatches of ' : ''}one run of ${s.steps} steps`, async () => {
        const r = await conveyorSubscriptions(batched ? { ...s, batched: true } : s)
        checkCorrect(batched ? 'subscriptions (batched)' : 'subscriptions', { ...r.correctness, eventsLost: 0 })
        const figures: Record<string, number> = {
          p50: r.p50, p99: r.p99, max: r.max, fromCommitP50: r.fromCommitP50, fromCommitP99: r.fromCommitP99, firstEventP99: r.firstEventP99,
          lost: r.eventsLost, disorder: r.duplicatesOrDisorder, rssGrowthMb: r.rssGrowthMb, deliveriesPerSec: r.deliveriesPerSec,
          serverCpuPerDeliveryUs: r.serverCpuPerDeliveryUs, ms: r.ms,
          ...(batched
            ? { eventsPerMessage: r.messages > 0 ? r.deliveries / r.messages : 0 }
            : { rssBaseMb: r.rssBaseMb, rssConnectedMb: r.rssConnectedMb, eventsPerClient: r.eventsPerClient }),
        }
        for (const [name, value] of Object.entries(figures)) m[`${prefix}.${name}`] = value
      })
      if (!o.peers) continue
      await step(`${label}, peer: the same clients against pre-serialised frames (bench/frames-server.ts)`, async () => {
        const r = await conveyorSubscriptions({ ...s, batched, server: 'frames' })
        checkCorrect(`${label} (frames peer)`, { ...r.correctness, eventsLost: r.eventsLost + r.duplicatesOrDisorder })
        const figures: Record<string, number> = {
          p50: r.p50, p99: r.p99, fromCommitP50: r.fromCommitP50, fromCommitP99: r.fromCommitP99,
          deliveriesPerSec: r.deliveriesPerSec, serverCpuPerDeliveryUs: r.serverCpuPerDeliveryUs,
        }
        for (const [name, value] of Object.entries(figures)) m[`${prefix}Frames.${name}`] = value
      })
    }
  }
  if (o.only.includes('reads')) {
    const s = sizes.reads
    await step(`reads: runs(first: 100) over HTTP, events first page with ${s.events} events`, async () => {
      const r = await conveyorReads(s)
      checkCorrect('reads', r.correctness)
      m['reads.requestsPerSec'] = r.requestsPerSec
      m['reads.runsPageP50'] = r.runsPageP50
      m['reads.statementsFirst10'] = r.statementsFirst10
      m['reads.statementsFirst100'] = r.statementsFirst100
      m['reads.eventsFirstPageP50'] = r.eventsFirstPageP50
      m['reads.eventsFirstPageP99'] = r.eventsFirstPageP99
      m['reads.eventsMiddlePageP50'] = r.eventsMiddlePageP50
      m['reads.eventsSqlP50'] = r.eventsSqlP50
    })
  }
  return m
}

export function machine() {
  const cpu = cpus()
  return {
    cores: cpu.length,
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: release(),
    loadAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const sizes = o.quick ? QUICK : FULL
  const mode = o.quick ? 'quick' : 'full'
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const info = machine()
  const started = now()
  if (o.only.length === 0) {
    if (o.durable) await durableGroup(o, command, info)
    return
  }
  log(`${mode} mode, ${o.repeat} round(s), scenarios: ${o.only.join(', ')}; ${info.cores} cores, ${info.memoryGb} GB, Node ${info.node}, load ${info.loadAtStart.join(' ')}`)
  const redis = o.peers ? await redisReachable() : false
  if (o.peers && !redis) {
    const bar = '!'.repeat(78)
    process.stderr.write(`\n${bar}\n!!! Redis is NOT reachable on 127.0.0.1:6379: the BullMQ peer is NOT MEASURED.\n!!! Start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no\n${bar}\n\n`)
  }
  const rounds: Metrics[] = []
  for (let i = 0; i < o.repeat; i++) {
    if (o.repeat > 1) log(`round ${i + 1} of ${o.repeat}`)
    rounds.push(await round(sizes, o, redis))
    // Keep what is measured so far even if a later round fails.
    if (o.json) writeFileSync(o.json, JSON.stringify({ partial: true, rounds }, null, 2))
  }
  const keys = new Set(rounds.flatMap((r) => Object.keys(r)))
  const medians: Metrics = {}
  for (const k of keys) medians[k] = median(rounds.map((r) => r[k] ?? Number.NaN))
  const table = buildTable(medians, { bullmq: o.peers && redis, peers: o.peers })
  const targets = checkTargets(medians)
  const elapsed = (now() - started) / 1000
  process.stdout.write(`\n${renderText(table, targets)}\n`)
  log(`finished in ${elapsed.toFixed(1)} s`)
  const result = { mode, command, date: new Date().toISOString(), machine: info, sizes, repeat: o.repeat, elapsedSec: elapsed, redis, medians, rounds }
  if (o.json) writeFileSync(o.json, JSON.stringify(result, null, 2))
  if (o.write && o.only.length === SCENARIOS.length && o.peers) {
    writeResultsSection(mode, renderMarkdown(table, targets, { command, machine: info, sizes, repeat: o.repeat, elapsedSec: elapsed, redis, date: result.date }))
    log(`BENCHMARKS.md: ${mode} results updated`)
  }
  if (o.durable) await durableGroup(o, command, info)
}

/** The durable group: prints its tables; a full run of every system and workload rewrites its BENCHMARKS.md section. */
async function durableGroup(o: Options, command: string, info: ReturnType<typeof machine>): Promise<void> {
  const started = now()
  const r = await runDurable({ quick: o.quick, repeat: o.repeat, systems: o.systems, workloads: o.workloads })
  const elapsed = (now() - started) / 1000
  process.stdout.write(`\n${renderDurableText(r, o.workloads)}\n`)
  log(`durable group finished in ${elapsed.toFixed(1)} s`)
  const date = new Date().toISOString()
  if (o.json) writeFileSync(o.json, JSON.stringify({ group: 'durable', command, date, machine: info, repeat: o.repeat, elapsedSec: elapsed, ...r }, null, 2))
  const everything = o.systems.length === SYSTEM_NAMES.length && o.workloads.length === WORKLOADS.length
  if (o.write && !o.quick && everything) {
    const head = [
      `Command: \`${command}\` — ${date}, ${o.repeat} round(s), medians; took ${elapsed.toFixed(0)} s.`,
      '',
      `Machine: ${JSON.stringify({ ...info, loadAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) })}`,
      '',
      `Sizes: \`${JSON.stringify(r.sizes)}\``,
      '',
    ].join('\n')
    writeResultsSection('durable', `${head}\n${renderDurableMarkdown(r, o.workloads)}`)
    log('BENCHMARKS.md: durable results updated')
  }
}

const BENCHMARKS = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url))

/** Replaces the text between `<!-- results:MODE -->` and `<!-- /results:MODE -->` in BENCHMARKS.md. */
function writeResultsSection(mode: string, markdown: string): void {
  const open = `<!-- results:${mode} -->`
  const close = `<!-- /results:${mode} -->`
  let text = existsSync(BENCHMARKS) ? readFileSync(BENCHMARKS, 'utf8') : '# Benchmarks\n'
  const block = `${open}\n${markdown.trim()}\n${close}`
  const a = text.indexOf(open)
  const b = text.indexOf(close)
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + close.length)
  else text = `${text.trimEnd()}\n\n${block}\n`
  writeFileSync(BENCHMARKS, text)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`[bench] FAILED: ${(error as Error)?.stack ?? error}\n`)
      process.exit(1)
    },
  )
}
