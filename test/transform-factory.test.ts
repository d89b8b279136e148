// The built-in `transform` factory: transform.map evaluates JSONata over its `input`, with the run's
// step outputs, the previous output and the run input bound as $steps, $previous and $runInput.
// Expressions that do not parse fail createWorkflow validation; ones that fail at run time fail the
// step without retry.
import { describe, expect, it } from 'vitest'
import { orchestratorFromConfig, ValidationError, type ProjectOrchestrator } from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { CreateWorkflowDocument, ExecuteWorkflowDocument, RunDocument } from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined
const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
  },
})

function orchestrator(): ProjectOrchestrator {
  const o = orchestratorFromConfig({})
  opened.track(o)
  return o
}

/** Two parallel branches (control.noop stands in for real factories), merged by transform.map. */
const branchesAndMerge = {
  parallel: true,
  steps: [
    { id: 'prices', factory: 'control', action: 'noop', params: { symbol: '{{ input.symbol }}', quotes: [{ day: 1, close: 10 }, { day: 2, close: 12.5 }] } },
    { id: 'news', factory: 'control', action: 'noop', params: { items: [{ title: 'Up', score: 0.8 }, { title: 'Flat', score: 0.1 }, { title: 'Down', score: -0.4 }] } },
    {
      id: 'merge',
      factory: 'transform',
      action: 'map',
      dependsOn: ['prices', 'news'],
      params: {
        input: '{{ steps }}',
        expression: `{
          "symbol": prices.output.symbol,
          "last": prices.output.quotes[-1].close,
          "change": $round((prices.output.quotes[-1].close - prices.output.quotes[0].close) / prices.output.quotes[0].close * 100, 1),
          "headlines": [news.output.items[score > 0.5].title],
          "sentiment": $sum(news.output.items.score),
          "requested": $runInput.symbol,
          "fromSteps": $count($keys($steps))
        }`,
      },
    },
  ],
}

describe('transform.map', () => {
  it('reshapes and merges the outputs of two parallel branches', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('merge', branchesAndMerge)
    const result = await o.executeWorkflow(id, { symbol: 'BTC' })
    expect(result.status, result.error).toBe('SUCCEEDED')
    expect(result.steps.merge!.output).toEqual({
      symbol: 'BTC', last: 12.5, change: 25, headlines: ['Up'], sentiment: 0.5, requested: 'BTC', fromSteps: 2,
    })
    expect(result.output).toEqual({ merge: result.steps.merge!.output })
  })

  it('binds $previous and $runInput; without input the expression reads only the variables; no match is null', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('vars', {
      steps: [
        { id: 'first', factory: 'control', action: 'noop', params: { n: 20 } },
        { id: 'double', factory: 'transform', action: 'map', params: { expression: '{ "n": $previous.n * 2, "who": $runInput.who, "seen": $steps.first.n }' } },
        { id: 'nothing', factory: 'transform', action: 'map', params: { input: { a: 1 }, expression: 'b' } },
        { id: 'array', factory: 'transform', action: 'map', params: { input: [{ v: 1 }, { v: 2 }], expression: '$.(v * 10)' } },
      ],
    })
    const result = await o.executeWorkflow(id, { who: 'me' })
    expect(result.status, result.error).toBe('SUCCEEDED')
    expect(result.steps.double!.output).toEqual({ n: 40, who: 'me', seen: 20 })
    expect(result.steps.nothing!.output).toBeNull()
    expect(result.steps.array!.output).toEqual([10, 20])
  })

  it('an expression that does not parse fails createWorkflow with its path; nothing runs', async () => {
    const o = orchestrator()
    const error = await o
      .createWorkflow('bad', { steps: [{ factory: 'transform', action: 'map', params: { expression: '$sum(', input: [1] } }] })
      .catch((e) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toEqual([{ path: 'steps[0].params.expression', message: expect.stringMatching(/does not parse/) }])
  })

  it('an expression that fails while evaluating fails the step at once, without retry', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('throws', {
      steps: [{ id: 'm', factory: 'transform', action: 'map', params: { input: { a: 'x' }, expression: 'a + 1' }, retry: { maxAttempts: 3, initialMs: 1 } }],
    })
    const result = await o.executeWorkflow(id)
    expect(result.steps.m).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/^expression failed: .*number/) })
    const history = await o.getHistory(result.runId)
    expect(history.filter((e) => e.type === 'STEP_RETRY_SCHEDULED')).toHaveLength(0)
  })

  it('runaway recursion is stopped by the evaluation guardrails', async () => {
    const o = orchestrator()
    const id = await o.createWorkflow('loop', {
      steps: [{ id: 'm', factory: 'transform', action: 'map', params: { expression: '($f := function($x) { $x + $f($x) }; $f(1))' } }],
    })
    const result = await o.executeWorkflow(id)
    expect(result.steps.m).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/^expression failed: Stack overflow/) })
  })

  it('runs through the GraphQL API', async () => {
    t = await startTestServer()
    const created = await t.request(CreateWorkflowDocument, { name: 'gql_merge', definition: branchesAndMerge })
    const wf = created.data!.createWorkflow
    if (wf.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(wf))
    const started = await t.request(ExecuteWorkflowDocument, { workflowId: wf.workflow.id, input: { symbol: 'ETH' } })
    const run = started.data!.executeWorkflow
    if (run.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(run))
    await t.orchestrator.waitForRun(run.run.id)
    const read = await t.request(RunDocument, { id: run.run.id })
    expect(read.data!.run).toMatchObject({ status: 'SUCCEEDED', output: { merge: { symbol: 'ETH', headlines: ['Up'], fromSteps: 2 } } })
  })
})
