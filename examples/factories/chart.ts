// Pure helpers of the media factory: the SVG of a price chart, and readers of the PNG and GIF
// headers it produces. No I/O and no native code here, so tests can use them directly.

export interface ChartOptions {
  title: string
  subtitle?: string
  /** Width and height of the SVG's coordinate system (the PNG is rendered at `width`). */
  width?: number
  height?: number
  /** Draw only the first `reveal` points (animation frames); axes always span the whole series. */
  reveal?: number
  /** Window of the moving average drawn beside the prices; 0 for none. */
  smaWindow?: number
}

export interface ChartGeometry {
  width: number
  height: number
  plot: { left: number; top: number; right: number; bottom: number }
  /** The y axis range (nice round numbers around min and max). */
  yMin: number
  yMax: number
  yTicks: number[]
  /** Pixel coordinates of every price, in order. */
  points: { x: number; y: number }[]
  minIndex: number
  maxIndex: number
}

export const CHART_COLORS = { price: '#2563eb', sma: '#f59e0b', max: '#16a34a', min: '#dc2626', axis: '#334155' } as const
export const FONT_FAMILY = "'DejaVu Sans', 'Liberation Sans', 'Noto Sans', Arial, Helvetica, sans-serif"

const DEFAULT_WIDTH = 800
const DEFAULT_HEIGHT = 450

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)
}

/** Round tick values covering [min, max]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error('ticks need finite bounds')
  if (min === max) {
    const pad = Math.abs(min) * 0.05 || 1
    min -= pad
    max += pad
  }
  const raw = (max - min) / Math.max(1, count)
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power
  const first = Math.floor(min / step) * step
  const ticks: number[] = []
  for (let v = first; v < max + step * 1e-9 || ticks.length < 2; v += step) ticks.push(Number(v.toPrecision(12)))
  if (ticks.at(-1)! < max) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)))
  return ticks
}

/** A tick label with as many decimals as the tick step needs: 65000 → "65,000"; 2.5 → "2.5". */
export function formatTick(value: number, step: number): string {
  const digits = Math.max(0, Math.min(8, -Math.floor(Math.log10(Math.abs(step) || 1) + 1e-9)))
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** 74677.93 → "74,677.93"; 3024.4 → "3,024.40"; 0.51234 → "0.5123". */
export function formatPrice(value: number): string {
  const digits = Math.abs(value) >= 1 ? 2 : 4
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Trailing moving average; null until `window` points exist. */
export function movingAverage(values: number[], window: number): (number | null)[] {
  let sum = 0
  return values.map((v, i) => {
    sum += v
    if (i >= window) sum -= values[i - window]!
    return i >= window - 1 ? sum / window : null
  })
}

export function chartGeometry(prices: number[], size: { width?: number; height?: number } = {}): ChartGeometry {
  if (prices.length < 2) throw new Error('a chart needs at least 2 prices')
  if (!prices.every(Number.isFinite)) throw new Error('prices must be finite numbers')
  const width = size.width ?? DEFAULT_WIDTH
  const height = size.height ?? DEFAULT_HEIGHT
  const plot = { left: 92, top: 78, right: width - 28, bottom: height - 52 }
  let minIndex = 0
  let maxIndex = 0
  prices.forEach((p, i) => {
    if (p < prices[minIndex]!) minIndex = i
    if (p > prices[maxIndex]!) maxIndex = i
  })
  // Headroom above the maximum and below the minimum, so their labels fit inside the plot.
  const pad = (prices[maxIndex]! - prices[minIndex]!) * 0.08
  const yTicks = niceTicks(prices[minIndex]! - pad, prices[maxIndex]! + pad, 5)
  const yMin = yTicks[0]!
  const yMax = yTicks.at(-1)!
  const x = (i: number) => plot.left + ((plot.right - plot.left) * i) / (prices.length - 1)
  const y = (v: number) => plot.bottom - ((plot.bottom - plot.top) * (v - yMin)) / (yMax - yMin)
  return { width, height, plot, yMin, yMax, yTicks, points: prices.map((p, i) => ({ x: x(i), y: y(p) })), minIndex, maxIndex }
}

const f = (n: number) => (Math.round(n * 100) / 100).toString()
const path = (pts: { x: number; y: number }[]) => pts.map((p, i) => `${i ? 'L' : 'M'}${f(p.x)} ${f(p.y)}`).join(' ')

/**
 * A line chart of a price series as an SVG document: title, subtitle, y axis with round ticks and
 * grid, x axis with point numbers, the price line over a shaded area, a moving average, and the
 * minimum and maximum marked and labelled.
 */
export function buildChartSvg(prices: number[], options: ChartOptions): string {
  const g = chartGeometry(prices, options)
  const { width, height, plot } = g
  const reveal = Math.max(1, Math.min(prices.length, Math.round(options.reveal ?? prices.length)))
  const shown = g.points.slice(0, reveal)
  const yOf = (v: number) => plot.bottom - ((plot.bottom - plot.top) * (v - g.yMin)) / (g.yMax - g.yMin)
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT_FAMILY)}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${plot.left}" y="34" font-size="22" font-weight="bold" fill="#0f172a">${escapeXml(options.title)}</text>`,
  )
  if (options.subtitle) out.push(`<text x="${plot.left}" y="58" font-size="13" fill="#475569">${escapeXml(options.subtitle)}</text>`)

  // y axis: grid lines and labels at round values
  const step = g.yTicks[1]! - g.yTicks[0]!
  for (const tick of g.yTicks) {
    const y = f(yOf(tick))
    out.push(
      `<line x1="${plot.left}" y1="${y}" x2="${plot.right}" y2="${y}" stroke="#e2e8f0" stroke-width="1"/>`,
      `<text x="${plot.left - 8}" y="${y}" dy="4" font-size="11" text-anchor="end" fill="#475569">${escapeXml(formatTick(tick, step))}</text>`,
    )
  }
  // x axis: point numbers (1-based) at about six positions
  const n = prices.length
  const every = Math.max(1, Math.ceil((n - 1) / 6))
  for (let i = 0; i < n; i += every) {
    const x = f(g.points[i]!.x)
    out.push(
      `<line x1="${x}" y1="${plot.bottom}" x2="${x}" y2="${plot.bottom + 5}" stroke="${CHART_COLORS.axis}" stroke-width="1"/>`,
      `<text x="${x}" y="${plot.bottom + 19}" font-size="11" text-anchor="middle" fill="#475569">${i + 1}</text>`,
    )
  }
  out.push(
    `<line x1="${plot.left}" y1="${plot.top}" x2="${plot.left}" y2="${plot.bottom}" stroke="${CHART_COLORS.axis}" stroke-width="1.5"/>`,
    `<line x1="${plot.left}" y1="${plot.bottom}" x2="${plot.right}" y2="${plot.bottom}" stroke="${CHART_COLORS.axis}" stroke-width="1.5"/>`,
    `<text x="${f((plot.left + plot.right) / 2)}" y="${height - 12}" font-size="12" text-anchor="middle" fill="#334155">point</text>`,
    `<text x="18" y="${f((plot.top + plot.bottom) / 2)}" font-size="12" text-anchor="middle" fill="#334155" transform="rotate(-90 18 ${f((plot.top + plot.bottom) / 2)})">price</text>`,
  )

  // the series: shaded area, price line, moving average
  if (shown.length >= 2) {
    out.push(
      `<path d="${path(shown)} L${f(shown.at(-1)!.x)} ${plot.bottom} L${f(shown[0]!.x)} ${plot.bottom} Z" fill="${CHART_COLORS.price}" fill-opacity="0.12"/>`,
      `<path d="${path(shown)}" fill="none" stroke="${CHART_COLORS.price}" stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>`,
    )
  }
  const window = options.smaWindow ?? 7
  if (window > 1 && n > window) {
    const sma = movingAverage(prices, window)
      .map((v, i) => (v === null || i >= reveal ? null : { x: g.points[i]!.x, y: yOf(v) }))
      .filter((p): p is { x: number; y: number } => p !== null)
    if (sma.length >= 2) {
      out.push(`<path d="${path(sma)}" fill="none" stroke="${CHART_COLORS.sma}" stroke-width="1.5" stroke-dasharray="5 4"/>`)
    }
    const ly = 54
    out.push(
      `<line x1="${plot.right - 150}" y1="${ly}" x2="${plot.right - 126}" y2="${ly}" stroke="${CHART_COLORS.price}" stroke-width="2.5"/>`,
      `<text x="${plot.right - 120}" y="${ly + 4}" font-size="11" fill="#334155">price</text>`,
      `<line x1="${plot.right - 80}" y1="${ly}" x2="${plot.right - 56}" y2="${ly}" stroke="${CHART_COLORS.sma}" stroke-width="1.5" stroke-dasharray="5 4"/>`,
      `<text x="${plot.right - 50}" y="${ly + 4}" font-size="11" fill="#334155">SMA ${window}</text>`,
    )
  }

  // minimum and maximum, once the line has reached them
  for (const [label, index, color, dy] of [['max', g.maxIndex, CHART_COLORS.max, -10], ['min', g.minIndex, CHART_COLORS.min, 18]] as const) {
    if (index >= reveal) continue
    const p = g.points[index]!
    const anchor = p.x > (plot.left + plot.right) / 2 ? 'end' : 'start'
    const dx = anchor === 'end' ? -6 : 6
    out.push(
      `<circle cx="${f(p.x)}" cy="${f(p.y)}" r="4.5" fill="${color}" stroke="#ffffff" stroke-width="1.5"/>`,
      `<text x="${f(p.x + dx)}" y="${f(p.y + dy)}" font-size="12" font-weight="bold" text-anchor="${anchor}" fill="${color}">${label} ${escapeXml(formatPrice(prices[index]!))}</text>`,
    )
  }
  out.push('</svg>')
  return out.join('\n')
}

// ------------------------------------------------------------------------------ binary headers

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const

/** Width and height from a PNG's IHDR chunk (which must come first, right after the signature). */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  if (bytes.length < 24 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG: bad signature')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const type = String.fromCharCode(...bytes.subarray(12, 16))
  if (view.getUint32(8) !== 13 || type !== 'IHDR') throw new Error('not a PNG: IHDR is not the first chunk')
  return { width: view.getUint32(16), height: view.getUint32(20) }
}

/** Screen size and number of frames (image descriptors) of a GIF, walking its block structure. */
export function gifInfo(bytes: Uint8Array): { version: string; width: number; height: number; frames: number } {
  const version = String.fromCharCode(...bytes.subarray(0, 6))
  if (version !== 'GIF89a' && version !== 'GIF87a') throw new Error('not a GIF: bad header')
  const u16 = (at: number) => bytes[at]! | (bytes[at + 1]! << 8)
  const width = u16(6)
  const height = u16(8)
  let at = 13
  const table = (packed: number) => (packed & 0x80 ? 3 * 2 ** ((packed & 7) + 1) : 0)
  at += table(bytes[10]!)
  const skipSubBlocks = () => {
    for (;;) {
      if (at >= bytes.length) throw new Error('not a GIF: truncated data')
      const size = bytes[at++]!
      if (size === 0) return
      at += size
    }
  }
  let frames = 0
  for (;;) {
    const block = bytes[at++]
    if (block === 0x3b) break // trailer
    if (block === 0x21) {
      at++ // extension label
      skipSubBlocks()
    } else if (block === 0x2c) {
      frames++
      const packed = bytes[at + 8]!
      at += 9 + table(packed)
      at++ // LZW minimum code size
      skipSubBlocks()
    } else {
      throw new Error(`not a GIF: unexpected block 0x${(block ?? 0).toString(16)} at ${at - 1}`)
    }
  }
  return { version, width, height, frames }
}
