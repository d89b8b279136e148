// What a RunExecution needs from the coordinator that drives it.
import type { Connection } from '../db/connection.ts'
import type { Journal } from './journal.ts'
import type { FactoryRegistry, RegisteredAction } from './factory.ts'
import type { Pool, PoolSet } from './pools.ts'
import type { RunResult, StepDefinition } from './interfaces.ts'
import type { RunSpec } from './run-spec.ts'
import type { ArtifactStore } from './artifacts.ts'
import type { ValueLimits } from './value-limits.ts'

/** What the host sees of a run it drives (RunExecution), without depending on it. */
export interface RunHandle {
  readonly id: string
  readonly spec: RunSpec
  /** A sub-workflow step's child run finished. */
  childFinished(stepId: string, result: RunResult): void
}

export interface ExecutionHost {
  conn: Connection
  journal: Journal
  registry: FactoryRegistry
  pools: PoolSet
  /** Shutting down: running actions may finish, but no new step starts. */
  readonly draining: boolean
  /** `coordinator.maxWorkers`: actions in flight across all runs. */
  globalPool: Pool
  /** Default per-run limit when a definition sets no maxParallel (`workflow.maxParallel`). */
  defaultMaxParallel: number | undefined
  /** The factory's and the action's own pools, when they declare `concurrency`. */
  actionPools(action: RegisteredAction, stepPools?: string | string[]): Pool[]
  /** Calls `ready` once the factory is registered (recovery may run before registration). */
  awaitFactory(factory: string, ready: () => void): void
  artifacts: ArtifactStore
  limits: ValueLimits
  readResult(runId: string): RunResult
  onFinished(run: RunHandle): void
  /** Creates and starts the child run of a sub-workflow step; resolves with its id once committed. */
  startChildRun(parent: RunHandle, stepId: string, def: StepDefinition, params: Record<string, unknown>): Promise<string>
  /** After a restart: finds the step's child run and delivers its result when it finishes (or starts it if it never was). */
  reattachChildRun(parent: RunHandle, stepId: string): void
  cancelChildRun(parentRunId: string, stepId: string): void
  /** onFailure: 'rollback' — compensate the run's succeeded steps (the run is ROLLING_BACK). */
  startRollback(runId: string, reason: string): void
}
