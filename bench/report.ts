// The one table (scenario, Conveyor, each peer, Conveyor ÷ peer) and the targets of the issue.

export type Metrics = Record<string, number>

export const PEERS = ['bullmq', 'ceiling', 'memory', 'frames'] as const
export type Peer = (typeof PEERS)[number]
export const PEER_TITLES: Record<Peer, string> = {
  bullmq: 'BullMQ (Redis)',
  ceiling: 'SQLite 1 tx/transition',
  memory: 'in-memory DAG',
  frames: 'frames only (no server work)',
}

interface RowSpec {
  scenario: string
  metric: string
  unit: string
  /** Which way is better: a higher or a lower value. */
  better: 'higher' | 'lower'
  conveyor: string
  peers?: Partial<Record<Peer, string>>
  digits?: number
}

const ROWS: RowSpec[] = [
  { scenario: '1 chains', metric: 'steps/s', unit: '/s', better: 'higher', conveyor: 'chains.conveyor.stepsPerSec', peers: { bullmq: 'chains.bullmq.stepsPerSec', ceiling: 'chains.ceiling.stepsPerSec', memory: 'chains.memory.stepsPerSec' }, digits: 0 },
  { scenario: '1 chains', metric: 'Conveyor CPU per step', unit: 'µs', better: 'lower', conveyor: 'chains.conveyor.cpuUsPerStep', digits: 0 },
  { scenario: '2 fan-out', metric: 'end to end', unit: 'ms', better: 'lower', conveyor: 'fanout.conveyor.ms', peers: { bullmq: 'fanout.bullmq.ms', ceiling: 'fanout.ceiling.ms', memory: 'fanout.memory.ms' }, digits: 0 },
  { scenario: '2 fan-out', metric: 'steps/s', unit: '/s', better: 'higher', conveyor: 'fanout.conveyor.stepsPerSec', peers: { bullmq: 'fanout.bullmq.stepsPerSec', ceiling: 'fanout.ceiling.stepsPerSec', memory: 'fanout.memory.stepsPerSec' }, digits: 0 },
  { scenario: '2 fan-out', metric: 'createWorkflow (validation, not in the time above)', unit: 'ms', better: 'lower', conveyor: 'fanout.conveyor.createWorkflowMs', digits: 0 },
  { scenario: '2 fan-out', metric: 'Conveyor CPU per step', unit: 'µs', better: 'lower', conveyor: 'fanout.conveyor.cpuUsPerStep', digits: 0 },
  { scenario: '3 diamonds', metric: 'steps/s', unit: '/s', better: 'higher', conveyor: 'diamonds.conveyor.stepsPerSec', peers: { ceiling: 'diamonds.ceiling.stepsPerSec', memory: 'diamonds.memory.stepsPerSec' }, digits: 0 },
  { scenario: '3 diamonds', metric: 'Conveyor CPU per step', unit: 'µs', better: 'lower', conveyor: 'diamonds.conveyor.cpuUsPerStep', digits: 0 },
  { scenario: '4 dispatch, light', metric: 'p50', unit: 'ms', better: 'lower', conveyor: 'dispatch.conveyor.light.p50', peers: { bullmq: 'dispatch.bullmq.light.p50', memory: 'dispatch.memory.light.p50' }, digits: 3 },
  { scenario: '4 dispatch, light', metric: 'p99', unit: 'ms', better: 'lower', conveyor: 'dispatch.conveyor.light.p99', peers: { bullmq: 'dispatch.bullmq.light.p99', memory: 'dispatch.memory.light.p99' }, digits: 3 },
  { scenario: '4 dispatch, saturated', metric: 'p50', unit: 'ms', better: 'lower', conveyor: 'dispatch.conveyor.saturated.p50', peers: { bullmq: 'dispatch.bullmq.saturated.p50', memory: 'dispatch.memory.saturated.p50' }, digits: 3 },
  { scenario: '4 dispatch, saturated', metric: 'p99', unit: 'ms', better: 'lower', conveyor: 'dispatch.conveyor.saturated.p99', peers: { bullmq: 'dispatch.bullmq.saturated.p99', memory: 'dispatch.memory.saturated.p99' }, digits: 3 },
  { scenario: '5 subscriptions', metric: 'delivery p50', unit: 'ms', better: 'lower', conveyor: 'subs.p50', peers: { frames: 'subsFrames.p50' }, digits: 0 },
  { scenario: '5 subscriptions', metric: 'delivery p99', unit: 'ms', better: 'lower', conveyor: 'subs.p99', peers: { frames: 'subsFrames.p99' }, digits: 0 },
  { scenario: '5 subscriptions', metric: 'from commit: delivery p50', unit: 'ms', better: 'lower', conveyor: 'subs.fromCommitP50', peers: { frames: 'subsFrames.fromCommitP50' }, digits: 0 },
  { scenario: '5 subscriptions', metric: 'from commit: delivery p99', unit: 'ms', better: 'lower', conveyor: 'subs.fromCommitP99', peers: { frames: 'subsFrames.fromCommitP99' }, digits: 0 },
  { scenario: '5 subscriptions', metric: 'first event to all clients, p99', unit: 'ms', better: 'lower', conveyor: 'subs.firstEventP99', digits: 0 },
  { scenario: '5 subscriptions', metric: 'deliveries/s', unit: '/s', better: 'higher', conveyor: 'subs.deliveriesPerSec', peers: { frames: 'subsFrames.deliveriesPerSec' }, digits: 0 },
  { scenario: '5 subscriptions', metric: 'server CPU per delivery', unit: 'µs', better: 'lower', conveyor: 'subs.serverCpuPerDeliveryUs', peers: { frames: 'subsFrames.serverCpuPerDeliveryUs' }, digits: 1 },
  { scenario: '5 subscriptions', metric: 'events lost', unit: '', better: 'lower', conveyor: 'subs.lost', digits: 0 },
  { scenario: '5 subscriptions', metric: 'server RSS growth', unit: 'MB', better: 'lower', conveyor: 'subs.rssGrowthMb', digits: 0 },
  { scenario: '5 subscriptions', metric: 'of which: clients connected and subscribed, run not released', unit: 'MB', better: 'lower', conveyor: 'subs.rssConnectedMb', digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'delivery p50', unit: 'ms', better: 'lower', conveyor: 'subsBatched.p50', peers: { frames: 'subsBatchedFrames.p50' }, digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'delivery p99', unit: 'ms', better: 'lower', conveyor: 'subsBatched.p99', peers: { frames: 'subsBatchedFrames.p99' }, digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'from commit: delivery p50', unit: 'ms', better: 'lower', conveyor: 'subsBatched.fromCommitP50', peers: { frames: 'subsBatchedFrames.fromCommitP50' }, digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'from commit: delivery p99', unit: 'ms', better: 'lower', conveyor: 'subsBatched.fromCommitP99', peers: { frames: 'subsBatchedFrames.fromCommitP99' }, digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'first event to all clients, p99', unit: 'ms', better: 'lower', conveyor: 'subsBatched.firstEventP99', digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'deliveries/s', unit: '/s', better: 'higher', conveyor: 'subsBatched.deliveriesPerSec', peers: { frames: 'subsBatchedFrames.deliveriesPerSec' }, digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'events per message', unit: '', better: 'higher', conveyor: 'subsBatched.eventsPerMessage', digits: 1 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'server CPU per delivery', unit: 'µs', better: 'lower', conveyor: 'subsBatched.serverCpuPerDeliveryUs', peers: { frames: 'subsBatchedFrames.serverCpuPerDeliveryUs' }, digits: 1 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'events lost', unit: '', better: 'lower', conveyor: 'subsBatched.lost', digits: 0 },
  { scenario: '5b subscriptions, batched (runEventBatches)', metric: 'server RSS growth', unit: 'MB', better: 'lower', conveyor: 'subsBatched.rssGrowthMb', digits: 0 },
  { scenario: '6 reads', metric: 'runs(first: 100) + workflow + steps', unit: 'req/s', better: 'higher', conveyor: 'reads.requestsPerSec', digits: 0 },
  { scenario: '6 reads', metric: 'SQL statements, first: 10', unit: '', better: 'lower', conveyor: 'reads.statementsFirst10', digits: 0 },
  { scenario: '6 reads', metric: 'SQL statements, first: 100', unit: '', better: 'lower', conveyor: 'reads.statementsFirst100', digits: 0 },
  { scenario: '6 reads', metric: 'events first page (HTTP) p50', unit: 'ms', better: 'lower', conveyor: 'reads.eventsFirstPageP50', digits: 2 },
  { scenario: '6 reads', metric: 'events first page (HTTP) p99', unit: 'ms', better: 'lower', conveyor: 'reads.eventsFirstPageP99', digits: 2 },
  { scenario: '6 reads', metric: 'events page mid-log (HTTP) p50', unit: 'ms', better: 'lower', conveyor: 'reads.eventsMiddlePageP50', digits: 2 },
  { scenario: '6 reads', metric: 'events first page, SQL only, p50', unit: 'ms', better: 'lower', conveyor: 'reads.eventsSqlP50', digits: 3 },
]

export interface TableRow {
  scenario: string
  metric: string
  unit: string
  better: 'higher' | 'lower'
  conveyor: number | undefined
  peers: Record<Peer, number | undefined | 'n/m'>
  ratios: Record<Peer, number | undefined>
  digits: number
}

export function buildTable(m: Metrics, available: { bullmq: boolean; peers: boolean }): TableRow[] {
  const rows: TableRow[] = []
  for (const spec of ROWS) {
    const conveyor = m[spec.conveyor]
    if (conveyor === undefined) continue
    const peers = {} as TableRow['peers']
    const ratios = {} as TableRow['ratios']
    for (const p of PEERS) {
      const key = spec.peers?.[p]
      const measured = key ? m[key] : undefined
      // A peer that applies but could not be measured (Redis down, --no-peers) says so.
      peers[p] = key && measured === undefined && (p === 'bullmq' ? !available.bullmq : !available.peers) ? 'n/m' : measured
      ratios[p] = typeof measured === 'number' && measured !== 0 ? conveyor / measured : undefined
    }
    rows.push({ scenario: spec.scenario, metric: spec.metric, unit: spec.unit, better: spec.better, conveyor, peers, ratios, digits: spec.digits ?? 1 })
  }
  return rows
}

export interface TargetCheck {
  target: string
  value: string
  met: boolean | undefined
}

function fmt(v: number | undefined, digits = 1): string {
  if (v === undefined || Number.isNaN(v)) return '—'
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function checkTargets(m: Metrics): TargetCheck[] {
  const out: TargetCheck[] = []
  const ratio = (a: string, b: string) => (m[a] !== undefined && m[b] !== undefined ? m[a]! / m[b]! : undefined)
  const add = (target: string, value: number | undefined, met: (v: number) => boolean, show: (v: number) => string) =>
    out.push({ target, value: value === undefined || Number.isNaN(value) ? 'not measured' : show(value), met: value === undefined || Number.isNaN(value) ? undefined : met(value) })
  add('chains ≥ 5 × BullMQ steps/s', ratio('chains.conveyor.stepsPerSec', 'chains.bullmq.stepsPerSec'), (v) => v >= 5, (v) => `${fmt(v, 2)} ×`)
  add('chains ≥ 2 × the 1-tx-per-transition ceiling', ratio('chains.conveyor.stepsPerSec', 'chains.ceiling.stepsPerSec'), (v) => v >= 2, (v) => `${fmt(v, 2)} ×`)
  add('fan-out 10,000 steps < 2 s end to end', m['fanout.conveyor.ms'], (v) => v < 2000, (v) => `${fmt(v, 0)} ms`)
  add('fan-out ≥ 5 × the BullMQ flow', ratio('fanout.bullmq.ms', 'fanout.conveyor.ms'), (v) => v >= 5, (v) => `${fmt(v, 2)} ×`)
  add('dispatch p99 < 10 ms at light load', m['dispatch.conveyor.light.p99'], (v) => v < 10, (v) => `${fmt(v, 3)} ms`)
  add('subscriptions p99 < 50 ms', m['subs.p99'], (v) => v < 50, (v) => `${fmt(v, 0)} ms`)
  add('subscriptions: from commit, p99 < 50 ms', m['subs.fromCommitP99'], (v) => v < 50, (v) => `${fmt(v, 0)} ms`)
  add('subscriptions: 0 events lost', m['subs.lost'], (v) => v === 0, (v) => fmt(v, 0))
  add('subscriptions: server RSS growth < 100 MB', m['subs.rssGrowthMb'], (v) => v < 100, (v) => `${fmt(v, 0)} MB`)
  add('subscriptions, batched (runEventBatches): p99 < 50 ms', m['subsBatched.p99'], (v) => v < 50, (v) => `${fmt(v, 0)} ms`)
  add('subscriptions, batched: from commit, p99 < 50 ms', m['subsBatched.fromCommitP99'], (v) => v < 50, (v) => `${fmt(v, 0)} ms`)
  add('subscriptions, batched: 0 events lost', m['subsBatched.lost'], (v) => v === 0, (v) => fmt(v, 0))
  add('subscriptions, batched: server RSS growth < 100 MB', m['subsBatched.rssGrowthMb'], (v) => v < 100, (v) => `${fmt(v, 0)} MB`)
  const s10 = m['reads.statementsFirst10']
  const s100 = m['reads.statementsFirst100']
  add('reads: constant SQL statements per page (first 10 = first 100)', s10 !== undefined && s100 !== undefined ? s100 - s10 : undefined, (v) => v === 0, () => `${fmt(s10, 0)} vs ${fmt(s100, 0)}`)
  add('reads: events first page < 10 ms (HTTP p99)', m['reads.eventsFirstPageP99'], (v) => v < 10, (v) => `${fmt(v, 2)} ms`)
  return out
}

function cells(rows: TableRow[]): string[][] {
  const header = ['scenario', 'metric', 'Conveyor', ...PEERS.map((p) => PEER_TITLES[p]), ...PEERS.map((p) => `÷ ${PEER_TITLES[p]}`)]
  const body = rows.map((r) => [
    r.scenario,
    `${r.metric}${r.unit ? ` (${r.unit})` : ''} ${r.better === 'higher' ? '↑' : '↓'}`,
    fmt(r.conveyor, r.digits),
    ...PEERS.map((p) => (r.peers[p] === 'n/m' ? 'NOT MEASURED' : fmt(r.peers[p] as number | undefined, r.digits))),
    ...PEERS.map((p) => (r.ratios[p] === undefined ? '—' : `${fmt(r.ratios[p], r.ratios[p]! < 0.1 ? 4 : 2)}`)),
  ])
  return [header, ...body]
}

export function renderText(rows: TableRow[], targets: TargetCheck[]): string {
  const all = cells(rows)
  const widths = all[0]!.map((_, i) => Math.max(...all.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  const out = [line(all[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)]
  out.push('', '↑ higher is better, ↓ lower is better; "÷ peer" is Conveyor\'s value divided by the peer\'s.', '', 'Targets (issue 6):')
  for (const t of targets) out.push(`  ${t.met === undefined ? '[ ?? ]' : t.met ? '[ met ]' : '[MISSED]'} ${t.target}: ${t.value}`)
  return out.join('\n')
}

export function renderMarkdown(
  rows: TableRow[],
  targets: TargetCheck[],
  meta: { command: string; machine: Record<string, unknown>; sizes: unknown; repeat: number; elapsedSec: number; redis: boolean; date: string },
): string {
  const all = cells(rows)
  const md = [
    `Command: \`${meta.command}\` — ${meta.date}, ${meta.repeat} round(s), medians; took ${meta.elapsedSec.toFixed(0)} s.`,
    '',
    `Machine: ${JSON.stringify(meta.machine)}`,
    '',
    `Sizes: \`${JSON.stringify(meta.sizes)}\``,
    '',
  ]
  if (!meta.redis) md.push('**Redis was not reachable: the BullMQ columns were NOT MEASURED.**', '')
  md.push(`| ${all[0]!.join(' | ')} |`, `|${all[0]!.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`)
  for (const r of all.slice(1)) md.push(`| ${r.join(' | ')} |`)
  md.push('', '| target | value | met |', '| --- | ---: | --- |')
  for (const t of targets) md.push(`| ${t.target} | ${t.value} | ${t.met === undefined ? 'not measured' : t.met ? 'yes' : '**no**'} |`)
  return md.join('\n')
}
