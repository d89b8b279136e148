// The built-in `http` factory against a real node:http server on 127.0.0.1: bodies, query and JSON
// sent, retries (5xx, 429 with Retry-After through the engine's retryAfterMs), failures without
// retry (4xx), timeouts, the host allow-list (nothing is connected to before the check) and redirects.
// Every fetch goes through a guard that refuses anything but 127.0.0.1, so no test can reach another
// address even if the factory's own check were wrong.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type dns from 'node:dns'
import { networkInterfaces } from 'node:os'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  orchestratorFromConfig, ValidationError, type ConveyorConfig, type ProjectOrchestrator, type RunEvent, type WorkflowDefinition,
} from '../src/index.ts'
import { httpFactory, parseRetryAfter } from '../src/engine/factories/http.ts'
import { ADDRESS_REFUSED, hostPolicy } from '../src/engine/factories/http-hosts.ts'
import { retryDelay, resolveRetry } from '../src/engine/retry.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { ExecuteWorkflowDocument, CreateWorkflowDocument, RunDocument } from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

// ------------------------------------------------------------------ a loopback test server

interface Seen {
  method: string
  path: string
  headers: IncomingMessage['headers']
  body: string
  /** The client went away before the response was finished. */
  aborted: boolean
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string, n: number) => void

class TestHttpServer {
  readonly seen: Seen[] = []
  private readonly routes = new Map<string, Handler>()
  private readonly counts = new Map<string, number>()
  private readonly server: Server
  private readonly open = new Set<ServerResponse>()
  port = 0

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const path = new URL(req.url!, 'http://x').pathname
        const record: Seen = { method: req.method!, path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), aborted: false }
        this.seen.push(record)
        this.open.add(res)
        res.on('close', () => {
          this.open.delete(res)
          if (!res.writableEnded) record.aborted = true
        })
        const n = (this.counts.get(path) ?? 0) + 1
        this.counts.set(path, n)
        const handler = this.routes.get(path)
        if (handler) handler(req, res, record.body, n)
        else {
          res.writeHead(404, { 'content-type': 'text/plain' })
          res.end('no such route')
        }
      })
    })
  }

  route(path: string, handler: Handler): this {
    this.routes.set(path, handler)
    return this
  }

  hits(path: string): Seen[] {
    return this.seen.filter((s) => s.path === path)
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
    return this
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
  res.end(JSON.stringify(value))
}

// ------------------------------------------------------------------ fetch guard

const realFetch = globalThis.fetch
/** Every URL fetch was called with (the factory's calls and the test's own). */
const fetched: string[] = []

beforeAll(() => {
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    fetched.push(url.href)
    // Names are let through only to the factory's own connection pool (its resolver checks every
    // address) and only under .test (reserved, never in public DNS) or localhost: the fake resolvers
    // below answer for them, pointing at this machine.
    const byName = (url.hostname.endsWith('.test') || url.hostname === 'localhost') && (init as { dispatcher?: unknown } | undefined)?.dispatcher !== undefined
    if (url.hostname !== '127.0.0.1' && !byName) throw new Error(`test guard: refused to connect to ${url.host}`)
    return realFetch(input, init)
  })
})
afterAll(() => {
  vi.restoreAllMocks()
})

// ------------------------------------------------------------------ orchestrators

let server: TestHttpServer
let second: TestHttpServer | undefined

beforeEach(async () => {
  fetched.length = 0
  server = await new TestHttpServer().listen()
})
const opened = openedPerTest({
  after: async () => {
    await server.close()
    await second?.close()
    second = undefined
  },
})

function orchestrator(http: ConveyorConfig['http'] = { allowedHosts: [`127.0.0.1:${server.port}`] }): ProjectOrchestrator {
  const o = orchestratorFromConfig({ http })
  opened.track(o)
  return o
}

async function runOne(o: ProjectOrchestrator, step: Record<string, unknown>, input?: unknown) {
  const definition: WorkflowDefinition = { steps: [{ id: 'req', factory: 'http', action: 'request', ...step }] }
  const id = await o.createWorkflow('http_test', definition)
  const result = await o.executeWorkflow(id, input)
  const history = await o.getHistory(result.runId)
  return { result, history, step: result.steps.req! }
}

function ofType(history: RunEvent[], type: RunEvent['type']): RunEvent[] {
  return history.filter((e) => e.type === type)
}

// ------------------------------------------------------------------ tests

describe('http.request: responses', () => {
  it('GET parses a JSON body, sends query params (arrays repeat) and headers, and returns status and headers', async () => {
    server.route('/items', (req, res) => json(res, 200, { items: [1, 2], got: req.url }, { 'x-total': '2' }))
    const { result, step } = await runOne(orchestrator(), {
      params: { url: `${server.origin}/items?keep=1`, query: { q: 'a b&c', n: [1, 2], flag: true }, headers: { 'x-api-key': 'k1' } },
    })
    expect(result.status).toBe('SUCCEEDED')
    const output = step.output as { status: number; headers: Record<string, string>; body: { items: number[]; got: string } }
    expect(output.status).toBe(200)
    expect(output.headers['x-total']).toBe('2')
    expect(output.headers['content-type']).toMatch(/^application\/json/)
    expect(output.body.items).toEqual([1, 2])
    const sent = new URL(output.body.got, 'http://x').searchParams
    expect(sent.get('keep')).toBe('1')
    expect(sent.get('q')).toBe('a b&c')
    expect(sent.getAll('n')).toEqual(['1', '2'])
    expect(sent.get('flag')).toBe('true')
    expect(server.hits('/items')[0]!.headers['x-api-key']).toBe('k1')
  })

  it('a text response is returned as a string', async () => {
    server.route('/text', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('hello, conveyor')
    })
    const { step } = await runOne(orchestrator(), { params: { url: `${server.origin}/text` } })
    expect(step.status).toBe('SUCCEEDED')
    expect((step.output as { body: unknown }).body).toBe('hello, conveyor')
  })

  it('POST with json sends the body as JSON with its content-type; body sends text as is', async () => {
    server.route('/echo', (req, res, body) => json(res, 201, { method: req.method, type: req.headers['content-type'], body }))
    const o = orchestrator()
    const { step } = await runOne(o, { params: { method: 'POST', url: `${server.origin}/echo`, json: { name: 'x', n: [1, { deep: true }] } } })
    expect(step.output).toMatchObject({ status: 201, body: { method: 'POST', type: 'application/json' } })
    expect(JSON.parse((step.output as { body: { body: string } }).body.body)).toEqual({ name: 'x', n: [1, { deep: true }] })

    const text = await runOne(o, { params: { method: 'PUT', url: `${server.origin}/echo`, body: 'plain words', headers: { 'content-type': 'text/plain' } } })
    expect(text.step.output).toMatchObject({ body: { method: 'PUT', type: 'text/plain', body: 'plain words' } })
  })

  it('params can come from expressions (input and earlier outputs)', async () => {
    server.route('/a', (_req, res) => json(res, 200, { next: '/b' }))
    server.route('/b', (_req, res, body) => json(res, 200, { received: JSON.parse(body) }))
    const o = orchestrator()
    const id = await o.createWorkflow('chain', {
      steps: [
        { id: 'a', factory: 'http', action: 'request', params: { url: '{{ input.base & "/a" }}' } },
        { id: 'b', factory: 'http', action: 'request', params: { method: 'POST', url: '{{ input.base & previous.body.next }}', json: { from: '{{ steps.a.output.status }}' } } },
      ],
    })
    const result = await o.executeWorkflow(id, { base: server.origin })
    expect(result.status).toBe('SUCCEEDED')
    expect(result.output).toEqual({ b: expect.objectContaining({ body: { received: { from: 200 } } }) })
  })
})

describe('http.request: failures and retries', () => {
  it('500 then 200 succeeds on attempt 2 with the action\'s default retry policy (exponential from 500 ms)', async () => {
    server.route('/flaky', (_req, res, _b, n) => (n === 1 ? json(res, 500, { error: 'boom' }) : json(res, 200, { ok: true })))
    const { result, history, step } = await runOne(orchestrator(), { params: { url: `${server.origin}/flaky` } })
    expect(result.status).toBe('SUCCEEDED')
    expect(step.attempts).toBe(2)
    expect(server.hits('/flaky')).toHaveLength(2)
    const [retry] = ofType(history, 'STEP_RETRY_SCHEDULED')
    expect(retry!.payload).toMatchObject({ delayMs: 500, nextAttempt: 2, error: expect.stringMatching(/^HTTP 500 .*boom/) })
  })

  it('429 with Retry-After: 1 schedules the next attempt after the server\'s delay, not the backoff', async () => {
    server.route('/limited', (_req, res, _b, n) => (n === 1 ? json(res, 429, { error: 'slow down' }, { 'retry-after': '1' }) : json(res, 200, { ok: true })))
    const { result, history, step } = await runOne(orchestrator(), { params: { url: `${server.origin}/limited` } })
    expect(result.status).toBe('SUCCEEDED')
    expect(step.attempts).toBe(2)
    expect(server.hits('/limited')).toHaveLength(2)
    const expected = retryDelay(resolveRetry(undefined, { maxAttempts: 3, backoff: 'exponential', initialMs: 500 }), 1, { retryAfterMs: parseRetryAfter('1') })
    expect(expected).toBe(1000)
    const retries = ofType(history, 'STEP_RETRY_SCHEDULED')
    expect(retries).toHaveLength(1)
    expect((retries[0]!.payload as { delayMs: number }).delayMs).toBe(expected)
  })

  it('Retry-After is capped by the policy\'s maxMs, and an HTTP date is read too', async () => {
    server.route('/later', (_req, res, _b, n) => (n === 1 ? json(res, 503, {}, { 'retry-after': '3600' }) : json(res, 200, { ok: true })))
    const { history, step } = await runOne(orchestrator(), { params: { url: `${server.origin}/later` }, retry: { initialMs: 10, maxMs: 50 } }) // backoff would be 10
    expect(step.status).toBe('SUCCEEDED')
    expect((ofType(history, 'STEP_RETRY_SCHEDULED')[0]!.payload as { delayMs: number }).delayMs).toBe(50)

    const now = Date.parse('2030-01-01T00:00:00Z')
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:05 GMT', now)).toBe(5000)
    expect(parseRetryAfter('Mon, 31 Dec 2029 23:59:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })

  it('404 fails at once: exactly one request, no retry', async () => {
    server.route('/missing', (_req, res) => json(res, 404, { error: 'nope' }))
    const { result, history, step } = await runOne(orchestrator(), { params: { url: `${server.origin}/missing` } })
    expect(result.status).toBe('FAILED')
    expect(step).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/^HTTP 404 Not Found from GET http:\/\/127\.0\.0\.1:\d+\/missing/) })
    expect(server.hits('/missing')).toHaveLength(1)
    expect(ofType(history, 'STEP_RETRY_SCHEDULED')).toHaveLength(0)
  })

  it('a 5xx that keeps failing uses up maxAttempts', async () => {
    server.route('/down', (_req, res) => json(res, 502, {}))
    const { step } = await runOne(orchestrator(), { params: { url: `${server.origin}/down` }, retry: { initialMs: 1 } })
    expect(step).toMatchObject({ status: 'FAILED', attempts: 3, error: expect.stringMatching(/^HTTP 502/) })
    expect(server.hits('/down')).toHaveLength(3)
  })

  it('timeoutMs aborts a request the server never answers; the server sees it aborted', async () => {
    server.route('/hang', () => {})
    const { step } = await runOne(orchestrator(), { params: { url: `${server.origin}/hang`, timeoutMs: 100 }, retry: { maxAttempts: 1 } })
    expect(step).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/timed out after 100 ms/) })
    expect(server.hits('/hang')).toHaveLength(1)
    await vi.waitFor(() => expect(server.hits('/hang')[0]!.aborted).toBe(true))
  })

  it('cancelling the run aborts the request in flight (ctx.signal)', async () => {
    server.route('/hang', () => {})
    const o = orchestrator()
    const id = await o.createWorkflow('cancel', { steps: [{ id: 'req', factory: 'http', action: 'request', params: { url: `${server.origin}/hang` } }] })
    const { runId } = await o.startWorkflow(id)
    await vi.waitFor(() => expect(server.hits('/hang')).toHaveLength(1))
    const result = await o.cancelRun(runId)
    expect(result.status).toBe('CANCELLED')
    await vi.waitFor(() => expect(server.hits('/hang')[0]!.aborted).toBe(true))
  })
})

describe('http.request: the host allow-list', () => {
  const blocked = async (o: ProjectOrchestrator, url: string) => {
    const { result, history, step } = await runOne(o, { params: { url: '{{ input.url }}' } }, { url })
    expect(result.status).toBe('FAILED')
    expect(step.attempts).toBe(1)
    expect(ofType(history, 'STEP_RETRY_SCHEDULED')).toHaveLength(0)
    return step.error!
  }

  it('by default (no http config) every host is refused, before any connection', async () => {
    const o = orchestratorFromConfig({})
    opened.track(o)
    expect(await blocked(o, `${server.origin}/x`)).toMatch(/host 127\.0\.0\.1:\d+ is not allowed: the http factory's allowedHosts is empty/)
    expect(await blocked(o, 'http://blocked.invalid/')).toMatch(/not allowed/)
    expect(fetched).toEqual([])
    expect(server.seen).toEqual([])
  })

  it('a host off the list fails without retry and without a connection', async () => {
    const o = orchestrator({ allowedHosts: ['*.example.com', `127.0.0.1:${server.port}`] })
    expect(await blocked(o, 'http://blocked.invalid/')).toMatch(/host blocked\.invalid is not allowed by the http factory's allowedHosts/)
    expect(await blocked(o, 'https://example.com/')).toMatch(/not allowed/) // *.example.com: subdomains only
    expect(await blocked(o, 'http://127.0.0.1:1/')).toMatch(/not allowed/) // another port
    expect(fetched).toEqual([])
  })

  it('loopback, link-local and metadata addresses are refused through a wildcard, even "*"', async () => {
    const o = orchestrator({ allowedHosts: ['*'] })
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/',
      'http://metadata.google.internal/',
      'http://0.0.0.0/',
      'http://localhost/',
      'http://api.localhost/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://2130706433/', // 127.0.0.1 as one number
      `${server.origin}/x`,
    ]) {
      expect(await blocked(o, url), url).toMatch(/not allowed: loopback, link-local, metadata and this machine's own addresses must be listed exactly/)
    }
    expect(fetched).toEqual([])
    expect(server.seen).toEqual([])
  })

  it('an exact entry allows a loopback host; a literal URL off the list fails createWorkflow validation', async () => {
    server.route('/ok', (_req, res) => json(res, 200, { ok: true }))
    const o = orchestrator({ allowedHosts: ['*', `127.0.0.1:${server.port}`] })
    expect((await runOne(o, { params: { url: `${server.origin}/ok` } })).step.status).toBe('SUCCEEDED')

    const error = await o.createWorkflow('literal', { steps: [{ factory: 'http', action: 'request', params: { url: 'http://169.254.169.254/' } }] }).catch((e) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toEqual([{ path: 'steps[0].params.url', message: expect.stringMatching(/not allowed/) }])
    expect(fetched.filter((u) => !u.startsWith(server.origin))).toEqual([])
  })

  it('private addresses are refused through a wildcard, even "*", in every form; public neighbours are not', async () => {
    const o = orchestrator({ allowedHosts: ['*'] })
    for (const [url, range] of [
      ['http://10.1.2.3/', '10.0.0.0/8'],
      ['http://172.16.0.1:8080/', '172.16.0.0/12'],
      ['http://172.31.255.255/', '172.16.0.0/12'],
      ['http://192.168.1.1/', '192.168.0.0/16'],
      ['http://100.64.0.1/', '100.64.0.0/10'],
      ['http://100.127.255.254/', '100.64.0.0/10'],
      ['http://[fd12:3456::1]/', 'fc00::/7'],
      ['http://[fc00::1]/', 'fc00::/7'],
      ['http://[::ffff:10.0.0.1]/', '10.0.0.0/8'],
      ['http://[::ffff:c0a8:1]/', '192.168.0.0/16'],
      ['http://167772161/', '10.0.0.0/8'], // 10.0.0.1 as one number
    ] as const) {
      expect(await blocked(o, url), url).toMatch(new RegExp(`host \\S+ is not allowed: a wildcard does not reach private addresses .*or its range \\("${range.replace(/[./]/g, '\\$&')}"\\)`))
    }
    expect(fetched).toEqual([])
    // Just outside each range: public, so "*" allows them (validation only: nothing is run).
    for (const url of ['http://172.32.0.1/', 'http://100.128.0.1/', 'http://11.0.0.1/', 'http://192.169.0.1/', 'http://[fe00::1]/']) {
      await expect(o.createWorkflow('public', { steps: [{ factory: 'http', action: 'request', params: { url } }] }), url).resolves.toBeTruthy()
    }
  })

  it('a range entry ("10.0.0.0/8") or an exact address allows private addresses, never a sensitive one', async () => {
    const o = orchestrator({ allowedHosts: ['10.0.0.0/8', 'fd00::/8', '192.168.1.7:8443'] })
    const validates = (url: string) => o.createWorkflow('ranged', { steps: [{ factory: 'http', action: 'request', params: { url } }] })
    for (const url of ['http://10.20.30.40:9000/', 'http://[::ffff:10.0.0.1]/', 'http://[fd00::5]/', 'https://192.168.1.7:8443/']) {
      await expect(validates(url), url).resolves.toBeTruthy()
    }
    for (const url of ['http://192.168.1.7/', 'http://172.16.0.1/', 'http://[fc00::1]/', 'http://8.8.8.8/']) {
      await expect(validates(url), url).rejects.toThrow(/not allowed by the http factory's allowedHosts/)
    }
    const wide = orchestrator({ allowedHosts: ['0.0.0.0/0'] })
    expect(await blocked(wide, 'http://169.254.169.254/')).toMatch(/must be listed exactly .*is link-local/)
    expect(await blocked(wide, `${server.origin}/x`)).toMatch(/must be listed exactly .*is loopback/)
    expect(fetched).toEqual([])
  })

  it('bad allow-list entries are refused when the factory is made', () => {
    expect(() => orchestratorFromConfig({ http: { allowedHosts: ['https://api.example.com'] } })).toThrow(/not a URL/)
    expect(() => orchestratorFromConfig({ http: { allowedHosts: ['api.*.com'] } })).toThrow(/wildcard/)
    for (const range of ['10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0.1.5/8', '::ffff:10.0.0.0/104']) {
      expect(() => orchestratorFromConfig({ http: { allowedHosts: [range] } }), range).toThrow(/address range|IPv4 form/)
    }
  })
})

describe('http.request: addresses DNS gives', () => {
  /** A resolver that answers from a fixed table (and records what it was asked): no DNS traffic. */
  function fakeDns(table: Record<string, string[]>) {
    const asked: string[] = []
    const lookup = ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
      asked.push(hostname)
      const addresses = table[hostname]
      if (!addresses) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }))
      const all = addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
      return options.all ? callback(null, all) : callback(null, all[0]!.address, all[0]!.family)
    }) as unknown as typeof dns.lookup
    return { lookup, asked }
  }

  function withDns(allowedHosts: string[], table: Record<string, string[]>) {
    const resolver = fakeDns(table)
    const o = orchestratorFromConfig({ factories: { http: httpFactory({ allowedHosts, lookup: resolver.lookup }) } })
    opened.track(o)
    return { o, asked: resolver.asked }
  }

  const ownAddress = Object.values(networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')?.address

  it('a name allowed by a wildcard that resolves to a loopback, metadata or own address is refused at connect time, without retry', async () => {
    server.route('/secret', (_req, res) => json(res, 200, { secret: true }))
    expect(ownAddress, 'this machine has a non-loopback IPv4 interface').toBeDefined()
    const { o, asked } = withDns(['*'], {
      'rebind.test': ['127.0.0.1'],
      'v6.test': ['::1'],
      'meta.test': ['169.254.169.254'],
      'mixed.test': ['203.0.113.7', '127.0.0.1'], // one bad answer is enough
      'self.test': [ownAddress!],
    })
    const cases: [string, RegExp][] = [
      [`http://rebind.test:${server.port}/secret`, /^host rebind\.test resolves to 127\.0\.0\.1 \(loopback\), which is not allowed: list "127\.0\.0\.1:\d+"/],
      [`http://v6.test:${server.port}/secret`, /resolves to ::1 \(loopback\)/],
      ['http://meta.test/latest/meta-data/', /resolves to 169\.254\.169\.254 \(link-local\)/],
      [`http://mixed.test:${server.port}/secret`, /resolves to 127\.0\.0\.1 \(loopback\)/],
      [`http://self.test:${server.port}/secret`, /\(this machine's own address\)/],
    ]
    for (const [url, message] of cases) {
      const { step } = await runOne(o, { params: { url } })
      expect(step, url).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(message) })
    }
    expect(asked).toEqual(['rebind.test', 'v6.test', 'meta.test', 'mixed.test', 'self.test'])
    expect(server.seen).toEqual([])
  })

  it('a name allowed by a wildcard that resolves to a private address is refused at connect time, without retry', async () => {
    const { o, asked } = withDns(['*'], {
      'intra.test': ['10.0.0.5'],
      'cgnat.test': ['100.64.1.1'],
      'ula.test': ['fd00::5'],
      'mapped.test': ['::ffff:192.168.0.9'],
      'mixed.test': ['203.0.113.7', '172.20.0.1'],
    })
    const cases: [string, RegExp][] = [
      ['http://intra.test/', /^host intra\.test resolves to 10\.0\.0\.5 \(private\), which is not allowed: list "10\.0\.0\.5:80" or its range \("10\.0\.0\.0\/8"\)/],
      ['http://cgnat.test/', /resolves to 100\.64\.1\.1 \(private\).*"100\.64\.0\.0\/10"/],
      ['https://ula.test/', /resolves to fd00::5 \(private\).*"\[fd00::5\]:443" or its range \("fc00::\/7"\)/],
      ['http://mapped.test/', /resolves to ::ffff:192\.168\.0\.9 \(private\).*"192\.168\.0\.0\/16"/],
      ['http://mixed.test/', /resolves to 172\.20\.0\.1 \(private\)/],
    ]
    for (const [url, message] of cases) {
      const { step } = await runOne(o, { params: { url } })
      expect(step, url).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(message) })
    }
    expect(asked).toEqual(['intra.test', 'cgnat.test', 'ula.test', 'mapped.test', 'mixed.test'])
  })

  it('a name resolving to a private address passes the check when its range or the name itself is listed', async () => {
    // The resolver is called directly: a passed check would connect to that private address.
    const answer = (allowedHosts: string[], url: string, addresses: string[]) =>
      new Promise<{ code?: string } | null>((resolve) => {
        const { lookup } = fakeDns({ [new URL(url).hostname]: addresses })
        hostPolicy(allowedHosts, { lookup }).lookupFor(new URL(url))(new URL(url).hostname, { all: true }, (error) => resolve(error))
      })
    expect(await answer(['*.corp.test', '10.0.0.0/8'], 'http://svc.corp.test/', ['10.9.8.7'])).toBeNull()
    expect(await answer(['*.corp.test', 'fc00::/7'], 'http://svc.corp.test/', ['fd00::1'])).toBeNull()
    expect(await answer(['db.corp.test'], 'http://db.corp.test/', ['192.168.3.4'])).toBeNull()
    expect(await answer(['*.corp.test', '10.0.0.0/8'], 'http://svc.corp.test/', ['192.168.3.4'])).toMatchObject({ code: ADDRESS_REFUSED })
    expect(await answer(['db.corp.test', '10.0.0.0/8'], 'http://db.corp.test/', ['127.0.0.1'])).toMatchObject({ code: ADDRESS_REFUSED })
  })

  it("this machine's own address in a URL is refused through a wildcard: at validation when literal, at run time when computed", async () => {
    const { o } = withDns(['*'], {})
    const url = `http://${ownAddress}:${server.port}/`
    const error = await o.createWorkflow('own', { steps: [{ factory: 'http', action: 'request', params: { url } }] }).catch((e) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).message).toMatch(/must be listed exactly .*is this machine's own address/)
    const { step } = await runOne(o, { params: { url: '{{ input.url }}' } }, { url })
    expect(step).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/must be listed exactly .*is this machine's own address/) })
  })

  it('listing the address itself allows a name that resolves to it; a sensitive name listed exactly may resolve to what it names', async () => {
    server.route('/ok', (req, res) => json(res, 200, { host: req.headers.host }))
    const { o } = withDns(['*.test', `127.0.0.1:${server.port}`, `localhost:${server.port}`], { 'svc.test': ['127.0.0.1'], localhost: ['127.0.0.1'] })
    expect((await runOne(o, { params: { url: `http://svc.test:${server.port}/ok` } })).step).toMatchObject({
      status: 'SUCCEEDED', output: { body: { host: `svc.test:${server.port}` } },
    })
    expect((await runOne(o, { params: { url: `http://localhost:${server.port}/ok` } })).step.status).toBe('SUCCEEDED')
    // The address entry is for that port only.
    const other = await runOne(o, { params: { url: 'http://svc.test:8/ok' } })
    expect(other.step).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/resolves to 127\.0\.0\.1 \(loopback\)/) })
    expect(server.hits('/ok')).toHaveLength(2)
  })

  it('a redirect to a name that resolves to a metadata address is refused before it is connected to', async () => {
    server.route('/hop', (_req, res) => {
      res.writeHead(302, { location: 'http://cloud.test/latest/meta-data/' })
      res.end()
    })
    const { o, asked } = withDns([`127.0.0.1:${server.port}`, '*.test'], { 'cloud.test': ['169.254.169.254'] })
    const { step } = await runOne(o, { params: { url: `${server.origin}/hop` } })
    expect(step).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/^redirect refused: host cloud\.test resolves to 169\.254\.169\.254/) })
    expect(asked).toEqual(['cloud.test'])
  })

  it('a name that does not resolve fails like any network error (retried)', async () => {
    const { o } = withDns(['*.test'], {})
    const { step } = await runOne(o, { params: { url: 'http://nowhere.test/' }, retry: { maxAttempts: 2, initialMs: 1 } })
    expect(step).toMatchObject({ status: 'FAILED', attempts: 2, error: expect.stringMatching(/ENOTFOUND/) })
  })
})

describe('http.request: redirects', () => {
  it('follows a redirect on an allowed host; 303 turns POST into GET', async () => {
    server.route('/old', (_req, res) => {
      res.writeHead(301, { location: '/new' })
      res.end()
    })
    server.route('/new', (req, res) => json(res, 200, { at: 'new', method: req.method }))
    server.route('/submit', (_req, res) => {
      res.writeHead(303, { location: `${server.origin}/new` })
      res.end()
    })
    const o = orchestrator()
    expect((await runOne(o, { params: { url: `${server.origin}/old` } })).step.output).toMatchObject({ status: 200, body: { at: 'new', method: 'GET' } })
    expect((await runOne(o, { params: { method: 'POST', url: `${server.origin}/submit`, json: { a: 1 } } })).step.output).toMatchObject({ body: { method: 'GET' } })
  })

  it('a redirect to a host off the list is refused before it is followed', async () => {
    const cases = [
      { target: 'http://blocked.invalid/landing', allowedHosts: [`127.0.0.1:${server.port}`] },
      // Through a wildcard, a metadata address is still refused.
      { target: 'http://169.254.169.254/latest/meta-data/', allowedHosts: [`127.0.0.1:${server.port}`, '*'] },
    ]
    for (const { target, allowedHosts } of cases) {
      server.route('/away', (_req, res) => {
        res.writeHead(302, { location: target })
        res.end()
      })
      const { step } = await runOne(orchestrator({ allowedHosts }), { params: { url: `${server.origin}/away` } })
      expect(step, target).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/^redirect refused: host .* is not allowed/) })
    }
    expect(server.hits('/away')).toHaveLength(2)
    expect(fetched.every((u) => u.startsWith(server.origin))).toBe(true)
  })

  it('more than 5 redirects fail', async () => {
    server.route('/loop', (_req, res, _b, n) => {
      res.writeHead(307, { location: `/loop?n=${n}` })
      res.end()
    })
    const { step } = await runOne(orchestrator(), { params: { url: `${server.origin}/loop` } })
    expect(step).toMatchObject({ status: 'FAILED', attempts: 1, error: expect.stringMatching(/more than 5 redirects/) })
    expect(server.hits('/loop')).toHaveLength(6)
  })

  it('credentials are not carried to another origin', async () => {
    second = await new TestHttpServer().listen()
    second.route('/land', (req, res) => json(res, 200, { auth: req.headers.authorization ?? null, other: req.headers['x-other'] ?? null }))
    server.route('/jump', (_req, res) => {
      res.writeHead(307, { location: `${second!.origin}/land` })
      res.end()
    })
    const o = orchestrator({ allowedHosts: [`127.0.0.1:${server.port}`, `127.0.0.1:${second.port}`] })
    const { step } = await runOne(o, { params: { url: `${server.origin}/jump`, headers: { authorization: 'Bearer secret', 'x-other': 'kept' } } })
    expect(step.output).toMatchObject({ body: { auth: null, other: 'kept' } })
    expect(server.hits('/jump')[0]!.headers.authorization).toBe('Bearer secret')
  })
})

describe('http.request over GraphQL', () => {
  let t: TestServer | undefined
  afterEach(async () => {
    await t?.close()
    t = undefined
  })

  it('a workflow with an http step runs through the GraphQL API with the config\'s allow-list', async () => {
    server.route('/hello', (_req, res) => json(res, 200, { hello: 'graphql' }))
    t = await startTestServer({ http: { allowedHosts: [`127.0.0.1:${server.port}`] } })
    const created = await t.request(CreateWorkflowDocument, {
      name: 'gql_http',
      definition: { steps: [{ id: 'get', factory: 'http', action: 'request', params: { url: `${server.origin}/hello` } }] },
    })
    const wf = created.data!.createWorkflow
    if (wf.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(wf))
    const started = await t.request(ExecuteWorkflowDocument, { workflowId: wf.workflow.id })
    const run = started.data!.executeWorkflow
    if (run.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(run))
    await t.orchestrator.waitForRun(run.run.id)
    const read = await t.request(RunDocument, { id: run.run.id })
    expect(read.data!.run).toMatchObject({ status: 'SUCCEEDED', output: { get: { status: 200, body: { hello: 'graphql' } } } })

    const refused = await t.request(CreateWorkflowDocument, {
      name: 'gql_blocked',
      definition: { steps: [{ factory: 'http', action: 'request', params: { url: 'http://blocked.invalid/' } }] },
    })
    expect(refused.data!.createWorkflow).toMatchObject({
      __typename: 'ValidationError',
      issues: [{ path: 'steps[0].params.url', message: expect.stringMatching(/not allowed/) }],
    })
  })
})
