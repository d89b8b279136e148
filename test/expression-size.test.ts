// Expressions that build without bound fail with the limit named, before anything that large is
// stored: `$s & $s` doubling (cheap steps, 128 MB in 24 of them), lists grown with $append, many
// values each under the limit, lists turned into text, in params, a run's output and transform.map. The limit,
// `EXPRESSION_LIMITS.maxResultBytes` (16 MiB), is set by the config's `expressions.maxResultBytes`.
import { afterEach, describe, expect, it } from 'vitest'
import {
  DEFAULT_MAX_RESULT_BYTES, EXPRESSION_LIMITS, ValidationError, controlFactory, orchestratorFromConfig, transformFactory,
} from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { CreateWorkflowDocument, ExecuteWorkflowDocument } from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined
const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
  },
})
afterEach(() => {
  EXPRESSION_LIMITS.maxResultBytes = DEFAULT_MAX_RESULT_BYTES
})

/** A JSONata block doubling an 8-character string `times` times: 8·2^times characters. */
const doubling = (times: number) => `($s := "xxxxxxxx"; ${'$s := $s & $s; '.repeat(times)}$s)`

function orchestrator() {
  const o = opened.orchestrator()
  o.registerFactory('control', controlFactory)
  o.registerFactory('transform', transformFactory)
  return o
}

async function run(o: ReturnType<typeof orchestrator>, definition: unknown) {
  const wf = await o.createWorkflow('sized', definition)
  return o.executeWorkflow(wf)
}

describe('the default limit (16 MiB)', () => {
  it('a step param doubling a string to 32 MB fails the step naming the limit; nothing of it is stored', async () => {
    const o = orchestrator()
    const result = await run(o, { steps: [{ id: 'big', factory: 'control', action: 'noop', params: { s: `{{ ${doubling(22)} }}` } }] })
    expect(result.status).toBe('FAILED')
    expect(result.steps.big!.error).toMatch(/expression result is 32 MB; the limit is 16 MB/)
    const row = o.context.conn.sqlite.prepare('select params from steps where run_id = ?').get(result.runId) as { params: string | null }
    expect(row.params).toBeNull()
    // Under the limit, the same expression works.
    const ok = await run(o, { steps: [{ id: 'fine', factory: 'control', action: 'noop', params: { n: `{{ $length(${doubling(10)}) }}` } }] })
    expect(ok.status).toBe('SUCCEEDED')
    expect(ok.steps.fine!.output).toEqual({ n: 8 * 2 ** 10 })
  })

  it("a run's output expression is bounded the same way: the run fails with the limit named", async () => {
    const o = orchestrator()
    const result = await run(o, { steps: [{ id: 'a', factory: 'control', action: 'noop' }], output: `{{ ${doubling(22)} }}` })
    expect(result.status).toBe('FAILED')
    expect(result.error).toMatch(/^output: .*expression result is 32 MB; the limit is 16 MB/)
    expect(result.output).toBeNull()
  })

  it('transform.map is bounded too', async () => {
    const o = orchestrator()
    const result = await run(o, { steps: [{ id: 't', factory: 'transform', action: 'map', params: { expression: doubling(22) } }] })
    expect(result.status).toBe('FAILED')
    expect(result.steps.t!.error).toMatch(/expression result is 32 MB; the limit is 16 MB/)
  })

  it('over GraphQL: the run fails with the limit named and the server keeps answering', async () => {
    t = await startTestServer()
    const created = (await t.request(CreateWorkflowDocument, {
      name: 'doubling', definition: { steps: [{ id: 'big', factory: 'control', action: 'noop', params: { s: `{{ ${doubling(24)} }}` } }] },
    })).data!.createWorkflow
    if (created.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(created))
    const exec = (await t.request(ExecuteWorkflowDocument, { workflowId: created.workflow.id })).data!.executeWorkflow
    if (exec.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(exec))
    const result = await t.orchestrator.waitForRun(exec.run.id)
    expect(result.steps.big!.error).toMatch(/expression result is 32 MB; the limit is 16 MB/)
    const health = await fetch(new URL('/healthz', t.url))
    expect(health.status).toBe(200)
  })
})

describe('a configured limit', () => {
  it('expressions.maxResultBytes sets it; a bad value is a ValidationError and changes nothing', () => {
    expect(() => orchestratorFromConfig({ expressions: { maxResultBytes: -1 } })).toThrow(ValidationError)
    expect(EXPRESSION_LIMITS.maxResultBytes).toBe(DEFAULT_MAX_RESULT_BYTES)
    opened.track(orchestratorFromConfig({ expressions: { maxResultBytes: 1024 * 1024 } }))
    expect(EXPRESSION_LIMITS.maxResultBytes).toBe(1024 * 1024)
  })

  it('1 MiB: a growing list, values that add up past it, interpolation, and the sandbox all fail naming it', async () => {
    EXPRESSION_LIMITS.maxResultBytes = 1024 * 1024
    const o = orchestrator()
    const cases: Record<string, unknown> = {
      // 8·2^17 = 1,048,576 items: more than half a million is past 1 MiB as JSON.
      list: { a: `{{ $count(($a := [1,2,3,4,5,6,7,8]; ${'$a := $append($a, $a); '.repeat(17)}$a)) }}` },
      // Each 512 KiB, under the limit; together past it.
      many: { a: `{{ ${doubling(16)} }}`, b: `{{ ${doubling(16)} }}`, c: [`{{ ${doubling(16)} }}`] },
      interpolated: { a: `x {{ ${doubling(16)} }} y {{ ${doubling(16)} }} z {{ ${doubling(16)} }}` },
      // 2,048 references to one 512 KiB string are cheap as a list; as text they are 1 GB (past the
      // longest string V8 makes): measured before `$join`, `$string` or `&` make that text.
      ...Object.fromEntries(['$join($a)', '$string($a)', '$a & ""', '"" & { "k": $a }'].map((tail, i) => [
        `text${i}`, { a: `{{ ($s := ${doubling(16)}; $a := [$s, $s]; ${'$a := $append($a, $a); '.repeat(10)}${tail}) }}` },
      ])),
      // A regex sends it to the sandbox process; its result is measured there.
      sandboxed: { a: `{{ $replace(${doubling(18)}, /y/, "z") }}` },
    }
    for (const [name, params] of Object.entries(cases)) {
      const result = await run(o, { steps: [{ id: name, factory: 'control', action: 'noop', params }] })
      expect(result.status, name).toBe('FAILED')
      expect(result.steps[name]!.error, name).toMatch(/expression result is .*the limit (is|of) (1 MB|1048576 bytes)/)
      if (name.startsWith('text')) expect(result.steps[name]!.error, name).toMatch(/larger than the limit of 1 MB/)
    }
  })
})
