// Params a caller gives are data, not templates: retryRun's edited params (an execute-scope token),
// start params and a sub-workflow's params (which carry run input) reach the action as given, `{{ }}`
// and all. Only a definition's own strings are expressions.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { controlFactory, defineFactory } from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { CreateWorkflowDocument, ExecuteWorkflowDocument, RetryRunDocument } from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'
import { until } from './support/barrier.ts'

let t: TestServer | undefined
const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
  },
})

const INJECTED = '{{ $keys($) }}'

/** `txt.say` echoes `q` (and fails on "fail"); every call's params are recorded. */
function txtFactory() {
  const calls: { runId: string; stepId: string; q: string }[] = []
  const factory = defineFactory({
    name: 'txt',
    actions: {
      say: {
        input: z.object({ q: z.string().default('') }).passthrough(),
        run: ({ q }, ctx) => {
          calls.push({ runId: ctx.runId, stepId: ctx.stepId, q })
          if (q === 'fail') throw new Error('told to fail')
          return { q }
        },
      },
    },
  })
  return { factory, calls }
}

function orchestrator() {
  const o = opened.orchestrator()
  o.registerFactory('control', controlFactory)
  const txt = txtFactory()
  o.registerFactory('txt', txt.factory)
  return { o, txt }
}

describe('retryRun params are data', () => {
  it('over GraphQL: params { q: "{{ $keys($) }}" } reach the action as that string', async () => {
    const txt = txtFactory()
    t = await startTestServer({ factories: { txt: txt.factory } })
    const created = (await t.request(CreateWorkflowDocument, {
      name: 'say_once', definition: { steps: [{ id: 'say', factory: 'txt', action: 'say', params: { q: 'fail' } }] },
    })).data!.createWorkflow
    if (created.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(created))
    const exec = (await t.request(ExecuteWorkflowDocument, { workflowId: created.workflow.id, input: { secret: 's3' } })).data!.executeWorkflow
    if (exec.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(exec))
    expect((await t.orchestrator.waitForRun(exec.run.id)).status).toBe('FAILED')

    const retried = (await t.request(RetryRunDocument, { runId: exec.run.id, params: { q: INJECTED } })).data!.retryRun
    if (retried.__typename !== 'RunSuccess') throw new Error(JSON.stringify(retried))
    const result = await t.orchestrator.waitForRun(retried.run.id)
    expect(result.status).toBe('SUCCEEDED')
    expect(txt.calls.filter((c) => c.runId === retried.run.id).map((c) => c.q)).toEqual([INJECTED])
    expect(result.steps.say!.output).toEqual({ q: INJECTED })
  })

  it('through the library, nested and mixed strings too; a retry of the retry keeps them literal', async () => {
    const { o, txt } = orchestrator()
    const wf = await o.createWorkflow('say_twice', {
      steps: [
        { id: 'say', factory: 'txt', action: 'say', params: { q: 'fail' } },
        { id: 'after', factory: 'txt', action: 'say', params: { q: '{{ steps.say.output.q }}' } },
      ],
    })
    const first = await o.executeWorkflow(wf, { secret: 's3' })
    expect(first.status).toBe('FAILED')
    const params = { q: `a {{ input.secret }} b ${INJECTED}`, more: [{ deep: '{{ input }}' }, '{{{', 7] }
    const { runId } = await o.retryRun(first.runId, { params })
    const second = await o.waitForRun(runId)
    expect(second.status).toBe('SUCCEEDED')
    expect(second.steps.say!.output).toEqual({ q: params.q })
    // The definition's own expression still evaluates, and gets the literal value.
    expect(second.steps.after!.output).toEqual({ q: params.q })
    const stored = o.context.conn.sqlite.prepare('select params from steps where run_id = ? and step_id = ?').get(runId, 'say') as { params: string }
    expect(JSON.parse(stored.params)).toEqual(params)

    const third = await o.waitForRun((await o.retryRun(runId, { fromStep: 'after' })).runId)
    expect(third.status).toBe('SUCCEEDED')
    expect(txt.calls.filter((c) => c.stepId === 'after').map((c) => c.q)).toEqual([params.q, params.q])
  })
})

describe('bound params are data', () => {
  it('start params given to steps without params of their own are not evaluated; `params` in scope is the same value', async () => {
    const { o, txt } = orchestrator()
    const wf = await o.createWorkflow('bound', {
      steps: [
        { id: 'plain', factory: 'txt', action: 'say' },
        { id: 'scoped', factory: 'txt', action: 'say', params: { q: '{{ params.q }}' } },
      ],
    })
    const result = await o.executeWorkflow(wf, {}, { params: { q: INJECTED } })
    expect(result.status).toBe('SUCCEEDED')
    expect(txt.calls.map((c) => [c.stepId, c.q])).toEqual([['plain', INJECTED], ['scoped', INJECTED]])
  })

  it('run input reaching a sub-workflow through its params is not evaluated in the child', async () => {
    const { o, txt } = orchestrator()
    o.workflows.registerTemplate('echo', { steps: [{ id: 'echo', factory: 'txt', action: 'say' }], output: '{{ steps.echo.output }}' })
    const wf = await o.createWorkflow('parent', {
      input: { q: { type: 'string', required: true } },
      steps: [{ id: 'sub', template: 'echo', params: { q: '{{ input.q }}' } }],
    })
    const result = await o.executeWorkflow(wf, { q: INJECTED })
    expect(result.error).toBeUndefined()
    expect(result.steps.sub!.output).toEqual({ q: INJECTED })
    expect(txt.calls.map((c) => c.q)).toEqual([INJECTED])
  })

  it('a signal payload is the step output as given', async () => {
    const { o, txt } = orchestrator()
    const wf = await o.createWorkflow('approve', {
      steps: [
        { id: 'approve', factory: 'control', action: 'approval' },
        { id: 'use', factory: 'txt', action: 'say', params: { q: '{{ steps.approve.output.q }}' } },
      ],
    })
    const { runId } = await o.startWorkflow(wf)
    await until(() => o.coordinator.readResult(runId).steps.approve?.status === 'WAITING')
    await o.signalRun(runId, 'approve', { q: INJECTED })
    const result = await o.waitForRun(runId)
    expect(result.steps.approve!.output).toEqual({ q: INJECTED })
    expect(txt.calls.map((c) => c.q)).toEqual([INJECTED])
  })
})
