// The factory contract as clients see it: every action's inputSchema (and outputSchema) in
// Query.factories is valid JSON Schema (draft 2020-12, checked with Ajv), literal params that break
// an action's schema fail createWorkflow before any run starts, and Factory.health runs each
// factory's check (ok, failing, throwing, timing out, none).
import { describe, expect, it } from 'vitest'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { z } from 'zod'
import { defineFactory, orchestratorFromConfig, ValidationError } from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { until } from './support/barrier.ts'
import { CreateWorkflowDocument, FactoriesDocument, FactoryByNameDocument, FactoryHealthDocument } from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined
const opened = openedPerTest({
  before: async () => {
    await t?.close()
    t = undefined
  },
})

const probe = defineFactory({
  name: 'probe',
  actions: {
    typed: {
      input: z.object({ n: z.int().min(1), tags: z.array(z.string()).default([]), mode: z.enum(['a', 'b']).optional() }),
      output: z.object({ doubled: z.number() }),
      run: ({ n }) => ({ doubled: n * 2 }),
    },
  },
})

describe('action schemas in Query.factories are valid JSON Schema', () => {
  it('every inputSchema and non-null outputSchema passes Ajv (draft 2020-12) and compiles', async () => {
    t = await startTestServer({ factories: { probe, plain: { async hello() { return 'hi' } } } })
    const r = await t.request(FactoriesDocument)
    const factories = r.data!.factories
    expect(factories.map((f) => f.name)).toEqual(expect.arrayContaining(['control', 'http', 'transform', 'probe', 'plain']))
    const ajv = new Ajv2020({ strict: false })
    // Compiling too proves a form library could use it (formats are not the point here).
    const compiler = new Ajv2020({ strict: false, validateFormats: false })
    let checked = 0
    for (const factory of factories) {
      for (const action of factory.actions) {
        for (const [which, schema] of [['inputSchema', action.inputSchema], ['outputSchema', action.outputSchema]] as const) {
          if (schema === null && which === 'outputSchema') continue
          const where = `${factory.name}.${action.name}.${which}`
          expect(schema, where).toEqual(expect.any(Object))
          const valid = ajv.validateSchema(schema as object)
          expect(valid, `${where}: ${ajv.errorsText(ajv.errors)}`).toBe(true)
          expect(() => compiler.compile(schema as object), where).not.toThrow()
          checked++
        }
      }
    }
    // control (4 actions), http (input + output), transform, probe (input + output), plain.
    expect(checked).toBeGreaterThanOrEqual(10)
  })

  it('the built-in schemas describe what the actions accept (Ajv and zod agree on samples)', async () => {
    t = await startTestServer({ http: { allowedHosts: ['api.example.com'] } })
    const r = await t.request(FactoryByNameDocument, { name: 'http' })
    const request = r.data!.factory!.actions.find((a) => a.name === 'request')!
    expect(request.retry).toEqual({ maxAttempts: 3, backoff: 'exponential', initialMs: 500 })
    const validate = new Ajv2020({ strict: false }).compile(request.inputSchema as object)
    expect(validate({ url: 'https://api.example.com/v1', method: 'POST', json: { a: 1 }, query: { q: 'x', n: [1, 2] }, timeoutMs: 500 })).toBe(true)
    expect(validate({ url: 'https://api.example.com', methd: 'GET' })).toBe(false) // unknown key
    expect(validate({ url: 'https://api.example.com', method: 'TRACE' })).toBe(false)
    expect(validate({ method: 'GET' })).toBe(false) // url is required

    const transform = (await t.request(FactoryByNameDocument, { name: 'transform' })).data!.factory!.actions[0]!
    const validateMap = new Ajv2020({ strict: false }).compile(transform.inputSchema as object)
    expect(validateMap({ expression: '$sum(values)', input: { values: [1] } })).toBe(true)
    expect(validateMap({ input: {} })).toBe(false)
  })
})

describe('bad literal params fail createWorkflow before any run starts', () => {
  const cases: { name: string; step: Record<string, unknown>; path: string; message: RegExp }[] = [
    { name: 'http: unknown method', step: { factory: 'http', action: 'request', params: { url: 'https://api.example.com/', method: 'TRACE' } }, path: 'steps[0].params.method', message: /./ },
    { name: 'http: not a URL', step: { factory: 'http', action: 'request', params: { url: 'not a url' } }, path: 'steps[0].params.url', message: /not an absolute URL/ },
    { name: 'http: ftp URL', step: { factory: 'http', action: 'request', params: { url: 'ftp://api.example.com/' } }, path: 'steps[0].params.url', message: /only http and https/ },
    { name: 'http: host off the list', step: { factory: 'http', action: 'request', params: { url: 'https://evil.example.org/' } }, path: 'steps[0].params.url', message: /not allowed/ },
    { name: 'http: json and body', step: { factory: 'http', action: 'request', params: { url: 'https://api.example.com/', method: 'POST', json: {}, body: 'x' } }, path: 'steps[0].params.body', message: /json or body/ },
    { name: 'http: timeoutMs not positive', step: { factory: 'http', action: 'request', params: { url: 'https://api.example.com/', timeoutMs: 0 } }, path: 'steps[0].params.timeoutMs', message: /./ },
    { name: 'http: misspelt key', step: { factory: 'http', action: 'request', params: { url: 'https://api.example.com/', header: {} } }, path: 'steps[0].params', message: /header/ },
    { name: 'transform: missing expression', step: { factory: 'transform', action: 'map', params: { input: 1 } }, path: 'steps[0].params.expression', message: /./ },
    { name: 'transform: expression does not parse', step: { factory: 'transform', action: 'map', params: { expression: '{ "a": ' } }, path: 'steps[0].params.expression', message: /does not parse/ },
    { name: 'control.delay: neither ms nor until', step: { factory: 'control', action: 'delay', params: {} }, path: 'steps[0].params', message: /exactly one of ms or until/ },
    { name: 'custom: wrong type', step: { factory: 'probe', action: 'typed', params: { n: 'two' } }, path: 'steps[0].params.n', message: /./ },
    { name: 'custom: nested', step: { factory: 'probe', action: 'typed', params: { n: 1, tags: ['ok', 5] } }, path: 'steps[0].params.tags[1]', message: /./ },
  ]

  it.each(cases)('library: $name', async ({ step, path, message }) => {
    const o = orchestratorFromConfig({ http: { allowedHosts: ['api.example.com'] }, factories: { probe } })
    opened.track(o)
    const error = await o.createWorkflow('bad', { steps: [step] }).catch((e) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toContainEqual({ path, message: expect.stringMatching(message) })
    // Nothing was stored and nothing ran.
    expect(o.context.conn.sqlite.prepare('select count(*) as n from workflows').get()).toEqual({ n: 0 })
    expect(o.context.conn.sqlite.prepare('select count(*) as n from runs').get()).toEqual({ n: 0 })
  })

  it('GraphQL: createWorkflow answers ValidationError with every issue and its path', async () => {
    t = await startTestServer({ http: { allowedHosts: ['api.example.com'] }, factories: { probe } })
    const r = await t.request(CreateWorkflowDocument, { name: 'bad', definition: { steps: cases.map((c) => c.step) } })
    const res = r.data!.createWorkflow
    expect(res.__typename).toBe('ValidationError')
    if (res.__typename !== 'ValidationError') return
    for (const [i, c] of cases.entries()) {
      const path = c.path.replace('steps[0]', `steps[${i}]`)
      expect(res.issues, c.name).toContainEqual({ path, message: expect.stringMatching(c.message) })
    }
    const runs = await t.request('{ runs(first: 1) { edges { node { id } } } }')
    expect(runs.data).toEqual({ runs: { edges: [] } })
  })
})

describe('action outputs that cannot be stored', () => {
  it('a schema mismatch, a cycle, a BigInt or a very deep output fails the step at once, saying which', async () => {
    const o = opened.orchestrator()
    let deep: unknown = 1
    for (let i = 0; i < 20_000; i++) deep = { p: deep }
    o.registerFactory('out', defineFactory({
      name: 'out',
      actions: {
        wrong: { output: z.object({ doubled: z.number() }), retry: { maxAttempts: 3, initialMs: 0 }, run: () => ({ doubled: 'two' }) },
        cycle: { retry: { maxAttempts: 3, initialMs: 0 }, run: () => { const a: Record<string, unknown> = {}; a.self = a; return a } },
        big: { run: () => ({ n: 1n }) },
        deep: { run: () => deep },
      },
    }))
    const errors: Record<string, string | undefined> = {}
    for (const action of ['wrong', 'cycle', 'big', 'deep']) {
      const id = await o.createWorkflow(`out_${action}`, { steps: [{ id: 's', factory: 'out', action, params: {} }] })
      const result = await o.executeWorkflow(id)
      expect(result.status).toBe('FAILED')
      // Not retried: the same code would give the same output.
      expect(result.steps.s).toMatchObject({ status: 'FAILED', attempts: 1 })
      errors[action] = result.steps.s!.error
    }
    expect(errors.wrong).toBe("output does not match the action's schema: doubled: Invalid input: expected number, received string")
    expect(errors.cycle).toMatch(/^output cannot be stored as JSON: .*circular/i)
    expect(errors.big).toMatch(/^output cannot be stored as JSON: .*BigInt/)
    expect(errors.deep).toBe('output cannot be stored as JSON: it is nested too deeply')
  })
})

describe('Factory.health', () => {
  const withHealth = (health: () => unknown) =>
    defineFactory({ name: 'x', actions: { noop: { run: () => null } }, health: health as () => { ok: boolean } })

  it('reports ok, failing, throwing and timing-out checks, and "no health check" without one', async () => {
    t = await startTestServer({
      factories: {
        healthy: withHealth(() => ({ ok: true, message: 'upstream reachable' })),
        degraded: withHealth(async () => ({ ok: false, message: 'quota exhausted' })),
        throwing: withHealth(async () => {
          throw new Error('connection refused')
        }),
        throwsSync: withHealth(() => {
          throw new Error('no credentials')
        }),
        malformed: withHealth(() => 'fine'),
        hanging: withHealth(() => new Promise(() => {})),
        plain: { async hello() { return 'hi' } },
      },
    })
    const before = Date.now()
    const r = await t.request(FactoryHealthDocument)
    const after = Date.now()
    expect(r.errors).toBeUndefined()
    const health = Object.fromEntries(r.data!.factories.map((f) => [f.name, f.health]))
    expect(health.healthy).toMatchObject({ ok: true, message: 'upstream reachable' })
    expect(health.degraded).toMatchObject({ ok: false, message: 'quota exhausted' })
    expect(health.throwing).toMatchObject({ ok: false, message: 'connection refused' })
    expect(health.throwsSync).toMatchObject({ ok: false, message: 'no credentials' })
    expect(health.malformed).toMatchObject({ ok: false, message: expect.stringMatching(/did not answer/) })
    expect(health.hanging).toMatchObject({ ok: false, message: 'health check timed out after 2000 ms' })
    for (const name of ['plain', 'control', 'http', 'transform']) expect(health[name], name).toMatchObject({ ok: true, message: 'no health check' })
    for (const h of Object.values(health)) {
      const at = Date.parse(h!.checkedAt)
      expect(at).toBeGreaterThanOrEqual(before - 1)
      expect(at).toBeLessThanOrEqual(after + 1)
    }
  })

  it('Query.factory(name) runs only that factory\'s check, each time it is asked', async () => {
    let calls = 0
    t = await startTestServer({ factories: { counted: withHealth(() => ({ ok: ++calls > 1, message: `call ${calls}` })) } })
    const first = await t.request(FactoryByNameDocument, { name: 'counted' })
    expect(first.data!.factory!.health).toMatchObject({ ok: false, message: 'call 1' })
    const second = await t.request(FactoryByNameDocument, { name: 'counted' })
    expect(second.data!.factory!.health).toMatchObject({ ok: true, message: 'call 2' })
    expect(calls).toBe(2)
  })

  it('callers that ask while a check is running share it: one call for 20 concurrent fields, a new one after', async () => {
    let calls = 0
    let answer!: () => void
    const gate = new Promise<void>((resolve) => (answer = resolve))
    t = await startTestServer({ factories: { slow: withHealth(async () => (calls++, await gate, { ok: true, message: `call ${calls}` })) } })
    // 20 aliases of one field resolve concurrently within one request; they all ask while the first check waits.
    const fields = Array.from({ length: 20 }, (_, i) => `f${i}: factory(name: "slow") { health { ok message checkedAt } }`).join(' ')
    const burst = t.request<Record<string, { health: { message: string } }>, unknown>(`{ ${fields} }`)
    await until(() => calls > 0)
    answer()
    const result = await burst
    expect(result.errors).toBeUndefined()
    expect(calls).toBe(1)
    expect(new Set(Object.values(result.data!).map((f) => JSON.stringify(f.health))).size).toBe(1)
    expect(result.data!.f0!.health).toMatchObject({ ok: true, message: 'call 1' })
    expect((await t.request(FactoryByNameDocument, { name: 'slow' })).data!.factory!.health).toMatchObject({ message: 'call 2' })
  })
})
