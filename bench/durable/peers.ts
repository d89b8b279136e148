// The durable peers as PeerAdapters (bench/durable/workloads.ts), each run inside the child process
// bench/durable/child.ts against a server the parent started (bench/durable/servers.ts).
import { Timeline } from '../timeline.ts'
import { freePort, postgresPids } from './servers.ts'
import type { PeerAdapter } from './workloads.ts'

// ---------------------------------------------------------------- BullMQ

/**
 * BullMQ on the bench's own AOF redis-server. `in-processor` (best practice): the processor adds the
 * chain's next job before it returns, so the next job exists once this one completes. `completed`:
 * the worker's `completed` event adds it (after Redis recorded the completion; one more round trip).
 * Worker concurrency = W1's chains in flight. A chain is finished when its last job's `completed` fires.
 */
export async function bullmqPeer(o: { port: number; serverPid: number; style: 'in-processor' | 'completed'; concurrency: number }): Promise<PeerAdapter> {
  const { Queue, Worker } = await import('bullmq')
  const connection = { host: '127.0.0.1', port: o.port, maxRetriesPerRequest: null }
  const name = `conveyor-bench-chains-${o.style}` // no ':' in BullMQ names or job ids
  interface StepData { key: string; step: number; steps: number }
  const queue = new Queue<StepData>(name, { connection })
  const timeline = new Timeline()
  const finish = new Map<string, () => void>()
  const jobOptions = { removeOnComplete: true, removeOnFail: true }
  const worker = new Worker<StepData>(
    name,
    async (job) => {
      const { key, step, steps } = job.data
      timeline.call(key, step)
      timeline.ret(key, step)
      if (o.style === 'in-processor' && step + 1 < steps) await queue.add('step', { key, step: step + 1, steps }, jobOptions)
      return step
    },
    { connection, concurrency: o.concurrency },
  )
  worker.on('completed', (job) => {
    const { key, step, steps } = job.data
    if (step + 1 < steps) {
      if (o.style === 'completed') void queue.add('step', { key, step: step + 1, steps }, jobOptions)
    } else {
      const done = finish.get(key)
      finish.delete(key)
      done?.()
    }
  })
  worker.on('failed', (job, error) => process.stderr.write(`[bench] BullMQ job ${job?.id} failed: ${error.message}\n`))
  await worker.waitUntilReady()
  let flow: Awaited<ReturnType<typeof bullFlow>> | undefined
  return {
    timeline,
    chain: (key, steps) =>
      new Promise<void>((resolve, reject) => {
        finish.set(key, resolve)
        queue.add('step', { key, step: 0, steps }, jobOptions).catch(reject)
      }),
    fanOut: async (steps) => {
      flow ??= await bullFlow(connection)
      return flow.run(steps)
    },
    serverPids: () => [o.serverPid],
    async close() {
      await worker.close()
      await queue.obliterate({ force: true })
      await queue.close()
      await flow?.close()
    },
  }
}

/**
 * The fan-out as bench/peers/bullmq.ts runs it (one FlowProducer flow: a parent job with one child
 * per step, child worker concurrency 500, done when the parent runs), but with its queues and workers
 * made once, so the warm-up and the measured run share them and the time is the flow's alone.
 */
async function bullFlow(connection: { host: string; port: number; maxRetriesPerRequest: null }) {
  const { FlowProducer, Queue, Worker } = await import('bullmq')
  const childName = 'conveyor-bench-fan-child'
  const parentName = 'conveyor-bench-fan-parent'
  const producer = new FlowProducer({ connection })
  let calls = 0
  let parentDone: (() => void) | undefined
  const children = new Worker(childName, async (job) => {
    calls++
    return { i: (job.data as { i: number }).i }
  }, { connection, concurrency: 500 })
  const parent = new Worker(parentName, async () => {
    parentDone?.()
    return 'done'
  }, { connection })
  await Promise.all([children.waitUntilReady(), parent.waitUntilReady()])
  return {
    async run(steps: number): Promise<number> {
      calls = 0
      const done = new Promise<void>((resolve) => (parentDone = resolve))
      await producer.add({
        name: 'fan-out', queueName: parentName, data: {},
        children: Array.from({ length: steps }, (_, i) => ({ name: 'step', queueName: childName, data: { i } })),
      })
      await done
      return calls
    },
    async close() {
      await children.close()
      await parent.close()
      await producer.close()
      for (const name of [childName, parentName]) {
        const q = new Queue(name, { connection })
        await q.obliterate({ force: true })
        await q.close()
      }
    },
  }
}

// ---------------------------------------------------------------- DBOS Transact

/**
 * DBOS Transact on a fresh PostgreSQL database (the parent made it, with synchronous_commit on or
 * off). A chain is one workflow calling `steps` registered steps in turn (each step's output is
 * checkpointed before the next is called); the fan-out is one workflow awaiting `steps` step calls
 * with Promise.all. Started with DBOS.startWorkflow(...)(...), finished at handle.getResult().
 * DBOS is a singleton per process: one configuration per child process. Server CPU: every postgres process.
 */
export async function dbosPeer(o: { databaseUrl: string }): Promise<PeerAdapter> {
  const { DBOS } = await import('@dbos-inc/dbos-sdk')
  const timeline = new Timeline()
  let fanCalls = 0
  const tick = DBOS.registerStep(async (key: string, i: number) => {
    timeline.call(key, i)
    timeline.ret(key, i)
    return i
  }, { name: 'tick' })
  const chainWf = DBOS.registerWorkflow(async (key: string, steps: number) => {
    for (let i = 0; i < steps; i++) await tick(key, i)
    return steps
  }, { name: 'chain' })
  const noop = DBOS.registerStep(async (i: number) => {
    fanCalls++
    return i
  }, { name: 'noop' })
  const fanWf = DBOS.registerWorkflow(async (steps: number) => {
    await Promise.all(Array.from({ length: steps }, (_, i) => noop(i)))
    return steps
  }, { name: 'fan' })
  DBOS.setConfig({ name: 'conveyor-bench', systemDatabaseUrl: o.databaseUrl, logLevel: 'error' })
  await DBOS.launch()
  return {
    timeline,
    chain: async (key, steps) => {
      const handle = await DBOS.startWorkflow(chainWf)(key, steps)
      await handle.getResult()
    },
    fanOut: async (steps) => {
      fanCalls = 0
      const handle = await DBOS.startWorkflow(fanWf)(steps)
      await handle.getResult()
      return fanCalls
    },
    serverPids: postgresPids,
    close: () => DBOS.shutdown(),
  }
}

// ---------------------------------------------------------------- Restate

/**
 * Restate: a service endpoint (the SDK's HTTP/2 server) in this process, registered with the
 * restate-server the parent started; a chain is one invocation `chain({ key, steps })` doing `steps`
 * `ctx.run` calls in turn (each result is journaled by the server before the handler goes on); the
 * fan-out is one invocation awaiting `steps` ctx.run with native Promise.all (RestatePromise.all is
 * quadratic). Called through the ingress with @restatedev/restate-sdk-clients.
 */
export async function restatePeer(o: { ingress: string; admin: string; serverPid: number }): Promise<PeerAdapter> {
  polyfillWithResolvers()
  // The SDK logs two INFO lines per invocation to stdout (thousands per workload): warnings only.
  process.env.RESTATE_LOGGING ??= 'WARN'
  const restate = await import('@restatedev/restate-sdk')
  const clients = await import('@restatedev/restate-sdk-clients')
  const timeline = new Timeline()
  let fanCalls = 0
  const bench = restate.service({
    name: 'bench',
    handlers: {
      chain: async (ctx: import('@restatedev/restate-sdk').Context, req: { key: string; steps: number }) => {
        for (let i = 0; i < req.steps; i++) {
          await ctx.run(`s${i}`, async () => {
            timeline.call(req.key, i)
            timeline.ret(req.key, i)
            return i
          })
        }
        return req.steps
      },
      fan: async (ctx: import('@restatedev/restate-sdk').Context, steps: number) => {
        await Promise.all(Array.from({ length: steps }, (_, i) => ctx.run(`p${i}`, async () => {
          fanCalls++
          return i
        })))
        return steps
      },
    },
  })
  const port = await freePort()
  await restate.endpoint().bind(bench).listen(port)
  const res = await fetch(`${o.admin}/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ uri: `http://127.0.0.1:${port}` }),
  })
  if (!res.ok) throw new Error(`Restate: registering the deployment answered ${res.status}: ${await res.text()}`)
  const ingress = clients.connect({ url: o.ingress })
  const client = ingress.serviceClient<typeof bench>({ name: 'bench' })
  return {
    timeline,
    chain: async (key, steps) => {
      await client.chain({ key, steps })
    },
    fanOut: async (steps) => {
      fanCalls = 0
      await client.fan(steps)
      return fanCalls
    },
    serverPids: () => [o.serverPid],
    close: async () => {},
  }
}

/** Node 20 has no Promise.withResolvers (Node 22 does); the Restate SDK calls it. */
function polyfillWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: () => unknown }
  if (typeof P.withResolvers === 'function') return
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (value: T | PromiseLike<T>) => void
    let reject!: (reason?: unknown) => void
    const promise = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}
