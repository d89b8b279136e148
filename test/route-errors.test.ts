// No request takes the server down (src/route-guard.ts): an error thrown inside a route, sync or
// async, is a 500 and a log line, and the server keeps answering. Faults are injected where the
// routes call into the engine (or into ws), since a healthy engine does not throw there.
import { request } from 'node:http'
import { afterEach, describe, expect, it, vi } from 'vitest'
import pino from 'pino'
import WebSocket, { WebSocketServer } from 'ws'
import { orchestratorFromConfig, startServer, type RunningServer } from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { files } from './fixtures/files-factory.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined
const opened = openedPerTest({
  after: async () => {
    vi.restoreAllMocks()
    await t?.close()
    t = undefined
  },
})

const injected = () => {
  throw new Error('injected fault')
}

async function expect500(url: string): Promise<void> {
  const res = await fetch(url)
  expect(res.status, url).toBe(500)
  expect(await res.json()).toEqual({ errors: [{ message: 'internal server error' }] })
}

describe('a route that throws', () => {
  it('/healthz, /metrics and an artifact download answer 500, log it, and the server keeps serving', async () => {
    t = await startTestServer({ factories: { files } })
    const origin = new URL(t.url).origin
    const logged = vi.spyOn(t.orchestrator.context.logger, 'error')
    const result = await t.orchestrator.executeWorkflow(
      await t.orchestrator.createWorkflow('f', { steps: [{ id: 'one', factory: 'files', action: 'write', params: { name: 'a.txt', text: 'x' } }] }),
    )
    const [artifact] = t.orchestrator.catalog.artifactsByRunIds([result.runId])

    vi.spyOn(t.orchestrator.catalog, 'runCounts').mockImplementationOnce(injected)
    await expect500(`${origin}/metrics`)
    vi.spyOn(t.orchestrator.coordinator, 'activeRuns', 'get').mockImplementationOnce(injected)
    await expect500(`${origin}/healthz`)
    // The artifact route is async: this one is a rejected promise, not a throw.
    vi.spyOn(t.orchestrator.catalog, 'artifact').mockImplementationOnce(injected)
    await expect500(`${origin}/artifacts/${artifact!.id}/a.txt`)

    expect(logged.mock.calls.filter(([, message]) => message === 'request handler failed')).toHaveLength(3)
    expect((await fetch(`${origin}/healthz`)).status).toBe(200)
    expect((await fetch(`${origin}/metrics`)).status).toBe(200)
    expect(await (await fetch(`${origin}/artifacts/${artifact!.id}/a.txt`)).text()).toBe('x')
  })

  it('a WebSocket upgrade that throws is answered 500, and the next connection works', async () => {
    t = await startTestServer()
    vi.spyOn(WebSocketServer.prototype, 'handleUpgrade').mockImplementationOnce(injected)
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(t!.wsUrl, 'graphql-transport-ws')
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!))
      ws.on('open', () => reject(new Error('the upgrade should have failed')))
      ws.on('error', () => {})
    })
    expect(status).toBe(500)
    const client = t.ws()
    const answer = await new Promise((resolve, reject) => {
      client.subscribe({ query: '{ __typename }' }, { next: resolve, error: reject, complete: () => {} })
    })
    expect(answer).toEqual({ data: { __typename: 'Query' } })
  })
})

describe('a Host header no URL can be made of', () => {
  /** A POST to /graphql with a raw Host value (fetch would not send it), chunked or not. */
  function post(server: RunningServer, host: string, chunked: boolean): Promise<number> {
    const { port } = new URL(server.url)
    return new Promise((resolve, reject) => {
      const body = JSON.stringify({ query: '{ __typename }' })
      const req = request(
        {
          host: '127.0.0.1', port, method: 'POST', path: '/graphql',
          headers: { host, 'content-type': 'application/json', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) }) },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode!))
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }

  it('is a 400 with auth on, over a declared or a chunked body (the chunked one was an unhandled rejection)', async () => {
    const orchestrator = orchestratorFromConfig({})
    const server = opened.track(await startServer({ orchestrator, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), auth: { required: true } }))
    opened.track(orchestrator) // closed after the server
    expect(await post(server, '[', false)).toBe(400)
    expect(await post(server, '[', true)).toBe(400)
    expect((await fetch(`${new URL(server.url).origin}/healthz`)).status).toBe(200)
  })
})
