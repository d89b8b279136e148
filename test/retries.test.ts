// Retries, timeouts, cancellation and idempotent starts (DESIGN.md §3): retry policy precedence and
// backoff, non-retryable errors, every attempt recorded in step_attempts, step and run timeouts firing
// the action's AbortSignal, cancel settling everything, and idempotency keys deduplicating starts.
// Ordering and counting only: no assertion depends on how long anything took.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { z } from 'zod'
import {
  ConflictError, NonRetryableError, NotFoundError, ProjectOrchestrator, TimeoutError, CancelledError, ValidationError, defineFactory, type ActionContext, type RunEvent, type WorkflowDefinition,
} from '../src/index.ts'
import { backoffDelay, resolveRetry, DEFAULT_RETRY, type ResolvedRetry } from '../src/engine/retry.ts'
import { openedPerTest } from './support/opened.ts'
import { until } from './support/barrier.ts'

const opened = openedPerTest()

const orchestrator = opened.orchestrator

function deferred<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const tick = () => new Promise((r) => setTimeout(r, 5))

/** Lets queued commits land: a few turns of the event loop. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
}

interface AttemptRow {
  run_id: string
  step_id: string
  attempt: number
  status: string
  error: string | null
  finished_at: number | null
}

function attempts(o: ProjectOrchestrator, runId: string, stepId?: string): AttemptRow[] {
  const rows = o.context.conn.sqlite.prepare('select * from step_attempts where run_id = ? order by step_id, attempt').all(runId) as AttemptRow[]
  return stepId ? rows.filter((r) => r.step_id === stepId) : rows
}

function ofType(history: RunEvent[], type: RunEvent['type'], stepId?: string): RunEvent[] {
  return history.filter((e) => e.type === type && (stepId === undefined || e.stepId === stepId))
}

function payload(e: RunEvent): Record<string, unknown> {
  return e.payload as Record<string, unknown>
}

/** Waits on the signal until it aborts; rejects with its reason. Records the signal. */
function waitForAbort(ctx: ActionContext, seen: AbortSignal[]): Promise<never> {
  seen.push(ctx.signal)
  return new Promise((_, reject) => {
    if (ctx.signal.aborted) reject(ctx.signal.reason)
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })
  })
}

/**
 * `flaky.fail`: fails the first `failures` calls of each step (per run) with `error <n>`, then succeeds.
 * Records ctx.attempt and ctx.idempotencyKey of every call.
 */
function flakyFactory(actionDefaults: { retry?: WorkflowDefinition['retry']; timeoutMs?: number } = {}) {
  const calls: { runId: string; stepId: string; attempt: number; key: string }[] = []
  const factory = defineFactory({
    name: 'flaky',
    actions: {
      fail: {
        input: z.object({ failures: z.number().default(0), kind: z.enum(['error', 'nonretryable', 'flagged', 'plain']).default('error') }),
        ...actionDefaults,
        run: async ({ failures, kind }, ctx) => {
          calls.push({ runId: ctx.runId, stepId: ctx.stepId, attempt: ctx.attempt, key: ctx.idempotencyKey })
          const n = calls.filter((c) => c.runId === ctx.runId && c.stepId === ctx.stepId).length
          if (n <= failures) {
            if (kind === 'nonretryable') throw new NonRetryableError(`fatal ${n}`)
            if (kind === 'flagged') throw Object.assign(new Error(`flagged ${n}`), { retryable: false })
            if (kind === 'plain') throw { message: `plain ${n}`, retryable: false }
            throw new Error(`error ${n}`)
          }
          return { ok: true, attempt: ctx.attempt }
        },
      },
    },
  })
  return { factory, calls }
}

// ------------------------------------------------------------------------------------------ retries

describe('retries through the engine', () => {
  it('fails twice then succeeds: SUCCEEDED after 3 attempts, two STEP_RETRY_SCHEDULED, every attempt recorded', async () => {
    const o = orchestrator()
    const { factory, calls } = flakyFactory()
    o.registerFactory('flaky', factory)
    const wf = await o.createWorkflow('retry3', {
      steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 2 }, retry: { maxAttempts: 3, backoff: 'fixed', initialMs: 5 } }],
    })
    const r = await o.executeWorkflow(wf)

    expect(r.status).toBe('SUCCEEDED')
    expect(r.steps.x).toMatchObject({ status: 'SUCCEEDED', attempts: 3, output: { ok: true, attempt: 3 } })
    expect(r.steps.x!.error).toBeUndefined()
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3])
    // Same idempotency key on every attempt of the step.
    expect(new Set(calls.map((c) => c.key)).size).toBe(1)
    expect(calls[0]!.key).toBe(`${r.runId}:x`)

    const history = await o.getHistory(r.runId)
    const retries = ofType(history, 'STEP_RETRY_SCHEDULED', 'x')
    expect(retries).toHaveLength(2)
    expect(retries.map((e) => payload(e).delayMs)).toEqual([5, 5])
    expect(retries.map((e) => payload(e).nextAttempt)).toEqual([2, 3])
    expect(retries.map((e) => payload(e).error)).toEqual(['error 1', 'error 2'])
    expect(retries.map((e) => e.attempt)).toEqual([1, 2])
    expect(retries.every((e) => e.status === 'RETRY_SCHEDULED')).toBe(true)
    expect(ofType(history, 'STEP_STARTED', 'x').map((e) => e.attempt)).toEqual([1, 2, 3])
    // Event order per step: started, retry, started, retry, started, succeeded.
    expect(history.filter((e) => e.stepId === 'x' && e.type !== 'STEP_READY').map((e) => e.type)).toEqual([
      'STEP_STARTED', 'STEP_RETRY_SCHEDULED', 'STEP_STARTED', 'STEP_RETRY_SCHEDULED', 'STEP_STARTED', 'STEP_SUCCEEDED',
    ])

    const rows = o.context.conn.sqlite.prepare('select * from step_attempts where run_id = ? order by attempt').all(r.runId) as AttemptRow[]
    expect(rows.map((row) => [row.attempt, row.status, row.error])).toEqual([
      [1, 'FAILED', 'error 1'],
      [2, 'FAILED', 'error 2'],
      [3, 'SUCCEEDED', null],
    ])
    expect(rows.every((row) => row.finished_at !== null)).toBe(true)
  })

  it('exhausted attempts: FAILED with the last error, every attempt recorded, run FAILED', async () => {
    const o = orchestrator()
    const { factory, calls } = flakyFactory()
    o.registerFactory('flaky', factory)
    const wf = await o.createWorkflow('exhaust', {
      steps: [
        { id: 'x', factory: 'flaky', action: 'fail', params: { failures: 99 }, retry: { maxAttempts: 3, backoff: 'fixed', initialMs: 1 } },
        { id: 'after', factory: 'flaky', action: 'fail' },
      ],
    })
    const r = await o.executeWorkflow(wf)

    expect(r.status).toBe('FAILED')
    expect(r.error).toContain('error 3')
    expect(r.steps.x).toMatchObject({ status: 'FAILED', attempts: 3, error: 'error 3' })
    expect(r.steps.after!.status).toBe('CANCELLED')
    expect(calls.filter((c) => c.stepId === 'after')).toHaveLength(0)
    expect(attempts(o, r.runId, 'x').map((row) => [row.status, row.error])).toEqual([
      ['FAILED', 'error 1'], ['FAILED', 'error 2'], ['FAILED', 'error 3'],
    ])
    const history = await o.getHistory(r.runId)
    expect(ofType(history, 'STEP_RETRY_SCHEDULED', 'x')).toHaveLength(2)
    const failed = ofType(history, 'STEP_FAILED', 'x')
    expect(failed).toHaveLength(1)
    expect(failed[0]!.attempt).toBe(3)
    expect(payload(failed[0]!)).toMatchObject({ error: 'error 3', retryable: true })
    expect(ofType(history, 'RUN_FAILED')).toHaveLength(1)
  })

  it('without a retry policy a step gets exactly one attempt', async () => {
    const o = orchestrator()
    const { factory, calls } = flakyFactory()
    o.registerFactory('flaky', factory)
    const wf = await o.createWorkflow('once', { steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 1 } }] })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x).toMatchObject({ status: 'FAILED', attempts: 1, error: 'error 1' })
    expect(calls).toHaveLength(1)
    expect(ofType(await o.getHistory(r.runId), 'STEP_RETRY_SCHEDULED')).toHaveLength(0)
  })

  it('exponential backoff: the delays recorded in STEP_RETRY_SCHEDULED are 5, 10, 20', async () => {
    const o = orchestrator()
    const { factory } = flakyFactory()
    o.registerFactory('flaky', factory)
    const wf = await o.createWorkflow('expo', {
      steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 3 }, retry: { maxAttempts: 4, backoff: 'exponential', initialMs: 5, jitter: 0 } }],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x).toMatchObject({ status: 'SUCCEEDED', attempts: 4 })
    const retries = ofType(await o.getHistory(r.runId), 'STEP_RETRY_SCHEDULED', 'x')
    expect(retries.map((e) => payload(e).delayMs)).toEqual([5, 10, 20])
    expect(retries.map((e) => payload(e).nextAttempt)).toEqual([2, 3, 4])
    // wakeAt is the commit time plus the delay, so it never precedes the event's own timestamp.
    for (const e of retries) expect(payload(e).wakeAt as number).toBeGreaterThanOrEqual(e.at)
  })

  it('linear backoff and maxMs are applied by the engine too', async () => {
    const o = orchestrator()
    const { factory } = flakyFactory()
    o.registerFactory('flaky', factory)
    const wf = await o.createWorkflow('linear', {
      steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 4 }, retry: { maxAttempts: 5, backoff: 'linear', initialMs: 3, maxMs: 7 } }],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x).toMatchObject({ status: 'SUCCEEDED', attempts: 5 })
    const retries = ofType(await o.getHistory(r.runId), 'STEP_RETRY_SCHEDULED', 'x')
    expect(retries.map((e) => payload(e).delayMs)).toEqual([3, 6, 7, 7])
  })

  it('a step waiting for its retry is RETRY_SCHEDULED in the database', async () => {
    const o = orchestrator()
    const { factory } = flakyFactory()
    o.registerFactory('flaky', factory)
    const wf = await o.createWorkflow('waiting_retry', {
      steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 1 }, retry: { maxAttempts: 2, backoff: 'fixed', initialMs: 100 } }],
    })
    const { runId } = await o.startWorkflow(wf)
    let seen: string | undefined
    for (let i = 0; i < 200 && seen !== 'RETRY_SCHEDULED'; i++) {
      await new Promise((r) => setTimeout(r, 1))
      seen = (await o.getRun(runId)).steps.x!.status
    }
    expect(seen).toBe('RETRY_SCHEDULED')
    const row = o.context.conn.sqlite.prepare("select wake_at, error from steps where run_id = ? and step_id = 'x'").get(runId) as { wake_at: number; error: string }
    expect(row.wake_at).toBeGreaterThan(0)
    expect((await o.waitForRun(runId)).steps.x).toMatchObject({ status: 'SUCCEEDED', attempts: 2 })
  })

  describe('non-retryable errors fail at once despite maxAttempts 5', () => {
    it.each([
      ['NonRetryableError', 'nonretryable', 'fatal 1'],
      ['an Error with retryable: false', 'flagged', 'flagged 1'],
      ['a plain object with retryable: false', 'plain', 'plain 1'],
    ] as const)('%s', async (_, kind, message) => {
      const o = orchestrator()
      const { factory, calls } = flakyFactory()
      o.registerFactory('flaky', factory)
      const wf = await o.createWorkflow('fatal', {
        steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 5, kind }, retry: { maxAttempts: 5, backoff: 'fixed', initialMs: 1 } }],
      })
      const r = await o.executeWorkflow(wf)
      expect(r.status).toBe('FAILED')
      expect(r.steps.x!.status).toBe('FAILED')
      expect(r.steps.x!.attempts).toBe(1)
      expect(r.steps.x!.error).toContain(message)
      expect(calls).toHaveLength(1)
      const history = await o.getHistory(r.runId)
      expect(ofType(history, 'STEP_RETRY_SCHEDULED')).toHaveLength(0)
      expect(payload(ofType(history, 'STEP_FAILED', 'x')[0]!).retryable).toBe(false)
      expect(attempts(o, r.runId, 'x').map((row) => row.status)).toEqual(['FAILED'])
    })

    it('params that fail the action schema are not retried either', async () => {
      const o = orchestrator()
      const { factory, calls } = flakyFactory()
      o.registerFactory('flaky', factory)
      const wf = await o.createWorkflow('bad_params', {
        input: { n: { type: 'string', default: 'not a number' } },
        steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: '{{ input.n }}' }, retry: { maxAttempts: 5, initialMs: 1 } }],
      })
      const r = await o.executeWorkflow(wf)
      expect(r.steps.x).toMatchObject({ status: 'FAILED', attempts: 1 })
      expect(r.steps.x!.error).toMatch(/invalid params/)
      expect(calls).toHaveLength(0)
    })
  })

  describe('policy precedence: step over action default over workflow retry', () => {
    it('the action default applies when the step sets none', async () => {
      const o = orchestrator()
      const { factory, calls } = flakyFactory({ retry: { maxAttempts: 3, backoff: 'fixed', initialMs: 2 } })
      o.registerFactory('flaky', factory)
      const wf = await o.createWorkflow('action_default', {
        retry: { maxAttempts: 1 },
        steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 2 } }],
      })
      const r = await o.executeWorkflow(wf)
      expect(r.steps.x).toMatchObject({ status: 'SUCCEEDED', attempts: 3 })
      expect(calls).toHaveLength(3)
      expect(ofType(await o.getHistory(r.runId), 'STEP_RETRY_SCHEDULED').map((e) => payload(e).delayMs)).toEqual([2, 2])
    })

    it('the step policy overrides the action default', async () => {
      const o = orchestrator()
      const { factory, calls } = flakyFactory({ retry: { maxAttempts: 5, backoff: 'fixed', initialMs: 1 } })
      o.registerFactory('flaky', factory)
      const wf = await o.createWorkflow('step_wins', {
        steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 3 }, retry: { maxAttempts: 2 } }],
      })
      const r = await o.executeWorkflow(wf)
      expect(r.steps.x).toMatchObject({ status: 'FAILED', attempts: 2, error: 'error 2' })
      expect(calls).toHaveLength(2)
    })

    it('the workflow retry applies when neither step nor action sets one; fields merge field by field', async () => {
      const o = orchestrator()
      const { factory, calls } = flakyFactory()
      o.registerFactory('flaky', factory)
      const wf = await o.createWorkflow('workflow_default', {
        retry: { maxAttempts: 3, backoff: 'fixed', initialMs: 4 },
        steps: [
          { id: 'x', factory: 'flaky', action: 'fail', params: { failures: 2 } },
          // Only initialMs on the step: maxAttempts and backoff still come from the workflow.
          { id: 'y', factory: 'flaky', action: 'fail', params: { failures: 2 }, retry: { initialMs: 1 } },
        ],
      })
      const r = await o.executeWorkflow(wf)
      expect(r.status).toBe('SUCCEEDED')
      expect(r.steps.x!.attempts).toBe(3)
      expect(r.steps.y!.attempts).toBe(3)
      expect(calls).toHaveLength(6)
      const history = await o.getHistory(r.runId)
      expect(ofType(history, 'STEP_RETRY_SCHEDULED', 'x').map((e) => payload(e).delayMs)).toEqual([4, 4])
      expect(ofType(history, 'STEP_RETRY_SCHEDULED', 'y').map((e) => payload(e).delayMs)).toEqual([1, 1])
    })
  })
})

// ------------------------------------------------------------------------------ backoff (pure)

describe('backoffDelay and resolveRetry', () => {
  const policy = (p: Partial<ResolvedRetry>): ResolvedRetry => ({ ...DEFAULT_RETRY, ...p })

  it('fixed: the same delay after every attempt', () => {
    const p = policy({ backoff: 'fixed', initialMs: 100 })
    expect([1, 2, 3, 10].map((a) => backoffDelay(p, a))).toEqual([100, 100, 100, 100])
  })

  it('linear: initialMs times the number of failed attempts', () => {
    const p = policy({ backoff: 'linear', initialMs: 100 })
    expect([1, 2, 3, 4].map((a) => backoffDelay(p, a))).toEqual([100, 200, 300, 400])
  })

  it('exponential: initialMs doubling per attempt', () => {
    const p = policy({ backoff: 'exponential', initialMs: 5 })
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(p, a))).toEqual([5, 10, 20, 40, 80])
  })

  it('maxMs caps every kind', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(policy({ backoff: 'exponential', initialMs: 100, maxMs: 350 }), a))).toEqual([100, 200, 350, 350, 350])
    expect([1, 2, 3, 4].map((a) => backoffDelay(policy({ backoff: 'linear', initialMs: 100, maxMs: 250 }), a))).toEqual([100, 200, 250, 250])
    expect(backoffDelay(policy({ backoff: 'fixed', initialMs: 100, maxMs: 30 }), 1)).toBe(30)
    // A huge attempt number neither overflows past the cap nor turns into NaN.
    expect(backoffDelay(policy({ backoff: 'exponential', initialMs: 1000, maxMs: 60_000 }), 5000)).toBe(60_000)
  })

  it('jitter takes up to its fraction off, never adds: random 0 keeps the delay, random 1 removes the fraction', () => {
    const p = policy({ backoff: 'exponential', initialMs: 100, maxMs: 1000, jitter: 0.5 })
    expect(backoffDelay(p, 1, () => 0)).toBe(100)
    expect(backoffDelay(p, 1, () => 1)).toBe(50)
    expect(backoffDelay(p, 3, () => 0)).toBe(400)
    expect(backoffDelay(p, 3, () => 1)).toBe(200)
    // Capped delay with full jitter: at most the cap, down to 0.
    const full = policy({ backoff: 'exponential', initialMs: 100, maxMs: 300, jitter: 1 })
    expect(backoffDelay(full, 10, () => 0)).toBe(300)
    expect(backoffDelay(full, 10, () => 1)).toBe(0)
    // No jitter: the random source is not consulted.
    let consulted = false
    backoffDelay(policy({ jitter: 0 }), 1, () => {
      consulted = true
      return 1
    })
    expect(consulted).toBe(false)
  })

  it('jitter bounds hold for any random value and any policy (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('fixed', 'linear', 'exponential' as const),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        (backoff, initialMs, maxMs, jitter, attempt, r) => {
          const p = policy({ backoff: backoff as ResolvedRetry['backoff'], initialMs, maxMs, jitter })
          const base = backoffDelay({ ...p, jitter: 0 }, attempt)
          const d = backoffDelay(p, attempt, () => r)
          expect(Number.isInteger(d)).toBe(true)
          expect(d).toBeLessThanOrEqual(Math.min(base, maxMs))
          expect(d).toBeGreaterThanOrEqual(Math.floor(base * (1 - jitter)))
        },
      ),
    )
  })

  it('resolveRetry: defaults when nothing is set (one attempt)', () => {
    expect(resolveRetry(undefined, undefined, undefined)).toEqual(DEFAULT_RETRY)
    expect(DEFAULT_RETRY.maxAttempts).toBe(1)
  })

  it('resolveRetry: step over action over workflow, field by field', () => {
    const step = { maxAttempts: 4 }
    const action = { maxAttempts: 9, backoff: 'linear' as const, initialMs: 50 }
    const workflow = { maxAttempts: 2, backoff: 'fixed' as const, initialMs: 7, maxMs: 500, jitter: 0.25 }
    expect(resolveRetry(step, action, workflow)).toEqual({ maxAttempts: 4, backoff: 'linear', initialMs: 50, maxMs: 500, jitter: 0.25 })
    expect(resolveRetry(undefined, action, workflow)).toEqual({ maxAttempts: 9, backoff: 'linear', initialMs: 50, maxMs: 500, jitter: 0.25 })
    expect(resolveRetry(undefined, undefined, workflow)).toEqual({ maxAttempts: 2, backoff: 'fixed', initialMs: 7, maxMs: 500, jitter: 0.25 })
    expect(resolveRetry({ jitter: false }, undefined, workflow).jitter).toBe(0)
    expect(resolveRetry({ jitter: true }).jitter).toBe(1)
  })
})

// ------------------------------------------------------------------------------ step timeouts

function hangingFactory(options: { timeoutMs?: number; succeedFromAttempt?: number } = {}) {
  const signals: AbortSignal[] = []
  const factory = defineFactory({
    name: 'hang',
    actions: {
      wait: {
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        run: async (_: unknown, ctx: ActionContext) => {
          if (options.succeedFromAttempt && ctx.attempt >= options.succeedFromAttempt) {
            signals.push(ctx.signal)
            return { attempt: ctx.attempt }
          }
          return waitForAbort(ctx, signals)
        },
      },
      nap: {
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        input: z.object({ ms: z.number() }),
        run: async ({ ms }, ctx) => {
          signals.push(ctx.signal)
          await new Promise((resolve, reject) => {
            const t = setTimeout(resolve, ms)
            ctx.signal.addEventListener('abort', () => {
              clearTimeout(t)
              reject(ctx.signal.reason)
            }, { once: true })
          })
          return { slept: ms }
        },
      },
    },
  })
  return { factory, signals }
}

describe('step timeouts', () => {
  it('timeoutMs 50: the signal fires with a TimeoutError and the step FAILED with a timed-out message', async () => {
    const o = orchestrator()
    const { factory, signals } = hangingFactory()
    o.registerFactory('hang', factory)
    const wf = await o.createWorkflow('step_timeout', {
      steps: [{ id: 'x', factory: 'hang', action: 'wait', timeoutMs: 50 }, { id: 'y', factory: 'hang', action: 'wait' }],
    })
    const r = await o.executeWorkflow(wf)

    expect(signals).toHaveLength(1)
    const signal = signals[0]!
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBeInstanceOf(TimeoutError)
    expect((signal.reason as Error).name).toBe('TimeoutError')
    expect((signal.reason as Error).message).toMatch(/timed out after 50 ms/)

    expect(r.status).toBe('FAILED')
    expect(r.steps.x).toMatchObject({ status: 'FAILED', attempts: 1 })
    expect(r.steps.x!.error).toMatch(/step x timed out after 50 ms/)
    expect(r.steps.y!.status).toBe('CANCELLED')
    expect(attempts(o, r.runId, 'x').map((row) => [row.status, row.error])).toEqual([['FAILED', 'step x timed out after 50 ms']])
  })

  it('the timeout fails the step even when the action ignores its signal, and the late result is ignored', async () => {
    const o = orchestrator()
    const late = deferred<{ late: true }>()
    const delivered = deferred()
    o.registerFactory('deaf', defineFactory({
      name: 'deaf',
      actions: {
        ignore: {
          run: async () => {
            const value = await late.promise
            queueMicrotask(() => delivered.resolve())
            return value
          },
        },
      },
    }))
    const wf = await o.createWorkflow('deaf', { steps: [{ id: 'x', factory: 'deaf', action: 'ignore', timeoutMs: 10 }] })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x!.status).toBe('FAILED')
    expect(r.steps.x!.error).toMatch(/timed out/)

    late.resolve({ late: true })
    await delivered.promise
    await settle()
    const after = await o.getRun(r.runId)
    expect(after.status).toBe('FAILED')
    expect(after.steps.x).toMatchObject({ status: 'FAILED', output: null })
    expect(ofType(await o.getHistory(r.runId), 'STEP_SUCCEEDED')).toHaveLength(0)
    expect(attempts(o, r.runId, 'x').map((row) => row.status)).toEqual(['FAILED'])
  })

  it('a timed-out attempt is retried when the policy allows, and a later attempt succeeds', async () => {
    const o = orchestrator()
    const { factory, signals } = hangingFactory({ succeedFromAttempt: 2 })
    o.registerFactory('hang', factory)
    const wf = await o.createWorkflow('timeout_retry', {
      steps: [{ id: 'x', factory: 'hang', action: 'wait', timeoutMs: 20, retry: { maxAttempts: 3, backoff: 'fixed', initialMs: 1 } }],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('SUCCEEDED')
    expect(r.steps.x).toMatchObject({ status: 'SUCCEEDED', attempts: 2, output: { attempt: 2 } })
    expect(signals[0]!.aborted).toBe(true)
    expect(signals[0]!.reason).toBeInstanceOf(TimeoutError)
    // Each attempt has its own signal; the successful one was never aborted.
    expect(signals[1]!.aborted).toBe(false)
    const retry = ofType(await o.getHistory(r.runId), 'STEP_RETRY_SCHEDULED', 'x')
    expect(retry).toHaveLength(1)
    expect(payload(retry[0]!).error).toMatch(/timed out after 20 ms/)
    expect(attempts(o, r.runId, 'x').map((row) => row.status)).toEqual(['FAILED', 'SUCCEEDED'])
  })

  it("the action's default timeoutMs applies when the step sets none", async () => {
    const o = orchestrator()
    const { factory, signals } = hangingFactory({ timeoutMs: 15 })
    o.registerFactory('hang', factory)
    const wf = await o.createWorkflow('action_timeout', { steps: [{ id: 'x', factory: 'hang', action: 'wait' }] })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x!.status).toBe('FAILED')
    expect(r.steps.x!.error).toMatch(/timed out after 15 ms/)
    expect(signals[0]!.reason).toBeInstanceOf(TimeoutError)
  })

  it("the step's timeoutMs overrides the action default", async () => {
    const o = orchestrator()
    const { factory } = hangingFactory({ timeoutMs: 5 })
    o.registerFactory('hang', factory)
    // With the action's 5 ms this 30 ms nap would time out; the step allows 10 s.
    const wf = await o.createWorkflow('step_overrides', { steps: [{ id: 'x', factory: 'hang', action: 'nap', params: { ms: 30 }, timeoutMs: 10_000 }] })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x).toMatchObject({ status: 'SUCCEEDED', output: { slept: 30 } })
  })

  it('the workflow stepTimeoutMs applies when neither the step nor the action sets one', async () => {
    const o = orchestrator()
    const { factory, signals } = hangingFactory()
    o.registerFactory('hang', factory)
    const wf = await o.createWorkflow('wf_timeout', {
      stepTimeoutMs: 25,
      parallel: true,
      steps: [
        { id: 'x', factory: 'hang', action: 'wait', continueOnError: true },
        // A step's own timeout wins over stepTimeoutMs.
        { id: 'y', factory: 'hang', action: 'wait', timeoutMs: 12, continueOnError: true },
      ],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x!.error).toMatch(/step x timed out after 25 ms/)
    expect(r.steps.y!.error).toMatch(/step y timed out after 12 ms/)
    expect(signals.every((s) => s.aborted && s.reason instanceof TimeoutError)).toBe(true)
  })

  it('an action default timeoutMs wins over the workflow stepTimeoutMs', async () => {
    const o = orchestrator()
    const { factory } = hangingFactory({ timeoutMs: 8 })
    o.registerFactory('hang', factory)
    const wf = await o.createWorkflow('action_over_wf', { stepTimeoutMs: 10_000, steps: [{ id: 'x', factory: 'hang', action: 'wait' }] })
    const r = await o.executeWorkflow(wf)
    expect(r.steps.x!.error).toMatch(/timed out after 8 ms/)
  })
})

// ------------------------------------------------------------------------------ run timeout

describe('run timeout', () => {
  it('timeoutMs 100 with a long step: TIMED_OUT, RUN_TIMED_OUT, the signal aborted, pending steps CANCELLED', async () => {
    const o = orchestrator()
    const { factory, signals } = hangingFactory()
    const started: string[] = []
    o.registerFactory('hang', factory)
    const unsubscribe = o.subscribe({ types: ['STEP_STARTED'] }, (e) => void started.push(e.stepId!))
    const wf = await o.createWorkflow('run_timeout', {
      timeoutMs: 100,
      steps: [
        { id: 'long', factory: 'hang', action: 'wait' },
        { id: 'next', factory: 'hang', action: 'wait' },
        { id: 'last', factory: 'hang', action: 'wait' },
      ],
    })
    const r = await o.executeWorkflow(wf)
    unsubscribe()

    expect(r.status).toBe('TIMED_OUT')
    expect(r.error).toMatch(/run timed out after 100 ms/)
    expect(signals).toHaveLength(1)
    expect(signals[0]!.aborted).toBe(true)
    expect((signals[0]!.reason as Error).name).toBe('TimeoutError')
    expect(r.steps.long!.status).toBe('CANCELLED')
    expect(r.steps.next!.status).toBe('CANCELLED')
    expect(r.steps.last!.status).toBe('CANCELLED')
    expect(r.steps.next!.attempts).toBe(0)

    const history = await o.getHistory(r.runId)
    expect(ofType(history, 'RUN_TIMED_OUT')).toHaveLength(1)
    expect(history[history.length - 1]!.type).toBe('RUN_TIMED_OUT')
    expect(ofType(history, 'STEP_CANCELLED').map((e) => e.stepId).sort()).toEqual(['last', 'long', 'next'])
    expect(ofType(history, 'STEP_STARTED').map((e) => e.stepId)).toEqual(['long'])
    expect(attempts(o, r.runId).map((row) => [row.step_id, row.status])).toEqual([['long', 'CANCELLED']])
    const row = o.context.conn.sqlite.prepare('select status, finished_at from runs where id = ?').get(r.runId) as { status: string; finished_at: number }
    expect(row.status).toBe('TIMED_OUT')
    expect(row.finished_at).toBeGreaterThan(0)
  })

  it('a run that finishes within its timeout SUCCEEDED and its deadline never fires afterwards', async () => {
    const o = orchestrator()
    const { factory } = hangingFactory()
    o.registerFactory('hang', factory)
    const wf = await o.createWorkflow('in_time', { timeoutMs: 40, steps: [{ id: 'x', factory: 'hang', action: 'nap', params: { ms: 1 } }] })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('SUCCEEDED')
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect((await o.getRun(r.runId)).status).toBe('SUCCEEDED')
    expect(ofType(await o.getHistory(r.runId), 'RUN_TIMED_OUT')).toHaveLength(0)
  })

  it('the deadline still fires while the run waits for running steps after a failure', async () => {
    const o = orchestrator()
    const { factory, signals } = hangingFactory()
    o.registerFactory('hang', factory)
    const { factory: flaky } = flakyFactory()
    o.registerFactory('flaky', flaky)
    const wf = await o.createWorkflow('timeout_while_failing', {
      timeoutMs: 60,
      parallel: true,
      steps: [
        { id: 'bad', factory: 'flaky', action: 'fail', params: { failures: 1 } },
        // Runs until aborted: only the run deadline can end it.
        { id: 'hang', factory: 'hang', action: 'wait' },
      ],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('TIMED_OUT')
    expect(r.steps.bad!.status).toBe('FAILED')
    expect(r.steps.hang!.status).toBe('CANCELLED')
    expect(signals[0]!.aborted).toBe(true)
    expect(signals[0]!.reason).toBeInstanceOf(TimeoutError)
    const history = await o.getHistory(r.runId)
    expect(ofType(history, 'RUN_TIMED_OUT')).toHaveLength(1)
    expect(ofType(history, 'RUN_FAILED')).toHaveLength(0)
    expect(attempts(o, r.runId).map((row) => [row.step_id, row.status])).toEqual([['bad', 'FAILED'], ['hang', 'CANCELLED']])
  })

  it('a run timeout cancels a step that is waiting for its retry', async () => {
    const o = orchestrator()
    const { factory, calls } = flakyFactory()
    o.registerFactory('flaky', factory)
    const wf = await o.createWorkflow('timeout_during_retry', {
      timeoutMs: 30,
      steps: [{ id: 'x', factory: 'flaky', action: 'fail', params: { failures: 9 }, retry: { maxAttempts: 5, backoff: 'fixed', initialMs: 10_000 } }],
    })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('TIMED_OUT')
    expect(r.steps.x).toMatchObject({ status: 'CANCELLED', attempts: 1 })
    expect(calls).toHaveLength(1)
    expect(attempts(o, r.runId, 'x').map((row) => row.status)).toEqual(['FAILED'])
  })
})

// ------------------------------------------------------------------------------ cancellation

describe('cancelRun', () => {
  function cancellable() {
    const calls: string[] = []
    const signals: Record<string, AbortSignal> = {}
    const entered: Record<string, ReturnType<typeof deferred<void>>> = {}
    const late = deferred<unknown>()
    const enteredOf = (id: string) => (entered[id] ??= deferred())
    const factory = defineFactory({
      name: 'c',
      actions: {
        block: {
          run: (_: unknown, ctx: ActionContext) => {
            calls.push(ctx.stepId)
            signals[ctx.stepId] = ctx.signal
            enteredOf(ctx.stepId).resolve()
            return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }))
          },
        },
        // Ignores its signal and settles only when the test says so.
        stubborn: {
          run: (_: unknown, ctx: ActionContext) => {
            calls.push(ctx.stepId)
            signals[ctx.stepId] = ctx.signal
            enteredOf(ctx.stepId).resolve()
            return late.promise
          },
        },
        quick: {
          run: (_: unknown, ctx: ActionContext) => {
            calls.push(ctx.stepId)
            return { done: ctx.stepId }
          },
        },
      },
    })
    return { factory, calls, signals, enteredOf, late }
  }

  it('aborts the running action, settles running and pending steps CANCELLED, starts nothing more', async () => {
    const o = orchestrator()
    const c = cancellable()
    o.registerFactory('c', c.factory)
    const wf = await o.createWorkflow('cancel_me', {
      steps: [
        { id: 'a', factory: 'c', action: 'quick' },
        { id: 'b', factory: 'c', action: 'block' },
        { id: 'c', factory: 'c', action: 'quick' },
        { id: 'd', factory: 'c', action: 'quick' },
      ],
    })
    const { runId } = await o.startWorkflow(wf)
    await c.enteredOf('b').promise

    const result = await o.cancelRun(runId)

    expect(result.status).toBe('CANCELLED')
    expect(result.error).toBe('run cancelled')
    expect(c.signals.b!.aborted).toBe(true)
    expect(c.signals.b!.reason).toBeInstanceOf(CancelledError)
    expect(result.steps.a!.status).toBe('SUCCEEDED')
    expect(result.steps.b).toMatchObject({ status: 'CANCELLED', attempts: 1 })
    expect(result.steps.c).toMatchObject({ status: 'CANCELLED', attempts: 0 })
    expect(result.steps.d).toMatchObject({ status: 'CANCELLED', attempts: 0 })

    await tick()
    expect(c.calls).toEqual(['a', 'b'])
    const history = await o.getHistory(runId)
    expect(ofType(history, 'RUN_CANCELLED')).toHaveLength(1)
    expect(history[history.length - 1]!.type).toBe('RUN_CANCELLED')
    expect(ofType(history, 'STEP_CANCELLED').map((e) => e.stepId).sort()).toEqual(['b', 'c', 'd'])
    expect(ofType(history, 'STEP_STARTED').map((e) => e.stepId)).toEqual(['a', 'b'])
    // Every attempt recorded, the interrupted one as CANCELLED.
    expect(attempts(o, runId).map((row) => [row.step_id, row.attempt, row.status])).toEqual([
      ['a', 1, 'SUCCEEDED'],
      ['b', 1, 'CANCELLED'],
    ])
    expect(attempts(o, runId, 'b')[0]!.finished_at).not.toBeNull()
    // The run is no longer in flight; waiting on it returns the same result.
    expect(o.coordinator.isActive(runId)).toBe(false)
    expect((await o.waitForRun(runId)).status).toBe('CANCELLED')
  })

  it("the action's late result changes nothing", async () => {
    const o = orchestrator()
    const c = cancellable()
    o.registerFactory('c', c.factory)
    const wf = await o.createWorkflow('late', {
      steps: [
        { id: 's', factory: 'c', action: 'stubborn' },
        { id: 'after', factory: 'c', action: 'quick' },
      ],
    })
    const { runId } = await o.startWorkflow(wf)
    await c.enteredOf('s').promise
    const cancelled = await o.cancelRun(runId)
    const before = await o.getHistory(runId)

    c.late.resolve({ sneaky: true })
    await tick()
    await settle()

    const after = await o.getRun(runId)
    expect(after).toEqual(cancelled)
    expect(after.status).toBe('CANCELLED')
    expect(after.steps.s).toMatchObject({ status: 'CANCELLED', output: null })
    expect(c.calls).toEqual(['s'])
    expect(await o.getHistory(runId)).toEqual(before)
    expect(attempts(o, runId, 's').map((row) => row.status)).toEqual(['CANCELLED'])
  })

  it('a late failure after cancel changes nothing either', async () => {
    const o = orchestrator()
    const c = cancellable()
    o.registerFactory('c', c.factory)
    const wf = await o.createWorkflow('late_fail', {
      steps: [{ id: 's', factory: 'c', action: 'stubborn', retry: { maxAttempts: 3, initialMs: 1 } }],
    })
    const { runId } = await o.startWorkflow(wf)
    await c.enteredOf('s').promise
    await o.cancelRun(runId)
    const before = await o.getHistory(runId)
    c.late.reject(new Error('late failure'))
    await tick()
    await settle()
    expect(await o.getHistory(runId)).toEqual(before)
    expect((await o.getRun(runId)).steps.s).toMatchObject({ status: 'CANCELLED', attempts: 1 })
    expect(c.calls).toEqual(['s'])
  })

  it('cancels parallel branches together and every attempt is recorded (failed ones too)', async () => {
    const o = orchestrator()
    const c = cancellable()
    const { factory: flaky, calls: flakyCalls } = flakyFactory()
    o.registerFactory('c', c.factory)
    o.registerFactory('flaky', flaky)
    const wf = await o.createWorkflow('parallel_cancel', {
      parallel: true,
      steps: [
        { id: 'p1', factory: 'c', action: 'block' },
        { id: 'p2', factory: 'c', action: 'block' },
        // Fails, then waits for a retry that the cancel must drop.
        { id: 'r', factory: 'flaky', action: 'fail', params: { failures: 9 }, retry: { maxAttempts: 5, backoff: 'fixed', initialMs: 100 } },
        { id: 'tail', factory: 'c', action: 'quick', dependsOn: ['p1', 'p2'] },
      ],
    })
    const { runId } = await o.startWorkflow(wf)
    await Promise.all([c.enteredOf('p1').promise, c.enteredOf('p2').promise])
    await until(async () => (await o.getRun(runId)).steps.r!.status === 'RETRY_SCHEDULED', 'r to wait for its retry')
    expect((await o.getRun(runId)).steps.r!.status).toBe('RETRY_SCHEDULED')

    const result = await o.cancelRun(runId)
    expect(result.status).toBe('CANCELLED')
    expect(Object.fromEntries(Object.entries(result.steps).map(([k, v]) => [k, v.status]))).toEqual({
      p1: 'CANCELLED', p2: 'CANCELLED', r: 'CANCELLED', tail: 'CANCELLED',
    })
    expect(c.signals.p1!.aborted && c.signals.p2!.aborted).toBe(true)
    // The scheduled retry (due 100 ms after the failure) never runs.
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect(flakyCalls).toHaveLength(1)
    expect(c.calls.sort()).toEqual(['p1', 'p2'])
    expect(attempts(o, runId).map((row) => [row.step_id, row.attempt, row.status])).toEqual([
      ['p1', 1, 'CANCELLED'],
      ['p2', 1, 'CANCELLED'],
      ['r', 1, 'FAILED'],
    ])
  })

  it('cancelling a finished run throws ConflictError; an unknown run id throws NotFoundError', async () => {
    const o = orchestrator()
    const c = cancellable()
    o.registerFactory('c', c.factory)
    const wf = await o.createWorkflow('twice', { steps: [{ id: 'b', factory: 'c', action: 'block' }] })
    const { runId } = await o.startWorkflow(wf)
    await c.enteredOf('b').promise
    await o.cancelRun(runId)
    await expect(o.cancelRun(runId)).rejects.toBeInstanceOf(ConflictError)
    await expect(o.cancelRun(runId)).rejects.toThrow(/CANCELLED/)
    await expect(o.cancelRun('run_does_not_exist')).rejects.toBeInstanceOf(NotFoundError)

    // A run that SUCCEEDED cannot be cancelled either; its result is untouched.
    const done = await o.createWorkflow('done', { steps: [{ factory: 'c', action: 'quick' }] })
    const r = await o.executeWorkflow(done)
    await expect(o.cancelRun(r.runId)).rejects.toBeInstanceOf(ConflictError)
    expect((await o.getRun(r.runId)).status).toBe('SUCCEEDED')
    expect(ofType(await o.getHistory(runId), 'RUN_CANCELLED')).toHaveLength(1)
  })

  it('two concurrent cancels of one run: one wins, the run is cancelled once', async () => {
    const o = orchestrator()
    const c = cancellable()
    o.registerFactory('c', c.factory)
    const wf = await o.createWorkflow('racing_cancel', { steps: [{ id: 'b', factory: 'c', action: 'block' }] })
    const { runId } = await o.startWorkflow(wf)
    await c.enteredOf('b').promise
    const outcomes = await Promise.allSettled([o.cancelRun(runId), o.cancelRun(runId)])
    const fulfilled = outcomes.filter((x) => x.status === 'fulfilled')
    const rejected = outcomes.filter((x): x is PromiseRejectedResult => x.status === 'rejected')
    expect(fulfilled).toHaveLength(1)
    expect(rejected).toHaveLength(1)
    expect(rejected[0]!.reason).toBeInstanceOf(ConflictError)
    expect(ofType(await o.getHistory(runId), 'RUN_CANCELLED')).toHaveLength(1)
  })
})

// ------------------------------------------------------------------------------ idempotency

describe('idempotent starts', () => {
  async function setup() {
    const o = orchestrator()
    let runs = 0
    o.registerFactory('q', defineFactory({
      name: 'q',
      actions: { one: { run: () => ++runs } },
    }))
    const wf = await o.createWorkflow('idem', { steps: [{ id: 'x', factory: 'q', action: 'one' }] })
    const count = () => (o.context.conn.sqlite.prepare('select count(*) as n from runs where workflow_id = ?').get(wf) as { n: number }).n
    return { o, wf, count, actionRuns: () => runs }
  }

  it('the same key twice (sequentially) returns the same runId and creates one run', async () => {
    const { o, wf, count, actionRuns } = await setup()
    const first = await o.startWorkflow(wf, {}, { idempotencyKey: 'k' })
    const second = await o.startWorkflow(wf, {}, { idempotencyKey: 'k' })
    expect(second.runId).toBe(first.runId)
    await o.waitForRun(first.runId)
    // Also after the run finished.
    const third = await o.startWorkflow(wf, {}, { idempotencyKey: 'k' })
    expect(third.runId).toBe(first.runId)
    expect(count()).toBe(1)
    expect(actionRuns()).toBe(1)
    expect(ofType(await o.getHistory(first.runId), 'RUN_CREATED')).toHaveLength(1)
  })

  it('the same key concurrently (Promise.all) returns the same runId and creates one run', async () => {
    const { o, wf, count, actionRuns } = await setup()
    const starts = await Promise.all(Array.from({ length: 5 }, () => o.startWorkflow(wf, {}, { idempotencyKey: 'k' })))
    expect(new Set(starts.map((s) => s.runId)).size).toBe(1)
    const result = await o.waitForRun(starts[0]!.runId)
    expect(result.status).toBe('SUCCEEDED')
    expect(count()).toBe(1)
    expect(actionRuns()).toBe(1)
  })

  it('50 concurrent starts with one key: every caller can read the run at once; one created it', async () => {
    const { o, wf, count } = await setup()
    // Each caller reads the run as soon as its start answers: a caller that found the key pending
    // used to get the id before the run was committed, and its read a NotFoundError.
    const starts = await Promise.all(Array.from({ length: 50 }, async () => {
      const started = await o.coordinator.start(wf, {}, { idempotencyKey: 'burst' })
      const run = await o.getRun(started.runId)
      return { ...started, read: run.runId }
    }))
    expect(new Set(starts.map((s) => s.runId)).size).toBe(1)
    expect(starts.every((s) => s.read === s.runId)).toBe(true)
    expect(starts.filter((s) => s.created)).toHaveLength(1)
    expect(count()).toBe(1)
    const viaApi = await Promise.all(Array.from({ length: 10 }, async () => o.getRun((await o.startWorkflow(wf, {}, { idempotencyKey: 'api' })).runId)))
    expect(new Set(viaApi.map((r) => r.runId)).size).toBe(1)
  })

  it('executeWorkflow with a key settles with the first run both times', async () => {
    const { o, wf, count } = await setup()
    const [a, b] = await Promise.all([
      o.executeWorkflow(wf, {}, { idempotencyKey: 'exec' }),
      o.executeWorkflow(wf, {}, { idempotencyKey: 'exec' }),
    ])
    expect(a.runId).toBe(b.runId)
    expect(a).toEqual(b)
    expect(count()).toBe(1)
  })

  it('different keys, or no key, start different runs; the key is per workflow', async () => {
    const { o, wf, count } = await setup()
    const k1 = await o.startWorkflow(wf, {}, { idempotencyKey: 'k1' })
    const k2 = await o.startWorkflow(wf, {}, { idempotencyKey: 'k2' })
    const none1 = await o.startWorkflow(wf)
    const none2 = await o.startWorkflow(wf)
    expect(new Set([k1.runId, k2.runId, none1.runId, none2.runId]).size).toBe(4)
    expect(count()).toBe(4)
    const other = await o.createWorkflow('idem_other', { steps: [{ factory: 'q', action: 'one' }] })
    const elsewhere = await o.startWorkflow(other, {}, { idempotencyKey: 'k1' })
    expect(elsewhere.runId).not.toBe(k1.runId)
    await Promise.all([k1, k2, none1, none2, elsewhere].map((s) => o.waitForRun(s.runId)))
  })

  it('the same key with another input or params is a ConflictError and starts nothing; the same input in another key order is the same request', async () => {
    const { o, wf, count, actionRuns } = await setup()
    const first = await o.startWorkflow(wf, { region: 'eu', sizes: [1, 2], nested: { a: 1, b: 2 } }, { idempotencyKey: 'order-42' })
    const reordered = await o.startWorkflow(wf, { nested: { b: 2, a: 1 }, sizes: [1, 2], region: 'eu' }, { idempotencyKey: 'order-42' })
    expect(reordered.runId).toBe(first.runId)
    for (const [input, params] of [
      [{ region: 'us', sizes: [1, 2], nested: { a: 1, b: 2 } }, undefined],
      [{ region: 'eu', sizes: [2, 1], nested: { a: 1, b: 2 } }, undefined],
      [undefined, undefined],
      [{ region: 'eu', sizes: [1, 2], nested: { a: 1, b: 2 } }, { x: { n: 1 } }],
    ] as const) {
      const error = await o.startWorkflow(wf, input, { idempotencyKey: 'order-42', params }).catch((e) => e)
      expect(error, JSON.stringify(input)).toBeInstanceOf(ConflictError)
      expect((error as Error).message).toBe(`idempotencyKey "order-42" was already used for run ${first.runId} with a different input or params`)
    }
    // Also while the first start is not committed yet.
    const [a, b] = await Promise.allSettled([o.startWorkflow(wf, { n: 1 }, { idempotencyKey: 'race' }), o.startWorkflow(wf, { n: 2 }, { idempotencyKey: 'race' })])
    expect(a.status).toBe('fulfilled')
    expect(b.status === 'rejected' && b.reason).toBeInstanceOf(ConflictError)
    await o.waitForRun(first.runId)
    await o.waitForRun((a as PromiseFulfilledResult<{ runId: string }>).value.runId)
    expect(count()).toBe(2)
    expect(actionRuns()).toBe(2)
  })

  it('an invalid key is rejected with a ValidationError and creates nothing', async () => {
    const { o, wf, count } = await setup()
    await expect(o.startWorkflow(wf, {}, { idempotencyKey: '' })).rejects.toBeInstanceOf(ValidationError)
    await expect(o.startWorkflow(wf, {}, { idempotencyKey: 'x'.repeat(201) })).rejects.toBeInstanceOf(ValidationError)
    expect(count()).toBe(0)
  })
})
