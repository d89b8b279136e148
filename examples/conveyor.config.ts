// The example configuration `npm start` uses: the seed's research and media factories and templates
// that run them. Everything works offline: prices come from examples/data/sample-prices.json (a
// synthetic series) unless a run passes its own.
import { defineConfig } from '../src/index.ts'
import { researchFactory } from './factories/research.ts'
import { mediaFactory } from './factories/media.ts'

export default defineConfig({
  factories: { research: researchFactory, media: mediaFactory },
  templates: {
    // The seed's ProjectOrchestrator example. analyze_market has no params of its own, so it gets
    // the template's params (createWorkflowFromTemplate params: { symbol: "ETH" }; default BTC);
    // create_media draws the chart from the analysis before it (ctx.previous).
    content_pipeline: {
      description: 'Analyse a symbol, then draw its price chart (PNG) from the analysis.',
      steps: [
        { factory: 'research', action: 'analyze_market' },
        { factory: 'media', action: 'create_media', params: { type: 'image', prompt: '{{ steps.analyze_market.output.symbol }} trend' } },
      ],
      factories: ['research', 'media'],
      parallel: false,
    },
    market_research_pipeline: {
      description: 'Analyse a symbol, then write a research brief from the analysis.',
      steps: [
        { factory: 'research', action: 'analyze_market' },
        { factory: 'research', action: 'initiate_research' },
      ],
      factories: ['research'],
      parallel: false,
    },
    // Branching and merging: after the analysis, the chart, the animation and the brief run in
    // parallel; the report waits for the brief and folds it in.
    media_bundle: {
      description: 'Analyse a symbol, then in parallel: a chart (PNG), an animated chart (GIF) and a research brief; then a report.',
      steps: [
        { id: 'analyze', factory: 'research', action: 'analyze_market' },
        {
          id: 'chart', factory: 'media', action: 'create_image', dependsOn: ['analyze'],
          params: { prompt: '{{ steps.analyze.output.symbol }}: last {{ steps.analyze.output.points }} closes' },
        },
        {
          id: 'animation', factory: 'media', action: 'create_video', dependsOn: ['analyze'],
          params: { prompt: '{{ steps.analyze.output.symbol }} trend', frames: 24 },
        },
        { id: 'brief', factory: 'research', action: 'initiate_research', dependsOn: ['analyze'], params: {} },
        {
          id: 'report', factory: 'media', action: 'create_media', dependsOn: ['brief'],
          params: { type: 'report', prompt: '{{ steps.analyze.output.symbol }} market report' },
        },
      ],
      factories: ['research', 'media'],
      parallel: true,
      output: {
        chart: '{{ steps.chart.output.artifact }}',
        animation: '{{ steps.animation.output.artifact }}',
        report: '{{ steps.report.output.artifact }}',
      },
    },
  },
})
