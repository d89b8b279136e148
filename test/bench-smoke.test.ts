// Keeps bench/ from rotting: every Conveyor scenario of the benchmark harness at a tiny size,
// asserting correctness only (all runs SUCCEEDED, no event lost). Never asserts a time.
import { describe, expect, it } from 'vitest'
import {
  conveyorChains, conveyorDiamonds, conveyorDispatchLight, conveyorFanOut, conveyorReads, conveyorSubscriptions,
} from '../bench/harness.ts'
import { sqliteCeiling } from '../bench/peers/sqlite-ceiling.ts'
import { memoryChains, memoryDiamonds, memoryFanOut } from '../bench/peers/memory.ts'
import { runPeerWorkloads, type PeerAdapter } from '../bench/durable/workloads.ts'
import { Timeline } from '../bench/timeline.ts'

describe('bench harness (tiny sizes, correctness only)', () => {
  it('chains: every run succeeds, dispatch latencies are recorded, no event lost', async () => {
    const r = await conveyorChains({ runs: 6, steps: 4, concurrency: 3, warmup: 1 })
    expect(r.correctness).toEqual({ runs: 6, succeeded: 6, eventsLost: 0 })
    expect(r.steps).toBe(24)
    expect(r.dispatch!.n).toBe(6 * 3)
  })

  it('dispatch at light load: one chain at a time', async () => {
    const r = await conveyorDispatchLight({ runs: 2, steps: 3 })
    expect(r.correctness).toEqual({ runs: 2, succeeded: 2, eventsLost: 0 })
    expect(r.dispatch!.n).toBe(2 * 2)
  })

  it('fan-out: one run of parallel steps, all succeed', async () => {
    const r = await conveyorFanOut({ steps: 30 })
    expect(r.correctness).toEqual({ runs: 1, succeeded: 1, eventsLost: 0 })
  })

  it('diamonds: when and {{ }} params on every step, the join sums the middle', async () => {
    const r = await conveyorDiamonds({ runs: 4, concurrency: 2 })
    expect(r.correctness).toEqual({ runs: 4, succeeded: 4, eventsLost: 0 })
  })

  it('subscriptions: every graphql-ws client gets every event once, in order', async () => {
    const r = await conveyorSubscriptions({ clients: 3, steps: 4, timeoutMs: 100_000 })
    expect(r.correctness.succeeded).toBe(1)
    expect(r.eventsLost).toBe(0)
    expect(r.duplicatesOrDisorder).toBe(0)
    expect(r.eventsPerClient).toBeGreaterThan(0)
    expect(r.deliveries).toBe(3 * r.eventsPerClient)
  })

  it('subscriptions, batched (runEventBatches): every client gets every event once, in order', async () => {
    const r = await conveyorSubscriptions({ clients: 3, steps: 4, timeoutMs: 100_000, batched: true })
    expect(r.correctness.succeeded).toBe(1)
    expect(r.eventsLost).toBe(0)
    expect(r.duplicatesOrDisorder).toBe(0)
    expect(r.eventsPerClient).toBeGreaterThan(0)
    expect(r.deliveries).toBe(3 * r.eventsPerClient)
    expect(r.messages).toBeLessThanOrEqual(r.deliveries)
  })

  it('subscriptions peer "frames only": the same clients get every event once, in order, both forms', async () => {
    for (const batched of [false, true]) {
      const r = await conveyorSubscriptions({ clients: 3, steps: 4, timeoutMs: 100_000, batched, server: 'frames' })
      expect(r.eventsLost).toBe(0)
      expect(r.duplicatesOrDisorder).toBe(0)
      expect(r.eventsPerClient).toBe((4 - 1) * 3 + 2)
      expect(r.deliveries).toBe(3 * r.eventsPerClient)
      expect(r.messages).toBe(batched ? 3 : r.deliveries)
    }
  })

  it('reads: constant statements per page, and the events page of a seeded log', async () => {
    const r = await conveyorReads({ runs: 12, events: 500, durationMs: 50, concurrency: 2, samples: 2 })
    expect(r.correctness).toEqual({ runs: 12, succeeded: 12, eventsLost: 0 })
    expect(r.statementsFirst10).toBe(r.statementsFirst100)
  })

  it('the peers that need no service: SQLite ceiling and the in-memory DAG', async () => {
    expect(sqliteCeiling({ runs: 2, stepsPerRun: 3 }).transitions).toBe(18)
    expect((await memoryChains({ runs: 3, steps: 3, concurrency: 2 })).dispatch!.n).toBe(6)
    expect((await memoryFanOut({ steps: 10 })).steps).toBe(10)
    expect((await memoryDiamonds({ runs: 3, concurrency: 2, width: 8 })).steps).toBe(30)
  })

  it('durable group, Conveyor: machine durability (synchronous=FULL) and start latencies, both modes', async () => {
    for (const durability of ['process', 'machine'] as const) {
      const r = await conveyorChains({ runs: 3, steps: 3, concurrency: 1, warmup: 1, durability })
      expect(r.correctness).toEqual({ runs: 3, succeeded: 3, eventsLost: 0 })
      expect(r.start!.n).toBe(3)
      expect(r.start!.p99).toBeGreaterThanOrEqual(0)
      const f = await conveyorFanOut({ steps: 20, warmupSteps: 5, durability })
      expect(f.correctness).toEqual({ runs: 1, succeeded: 1, eventsLost: 0 })
      expect(f.notes!.createWorkflowMs).toBeGreaterThan(0)
    }
  })

  it('durable group, peer driver: W1-W4 against an in-memory adapter (no service needed)', async () => {
    const timeline = new Timeline()
    const peer: PeerAdapter = {
      timeline,
      async chain(key, steps) {
        for (let i = 0; i < steps; i++) {
          await Promise.resolve()
          timeline.call(key, i)
          timeline.ret(key, i)
        }
      },
      async fanOut(steps) {
        return (await Promise.all(Array.from({ length: steps }, async (_, i) => i))).length
      },
      serverPids: () => [process.pid],
      close: async () => {},
    }
    const m = await runPeerWorkloads(peer, {
      w1: { runs: 4, steps: 3, concurrency: 2, warmup: 1 },
      w2: { steps: 10, warmupSteps: 2 },
      light: { runs: 3, steps: 3, warmup: 1 },
    }, ['w1', 'w2', 'w3', 'w4'])
    for (const k of ['w1.stepsPerSec', 'w1.cpuUsPerStep', 'w2.ms', 'w3.p50', 'w3.p99', 'w4.p50', 'w4.p99']) expect(Number.isFinite(m[k]), k).toBe(true)
    await expect(runPeerWorkloads({ ...peer, chain: async () => {} }, {
      w1: { runs: 1, steps: 2, concurrency: 1, warmup: 0 }, w2: { steps: 1, warmupSteps: 1 }, light: { runs: 1, steps: 2, warmup: 0 },
    }, ['w1'])).rejects.toThrow(/without step 0/)
  })
})
