// Peer: BullMQ on the local Redis (127.0.0.1:6379). Chains: every completion enqueues the chain's
// next step (from the worker's `completed` event, i.e. after Redis has recorded the completion).
// Fan-out: one FlowProducer flow, a parent job with one child per step; done when the parent runs.
import { FlowProducer, Queue, Worker, type Job } from 'bullmq'
import { connect } from 'node:net'
import { Timeline } from '../timeline.ts'
import { CHAIN_WARMUP_RUNS, FAN_OUT_WARMUP_STEPS, inFlight, latencySummary, now } from '../stats.ts'

export const REDIS = { host: '127.0.0.1', port: 6379 }
const connection = { ...REDIS, maxRetriesPerRequest: null }

/** PING a Redis on loopback (the shared one by default); false when nothing answers within `timeoutMs`. */
export function redisReachable(port = REDIS.port, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, REDIS.host)
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

const unique = (what: string) => `conveyor-bench-${what}-${process.pid}-${Date.now().toString(36)}`

export interface BullResult {
  steps: number
  ms: number
  stepsPerSec: number
  dispatch?: { p50: number; p99: number; n: number }
}

interface StepData {
  run: string
  step: number
}

/** `runs` chains of `steps` jobs, `concurrency` chains in flight; worker concurrency = chains in flight. */
export async function bullChains(o: { runs: number; steps: number; concurrency: number; workerConcurrency?: number; warmup?: number }): Promise<BullResult> {
  const name = unique('chains')
  const queue = new Queue<StepData>(name, { connection })
  const timeline = new Timeline()
  const finish = new Map<string, () => void>()
  const jobOptions = { removeOnComplete: true, removeOnFail: true }
  const worker = new Worker<StepData>(
    name,
    async (job: Job<StepData>) => {
      timeline.call(job.data.run, job.data.step)
      timeline.ret(job.data.run, job.data.step)
      return job.data.step
    },
    { connection, concurrency: o.workerConcurrency ?? o.concurrency },
  )
  worker.on('completed', (job: Job<StepData>) => {
    const { run, step } = job.data
    if (step + 1 < o.steps) void queue.add('step', { run, step: step + 1 }, jobOptions)
    else finish.get(run)?.()
  })
  await worker.waitUntilReady()
  const chain = (run: string) =>
    new Promise<void>((resolve) => {
      finish.set(run, resolve)
      void queue.add('step', { run, step: 0 }, jobOptions)
    })
  try {
    await inFlight(Array.from({ length: o.warmup ?? CHAIN_WARMUP_RUNS }), Math.min(Math.max(o.concurrency, 50), 200), (_, i) => chain(`warm${i}`))
    timeline.clear()
    const runs = Array.from({ length: o.runs }, (_, i) => `run${i}`)
    const t0 = now()
    await inFlight(runs, o.concurrency, chain)
    const ms = now() - t0
    const steps = o.runs * o.steps
    const d = latencySummary(timeline.chainLatencies(runs, o.steps))
    return { steps, ms, stepsPerSec: (steps / ms) * 1000, dispatch: { p50: d.p50, p99: d.p99, n: d.n } }
  } finally {
    await worker.close()
    await queue.obliterate({ force: true })
    await queue.close()
  }
}

/** One flow: a parent job with `steps` children, workers of concurrency `workerConcurrency`. */
export async function bullFanOut(o: { steps: number; workerConcurrency?: number }): Promise<BullResult> {
  const childName = unique('fan-child')
  const parentName = unique('fan-parent')
  const flow = new FlowProducer({ connection })
  const childQueue = new Queue(childName, { connection })
  const parentQueue = new Queue(parentName, { connection })
  let parentDone: (() => void) | undefined
  const children = new Worker(childName, async (job: Job<{ i: number }>) => ({ i: job.data.i }), {
    connection, concurrency: o.workerConcurrency ?? 500,
  })
  const parent = new Worker(parentName, async () => {
    parentDone?.()
    return 'done'
  }, { connection })
  await Promise.all([children.waitUntilReady(), parent.waitUntilReady()])
  const run = async (n: number) => {
    const done = new Promise<void>((resolve) => (parentDone = resolve))
    await flow.add({
      name: 'fan-out', queueName: parentName, data: {},
      children: Array.from({ length: n }, (_, i) => ({ name: 'step', queueName: childName, data: { i } })),
    })
    await done
  }
  try {
    await run(Math.min(FAN_OUT_WARMUP_STEPS, o.steps))
    const t0 = now()
    await run(o.steps)
    const ms = now() - t0
    return { steps: o.steps, ms, stepsPerSec: (o.steps / ms) * 1000 }
  } finally {
    await children.close()
    await parent.close()
    await flow.close()
    await childQueue.obliterate({ force: true })
    await parentQueue.obliterate({ force: true })
    await childQueue.close()
    await parentQueue.close()
  }
}
