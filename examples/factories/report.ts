// Pure builders of the media factory's report: Markdown and a self-contained HTML page (with the
// chart inline as SVG) summarising a market analysis and, when the run has one, a research brief.
import type { MarketAnalysis } from './research.ts'
import { buildChartSvg, escapeXml, formatPrice } from './chart.ts'

/** The parts of research.initiate_research's output a report uses. */
export interface ResearchBrief {
  title: string
  findings: string[]
  questions?: string[]
}

export interface ReportInput {
  title: string
  analysis: MarketAnalysis
  brief?: ResearchBrief
  /** Where the prices came from, for the footer: `step analyze_market`, `params`, `sample data`. */
  origin: string
  runId: string
  stepId: string
}

const signed = (pct: number) => `${pct > 0 ? '+' : ''}${pct.toFixed(2)}%`

export const SAMPLE_NOTE = 'SAMPLE DATA: the prices are a synthetic series shipped with the Conveyor examples, not market data.'

/** One paragraph in words: direction, range, where the last close sits against its averages. */
export function summaryParagraph(a: MarketAnalysis): string {
  const verb = a.trend === 'flat' ? 'was flat' : a.changePct > 0 ? 'rose' : 'fell'
  const parts = [
    `${a.symbol} ${verb} (${signed(a.changePct)}) over ${a.points} points, from ${formatPrice(a.first)} to ${formatPrice(a.last)}, ` +
      `trading between ${formatPrice(a.min)} and ${formatPrice(a.max)}.`,
    `The last close is ${a.last >= a.sma7 ? 'above' : 'below'} its 7-point average (${formatPrice(a.sma7)})` +
      (a.sma30 === null ? '.' : ` and ${a.last >= a.sma30 ? 'above' : 'below'} its 30-point average (${formatPrice(a.sma30)}).`),
    `Daily volatility: ${a.volatilityPct}%.`,
  ]
  return parts.join(' ')
}

function indicatorRows(a: MarketAnalysis): [string, string][] {
  return [
    ['Symbol', a.symbol],
    ['Points', String(a.points)],
    ['First → last', `${formatPrice(a.first)} → ${formatPrice(a.last)}`],
    ['Change', signed(a.changePct)],
    ['Min / max', `${formatPrice(a.min)} / ${formatPrice(a.max)}`],
    ['SMA 7', formatPrice(a.sma7)],
    ['SMA 30', a.sma30 === null ? 'n/a (fewer than 30 points)' : formatPrice(a.sma30)],
    ['Daily volatility', `${a.volatilityPct}%`],
    ['Trend', a.trend],
  ]
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

export function buildMarkdownReport(input: ReportInput): string {
  const { analysis: a, brief } = input
  const lines = [`# ${input.title}`, '']
  if (a.source === 'sample') lines.push(`> ${SAMPLE_NOTE}`, '')
  lines.push(summaryParagraph(a), '', '## Indicators', '', '| indicator | value |', '| --- | --- |')
  for (const [k, v] of indicatorRows(a)) lines.push(`| ${mdCell(k)} | ${mdCell(v)} |`)
  if (brief) {
    lines.push('', `## ${brief.title}`, '')
    for (const f of brief.findings) lines.push(`- ${f}`)
    if (brief.questions?.length) {
      lines.push('', '### Open questions', '')
      for (const q of brief.questions) lines.push(`- ${q}`)
    }
  }
  lines.push('', '---', '', `Made by Conveyor's media factory in run \`${input.runId}\`, step \`${input.stepId}\`; prices from ${input.origin}.`, '')
  return lines.join('\n')
}

export function buildHtmlReport(input: ReportInput): string {
  const { analysis: a, brief } = input
  const e = escapeXml
  const chart = buildChartSvg(a.prices, { title: `${a.symbol} price`, subtitle: `${a.points} points · ${signed(a.changePct)} · trend ${a.trend}` })
  const rows = indicatorRows(a).map(([k, v]) => `<tr><th>${e(k)}</th><td>${e(v)}</td></tr>`).join('\n')
  const briefHtml = brief
    ? `<h2>${e(brief.title)}</h2>\n<ul>${brief.findings.map((f) => `<li>${e(f)}</li>`).join('')}</ul>` +
      (brief.questions?.length ? `\n<h3>Open questions</h3>\n<ul>${brief.questions.map((q) => `<li>${e(q)}</li>`).join('')}</ul>` : '')
    : ''
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${e(input.title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 860px; margin: 2rem auto; padding: 0 1rem; color: #0f172a; }
.note { border-left: 4px solid #f59e0b; background: #fffbeb; padding: .5rem 1rem; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .25rem 1rem .25rem 0; border-bottom: 1px solid #e2e8f0; }
svg { max-width: 100%; height: auto; } footer { color: #64748b; font-size: .85rem; margin-top: 2rem; }
</style>
</head>
<body>
<h1>${e(input.title)}</h1>
${a.source === 'sample' ? `<p class="note">${e(SAMPLE_NOTE)}</p>\n` : ''}<p>${e(summaryParagraph(a))}</p>
${chart}
<h2>Indicators</h2>
<table>
${rows}
</table>
${briefHtml}
<footer>Made by Conveyor's media factory in run <code>${e(input.runId)}</code>, step <code>${e(input.stepId)}</code>; prices from ${e(input.origin)}.</footer>
</body>
</html>
`
}
