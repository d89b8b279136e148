// A real server on a loopback port for API tests, with typed-document helpers for HTTP, graphql-ws and SSE.
import { print, type ExecutionResult } from 'graphql'
import type { TypedDocumentNode } from '@graphql-typed-document-node/core'
import { createClient, type Client } from 'graphql-ws'
import WebSocket from 'ws'
import { orchestratorFromConfig, startServer, type ConveyorConfig, type RunningServer, type ProjectOrchestrator } from '../../src/index.ts'

export interface TestServer {
  url: string
  wsUrl: string
  orchestrator: ProjectOrchestrator
  server: RunningServer
  request<R, V>(doc: TypedDocumentNode<R, V> | string, variables?: V): Promise<ExecutionResult<R>>
  ws(): Client
  close(): Promise<void>
}

export async function startTestServer(config: ConveyorConfig = {}): Promise<TestServer> {
  const orchestrator = orchestratorFromConfig(config)
  const server = await startServer({ orchestrator, host: '127.0.0.1', port: 0 })
  const clients: Client[] = []
  return {
    url: server.url,
    wsUrl: server.url.replace(/^http/, 'ws'),
    orchestrator,
    server,
    async request(doc, variables) {
      const res = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify({ query: typeof doc === 'string' ? doc : print(doc), variables }),
      })
      return (await res.json()) as ExecutionResult<never>
    },
    ws() {
      const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 })
      clients.push(client)
      return client
    },
    async close() {
      for (const c of clients) await c.dispose()
      await server.close()
      await orchestrator.close()
    },
  }
}

/** Collects a subscription's results until it completes or `stop` returns true. */
export function collect<T>(client: Client, query: string, variables: Record<string, unknown>, stop?: (items: T[]) => boolean) {
  const items: T[] = []
  const errors: unknown[] = []
  let unsubscribe = () => {}
  const done = new Promise<T[]>((resolve, reject) => {
    unsubscribe = client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          if (value.errors) errors.push(...value.errors)
          if (value.data) items.push(value.data as T)
          if (stop?.(items)) {
            unsubscribe()
            resolve(items)
          }
        },
        error: (e) => reject(e),
        complete: () => resolve(items),
      },
    )
  })
  return { items, errors, done, unsubscribe: () => unsubscribe() }
}

/** Reads a yoga SSE subscription over fetch until it completes or `stop` returns true. */
export async function sse<T>(url: string, query: string, variables: Record<string, unknown>, stop?: (items: T[]) => boolean): Promise<T[]> {
  const controller = new AbortController()
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  })
  if (!res.ok || !res.body) throw new Error(`SSE request failed: ${res.status}`)
  const items: T[] = []
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
        if (event === 'complete') return items
        if (event === 'next' && data) {
          const parsed = JSON.parse(data) as ExecutionResult<T>
          if (parsed.errors) throw new Error(JSON.stringify(parsed.errors))
          items.push(parsed.data as T)
          if (stop?.(items)) return items
        }
      }
    }
    return items
  } finally {
    controller.abort()
  }
}
