// The saga: compensate a run's succeeded steps in reverse completion order, each as its own events.
// A failing compensation is recorded (COMPENSATION_FAILED) and the rollback goes on; the run ends
// ROLLED_BACK, or FAILED with the reasons. Resumable: a restart picks up the steps not yet
// compensated, and a second rollback of the FAILED run tries the failed compensations again.
import type { StepRow } from '../db/schema.ts'
import { setStepStatus } from '../db/sql/setStepStatus.ts'
import { setRunStatus } from '../db/sql/setRunStatus.ts'
import type { NewEvent } from '../db/sql/insertEvent.ts'
import type { Journal } from './journal.ts'
import type { Connection } from '../db/connection.ts'
import type { FactoryRegistry } from './factory.ts'
import type { Graph } from './graph.ts'
import type { ActionContext, EventType, RunStatus, StepStatus } from './interfaces.ts'
import { assertRunTransition, assertStepTransition } from './states.ts'
import { CancelledError, errorMessage, TimeoutError } from './errors.ts'

export interface RollbackHost {
  conn: Connection
  journal: Journal
  registry: FactoryRegistry
}

export interface RollbackSpec {
  runId: string
  workflowId: string
  graph: Graph
  input: unknown
  /** The run's status now: a finished run first goes ROLLING_BACK. */
  status: RunStatus
  reason: string
}

export class RunRollback {
  private readonly controller = new AbortController()

  constructor(private readonly host: RollbackHost, private readonly spec: RollbackSpec) {}

  /** Compensates; resolves when the run has reached ROLLED_BACK or FAILED (committed). */
  async run(rows: StepRow[]): Promise<void> {
    const { runId, reason } = this.spec
    if (this.spec.status !== 'ROLLING_BACK') {
      assertRunTransition(runId, this.spec.status, 'ROLLING_BACK')
      this.record(() => setRunStatus(this.host.conn, { runId, status: 'ROLLING_BACK', at: Date.now() }), 'RUN_ROLLING_BACK', null, 'ROLLING_BACK', { reason })
    }
    const outputs: Record<string, unknown> = {}
    for (const row of rows) if (row.status === 'SUCCEEDED' || row.status === 'COMPENSATING' || row.status === 'COMPENSATION_FAILED') outputs[row.stepId] = row.output
    const todo = rows
      .filter((r) => r.kind === 'action' && (r.status === 'SUCCEEDED' || r.status === 'COMPENSATING' || r.status === 'COMPENSATION_FAILED'))
      .sort((a, b) => (b.completedOrder ?? 0) - (a.completedOrder ?? 0))
    const compensated: string[] = []
    const skipped: string[] = []
    const failed: string[] = []
    for (const row of todo) {
      if (this.controller.signal.aborted) return
      const node = this.spec.graph.nodes.get(row.stepId)
      if (row.factory && !this.host.registry.get(row.factory)) {
        // Resumed before the factory is registered again: wait for it (as run execution does)
        // instead of skipping its compensation.
        await this.factoryRegistered(row.factory)
        if (this.controller.signal.aborted) return
      }
      const action = row.factory && row.action ? this.host.registry.action(row.factory, row.action) : undefined
      const compensate = action?.definition.compensate
      if (!compensate || node?.def.compensate === false) {
        skipped.push(row.stepId)
        continue
      }
      assertStepTransition(row.stepId, row.status as StepStatus, 'COMPENSATING')
      // Write-ahead: the compensation is called once its COMPENSATING is committed.
      const committed = await new Promise<boolean>((resolve) => {
        const entry = this.host.journal.record(
          () => setStepStatus(this.host.conn, runId, row.stepId, 'COMPENSATING', null),
          this.event('STEP_COMPENSATING', row.stepId, 'COMPENSATING', {}),
          () => resolve(true),
        )
        // Closed (shutting down): not recorded, so not called; the next start resumes the rollback.
        if (!entry) resolve(false)
      })
      if (!committed || this.controller.signal.aborted) return
      try {
        await this.call(compensate.bind(action!.definition), row, outputs, action!.definition.timeoutMs)
        this.record(() => setStepStatus(this.host.conn, runId, row.stepId, 'COMPENSATED', null), 'STEP_COMPENSATED', row.stepId, 'COMPENSATED', {})
        compensated.push(row.stepId)
      } catch (error) {
        if (this.controller.signal.aborted) return
        const message = `compensation failed: ${errorMessage(error)}`
        this.record(() => setStepStatus(this.host.conn, runId, row.stepId, 'COMPENSATION_FAILED', message), 'STEP_FAILED', row.stepId, 'COMPENSATION_FAILED', {
          error: message, compensation: true,
        })
        failed.push(row.stepId)
      }
    }
    const at = Date.now()
    const done = new Promise<void>((resolve) => {
      if (failed.length === 0) {
        this.host.journal.record(
          () => setRunStatus(this.host.conn, { runId, status: 'ROLLED_BACK', at, finished: true }),
          this.event('RUN_ROLLED_BACK', null, 'ROLLED_BACK', { reason, compensated, skipped }),
          resolve,
        )
      } else {
        const error = `rollback incomplete: compensation failed for ${failed.join(', ')} (rolled back because: ${reason})`
        this.host.journal.record(
          () => setRunStatus(this.host.conn, { runId, status: 'FAILED', at, finished: true, error }),
          this.event('RUN_FAILED', null, 'FAILED', { error, compensated, skipped, failed }),
          resolve,
        )
      }
    })
    await done
  }

  private factoryRegistered(name: string): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.controller.signal
      const done = () => {
        off()
        signal.removeEventListener('abort', done)
        resolve()
      }
      const off = this.host.registry.onRegister((factory) => {
        if (factory.name === name) done()
      })
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /** Shutdown: stop between compensations; the next start resumes the rollback. */
  abandon(): void {
    this.controller.abort(new CancelledError('shutting down'))
  }

  private async call(
    compensate: (input: unknown, output: unknown, ctx: ActionContext) => unknown,
    row: StepRow,
    outputs: Record<string, unknown>,
    timeoutMs: number | undefined,
  ): Promise<void> {
    const signals = [this.controller.signal]
    if (timeoutMs) signals.push(AbortSignal.timeout(timeoutMs))
    const signal = AbortSignal.any(signals)
    const ctx: ActionContext = {
      runId: this.spec.runId,
      workflowId: this.spec.workflowId,
      stepId: row.stepId,
      attempt: row.attempts,
      signal,
      idempotencyKey: `${this.spec.runId}:${row.stepId}:compensate`,
      steps: outputs,
      previous: undefined,
      input: this.spec.input,
      params: (row.params as Record<string, unknown>) ?? {},
      progress: () => {},
      log: (message, data) => this.record(undefined, 'STEP_LOG', row.stepId, 'COMPENSATING', { message: String(message), data: data ?? null }),
      artifact: () => {
        throw new Error('compensations cannot store artifacts')
      },
    }
    const aborted = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new TimeoutError('compensation timed out')), { once: true })
    })
    await Promise.race([Promise.resolve().then(() => compensate(row.params ?? {}, row.output, ctx)), aborted])
  }

  private event(type: EventType, stepId: string | null, status: string, payload: unknown): NewEvent {
    return { type, runId: this.spec.runId, workflowId: this.spec.workflowId, stepId, attempt: null, status, at: Date.now(), payload }
  }

  private record(apply: (() => void) | undefined, type: EventType, stepId: string | null, status: string, payload: unknown): void {
    this.host.journal.record(apply, this.event(type, stepId, status, payload))
  }
}
