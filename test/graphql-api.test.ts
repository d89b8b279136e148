// The GraphQL face over HTTP: typed errors, bad requests, batching (no N+1), query limits, paging.
import { afterEach, describe, expect, it } from 'vitest'
import { print } from 'graphql'
import { startTestServer, type TestServer } from './helpers/server.ts'
import {
  CancelRunDocument, CreateWorkflowDocument, CreateWorkflowFromTemplateDocument, EventsPageDocument, ExecuteWorkflowDocument,
  FactoriesDocument, RegisterTemplateDocument, RunDocument, RunsPageDocument, ValidateWorkflowDocument, WorkflowDocument,
} from './generated/graphql.ts'

let t: TestServer
afterEach(async () => {
  await t?.close()
})

const noopChain = (n: number) => ({
  steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, factory: 'control', action: 'noop', params: { i } })),
})

async function workflow(definition: unknown = noopChain(3)): Promise<string> {
  const r = await t.request(CreateWorkflowDocument, { name: 'api_test', definition })
  const res = r.data!.createWorkflow
  if (res.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(res))
  return res.workflow.id
}

async function run(workflowId: string): Promise<string> {
  const r = await t.request(ExecuteWorkflowDocument, { workflowId })
  const res = r.data!.executeWorkflow
  if (res.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(res))
  return res.run.id
}

describe('idempotent executeWorkflow over HTTP', () => {
  it('50 concurrent requests with one key get the same run, exactly one created, none an error', async () => {
    t = await startTestServer()
    const workflowId = await workflow()
    // Open the connections first, so the 50 requests arrive together rather than one per handshake.
    await Promise.all(Array.from({ length: 50 }, () => t.request('{ __typename }')))
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => t.request(ExecuteWorkflowDocument, { workflowId, idempotencyKey: 'same-click' })),
    )
    expect(answers.flatMap((a) => a.errors ?? [])).toEqual([])
    const results = answers.map((a) => a.data!.executeWorkflow)
    expect(results.filter((r) => r.__typename !== 'ExecuteWorkflowSuccess')).toEqual([])
    const successes = results.flatMap((r) => (r.__typename === 'ExecuteWorkflowSuccess' ? [r] : []))
    expect(new Set(successes.map((r) => r.run.id)).size).toBe(1)
    expect(successes.filter((r) => r.created)).toHaveLength(1)
  })
})

describe('typed errors', () => {
  it('an invalid definition returns ValidationError with every issue and its path', async () => {
    t = await startTestServer()
    const r = await t.request(CreateWorkflowDocument, {
      name: 'bad',
      definition: {
        steps: [
          { id: 'a', factory: 'control', action: 'nop', dependsOn: ['c'] },
          { id: 'b', factory: 'contrl', action: 'noop' },
          { id: 'c', factory: 'control', action: 'noop', dependsOn: ['a'], params: { x: '{{ (' } },
        ],
      },
    })
    const res = r.data!.createWorkflow
    expect(res.__typename).toBe('ValidationError')
    if (res.__typename !== 'ValidationError') return
    const paths = res.issues.map((i) => i.path)
    expect(paths).toEqual(expect.arrayContaining(['steps[0].action', 'steps[1].factory', 'steps[2].params.x']))
    expect(res.issues.find((i) => i.path === 'steps[0].action')!.message).toMatch(/did you mean "noop"/)
    expect(res.issues.some((i) => /cycle/.test(i.message))).toBe(true)
    // Nothing was stored.
    const list = await t.request('{ workflows { edges { node { id } } } }')
    expect(list.data).toEqual({ workflows: { edges: [] } })
    // validateWorkflow reports the same issues without storing.
    const v = await t.request(ValidateWorkflowDocument, { definition: { steps: [{ factory: 'control', action: 'nop' }] } })
    expect(v.data!.validateWorkflow.valid).toBe(false)
    expect(v.data!.validateWorkflow.issues[0]!.path).toBe('steps[0].action')
  })

  it('validateWorkflow names a reserved step id and a __proto__ params key, from variables and inline literals alike', async () => {
    t = await startTestServer()
    const definition = JSON.parse('{"steps":[{"id":"__proto__","factory":"control","action":"noop","params":{"__proto__":"{{ input.x }}"}}]}')
    const v = await t.request(ValidateWorkflowDocument, { definition })
    expect(v.data!.validateWorkflow.valid).toBe(false)
    expect(v.data!.validateWorkflow.issues.map((i) => i.path)).toEqual(['steps[0].params.__proto__', 'steps[0].id'])
    // An inline object literal used to set the prototype instead of the key (the key vanished before validation).
    const inline = await t.request('{ validateWorkflow(definition: { steps: [{ factory: "control", action: "noop", params: { __proto__: "{{ input.x }}" } }] }) { valid issues { path message } } }')
    expect(inline.data).toEqual({
      validateWorkflow: {
        valid: false,
        issues: [{ path: 'steps[0].params.__proto__', message: '"__proto__" cannot be a key: JavaScript objects take it as their prototype, so its value would be lost' }],
      },
    })
  })

  it('unknown ids give NotFoundError, cancelling a finished run gives ConflictError', async () => {
    t = await startTestServer()
    const missing = await t.request(ExecuteWorkflowDocument, { workflowId: 'wf_doesnotexist' })
    expect(missing.data!.executeWorkflow).toMatchObject({ __typename: 'NotFoundError', message: expect.stringMatching(/not found/) })
    const cancelMissing = await t.request(CancelRunDocument, { runId: 'run_doesnotexist' })
    expect(cancelMissing.data!.cancelRun.__typename).toBe('NotFoundError')
    const fromTemplate = await t.request(CreateWorkflowFromTemplateDocument, { template: 'nope' })
    expect(fromTemplate.data!.createWorkflowFromTemplate.__typename).toBe('NotFoundError')

    const id = await workflow()
    const runId = await run(id)
    await t.orchestrator.waitForRun(runId)
    const conflict = await t.request(CancelRunDocument, { runId })
    expect(conflict.data!.cancelRun).toMatchObject({ __typename: 'ConflictError', message: expect.stringMatching(/SUCCEEDED/) })
    const badInput = await t.request(CreateWorkflowDocument, { name: 'in', definition: { ...noopChain(1), input: { n: { type: 'number', required: true } } } })
    const wf = badInput.data!.createWorkflow
    if (wf.__typename !== 'CreateWorkflowSuccess') throw new Error('expected success')
    const invalidRun = await t.request(ExecuteWorkflowDocument, { workflowId: wf.workflow.id, input: { n: 'x' } })
    expect(invalidRun.data!.executeWorkflow).toMatchObject({ __typename: 'ValidationError', issues: [{ path: 'input.n' }] })
  })

  it('malformed GraphQL, bad variables and unknown fields get GraphQL errors; the server stays up', async () => {
    t = await startTestServer()
    const cases: [string, unknown][] = [
      ['{ runs { edges { node { id }', undefined],
      ['{ nope }', undefined],
      ['query ($id: ID!) { run(id: $id) { id } }', { id: { not: 'an id' } }],
      ['query ($id: ID!) { run(id: $id) { id } }', {}],
      ['query ($f: Int) { runs(first: $f) { edges { cursor } } }', { f: 'many' }],
      ['{ runs(first: 100000) { edges { cursor } } }', undefined],
      ['{ runs(last: 3) { edges { cursor } } }', undefined],
      ['{ events(after: "x") { edges { cursor } } }', undefined],
      ['{ node(id: "garbage") { id } }', undefined],
    ]
    for (const [query, variables] of cases) {
      const r = await t.request(query, variables as never)
      expect(r.errors?.length, query).toBeGreaterThan(0)
      expect(r.errors!.every((e) => typeof e.message === 'string' && e.message !== 'Unexpected error.'), JSON.stringify(r.errors)).toBe(true)
    }
    const raw = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' })
    expect(raw.status).toBe(400)
    expect((await fetch(t.url.replace('/graphql', '/healthz'))).status).toBe(200)
    expect((await t.request(FactoriesDocument)).data!.factories.map((f) => f.name)).toContain('control')
  })
})

describe('reads', () => {
  it('runs with their workflow and steps cost the same number of SQL statements for 10 and 100 runs', async () => {
    t = await startTestServer()
    const id = await workflow()
    const measure = async () => {
      const before = t.orchestrator.catalog.statementCount
      const r = await t.request(RunsPageDocument, { first: 100 })
      const count = t.orchestrator.catalog.statementCount - before
      return { count, runs: r.data!.runs.edges }
    }
    const start = async (n: number) => {
      const ids = await Promise.all(Array.from({ length: n }, () => run(id)))
      await Promise.all(ids.map((r) => t.orchestrator.waitForRun(r)))
    }
    await start(10)
    const ten = await measure()
    await start(90)
    const hundred = await measure()
    expect(ten.runs).toHaveLength(10)
    expect(hundred.runs).toHaveLength(100)
    expect(hundred.runs.every((e) => e.node.workflow.name === 'api_test' && e.node.steps.length === 3)).toBe(true)
    expect(hundred.count).toBe(ten.count)
    expect(ten.count).toBeLessThanOrEqual(4)
  })

  it('pages runs and events with cursors; node() refetches by global id', async () => {
    t = await startTestServer()
    const id = await workflow()
    const runIds: string[] = []
    for (let i = 0; i < 5; i++) runIds.push(await run(id))
    await Promise.all(runIds.map((r) => t.orchestrator.waitForRun(r)))
    const seen: string[] = []
    let after: string | null | undefined
    for (;;) {
      const page = (await t.request(RunsPageDocument, { first: 2, after, workflowId: id })).data!.runs
      seen.push(...page.edges.map((e) => e.node.id))
      if (!page.pageInfo.hasNextPage) break
      after = page.pageInfo.endCursor
    }
    expect(seen).toEqual([...runIds].reverse())
    const events = (await t.request(EventsPageDocument, { runId: runIds[0], first: 4 })).data!.events
    expect(events.edges.map((e) => e.node.type).slice(0, 2)).toEqual(['RUN_CREATED', 'RUN_STARTED'])
    expect(events.pageInfo.hasNextPage).toBe(true)
    const rest = (await t.request(EventsPageDocument, { runId: runIds[0], after: events.pageInfo.endCursor, first: 100 })).data!.events
    expect(rest.edges.at(-1)!.node.type).toBe('RUN_SUCCEEDED')
    const node = await t.request(`{ node(id: "${runIds[0]}") { __typename id ... on Run { status } } }`)
    expect(node.data).toEqual({ node: { __typename: 'Run', id: runIds[0], status: 'SUCCEEDED' } })
    const detail = (await t.request(RunDocument, { id: runIds[0]! })).data!.run!
    const stepNode = await t.request(`{ node(id: "${detail.steps[0]!.id}") { ... on Step { stepId status attempts } } }`)
    expect(stepNode.data).toEqual({ node: { stepId: 's0', status: 'SUCCEEDED', attempts: 1 } })
    expect(detail.steps[0]!.attemptHistory).toEqual([{ attempt: 1, status: 'SUCCEEDED' }])
    const wf = (await t.request(WorkflowDocument, { id })).data!.workflow!
    expect(wf.latestRun!.id).toBe(runIds[4])
    expect(wf.runs.edges).toHaveLength(5)
  })

  it('filters runs by status, workflow and creation time, newest first, and pages within a filter', async () => {
    t = await startTestServer()
    const ok = await workflow()
    const bad = await workflow({ steps: [{ id: 'f', factory: 'control', action: 'fail', params: {} }] })
    const okRuns: string[] = []
    for (let i = 0; i < 3; i++) okRuns.push(await run(ok))
    const badRun = await run(bad)
    await Promise.all([...okRuns, badRun].map((r) => t.orchestrator.waitForRun(r)))
    const query = `query ($status: RunStatus, $workflowId: ID, $createdAfter: DateTime, $createdBefore: DateTime, $first: Int, $after: String) {
      runs(status: $status, workflowId: $workflowId, createdAfter: $createdAfter, createdBefore: $createdBefore, first: $first, after: $after) {
        edges { node { id status createdAt } } pageInfo { hasNextPage endCursor } } }`
    type Page = { edges: { node: { id: string; status: string; createdAt: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } }
    const runs = async (variables: Record<string, unknown>) => {
      const r = await t.request(query, variables)
      expect(r.errors).toBeUndefined()
      return (r.data as { runs: Page }).runs
    }
    const ids = async (variables: Record<string, unknown>) => (await runs(variables)).edges.map((e) => e.node.id)
    const all = (await runs({})).edges
    expect(all.map((e) => e.node.id)).toEqual([badRun, ...[...okRuns].reverse()])
    expect(await ids({ status: 'FAILED' })).toEqual([badRun])
    expect(await ids({ status: 'SUCCEEDED', workflowId: ok })).toEqual([...okRuns].reverse())
    expect(await ids({ status: 'SUCCEEDED', workflowId: bad })).toEqual([])
    // Creation-time bounds are exclusive: strictly after the first run's, strictly before the last run's.
    const created = new Map(all.map((e) => [e.node.id, Date.parse(e.node.createdAt)]))
    const first = created.get(okRuns[0]!)!
    const last = created.get(badRun)!
    const expected = (lo: number, hi: number) => all.filter((e) => created.get(e.node.id)! > lo && created.get(e.node.id)! < hi).map((e) => e.node.id)
    expect(await ids({ createdAfter: new Date(first).toISOString() })).toEqual(expected(first, Infinity))
    expect(await ids({ createdBefore: new Date(last).toISOString() })).toEqual(expected(-Infinity, last))
    expect(await ids({ createdAfter: new Date(first - 1).toISOString(), createdBefore: new Date(last + 1).toISOString() })).toHaveLength(4)
    // Paging inside a filter: two pages of the succeeded runs, no overlap, nothing else.
    const one = await runs({ status: 'SUCCEEDED', first: 2 })
    expect(one.pageInfo.hasNextPage).toBe(true)
    const two = await runs({ status: 'SUCCEEDED', first: 2, after: one.pageInfo.endCursor })
    expect(two.pageInfo.hasNextPage).toBe(false)
    expect([...one.edges, ...two.edges].map((e) => e.node.id)).toEqual([...okRuns].reverse())
  })

  it('templates: register, version on change, instantiate with params', async () => {
    t = await startTestServer()
    const def = { steps: [{ factory: 'control', action: 'noop' }] }
    const v1 = await t.request(RegisterTemplateDocument, { name: 'tpl', definition: def })
    expect(v1.data!.registerTemplate).toMatchObject({ __typename: 'RegisterTemplateSuccess', template: { name: 'tpl', version: 1 } })
    const same = await t.request(RegisterTemplateDocument, { name: 'tpl', definition: def })
    expect(same.data!.registerTemplate).toMatchObject({ template: { version: 1 } })
    const v2 = await t.request(RegisterTemplateDocument, { name: 'tpl', definition: { ...def, parallel: true } })
    expect(v2.data!.registerTemplate).toMatchObject({ template: { version: 2 } })
    const made = await t.request(CreateWorkflowFromTemplateDocument, { template: 'tpl', params: { symbol: 'ETH' }, version: 1 })
    expect(made.data!.createWorkflowFromTemplate).toMatchObject({
      __typename: 'CreateWorkflowSuccess', workflow: { name: 'tpl', params: { symbol: 'ETH' }, templateName: 'tpl', templateVersion: 1 },
    })
    const list = await t.request('{ templates { edges { node { name version versions { version } } } } }')
    expect(list.data).toEqual({ templates: { edges: [{ node: { name: 'tpl', version: 2, versions: [{ version: 2 }, { version: 1 }] } }] } })
  })
})

describe('limits', () => {
  it('rejects too deep, too broad and too costly queries with a clear error', async () => {
    t = await startTestServer()
    let deep = 'id'
    for (let i = 0; i < 8; i++) deep = `workflow { runs(first: 1) { edges { node { ${deep} } } } }`
    const tooDeep = await t.request(`{ runs(first: 1) { edges { node { ${deep} } } } }`)
    expect(tooDeep.errors?.[0]).toMatchObject({ message: expect.stringMatching(/too deep/), extensions: { code: 'QUERY_TOO_COMPLEX' } })
    const aliases = Array.from({ length: 400 }, (_, i) => `a${i}: factories { name }`).join(' ')
    const tooBroad = await t.request(`{ ${aliases} }`)
    // 400 aliases: the alias limit (graphql-limits.ts) answers before the breadth limit.
    expect(tooBroad.errors?.[0]?.message).toMatch(/too (broad|complex)|aliases, more than the limit/)
    const broad = await t.request(`{ factories { ${'name '.repeat(400)} } }`)
    expect(broad.errors?.[0]?.message).toMatch(/too broad/)
    const costly = await t.request('{ runs(first: 500) { edges { node { steps { attemptHistory { attempt status error } params output } workflow { runs(first: 500) { edges { node { id } } } } } } } }')
    expect(costly.errors?.[0]?.message).toMatch(/too complex/)
    expect((await fetch(t.url.replace('/graphql', '/healthz'))).status).toBe(200)
  })
})

describe('request size', () => {
  it('refuses an oversized body whether it declares its length or is chunked, and serves a small chunked one', async () => {
    t = await startTestServer()
    const { request } = await import('node:http')
    const u = new URL(t.url)
    const send = (size: number, chunked: boolean) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const payload = JSON.stringify({ query: '{ factories { name } }', variables: { pad: 'x'.repeat(size) } })
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        if (chunked) headers['transfer-encoding'] = 'chunked'
        else headers['content-length'] = String(Buffer.byteLength(payload))
        const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers }, (res) => {
          let body = ''
          res.on('data', (c) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode!, body }))
        })
        req.on('error', reject)
        for (let i = 0; i < payload.length; i += 65536) req.write(payload.slice(i, i + 65536))
        req.end()
      })
    expect((await send(2_000_000, false)).status).toBe(413)
    const big = await send(2_000_000, true)
    expect(big.status).toBe(413)
    expect(big.body).toMatch(/exceeds/)
    const small = await send(10, true)
    expect(small.status).toBe(200)
    expect(JSON.parse(small.body).data.factories.map((f: { name: string }) => f.name)).toContain('control')
  })
})
