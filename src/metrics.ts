// Prometheus text exposition of the engine's gauges and counters.
import type { ProjectOrchestrator } from './engine/project-orchestrator.ts'

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
  if (server.wsClients !== undefined) gauge('conveyor_ws_clients', 'Open GraphQL WebSocket connections.', [[{}, server.wsClients]])
  return `${lines.join('\n')}\n`
}
