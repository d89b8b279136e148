// FactoryCoordinator (the seed's class): drives runs across factories. It owns the limits (the
// worker pool, per-factory and per-action pools), the runs in flight, and recovery of the runs a
// previous process left unfinished.
import { openContext, closeContext, type ContextOptions, type EngineContext } from './context.ts'
import { WorkflowManager, type CompiledWorkflow } from './workflow-manager.ts'
import { RunExecution } from './run-execution.ts'
import { PoolSet, type Pool } from './pools.ts'
import type { FactoryLike, RegisteredAction } from './factory.ts'
import type { ExecutionHost } from './execution-host.ts'
import type { RunResult, RunStatus, StepResult, StepStatus, WorkflowDefinition } from './interfaces.ts'
import { TERMINAL_RUN_STATUSES } from './interfaces.ts'
import { checkRunInput } from './run-input.ts'
import { ConflictError, NotFoundError, ValidationError, CancelledError } from './errors.ts'
import { newId } from './ids.ts'
import { createRun } from '../db/sql/createRun.ts'
import { getRun, findRunByIdempotencyKey } from '../db/sql/getRun.ts'
import { getRunSteps } from '../db/sql/getRunSteps.ts'
import { listUnfinishedRuns } from '../db/sql/listUnfinishedRuns.ts'

export interface CoordinatorConfig {
  /** Actions in flight at once across all runs. Default: unlimited. */
  maxWorkers?: number
}

export interface StartOptions {
  /** A retried client request with the same key returns the first run instead of starting another. */
  idempotencyKey?: string
}

export class FactoryCoordinator implements ExecutionHost {
  readonly context: EngineContext
  readonly pools = new PoolSet()
  readonly globalPool: Pool
  defaultMaxParallel: number | undefined
  private readonly owned: boolean
  private readonly manager: WorkflowManager
  private readonly active = new Map<string, RunExecution>()
  private readonly factoryWaiters = new Map<string, (() => void)[]>()
  private readonly pendingKeys = new Map<string, string>()
  private recovered = false
  private closing = false
  private readonly unlistenRegistry: () => void

  constructor(
    config: CoordinatorConfig & ContextOptions = {},
    shared?: { context: EngineContext; manager: WorkflowManager; maxParallel?: number },
  ) {
    this.owned = !shared
    this.context = shared?.context ?? openContext(config)
    this.manager = shared?.manager ?? new WorkflowManager(this.context)
    this.defaultMaxParallel = shared?.maxParallel
    this.globalPool = this.pools.pool('workers', positiveOr(config.maxWorkers, Number.POSITIVE_INFINITY))
    this.unlistenRegistry = this.context.registry.onRegister((factory) => {
      const waiting = this.factoryWaiters.get(factory.name)
      if (!waiting) return
      this.factoryWaiters.delete(factory.name)
      for (const ready of waiting) ready()
    })
  }

  // ---- ExecutionHost

  get conn() {
    return this.context.conn
  }

  get journal() {
    return this.context.journal
  }

  get registry() {
    return this.context.registry
  }

  get artifacts() {
    return this.context.artifacts
  }

  actionPools(action: RegisteredAction): Pool[] {
    const pools: Pool[] = []
    const factory = this.registry.get(action.factory)
    if (factory?.concurrency) pools.push(this.pools.pool(`factory:${factory.name}`, factory.concurrency))
    const limit = action.definition.concurrency
    if (limit) pools.push(this.pools.pool(`action:${action.factory}.${action.name}`, limit))
    return pools
  }

  awaitFactory(factory: string, ready: () => void): void {
    const list = this.factoryWaiters.get(factory) ?? []
    list.push(ready)
    this.factoryWaiters.set(factory, list)
  }

  readResult(runId: string): RunResult {
    const run = getRun(this.conn, runId)
    if (!run) throw new NotFoundError(`run ${runId} not found`)
    const steps: Record<string, StepResult> = {}
    for (const row of getRunSteps(this.conn, runId)) {
      steps[row.stepId] = {
        status: row.status as StepStatus, output: row.output ?? null, attempts: row.attempts, ...(row.error ? { error: row.error } : {}),
      }
    }
    return {
      runId, workflowId: run.workflowId, status: run.status as RunStatus, output: run.output ?? null,
      ...(run.error ? { error: run.error } : {}), steps,
    }
  }

  onFinished(run: RunExecution): void {
    this.active.delete(run.id)
  }

  // ---- public API

  /** The seed's `coordinate`: runs a definition on the given factories and settles with the result. */
  async coordinate(workflowId: string, definition: WorkflowDefinition, factories: Record<string, FactoryLike> = {}, input?: unknown): Promise<RunResult> {
    for (const [name, factory] of Object.entries(factories)) this.registry.register(name, factory)
    this.manager.define(workflowId, definition)
    const { runId } = await this.start(workflowId, input)
    return this.wait(runId)
  }

  /** Creates a run of the workflow's current version and starts it; resolves once it is committed. */
  async start(workflowId: string, input?: unknown, options: StartOptions = {}): Promise<{ runId: string; created: boolean }> {
    if (this.closing) throw new ConflictError('the coordinator is shutting down')
    this.recover()
    const key = options.idempotencyKey
    if (key !== undefined) {
      if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
        throw new ValidationError('idempotencyKey must be a string of 1 to 200 characters', [
          { path: 'idempotencyKey', message: 'must be a string of 1 to 200 characters' },
        ])
      }
      const pending = this.pendingKeys.get(`${workflowId}\u0000${key}`)
      if (pending) return { runId: pending, created: false }
      const existing = findRunByIdempotencyKey(this.conn, workflowId, key)
      if (existing) return { runId: existing.id, created: false }
    }
    const compiled = this.manager.load(workflowId)
    const checked = checkRunInput(compiled.definition.input, input)
    if (checked.issues.length > 0) throw new ValidationError('run input is invalid', checked.issues)
    const runId = newId('run')
    const now = Date.now()
    const execution = this.execution(compiled, runId, checked.value, compiled.definition.timeoutMs ? now + compiled.definition.timeoutMs : null, 'PENDING')
    const keyId = key !== undefined ? `${workflowId}\u0000${key}` : undefined
    if (keyId) this.pendingKeys.set(keyId, runId)
    this.journal.record(
      () => createRun(this.conn, {
        id: runId, workflowId, workflowVersion: compiled.version, status: 'PENDING', input: checked.value,
        idempotencyKey: key ?? null, parentRunId: null, parentStepId: null, retryOf: null,
        deadlineAt: execution.spec.deadlineAt, createdAt: now,
      }, compiled.graph.ordered.map((n) => ({
        stepId: n.id, parentStepId: n.parent, kind: n.kind, factory: n.factory, action: n.action,
      }))),
      {
        type: 'RUN_CREATED', runId, workflowId, stepId: null, attempt: null, status: 'PENDING', at: now,
        payload: { workflowVersion: compiled.version, input: checked.value },
      },
    )
    this.active.set(runId, execution)
    execution.begin()
    await new Promise<void>((resolve) => this.journal.afterCommit(resolve))
    if (keyId) this.pendingKeys.delete(keyId)
    return { runId, created: true }
  }

  /** Settles with the run's result once it has finished (at once if it already has). */
  async wait(runId: string): Promise<RunResult> {
    this.recover()
    const execution = this.active.get(runId)
    if (execution) return execution.finished
    const run = getRun(this.conn, runId)
    if (!run) throw new NotFoundError(`run ${runId} not found`)
    if (TERMINAL_RUN_STATUSES.has(run.status as RunStatus)) return this.readResult(runId)
    throw new ConflictError(`run ${runId} is ${run.status} but not in flight here`)
  }

  async cancel(runId: string): Promise<RunResult> {
    this.recover()
    const execution = this.active.get(runId)
    if (!execution) {
      const run = getRun(this.conn, runId)
      if (!run) throw new NotFoundError(`run ${runId} not found`)
      throw new ConflictError(`run ${runId} is ${run.status} and cannot be cancelled`)
    }
    execution.cancel('CANCELLED')
    return execution.finished
  }

  isActive(runId: string): boolean {
    return this.active.has(runId)
  }

  get activeRuns(): number {
    return this.active.size
  }

  /** Resumes every run a previous process left unfinished (once; later calls do nothing). */
  recover(): void {
    if (this.recovered || this.closing) return
    this.recovered = true
    for (const run of listUnfinishedRuns(this.conn)) {
      if (this.active.has(run.id)) continue
      let compiled: CompiledWorkflow
      try {
        compiled = this.manager.load(run.workflowId, run.workflowVersion)
      } catch (error) {
        this.context.logger.error({ err: error, runId: run.id }, 'cannot resume run')
        continue
      }
      const execution = this.execution(compiled, run.id, run.input, run.deadlineAt, run.status as RunStatus)
      this.active.set(run.id, execution)
      execution.resume(getRunSteps(this.conn, run.id))
    }
  }

  private execution(compiled: CompiledWorkflow, runId: string, input: unknown, deadlineAt: number | null, status: RunStatus): RunExecution {
    return new RunExecution(this, {
      id: runId, workflowId: compiled.workflowId, workflowName: compiled.name, workflowVersion: compiled.version,
      definition: compiled.definition, graph: compiled.graph, input, boundParams: compiled.boundParams, deadlineAt,
    }, status)
  }

  /**
   * Stops: no new runs; waits up to `drainMs` for running actions to finish, then aborts the rest
   * without recording them, so the next start resumes those runs (at-least-once).
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.closing) return
    this.closing = true
    const drainMs = options.drainMs ?? 0
    if (drainMs > 0) {
      const until = Date.now() + drainMs
      while (Date.now() < until && [...this.active.values()].some((r) => r.activeActions > 0)) {
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    for (const run of this.active.values()) run.abandon(new CancelledError('shutting down'))
    this.active.clear()
    this.unlistenRegistry()
    this.journal.flush()
    if (this.owned) closeContext(this.context)
  }
}

function positiveOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback
}
