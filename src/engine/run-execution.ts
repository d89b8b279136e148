// One run in flight, as a state machine: its step graph, what is ready, what runs, and every
// transition (moveTo, settle; the run's own in transitionRun), each recorded through the
// StepRecorder with its event. Event-driven: a settling step makes its dependents ready and they
// are dispatched at once, no polling.
//
// How a step of each kind goes is its collaborator's: one attempt of an action (attempts.ts), a
// forEach's items (for-each.ts), a sub-workflow's child run (sub-workflows.ts), a durable wait
// (waits.ts). Each sees this run through a narrow interface of its own (built on step-state.ts's
// StepTransitions), which is why moveTo, settle, fail, enqueue, active, addStep, startMembers and
// the finalizing/abandoned flags are public here; only this class changes a step's status.
import type { StepRow } from '../db/schema.ts'
import { StepRecorder } from './step-recorder.ts'
import { TERMINAL_RUN_STATUSES, type EventType, type RunResult, type RunStatus, type StepResult, type StepStatus } from './interfaces.ts'
import type { RegisteredAction } from './factory.ts'
import type { Pool, Waiter } from './pools.ts'
import type { ExecutionHost, RunHandle } from './execution-host.ts'
import type { RunSpec } from './run-spec.ts'
import { assertRunTransition, assertStepTransition, SETTLED_STEP_STATUSES } from './states.ts'
import { evaluateExpression, hasExpression, isTruthy, resolveTemplates } from './expressions.ts'
import { CancelledError, ConflictError, errorMessage, TimeoutError } from './errors.ts'
import { summarize, summarizeText, toJsonText } from './summary.ts'
import { bytesOver, sizeMessage } from './value-limits.ts'
import type { Settlement, SettledStatus, StepState } from './step-state.ts'
import { StepAttempts, type AttemptRun } from './attempts.ts'
import { StepWaits, type WaitingRun } from './waits.ts'
import { ForEachSteps, forEachItems, type ForEachRun } from './for-each.ts'
import { SubWorkflowSteps, type SubWorkflowRun } from './sub-workflows.ts'

export { MAX_FOR_EACH_ITEMS } from './for-each.ts'

/** `failGraceMs` when a workflow does not set it. */
export const DEFAULT_FAIL_GRACE_MS = 60_000

export type { RunSpec }

export class RunExecution implements RunHandle, AttemptRun, WaitingRun, ForEachRun, SubWorkflowRun {
  status: RunStatus
  readonly id: string
  private readonly states = new Map<string, StepState>()
  /** `steps.<id>` in expressions. */
  private readonly stepScope: Record<string, { output: unknown; status: StepStatus; error: string | null; attempts: number }> = {}
  /** `ctx.steps`: outputs of succeeded steps. */
  private readonly outputs: Record<string, unknown> = {}
  private readonly baseScope: Record<string, unknown>
  private unsettled = 0
  private stopping: { status: RunStatus; error?: string } | undefined
  /** Settling its last steps (see finalize): read by the collaborators, set only here. */
  finalizing = false
  private completed = 0
  private runPool: Pool
  private deadlineTimer: NodeJS.Timeout | undefined
  /** The run's output and error as its terminal change writes them (see `endedResult`). */
  private ended: { output: unknown; error: string | null } | undefined
  /** Bounds how long running actions may go on after a failure stopped the run (`failGraceMs`). */
  private graceTimer: NodeJS.Timeout | undefined
  /** Shut down (see abandon): read by the collaborators, set only here. */
  abandoned = false
  /** One of its changes was refused (see storageRefused). */
  private unstored = false
  /** Where every change of this run is recorded (the only part that knows the storage). */
  private readonly rec: StepRecorder
  private readonly waits: StepWaits
  private readonly attempts: StepAttempts
  private readonly forEach: ForEachSteps
  private readonly subWorkflows: SubWorkflowSteps

  constructor(private readonly host: ExecutionHost, readonly spec: RunSpec, status: RunStatus) {
    this.id = spec.id
    this.status = status
    this.rec = new StepRecorder(host.conn, host.journal, spec.id, spec.workflowId)
    this.waits = new StepWaits(this, this.rec, this.states)
    this.attempts = new StepAttempts(this, host, this.rec, this.outputs, this.waits)
    this.forEach = new ForEachSteps(this, this.rec)
    this.subWorkflows = new SubWorkflowSteps(this, host, this.rec, this.states)
    const maxParallel = spec.definition.maxParallel ?? host.defaultMaxParallel
    this.runPool = host.pools.pool(`run:${spec.id}`, maxParallel ?? Number.POSITIVE_INFINITY)
    this.baseScope = {
      input: spec.input,
      params: spec.boundParams ?? {},
      steps: this.stepScope,
      run: { id: spec.id },
      workflow: { id: spec.workflowId, name: spec.workflowName, version: spec.workflowVersion },
    }
    for (const node of spec.graph.ordered) {
      this.states.set(node.id, {
        node, status: 'PENDING', attempts: 0, output: undefined, error: undefined, remaining: node.deps.length,
        childrenLeft: node.children.length, upstreamFailed: false, memberFailed: false, params: undefined,
        preparing: false, admitting: false, token: 0,
      })
    }
    this.unsettled = this.states.size
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts a new run (its RUN_CREATED is already queued, with the row inserted RUNNING and started). */
  begin(): void {
    this.transitionRun('RUNNING', 'RUN_STARTED', {}, { started: true }, false, false)
    this.armDeadline()
    for (const state of this.states.values()) this.maybeActivate(state)
  }

  /**
   * The step rows were inserted in graph order from `first` on (createRun, inside the commit that
   * writes them): each step's row id, so its settling UPDATE finds the row by id.
   */
  noteRowIds(first: number): void {
    this.rec.noteRowIds(this.spec.graph.ordered, first)
  }

  /** Resumes a run a previous process left unfinished, from its step rows. */
  resume(rows: StepRow[]): void {
    let maxOrder = 0
    // A forEach's items were made at run time: rebuild them from their rows.
    for (const row of rows) {
      if (this.states.has(row.stepId) || !row.parentStepId) continue
      const parent = this.states.get(row.parentStepId)
      if (parent?.node.kind === 'forEach') this.forEach.addItem(parent, row.stepId, (row.params as Record<string, unknown>) ?? {})
    }
    for (const row of rows) {
      const state = this.states.get(row.stepId)
      if (!state) continue
      this.rec.noteRowId(row.stepId, row.id)
      state.attempts = row.attempts
      state.status = row.status as StepStatus
      state.params = (row.params as Record<string, unknown> | null) ?? undefined
      if (row.completedOrder) maxOrder = Math.max(maxOrder, row.completedOrder)
      if (SETTLED_STEP_STATUSES.has(state.status)) {
        state.output = row.output ?? undefined
        state.error = row.error ?? undefined
        // A SKIPPED step with an error was skipped because something upstream failed.
        state.upstreamFailed = state.status === 'SKIPPED' && !!row.error
        this.noteSettled(state)
      }
    }
    this.completed = maxOrder
    // Settled steps release their dependents' counters and their groups' member counters.
    for (const state of this.states.values()) {
      if (!SETTLED_STEP_STATUSES.has(state.status)) continue
      this.unsettled--
      const hard = this.failedHard(state)
      for (const id of state.node.dependents) {
        const d = this.states.get(id)!
        d.remaining--
        if (hard) d.upstreamFailed = true
      }
      if (state.node.parent) {
        const parent = this.states.get(state.node.parent)!
        parent.childrenLeft--
        if (hard) parent.memberFailed = true
      }
    }
    if (this.status === 'PENDING') this.transitionRun('RUNNING', 'RUN_STARTED', {}, { started: true })
    this.armDeadline()
    // Switch on the statuses read from the rows: starting a group below starts its members, which
    // come later in this loop and must not be dispatched a second time (as if interrupted).
    const loaded = [...this.states.values()].map((state) => [state, state.status] as const)
    for (const [state, status] of loaded) {
      if (state.status !== status) continue
      switch (status) {
        case 'RUNNING':
          if (state.node.kind === 'subworkflow') {
            this.subWorkflows.reattach(state)
          } else if (state.node.kind === 'group' || state.node.kind === 'forEach') {
            this.startMembers(state)
          } else {
            // Interrupted mid-attempt: at-least-once, run it again as a new attempt.
            this.rec.attemptEnded(state.node.id, state.attempts, 'INTERRUPTED', 'the process stopped during this attempt')
            this.enqueue(state, true)
          }
          break
        case 'READY':
          this.enqueue(state, true)
          break
        case 'RETRY_SCHEDULED': {
          const row = rows.find((r) => r.stepId === state.node.id)
          this.attempts.armRetry(state, Math.max(0, (row?.wakeAt ?? Date.now()) - Date.now()))
          break
        }
        case 'PENDING':
          this.maybeActivate(state)
          break
        case 'WAITING':
          this.waits.resume(state, rows.find((r) => r.stepId === state.node.id)?.output)
          break
        default:
          break
      }
    }
    this.checkDone()
  }

  /** Cancels (or times out) the run: aborts running actions, settles everything. */
  cancel(status: 'CANCELLED' | 'TIMED_OUT' = 'CANCELLED', reason?: string): void {
    if (this.finalizing || (this.status !== 'RUNNING' && this.status !== 'PAUSED' && this.status !== 'PENDING')) {
      throw new ConflictError(`run ${this.id} is ${this.status} and cannot be cancelled`)
    }
    const error = reason ?? (status === 'TIMED_OUT' ? 'run timed out' : 'run cancelled')
    this.stopping = { status, error }
    this.subWorkflows.cancelChildren()
    this.abortRunning(status === 'TIMED_OUT' ? new TimeoutError(error) : new CancelledError(error))
    this.finalize(status, error)
  }

  /** Aborts every running action and records its attempt CANCELLED; `finalize` then settles the steps. */
  private abortRunning(reason: Error): void {
    for (const state of this.states.values()) {
      if (state.status === 'RUNNING' && state.node.kind === 'action') this.attempts.cancel(state, reason)
    }
  }

  /** Stops all activity without recording anything (shutdown): the next start resumes the run. */
  abandon(reason: Error): void {
    this.abandoned = true
    this.rec.halt()
    clearTimeout(this.deadlineTimer)
    clearTimeout(this.graceTimer)
    for (const state of this.states.values()) {
      clearTimeout(state.timer)
      if (state.waiter) state.waiter.cancelled = true
      this.attempts.abandon(state, reason)
    }
    this.dropPools()
  }

  /**
   * The database refused one of this run's changes for good (Journal.onRefused): the run cannot go
   * on as recorded. Nothing more of it runs, and it ends FAILED with its unsettled steps.
   */
  storageRefused(error: Error): void {
    if (this.unstored) return
    this.unstored = true
    const message = `a change of this run could not be stored: ${errorMessage(error)}`
    this.abandon(new CancelledError(message))
    this.status = 'FAILED'
    // Its result is read back from the rows, not taken from memory (see hasEnded).
    this.finalizing = true
    this.ended = undefined
    this.rec.runUnstored(message, () => this.host.onFinished(this))
  }

  /** Forgets this run's own pools (its maxParallel and its groups' maxParallel) once it is done. */
  private dropPools(): void {
    this.host.pools.drop(this.runPool.name)
    for (const node of this.spec.graph.ordered) {
      if ((node.kind === 'group' || node.kind === 'forEach') && node.def.maxParallel) this.host.pools.drop(groupPoolName(this.id, node.id))
    }
  }

  get activeActions(): number {
    return this.attempts.inFlight
  }

  /**
   * This execution has ended the run (not by going on to a rollback): the run's status, output and
   * error and every step's status, output, attempts and error are in memory as their rows hold
   * them, which spares reading them back (a row per step) for its result.
   */
  get hasEnded(): boolean {
    return this.finalizing && this.ended !== undefined && TERMINAL_RUN_STATUSES.has(this.status)
  }

  /** The run's result as its rows hold it once `hasEnded` (see there). */
  endedResult(): RunResult {
    if (!this.hasEnded) throw new Error(`run ${this.id} has not ended`)
    const steps: Record<string, StepResult> = {}
    for (const [id, s] of this.states) {
      steps[id] = s.error
        ? { status: s.status, output: s.output ?? null, attempts: s.attempts, error: s.error }
        : { status: s.status, output: s.output ?? null, attempts: s.attempts }
    }
    const { output, error } = this.ended!
    const { id: runId, spec: { workflowId } } = this
    return error ? { runId, workflowId, status: this.status, output, error, steps } : { runId, workflowId, status: this.status, output, steps }
  }

  // ---------------------------------------------------------------- activation

  private maybeActivate(state: StepState): void {
    if (state.status !== 'PENDING' || state.preparing || state.admitting || state.remaining > 0) return
    const parent = state.node.parent ? this.states.get(state.node.parent)! : undefined
    if (parent && parent.status !== 'RUNNING') {
      // The group was skipped and will never start its members: they are skipped with it.
      if (parent.status === 'SKIPPED' && this.active) {
        this.settle(state, 'SKIPPED', parent.upstreamFailed
          ? { error: 'skipped: its group was skipped because a step it depends on failed', upstreamFailed: true }
          : { reason: 'its group was skipped' })
      }
      return
    }
    // Draining for shutdown: nothing new starts; the step stays PENDING for the next process.
    if (!this.active || this.host.draining) return
    if (state.upstreamFailed) {
      this.settle(state, 'SKIPPED', { error: 'skipped: a step it depends on failed', upstreamFailed: true })
      return
    }
    const def = state.node.def
    if (state.fixedParams) {
      this.activate(state, state.fixedParams)
      return
    }
    if (def.when === false) {
      this.settle(state, 'SKIPPED', { reason: 'when is false' })
      return
    }
    const rawParams = this.spec.stepParams?.[state.node.id] ?? def.params ?? this.spec.boundParams ?? {}
    if (state.node.kind !== 'forEach' && typeof def.when !== 'string' && !hasExpression(rawParams)) {
      this.activate(state, rawParams)
      return
    }
    state.preparing = true
    void this.prepare(state, rawParams)
  }

  /**
   * Evaluates `when`, a forEach's list and `{{ }}` params (JSONata evaluates asynchronously), then
   * skips, fails or starts the step.
   */
  private async prepare(state: StepState, rawParams: Record<string, unknown>): Promise<void> {
    const def = state.node.def
    const scope = this.scopeFor(state)
    let stage = 'when'
    let params: Record<string, unknown> | Record<string, unknown>[] | undefined
    let failure: string | undefined
    try {
      if (typeof def.when !== 'string' || isTruthy(await evaluateExpression(def.when, scope))) {
        if (state.node.kind === 'forEach') {
          stage = 'forEach'
          const items = await forEachItems(def.forEach!, scope)
          stage = 'params'
          const each: Record<string, unknown>[] = []
          for (let index = 0; index < items.length; index++) {
            each.push((await resolveTemplates(rawParams, { ...scope, item: items[index], index })) as Record<string, unknown>)
          }
          params = each
        } else {
          stage = 'params'
          params = (await resolveTemplates(rawParams, scope)) as Record<string, unknown>
        }
      }
    } catch (error) {
      failure = `${stage}: ${errorMessage(error)}`
    }
    state.preparing = false
    if (state.status !== 'PENDING' || !this.active) {
      // The run stopped while this step was being prepared; it may have been waiting only for this one.
      this.checkDone()
      return
    }
    if (failure !== undefined) this.fail(state, failure, false)
    else if (params === undefined) this.settle(state, 'SKIPPED', { reason: 'when is false' })
    else if (Array.isArray(params)) this.forEach.expand(state, params)
    else this.activate(state, params)
  }

  // ---------------------------------------------------------------- groups and forEach members

  /** A forEach item made at run time joins the run's steps (ForEachSteps). */
  addStep(state: StepState): void {
    this.states.set(state.node.id, state)
    this.unsettled++
  }

  /** Starts the members of a RUNNING group or forEach, or settles it at once if it has none. */
  startMembers(state: StepState): void {
    if (state.childrenLeft === 0) this.settleGroup(state)
    else for (const id of this.childrenOf(state)) this.maybeActivate(this.states.get(id)!)
  }

  private childrenOf(state: StepState): string[] {
    return state.items ?? state.node.children
  }

  private activate(state: StepState, params: Record<string, unknown>): void {
    if (state.node.kind === 'group') {
      this.startGroup(state)
      return
    }
    if (state.node.kind === 'subworkflow') {
      this.subWorkflows.start(state, params)
      return
    }
    state.params = params
    this.enqueue(state, false)
  }

  private startGroup(state: StepState): void {
    this.moveTo(state, 'RUNNING')
    state.startedAt = Date.now()
    this.rec.groupStarted(state, state.startedAt, { group: true })
    this.startMembers(state)
  }

  /**
   * READY once the journal admits a new action (Journal.admit), like the attempt's start. While the
   * open commit is full, a step whose dependencies settled (or whose retry is due) waits here, still
   * PENDING or RETRY_SCHEDULED, and then becomes READY in the commit its attempt starts in, where
   * STARTED's row write supersedes READY's. Made READY at once, it became READY in the full commit
   * and started in the next, writing its row twice. Its STEP_READY is recorded all the same.
   */
  enqueue(state: StepState, recovered: boolean): void {
    if (recovered) {
      this.enqueueAdmitted(state, true)
      return
    }
    if (state.admitting) return
    const from = state.status
    state.admitting = true
    this.rec.admit(() => {
      state.admitting = false
      // Stopped, paused, cancelled or shutting down meanwhile: not enqueued. Finalize settles it,
      // unpause enqueues it again, recovery finds it PENDING (or RETRY_SCHEDULED) in its row.
      if (state.status !== from || !this.active || this.host.draining) return
      this.enqueueAdmitted(state, false)
    })
  }

  /** READY: waits for a slot of every pool the step needs, then starts an attempt. */
  private enqueueAdmitted(state: StepState, recovered: boolean): void {
    const action = this.actionOf(state)
    // A recovered step was READY or RUNNING in its row: made READY again without a transition check.
    if (recovered) state.status = 'READY'
    else this.moveTo(state, 'READY')
    const params = state.params ?? {}
    this.rec.ready(state, params, recovered)
    if (!action) {
      // Only possible on recovery before the factory is registered again: wait for it.
      this.host.awaitFactory(state.node.factory!, () => this.enqueueRegistered(state))
      return
    }
    this.acquire(state, action)
  }

  private enqueueRegistered(state: StepState): void {
    const action = this.actionOf(state)
    if (state.status === 'READY' && this.active && action) this.acquire(state, action)
  }

  private acquire(state: StepState, action: RegisteredAction): void {
    let pools: Pool[]
    try {
      pools = [this.host.globalPool, this.runPool, ...this.host.actionPools(action, state.node.def.pool)]
    } catch (error) {
      this.fail(state, errorMessage(error), false)
      return
    }
    for (let p = state.node.parent; p; p = this.states.get(p)!.node.parent) {
      const maxParallel = this.states.get(p)!.node.def.maxParallel
      if (maxParallel) pools.push(this.host.pools.pool(groupPoolName(this.id, p), maxParallel))
    }
    // `start` assigned, not in the literal: see StepAttempts.contextFor (tsx's `__name()` wrappers).
    const waiter: Waiter = { pools, start: unassigned }
    waiter.start = () => this.rec.admit(() => this.attempts.start(state, action, pools))
    state.waiter = waiter
    this.host.pools.acquire(waiter)
  }

  // ---------------------------------------------------------------- told from outside

  /** The child run of a sub-workflow step finished (told by the host, also after a restart). */
  childFinished(stepId: string, result: RunResult): void {
    this.subWorkflows.finished(stepId, result)
  }

  /** Delivers `signalRun`'s payload to a step waiting for a signal (see StepWaits). */
  signal(stepId: string, payload: unknown): void {
    this.waits.signal(stepId, payload)
  }

  // ---------------------------------------------------------------- pause

  /** No new dispatch; running actions finish. */
  pause(): void {
    if (this.status !== 'RUNNING' || this.stopping || this.finalizing) {
      throw new ConflictError(`run ${this.id} is ${this.stopping ? 'stopping' : this.status} and cannot be paused`)
    }
    this.transitionRun('PAUSED', 'RUN_PAUSED', {}, {})
  }

  /** Dispatch continues where the pause left it. */
  unpause(): void {
    if (this.status !== 'PAUSED' || this.stopping || this.finalizing) {
      throw new ConflictError(`run ${this.id} is ${this.status} and cannot be resumed`)
    }
    this.transitionRun('RUNNING', 'RUN_RESUMED', {}, {})
    for (const state of this.states.values()) {
      if (state.status === 'PENDING') this.maybeActivate(state)
      else if (state.status === 'READY' && !state.waiter) {
        const action = this.actionOf(state)
        if (action) this.acquire(state, action)
      } else if (state.status === 'RETRY_SCHEDULED' && !state.timer) this.enqueue(state, false)
      else if (state.status === 'RUNNING' && (state.node.kind === 'group' || state.node.kind === 'forEach') && state.childrenLeft === 0) this.settleGroup(state)
    }
    this.checkDone()
  }

  // ---------------------------------------------------------------- settling

  /** FAILED, with whether another attempt could have worked (`retryable`, in its event). */
  fail(state: StepState, error: string, retryable: boolean): void {
    this.settle(state, 'FAILED', { error, retryable })
  }

  /** Settles the step (recorded with its event), then lets its dependents and its group go on. */
  settle(state: StepState, status: SettledStatus, extra: Settlement): void {
    this.moveTo(state, status)
    clearTimeout(state.timer)
    state.timer = undefined
    if (state.waiter) state.waiter.cancelled = true
    state.output = extra.output
    state.error = extra.error
    if (extra.upstreamFailed) state.upstreamFailed = true
    const at = Date.now()
    const order = status === 'SUCCEEDED' ? ++this.completed : null
    const payload: Record<string, unknown> = {}
    const outputText = extra.outputText
    if (status === 'SUCCEEDED') payload.output = outputText === undefined ? summarize(extra.output) : summarizeText(extra.output, outputText)
    if (extra.error !== undefined) payload.error = extra.error
    if (extra.reason !== undefined) payload.reason = extra.reason
    if (extra.retryable !== undefined) payload.retryable = extra.retryable
    if (state.startedAt) payload.durationMs = at - state.startedAt
    this.rec.settled(state, { status, output: extra.output, outputText, error: extra.error ?? null, at, completedOrder: order }, payload)
    this.noteSettled(state)
    this.unsettled--
    if (this.finalizing) return
    this.propagate(state)
    this.checkDone()
  }

  private noteSettled(state: StepState): void {
    this.stepScope[state.node.id] = {
      output: state.output ?? null, status: state.status, error: state.error ?? null, attempts: state.attempts,
    }
    if (state.status === 'SUCCEEDED') this.outputs[state.node.id] = state.output
  }

  /** Failed (not continueOnError), cancelled, or skipped because of a failure upstream. */
  private failedHard(state: StepState): boolean {
    if (state.status === 'FAILED') return !state.node.def.continueOnError
    if (state.status === 'CANCELLED') return true
    return state.status === 'SKIPPED' && state.upstreamFailed
  }

  private propagate(state: StepState): void {
    const hard = this.failedHard(state)
    // Count this member out of its group before a failure stops the run: stopping cancels the
    // group's queued members, and the last of them settles the group (FAILED, not CANCELLED).
    const parent = state.node.parent ? this.states.get(state.node.parent)! : undefined
    if (parent) {
      parent.childrenLeft--
      if (hard) parent.memberFailed = true
    }
    if (hard && state.status === 'FAILED') {
      const onFailure = this.spec.definition.onFailure ?? 'fail'
      if (onFailure !== 'continue') this.stop('FAILED', `step ${state.node.id} failed: ${state.error}`)
    }
    for (const id of state.node.dependents) {
      const d = this.states.get(id)!
      d.remaining--
      if (hard) d.upstreamFailed = true
      this.maybeActivate(d)
    }
    if (state.status === 'SKIPPED' && state.node.kind === 'group') {
      for (const id of state.node.children) this.maybeActivate(this.states.get(id)!)
    }
    if (parent && parent.childrenLeft === 0 && parent.status === 'RUNNING') this.settleGroup(parent)
  }

  private settleGroup(state: StepState): void {
    const children = this.childrenOf(state)
    let output: unknown
    if (state.node.kind === 'forEach') output = children.map((id) => this.states.get(id)!.output ?? null)
    else {
      const byId: Record<string, unknown> = {}
      for (const id of children) byId[id.slice(state.node.id.length + 1)] = this.states.get(id)!.output ?? null
      output = byId
    }
    if (state.memberFailed) {
      const failed = children.filter((id) => this.failedHard(this.states.get(id)!))
      this.settle(state, 'FAILED', { error: `member step(s) failed: ${failed.join(', ')}`, output })
    } else this.settle(state, 'SUCCEEDED', { output })
  }

  /** Stop dispatching; the run ends with `status` once running actions have finished. */
  private stop(status: RunStatus, error: string): void {
    if (this.stopping) return
    this.stopping = { status, error }
    this.subWorkflows.cancelChildren()
    for (const state of this.states.values()) {
      if (state.status === 'READY' || state.status === 'RETRY_SCHEDULED') {
        this.settle(state, 'CANCELLED', { reason: error })
      }
    }
    // Running actions may finish within the grace; one that hangs past it must not keep the run open.
    const graceMs = this.spec.definition.failGraceMs ?? DEFAULT_FAIL_GRACE_MS
    this.graceTimer = setTimeout(() => {
      this.graceTimer = undefined
      if (this.finalizing || this.abandoned || this.attempts.inFlight === 0) return
      this.abortRunning(new CancelledError(`aborted: still running ${graceMs} ms after the run failed (failGraceMs)`))
      this.finalize(status, error)
    }, graceMs)
  }

  private checkDone(): void {
    if (this.finalizing || this.abandoned) return
    if (this.stopping) {
      if (this.attempts.inFlight === 0 && !this.anyPreparing()) this.finalize(this.stopping.status, this.stopping.error)
      return
    }
    // A paused run finishes only after it is resumed.
    if (this.status === 'PAUSED') return
    if (this.unsettled > 0) return
    const failed = [...this.states.values()].filter((s) => s.status === 'FAILED' && !s.node.def.continueOnError)
    if (failed.length > 0) this.finalize('FAILED', `step(s) failed: ${failed.map((s) => s.node.id).join(', ')}`)
    else this.finalize('SUCCEEDED')
  }

  private anyPreparing(): boolean {
    for (const s of this.states.values()) if (s.preparing) return true
    return false
  }

  private finalize(status: RunStatus, error?: string): void {
    if (this.finalizing) return
    this.finalizing = true
    clearTimeout(this.deadlineTimer)
    clearTimeout(this.graceTimer)
    for (const state of this.states.values()) {
      if (SETTLED_STEP_STATUSES.has(state.status)) continue
      state.preparing = false
      this.settle(state, 'CANCELLED', { reason: error ?? status })
    }
    if (status === 'SUCCEEDED') void this.finishWithOutput()
    else if (status === 'FAILED' && this.spec.definition.onFailure === 'rollback') {
      // The saga: compensate what succeeded instead of ending FAILED.
      this.transitionRun('ROLLING_BACK', 'RUN_ROLLING_BACK', { error }, { error: error ?? null }, () => {
        this.host.pools.drop(this.runPool.name)
        this.host.onFinished(this)
        this.host.startRollback(this.id, error ?? 'run failed')
      })
    } else this.transitionRun(status, `RUN_${status}` as EventType, { error }, { finished: true, error: error ?? null }, true)
  }

  private async finishWithOutput(): Promise<void> {
    let output: unknown
    // The JSON text is kept for the run row and the event's summary: stringified once.
    let outputText: string
    try {
      const expr = this.spec.definition.output
      if (expr === undefined) {
        const leaves: Record<string, unknown> = {}
        for (const id of this.spec.graph.leaves) leaves[id] = this.states.get(id)!.output ?? null
        output = leaves
        outputText = JSON.stringify(leaves)
      } else {
        ;({ value: output, text: outputText } = toJsonText(await resolveTemplates(expr, this.baseScope)))
      }
      const bytes = bytesOver(outputText, this.host.limits.maxValueBytes)
      if (bytes !== undefined) throw new Error(sizeMessage('the run output', bytes, this.host.limits.maxValueBytes, 'limits.maxValueBytes'))
    } catch (error) {
      const message = `output: ${errorMessage(error)}`
      this.transitionRun('FAILED', 'RUN_FAILED', { error: message }, { finished: true, error: message }, true)
      return
    }
    if (this.abandoned) return
    this.transitionRun('SUCCEEDED', 'RUN_SUCCEEDED', { output: summarizeText(output, outputText) }, { finished: true, output, outputText }, true)
  }

  private transitionRun(
    status: RunStatus,
    type: EventType,
    payload: Record<string, unknown>,
    change: { started?: boolean; finished?: boolean; output?: unknown; outputText?: string; error?: string | null },
    after: boolean | (() => void) = false,
    writeRow = true,
  ): void {
    if (this.abandoned) return
    assertRunTransition(this.id, this.status, status)
    this.status = status
    if (change.finished) this.ended = { output: change.output ?? null, error: change.error ?? null }
    this.rec.runChanged({ status, ...change }, type, payload, after === true ? () => this.onCommittedTerminal() : after === false ? undefined : after, writeRow)
  }

  private onCommittedTerminal(): void {
    this.dropPools()
    this.host.onFinished(this)
  }

  private armDeadline(): void {
    if (!this.spec.deadlineAt) return
    const ms = Math.max(0, this.spec.deadlineAt - Date.now())
    this.deadlineTimer = setTimeout(() => {
      // Also while stopping after a failure: the deadline bounds the wait for the steps still running.
      if (!this.finalizing && !this.abandoned && (this.status === 'RUNNING' || this.status === 'PAUSED')) {
        const limit = this.spec.definition.timeoutMs
        this.cancel('TIMED_OUT', `run timed out after ${limit} ms`)
      }
    }, ms)
  }

  // ---------------------------------------------------------------- helpers

  /** Every step status change goes through the one table of legal transitions (states.ts). */
  moveTo(state: StepState, to: StepStatus): void {
    assertStepTransition(state.node.id, state.status, to)
    state.status = to
  }

  /** RUNNING, not stopping, ending or shut down: steps may start. */
  get active(): boolean {
    return this.status === 'RUNNING' && !this.stopping && !this.finalizing && !this.abandoned
  }

  private actionOf(state: StepState): RegisteredAction | undefined {
    return this.host.registry.action(state.node.factory!, state.node.action!)
  }

  private scopeFor(state: StepState): Record<string, unknown> {
    return { ...this.baseScope, previous: state.node.previous ? this.outputs[state.node.previous] ?? null : null }
  }
}

/** Placeholder of a method assigned right after its object literal. */
function unassigned(): never {
  throw new Error('not assigned')
}

function groupPoolName(runId: string, groupId: string): string {
  return `group:${runId}:${groupId}`
}
