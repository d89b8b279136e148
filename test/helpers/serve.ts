// `conveyor serve` as a child process for fault tests: spawn it on a loopback port the OS picks,
// read its JSON log lines, send it signals (SIGKILL, SIGTERM) and wait for its exit. Every process
// started here is remembered so a test's cleanup can kill what is left.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

export class ServerProcess {
  readonly lines: string[] = []
  stderr = ''
  readonly exited: Promise<Exit>
  private waiters: (() => void)[] = []
  private done = false

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line)
      this.notify()
    })
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString()
      this.notify()
    })
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.done = true
        this.notify()
        resolve({ code, signal })
      }),
    )
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  logs(): LogLine[] {
    const out: LogLine[] = []
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue
      try {
        out.push(JSON.parse(l) as LogLine)
      } catch {
        // A line cut by SIGKILL.
      }
    }
    return out
  }

  /** The first log line with this msg; undefined if the process ends (or `timeoutMs` passes) without one. */
  async waitForLog(msg: string, timeoutMs = 60_000): Promise<LogLine | undefined> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const found = this.logs().find((l) => l.msg === msg)
      if (found) return found
      if (this.done || Date.now() > until) return undefined
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 100)
      })
    }
  }

  /** The URL from the 'conveyor listening' line; throws with the output if the process ended first. */
  async url(timeoutMs = 60_000): Promise<string> {
    const line = await this.waitForLog('conveyor listening', timeoutMs)
    if (!line) throw new Error(`server did not start\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`)
    return line.url as string
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal)
  }

  async kill(): Promise<Exit> {
    this.signal('SIGKILL')
    return this.exited
  }
}

const started = new Set<ServerProcess>()

/** `node --import tsx src/cli.ts serve --port 0 --db <db> [--config <config>]`, with extra env vars. */
export function serve(db: string, options: { config?: string; env?: Record<string, string>; args?: string[] } = {}): ServerProcess {
  const args = ['--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--db', db]
  if (options.config) args.push('--config', options.config)
  args.push(...(options.args ?? []))
  return spawnCli(args, options.env)
}

/** Any CLI command, e.g. `['--import', 'tsx', 'src/cli.ts', 'migrate', '--db', db]`. */
export function spawnCli(args: string[], env: Record<string, string> = {}, user?: { uid: number; gid: number }): ServerProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONVEYOR_')))
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...clean, CONVEYOR_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(user ?? {}),
  })
  const proc = new ServerProcess(child)
  started.add(proc)
  void proc.exited.then(() => started.delete(proc))
  return proc
}

/** Kills every server process still running (test cleanup). */
export async function killServers(): Promise<void> {
  await Promise.all([...started].map((p) => p.kill()))
}

export type Json = Record<string, any>

/** POSTs a GraphQL request; returns the parsed body and the HTTP status. */
export async function post(url: string, query: string, variables?: Record<string, unknown>, init: RequestInit = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
    // Bounded: a request the server never answers fails the test instead of hanging it.
    signal: AbortSignal.timeout(60_000),
    ...init,
  })
  const text = await res.text()
  let body: Json
  try {
    body = JSON.parse(text) as Json
  } catch {
    body = { raw: text }
  }
  return { status: res.status, body }
}

/** A GraphQL request that must succeed without errors; returns `data`. */
export async function gql(url: string, query: string, variables?: Record<string, unknown>): Promise<Json> {
  const { status, body } = await post(url, query, variables)
  if (status !== 200 || body.errors) throw new Error(`GraphQL request failed (${status}): ${JSON.stringify(body)}`)
  return body.data as Json
}

/** Opens the database read-only (as another process would), runs `read`, closes it. */
export function readDb<T>(db: string, read: (sqlite: Database.Database) => T): T {
  const sqlite = new Database(db, { readonly: true, fileMustExist: true })
  try {
    return read(sqlite)
  } finally {
    sqlite.close()
  }
}

export function integrity(db: string): string {
  return readDb(db, (s) => s.pragma('integrity_check', { simple: true }) as string)
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
