// Sub-workflow steps: such a step is RUNNING while a child run (of a template or an inline
// workflow) runs, with one attempt as long as that run, and settles with the child's output or
// fails with its end. The host creates, finds and cancels child runs; this is the parent's side.
import type { RunResult } from './interfaces.ts'
import type { ExecutionHost, RunHandle } from './execution-host.ts'
import type { StepRecorder } from './step-recorder.ts'
import type { StepState, StepTransitions } from './step-state.ts'
import { errorMessage } from './errors.ts'
import { summarize } from './summary.ts'

/** What sub-workflow steps need of the run they belong to (the host knows it as a RunHandle). */
export interface SubWorkflowRun extends RunHandle, StepTransitions {
  /** Settling its last steps: a child's late result or failure to start no longer counts. */
  readonly finalizing: boolean
  /** Shut down (see RunExecution.abandon): nothing more happens. */
  readonly abandoned: boolean
}

export type SubWorkflowHost = Pick<ExecutionHost, 'startChildRun' | 'reattachChildRun' | 'cancelChildRun'>

export class SubWorkflowSteps {
  constructor(
    private readonly run: SubWorkflowRun,
    private readonly host: SubWorkflowHost,
    private readonly rec: StepRecorder,
    private readonly states: ReadonlyMap<string, StepState>,
  ) {}

  /** RUNNING while a child run of the template or inline workflow runs; it takes the child's output. */
  start(state: StepState, params: Record<string, unknown>): void {
    this.run.moveTo(state, 'RUNNING')
    state.params = params
    state.attempts = 1
    state.startedAt = Date.now()
    this.rec.subWorkflowStarted(
      state, { runId: this.run.id, stepId: state.node.id, attempt: 1, params, at: state.startedAt },
      { params: summarize(params), subWorkflow: state.node.def.template ?? 'inline' },
    )
    this.host.startChildRun(this.run, state.node.id, state.node.def, params).catch((error) => {
      if (state.status === 'RUNNING' && !this.run.finalizing) this.run.fail(state, `sub-workflow did not start: ${errorMessage(error)}`, false)
    })
  }

  /** After a restart: the host finds the step's child run (or starts it) and tells `finished`. */
  reattach(state: StepState): void {
    this.host.reattachChildRun(this.run, state.node.id)
  }

  /** The child run of a sub-workflow step finished (told by the coordinator, also after a restart). */
  finished(stepId: string, result: RunResult): void {
    const state = this.states.get(stepId)
    if (!state || state.status !== 'RUNNING' || state.node.kind !== 'subworkflow' || this.run.finalizing || this.run.abandoned) return
    const ok = result.status === 'SUCCEEDED'
    const error = ok ? null : `sub-workflow run ${result.runId} ended ${result.status}${result.error ? `: ${result.error}` : ''}`
    this.rec.attemptEnded(stepId, state.attempts, ok ? 'SUCCEEDED' : 'FAILED', error)
    if (ok) this.run.settle(state, 'SUCCEEDED', { output: result.output })
    else this.run.fail(state, error!, false)
  }

  /** The run stops or is cancelled: so are the child runs of its sub-workflow steps still running. */
  cancelChildren(): void {
    for (const stepId of this.running()) this.host.cancelChildRun(this.run.id, stepId)
  }

  /** Sub-workflow steps still running. */
  running(): string[] {
    return [...this.states.values()].filter((s) => s.node.kind === 'subworkflow' && s.status === 'RUNNING').map((s) => s.node.id)
  }
}
