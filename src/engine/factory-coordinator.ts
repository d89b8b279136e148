// FactoryCoordinator (the seed's class): drives runs across factories. It owns the limits (the
// worker pool, per-factory and per-action pools), the runs in flight, and recovery of the runs a
// previous process left unfinished.
import { openContext, closeContext, type ContextOptions, type EngineContext } from './context.ts'
import { WorkflowManager, type CompiledWorkflow } from './workflow-manager.ts'
import { RunExecution } from './run-execution.ts'
import { RunRollback } from './rollback.ts'
import { planRetry } from './retry-plan.ts'
import { TERMINAL_RUN_EVENTS } from './events.ts'
import { summarize } from './summary.ts'
import { PoolSet, type Pool } from './pools.ts'
import type { FactoryLike, RegisteredAction } from './factory.ts'
import type { ExecutionHost, RunHandle } from './execution-host.ts'
import type { RunResult, RunStatus, StepDefinition, StepResult, StepStatus, WorkflowDefinition } from './interfaces.ts'
import { TERMINAL_RUN_STATUSES } from './interfaces.ts'
import { checkRunInput, requestFingerprint } from './run-input.ts'
import { ConflictError, NotFoundError, ValidationError, CancelledError, NonRetryableError, StorageError, errorMessage } from './errors.ts'
import { newId } from './ids.ts'
import { createHash } from 'node:crypto'
import { findChildRun } from '../db/sql/getRun.ts'
import { createRun, type NewStep } from '../db/sql/createRun.ts'
import { getRun, findRunByIdempotencyKey } from '../db/sql/getRun.ts'
import { getRunSteps } from '../db/sql/getRunSteps.ts'
import { listUnfinishedRuns } from '../db/sql/listUnfinishedRuns.ts'
import { assertShallowJson } from './depth.ts'
import { assertStorableSize } from './value-limits.ts'
import { editedStepParams, stepParamsForRun } from './step-params.ts'
import { getRunLineage, getRunResultRow, getStepResultRows, type RunResultRow } from '../db/sql/getRunResult.ts'

export interface CoordinatorConfig {
  /** Actions in flight at once across all runs. Default: unlimited. */
  maxWorkers?: number
}

export interface StartOptions {
  /** A retried client request with the same key returns the first run instead of starting another. */
  idempotencyKey?: string
  /** Set for a sub-workflow's child run: the run and step that started it. */
  parent?: { runId: string; stepId: string }
  /** Params bound to this run: steps without params receive them. */
  params?: Record<string, unknown>
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
  /** Runs started with an idempotency key whose creation has not committed yet, and that commit. */
  private readonly pendingKeys = new Map<string, { runId: string; request: string; committed: Promise<void> }>()
  /** Child runs started here by `parentRunId\u0000stepId`, known before their rows are committed. */
  private readonly startedChildren = new Map<string, string>()
  private readonly rollbacks = new Map<string, RunRollback>()
  /** Callers of `wait` for runs still in flight, told when the run's terminal event commits. */
  private readonly waiters = new Map<string, ((result: RunResult) => void)[]>()
  private readonly unlistenBus: () => void
  private recovered = false
  private closing = false
  draining = false
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
    this.unlistenBus = this.context.bus.listen((events) => {
      for (const e of events) {
        if (!TERMINAL_RUN_EVENTS.has(e.type)) continue
        // A rollback is over once its end commits: a caller told so may roll the run back again at once.
        this.rollbacks.delete(e.runId)
        this.runEnded(e.runId)
      }
    })
    this.context.journal.onRefused = (runId, error) => {
      this.context.logger.error({ err: error, runId }, 'a change of the run was refused: the run fails')
      this.active.get(runId)?.storageRefused(error)
    }
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

  get limits() {
    return this.context.limits
  }

  actionPools(action: RegisteredAction, stepPools?: string | string[]): Pool[] {
    const pools: Pool[] = []
    const factory = this.registry.get(action.factory)
    if (factory?.concurrency || factory?.ratePerSecond) {
      pools.push(this.pools.pool(`factory:${factory.name}`, factory.concurrency ?? Infinity, factory.ratePerSecond))
    }
    const { concurrency, ratePerSecond } = action.definition
    if (concurrency || ratePerSecond) pools.push(this.pools.pool(`action:${action.factory}.${action.name}`, concurrency ?? Infinity, ratePerSecond))
    // Most actions and steps name no pool: no Set and lists to build on every attempt then.
    if (action.definition.pool === undefined && stepPools === undefined) return pools
    for (const name of new Set([...toList(action.definition.pool), ...toList(stepPools)])) pools.push(this.namedPool(name))
    return pools
  }

  /** A pool from the config's `pools`; naming one that is not configured fails the step. */
  private namedPool(name: string): Pool {
    const limits = this.context.namedPools[name]
    if (!limits) throw new NonRetryableError(`pool "${name}" is not configured (configured: ${Object.keys(this.context.namedPools).join(', ') || 'none'})`)
    return this.pools.pool(`pool:${name}`, limits.concurrency ?? Infinity, limits.ratePerSecond)
  }

  /** Pools for the API: the worker pool, named pools, factory and action pools (not per-run ones). */
  listPools(): { name: string; concurrency: number | null; ratePerSecond: number | null; inUse: number; waiting: number }[] {
    for (const name of Object.keys(this.context.namedPools)) this.namedPool(name)
    return this.pools
      .list()
      .filter((p) => !p.name.startsWith('run:') && !p.name.startsWith('group:'))
      .map((p) => ({
        name: p.name, concurrency: Number.isFinite(p.limit) ? p.limit : null, ratePerSecond: p.ratePerSecond ?? null,
        inUse: p.inUse, waiting: p.queued,
      }))
  }

  awaitFactory(factory: string, ready: () => void): void {
    const list = this.factoryWaiters.get(factory) ?? []
    list.push(ready)
    this.factoryWaiters.set(factory, list)
  }

  readResult(runId: string): RunResult {
    const run = getRunResultRow(this.conn, runId)
    if (!run) throw new NotFoundError(`run ${runId} not found`)
    return this.resultOf(runId, run)
  }

  /** The run's terminal event has committed: its parent step and its waiters get its result. */
  private runEnded(runId: string): void {
    // A run that has just ended here has its result in memory, the same as its rows; only its
    // lineage is read. Others (rolled back) are read back.
    const execution = this.active.get(runId)
    const ended = execution?.hasEnded ? execution : undefined
    const run = ended ? getRunLineage(this.conn, runId) : getRunResultRow(this.conn, runId)
    const waiting = this.waiters.get(runId)
    this.waiters.delete(runId)
    const toParent = run?.parentRunId && run.parentStepId && !run.retryOf ? run : undefined
    if (!toParent && !waiting) return
    if (!run) throw new NotFoundError(`run ${runId} not found`)
    const result = ended ? ended.endedResult() : this.resultOf(runId, run as RunResultRow)
    if (toParent) {
      this.startedChildren.delete(`${toParent.parentRunId}\u0000${toParent.parentStepId}`)
      // Waiters get the result too: the parent step's output must not be an object they can change.
      const forParent = waiting ? { ...result, output: structuredClone(result.output) } : result
      this.active.get(toParent.parentRunId!)?.childFinished(toParent.parentStepId!, forParent)
    }
    for (const resolve of waiting ?? []) resolve(result)
  }

  private resultOf(runId: string, run: RunResultRow): RunResult {
    const steps: Record<string, StepResult> = {}
    for (const row of getStepResultRows(this.conn, runId)) {
      steps[row.stepId] = row.error
        ? { status: row.status as StepStatus, output: row.output ?? null, attempts: row.attempts, error: row.error }
        : { status: row.status as StepStatus, output: row.output ?? null, attempts: row.attempts }
    }
    return run.error
      ? { runId, workflowId: run.workflowId, status: run.status as RunStatus, output: run.output ?? null, error: run.error, steps }
      : { runId, workflowId: run.workflowId, status: run.status as RunStatus, output: run.output ?? null, steps }
  }

  onFinished(run: RunHandle): void {
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
    this.refuseWhileStorageFails()
    this.recover()
    const key = options.idempotencyKey
    if (key !== undefined) {
      if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
        throw new ValidationError('idempotencyKey must be a string of 1 to 200 characters', [
          { path: 'idempotencyKey', message: 'must be a string of 1 to 200 characters' },
        ])
      }
    }
    const compiled = this.manager.load(workflowId)
    assertShallowJson(input, 'input')
    if (options.params !== undefined) assertShallowJson(options.params, 'params')
    assertStorableSize(input, 'input', this.limits.maxValueBytes)
    assertStorableSize(options.params, 'params', this.limits.maxValueBytes)
    const checked = checkRunInput(compiled.definition.input, input)
    if (checked.issues.length > 0) throw new ValidationError('run input is invalid', checked.issues)
    // A retried request gets the run its key started, if it asks for the same thing; the same key
    // with another input or params is a client bug, answered as such (as Stripe does) rather than
    // with a run that did something else.
    const request = key !== undefined ? requestFingerprint(checked.value, options.params) : ''
    if (key !== undefined) {
      const pending = this.pendingKeys.get(`${workflowId}\u0000${key}`)
      const existing = pending ?? (() => {
        const row = findRunByIdempotencyKey(this.conn, workflowId, key)
        return row ? { runId: row.id, request: requestFingerprint(row.input ?? undefined, row.params ?? undefined) } : undefined
      })()
      if (existing && existing.request !== request) {
        throw new ConflictError(`idempotencyKey "${key}" was already used for run ${existing.runId} with a different input or params`)
      }
      if (existing) {
        // The first caller's run may not be committed yet: answer once it is, as the first caller
        // does, so a caller that reads the run at once finds it.
        if (pending) await pending.committed
        return { runId: existing.runId, created: false }
      }
    }
    const runId = newId('run')
    const keyId = key !== undefined ? `${workflowId}\u0000${key}` : undefined
    const committed = this.launchRun(
      compiled,
      {
        id: runId, input: checked.value, params: options.params, idempotencyKey: key ?? null,
        parentRunId: options.parent?.runId ?? null, parentStepId: options.parent?.stepId ?? null,
      },
      compiled.graph.ordered.map((n) => ({ stepId: n.id, parentStepId: n.parent, kind: n.kind, factory: n.factory, action: n.action })),
      options.parent ? { parent: options.parent } : {},
    )
    if (keyId) this.pendingKeys.set(keyId, { runId, request, committed })
    await committed
    if (keyId) this.pendingKeys.delete(keyId)
    return { runId, created: true }
  }

  /**
   * While the database refuses commits (disk full, read-only), changes already queued wait and are
   * retried; a new run is refused at once instead of piling up behind them.
   */
  private refuseWhileStorageFails(): void {
    if (!this.journal.failing) return
    const error = this.journal.lastError!
    const code = (error as { code?: string }).code ?? 'SQLITE_ERROR'
    throw new StorageError(`the database is refusing changes (${code}: ${error.message}); ${this.journal.pending} change(s) are waiting to be committed, try again later`, code)
  }

  /** Settles with the run's result once it has finished (at once if it already has). */
  async wait(runId: string): Promise<RunResult> {
    this.recover()
    // A run in flight may not be committed yet (a concurrent start with the same idempotency key).
    if (this.active.has(runId) || this.rollbacks.has(runId)) return this.untilFinished(runId)
    const run = getRun(this.conn, runId)
    if (!run) throw new NotFoundError(`run ${runId} not found`)
    if (TERMINAL_RUN_STATUSES.has(run.status as RunStatus)) return this.readResult(runId)
    throw new ConflictError(`run ${runId} is ${run.status} but not in flight here`)
  }

  /** Aborts running actions and settles the run CANCELLED. */
  async cancel(runId: string): Promise<RunResult> {
    this.inFlight(runId, 'cancelled').cancel('CANCELLED')
    return this.wait(runId)
  }

  /** No new steps start until `resume`; running actions finish. */
  pause(runId: string): void {
    this.inFlight(runId, 'paused').pause()
  }

  resume(runId: string): void {
    this.inFlight(runId, 'resumed').unpause()
  }

  /** Delivers a payload to a step waiting for a signal (an approval, a callback). */
  signal(runId: string, stepId: string, payload: unknown): void {
    assertShallowJson(payload, 'payload')
    assertStorableSize(payload, 'payload', this.limits.maxValueBytes)
    this.inFlight(runId, 'signalled').signal(stepId, payload)
  }

  /** The execution of a run in flight, or the right error for one that is not. */
  private inFlight(runId: string, verb: string): RunExecution {
    this.recover()
    const execution = this.active.get(runId)
    if (execution) return execution
    const run = getRun(this.conn, runId)
    if (!run) throw new NotFoundError(`run ${runId} not found`)
    throw new ConflictError(`run ${runId} is ${run.status} and cannot be ${verb}`)
  }

  /**
   * A new run of the same workflow version that reuses the outputs of succeeded steps and runs the
   * failed step (or `fromStep`) and everything downstream again, optionally with edited params.
   */
  async retry(runId: string, options: { fromStep?: string; params?: Record<string, unknown> } = {}): Promise<{ runId: string }> {
    if (this.closing) throw new ConflictError('the coordinator is shutting down')
    this.refuseWhileStorageFails()
    this.recover()
    const old = getRun(this.conn, runId)
    if (!old) throw new NotFoundError(`run ${runId} not found`)
    if (this.active.has(runId) || this.rollbacks.has(runId) || !TERMINAL_RUN_STATUSES.has(old.status as RunStatus)) {
      throw new ConflictError(`run ${runId} is ${old.status}: only a finished run can be retried`)
    }
    const compiled = this.manager.load(old.workflowId, old.workflowVersion)
    const plan = planRetry(compiled.graph, getRunSteps(this.conn, runId), options.fromStep)
    if (options.params !== undefined) assertShallowJson(options.params, 'params')
    assertStorableSize(options.params, 'params', this.limits.maxValueBytes)
    if (options.params !== undefined && (typeof options.params !== 'object' || options.params === null || Array.isArray(options.params))) {
      throw new ValidationError('params must be an object', [{ path: 'params', message: 'must be an object' }])
    }
    let stepParams: Record<string, Record<string, unknown>> | undefined
    if (options.params) {
      const target = options.fromStep ?? (plan.failed.length === 1 ? plan.failed[0] : undefined)
      if (!target) {
        throw new ValidationError('edited params need a step: name it with fromStep', [{ path: 'fromStep', message: `${plan.failed.length} steps failed; say which one the params are for` }])
      }
      // The caller's params are data: no `{{ }}` in them is evaluated.
      stepParams = editedStepParams((old.stepParams as Record<string, Record<string, unknown>> | null) ?? undefined, target, options.params)
    } else if (old.stepParams) stepParams = old.stepParams as Record<string, Record<string, unknown>>
    const newRunId = newId('run')
    const steps = compiled.graph.ordered.map((n) => {
      const reused = plan.reuse.get(n.id)
      return {
        stepId: n.id, parentStepId: n.parent, kind: n.kind, factory: n.factory, action: n.action,
        ...(reused ? { status: 'SUCCEEDED', output: reused.output, params: reused.params, completedOrder: reused.completedOrder } : {}),
      }
    })
    await this.launchRun(
      compiled,
      {
        id: newRunId, input: old.input, params: old.params ?? undefined, stepParams, idempotencyKey: null,
        parentRunId: old.parentRunId, parentStepId: old.parentStepId, retryOf: runId, reused: plan.reuse,
      },
      steps,
      { retryOf: runId, fromStep: options.fromStep ?? null, reused: [...plan.reuse.keys()] },
    )
    return { runId: newRunId }
  }

  /** Compensates the succeeded steps of a finished run, newest first (the saga). */
  async rollback(runId: string): Promise<RunResult> {
    this.recover()
    const run = getRun(this.conn, runId)
    if (!run) throw new NotFoundError(`run ${runId} not found`)
    if (this.active.has(runId) || this.rollbacks.has(runId) || !TERMINAL_RUN_STATUSES.has(run.status as RunStatus) || run.status === 'ROLLED_BACK') {
      throw new ConflictError(`run ${runId} is ${run.status}${this.active.has(runId) ? ' and still in flight' : ''}: only a finished run can be rolled back`)
    }
    const done = this.untilFinished(runId)
    this.beginRollback(run, run.status as RunStatus, 'rollback requested')
    return done
  }

  // ---- sub-workflows

  async startChildRun(parent: RunHandle, stepId: string, def: StepDefinition, params: Record<string, unknown>): Promise<string> {
    let workflowId: string
    if (def.template !== undefined) {
      const template = this.manager.getTemplate(def.template)
      if (!template) throw new NotFoundError(`template "${def.template}" not found`)
      workflowId = `wf_tpl_${def.template}`
      this.manager.define(workflowId, template.definition, def.template)
    } else {
      // An inline workflow gets a stable id per parent workflow and step; a changed definition is a new version.
      const digest = createHash('sha256').update(`${parent.spec.workflowId}\u0000${stepId}`).digest('hex').slice(0, 20)
      workflowId = `wf_sub_${digest}`
      this.manager.define(workflowId, def.workflow, `${parent.spec.workflowName}.${stepId}`)
    }
    const { runId } = await this.start(workflowId, params, { parent: { runId: parent.id, stepId }, params })
    return runId
  }

  reattachChildRun(parent: RunHandle, stepId: string): void {
    const child = findChildRun(this.conn, parent.id, stepId)
    if (!child) {
      // The process stopped before the child run was committed: start it now.
      const state = parent.spec.graph.nodes.get(stepId)
      if (state) {
        const params = getRunSteps(this.conn, parent.id).find((r) => r.stepId === stepId)?.params as Record<string, unknown> | null
        this.startChildRun(parent, stepId, state.def, params ?? {}).catch((error) =>
          parent.childFinished(stepId, { runId: '', workflowId: '', status: 'FAILED', output: null, error: errorMessage(error), steps: {} }),
        )
      }
      return
    }
    // Delivered when it finishes; if it already has, deliver once the parent is registered as active.
    if (TERMINAL_RUN_STATUSES.has(child.status as RunStatus)) setImmediate(() => parent.childFinished(stepId, this.readResult(child.id)))
  }

  cancelChildRun(parentRunId: string, stepId: string): void {
    // A child started in this turn is not in the database yet: the map knows it.
    const childId = this.startedChildren.get(`${parentRunId}\u0000${stepId}`) ?? findChildRun(this.conn, parentRunId, stepId)?.id
    const execution = childId ? this.active.get(childId) : undefined
    if (execution) {
      try {
        execution.cancel('CANCELLED', `cancelled with its parent run ${parentRunId}`)
      } catch {
        // Already finishing.
      }
    }
  }

  startRollback(runId: string, reason: string): void {
    const run = getRun(this.conn, runId)
    if (run) this.beginRollback(run, 'ROLLING_BACK', reason)
  }

  private beginRollback(run: { id: string; workflowId: string; workflowVersion: number; input: unknown }, status: RunStatus, reason: string): void {
    const compiled = this.manager.load(run.workflowId, run.workflowVersion)
    const rollback = new RunRollback(this.context, {
      runId: run.id, workflowId: run.workflowId, graph: compiled.graph, input: run.input, status, reason,
    })
    this.rollbacks.set(run.id, rollback)
    const forget = () => {
      if (this.rollbacks.get(run.id) === rollback) this.rollbacks.delete(run.id)
    }
    rollback.run(getRunSteps(this.conn, run.id)).then(forget, (error) => {
      forget()
      this.context.logger.error({ err: error, runId: run.id }, 'rollback stopped')
    })
  }

  /** Resolves when the run's terminal event commits. */
  private untilFinished(runId: string): Promise<RunResult> {
    return new Promise((resolve) => {
      const list = this.waiters.get(runId) ?? []
      list.push(resolve)
      this.waiters.set(runId, list)
    })
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
      if (this.active.has(run.id) || this.rollbacks.has(run.id)) continue
      if (run.status === 'ROLLING_BACK') {
        this.beginRollback(run, 'ROLLING_BACK', run.error ?? 'rollback resumed after a restart')
        continue
      }
      let compiled: CompiledWorkflow
      try {
        compiled = this.manager.load(run.workflowId, run.workflowVersion)
      } catch (error) {
        this.context.logger.error({ err: error, runId: run.id }, 'cannot resume run')
        continue
      }
      const execution = this.execution(compiled, run, run.deadlineAt, run.status as RunStatus)
      this.active.set(run.id, execution)
      execution.resume(getRunSteps(this.conn, run.id))
    }
  }

  /**
   * Creates a run of `compiled` and starts it, in one commit: its execution, its run and step rows
   * with RUN_CREATED (`created` adds to that event's payload), and then a new run begins at once
   * (its row is inserted RUNNING, and RUN_STARTED records only its event; RUN_CREATED's still says
   * PENDING), while a retry (`retryOf`) records the steps it reuses SUCCEEDED and resumes from
   * them. Resolves once that commit is done.
   */
  private launchRun(
    compiled: CompiledWorkflow,
    run: {
      id: string; input: unknown; params: unknown; stepParams?: Record<string, Record<string, unknown>>; idempotencyKey: string | null
      parentRunId: string | null; parentStepId: string | null; retryOf?: string; reused?: ReadonlyMap<string, { output: unknown }>
    },
    steps: NewStep[],
    created: Record<string, unknown>,
  ): Promise<void> {
    const now = Date.now()
    const { workflowId, version } = compiled
    const execution = this.execution(compiled, run, compiled.definition.timeoutMs ? now + compiled.definition.timeoutMs : null, 'PENDING')
    const retryOf = run.retryOf
    this.journal.record(
      () => execution.noteRowIds(createRun(this.conn, {
        id: run.id, workflowId, workflowVersion: version, status: retryOf ? 'PENDING' : 'RUNNING', input: run.input,
        idempotencyKey: run.idempotencyKey, parentRunId: run.parentRunId, parentStepId: run.parentStepId, retryOf: retryOf ?? null,
        params: run.params, stepParams: run.stepParams, deadlineAt: execution.spec.deadlineAt, createdAt: now, startedAt: retryOf ? undefined : now,
      }, steps)),
      {
        type: 'RUN_CREATED', runId: run.id, workflowId, stepId: null, attempt: null, status: 'PENDING', at: now,
        payload: { workflowVersion: version, input: run.input, ...created },
      },
    )
    if (retryOf) {
      for (const [stepId, row] of run.reused ?? []) {
        this.journal.record(undefined, {
          type: 'STEP_SUCCEEDED', runId: run.id, workflowId, stepId, attempt: null, status: 'SUCCEEDED', at: now,
          payload: { output: summarize(row.output), reusedFrom: retryOf },
        })
      }
      this.active.set(run.id, execution)
      execution.resume(steps.map((s) => ({
        id: 0, runId: run.id, stepId: s.stepId, parentStepId: s.parentStepId, kind: s.kind, factory: s.factory, action: s.action,
        status: s.status ?? 'PENDING', params: s.params ?? null, output: s.output ?? null, error: null, attempts: 0, wakeAt: null,
        completedOrder: s.completedOrder ?? null, startedAt: null, finishedAt: null,
      })))
    } else {
      this.active.set(run.id, execution)
      if (run.parentRunId) this.startedChildren.set(`${run.parentRunId}\u0000${run.parentStepId}`, run.id)
      execution.begin()
    }
    return new Promise<void>((resolve) => this.journal.afterCommit(resolve))
  }

  private execution(
    compiled: CompiledWorkflow,
    run: { id: string; input: unknown; params?: unknown; stepParams?: unknown },
    deadlineAt: number | null,
    status: RunStatus,
  ): RunExecution {
    const boundParams = (run.params as Record<string, unknown> | null | undefined) ?? compiled.boundParams
    return new RunExecution(this, {
      id: run.id, workflowId: compiled.workflowId, workflowName: compiled.name, workflowVersion: compiled.version,
      definition: compiled.definition, graph: compiled.graph, input: run.input, boundParams,
      stepParams: stepParamsForRun(compiled.graph, boundParams, (run.stepParams as Record<string, Record<string, unknown>> | null | undefined) ?? undefined),
      deadlineAt,
    }, status)
  }

  /**
   * Stops: no new runs; waits up to `drainMs` for running actions to finish, then aborts the rest
   * without recording them, so the next start resumes those runs (at-least-once).
   */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.draining = true
    const drainMs = options.drainMs ?? 0
    if (drainMs > 0) {
      const until = Date.now() + drainMs
      while (Date.now() < until && [...this.active.values()].some((r) => r.activeActions > 0)) {
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    for (const run of this.active.values()) run.abandon(new CancelledError('shutting down'))
    for (const rollback of this.rollbacks.values()) rollback.abandon()
    this.active.clear()
    this.rollbacks.clear()
    this.unlistenBus()
    this.unlistenRegistry()
    this.journal.flush()
    if (this.owned) closeContext(this.context)
  }
}

function toList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}

function positiveOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback
}
