// ctx.signal is made when the action first reads it (src/engine/attempt-context.ts): an action sees
// the same context as when it was a plain object, and an abort that came before the first read
// is on the signal it then gets.
import { afterEach, describe, expect, it } from 'vitest'
import { CancelledError, ProjectOrchestrator, TimeoutError, defineFactory, type ActionContext } from '../src/index.ts'
import { AttemptAbort, AttemptContext } from '../src/engine/attempt-context.ts'

const open: ProjectOrchestrator[] = []
afterEach(async () => {
  for (const o of open.splice(0)) await o.close()
})

function orchestrator(): ProjectOrchestrator {
  const o = new ProjectOrchestrator()
  open.push(o)
  return o
}

const KEYS = ['runId', 'workflowId', 'stepId', 'attempt', 'signal', 'idempotencyKey', 'steps', 'previous', 'input', 'params', 'progress', 'artifact', 'log']

describe('the attempt context', () => {
  it('has the same own keys, in the same order, also in a spread copy, and its signal is an AbortSignal', async () => {
    const o = orchestrator()
    const seen: { keys: string[]; copyKeys: string[]; same: boolean; isSignal: boolean; aborted: boolean }[] = []
    o.registerFactory('probe', defineFactory({
      name: 'probe',
      actions: {
        look: {
          run: (_: unknown, ctx: ActionContext) => {
            const copy = { ...ctx }
            seen.push({
              keys: Object.keys(ctx), copyKeys: Object.keys(copy), same: copy.signal === ctx.signal,
              isSignal: ctx.signal instanceof AbortSignal, aborted: ctx.signal.aborted,
            })
            return {}
          },
        },
      },
    }))
    const wf = await o.createWorkflow('look', { steps: [{ id: 'a', factory: 'probe', action: 'look' }] })
    expect((await o.executeWorkflow(wf)).status).toBe('SUCCEEDED')
    expect(seen).toEqual([{ keys: KEYS, copyKeys: KEYS, same: true, isSignal: true, aborted: false }])
  })

  it('a signal first read after the step timed out is aborted, with the TimeoutError', async () => {
    const o = orchestrator()
    let late: AbortSignal | undefined
    let done!: () => void
    const read = new Promise<void>((resolve) => (done = resolve))
    o.registerFactory('slow', defineFactory({
      name: 'slow',
      actions: {
        // Never touches ctx.signal until well after its timeout.
        nap: {
          timeoutMs: 20,
          run: async (_: unknown, ctx: ActionContext) => {
            await new Promise((resolve) => setTimeout(resolve, 80))
            late = ctx.signal
            done()
            return {}
          },
        },
      },
    }))
    const wf = await o.createWorkflow('nap', { steps: [{ id: 'a', factory: 'slow', action: 'nap' }] })
    const r = await o.executeWorkflow(wf)
    expect(r.status).toBe('FAILED')
    await read
    expect(late!.aborted).toBe(true)
    expect(late!.reason).toBeInstanceOf(TimeoutError)
  })

  it('a signal read before the abort fires its listeners once, with the first reason', () => {
    const abort = new AttemptAbort()
    const ctx = new AttemptContext(abort, 'run_1', 'wf_1', 'a', 1, 'run_1:a', {}, undefined, null, {})
    const reasons: unknown[] = []
    ctx.signal.addEventListener('abort', () => reasons.push(ctx.signal.reason))
    const first = new CancelledError('run cancelled')
    abort.abort(first)
    abort.abort(new Error('second'))
    expect(reasons).toEqual([first])
    // Assigning it makes it a plain property, as it was.
    const other = new AbortController().signal
    ctx.signal = other
    expect(ctx.signal).toBe(other)
    expect(Object.keys(ctx).indexOf('signal')).toBe(4)
  })
})
