// Clients for the access-control tests: one GraphQL operation over HTTP, graphql-ws or SSE with a
// given Authorization, reduced to what the server decided. Plus the CLI as a child process.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ExecutionResult } from 'graphql'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export type Json = Record<string, any>

export interface HttpResult {
  status: number
  headers: Headers
  body: ExecutionResult<Json> & { errors?: Json[] }
}

export async function overHttp(
  url: string,
  authorization: string | undefined,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(authorization === undefined ? {} : { authorization }),
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  })
  return { status: res.status, headers: res.headers, body: (await res.json()) as HttpResult['body'] }
}

export interface WsResult {
  /** The close code when the server closed the connection instead of answering. */
  closeCode?: number
  closeReason?: string
  results: (ExecutionResult<Json> & { errors?: Json[] })[]
  completed: boolean
}

/**
 * One operation on a fresh graphql-ws connection whose connection_init carries `authorization`.
 * Resolves when it completes, fails, or `stop` (given the results so far) returns true.
 */
export function overWs(
  url: string,
  authorization: string | undefined,
  query: string,
  variables?: Record<string, unknown>,
  stop?: (results: WsResult['results']) => boolean,
  onResult?: () => void,
): Promise<WsResult> {
  const client = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: authorization === undefined ? {} : { authorization },
  })
  const out: WsResult = { results: [], completed: false }
  return new Promise<WsResult>((resolve) => {
    const finish = () => {
      unsubscribe()
      void client.dispose()
      resolve(out)
    }
    const unsubscribe = client.subscribe<Json>(
      { query, variables },
      {
        next: (value) => {
          out.results.push(value as WsResult['results'][number])
          onResult?.()
          if (stop?.(out.results)) finish()
        },
        error: (error) => {
          const e = error as { code?: number; reason?: string }
          if (typeof e?.code === 'number') {
            out.closeCode = e.code
            out.closeReason = e.reason
          } else out.results.push({ errors: Array.isArray(error) ? error : [{ message: String(error) }] })
          finish()
        },
        complete: () => {
          out.completed = true
          finish()
        },
      },
    )
  })
}

export interface SseResult {
  status: number
  results: (ExecutionResult<Json> & { errors?: Json[] })[]
  completed: boolean
}

/** One operation over yoga's SSE (POST, accept: text/event-stream), read until complete or `stop`. */
export async function overSse(
  url: string,
  authorization: string | undefined,
  query: string,
  variables?: Record<string, unknown>,
  stop?: (results: SseResult['results']) => boolean,
  onResult?: () => void,
): Promise<SseResult> {
  const controller = new AbortController()
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  })
  const out: SseResult = { status: res.status, results: [], completed: false }
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
      let split: number
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, split)
        buffer = buffer.slice(split + 2)
        const event = /^event: (.*)$/m.exec(message)?.[1]
        const data = /^data: (.*)$/m.exec(message)?.[1]
        if (event === 'complete') {
          out.completed = true
          return out
        }
        if (event === 'next' && data) {
          out.results.push(JSON.parse(data))
          onResult?.()
          if (stop?.(out.results)) return out
        }
      }
    }
    return out
  } finally {
    controller.abort()
  }
}

// ------------------------------------------------------------------------------------- the CLI

export class CliProcess {
  stdout = ''
  stderr = ''
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private readonly lineWaiters: (() => void)[] = []
  readonly lines: string[] = []

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line)
      this.stdout += `${line}\n`
      for (const w of this.lineWaiters.splice(0)) w()
    })
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()))
    this.closed = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        for (const w of this.lineWaiters.splice(0)) w()
        resolve({ code, signal })
      }),
    )
  }

  /** The URL from the server's 'conveyor listening' log line. */
  async url(): Promise<string> {
    for (;;) {
      for (const line of this.lines) {
        if (!line.startsWith('{')) continue
        const parsed = JSON.parse(line) as { msg?: string; url?: string }
        if (parsed.msg === 'conveyor listening') return parsed.url!
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`server exited before listening\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)
      }
      await new Promise<void>((resolve) => this.lineWaiters.push(resolve))
    }
  }

  kill(): Promise<unknown> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM')
    return this.closed
  }
}

/** `node --import tsx src/cli.ts <args>` with the parent's environment minus CONVEYOR_*, plus `env`. */
export function cli(args: string[], env: Record<string, string> = {}): CliProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONVEYOR_')))
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return new CliProcess(child)
}
