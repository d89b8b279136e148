// ProjectOrchestrator (the seed's main class): registers factories, creates and executes
// workflows, tracks status and history. It composes a WorkflowManager and a FactoryCoordinator
// on one database.
import { openContext, closeContext, type EngineContext } from './context.ts'
import { WorkflowManager } from './workflow-manager.ts'
import { FactoryCoordinator, type StartOptions } from './factory-coordinator.ts'
import { EventStream, type StreamOptions } from './events.ts'
import type { EventFilter, RunEvent, RunResult, RunStatus, WorkflowDefinition } from './interfaces.ts'
import type { FactoryLike, RegisteredFactory } from './factory.ts'
import { NotFoundError } from './errors.ts'
import { getLatestRun, getRun } from '../db/sql/getRun.ts'
import { listEvents } from '../db/sql/listEvents.ts'
import { Catalog } from './catalog.ts'
import { Retention, type RetentionConfig } from './retention.ts'
import { upsertFactory } from '../db/sql/upsertFactory.ts'
import type { Logger } from 'pino'
import type { PoolLimits } from './pools.ts'
import type { Durability } from '../db/connection.ts'
import type { ValueLimits } from './value-limits.ts'

export interface OrchestratorConfig {
  /** SQLite file path; default ':memory:'. */
  database?: string
  /** Where artifacts are written; default `artifacts/` beside the database file. */
  artifactsDir?: string
  workflow?: { maxParallel?: number }
  /** Prune finished runs older than `maxAgeMs`, with their steps, events and artifacts. */
  retention?: RetentionConfig
  /** Named resource pools, e.g. `{ gpu: { concurrency: 2 }, openai: { ratePerSecond: 5 } }`: limits across all runs. */
  pools?: Record<string, PoolLimits>
  coordinator?: { maxWorkers?: number }
  logger?: Logger
  /**
   * What a committed change survives: `process` (default; WAL with synchronous=NORMAL: a crash of
   * the process) or `machine` (synchronous=FULL: power loss too; every commit waits for the disk).
   */
  durability?: Durability
  /**
   * `maxValueBytes` (default 16 MiB): the largest step or run output, run input, params or signal
   * payload, as JSON. `maxMessageBytes` (default 64 KiB): longer log, progress and error messages are cut.
   * `maxArtifactBytes` (default 64 MiB): the largest artifact an action may store.
   */
  limits?: Partial<ValueLimits>
}

export interface WorkflowStatusReport {
  workflowId: string
  name: string
  /** Status of the latest run, or null when the workflow has never run. */
  status: RunStatus | null
  runId: string | null
  output: unknown
  error?: string
  steps: RunResult['steps']
}

export class ProjectOrchestrator {
  readonly context: EngineContext
  /** The WorkflowManager on the same database. */
  readonly workflows: WorkflowManager
  readonly coordinator: FactoryCoordinator
  /** Paginated lists and batched lookups for the API. */
  readonly catalog: Catalog
  /** Present when the config sets `retention`; `prune()` runs it now. */
  readonly retention: Retention | undefined
  private readonly streams = new Set<EventStream>()
  private closed = false

  constructor(config: OrchestratorConfig = {}) {
    this.context = openContext({
      database: config.database, logger: config.logger, artifactsDir: config.artifactsDir, pools: config.pools, durability: config.durability, limits: config.limits,
    })
    this.workflows = new WorkflowManager(this.context)
    this.coordinator = new FactoryCoordinator(config.coordinator ?? {}, {
      context: this.context,
      manager: this.workflows,
      maxParallel: config.workflow?.maxParallel,
    })
    this.catalog = new Catalog(this.context.conn)
    this.retention = config.retention ? new Retention(this.context.conn, config.retention, this.context.logger) : undefined
    this.retention?.start()
    // Resume unfinished runs once the caller has had a chance to register its factories.
    setImmediate(() => {
      if (!this.closed) this.coordinator.recover()
    })
  }

  registerFactory(name: string, factory: FactoryLike): RegisteredFactory {
    const registered = this.context.registry.register(name, factory)
    upsertFactory(this.context.conn, registered)
    return registered
  }

  /** Validates and stores a workflow; returns its id. Throws ValidationError with every issue. */
  createWorkflow(name: string, definition: WorkflowDefinition | unknown): Promise<string> {
    return this.workflows.create(name, definition)
  }

  /** Runs the workflow and settles with the run's result. */
  async executeWorkflow(workflowId: string, input?: unknown, options: StartOptions = {}): Promise<RunResult> {
    const { runId } = await this.startWorkflow(workflowId, input, options)
    return this.waitForRun(runId)
  }

  /** Starts a run without waiting for it; resolves once the run is durably created. */
  async startWorkflow(workflowId: string, input?: unknown, options: StartOptions = {}): Promise<{ runId: string }> {
    const { runId } = await this.coordinator.start(workflowId, input, options)
    return { runId }
  }

  waitForRun(runId: string): Promise<RunResult> {
    return this.coordinator.wait(runId)
  }

  async getRun(runId: string): Promise<RunResult> {
    return this.coordinator.readResult(runId)
  }

  cancelRun(runId: string): Promise<RunResult> {
    return this.coordinator.cancel(runId)
  }

  /** No new steps start until resumeRun; running actions finish. RUN_PAUSED. */
  async pauseRun(runId: string): Promise<RunResult> {
    this.coordinator.pause(runId)
    return this.committed(runId)
  }

  /** RUN_RESUMED; dispatch continues. */
  async resumeRun(runId: string): Promise<RunResult> {
    this.coordinator.resume(runId)
    return this.committed(runId)
  }

  /** A step waiting for a signal (control.approval) takes `payload` as its output. */
  async signalRun(runId: string, stepId: string, payload?: unknown): Promise<RunResult> {
    this.coordinator.signal(runId, stepId, payload)
    return this.committed(runId)
  }

  /**
   * Reruns a finished run as a new run of the same version: succeeded steps are reused (their actions
   * are not called), the failed step (or `fromStep`) and everything downstream run again, with
   * `params` replacing that step's params if given.
   */
  retryRun(runId: string, options: { fromStep?: string; params?: Record<string, unknown> } = {}): Promise<{ runId: string }> {
    return this.coordinator.retry(runId, options)
  }

  /** Compensates a finished run's succeeded steps in reverse completion order; settles ROLLED_BACK or FAILED. */
  rollbackRun(runId: string): Promise<RunResult> {
    return this.coordinator.rollback(runId)
  }

  /** Stores `definition` as the workflow's next version; runs already started keep theirs. */
  async updateWorkflow(workflowId: string, definition: unknown): Promise<{ version: number }> {
    return { version: this.workflows.update(workflowId, definition) }
  }

  /** Makes an earlier version's definition current again, as a new version. */
  async rollbackWorkflow(workflowId: string, version: number): Promise<{ version: number }> {
    return { version: this.workflows.restoreVersion(workflowId, version) }
  }

  /** The run's state once everything queued so far is committed. */
  private async committed(runId: string): Promise<RunResult> {
    await new Promise<void>((resolve) => this.context.journal.afterCommit(resolve))
    return this.coordinator.readResult(runId)
  }

  /** Status of the workflow's latest run (the seed's get_workflow_status). */
  async getWorkflowStatus(workflowId: string): Promise<WorkflowStatusReport> {
    const workflow = this.workflows.get(workflowId)
    if (!workflow) throw new NotFoundError(`workflow ${workflowId} not found`)
    const latest = getLatestRun(this.context.conn, workflowId)
    if (!latest) return { workflowId, name: workflow.name, status: null, runId: null, output: null, steps: {} }
    const result = this.coordinator.readResult(latest.id)
    return { ...result, workflowId, name: workflow.name }
  }

  /** The run's events in seq order (its audit history). */
  async getHistory(runId: string, options: { after?: number; limit?: number } = {}): Promise<RunEvent[]> {
    if (!getRun(this.context.conn, runId)) throw new NotFoundError(`run ${runId} not found`)
    const out: RunEvent[] = []
    let after = options.after ?? 0
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    while (out.length < limit) {
      const page = listEvents(this.context.conn, { runId, afterSeq: after, limit: Math.min(5000, limit - out.length) })
      out.push(...(page as RunEvent[]))
      if (page.length === 0) break
      after = page[page.length - 1]!.seq
    }
    return out
  }

  /** An async iterator over events matching `filter`: the backlog after `after`, then live ones. */
  events(filter: EventFilter = {}, options: StreamOptions = {}): EventStream {
    const stream = new EventStream(this.context.conn, this.context.bus, filter, options)
    this.streams.add(stream)
    return stream
  }

  /**
   * Calls `listener` for every event committed from now on that matches `filter`, in seq order.
   * An async listener is awaited before the next event; while it is slow, events wait in a bounded
   * buffer and then in the database, never in the engine. Returns a function that unsubscribes.
   */
  subscribe(filter: EventFilter, listener: (event: RunEvent) => unknown, options: StreamOptions = {}): () => void {
    const stream = this.events(filter, { after: 'HEAD', ...options })
    void (async () => {
      for await (const event of stream) {
        try {
          await listener(event)
        } catch (error) {
          this.context.logger.warn({ err: error }, 'event listener threw')
        }
      }
      this.streams.delete(stream)
    })()
    return () => {
      stream.close()
      this.streams.delete(stream)
    }
  }

  /** Graceful stop: waits up to `drainMs` for running actions, leaves the database consistent. */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.retention?.stop()
    for (const stream of this.streams) stream.close()
    this.streams.clear()
    await this.coordinator.close(options)
    closeContext(this.context)
  }
}
