// Rasterising the media factory's SVGs: PNG with resvg, animated GIF with gifenc.
//
// Text needs a font, and resvg draws no text without one. A fresh Debian machine may have no fonts
// at all (the slim images have none), so nothing here depends on them: the system's fonts are used
// when there are any, and otherwise the chart is drawn without its labels. `fontsAvailable()`
// tells which case this machine is in, by rendering a glyph and looking at the pixels.
import { createRequire } from 'node:module'
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js'

// gifenc ships CommonJS whose named exports Node's ESM loader cannot see; require gives them all.
interface GifEncoder {
  writeFrame(index: Uint8Array, width: number, height: number, options?: { palette?: number[][]; delay?: number; repeat?: number; first?: boolean }): void
  finish(): void
  bytes(): Uint8Array
}
const gifenc = createRequire(import.meta.url)('gifenc') as {
  GIFEncoder(): GifEncoder
  quantize(rgba: Uint8Array | Uint8ClampedArray, maxColors: number, options?: { format?: 'rgb565' | 'rgb444' | 'rgba4444' }): number[][]
  applyPalette(rgba: Uint8Array | Uint8ClampedArray, palette: number[][], format?: 'rgb565' | 'rgb444' | 'rgba4444'): Uint8Array
}

export interface RenderOptions {
  /** Output width in pixels; the height follows the SVG's aspect ratio. */
  width: number
  /** Use the machine's fonts for text (default true). Without fonts, text is left out. */
  systemFonts?: boolean
}

export interface RenderedPng {
  png: Buffer
  width: number
  height: number
  /** RGBA, row by row. */
  pixels: Buffer
}

function resvgOptions(options: RenderOptions): ResvgRenderOptions {
  return {
    fitTo: { mode: 'width', value: options.width },
    background: '#ffffff',
    font: { loadSystemFonts: options.systemFonts ?? true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    // A missing font is not an error worth a line on stderr for every frame.
    logLevel: 'off',
  }
}

export function renderPng(svg: string, options: RenderOptions): RenderedPng {
  const image = new Resvg(svg, resvgOptions(options)).render()
  return { png: image.asPng(), width: image.width, height: image.height, pixels: image.pixels }
}

let fonts: boolean | undefined
/** Whether resvg finds a font on this machine: renders a glyph and checks that it left ink. */
export function fontsAvailable(): boolean {
  if (fonts === undefined) {
    const probe = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="24"><text x="2" y="20" font-size="20" fill="#000">H</text></svg>'
    const { pixels } = renderPng(probe, { width: 40 })
    fonts = false
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i]! < 128) {
        fonts = true
        break
      }
    }
  }
  return fonts
}

export interface GifFrame {
  svg: string
  /** Hundredths of a second are what GIF stores; this is milliseconds (rounded to 10 ms). */
  delayMs: number
}

/**
 * Encodes frames into a looping GIF. Every frame is rasterised at `width`; one palette, taken from
 * the last frame (the most complete picture), serves all of them, so colours do not flicker.
 * `onFrame` runs after each frame is encoded (progress reporting, cancellation).
 */
export async function encodeGif(
  frames: GifFrame[],
  options: RenderOptions & { onFrame?: (index: number, total: number) => void | Promise<void> },
): Promise<{ gif: Uint8Array; width: number; height: number; frames: number }> {
  if (frames.length === 0) throw new Error('a GIF needs at least one frame')
  const last = renderPng(frames.at(-1)!.svg, options)
  const palette = gifenc.quantize(last.pixels, 256)
  const encoder = gifenc.GIFEncoder()
  for (let i = 0; i < frames.length; i++) {
    const frame = i === frames.length - 1 ? last : renderPng(frames[i]!.svg, options)
    if (frame.width !== last.width || frame.height !== last.height) throw new Error('GIF frames must share one size')
    const index = gifenc.applyPalette(frame.pixels, palette)
    encoder.writeFrame(index, frame.width, frame.height, { palette: i === 0 ? palette : undefined, delay: frames[i]!.delayMs, repeat: 0 })
    await options.onFrame?.(i, frames.length)
  }
  encoder.finish()
  return { gif: encoder.bytes(), width: last.width, height: last.height, frames: frames.length }
}
