// Prometheus text exposition of the engine's gauges and counters.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { ProjectOrchestrator } from './engine/project-orchestrator.ts'
import { DURABILITY_MODES } from './db/connection.ts'

/** How often the event-loop lag is sampled: a timer every 20 ms, its lateness is the lag. */
const LAG_RESOLUTION_MS = 20
let lag: IntervalHistogram | undefined

/** Starts sampling the event-loop lag (once per process; the server calls it when it starts). */
export function watchEventLoopLag(): void {
  if (lag) return
  lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS })
  lag.enable()
}

/**
 * The lag since watching began, in seconds, as a Prometheus summary is: cumulative (`_sum` and
 * `_count` are counters; rate them for a recent mean). Not reset per scrape: Node drops the first
 * sample after a reset, which would be the very one spanning a stall that preceded the scrape.
 * Node records the time between two samples; the lag is what exceeds the resolution.
 */
function readLag(): { p50: number; p99: number; max: number; sum: number; count: number } | undefined {
  if (!lag) return undefined
  const seconds = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS) / 1000
  const count = lag.count
  if (count === 0) return { p50: 0, p99: 0, max: 0, sum: 0, count: 0 }
  return { p50: seconds(lag.percentile(50)), p99: seconds(lag.percentile(99)), max: seconds(lag.max), sum: seconds(lag.mean) * count, count }
}

/** `server`: gauges only the HTTP server knows (open WebSocket connections). */
export function metricsText(orchestrator: ProjectOrchestrator, server: { wsClients?: number } = {}): string {
  const lines: string[] = []
  const gauge = (name: string, help: string, samples: [Record<string, string>, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`)
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')
      lines.push(`${name}${l ? `{${l}}` : ''} ${value}`)
    }
  }
  gauge('conveyor_runs', 'Runs by status.', orchestrator.catalog.runCounts().map((r) => [{ status: r.status }, r.count]))
  gauge('conveyor_active_runs', 'Runs in flight in this process.', [[{}, orchestrator.coordinator.activeRuns]])
  gauge('conveyor_pool_in_use', 'Slots in use per concurrency pool.', orchestrator.coordinator.pools.list().map((p) => [{ pool: p.name }, p.inUse]))
  gauge('conveyor_pool_waiting', 'Steps waiting per concurrency pool.', orchestrator.coordinator.pools.list().map((p) => [{ pool: p.name }, p.queued]))
  gauge('conveyor_durability', 'What a commit survives: 1 for the mode in use (process: a process crash; machine: power loss too).', DURABILITY_MODES.map((mode) => [{ mode }, orchestrator.context.conn.durability === mode ? 1 : 0]))
  gauge('conveyor_commits_total', 'Group commits since start.', [[{}, orchestrator.context.journal.commits]])
  gauge('conveyor_commit_failures_total', 'Commits the database refused (disk full, read-only, busy, I/O), retries included.', [[{}, orchestrator.context.journal.failures]])
  gauge('conveyor_journal_pending', 'State changes waiting to be committed.', [[{}, orchestrator.context.journal.pending]])
  const checkpoints = orchestrator.context.conn.checkpointer?.stats
  gauge('conveyor_wal_checkpoint_passes_total', 'WAL checkpoint passes on the background thread (0 while commits still checkpoint).', [[{}, checkpoints?.passes ?? 0]])
  gauge('conveyor_wal_checkpoint_errors_total', 'Background WAL checkpoint passes that failed.', [[{}, checkpoints?.errors ?? 0]])
  gauge('conveyor_wal_frames', 'Pages in the WAL at the last background checkpoint pass.', [[{}, checkpoints?.frames ?? 0]])
  gauge('conveyor_wal_checkpoint_interval_seconds', 'Wait before the next background checkpoint pass (grows while the database is idle; 0 while commits still checkpoint).', [[{}, (checkpoints?.intervalMs ?? 0) / 1000]])
  const memory = process.memoryUsage()
  gauge('conveyor_process_resident_bytes', 'Resident set size of the server process.', [[{}, memory.rss]])
  gauge('conveyor_process_heap_used_bytes', 'V8 heap in use.', [[{}, memory.heapUsed]])
  const loop = readLag()
  if (loop) {
    const name = 'conveyor_event_loop_lag_seconds'
    lines.push(`# HELP ${name} Event-loop lag since the server started (perf_hooks.monitorEventLoopDelay, ${LAG_RESOLUTION_MS} ms resolution; quantile 1 is the max).`, `# TYPE ${name} summary`)
    lines.push(`${name}{quantile="0.5"} ${loop.p50}`, `${name}{quantile="0.99"} ${loop.p99}`, `${name}{quantile="1"} ${loop.max}`)
    lines.push(`${name}_sum ${loop.sum}`, `${name}_count ${loop.count}`)
  }
  if (server.wsClients !== undefined) gauge('conveyor_ws_clients', 'Open GraphQL WebSocket connections.', [[{}, server.wsClients]])
  return `${lines.join('\n')}\n`
}
