// Validation before anything is stored: every problem of a definition reported at once, each with
// its path, in `validate()` and in the ValidationError that `createWorkflow` throws; and bad run
// input rejected before a run exists.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { until } from './support/barrier.ts'
import {
  ProjectOrchestrator, ValidationError, controlFactory, defineFactory, type ActionContext, type ValidationIssue,
} from '../src/index.ts'

let o: ProjectOrchestrator
const inputs: unknown[] = []

beforeEach(() => {
  o = new ProjectOrchestrator()
  inputs.length = 0
  o.registerFactory('research', defineFactory({
    name: 'research',
    actions: {
      analyze_market: {
        input: z.object({ symbol: z.string().min(1), days: z.number().int().positive().optional() }),
        run: async (input, ctx) => {
          inputs.push({ step: ctx.stepId, input, runInput: ctx.input })
          return { symbol: input.symbol }
        },
      },
      initiate_research: { run: async (input) => input },
    },
  }))
  o.registerFactory('media', {
    async create_media(params: unknown, ctx: ActionContext) {
      inputs.push({ step: ctx.stepId, input: params, runInput: ctx.input })
      return params
    },
  })
})

afterEach(async () => {
  await o.close()
})

const TABLES = ['workflows', 'workflow_versions', 'templates', 'runs', 'steps', 'step_attempts', 'events'] as const
function counts(): Record<(typeof TABLES)[number], number> {
  const out = {} as Record<(typeof TABLES)[number], number>
  for (const t of TABLES) out[t] = (o.context.conn.sqlite.prepare(`select count(*) as n from ${t}`).get() as { n: number }).n
  return out
}

async function rejection(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a ValidationError')
    },
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ValidationError)
  return error as ValidationError
}

const byPath = (issues: ValidationIssue[]) => {
  const map = new Map<string, string[]>()
  for (const i of issues) map.set(i.path, [...(map.get(i.path) ?? []), i.message])
  return map
}

describe('a definition with many problems', () => {
  // One definition, one problem of every kind (a different step carries each, so none hides another).
  const broken = {
    factories: ['research', 'reserch'],
    steps: [
      { id: 'a', factory: 'research', action: 'analyze_market', params: { symbol: 'BTC' }, dependsOn: ['c'] },
      { id: 'b', factory: 'research', action: 'analyze_markt', params: { symbol: 'BTC' } },
      { id: 'c', factory: 'research', action: 'analyze_market', params: { symbol: 'BTC' }, dependsOn: ['a'] },
      { id: 'd', factory: 'reserch', action: 'analyze_market' },
      { id: 'e', factory: 'research', action: 'initiate_research', dependsOn: ['zzz_missing'] },
      { id: 'e', factory: 'research', action: 'initiate_research' },
      { id: 'f', factory: 'research', action: 'initiate_research', params: { q: '{{ steps.a.output. }}', list: ['ok', '{{ ( }}'] } },
      { id: 'g', factory: 'research', action: 'initiate_research', when: '{{ steps.a.status = }}' },
      { id: 'h', factory: 'research', action: 'analyze_market', params: { symbol: 42, days: -1 } },
      { id: 'i', factory: 'media', action: 'create_media', params: {} },
      { id: 'j', factory: 'research', action: 'analyze_market', params: { symbol: '', other: '{{ input.x }}' } },
      { id: 'k', factory: 'nothing_like_it', action: 'x' },
      { id: 'grp', steps: [{ id: 'inner', factory: 'research', action: 'initiate_reserch' }] },
    ],
    output: '{{ steps.a.output + }}',
  }

  const expected: [path: string, message: RegExp][] = [
    ['steps[0].dependsOn', /dependency cycle: (a → c → a|c → a → c)/],
    ['steps[1].action', /factory "research" has no action "analyze_markt" \(did you mean "analyze_market"\?\)/],
    ['factories[1]', /unknown factory "reserch" \(did you mean "research"\?\)/],
    ['steps[3].factory', /unknown factory "reserch" \(did you mean "research"\?\)/],
    ['steps[4].dependsOn[0]', /unknown step "zzz_missing"/],
    ['steps[5].id', /duplicate step id "e"/],
    ['steps[6].params.q', /expression "steps\.a\.output\.":/],
    ['steps[6].params.list[1]', /expression "\(":/],
    ['steps[7].when', /expression "steps\.a\.status =":/],
    ['steps[8].params.symbol', /expected string/],
    ['steps[8].params.days', /too small|>0/],
    ['steps[9].factory', /factory "media" is not listed in "factories"/],
    ['steps[10].params.symbol', /too small|>=1/],
    ['steps[11].factory', /^unknown factory "nothing_like_it"$/],
    ['steps[12].steps[0].action', /no action "initiate_reserch" \(did you mean "initiate_research"\?\)/],
    ['output', /expression "steps\.a\.output \+":/],
  ]

  it('validate() reports every problem at once, each with its path', () => {
    const result = o.workflows.validate(broken)
    expect(result.valid).toBe(false)
    const issues = byPath(result.issues)
    for (const [path, message] of expected) {
      expect(issues.get(path), `issue at ${path}`).toBeDefined()
      expect(issues.get(path)!.some((m) => message.test(m)), `${path}: ${issues.get(path)} ~ ${message}`).toBe(true)
    }
    // Nothing else was invented.
    expect([...issues.keys()].sort()).toEqual(expected.map(([p]) => p).sort())
    expect(result.issues.every((i) => typeof i.message === 'string' && i.message.length > 0)).toBe(true)
  })

  it('createWorkflow throws the same issues in one ValidationError and stores nothing', async () => {
    const before = counts()
    const error = await rejection(o.createWorkflow('broken', broken))
    expect(error.issues).toEqual(o.workflows.validate(broken).issues)
    expect(error.issues.length).toBeGreaterThanOrEqual(expected.length)
    // The message lists them too, path first.
    for (const [path] of expected) expect(error.message).toContain(`${path}: `)
    expect(counts()).toEqual(before)
    expect(before.workflows).toBe(0)
  })

  it('the same definition, repaired, is accepted', async () => {
    const repaired = {
      factories: ['research', 'media'],
      steps: [
        { id: 'a', factory: 'research', action: 'analyze_market', params: { symbol: 'BTC' } },
        { id: 'c', factory: 'research', action: 'analyze_market', params: { symbol: 'BTC' }, dependsOn: ['a'] },
        { id: 'f', factory: 'research', action: 'initiate_research', params: { q: '{{ steps.a.output.symbol }}' } },
        { id: 'g', factory: 'research', action: 'initiate_research', when: "{{ steps.a.status = 'SUCCEEDED' }}" },
        { id: 'i', factory: 'media', action: 'create_media', params: {} },
      ],
      output: '{{ steps.a.output }}',
    }
    expect(o.workflows.validate(repaired)).toEqual({ valid: true, issues: [] })
    const before = counts()
    const id = await o.createWorkflow('repaired', repaired)
    expect(counts().workflows).toBe(before.workflows + 1)
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.output).toEqual({ symbol: 'BTC' })
  })
})

describe('each kind of problem', () => {
  const step = (extra: Record<string, unknown> = {}) => ({ factory: 'research', action: 'initiate_research', params: {}, ...extra })

  it('names every step of a longer cycle', () => {
    const result = o.workflows.validate({
      parallel: true,
      steps: [
        step({ id: 'start' }),
        step({ id: 'x', dependsOn: ['start', 'z'] }),
        step({ id: 'y', dependsOn: ['x'] }),
        step({ id: 'z', dependsOn: ['y'] }),
      ],
    })
    expect(result.valid).toBe(false)
    expect(result.issues).toHaveLength(1)
    const message = result.issues[0]!.message
    expect(message).toMatch(/^dependency cycle: /)
    const cycle = message.replace('dependency cycle: ', '').split(' → ')
    expect(cycle[0]).toBe(cycle.at(-1))
    expect(new Set(cycle)).toEqual(new Set(['x', 'y', 'z']))
    expect(result.issues[0]!.path).toMatch(/^steps\[[123]\]\.dependsOn$/)
  })

  it('a step depending on itself is a cycle', () => {
    const result = o.workflows.validate({ steps: [step({ id: 'self', dependsOn: ['self'] })] })
    expect(result.issues).toEqual([{ path: 'steps[0].dependsOn[0]', message: expect.stringContaining('cycle self → self') }])
  })

  it('unknown dependsOn suggests a close id', () => {
    const result = o.workflows.validate({
      steps: [step({ id: 'analyze' }), step({ id: 'report', dependsOn: ['analyse'] })],
    })
    expect(result.issues).toEqual([{ path: 'steps[1].dependsOn[0]', message: 'unknown step "analyse" (did you mean "analyze"?)' }])
  })

  it('step ids __proto__, constructor and prototype are refused, in groups too; other problems still reported', () => {
    const result = o.workflows.validate({
      steps: [
        step({ id: '__proto__' }), step({ id: 'constructor' }),
        { id: 'g', steps: [step({ id: 'prototype' }), step({ id: 'ok', dependsOn: ['missing'] })] },
      ],
    })
    expect(result.issues).toEqual([
      { path: 'steps[0].id', message: 'step id "__proto__" is reserved (JavaScript objects treat it specially: it would not resolve in steps.__proto__); choose another' },
      { path: 'steps[1].id', message: expect.stringContaining('step id "constructor" is reserved') },
      { path: 'steps[2].steps[0].id', message: expect.stringContaining('step id "prototype" is reserved') },
      { path: 'steps[2].steps[1].dependsOn[0]', message: 'unknown step "missing"' },
    ])
  })

  it('a "__proto__" key in params (at any depth) or the output is refused with its path; the parse used to drop it silently', () => {
    const definition = JSON.parse(`{
      "steps": [{ "id": "a", "factory": "media", "action": "create_media",
                  "params": { "__proto__": "{{ input.x }}", "nested": { "__proto__": { "y": 1 } } } }],
      "output": { "__proto__": "{{ steps.a.output }}" }
    }`)
    const message = '"__proto__" cannot be a key: JavaScript objects take it as their prototype, so its value would be lost'
    expect(o.workflows.validate(definition).issues).toEqual([
      { path: 'steps[0].params.__proto__', message },
      { path: 'steps[0].params.nested.__proto__', message },
      { path: 'output.__proto__', message },
    ])
  })

  it('createWorkflow refuses a reserved step id or __proto__ param key and stores nothing; renamed, the same workflow runs', async () => {
    const before = counts()
    const reservedId = await rejection(o.createWorkflow('wf', {
      steps: [{ id: 'constructor', factory: 'media', action: 'create_media', params: { v: 1 } }, { factory: 'media', action: 'create_media', params: { got: '{{ steps.constructor.output.v }}' } }],
    }))
    expect(reservedId.issues.map((i) => i.path)).toEqual(['steps[0].id'])
    const protoKey = await rejection(o.createWorkflow('wf', JSON.parse('{"steps":[{"factory":"media","action":"create_media","params":{"__proto__":"{{ input.x }}"}}]}')))
    expect(protoKey.issues.map((i) => i.path)).toEqual(['steps[0].params.__proto__'])
    expect(counts()).toEqual(before)

    const id = await o.createWorkflow('wf', {
      steps: [{ id: 'first', factory: 'media', action: 'create_media', params: { v: 1 } }, { id: 'second', factory: 'media', action: 'create_media', params: { got: '{{ steps.first.output.v }}', proto: '{{ input.x }}' } }],
    })
    const run = await o.executeWorkflow(id, { x: 'kept' })
    expect(run.status).toBe('SUCCEEDED')
    expect(run.output).toEqual({ second: { got: 1, proto: 'kept' } })
  })

  it('duplicate ids are reported at every repeat, also inside groups', () => {
    const result = o.workflows.validate({
      steps: [
        step({ id: 'a' }), step({ id: 'a' }), step({ id: 'a' }),
        { id: 'g', steps: [step({ id: 'm' }), step({ id: 'm' })] },
      ],
    })
    expect(result.issues.map((i) => i.path)).toEqual(['steps[1].id', 'steps[2].id', 'steps[3].steps[1].id'])
    expect(result.issues.every((i) => i.message.startsWith('duplicate step id'))).toBe(true)
  })

  it("a step with a duplicate id still has its other problems reported", () => {
    const result = o.workflows.validate({
      steps: [
        step({ id: 'a' }),
        { id: 'a', factory: 'research', action: 'analyze_markt', params: { q: '{{ ( }}' } },
        step({ id: 'b', dependsOn: ['a'] }),
      ],
    })
    expect(byPath(result.issues)).toEqual(new Map([
      ['steps[1].id', ['duplicate step id "a"']],
      ['steps[1].params.q', [expect.stringMatching(/^expression "\(":/)]],
      ['steps[1].action', ['factory "research" has no action "analyze_markt" (did you mean "analyze_market"?)']],
    ]))
  })

  it('ids of different groups may repeat; they are distinct paths', () => {
    const result = o.workflows.validate({
      steps: [{ id: 'g1', steps: [step({ id: 'm' })] }, { id: 'g2', steps: [step({ id: 'm' })] }],
    })
    expect(result).toEqual({ valid: true, issues: [] })
  })

  it('literal params are checked against the zod input schema of the action', () => {
    const result = o.workflows.validate({
      steps: [
        { factory: 'research', action: 'analyze_market', params: { days: 3 } },
        { factory: 'research', action: 'analyze_market', params: { symbol: 'BTC', days: 1.5 } },
        // Fields computed by expressions are checked when the step runs, literal ones now.
        { factory: 'research', action: 'analyze_market', params: { symbol: '{{ input.s }}', days: 'three' } },
        { factory: 'research', action: 'analyze_market' },
      ],
    })
    expect(result.issues.map((i) => i.path)).toEqual([
      'steps[0].params.symbol', 'steps[1].params.days', 'steps[2].params.days', 'steps[3].params.symbol',
    ])
  })

  it('params computed by expressions that fail the schema fail the step when it runs', async () => {
    const id = await o.createWorkflow('late', {
      steps: [{ factory: 'research', action: 'analyze_market', params: { symbol: '{{ input.n }}' } }],
    })
    const result = await o.executeWorkflow(id, { n: 5 })
    expect(result.status).toBe('FAILED')
    expect(result.steps.analyze_market).toMatchObject({ status: 'FAILED', attempts: 1 })
    expect(result.steps.analyze_market!.error).toMatch(/^invalid params: symbol: /)
    expect(inputs).toEqual([])
  })

  it('a step whose factory is not in `factories` is rejected even though the factory exists', () => {
    const result = o.workflows.validate({
      factories: ['research'],
      steps: [step(), { factory: 'media', action: 'create_media', params: {} }, { steps: [{ factory: 'media', action: 'create_media' }] }],
    })
    expect(result.issues).toEqual([
      { path: 'steps[1].factory', message: 'factory "media" is not listed in "factories"' },
      { path: 'steps[2].steps[0].factory', message: 'factory "media" is not listed in "factories"' },
    ])
  })

  it('a step needs factory and action, or nested steps, never both', () => {
    const result = o.workflows.validate({
      steps: [
        { id: 'nothing' },
        { id: 'half', factory: 'research' },
        { id: 'both', factory: 'research', action: 'initiate_research', steps: [step()] },
      ],
    })
    expect(byPath(result.issues)).toEqual(new Map([
      ['steps[0]', ['a step needs "factory" and "action" (or nested "steps")']],
      ['steps[1]', ['a step needs "factory" and "action" (or nested "steps")']],
      ['steps[2]', ['a step has either factory/action or nested steps, not both']],
    ]))
  })

  it('a malformed shape still reports unknown factories and actions (with a suggestion), nested steps too', async () => {
    const result = o.workflows.validate({
      parallel: 'yes',
      steps: [
        { factory: 'reserch', action: 'analyze_market', params: { symbol: 'X' } },
        { id: 'grp', steps: [{ factory: 'research', action: 'analyse_market', params: {} }, { factory: 'media', action: 'create_media', timeoutMs: -1 }] },
      ],
    })
    expect(result.valid).toBe(false)
    const messages = byPath(result.issues)
    expect(messages.get('parallel')).toBeDefined()
    expect(messages.get('steps[1].steps[1].timeoutMs')).toBeDefined()
    expect(messages.get('steps[0].factory')).toEqual(['unknown factory "reserch" (did you mean "research"?)'])
    expect(messages.get('steps[1].steps[0].action')).toEqual(['factory "research" has no action "analyse_market" (did you mean "analyze_market"?)'])
    // Known names are not reported.
    expect(messages.has('steps[1].steps[1].factory')).toBe(false)
  })

  it('a definition nested deeper than 64 levels is refused with the path where it goes too deep, and stores nothing', async () => {
    let group: Record<string, unknown> = { factory: 'research', action: 'initiate_research' }
    for (let i = 0; i < 5000; i++) group = { steps: [group] }
    let params: unknown = 1
    for (let i = 0; i < 5000; i++) params = { p: params }
    const before = counts()
    for (const definition of [{ steps: [group] }, { steps: [{ factory: 'research', action: 'initiate_research', params }] }]) {
      const result = o.workflows.validate(definition)
      expect(result.valid).toBe(false)
      expect(result.issues).toHaveLength(1)
      expect(result.issues[0]!.message).toBe('nested more than 64 levels deep')
      const error = await rejection(o.createWorkflow('deep', definition))
      expect(error.issues).toEqual(result.issues)
    }
    const [groups, deepParams] = [
      o.workflows.validate({ steps: [group] }).issues[0]!.path,
      o.workflows.validate({ steps: [{ factory: 'research', action: 'initiate_research', params }] }).issues[0]!.path,
    ]
    expect(groups).toMatch(/^steps\[0\](\.steps\[0\])+$/)
    expect(deepParams).toMatch(/^steps\[0\]\.params(\.p)+$/)
    expect(counts()).toEqual(before)
  })

  it('a run input, signal payload or retry params nested thousands of levels deep is a ValidationError, and changes nothing', async () => {
    o.registerFactory('control', controlFactory)
    let deep: unknown = 1
    for (let i = 0; i < 5000; i++) deep = { p: deep }
    const id = await o.createWorkflow('gate', { steps: [{ id: 'gate', factory: 'control', action: 'approval', params: {} }] })
    const before = counts()
    const input = await rejection(o.executeWorkflow(id, deep))
    expect(input.issues).toEqual([{ path: expect.stringMatching(/^input(\.p)+$/), message: 'nested more than 128 levels deep' }])
    expect(counts()).toEqual(before)

    const { runId } = await o.startWorkflow(id)
    await until(() => o.coordinator.readResult(runId).steps.gate!.status === 'WAITING')
    const payload = await rejection(o.signalRun(runId, 'gate', deep))
    expect(payload.issues[0]!.path).toMatch(/^payload(\.p)+$/)
    expect(o.coordinator.readResult(runId).steps.gate!.status).toBe('WAITING')
    // The run is unharmed: a shallow payload still goes through.
    await o.signalRun(runId, 'gate', { ok: true })
    const done = await o.waitForRun(runId)
    expect(done.steps.gate!.output).toEqual({ ok: true })
    const params = await rejection(o.retryRun(runId, { fromStep: 'gate', params: { x: deep } as Record<string, unknown> }))
    expect(params.issues[0]!.path).toMatch(/^params\.x(\.p)+$/)
  })

  it('a malformed shape reports missing, wrongly typed and unknown fields together', async () => {
    const malformed = {
      parallel: 'yes',
      maxParallel: 0,
      onFailure: 'explode',
      failGraceMs: -1,
      extra: true,
      steps: [
        { factory: 1, action: 'x', bogus: 1, dependsOn: 'a', retry: { maxAttempts: 0, backoff: 'sometimes' } },
        { id: 'has space', factory: 'research', action: 'initiate_research', params: ['not', 'an', 'object'] },
      ],
    }
    const result = o.workflows.validate(malformed)
    expect(result.valid).toBe(false)
    const paths = result.issues.map((i) => i.path)
    expect(paths).toEqual(expect.arrayContaining([
      'parallel', 'maxParallel', 'onFailure', 'failGraceMs', '(root)',
      'steps[0].factory', 'steps[0]', 'steps[0].dependsOn', 'steps[0].retry.maxAttempts', 'steps[0].retry.backoff',
      'steps[1].id', 'steps[1].params',
    ]))
    const messages = byPath(result.issues)
    expect(messages.get('(root)')!.join()).toContain('"extra"')
    expect(messages.get('steps[0]')!.join()).toContain('"bogus"')

    const before = counts()
    const error = await rejection(o.createWorkflow('malformed', malformed))
    expect(error.issues).toEqual(result.issues)
    expect(counts()).toEqual(before)
  })

  it('missing or empty steps, and definitions that are not objects, are rejected with a path', async () => {
    expect(o.workflows.validate({ factories: ['research'] }).issues).toEqual([
      { path: 'steps', message: expect.stringContaining('expected array') },
    ])
    expect(o.workflows.validate({ steps: [] }).issues).toEqual([{ path: 'steps', message: 'a workflow needs at least one step' }])
    for (const bad of [null, undefined, 'steps', 42, []]) {
      const result = o.workflows.validate(bad)
      expect(result.valid).toBe(false)
      expect(result.issues[0]!.path).toBe('(root)')
    }
    const before = counts()
    await rejection(o.createWorkflow('nothing', undefined))
    await rejection(o.createWorkflow('empty', { steps: [] }))
    expect(counts()).toEqual(before)
  })

  it('a bad workflow name is rejected before the definition is looked at', async () => {
    const error = await rejection(o.createWorkflow('not a name!', { steps: [step()] }))
    expect(error.issues).toEqual([{ path: 'name', message: expect.any(String) }])
    expect(counts().workflows).toBe(0)
  })

  it('a broken input declaration is reported with its path', () => {
    const result = o.workflows.validate({
      input: { symbol: { type: 'strang', required: true }, days: { type: 'number', mystery: 1 } },
      steps: [step()],
    })
    expect(result.issues.map((i) => i.path).sort()).toEqual(['input.days', 'input.symbol.type'])
  })
})

describe('run input', () => {
  const simpleInput = {
    input: { symbol: { type: 'string', required: true }, days: { type: 'integer', default: 7 }, note: { type: 'string' } },
    steps: [{ factory: 'research', action: 'analyze_market', params: { symbol: '{{ input.symbol }}', days: '{{ input.days }}' } }],
  }
  const jsonSchemaInput = {
    input: {
      type: 'object',
      properties: {
        symbol: { type: 'string', minLength: 1 },
        days: { type: 'integer', minimum: 1, default: 30 },
      },
      required: ['symbol'],
    },
    steps: [{ factory: 'media', action: 'create_media', params: { symbol: '{{ input.symbol }}', days: '{{ input.days }}' } }],
  }

  it('the simple map form rejects missing or mistyped fields and creates no run', async () => {
    const id = await o.createWorkflow('simple', simpleInput)
    const before = counts()
    const missing = await rejection(o.startWorkflow(id, {}))
    expect(missing.issues).toEqual([{ path: 'input.symbol', message: expect.any(String) }])
    const noInput = await rejection(o.executeWorkflow(id))
    expect(noInput.issues.map((i) => i.path)).toEqual(['input.symbol'])
    const mistyped = await rejection(o.executeWorkflow(id, { symbol: 5, days: 'seven' }))
    expect(mistyped.issues.map((i) => i.path).sort()).toEqual(['input.days', 'input.symbol'])
    const fraction = await rejection(o.executeWorkflow(id, { symbol: 'BTC', days: 1.5 }))
    expect(fraction.issues.map((i) => i.path)).toEqual(['input.days'])
    expect(counts()).toEqual(before)
    expect(before.runs).toBe(0)
    expect((await o.getWorkflowStatus(id)).status).toBeNull()
  })

  it('the simple map form fills in defaults and keeps extra fields', async () => {
    const id = await o.createWorkflow('simple', simpleInput)
    const result = await o.executeWorkflow(id, { symbol: 'BTC', extra: 'kept' })
    expect(result.status).toBe('SUCCEEDED')
    expect(inputs).toEqual([
      { step: 'analyze_market', input: { symbol: 'BTC', days: 7 }, runInput: { symbol: 'BTC', days: 7, extra: 'kept' } },
    ])
    const stored = o.context.conn.sqlite.prepare('select input from runs where id = ?').get(result.runId) as { input: string }
    expect(JSON.parse(stored.input)).toEqual({ symbol: 'BTC', days: 7, extra: 'kept' })
    // An explicit value wins over the default.
    inputs.length = 0
    await o.executeWorkflow(id, { symbol: 'ETH', days: 2 })
    expect(inputs).toMatchObject([{ input: { symbol: 'ETH', days: 2 } }])
  })

  it('the JSON Schema form rejects invalid input, creates no run, and fills in defaults', async () => {
    const id = await o.createWorkflow('json_schema', jsonSchemaInput)
    const before = counts()
    for (const [input, path] of [
      [{}, 'input.symbol'],
      [{ symbol: '' }, 'input.symbol'],
      [{ symbol: 'BTC', days: 0 }, 'input.days'],
      [{ symbol: 'BTC', days: 'many' }, 'input.days'],
    ] as const) {
      const error = await rejection(o.executeWorkflow(id, input))
      expect(error.issues.map((i) => i.path), JSON.stringify(input)).toEqual([path])
    }
    const notAnObject = await rejection(o.executeWorkflow(id, 'BTC'))
    expect(notAnObject.issues.length).toBeGreaterThan(0)
    expect(counts()).toEqual(before)

    const result = await o.executeWorkflow(id, { symbol: 'SOL' })
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.create_media!.output).toEqual({ symbol: 'SOL', days: 30 })
    expect(inputs).toMatchObject([{ runInput: { symbol: 'SOL', days: 30 } }])
    expect(counts().runs).toBe(before.runs + 1)
  })

  it('a workflow without an input declaration accepts any input and defaults to {}', async () => {
    const id = await o.createWorkflow('free', { steps: [{ factory: 'media', action: 'create_media', params: { v: '{{ input }}' } }] })
    const none = await o.executeWorkflow(id)
    expect(none.steps.create_media!.output).toEqual({ v: {} })
    const some = await o.executeWorkflow(id, { anything: [1, 2] })
    expect(some.steps.create_media!.output).toEqual({ v: { anything: [1, 2] } })
  })
})
