// What validating one definition may cost (a read token can ask for it): the work grows linearly
// with the steps and issues, proved by counting operations for n and 2n (never by timing); at most
// 100 issues are listed, did-you-mean is looked for on the first 20 only, and a definition holds at
// most 100,000 steps. Times are in bench/validate.ts and BENCHMARKS.md.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ProjectOrchestrator, ValidationError } from '../src/index.ts'

// Every did-you-mean comparison, counted: `closest` compares with each candidate, `distance` with one.
const levenshtein = vi.hoisted(() => ({ comparisons: 0 }))
vi.mock('fastest-levenshtein', async (importOriginal) => {
  const real = await importOriginal<typeof import('fastest-levenshtein')>()
  return {
    ...real,
    distance: (a: string, b: string) => {
      levenshtein.comparisons++
      return real.distance(a, b)
    },
    closest: (a: string, list: readonly string[]) => {
      levenshtein.comparisons += list.length
      return real.closest(a, list)
    },
  }
})

let o: ProjectOrchestrator

beforeEach(() => {
  o = new ProjectOrchestrator()
  o.registerFactory('bench', { async work() { return 'done' } })
})

afterEach(async () => {
  await o.close()
})

/** Calls of `Set.prototype.has` while `fn` runs: the generated-id loop asks the set of used ids. */
function setLookups(fn: () => void): number {
  const has = Set.prototype.has
  let calls = 0
  Set.prototype.has = function (this: Set<unknown>, value: unknown) {
    calls++
    return has.call(this, value)
  }
  try {
    fn()
  } finally {
    Set.prototype.has = has
  }
  return calls
}

const unnamed = (n: number) => ({ steps: Array.from({ length: n }, () => ({ factory: 'bench', action: 'work' })) })
const unknownDeps = (n: number, dep: (i: number) => string) => ({
  parallel: true,
  steps: Array.from({ length: n }, (_, i) => ({ id: `step_${i}`, factory: 'bench', action: 'work', dependsOn: [dep(i)] })),
})

describe('validation work grows linearly', () => {
  it('unnamed steps of one action get work, work_2, … at a constant cost each (quadratic before)', () => {
    const n = 2_000
    let result = o.workflows.validate(unnamed(n))
    const once = setLookups(() => (result = o.workflows.validate(unnamed(n))))
    expect(result.valid).toBe(true)
    const twice = setLookups(() => o.workflows.validate(unnamed(2 * n)))
    // Linear: twice the steps, about twice the lookups (it was ~4× when each id tried every suffix from _2).
    expect(twice / once).toBeLessThan(2.5)
  })

  it('the generated ids are unchanged: action name, then _2, _3, skipping ids given explicitly', async () => {
    const id = await o.createWorkflow('ids', {
      steps: [{ factory: 'bench', action: 'work' }, { id: 'work_2', factory: 'bench', action: 'work' }, { factory: 'bench', action: 'work' }, { factory: 'bench', action: 'work' }],
    })
    expect([...o.workflows.load(id).graph.nodes.keys()]).toEqual(['work', 'work_2', 'work_3', 'work_4'])
  })

  it('unknown dependsOn: did-you-mean comparisons do not grow with the number of issues', () => {
    // 2,000 steps; the first 1,000 or all 2,000 depend on an unknown id.
    const comparisons = (unknown: number) => {
      levenshtein.comparisons = 0
      o.workflows.validate(unknownDeps(2_000, (i) => (i < unknown ? `missing_${i}` : `step_${i - 1}`)))
      return levenshtein.comparisons
    }
    const once = comparisons(1_000)
    // Capped: the first 20 issues get a suggestion, each among at most 10,000 names (every issue
    // looked through every step before: twice the issues, twice the comparisons, n² in all).
    expect(once).toBeGreaterThan(0)
    expect(comparisons(2_000)).toBe(once)
    expect(once).toBeLessThanOrEqual(20 * 10_000)
  })

  it('at most 100 issues are listed, then one says how many more; the first 20 get a did-you-mean', () => {
    const result = o.workflows.validate(unknownDeps(4_000, (i) => `step_${i}x`))
    expect(result.valid).toBe(false)
    expect(result.issues).toHaveLength(101)
    expect(result.issues[0]).toEqual({ path: 'steps[0].dependsOn[0]', message: 'unknown step "step_0x" (did you mean "step_0"?)' })
    expect(result.issues.filter((i) => i.message.includes('did you mean'))).toHaveLength(20)
    expect(result.issues[99]).toEqual({ path: 'steps[99].dependsOn[0]', message: 'unknown step "step_99x"' })
    expect(result.issues[100]).toEqual({ path: '(root)', message: '3,900 more issues not listed (only the first 100 are)' })
  })

  it('a step depending on many steps does not compare each dependency with the others', () => {
    const n = 2_000
    const fan = (k: number) => ({
      parallel: true,
      steps: [...Array.from({ length: k }, (_, i) => ({ id: `s${i}`, factory: 'bench', action: 'work' })),
        { id: 'join', factory: 'bench', action: 'work', dependsOn: Array.from({ length: k }, (_, i) => `s${i}`) }],
    })
    const arrayIncludes = Array.prototype.includes
    let scanned = 0
    const count = (k: number) => {
      scanned = 0
      Array.prototype.includes = function (this: unknown[], ...args: [unknown, number?]) {
        scanned += this.length
        return arrayIncludes.apply(this, args)
      }
      try {
        expect(o.workflows.validate(fan(k)).valid).toBe(true)
      } finally {
        Array.prototype.includes = arrayIncludes
      }
      return scanned
    }
    // node.deps.includes() once per dependency was n²/2 elements scanned.
    expect(count(2 * n)).toBeLessThan(2.5 * Math.max(1, count(n)))
  })
})

describe('bounds on one definition', () => {
  it('more than 100,000 steps (nested ones count) is one clear issue, found before parsing, and nothing is stored', async () => {
    const flat = { steps: Array.from({ length: 100_001 }, () => ({})) }
    const nested = { steps: [{ steps: Array.from({ length: 60_000 }, () => ({})) }, { workflow: { steps: Array.from({ length: 40_000 }, () => ({})) } }] }
    const issue = {
      path: 'steps',
      message: 'a definition holds at most 100,000 steps (members of groups and inline sub-workflows count too); this one holds more',
    }
    expect(o.workflows.validate(flat)).toEqual({ valid: false, issues: [issue] })
    expect(o.workflows.validate(nested)).toEqual({ valid: false, issues: [issue] })
    const error = await o.createWorkflow('huge', flat).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toEqual([issue])
    expect((o.context.conn.sqlite.prepare('select count(*) as n from workflows').get() as { n: number }).n).toBe(0)
  })

  it("a megabyte of '{{' is reported as never closed (the regex scan was quadratic: minutes)", () => {
    const text = '{{'.repeat(500_000)
    const result = o.workflows.validate({ steps: [{ factory: 'bench', action: 'work', params: { text } }] })
    expect(result.issues).toHaveLength(1)
    expect(result.issues[0]!.path).toBe('steps[0].params.text')
    expect(result.issues[0]!.message).toMatch(/'\{\{' is never closed with '\}\}'$/)
  })

  it('150,000 bad expressions in one step are 100 issues and a count, not a stack overflow', () => {
    const result = o.workflows.validate({ steps: [{ factory: 'bench', action: 'work', params: { list: Array(150_000).fill('{{') } }] })
    expect(result.issues).toHaveLength(101)
    expect(result.issues[0]!.path).toBe('steps[0].params.list[0]')
    expect(result.issues[100]).toEqual({ path: '(root)', message: '149,900 more issues not listed (only the first 100 are)' })
  })

  it('an expression repeated in one string is compiled once and still interpolates', async () => {
    const id = await o.createWorkflow('repeat', {
      steps: [{ id: 'a', factory: 'bench', action: 'work' }, { id: 'b', factory: 'bench', action: 'work', params: { s: '{{ steps.a.output }}-{{ steps.a.output }}' } }],
      output: '{{ steps.b.output }}',
    })
    o.registerFactory('bench', { async work(params: { s?: string }) { return params?.s ?? 'done' } })
    const run = await o.executeWorkflow(id)
    expect(run.status).toBe('SUCCEEDED')
    expect(run.output).toBe('done-done')
  })
})
