// Summarises a V8 .cpuprofile: the functions with the most self time (and total time), with file:line.
// Usage: npx tsx bench/tools/top-profile.ts FILE.cpuprofile [N] [filter]
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount: number
  children?: number[]
}

const [file, count = '30', filter = ''] = process.argv.slice(2)
const profile = JSON.parse(readFileSync(file!, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] }
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const total = profile.nodes.reduce((s, n) => s + n.hitCount, 0)
// tsx compiles each file to one minified line with a source map and caches it in $TMPDIR/tsx-<uid>:
// map profile positions back to the TypeScript line through those maps.
interface Cached { code: string; segments: [number, number][] }
const cache = new Map<string, Cached[]>()
for (const dir of readdirSync(tmpdir()).filter((d) => d.startsWith('tsx-'))) {
  for (const f of readdirSync(join(tmpdir(), dir))) {
    try {
      const entry = JSON.parse(readFileSync(join(tmpdir(), dir, f), 'utf8')) as { code: string; map?: { mappings: string; sources: string[] } }
      const source = entry.map?.sources?.[0]
      if (!source) continue
      const list = cache.get(source) ?? []
      list.push({ code: entry.code, segments: decodeFirstLine(entry.map!.mappings) })
      cache.set(source, list)
    } catch {}
  }
}
function decodeFirstLine(mappings: string): [number, number][] {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const out: [number, number][] = []
  let col = 0, line = 0
  for (const seg of mappings.split(';')[0]!.split(',')) {
    if (!seg) continue
    const values: number[] = []
    let value = 0, shift = 0
    for (const ch of seg) {
      const digit = chars.indexOf(ch)
      value += (digit & 31) << shift
      if (digit & 32) shift += 5
      else {
        values.push(value & 1 ? -(value >>> 1) : value >>> 1)
        value = 0
        shift = 0
      }
    }
    col += values[0]!
    if (values.length >= 4) line += values[2]!
    out.push([col, line])
  }
  return out
}
function originalLine(path: string, fn: string, line: number, column: number): number {
  if (line !== 0) return line + 1
  const versions = cache.get(path)
  if (!versions) return line + 1
  const v = versions.find((c) => !fn || c.code.slice(column, column + fn.length + 40).includes(fn)) ?? versions[versions.length - 1]!
  let best: [number, number] | undefined
  for (const s of v.segments) if (s[0] <= column) best = s
  return (best?.[1] ?? 0) + 1
}
const key = (n: Node) => {
  const path = n.callFrame.url.replace(/^file:\/\//, '')
  const url = path.replace(process.cwd() + '/', '')
  return `${n.callFrame.functionName || '(anonymous)'} ${url}:${originalLine(path, n.callFrame.functionName, n.callFrame.lineNumber, n.callFrame.columnNumber)}`
}
const self = new Map<string, number>()
const inclusive = new Map<string, number>()
for (const n of profile.nodes) {
  if (!n.hitCount) continue
  const k = key(n)
  self.set(k, (self.get(k) ?? 0) + n.hitCount)
  // Inclusive: count each distinct function once per sample stack.
  const seen = new Set<string>()
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
    const kk = key(byId.get(id)!)
    if (seen.has(kk)) continue
    seen.add(kk)
    inclusive.set(kk, (inclusive.get(kk) ?? 0) + n.hitCount)
  }
}
const pct = (v: number) => ((v / total) * 100).toFixed(1).padStart(5) + '%'
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (of ${total} samples)`)
  for (const [k, v] of [...m].filter(([k]) => k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, Number(count))) console.log(`${pct(v)}  ${k}`)
}
show('self time', self)
show('total time', inclusive)
