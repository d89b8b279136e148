// Timestamps recorded inside actions: when each step's action was called and when it returned.
// Dispatch latency of step i of a chain = call(i) − return(i − 1): from its dependency settling (as
// far as the action can tell) to its own action being called, whatever the system in between.
import { now } from './stats.ts'

export class Timeline {
  private readonly calls = new Map<string, number>()
  private readonly returns = new Map<string, number>()

  call(run: string, step: number): void {
    this.calls.set(`${run}:${step}`, now())
  }

  ret(run: string, step: number): void {
    this.returns.set(`${run}:${step}`, now())
  }

  /** Latencies (ms) from step i−1 returning to step i being called, for every chain and i ≥ 1. */
  chainLatencies(runs: Iterable<string>, steps: number): number[] {
    const out: number[] = []
    for (const run of runs) {
      for (let i = 1; i < steps; i++) {
        const prev = this.returns.get(`${run}:${i - 1}`)
        const call = this.calls.get(`${run}:${i}`)
        if (prev !== undefined && call !== undefined) out.push(call - prev)
      }
    }
    return out
  }

  /** When step `step` of `run` was called (ms, same clock as now()), if it was. */
  callAt(run: string, step: number): number | undefined {
    return this.calls.get(`${run}:${step}`)
  }

  get size(): number {
    return this.calls.size
  }

  clear(): void {
    this.calls.clear()
    this.returns.clear()
  }
}
