// Sub-workflows (DESIGN.md §2): a step with `template` + params, or with an inline `workflow`, starts
// a child run linked to the parent run and step, waits for it and takes its output. A failing child
// fails the step; cancelling the parent cancels the child; a restart after SIGKILL reattaches to the
// child run instead of starting another. Through the library, GraphQL over HTTP and a crashed process.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ValidationError, controlFactory, defineFactory, type OrchestratorConfig, type WorkflowDefinition,
} from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { crashKit } from './helpers/child.ts'
import { until } from './support/barrier.ts'
import { CreateWorkflowDocument, ExecuteWorkflowDocument, RunFamilyDocument } from './generated/graphql.ts'
import { slowFactory } from './fixtures/fanout-workflow.ts'
import { openedPerTest } from './support/opened.ts'

const WORKER = new URL('./fixtures/fanout-worker.ts', import.meta.url).pathname
const kit = crashKit()
let server: TestServer | undefined

const opened = openedPerTest({
  after: async () => {
    await server?.close()
    server = undefined
    kit.cleanup()
  },
})

/** `calc.double` doubles n; `calc.hang` runs until its signal aborts and records why. */
function calcFactory() {
  const aborted: { runId: string; reason: string }[] = []
  const calls: { runId: string; stepId: string }[] = []
  const factory = defineFactory({
    name: 'calc',
    actions: {
      double: {
        input: z.object({ n: z.number() }),
        run: ({ n }, ctx) => (calls.push({ runId: ctx.runId, stepId: ctx.stepId }), { n: n * 2 }),
      },
      hang: {
        input: z.object({}),
        run: (_, ctx) => {
          calls.push({ runId: ctx.runId, stepId: ctx.stepId })
          return new Promise((_resolve, reject) => {
            ctx.signal.addEventListener('abort', () => {
              aborted.push({ runId: ctx.runId, reason: String((ctx.signal.reason as Error)?.message ?? ctx.signal.reason) })
              reject(ctx.signal.reason)
            }, { once: true })
          })
        },
      },
    },
  })
  return { factory, calls, aborted }
}

/** Doubles input.n twice; its output is `{ result, label }`. */
const doubleTwice: WorkflowDefinition = {
  steps: [
    { id: 'a', factory: 'calc', action: 'double', params: { n: '{{ input.n }}' } },
    { id: 'b', factory: 'calc', action: 'double', params: { n: '{{ steps.a.output.n }}' } },
  ],
  output: "{{ { 'result': steps.b.output.n, 'label': input.label } }}",
}

function orchestrator(config: OrchestratorConfig = {}) {
  const o = opened.orchestrator(config)
  o.registerFactory('control', controlFactory)
  const calc = calcFactory()
  o.registerFactory('calc', calc.factory)
  o.workflows.registerTemplate('double_twice', doubleTwice)
  return { o, calc }
}

describe('sub-workflow steps', () => {
  it('a template step starts a child run with its params, waits for it, and takes the template output', async () => {
    const { o, calc } = orchestrator()
    const wf = await o.createWorkflow('parent', {
      steps: [
        { id: 'prep', factory: 'control', action: 'noop', params: { n: 3 } },
        { id: 'sub', template: 'double_twice', params: { n: '{{ steps.prep.output.n }}', label: 'from-parent' } },
        { id: 'after', factory: 'control', action: 'noop', params: { got: '{{ steps.sub.output.result }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.sub).toMatchObject({ status: 'SUCCEEDED', output: { result: 12, label: 'from-parent' }, attempts: 1 })
    expect(result.steps.after!.output).toEqual({ got: 12 })
    expect(JSON.stringify(result)).toBe(JSON.stringify(o.coordinator.readResult(result.runId)))

    // Exactly one child run, linked to the parent run and step, with the step's params as its input.
    const children = o.catalog.childRunsOf(result.runId)
    expect(children).toHaveLength(1)
    const child = children[0]!
    expect(child).toMatchObject({ parentRunId: result.runId, parentStepId: 'sub', status: 'SUCCEEDED', input: { n: 3, label: 'from-parent' } })
    const childResult = await o.getRun(child.id)
    expect(JSON.stringify(childResult)).toBe(JSON.stringify(o.coordinator.readResult(child.id)))
    expect(childResult.output).toEqual({ result: 12, label: 'from-parent' })
    expect(childResult.steps.a!.output).toEqual({ n: 6 })
    expect(calc.calls.filter((c) => c.runId === child.id).map((c) => c.stepId)).toEqual(['a', 'b'])

    // The parent step waited: the child finished before the step settled, and `after` started later.
    const parentEvents = await o.getHistory(result.runId)
    const childEvents = await o.getHistory(child.id)
    const childDone = childEvents.find((e) => e.type === 'RUN_SUCCEEDED')!.seq
    const subStarted = parentEvents.find((e) => e.type === 'STEP_STARTED' && e.stepId === 'sub')!
    const subDone = parentEvents.find((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === 'sub')!.seq
    const afterStarted = parentEvents.find((e) => e.type === 'STEP_STARTED' && e.stepId === 'after')!.seq
    expect(subStarted.payload).toMatchObject({ subWorkflow: 'double_twice' })
    expect(childEvents[0]!.seq).toBeGreaterThan(subStarted.seq)
    expect(childDone).toBeLessThan(subDone)
    expect(subDone).toBeLessThan(afterStarted)
    expect(childEvents[0]).toMatchObject({ type: 'RUN_CREATED', payload: { parent: { runId: result.runId, stepId: 'sub' } } })
  })

  it("a caller waiting on the child run cannot change the output its parent step took", async () => {
    const { o } = orchestrator()
    o.workflows.registerTemplate('gated', {
      steps: [{ id: 'gate', factory: 'control', action: 'approval', params: {} }],
      output: "{{ { 'label': 'from-child' } }}",
    })
    const wf = await o.createWorkflow('gated-parent', {
      parallel: true,
      steps: [
        { id: 'sub', template: 'gated', params: {} },
        { id: 'hold', factory: 'control', action: 'approval', params: {} },
        { id: 'after', factory: 'control', action: 'noop', params: { got: '{{ steps.sub.output.label }}' }, dependsOn: ['sub', 'hold'] },
      ],
    })
    const { runId } = await o.startWorkflow(wf)
    await until(() => o.catalog.childRunsOf(runId).length === 1 && o.coordinator.readResult(o.catalog.childRunsOf(runId)[0]!.id).steps.gate?.status === 'WAITING')
    const childId = o.catalog.childRunsOf(runId)[0]!.id
    const child = o.waitForRun(childId)
    await o.signalRun(childId, 'gate', {})
    const childResult = await child
    expect(childResult.output).toEqual({ label: 'from-child' })
    ;(childResult.output as { label: string }).label = 'changed by a waiter'
    await until(() => o.coordinator.readResult(runId).steps.sub?.status === 'SUCCEEDED')
    await o.signalRun(runId, 'hold', {})
    const parent = await o.waitForRun(runId)
    expect(parent.status).toBe('SUCCEEDED')
    expect(parent.steps.after!.output).toEqual({ got: 'from-child' })
  })

  it('an inline workflow step runs its definition as a child run whose input is the step\'s params', async () => {
    const { o } = orchestrator()
    const wf = await o.createWorkflow('inline_parent', {
      steps: [
        {
          id: 'sub',
          params: { n: 5, tag: 't' },
          workflow: {
            steps: [
              { id: 'w', factory: 'calc', action: 'double', params: { n: '{{ input.n }}' } },
              { id: 'echo', factory: 'control', action: 'noop', params: { tag: '{{ input.tag }}', w: '{{ steps.w.output.n }}' } },
            ],
            output: '{{ steps.echo.output }}',
          },
        },
        { id: 'after', factory: 'control', action: 'noop', params: { got: '{{ steps.sub.output }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.sub).toMatchObject({ status: 'SUCCEEDED', output: { tag: 't', w: 10 } })
    expect(result.steps.after!.output).toEqual({ got: { tag: 't', w: 10 } })
    const [child, ...more] = o.catalog.childRunsOf(result.runId)
    expect(more).toHaveLength(0)
    expect(child).toMatchObject({ parentStepId: 'sub', status: 'SUCCEEDED', input: { n: 5, tag: 't' } })
    expect(o.workflows.get(child!.workflowId)!.name).toBe('inline_parent.sub')

    // A second run of the same parent reuses the child's workflow (same id and version).
    const again = await o.executeWorkflow(wf)
    const [child2] = o.catalog.childRunsOf(again.runId)
    expect(child2!.workflowId).toBe(child!.workflowId)
    expect(child2!.workflowVersion).toBe(child!.workflowVersion)
    expect(child2!.id).not.toBe(child!.id)
  })

  it('a failing child fails the parent step (naming the child run) and the parent run', async () => {
    const { o } = orchestrator()
    o.workflows.registerTemplate('breaks', {
      steps: [
        { id: 'ok', factory: 'calc', action: 'double', params: { n: 1 } },
        { id: 'bad', factory: 'control', action: 'fail', params: { message: 'child broke', retryable: false } },
      ],
    })
    const wf = await o.createWorkflow('parent_of_failure', {
      steps: [
        { id: 'first', factory: 'control', action: 'noop', params: {} },
        { id: 'sub', template: 'breaks', params: {} },
        { id: 'after', factory: 'control', action: 'noop', params: {} },
      ],
    })
    const result = await o.executeWorkflow(wf)
    const [child] = o.catalog.childRunsOf(result.runId)
    expect(child).toMatchObject({ status: 'FAILED', parentStepId: 'sub' })
    expect(result.status).toBe('FAILED')
    expect(result.steps.sub!.status).toBe('FAILED')
    expect(result.steps.sub!.error).toContain(`sub-workflow run ${child!.id} ended FAILED`)
    expect(result.steps.sub!.error).toContain('child broke')
    expect(result.error).toContain('sub')
    expect(result.steps.after!.status).toBe('CANCELLED')
  })

  it('cancelling the parent cancels the running child run and aborts its actions', async () => {
    const { o, calc } = orchestrator()
    o.workflows.registerTemplate('waits', {
      parallel: true,
      steps: [
        { id: 'approve', factory: 'control', action: 'approval', params: { message: 'ok?' } },
        { id: 'hang', factory: 'calc', action: 'hang', params: {} },
      ],
    })
    const wf = await o.createWorkflow('cancel_parent', { steps: [{ id: 'sub', template: 'waits', params: {} }] })
    const { runId } = await o.startWorkflow(wf)
    let childId: string | undefined
    await until(() => {
      childId = o.catalog.childRunsOf(runId)[0]?.id
      return !!childId && calc.calls.some((c) => c.runId === childId) && o.coordinator.readResult(childId).steps.approve!.status === 'WAITING'
    })
    const cancelled = await o.cancelRun(runId)
    expect(cancelled.status).toBe('CANCELLED')
    expect(cancelled.steps.sub!.status).toBe('CANCELLED')
    const child = await o.waitForRun(childId!)
    expect(child.status).toBe('CANCELLED')
    expect(child.error).toContain(`cancelled with its parent run ${runId}`)
    expect(child.steps.approve!.status).toBe('CANCELLED')
    expect(child.steps.hang!.status).toBe('CANCELLED')
    expect(calc.aborted).toEqual([{ runId: childId, reason: expect.stringContaining(runId) }])
    // The child is not in flight any more: it cannot be cancelled twice.
    expect(o.coordinator.isActive(childId!)).toBe(false)
  })

  it('a sibling failing in the same turn as the sub-workflow starts still cancels the new child run', async () => {
    const { o } = orchestrator()
    o.workflows.registerTemplate('waits_forever', { steps: [{ id: 'approve', factory: 'control', action: 'approval', params: {} }] })
    // `bad` fails at once (its promise settles before the child run's row is committed).
    const wf = await o.createWorkflow('fail_beside_sub', {
      parallel: true,
      steps: [
        { id: 'bad', factory: 'control', action: 'fail', params: { message: 'sibling broke', retryable: false } },
        { id: 'sub', template: 'waits_forever', params: {} },
      ],
    })
    const result = await o.executeWorkflow(wf)
    expect(result.status).toBe('FAILED')
    expect(result.steps.sub!.status).toBe('CANCELLED')
    const [child] = o.catalog.childRunsOf(result.runId)
    expect(child).toBeDefined()
    const childResult = await o.waitForRun(child!.id)
    expect(childResult.status).toBe('CANCELLED')
    expect(childResult.steps.approve!.status).toBe('CANCELLED')
    expect(o.coordinator.activeRuns).toBe(0)
  })

  it('validation: an unknown template and an invalid inline workflow are ValidationErrors with paths', async () => {
    const { o } = orchestrator()
    const unknown = await o
      .createWorkflow('bad_template', {
        steps: [
          { id: 'first', factory: 'control', action: 'noop', params: {} },
          { id: 'sub', template: 'double_twise', params: {} },
        ],
      })
      .then(() => undefined, (e: unknown) => e)
    expect(unknown).toBeInstanceOf(ValidationError)
    expect((unknown as ValidationError).issues).toEqual([
      expect.objectContaining({ path: 'steps[1].template', message: expect.stringContaining('unknown template "double_twise"') }),
    ])

    const inline = await o
      .createWorkflow('bad_inline', {
        steps: [
          { id: 'first', factory: 'control', action: 'noop', params: {} },
          { id: 'sub', workflow: { steps: [{ factory: 'calc', action: 'tripple', params: {} }, { factory: 'nope', action: 'x' }] } },
        ],
      })
      .then(() => undefined, (e: unknown) => e)
    expect(inline).toBeInstanceOf(ValidationError)
    expect((inline as ValidationError).issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: 'steps[1].workflow.steps[0].action', message: expect.stringContaining('no action "tripple"') }),
      expect.objectContaining({ path: 'steps[1].workflow.steps[1].factory', message: expect.stringContaining('unknown factory "nope"') }),
    ]))

    const both = o.workflows.validate({ steps: [{ id: 'sub', template: 'double_twice', workflow: doubleTwice, factory: 'calc' }] })
    expect(both.valid).toBe(false)
    expect(both.issues.map((i) => i.path)).toEqual(['steps[0]', 'steps[0]'])
    // Nothing was stored.
    expect(o.catalog.workflows({ limit: 10 }).map((w) => w.name)).toEqual([])
  })
})

describe('sub-workflows over GraphQL', () => {
  it('Run.childRuns and Run.parentRun link the parent and child runs both ways', async () => {
    const calc = calcFactory()
    server = await startTestServer({ factories: { calc: calc.factory }, templates: { double_twice: doubleTwice } })
    const created = await server.request(CreateWorkflowDocument, {
      name: 'gql_parent',
      definition: {
        steps: [
          { id: 'sub', template: 'double_twice', params: { n: 4, label: 'gql' } },
          { id: 'inline', workflow: { steps: [{ id: 'w', factory: 'calc', action: 'double', params: { n: '{{ input.n }}' } }], output: '{{ steps.w.output.n }}' }, params: { n: 21 } },
        ],
        parallel: true,
      },
    })
    const c = created.data!.createWorkflow
    if (c.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(created))
    const executed = await server.request(ExecuteWorkflowDocument, { workflowId: c.workflow.id })
    const e = executed.data!.executeWorkflow
    if (e.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(executed))
    const parentId = e.run.id
    await server.orchestrator.waitForRun(parentId)

    const parent = (await server.request(RunFamilyDocument, { id: parentId })).data!.run!
    expect(parent).toMatchObject({ id: parentId, status: 'SUCCEEDED', parentRun: null, parentStepId: null })
    expect(parent.childRuns).toHaveLength(2)
    const byStep = Object.fromEntries(parent.childRuns.map((r) => [r.parentStepId, r]))
    expect(byStep.sub).toMatchObject({ status: 'SUCCEEDED', output: { result: 16, label: 'gql' }, parentRun: { id: parentId }, workflow: { name: 'double_twice' } })
    expect(byStep.inline).toMatchObject({ status: 'SUCCEEDED', output: 42, parentRun: { id: parentId }, workflow: { name: 'gql_parent.inline' } })
    const steps = Object.fromEntries(parent.steps.map((s) => [s.stepId, s]))
    expect(steps.sub).toMatchObject({ status: 'SUCCEEDED', output: { result: 16, label: 'gql' } })
    expect(steps.inline).toMatchObject({ status: 'SUCCEEDED', output: 42 })

    const child = (await server.request(RunFamilyDocument, { id: byStep.sub!.id })).data!.run!
    expect(child).toMatchObject({ status: 'SUCCEEDED', parentStepId: 'sub', parentRun: { id: parentId, status: 'SUCCEEDED' }, childRuns: [] })
  })
})

describe('sub-workflow durability', () => {
  it('SIGKILL while the child run is in flight: after a restart both finish and the child was started once', async () => {
    const db = kit.tempDb()
    const { child, line } = await kit.start(WORKER, [db, 'subworkflow'])
    const runId = line.runId as string
    // Kill when the child run has made progress but is not done.
    const childId = await kit.waitFor(db, (s) => {
      const row = s.prepare("select id, status from runs where parent_run_id = ? and parent_step_id = 'sub'").get(runId) as { id: string; status: string } | undefined
      if (!row || row.status !== 'RUNNING') return undefined
      const done = (s.prepare("select count(*) as n from steps where run_id = ? and status = 'SUCCEEDED'").get(row.id) as { n: number }).n
      return done >= 2 ? row.id : undefined
    })
    await kit.kill(child)

    const o = opened.orchestrator({ database: db })
    o.registerFactory('slow', slowFactory)
    const result = await o.waitForRun(runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.output).toBe('crash-6')
    expect(result.steps.sub).toMatchObject({ status: 'SUCCEEDED', output: 'crash-6', attempts: 1 })
    const childResult = await o.waitForRun(childId)
    expect(childResult.status).toBe('SUCCEEDED')
    expect(childResult.output).toBe('crash-6')

    // Exactly one child run for the step: the restart reattached to it instead of starting another.
    const children = o.context.conn.sqlite
      .prepare("select id from runs where parent_run_id = ? and parent_step_id = 'sub'")
      .all(runId) as { id: string }[]
    expect(children).toEqual([{ id: childId }])
    const parentHistory = await o.getHistory(runId)
    expect(parentHistory.filter((e) => e.type === 'STEP_STARTED' && e.stepId === 'sub')).toHaveLength(1)
    expect(parentHistory.filter((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === 'sub')).toHaveLength(1)
    expect(parentHistory.filter((e) => e.type === 'RUN_SUCCEEDED')).toHaveLength(1)
    const childHistory = await o.getHistory(childId)
    expect(childHistory.filter((e) => e.type === 'RUN_CREATED')).toHaveLength(1)
    expect(childHistory.filter((e) => e.type === 'RUN_SUCCEEDED')).toHaveLength(1)
    for (let i = 1; i <= 6; i++) {
      expect(childHistory.filter((e) => e.type === 'STEP_SUCCEEDED' && e.stepId === `c${i}`), `c${i}`).toHaveLength(1)
    }
  })
})
