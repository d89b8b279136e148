// The durable group (`npm run bench -- --only durable`): Conveyor in both durability modes against
// peers that persist, each at a stated durability, on loopback servers the bench starts itself.
// Every system runs in a child process of its own (bench/durable/child.ts), systems interleaved
// A B C … A B C … over the rounds; the tables show medians. See BENCHMARKS.md.
import { spawn } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { median } from '../stats.ts'
import { createPgDatabase, measureFsync, SkipError, startRedisAof, startRestate, type FsyncTime } from './servers.ts'
import type { RunMessage } from './child.ts'
import { DURABLE_FULL, DURABLE_QUICK, WORKLOADS, type DurableSizes, type Metrics, type Workload } from './workloads.ts'

type Mode = 'process' | 'machine'

export const SYSTEMS = {
  'conveyor-process': { title: 'Conveyor, durability process (WAL + synchronous=NORMAL)', short: 'Conveyor process', mode: 'process' },
  'conveyor-machine': { title: 'Conveyor, durability machine (WAL + synchronous=FULL)', short: 'Conveyor machine', mode: 'machine' },
  'bullmq-aof': { title: 'BullMQ 6, next job added in the processor, Redis AOF everysec', short: 'BullMQ in-proc + AOF', mode: 'process' },
  'bullmq-aof-completed': { title: 'BullMQ 6, next job added on `completed`, Redis AOF everysec', short: 'BullMQ completed + AOF', mode: 'process' },
  'dbos-async': { title: 'DBOS Transact 5, PostgreSQL synchronous_commit = off', short: 'DBOS sync_commit off', mode: 'process' },
  'dbos-sync': { title: 'DBOS Transact 5, PostgreSQL synchronous_commit = on', short: 'DBOS sync_commit on', mode: 'machine' },
  'restate-nofsync': { title: 'Restate 1.7, WAL fsync off', short: 'Restate fsync off', mode: 'process' },
  'restate-fsync': { title: 'Restate 1.7, WAL fsync on (default)', short: 'Restate fsync on', mode: 'machine' },
} as const satisfies Record<string, { title: string; short: string; mode: Mode }>
export type SystemName = keyof typeof SYSTEMS
export const SYSTEM_NAMES = Object.keys(SYSTEMS) as SystemName[]

export interface DurableOptions {
  quick: boolean
  repeat: number
  systems: SystemName[]
  workloads: Workload[]
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`)
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ')

/** Starts what the system needs; returns the child's `server` field and a stop function. */
async function setUp(system: SystemName): Promise<{ server: RunMessage['server']; stop: () => Promise<void> }> {
  switch (system) {
    case 'conveyor-process':
    case 'conveyor-machine':
      return { server: {}, stop: async () => {} }
    case 'bullmq-aof':
    case 'bullmq-aof-completed': {
      const redis = await startRedisAof()
      return { server: { redisPort: redis.port, pid: redis.pids()[0] }, stop: redis.stop }
    }
    case 'dbos-async':
    case 'dbos-sync': {
      const db = await createPgDatabase({ synchronousCommit: system === 'dbos-sync' })
      return { server: { databaseUrl: db.url }, stop: db.drop }
    }
    case 'restate-nofsync':
    case 'restate-fsync': {
      const r = await startRestate({ fsync: system === 'restate-fsync' })
      return { server: { ingress: r.ingress, admin: r.admin, pid: r.pids()[0] }, stop: r.stop }
    }
  }
}

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))

function runChild(msg: RunMessage, timeoutMs: number): Promise<Metrics> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let settled = false
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true
        child.kill('SIGKILL')
        reject(new Error(`no result after ${timeoutMs / 1000} s`))
      }
    }, timeoutMs)
    child.on('message', (m: { type: string; metrics?: Metrics; message?: string }) => {
      if (m.type === 'ready') child.send(msg)
      else if (m.type === 'result' && !settled) {
        settled = true
        resolve(m.metrics!)
      } else if (m.type === 'error' && !settled) {
        settled = true
        reject(new Error(m.message))
      }
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (!settled) {
        settled = true
        reject(new Error(`child exited with ${code ?? signal} before its result`))
      }
    })
  })
}

export interface DurableResult {
  sizes: DurableSizes
  fsync: FsyncTime
  medians: Record<SystemName, Metrics>
  rounds: Record<string, Metrics>[]
  /** Why a system has no figures (could not start, or failed), first reason seen. */
  skipped: Partial<Record<SystemName, string>>
  loads: string[]
}

export async function runDurable(o: DurableOptions): Promise<DurableResult> {
  const sizes = o.quick ? DURABLE_QUICK : DURABLE_FULL
  log(`durable group: systems ${o.systems.join(', ')}; workloads ${o.workloads.join(', ')}; load ${load()}`)
  const fsync = await measureFsync()
  log(`disk fsync: ${fsync.ms.toFixed(2)} ms (${fsync.how})`)
  const rounds: Record<string, Metrics>[] = []
  const skipped: DurableResult['skipped'] = {}
  const loads: string[] = [load()]
  for (let round = 0; round < o.repeat; round++) {
    const r: Record<string, Metrics> = {}
    for (const system of o.systems) {
      if (skipped[system]?.startsWith('SKIPPED')) continue // cannot start here: no use trying again
      const t0 = performance.now()
      log(`round ${round + 1}/${o.repeat}: ${SYSTEMS[system].title}… (load ${load()})`)
      let setup: Awaited<ReturnType<typeof setUp>>
      try {
        setup = await setUp(system)
      } catch (error) {
        const reason = `SKIPPED: ${(error as Error).message}`
        skipped[system] = reason
        log(`!!! ${system} ${reason}`)
        if (!(error instanceof SkipError)) log(String((error as Error).stack))
        continue
      }
      try {
        const loadAtStart = loadavg()[0]!
        const m = await runChild({ type: 'run', system, sizes, workloads: o.workloads, server: setup.server }, 1_200_000)
        m['load1'] = loadAtStart
        r[system] = m
        log(`${system} done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${summary(m)}`)
      } catch (error) {
        const reason = `FAILED: ${(error as Error).message.split('\n')[0]}`
        skipped[system] ??= reason
        log(`!!! ${system} ${(error as Error).message}`)
      } finally {
        await setup.stop().catch((error) => log(`stopping ${system}'s server: ${(error as Error).message}`))
      }
    }
    rounds.push(r)
    loads.push(load())
  }
  const medians = {} as Record<SystemName, Metrics>
  for (const system of o.systems) {
    const measured = rounds.map((r) => r[system]).filter((m): m is Metrics => m !== undefined)
    if (measured.length === 0) continue
    const keys = new Set(measured.flatMap((m) => Object.keys(m)))
    medians[system] = {}
    for (const k of keys) medians[system][k] = median(measured.map((m) => m[k] ?? Number.NaN))
    medians[system]['rounds'] = measured.length
  }
  return { sizes, fsync, medians, rounds, skipped, loads }
}

function summary(m: Metrics): string {
  const parts: string[] = []
  if (m['w1.stepsPerSec'] !== undefined) parts.push(`W1 ${m['w1.stepsPerSec'].toFixed(0)} steps/s, ${m['w1.cpuUsPerStep']!.toFixed(0)} µs CPU/step`)
  if (m['w2.ms'] !== undefined) parts.push(`W2 ${m['w2.ms'].toFixed(0)} ms`)
  if (m['w3.p99'] !== undefined) parts.push(`W3 p99 ${m['w3.p99'].toFixed(2)} ms`)
  if (m['w4.p99'] !== undefined) parts.push(`W4 p99 ${m['w4.p99'].toFixed(2)} ms`)
  return parts.join('; ')
}

// ---------------------------------------------------------------- tables and targets

interface Row { workload: Workload | 'load'; metric: string; key: string; better: '↑' | '↓' | ''; digits: number; conveyorOnly?: boolean }

const ROWS: Row[] = [
  { workload: 'w1', metric: 'W1 chains: steps/s', key: 'w1.stepsPerSec', better: '↑', digits: 0 },
  { workload: 'w1', metric: 'W1 CPU per step, µs (process + servers)', key: 'w1.cpuUsPerStep', better: '↓', digits: 0 },
  { workload: 'w1', metric: 'W1 of which server processes, µs', key: 'w1.serverCpuUsPerStep', better: '↓', digits: 0 },
  { workload: 'w1', metric: 'W1 step→step p99 at 200 in flight, ms', key: 'w1.saturatedP99', better: '↓', digits: 1 },
  { workload: 'w2', metric: 'W2 fan-out: end to end, ms (Conveyor: with createWorkflow)', key: 'w2.ms', better: '↓', digits: 0 },
  { workload: 'w2', metric: 'W2 Conveyor: createWorkflow alone, ms', key: 'w2.createWorkflowMs', better: '↓', digits: 0, conveyorOnly: true },
  { workload: 'w2', metric: 'W2 Conveyor: executeWorkflow alone, ms', key: 'w2.executeMs', better: '↓', digits: 0, conveyorOnly: true },
  { workload: 'w2', metric: 'W2 CPU per step, µs (process + servers)', key: 'w2.cpuUsPerStep', better: '↓', digits: 0 },
  { workload: 'w3', metric: 'W3 step→step, light load: p50, ms', key: 'w3.p50', better: '↓', digits: 3 },
  { workload: 'w3', metric: 'W3 step→step, light load: p99, ms', key: 'w3.p99', better: '↓', digits: 3 },
  { workload: 'w4', metric: 'W4 start → first action, light load: p50, ms', key: 'w4.p50', better: '↓', digits: 3 },
  { workload: 'w4', metric: 'W4 start → first action, light load: p99, ms', key: 'w4.p99', better: '↓', digits: 3 },
  { workload: 'load', metric: 'load average (1 min) when the system started, median', key: 'load1', better: '', digits: 2 },
]

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || Number.isNaN(v)) return '—'
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** One table per durability mode: Conveyor in that mode, the peers of the same durability, Conveyor ÷ each. */
function modeTable(r: DurableResult, mode: Mode, workloads: Workload[]): string[][] | undefined {
  const conveyor: SystemName = mode === 'process' ? 'conveyor-process' : 'conveyor-machine'
  const peers = SYSTEM_NAMES.filter((s) => SYSTEMS[s].mode === mode && s !== conveyor && (r.medians[s] || r.skipped[s]))
  const c = r.medians[conveyor]
  if (!c && !r.skipped[conveyor] && peers.length === 0) return undefined
  const header = ['metric', SYSTEMS[conveyor].short, ...peers.map((p) => SYSTEMS[p].short), ...peers.map((p) => `÷ ${SYSTEMS[p].short}`)]
  const rows = [header]
  for (const row of ROWS) {
    if (row.workload !== 'load' && !workloads.includes(row.workload)) continue
    const cv = c?.[row.key]
    rows.push([
      `${row.metric} ${row.better}`.trim(),
      fmt(cv, row.digits),
      ...peers.map((p) => (r.medians[p] ? (row.conveyorOnly ? '' : fmt(r.medians[p][row.key], row.digits)) : 'not measured')),
      ...peers.map((p) => {
        const pv = r.medians[p]?.[row.key]
        if (row.conveyorOnly || row.workload === 'load' || row.key.includes('serverCpu') || cv === undefined || pv === undefined || pv === 0 || Number.isNaN(pv)) return ''
        const ratio = cv / pv
        return fmt(ratio, ratio < 0.1 ? 4 : 2)
      }),
    ])
  }
  return rows
}

export interface DurableTarget { target: string; value: string; met: boolean | undefined }

export function durableTargets(r: DurableResult): DurableTarget[] {
  const out: DurableTarget[] = []
  const m = (s: SystemName, k: string) => r.medians[s]?.[k]
  const add = (target: string, value: number | undefined, met: (v: number) => boolean, show: (v: number) => string) =>
    out.push({ target, value: value === undefined || Number.isNaN(value) ? 'not measured' : show(value), met: value === undefined || Number.isNaN(value) ? undefined : met(value) })
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b !== 0 ? a / b : undefined)
  const x = (v: number) => `${fmt(v, 2)} ×`
  add('W1 process ≥ 2 × BullMQ in-processor + AOF', ratio(m('conveyor-process', 'w1.stepsPerSec'), m('bullmq-aof', 'w1.stepsPerSec')), (v) => v >= 2, x)
  add('W1 machine ≥ 5 × Restate fsync on', ratio(m('conveyor-machine', 'w1.stepsPerSec'), m('restate-fsync', 'w1.stepsPerSec')), (v) => v >= 5, x)
  add('W1 machine ≥ 10 × DBOS synchronous_commit on', ratio(m('conveyor-machine', 'w1.stepsPerSec'), m('dbos-sync', 'w1.stepsPerSec')), (v) => v >= 10, x)
  for (const mode of ['process', 'machine'] as const) {
    const c: SystemName = `conveyor-${mode}`
    add(`W2 ${mode}: ${r.sizes.w2.steps.toLocaleString("en-US")} steps < 1 s including createWorkflow`, m(c, 'w2.ms'), (v) => v < 1000, (v) => `${fmt(v, 0)} ms`)
    for (const p of SYSTEM_NAMES.filter((s) => SYSTEMS[s].mode === mode && !s.startsWith('conveyor') && !s.endsWith('-completed'))) {
      add(`W2 ${mode} ≥ 5 × ${SYSTEMS[p].short}`, ratio(m(p, 'w2.ms'), m(c, 'w2.ms')), (v) => v >= 5, x)
    }
  }
  for (const w of ['w3', 'w4'] as const) {
    const name = w === 'w3' ? 'W3 step→step' : 'W4 start'
    add(`${name} p99 < 2 ms, process`, m('conveyor-process', `${w}.p99`), (v) => v < 2, (v) => `${fmt(v, 3)} ms`)
    const limit = 2 + r.fsync.ms
    add(`${name} p99 within one fsync, machine (< 2 ms + ${fmt(r.fsync.ms, 2)} ms)`, m('conveyor-machine', `${w}.p99`), (v) => v < limit, (v) => `${fmt(v, 3)} ms`)
  }
  for (const mode of ['process', 'machine'] as const) {
    add(`W1 CPU per step ≤ 40 µs, ${mode}`, m(`conveyor-${mode}`, 'w1.cpuUsPerStep'), (v) => v <= 40, (v) => `${fmt(v, 0)} µs`)
  }
  return out
}

function notes(r: DurableResult): string[] {
  const lines: string[] = []
  lines.push(`Disk fsync: ${fmt(r.fsync.ms, 2)} ms per 8 kB write + fdatasync (${r.fsync.how}).`)
  lines.push(`Load averages (1, 5, 15 min) at the start and after each round: ${r.loads.join(' → ')}.`)
  for (const [s, reason] of Object.entries(r.skipped)) lines.push(`${SYSTEMS[s as SystemName].title}: ${reason}`)
  return lines
}

export function renderDurableText(r: DurableResult, workloads: Workload[]): string {
  const out: string[] = []
  for (const mode of ['process', 'machine'] as const) {
    const t = modeTable(r, mode, workloads)
    if (!t) continue
    out.push(`Durability "${mode}" (${mode === 'process' ? 'survives a crash of the process' : 'survives a crash of the machine'}):`)
    const widths = t[0]!.map((_, i) => Math.max(...t.map((row) => row[i]!.length)))
    const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
    out.push(line(t[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...t.slice(1).map(line), '')
  }
  out.push(...notes(r), '', 'Targets (write-ahead issue):')
  for (const t of durableTargets(r)) out.push(`  ${t.met === undefined ? '[ ?? ]' : t.met ? '[ met ]' : '[MISSED]'} ${t.target}: ${t.value}`)
  return out.join('\n')
}

export function renderDurableMarkdown(r: DurableResult, workloads: Workload[]): string {
  const out: string[] = []
  for (const mode of ['process', 'machine'] as const) {
    const t = modeTable(r, mode, workloads)
    if (!t) continue
    out.push(`**Durability "${mode}"** (${mode === 'process' ? 'survives a crash of the process' : 'survives a crash of the machine'}):`, '')
    out.push(`| ${t[0]!.join(' | ')} |`, `|${t[0]!.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`)
    for (const row of t.slice(1)) out.push(`| ${row.join(' | ')} |`)
    out.push('')
  }
  for (const n of notes(r)) out.push(`- ${n}`)
  out.push('', '| target | value | met |', '| --- | ---: | --- |')
  for (const t of durableTargets(r)) out.push(`| ${t.target} | ${t.value} | ${t.met === undefined ? 'not measured' : t.met ? 'yes' : '**no**'} |`)
  return out.join('\n')
}

export function parseSystems(list: string): SystemName[] {
  const out: SystemName[] = []
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    // Shorthands: `conveyor`, `bullmq`, `dbos`, `restate` = both of that system's configurations.
    const exact = SYSTEM_NAMES.filter((s) => s === raw)
    const matches = exact.length > 0 ? exact : SYSTEM_NAMES.filter((s) => s.startsWith(`${raw}-`))
    if (matches.length === 0) throw new Error(`unknown system "${raw}" (${SYSTEM_NAMES.join(', ')}, or conveyor, bullmq, dbos, restate)`)
    for (const s of matches) if (!out.includes(s)) out.push(s)
  }
  return out
}

export function parseWorkloads(list: string): Workload[] {
  const out = list.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
  for (const w of out) if (!WORKLOADS.includes(w as Workload)) throw new Error(`unknown workload "${w}" (${WORKLOADS.join(', ')})`)
  return out as Workload[]
}
