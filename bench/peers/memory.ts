// Peer: the no-durability bound. A plain in-memory promise DAG executor with p-limit: each node
// waits for its dependencies' promises, then runs its no-op action under the limit. Nothing is
// stored, nothing is published.
import pLimit from 'p-limit'
import { Timeline } from '../timeline.ts'
import { CHAIN_WARMUP_RUNS, FAN_OUT_WARMUP_STEPS, inFlight, latencySummary, now } from '../stats.ts'

export interface DagNode {
  id: string
  deps: string[]
  /** Receives the outputs of its dependencies, in order. */
  run: (inputs: unknown[]) => unknown
}

export async function runDag(nodes: readonly DagNode[], limit: (fn: () => unknown) => Promise<unknown>): Promise<Map<string, unknown>> {
  const promises = new Map<string, Promise<unknown>>()
  for (const node of nodes) {
    const deps = node.deps.map((d) => promises.get(d)!)
    promises.set(node.id, Promise.all(deps).then((inputs) => limit(async () => node.run(inputs))))
  }
  const outputs = new Map<string, unknown>()
  await Promise.all([...promises].map(async ([id, p]) => outputs.set(id, await p)))
  return outputs
}

export interface MemoryResult {
  steps: number
  ms: number
  stepsPerSec: number
  dispatch?: { p50: number; p99: number; n: number }
}

/** Chains: `runs` × `steps` sequential no-ops, `concurrency` runs in flight. */
export async function memoryChains(o: { runs: number; steps: number; concurrency: number; warmup?: number }): Promise<MemoryResult> {
  const timeline = new Timeline()
  const chain = (run: string): DagNode[] =>
    Array.from({ length: o.steps }, (_, i) => ({
      id: `s${i}`,
      deps: i === 0 ? [] : [`s${i - 1}`],
      run: () => {
        timeline.call(run, i)
        timeline.ret(run, i)
        return { i }
      },
    }))
  const limit = pLimit(Number.POSITIVE_INFINITY)
  await inFlight(Array.from({ length: o.warmup ?? CHAIN_WARMUP_RUNS }), Math.min(Math.max(o.concurrency, 50), 200), (_, r) => runDag(chain(`warm${r}`), limit))
  timeline.clear()
  const runs = Array.from({ length: o.runs }, (_, r) => `run${r}`)
  const t0 = now()
  await inFlight(runs, o.concurrency, (run) => runDag(chain(run), limit))
  const ms = now() - t0
  const steps = o.runs * o.steps
  const d = latencySummary(timeline.chainLatencies(runs, o.steps))
  return { steps, ms, stepsPerSec: (steps / ms) * 1000, dispatch: { p50: d.p50, p99: d.p99, n: d.n } }
}

/** Fan-out: one run of `steps` parallel no-ops, at most `steps` at once. */
export async function memoryFanOut(o: { steps: number }): Promise<MemoryResult> {
  const nodes = (n: number): DagNode[] => Array.from({ length: n }, (_, i) => ({ id: `p${i}`, deps: [], run: () => ({ i }) }))
  const warm = Math.min(FAN_OUT_WARMUP_STEPS, o.steps)
  await runDag(nodes(warm), pLimit(warm))
  const t0 = now()
  const out = await runDag(nodes(o.steps), pLimit(o.steps))
  const ms = now() - t0
  if (out.size !== o.steps) throw new Error('memory fan-out lost steps')
  return { steps: o.steps, ms, stepsPerSec: (o.steps / ms) * 1000 }
}

/** Diamonds: `runs` × (1 → 8 → 1), `concurrency` in flight; the join sums the middle outputs. */
export async function memoryDiamonds(o: { runs: number; concurrency: number; width: number }): Promise<MemoryResult> {
  const diamond = (n: number): DagNode[] => {
    const middle = Array.from({ length: o.width }, (_, k): DagNode => ({
      id: `b${k}`, deps: ['root'], run: ([root]) => ({ v: (root as { n: number }).n + k }),
    }))
    return [
      { id: 'root', deps: [], run: () => ({ n }) },
      ...middle,
      { id: 'join', deps: middle.map((m) => m.id), run: (inputs) => ({ sum: inputs.reduce((s: number, x) => s + (x as { v: number }).v, 0) }) },
    ]
  }
  const limit = pLimit(Number.POSITIVE_INFINITY)
  await inFlight(Array.from({ length: 20 }), 10, (_, i) => runDag(diamond(i), limit))
  const t0 = now()
  await inFlight(Array.from({ length: o.runs }), o.concurrency, async (_, i) => {
    const out = await runDag(diamond(i), limit)
    const expected = o.width * i + (o.width * (o.width - 1)) / 2
    if ((out.get('join') as { sum: number }).sum !== expected) throw new Error('memory diamond: wrong sum')
  })
  const ms = now() - t0
  const steps = o.runs * (o.width + 2)
  return { steps, ms, stepsPerSec: (steps / ms) * 1000 }
}
