// The seed's research factory, doing honest work offline: indicators computed from a price series
// (given, or read from the sample data shipped with the example), and a brief built from them.
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { defineFactory, NonRetryableError } from '../../src/index.ts'

const SAMPLE = JSON.parse(readFileSync(new URL('../data/sample-prices.json', import.meta.url), 'utf8')) as {
  note: string
  series: Record<string, number[]>
}

/** The sample close series shipped with the examples (synthetic, not market data), by symbol. */
export function sampleSeries(symbol: string): number[] | undefined {
  const key = symbol.toUpperCase()
  return Object.hasOwn(SAMPLE.series, key) ? SAMPLE.series[key] : undefined
}
export const SAMPLE_SYMBOLS = Object.keys(SAMPLE.series)

const analysis = z.object({
  symbol: z.string(),
  source: z.enum(['input', 'sample']),
  points: z.number(),
  first: z.number(),
  last: z.number(),
  changePct: z.number(),
  min: z.number(),
  max: z.number(),
  sma7: z.number(),
  sma30: z.number().nullable(),
  volatilityPct: z.number(),
  trend: z.enum(['up', 'down', 'flat']),
  prices: z.array(z.number()),
})
export type MarketAnalysis = z.infer<typeof analysis>

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

/** Indicators of a close series: change, simple moving averages, volatility of daily returns, trend. */
export function analyzeSeries(symbol: string, prices: number[], source: 'input' | 'sample'): MarketAnalysis {
  const first = prices[0]!
  const last = prices.at(-1)!
  const returns = prices.slice(1).map((p, i) => p / prices[i]! - 1)
  const avg = returns.length ? mean(returns) : 0
  const variance = returns.length > 1 ? returns.reduce((a, r) => a + (r - avg) ** 2, 0) / (returns.length - 1) : 0
  const sma7 = mean(prices.slice(-7))
  const sma30 = prices.length >= 30 ? mean(prices.slice(-30)) : null
  const changePct = (last / first - 1) * 100
  const trend = Math.abs(changePct) < 1 ? 'flat' : changePct > 0 ? 'up' : 'down'
  return {
    symbol, source, points: prices.length, first, last, changePct: round(changePct), min: Math.min(...prices), max: Math.max(...prices),
    sma7: round(sma7), sma30: sma30 === null ? null : round(sma30), volatilityPct: round(Math.sqrt(variance) * 100), trend, prices,
  }
}

export const researchFactory = defineFactory({
  name: 'research',
  description: 'Market research from price series (examples ship sample data).',
  actions: {
    analyze_market: {
      description: 'Change %, SMA 7/30, volatility, trend, min/max of a close series.',
      input: z.object({
        symbol: z.string().min(1).default('BTC'),
        prices: z.array(z.number().positive()).min(2).optional(),
      }),
      output: analysis,
      run: async ({ symbol, prices }) => {
        if (prices) return analyzeSeries(symbol, prices, 'input')
        const sample = SAMPLE.series[symbol.toUpperCase()]
        if (!sample) {
          throw new NonRetryableError(`no prices given and no sample series for "${symbol}" (sample has ${Object.keys(SAMPLE.series).join(', ')})`)
        }
        return analyzeSeries(symbol.toUpperCase(), sample, 'sample')
      },
    },
    initiate_research: {
      description: 'A structured research brief from the analysis earlier in the run.',
      input: z.object({ topic: z.string().optional(), symbol: z.string().optional() }),
      run: async ({ topic, symbol }, ctx) => {
        const found = Object.values(ctx.steps).find((o) => analysis.safeParse(o).success) as MarketAnalysis | undefined
        const subject = topic ?? symbol ?? found?.symbol ?? 'market'
        const findings = found
          ? [
              `${found.symbol} moved ${found.changePct}% over ${found.points} points (${found.first} → ${found.last}).`,
              `Trend: ${found.trend}; 7-point SMA ${found.sma7}${found.sma30 === null ? '' : `, 30-point SMA ${found.sma30}`}.`,
              `Daily volatility ${found.volatilityPct}%, range ${found.min}–${found.max}.`,
            ]
          : []
        return {
          title: `Research brief: ${subject}`,
          subject,
          basedOn: found ? { symbol: found.symbol, source: found.source } : null,
          findings,
          questions: [
            `What drives the ${found?.trend ?? 'recent'} move in ${subject}?`,
            `Is volatility of ${found?.volatilityPct ?? '?'}% in line with its history?`,
          ],
          createdFor: { runId: ctx.runId, stepId: ctx.stepId },
        }
      },
    },
  },
})
