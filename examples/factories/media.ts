// The seed's media factory, doing honest work offline: a real PNG line chart of a price series
// (SVG built in ./chart.ts, rasterised with resvg), an animated GIF of the chart drawing itself
// (gifenc), and a Markdown + HTML report. Every file is stored with ctx.artifact, so it is listed on
// the run and downloadable; progress is reported at each stage, so subscribers watch it happen.
//
// Where the prices come from, in order: `data.prices`; a market analysis earlier in the run (the
// step before first, then any succeeded step: research.analyze_market's output has `symbol` and
// `prices`); the sample series of `data.symbol` (default BTC) shipped with the examples. The output
// says which (`source`).
import { z } from 'zod'
import { defineFactory, NonRetryableError, type ActionContext } from '../../src/index.ts'
import { analyzeSeries, sampleSeries, SAMPLE_SYMBOLS, type MarketAnalysis } from './research.ts'
import { buildChartSvg, pngSize } from './chart.ts'
import { encodeGif, fontsAvailable, renderPng } from './render.ts'
import { buildHtmlReport, buildMarkdownReport, type ResearchBrief } from './report.ts'

export const PNG_WIDTH = 800
export const PNG_HEIGHT = 450
export const GIF_WIDTH = 480
export const GIF_HEIGHT = 270

// ---------------------------------------------------------------------------------- schemas

const data = z
  .looseObject({
    symbol: z.string().min(1).max(40).optional().describe('Symbol for the title, or for the sample series when there are no prices.'),
    prices: z.array(z.number().positive()).min(2).max(100_000).optional().describe('The close series to draw.'),
  })
  .describe('The series: give `prices`, or pass an analysis (`{{ steps.analyze_market.output }}`), or leave it out to use the analysis earlier in the run.')
const prompt = z.string().min(1).max(200).describe('Title of the chart or report (default: "<symbol> price").')

const artifactRef = z.object({ id: z.string(), name: z.string(), mimeType: z.string(), size: z.number() })
const common = {
  title: z.string(),
  symbol: z.string(),
  points: z.number(),
  source: z.string().describe('Where the prices came from: params, step <id>, or sample.'),
  /** The file most people want (PNG, GIF, Markdown); every file is in `artifacts`. */
  artifact: artifactRef,
  artifacts: z.array(artifactRef),
}
const imageOutput = z.object({
  type: z.literal('image'),
  ...common,
  width: z.number(),
  height: z.number(),
  textRendered: z.boolean().describe('False when the machine has no fonts: the PNG then has no labels (the SVG artifact has them).'),
})
const reportOutput = z.object({ type: z.literal('report'), ...common, sections: z.array(z.string()) })
const videoOutput = z.object({
  type: z.literal('video'),
  ...common,
  width: z.number(),
  height: z.number(),
  frames: z.number(),
  durationMs: z.number(),
})
export type ImageOutput = z.infer<typeof imageOutput>
export type ReportOutput = z.infer<typeof reportOutput>
export type VideoOutput = z.infer<typeof videoOutput>

// ---------------------------------------------------------------------------------- inputs

interface Series {
  analysis: MarketAnalysis
  /** For outputs: `params`, `step analyze_market`, `sample`. */
  source: string
}

function isSeriesLike(value: unknown): value is { symbol: string; prices: number[]; source?: unknown } {
  if (!value || typeof value !== 'object') return false
  const v = value as { symbol?: unknown; prices?: unknown }
  return typeof v.symbol === 'string' && Array.isArray(v.prices) && v.prices.length >= 2 &&
    v.prices.every((p) => typeof p === 'number' && Number.isFinite(p))
}

function isBrief(value: unknown): value is ResearchBrief {
  if (!value || typeof value !== 'object') return false
  const v = value as { title?: unknown; findings?: unknown }
  return typeof v.title === 'string' && Array.isArray(v.findings) && v.findings.every((f) => typeof f === 'string')
}

/** The price series to work on, and where it came from (see the header). */
export function resolveSeries(given: z.infer<typeof data> | undefined, ctx: Pick<ActionContext, 'previous' | 'steps'>): Series {
  if (given?.prices) {
    const symbol = given.symbol ?? 'series'
    return { analysis: analyzeSeries(symbol, given.prices, given.source === 'sample' ? 'sample' : 'input'), source: 'params' }
  }
  const wanted = given?.symbol?.toUpperCase()
  const matches = (v: unknown): v is { symbol: string; prices: number[]; source?: unknown } =>
    isSeriesLike(v) && (!wanted || v.symbol.toUpperCase() === wanted)
  const entries = Object.entries(ctx.steps)
  const found = matches(ctx.previous)
    ? entries.find(([, v]) => v === ctx.previous) ?? ['previous', ctx.previous]
    : [...entries].reverse().find(([, v]) => matches(v))
  if (found) {
    const v = found[1] as { symbol: string; prices: number[]; source?: unknown }
    return { analysis: analyzeSeries(v.symbol, v.prices, v.source === 'sample' ? 'sample' : 'input'), source: `step ${found[0]}` }
  }
  const symbol = wanted ?? 'BTC'
  const sample = sampleSeries(symbol)
  if (!sample) {
    throw new NonRetryableError(
      `no prices: give data.prices, run an analysis before this step, or name a sample symbol (${SAMPLE_SYMBOLS.join(', ')}) in data.symbol`,
    )
  }
  return { analysis: analyzeSeries(symbol, sample, 'sample'), source: 'sample' }
}

// ---------------------------------------------------------------------------------- helpers

/** Lets the journal commit (and subscribers see) what was recorded before the next CPU-bound stage. */
const yieldToEngine = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A file name from a title: "BTC trend" → "btc-trend". */
export function slug(text: string, fallback = 'chart'): string {
  const s = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60).replace(/-+$/, '')
  return s || fallback
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`
const signed = (pct: number) => `${pct > 0 ? '+' : ''}${pct.toFixed(2)}%`
const subtitleOf = (a: MarketAnalysis) =>
  `${a.symbol} · ${a.points} points · ${signed(a.changePct)} · trend ${a.trend}${a.source === 'sample' ? ' · sample data' : ''}`

function describeSource(series: Series): string {
  const a = series.analysis
  return `${a.points} ${a.symbol} prices from ${series.source}${a.source === 'sample' ? ' (synthetic sample data)' : ''}`
}

async function makeImage(input: { prompt?: string; data?: z.infer<typeof data> }, ctx: ActionContext): Promise<ImageOutput> {
  const series = resolveSeries(input.data, ctx)
  const a = series.analysis
  const title = input.prompt ?? `${a.symbol} price`
  ctx.progress(0.1, `using ${describeSource(series)}`)
  await yieldToEngine()

  const svg = buildChartSvg(a.prices, { title, subtitle: subtitleOf(a), width: PNG_WIDTH, height: PNG_HEIGHT })
  ctx.progress(0.3, `chart laid out as SVG (${kb(svg.length)})`)
  await yieldToEngine()
  ctx.signal.throwIfAborted()

  const textRendered = fontsAvailable()
  if (!textRendered) ctx.log('no fonts on this machine: the PNG is drawn without text; the SVG artifact has every label')
  const png = renderPng(svg, { width: PNG_WIDTH })
  const size = pngSize(png.png)
  ctx.progress(0.8, `rendered a ${size.width}×${size.height} PNG (${kb(png.png.length)})`)
  await yieldToEngine()
  ctx.signal.throwIfAborted()

  const name = slug(title)
  const pngFile = ctx.artifact({ name: `${name}.png`, mimeType: 'image/png', data: png.png })
  const svgFile = ctx.artifact({ name: `${name}.svg`, mimeType: 'image/svg+xml', data: svg })
  ctx.progress(1, `stored ${pngFile.name} and ${svgFile.name}`)
  return {
    type: 'image', title, symbol: a.symbol, points: a.points, source: series.source,
    width: size.width, height: size.height, textRendered, artifact: pngFile, artifacts: [pngFile, svgFile],
  }
}

async function makeReport(input: { prompt?: string; data?: z.infer<typeof data> }, ctx: ActionContext): Promise<ReportOutput> {
  const series = resolveSeries(input.data, ctx)
  const a = series.analysis
  const brief = Object.values(ctx.steps).find(isBrief)
  const title = input.prompt ?? `${a.symbol} market report`
  ctx.progress(0.1, `using ${describeSource(series)}${brief ? ' and the research brief' : ''}`)
  await yieldToEngine()

  const report = { title, analysis: a, brief, origin: series.source === 'sample' ? 'the sample data' : series.source, runId: ctx.runId, stepId: ctx.stepId }
  const markdown = buildMarkdownReport(report)
  ctx.progress(0.4, `wrote the Markdown report (${markdown.split('\n').length} lines)`)
  await yieldToEngine()
  const html = buildHtmlReport(report)
  ctx.progress(0.7, `wrote the HTML version with the chart inline (${kb(html.length)})`)
  await yieldToEngine()
  ctx.signal.throwIfAborted()

  const name = slug(title, 'report')
  const md = ctx.artifact({ name: `${name}.md`, mimeType: 'text/markdown; charset=utf-8', data: markdown })
  const page = ctx.artifact({ name: `${name}.html`, mimeType: 'text/html; charset=utf-8', data: html })
  ctx.progress(1, `stored ${md.name} and ${page.name}`)
  return {
    type: 'report', title, symbol: a.symbol, points: a.points, source: series.source,
    sections: markdown.split('\n').filter((l) => l.startsWith('## ')).map((l) => l.slice(3)),
    artifact: md, artifacts: [md, page],
  }
}

async function makeVideo(input: { prompt?: string; data?: z.infer<typeof data>; frames: number }, ctx: ActionContext): Promise<VideoOutput> {
  const series = resolveSeries(input.data, ctx)
  const a = series.analysis
  const title = input.prompt ?? `${a.symbol} price`
  const subtitle = subtitleOf(a)
  const count = input.frames
  ctx.progress(0.05, `using ${describeSource(series)}; ${count} frames`)
  await yieldToEngine()

  // Frame i shows the line up to an evenly spaced point; the last frame is the whole chart, held.
  const frames = Array.from({ length: count }, (_, i) => ({
    svg: buildChartSvg(a.prices, {
      title, subtitle, width: PNG_WIDTH, height: PNG_HEIGHT,
      reveal: count === 1 ? a.prices.length : 2 + ((a.prices.length - 2) * i) / (count - 1),
    }),
    delayMs: i === count - 1 ? 2000 : 100,
  }))
  const gif = await encodeGif(frames, {
    width: GIF_WIDTH,
    onFrame: async (i, total) => {
      ctx.progress(0.05 + (0.9 * (i + 1)) / total, `frame ${i + 1}/${total}`)
      await yieldToEngine()
      ctx.signal.throwIfAborted()
    },
  })
  const file = ctx.artifact({ name: `${slug(title)}.gif`, mimeType: 'image/gif', data: gif.gif })
  ctx.progress(1, `stored ${file.name} (${kb(file.size)})`)
  return {
    type: 'video', title, symbol: a.symbol, points: a.points, source: series.source,
    width: gif.width, height: gif.height, frames: gif.frames, durationMs: frames.reduce((t, f) => t + f.delayMs, 0),
    artifact: file, artifacts: [file],
  }
}

// ---------------------------------------------------------------------------------- factory

export const mediaFactory = defineFactory({
  name: 'media',
  description: 'Charts (PNG), animated charts (GIF) and reports (Markdown, HTML) of a price series, made offline.',
  // Rendering is CPU work on the server's thread: two at a time keeps the API responsive.
  concurrency: 2,
  actions: {
    create_media: {
      description: "The seed's action: type 'image' draws a PNG line chart; type 'report' writes a Markdown and an HTML report.",
      input: z.object({ type: z.enum(['image', 'report']), prompt: prompt.optional(), data: data.optional() }),
      output: z.discriminatedUnion('type', [imageOutput, reportOutput]),
      timeoutMs: 60_000,
      run: async (input: { type: 'image' | 'report'; prompt?: string; data?: z.infer<typeof data> }, ctx) =>
        input.type === 'image' ? makeImage(input, ctx) : makeReport(input, ctx),
    },
    create_image: {
      description: 'A PNG line chart of the price series (and the same chart as SVG).',
      input: z.object({ prompt: prompt.optional(), data: data.optional() }),
      output: imageOutput,
      timeoutMs: 60_000,
      run: (input: { prompt?: string; data?: z.infer<typeof data> }, ctx) => makeImage(input, ctx),
    },
    create_video: {
      description: 'An animated GIF of the chart drawing itself, one progress event per frame.',
      input: z.object({ prompt: prompt.optional(), data: data.optional(), frames: z.number().int().min(1).max(120).default(24) }),
      output: videoOutput,
      timeoutMs: 120_000,
      run: (input: { prompt?: string; data?: z.infer<typeof data>; frames: number }, ctx) => makeVideo(input, ctx),
    },
  },
})
