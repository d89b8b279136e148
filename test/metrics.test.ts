// /metrics: the event-loop lag summary (src/metrics.ts) beside the engine's gauges.
import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

let t: TestServer | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

/** The samples of conveyor_event_loop_lag_seconds in one scrape, by quantile (and sum, count). */
async function scrapeLag(origin: string): Promise<Record<string, number>> {
  const res = await fetch(`${origin}/metrics`)
  expect(res.status).toBe(200)
  const text = await res.text()
  expect(text).toMatch(/^# TYPE conveyor_event_loop_lag_seconds summary$/m)
  const samples: Record<string, number> = {}
  for (const [, quantile, suffix, value] of text.matchAll(/^conveyor_event_loop_lag_seconds(?:\{quantile="([\d.]+)"\}|_(sum|count)) (\S+)$/gm)) {
    samples[quantile ?? suffix!] = Number(value)
  }
  return samples
}

describe('/metrics event-loop lag', () => {
  it('is a summary in seconds (p50 ≤ p99 ≤ max), and a stall of the loop shows in its max', async () => {
    t = await startTestServer()
    const origin = new URL(t.url).origin
    let lag: Record<string, number> = {}
    // The first sample is taken 20 ms after the server starts.
    while (!(lag.count! > 0)) lag = await scrapeLag(origin)
    expect(Object.keys(lag).sort()).toEqual(['0.5', '0.99', '1', 'count', 'sum'])
    for (const value of Object.values(lag)) expect(Number.isFinite(value) && value >= 0).toBe(true)
    expect(lag['0.5']).toBeLessThanOrEqual(lag['0.99']!)
    expect(lag['0.99']).toBeLessThanOrEqual(lag['1']!)
    expect(lag.sum).toBeLessThanOrEqual(lag['1']! * lag.count!)

    // The loop held for 300 ms: the sample across it is at least that late, less the 20 ms resolution.
    const end = performance.now() + 300
    while (performance.now() < end);
    const stalled = await scrapeLag(origin)
    expect(stalled.count).toBeGreaterThan(lag.count!)
    expect(stalled['1']).toBeGreaterThanOrEqual(0.25)
    expect(stalled['1']).toBeLessThan(60)
  })
})
