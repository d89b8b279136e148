// A hard time and memory budget for JSONata expressions. JSONata's own guardrails (timeout, stack)
// are checked between evaluation steps, so they stop runaway recursion and long mappings, but not
// one long call inside a built-in: a catastrophic regex (`$match("aaaa…!", /(a+)+$/)`), `$pad("",
// 1e8)`, `$distinct` over 1e5 items or `$sort` over 1e6 block the event loop — and so the whole
// engine — for seconds to hours. Expressions that can do that (regexes, those built-ins, ranges,
// order-by) are evaluated in a small child process instead (a worker thread is not enough: running
// out of its heap can abort the whole process), which is killed when the budget runs out and dies
// alone when its heap limit is hit. Everything else (paths, operators, cheap built-ins) stays in-process.
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import type jsonata from 'jsonata'

/** Built-ins whose cost is not bounded by the evaluation steps JSONata's guardrails count. */
const UNBOUNDED = new Set(['pad', 'sort', 'distinct', 'match', 'replace', 'split', 'contains', 'eval'])

/** Whether the expression may run long or large inside one native call: it then needs the sandbox. */
export function needsSandbox(expr: jsonata.Expression): boolean {
  const seen = new WeakSet<object>()
  const visit = (node: unknown): boolean => {
    if (!node || typeof node !== 'object' || node instanceof RegExp || seen.has(node)) return false
    seen.add(node)
    const n = node as { type?: unknown; value?: unknown }
    if (n.type === 'regex' || n.type === 'sort') return true
    if (n.type === 'variable' && typeof n.value === 'string' && UNBOUNDED.has(n.value)) return true
    if (n.type === 'binary' && n.value === '..') return true
    for (const value of Object.values(node)) if (visit(value)) return true
    return false
  }
  return visit(expr.ast())
}

export interface SandboxLimits {
  /** Milliseconds: JSONata's timeout inside the worker, and the hard deadline (plus a margin) outside. */
  timeout: number
  stack: number
  /** Largest result, as JSON text. */
  maxResultBytes?: number
  /** Heap of one sandbox process, in MiB. */
  maxHeapMb?: number
}

/** An evaluation error with JSONata's code, message and position, or the budget that ran out. */
export class SandboxError extends Error {
  constructor(message: string, readonly code?: string, readonly position?: number) {
    super(message)
    this.name = 'SandboxError'
  }
}

const WORKER_SOURCE = `
const jsonata = require(process.env.CONVEYOR_JSONATA)
process.on('disconnect', () => process.exit(0))
const mb = (n) => { const v = n / 1048576; return (v >= 10 ? Math.round(v) : Math.round(v * 10) / 10) + ' MB' }
process.on('message', async ({ id, text, input, bindings, limits }) => {
  try {
    const value = await jsonata(text, { timeout: limits.timeout, stack: limits.stack }).evaluate(input, bindings)
    const json = JSON.stringify(value)
    if (json !== undefined && json.length > limits.maxResultBytes) {
      const [size, limit] = [mb(json.length), mb(limits.maxResultBytes)]
      throw { code: 'SIZE', message: size === limit
        ? 'expression result is ' + json.length + ' bytes; the limit is ' + limits.maxResultBytes + ' bytes (' + limit + ')'
        : 'expression result is ' + size + '; the limit is ' + limit }
    }
    process.send({ id, ok: true, json })
  } catch (e) {
    process.send({ id, ok: false, message: (e && e.message) || String(e), code: e && e.code, position: e && e.position })
  }
})`

const JSONATA_PATH = createRequire(import.meta.url).resolve('jsonata')
const MAX_WORKERS = 2
const DEADLINE_MARGIN_MS = 250

interface Job {
  text: string
  input: unknown
  bindings: Record<string, unknown> | undefined
  limits: Required<SandboxLimits>
  signal?: AbortSignal
  resolve: (value: unknown) => void
  reject: (error: Error) => void
}

interface Slot {
  worker: ChildProcess
  busy: boolean
  heapMb: number
}

const slots: Slot[] = []
const queue: Job[] = []
let nextId = 0

function start(heapMb: number): Slot {
  // Plain node (not the parent's --import hooks), a small heap, no stdio but the IPC channel.
  const worker = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, '-e', WORKER_SOURCE], {
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    env: { CONVEYOR_JSONATA: JSONATA_PATH, PATH: process.env.PATH ?? '' },
  })
  worker.on('error', () => {})
  idle(worker)
  const slot: Slot = { worker, busy: false, heapMb }
  slots.push(slot)
  return slot
}

/** An idle sandbox never keeps the process alive; a busy one does (its deadline timer does too). */
function idle(worker: ChildProcess): void {
  worker.unref()
  ;(worker.channel as { unref?: () => void } | undefined)?.unref?.()
}

function busy(worker: ChildProcess): void {
  worker.ref()
  ;(worker.channel as { ref?: () => void } | undefined)?.ref?.()
}

function retire(slot: Slot): void {
  const i = slots.indexOf(slot)
  if (i >= 0) slots.splice(i, 1)
  slot.worker.kill('SIGKILL')
}

function pump(): void {
  while (queue.length > 0) {
    const job = queue[0]!
    let slot = slots.find((s) => !s.busy && s.heapMb === job.limits.maxHeapMb)
    if (!slot) {
      if (slots.length >= MAX_WORKERS) {
        // Make room: drop an idle worker with other limits, else wait for one to finish.
        const idle = slots.find((s) => !s.busy)
        if (!idle) return
        retire(idle)
      }
      slot = start(job.limits.maxHeapMb)
    }
    queue.shift()
    run(slot, job)
  }
}

function run(slot: Slot, job: Job): void {
  if (job.signal?.aborted) {
    job.reject(job.signal.reason instanceof Error ? job.signal.reason : new SandboxError('evaluation aborted'))
    return
  }
  slot.busy = true
  busy(slot.worker)
  const id = ++nextId
  let settled = false
  const finish = (outcome: () => void, healthy: boolean) => {
    if (settled) return
    settled = true
    clearTimeout(deadline)
    job.signal?.removeEventListener('abort', onAbort)
    slot.worker.off('message', onMessage)
    slot.worker.off('error', onError)
    slot.worker.off('exit', onExit)
    if (healthy) {
      slot.busy = false
      idle(slot.worker)
    } else retire(slot)
    outcome()
    pump()
  }
  const onMessage = (m: { id: number; ok: boolean; json?: string; message?: string; code?: string; position?: number }) => {
    if (m.id !== id) return
    finish(() => {
      if (m.ok) job.resolve(m.json === undefined ? undefined : JSON.parse(m.json))
      else job.reject(new SandboxError(m.message ?? 'evaluation failed', m.code, m.position))
    }, true)
  }
  const onError = (error: Error & { code?: string }) =>
    finish(() => job.reject(new SandboxError(`evaluation failed: ${error.message}`, error.code)), false)
  // The only way it ends while busy on its own: V8 aborts it when its heap is exhausted.
  const onExit = () =>
    finish(() => job.reject(new SandboxError(`evaluation ran out of its memory budget (${job.limits.maxHeapMb} MiB) and was stopped`, 'MEMORY')), false)
  const onAbort = () => finish(() => job.reject(job.signal!.reason instanceof Error ? job.signal!.reason : new SandboxError('evaluation aborted')), false)
  const deadline = setTimeout(
    () => finish(() => job.reject(new SandboxError(`evaluation timed out after ${job.limits.timeout} ms and was stopped`, 'TIMEOUT')), false),
    job.limits.timeout + DEADLINE_MARGIN_MS,
  )
  slot.worker.on('message', onMessage)
  slot.worker.on('error', onError)
  slot.worker.on('exit', onExit)
  job.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    slot.worker.send({ id, text: job.text, input: job.input, bindings: job.bindings, limits: job.limits })
  } catch (error) {
    // The input cannot be cloned (functions in it, say).
    finish(() => job.reject(new SandboxError(`cannot evaluate in the sandbox: ${(error as Error).message}`)), true)
  }
}

/** Evaluates `text` over `input` in a sandbox process, within `limits`; the result comes back as plain JSON. */
export function evaluateInSandbox(
  text: string,
  input: unknown,
  bindings: Record<string, unknown> | undefined,
  limits: SandboxLimits,
  signal?: AbortSignal,
): Promise<unknown> {
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    queue.push({
      text, input, bindings, signal, resolve, reject,
      limits: { maxResultBytes: 16 * 1024 * 1024, maxHeapMb: 128, ...limits },
    })
    pump()
  })
}
