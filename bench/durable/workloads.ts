// The four workloads of the durable group, run the same way against every system (Conveyor through
// bench/harness.ts, the peers through the adapter below), each system in a child process of its own.
//   W1 chains: `runs` chains of `steps` sequential no-op steps, `concurrency` in flight (steps/s).
//   W2 fan-out: one run of `steps` parallel no-op steps (end-to-end time).
//   W3 step-to-step latency at light load: previous action returns → next action called, one chain at a time.
//   W4 start latency at light load: start call → the run's first action called.
// CPU per step = CPU of this process + CPU of the system's server processes (/proc utime + stime)
// over the measured window, divided by the steps of the window.
import { Timeline } from '../timeline.ts'
import { inFlight, latencySummary, now } from '../stats.ts'
import { cpuWindow } from './servers.ts'

export interface DurableSizes {
  w1: { runs: number; steps: number; concurrency: number; warmup: number }
  w2: { steps: number; warmupSteps: number }
  /** W3 and W4 come from the same light-load runs: `runs` chains of `steps`, one at a time, after `warmup` chains. */
  light: { runs: number; steps: number; warmup: number }
}

export const DURABLE_FULL: DurableSizes = {
  w1: { runs: 1000, steps: 10, concurrency: 200, warmup: 200 },
  w2: { steps: 10_000, warmupSteps: 2000 },
  light: { runs: 100, steps: 10, warmup: 20 },
}

export const DURABLE_QUICK: DurableSizes = {
  w1: { runs: 200, steps: 10, concurrency: 200, warmup: 50 },
  w2: { steps: 2000, warmupSteps: 200 },
  light: { runs: 30, steps: 10, warmup: 5 },
}

export const WORKLOADS = ['w1', 'w2', 'w3', 'w4'] as const
export type Workload = (typeof WORKLOADS)[number]

export type Metrics = Record<string, number>

/** A peer as the workloads see it: start a chain and wait for it, run a fan-out, stop. */
export interface PeerAdapter {
  /** Actions record call/return here under (chain key, step index). */
  timeline: Timeline
  /** Starts chain `key` of `steps` steps and resolves when the system has recorded it finished. */
  chain(key: string, steps: number): Promise<void>
  /** One run of `steps` parallel steps; resolves with how many actions ran. */
  fanOut(steps: number): Promise<number>
  /** Process ids whose CPU counts as the system's besides this process (servers). */
  serverPids(): number[]
  close(): Promise<void>
}

function ownCpu(): () => number {
  const c0 = process.cpuUsage()
  return () => {
    const d = process.cpuUsage(c0)
    return d.user + d.system
  }
}

export async function runPeerWorkloads(peer: PeerAdapter, sizes: DurableSizes, workloads: readonly Workload[]): Promise<Metrics> {
  const m: Metrics = {}
  const tl = peer.timeline
  if (workloads.includes('w1')) {
    const s = sizes.w1
    await inFlight(Array.from({ length: s.warmup }, (_, i) => `warm${i}`), Math.min(s.concurrency, s.warmup), (key) => peer.chain(key, s.steps))
    tl.clear()
    const keys = Array.from({ length: s.runs }, (_, i) => `run${i}`)
    const own = ownCpu()
    const server = cpuWindow(() => peer.serverPids())
    const t0 = now()
    await inFlight(keys, s.concurrency, (key) => peer.chain(key, s.steps))
    const ms = now() - t0
    const steps = s.runs * s.steps
    checkChains(tl, keys, s.steps, 'W1')
    const ownUs = own()
    const serverUs = server()
    Object.assign(m, {
      'w1.stepsPerSec': (steps / ms) * 1000, 'w1.ms': ms,
      'w1.cpuUsPerStep': (ownUs + serverUs) / steps, 'w1.serverCpuUsPerStep': serverUs / steps,
      'w1.saturatedP99': latencySummary(tl.chainLatencies(keys, s.steps)).p99,
    })
  }
  if (workloads.includes('w2')) {
    const s = sizes.w2
    const warm = await peer.fanOut(s.warmupSteps)
    if (warm !== s.warmupSteps) throw new Error(`W2 warm-up: ${warm} of ${s.warmupSteps} actions ran`)
    const own = ownCpu()
    const server = cpuWindow(() => peer.serverPids())
    const t0 = now()
    const ran = await peer.fanOut(s.steps)
    const ms = now() - t0
    if (ran !== s.steps) throw new Error(`W2: ${ran} of ${s.steps} actions ran`)
    const ownUs = own()
    const serverUs = server()
    Object.assign(m, { 'w2.ms': ms, 'w2.cpuUsPerStep': (ownUs + serverUs) / s.steps, 'w2.serverCpuUsPerStep': serverUs / s.steps })
  }
  if (workloads.includes('w3') || workloads.includes('w4')) {
    const s = sizes.light
    for (let i = 0; i < s.warmup; i++) await peer.chain(`lwarm${i}`, s.steps)
    tl.clear()
    const keys = Array.from({ length: s.runs }, (_, i) => `light${i}`)
    const starts: number[] = []
    for (const key of keys) {
      const called = now()
      await peer.chain(key, s.steps)
      starts.push(tl.callAt(key, 0)! - called)
    }
    checkChains(tl, keys, s.steps, 'W3/W4')
    const step = latencySummary(tl.chainLatencies(keys, s.steps))
    const start = latencySummary(starts)
    Object.assign(m, { 'w3.p50': step.p50, 'w3.p99': step.p99, 'w4.p50': start.p50, 'w4.p99': start.p99 })
  }
  return m
}

/** Every step of every chain was called (exactly the chain's steps, in order of calls). */
function checkChains(tl: Timeline, keys: string[], steps: number, what: string): void {
  for (const key of keys) {
    for (let i = 0; i < steps; i++) {
      if (tl.callAt(key, i) === undefined) throw new Error(`${what}: chain ${key} finished without step ${i} being called`)
    }
    if (tl.callAt(key, steps) !== undefined) throw new Error(`${what}: chain ${key} ran more than ${steps} steps`)
  }
}
