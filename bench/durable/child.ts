// One system of the durable group in a process of its own (DBOS is a singleton per process; every
// system gets the same fresh process). The parent (bench/durable/run.ts) sends
// { type: 'run', system, sizes, workloads, server } and gets { type: 'result', metrics } or
// { type: 'error', message }.
import { conveyorChains, conveyorDispatchLight, conveyorFanOut, type Durability } from '../harness.ts'
import { bullmqPeer, dbosPeer, restatePeer } from './peers.ts'
import { runPeerWorkloads, type DurableSizes, type Metrics, type PeerAdapter, type Workload } from './workloads.ts'

export interface RunMessage {
  type: 'run'
  system: string
  sizes: DurableSizes
  workloads: Workload[]
  server: { redisPort?: number; pid?: number; databaseUrl?: string; ingress?: string; admin?: string }
}

async function conveyor(durability: Durability, sizes: DurableSizes, workloads: Workload[]): Promise<Metrics> {
  const m: Metrics = {}
  const check = (what: string, c: { runs: number; succeeded: number; eventsLost: number }) => {
    if (c.succeeded !== c.runs || c.eventsLost !== 0) throw new Error(`Conveyor ${what}: ${c.succeeded}/${c.runs} runs succeeded, ${c.eventsLost} events lost`)
  }
  if (workloads.includes('w1')) {
    const r = await conveyorChains({ ...sizes.w1, durability })
    check('W1', r.correctness)
    Object.assign(m, {
      'w1.stepsPerSec': r.stepsPerSec, 'w1.ms': r.ms, 'w1.cpuUsPerStep': r.cpuUsPerStep, 'w1.serverCpuUsPerStep': 0,
      'w1.saturatedP99': r.dispatch!.p99,
    })
  }
  if (workloads.includes('w2')) {
    const r = await conveyorFanOut({ steps: sizes.w2.steps, warmupSteps: sizes.w2.warmupSteps, durability })
    check('W2', r.correctness)
    const create = r.notes!.createWorkflowMs!
    Object.assign(m, {
      'w2.ms': r.ms + create, 'w2.executeMs': r.ms, 'w2.createWorkflowMs': create,
      'w2.cpuUsPerStep': r.cpuUsPerStep, 'w2.serverCpuUsPerStep': 0,
    })
  }
  if (workloads.includes('w3') || workloads.includes('w4')) {
    const r = await conveyorDispatchLight({ ...sizes.light, durability })
    check('W3/W4', r.correctness)
    Object.assign(m, { 'w3.p50': r.dispatch!.p50, 'w3.p99': r.dispatch!.p99, 'w4.p50': r.start!.p50, 'w4.p99': r.start!.p99 })
  }
  return m
}

async function peer(msg: RunMessage): Promise<PeerAdapter> {
  const s = msg.server
  switch (msg.system) {
    case 'bullmq-aof':
    case 'bullmq-aof-completed':
      return bullmqPeer({ port: s.redisPort!, serverPid: s.pid!, style: msg.system === 'bullmq-aof' ? 'in-processor' : 'completed', concurrency: msg.sizes.w1.concurrency })
    case 'dbos-sync':
    case 'dbos-async':
      return dbosPeer({ databaseUrl: s.databaseUrl! })
    case 'restate-fsync':
    case 'restate-nofsync':
      return restatePeer({ ingress: s.ingress!, admin: s.admin!, serverPid: s.pid! })
    default:
      throw new Error(`unknown system ${msg.system}`)
  }
}

async function run(msg: RunMessage): Promise<Metrics> {
  if (msg.system === 'conveyor-process') return conveyor('process', msg.sizes, msg.workloads)
  if (msg.system === 'conveyor-machine') return conveyor('machine', msg.sizes, msg.workloads)
  const adapter = await peer(msg)
  try {
    return await runPeerWorkloads(adapter, msg.sizes, msg.workloads)
  } finally {
    await adapter.close()
  }
}

process.on('message', (msg: RunMessage) => {
  if (msg.type !== 'run') return
  run(msg).then(
    (metrics) => process.send!({ type: 'result', metrics }, () => process.exit(0)),
    (error) => process.send!({ type: 'error', message: (error as Error)?.stack ?? String(error) }, () => process.exit(1)),
  )
})
process.send!({ type: 'ready' })
