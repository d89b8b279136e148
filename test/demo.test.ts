// The out-of-the-box experience: `conveyor serve` with the example config, the seed's
// content_pipeline run through GraphQL with the very operations GraphiQL opens with, its events
// streamed over graphql-ws, and the chart it drew downloaded. Then the example media factory through
// the library (the parallel media_bundle template), its pure rendering helpers, and the GraphiQL
// examples against the schema.
import { afterAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import type { OperationDefinitionNode } from 'graphql'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { orchestratorFromConfig, type RunEvent } from '../src/index.ts'
import { schema } from '../src/schema/index.ts'
import { GRAPHIQL_EXAMPLES } from '../src/graphiql-examples.ts'
import exampleConfig from '../examples/conveyor.config.ts'
import { buildChartSvg, chartGeometry, CHART_COLORS, gifInfo, pngSize } from '../examples/factories/chart.ts'
import { renderPng } from '../examples/factories/render.ts'
import { GIF_HEIGHT, GIF_WIDTH, PNG_HEIGHT, PNG_WIDTH } from '../examples/factories/media.ts'

// The schema is built by Pothos, which Node loads with graphql's CommonJS build; vitest would give
// this file the ES module build, and graphql refuses a schema from "another realm". Require it.
const { parse, validate } = createRequire(import.meta.url)('graphql') as typeof import('graphql')

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SLOW = 120_000
const dirs: string[] = []
const children: ChildProcess[] = []
afterAll(() => {
  // A test that timed out never reached its own clean-up: leave no server behind.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-demo-'))
  dirs.push(dir)
  return dir
}

/** The sample series and the indicators the test computes on its own, to check analyze_market. */
const SAMPLE = JSON.parse(readFileSync(join(ROOT, 'examples/data/sample-prices.json'), 'utf8')) as { series: Record<string, number[]> }
function expected(symbol: string) {
  const prices = SAMPLE.series[symbol]!
  const lastSeven = prices.slice(prices.length - 7)
  return {
    prices,
    changePct: (prices[prices.length - 1]! / prices[0]! - 1) * 100,
    sma7: lastSeven.reduce((a, b) => a + b, 0) / 7,
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
const TERMINAL = new Set(['RUN_SUCCEEDED', 'RUN_FAILED', 'RUN_CANCELLED', 'RUN_TIMED_OUT', 'RUN_ROLLED_BACK'])

describe('npm start, then the content_pipeline from GraphiQL', () => {
  it('runs the seed pipeline over GraphQL, streams its progress over graphql-ws, serves the chart, and stops cleanly on SIGTERM', async () => {
    const db = join(tempDir(), 'conveyor.db')
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONVEYOR_')))
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--db', db], {
      cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal })),
    )
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout })
        lines.on('line', (line) => {
          if (!line.startsWith('{')) return
          const log = JSON.parse(line) as { msg?: string; url?: string }
          if (log.msg === 'conveyor listening') resolve(log.url!)
        })
        void exited.then(({ code }) => reject(new Error(`server exited (${code}) before listening:\n${stderr}`)))
      })
      expect(new URL(url).hostname).toBe('127.0.0.1')

      // Each operation is taken from the document GraphiQL opens with, by name.
      const graphql = async <T>(operationName: string, variables?: Record<string, unknown>): Promise<T> => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
          body: JSON.stringify({ query: GRAPHIQL_EXAMPLES, operationName, variables }),
        })
        const body = (await res.json()) as { data?: T; errors?: unknown[] }
        expect(body.errors, `${operationName}: ${JSON.stringify(body.errors)}`).toBeUndefined()
        return body.data!
      }

      const created = await graphql<{ createWorkflowFromTemplate: { __typename: string; workflow: { id: string; name: string } } }>('ContentPipeline')
      expect(created.createWorkflowFromTemplate.__typename).toBe('CreateWorkflowSuccess')
      expect(created.createWorkflowFromTemplate.workflow.name).toBe('content_pipeline')
      const workflowId = created.createWorkflowFromTemplate.workflow.id

      const executed = await graphql<{ executeWorkflow: { __typename: string; run: { id: string } } }>('Execute', { workflowId })
      expect(executed.executeWorkflow.__typename).toBe('ExecuteWorkflowSuccess')
      const runId = executed.executeWorkflow.run.id

      // runEvents replays the run's log from the start and then tails it: nothing is missed even
      // though the subscription opens after the run has started.
      type Event = { cursor: string; type: string; stepId: string | null; status: string | null; payload: Record<string, unknown> | null }
      const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 })
      const events: Event[] = []
      try {
        await new Promise<void>((resolve, reject) => {
          const stop = client.subscribe<{ runEvents: Event }>(
            { query: GRAPHIQL_EXAMPLES, operationName: 'Watch', variables: { runId } },
            {
              next: (value) => {
                if (value.errors) return reject(new Error(JSON.stringify(value.errors)))
                events.push(value.data!.runEvents)
                if (TERMINAL.has(value.data!.runEvents.type)) {
                  stop()
                  resolve()
                }
              },
              error: reject,
              complete: () => resolve(),
            },
          )
        })
      } finally {
        await client.dispose()
      }
      expect(events.at(-1)?.type, JSON.stringify(events.filter((e) => e.type.endsWith('FAILED')))).toBe('RUN_SUCCEEDED')
      expect(new Set(events.map((e) => e.cursor)).size, 'no duplicates').toBe(events.length)

      // The media step's progress came through the subscription, in order, between its start and end.
      const index = (type: string, stepId: string) => events.findIndex((e) => e.type === type && e.stepId === stepId)
      const progress = events.filter((e) => e.type === 'STEP_PROGRESS' && e.stepId === 'create_media')
      expect(progress.length).toBeGreaterThanOrEqual(3)
      const fractions = progress.map((e) => e.payload!.fraction as number)
      expect(fractions).toEqual([...fractions].sort((a, b) => a - b))
      expect(fractions.at(-1)).toBe(1)
      expect(progress.every((e) => typeof e.payload!.message === 'string')).toBe(true)
      expect(index('STEP_STARTED', 'create_media')).toBeGreaterThan(index('STEP_SUCCEEDED', 'analyze_market'))
      expect(events.indexOf(progress[0]!)).toBeGreaterThan(index('STEP_STARTED', 'create_media'))
      expect(events.indexOf(progress.at(-1)!)).toBeLessThan(index('STEP_SUCCEEDED', 'create_media'))

      const { run } = await graphql<{
        run: {
          status: string
          artifacts: { name: string; mimeType: string; size: number; url: string }[]
          steps: { stepId: string; status: string; output: Record<string, unknown> }[]
        }
      }>('Artifacts', { runId })
      expect(run.status).toBe('SUCCEEDED')
      const [analysis, media] = run.steps
      expect(analysis!.stepId).toBe('analyze_market')
      const btc = expected('BTC')
      expect(analysis!.output.symbol).toBe('BTC')
      expect(analysis!.output.changePct as number).toBeCloseTo(btc.changePct, 3)
      expect(analysis!.output.sma7 as number).toBeCloseTo(btc.sma7, 3)
      expect(analysis!.output.prices).toEqual(btc.prices)
      expect(media).toMatchObject({ stepId: 'create_media', status: 'SUCCEEDED', output: { type: 'image', title: 'BTC trend', width: PNG_WIDTH, height: PNG_HEIGHT } })

      // The chart: listed on the run, downloadable, a real PNG of the size the step reported.
      const png = run.artifacts.find((a) => a.mimeType === 'image/png')
      expect(png, JSON.stringify(run.artifacts)).toBeDefined()
      expect(png!.name).toBe('btc-trend.png')
      const download = await fetch(new URL(url).origin + png!.url)
      expect(download.status).toBe(200)
      expect(download.headers.get('content-type')).toBe('image/png')
      const bytes = new Uint8Array(await download.arrayBuffer())
      expect(bytes.length).toBe(png!.size)
      expect([...bytes.subarray(0, 8)]).toEqual(PNG_SIGNATURE)
      expect(pngSize(bytes)).toEqual({ width: PNG_WIDTH, height: PNG_HEIGHT })
      // The SVG version is there too, with its labels as text.
      const svg = run.artifacts.find((a) => a.mimeType === 'image/svg+xml')
      const svgText = await (await fetch(new URL(url).origin + svg!.url)).text()
      expect(svgText).toContain('>BTC trend</text>')
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    }
    expect(await exited, stderr).toEqual({ code: 0, signal: null })
  }, SLOW)
})

describe('the media factory through the library', () => {
  it('media_bundle: chart, animation and brief in parallel after the analysis, then a report; every file stored', async () => {
    const orchestrator = orchestratorFromConfig(exampleConfig, { database: ':memory:', artifactsDir: tempDir() })
    try {
      const workflowId = await orchestrator.workflows.createFromTemplate('media_bundle', { params: { symbol: 'ETH' } })
      const result = await orchestrator.executeWorkflow(workflowId)
      expect(result.status, JSON.stringify(result)).toBe('SUCCEEDED')
      expect(Object.keys(result.steps)).toEqual(['analyze', 'chart', 'animation', 'brief', 'report'])

      // Branches: the chart and the animation both started before either finished.
      const history: RunEvent[] = await orchestrator.getHistory(result.runId)
      const seq = (type: string, stepId: string) => history.find((e) => e.type === type && e.stepId === stepId)!.seq
      expect(seq('STEP_STARTED', 'chart')).toBeGreaterThan(seq('STEP_SUCCEEDED', 'analyze'))
      expect(seq('STEP_STARTED', 'animation')).toBeGreaterThan(seq('STEP_SUCCEEDED', 'analyze'))
      expect(Math.max(seq('STEP_STARTED', 'chart'), seq('STEP_STARTED', 'animation')))
        .toBeLessThan(Math.min(seq('STEP_SUCCEEDED', 'chart'), seq('STEP_SUCCEEDED', 'animation')))
      expect(seq('STEP_STARTED', 'report')).toBeGreaterThan(seq('STEP_SUCCEEDED', 'brief'))
      // One progress event per frame of the animation, plus the first and the last.
      const frames = history.filter((e) => e.type === 'STEP_PROGRESS' && e.stepId === 'animation')
      expect(frames.length).toBe(24 + 2)

      const artifacts = orchestrator.catalog.artifactsByRunIds([result.runId])
      const byStep = (stepId: string) => artifacts.filter((a) => a.stepId === stepId)
      expect(byStep('chart').map((a) => a.mimeType)).toEqual(['image/png', 'image/svg+xml'])
      expect(byStep('animation').map((a) => a.mimeType)).toEqual(['image/gif'])
      expect(byStep('report').map((a) => a.mimeType)).toEqual(['text/markdown; charset=utf-8', 'text/html; charset=utf-8'])
      expect(result.output).toEqual({
        chart: expect.objectContaining({ name: 'eth-last-60-closes.png' }),
        animation: expect.objectContaining({ name: 'eth-trend.gif' }),
        report: expect.objectContaining({ name: 'eth-market-report.md' }),
      })

      const gif = new Uint8Array(readFileSync(byStep('animation')[0]!.path))
      expect(Buffer.from(gif.subarray(0, 6)).toString('latin1')).toBe('GIF89a')
      const info = gifInfo(gif)
      expect(info.frames).toBeGreaterThan(1)
      expect(info).toEqual({ version: 'GIF89a', width: GIF_WIDTH, height: GIF_HEIGHT, frames: 24 })
      expect(result.steps.animation!.output).toMatchObject({ frames: 24, width: GIF_WIDTH, height: GIF_HEIGHT })

      const chart = new Uint8Array(readFileSync(byStep('chart')[0]!.path))
      expect(pngSize(chart)).toEqual({ width: PNG_WIDTH, height: PNG_HEIGHT })

      const eth = expected('ETH')
      const markdown = readFileSync(byStep('report')[0]!.path, 'utf8')
      expect(markdown.startsWith('# ETH market report\n')).toBe(true)
      expect(markdown).toContain('| Symbol | ETH |')
      expect(markdown).toContain(`| Change | ${eth.changePct.toFixed(2)}% |`)
      expect(markdown).toContain('SAMPLE DATA') // the sample series is synthetic, and the report says so
      expect(markdown).toContain('## Research brief: ETH') // the brief, made in parallel, is folded in
      const html = readFileSync(byStep('report')[1]!.path, 'utf8')
      expect(html).toMatch(/^<!doctype html>/)
      expect(html).toContain('<svg')
    } finally {
      await orchestrator.close()
    }
  }, SLOW)

  it('fails clearly, without retrying, when there is no series to draw', async () => {
    const orchestrator = orchestratorFromConfig(exampleConfig, { database: ':memory:', artifactsDir: tempDir() })
    try {
      const id = await orchestrator.createWorkflow('nothing', { steps: [{ factory: 'media', action: 'create_image', params: { data: { symbol: 'NOPE' } } }] })
      const result = await orchestrator.executeWorkflow(id)
      expect(result.status).toBe('FAILED')
      expect(result.steps.create_image!.error).toMatch(/no prices: .*BTC, ETH, SOL/)
      expect(result.steps.create_image!.attempts).toBe(1)
    } finally {
      await orchestrator.close()
    }
  })
})

describe('chart rendering', () => {
  it('draws the chart without any font: a PNG of the right size with the price line where the geometry says', () => {
    const prices = expected('SOL').prices
    // Without the moving average, which crosses the price line.
    const svg = buildChartSvg(prices, { title: '<script>alert(1)</script> & more', smaWindow: 0 })
    expect(svg).not.toContain('<script>')
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; more')
    const out = renderPng(svg, { width: PNG_WIDTH, systemFonts: false })
    expect(pngSize(out.png)).toEqual({ width: PNG_WIDTH, height: PNG_HEIGHT })
    // Pixels on the line are the price colour: at every point of the series.
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(CHART_COLORS.price.slice(i, i + 2), 16))
    const geometry = chartGeometry(prices)
    const distanceAt = (x: number, y: number) => {
      const at = (y * out.width + x) * 4
      return Math.hypot(out.pixels[at]! - r!, out.pixels[at + 1]! - g!, out.pixels[at + 2]! - b!)
    }
    geometry.points.forEach((p, i) => {
      // Markers for the min and max sit on top of the line in their own colours.
      if (i === geometry.minIndex || i === geometry.maxIndex) return
      // The closest of the pixels around the point (anti-aliasing blends the line's edges).
      let best = Infinity
      for (const dx of [-1, 0, 1]) for (const dy of [-1, 0, 1]) best = Math.min(best, distanceAt(Math.floor(p.x) + dx, Math.floor(p.y) + dy))
      expect(best, `point ${i} at ${p.x},${p.y}`).toBeLessThan(40)
    })
    // And the background is white: the top-left corner, away from everything.
    expect([...out.pixels.subarray(0, 4)]).toEqual([255, 255, 255, 255])
  })

  it('reads PNG and GIF headers, and refuses other bytes', () => {
    expect(() => pngSize(new TextEncoder().encode('GIF89a not a png at all'))).toThrow(/not a PNG/)
    expect(() => gifInfo(new Uint8Array(PNG_SIGNATURE))).toThrow(/not a GIF/)
  })
})

describe('GraphiQL examples', () => {
  it('every operation GraphiQL opens with is valid against the schema', () => {
    const document = parse(GRAPHIQL_EXAMPLES)
    expect(validate(schema, document)).toEqual([])
    const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition')
    expect(operations.map((o) => `${o.operation} ${o.name?.value}`)).toEqual([
      'mutation ContentPipeline', 'mutation Execute', 'subscription Watch', 'query Artifacts',
      'mutation MediaBundle', 'query Factories', 'mutation CreateWorkflow', 'query Runs',
    ])
    for (const operation of operations) {
      expect(validate(schema, { ...document, definitions: [operation] }), operation.name?.value).toEqual([])
    }
    expect(GRAPHIQL_EXAMPLES).toContain('template: "content_pipeline"')
  })
})
