// Secure defaults (issue 7, item 8): the server listens on 127.0.0.1 unless told otherwise, and any
// other address needs auth on (without it the start is refused, before anything is opened); browser
// requests get CSRF prevention, no CORS for other origins, and WebSocket handshakes from another
// origin are refused; introspection and GraphiQL can be turned off by config. Nothing here listens on
// a non-loopback address: the refusals happen before binding, and with auth on only the check runs.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request as httpRequest } from 'node:http'
import pino from 'pino'
import WebSocket from 'ws'
import {
  orchestratorFromConfig, serverOptionsFromConfig, authRequired, startServer, type ConveyorConfig, type ProjectOrchestrator, type RunningServer,
} from '../src/index.ts'
import { assertSafeBind, isLoopback } from '../src/access.ts'
import { CSRF_HEADER } from '../src/server.ts'
import { ROOT, cli, overHttp, overWs, type CliProcess } from './helpers/access.ts'

const SLOW = 120_000
const silent = pino({ level: 'silent' })
const dirs: string[] = []
const procs: CliProcess[] = []
const open: { server: RunningServer; orchestrator: ProjectOrchestrator }[] = []

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-secure-'))
  dirs.push(dir)
  return dir
}

/** A server as `serve` would start it from this config (host left to its default unless given). */
async function serve(config: ConveyorConfig = {}, host?: string): Promise<RunningServer> {
  const orchestrator = orchestratorFromConfig(config)
  try {
    const server = await startServer({ orchestrator, port: 0, logger: silent, ...(host ? { host } : {}), ...serverOptionsFromConfig(config, {}) })
    open.push({ server, orchestrator })
    return server
  } catch (error) {
    await orchestrator.close()
    throw error
  }
}

afterEach(async () => {
  for (const { server, orchestrator } of open.splice(0)) {
    await server.close()
    await orchestrator.close()
  }
})

afterAll(async () => {
  for (const p of procs.splice(0)) await p.kill()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const CREATE = `mutation ($name: String!) {
  createWorkflow(input: { name: $name, definition: { steps: [{ factory: "control", action: "noop" }] } }) { __typename }
}`
const workflowsNamed = (server: RunningServer, name: string) =>
  open.find((x) => x.server === server)!.orchestrator.context.conn.sqlite.prepare('select count(*) as n from workflows where name = ?').get(name) as { n: number }

// ----------------------------------------------------------------------------------- listening

describe('where the server listens', () => {
  it('binds 127.0.0.1 by default, with auth off, and then answers without a token', async () => {
    const server = await serve()
    expect(new URL(server.url).hostname).toBe('127.0.0.1')
    expect(server.server.address()).toMatchObject({ address: '127.0.0.1' })
    const r = await overHttp(server.url, undefined, '{ __typename }')
    expect(r.body).toEqual({ data: { __typename: 'Query' } })
  })

  it('refuses any non-loopback address without auth, before listening, saying how to turn auth on', async () => {
    for (const host of ['0.0.0.0', '::', '[::]', '192.0.2.10', '10.1.2.3', '::ffff:10.0.0.1', 'example.com', '']) {
      const orchestrator = orchestratorFromConfig({})
      try {
        const error = await startServer({ orchestrator, host, port: 0, logger: silent }).then(
          () => undefined,
          (e: Error) => e,
        )
        expect(error, host).toBeInstanceOf(Error)
        expect(error!.message, host).toMatch(/without authentication/)
        expect(error!.message, host).toContain('CONVEYOR_AUTH=required')
        expect(error!.message, host).toContain('auth: { required: true }')
        expect(error!.message, host).toContain('conveyor token create')
      } finally {
        await orchestrator.close()
      }
    }
  })

  it('loopback addresses need no auth; with auth on any address passes the check (not bound here)', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
      expect(isLoopback(host), host).toBe(true)
      expect(() => assertSafeBind(host, false), host).not.toThrow()
    }
    for (const host of ['0.0.0.0', '::', '192.168.1.1', 'localhost.example.com', '128.0.0.1', '']) {
      expect(isLoopback(host), host).toBe(false)
      expect(() => assertSafeBind(host, true), host).not.toThrow()
    }
  })

  it('auth is on with CONVEYOR_AUTH=required or `auth: { required: true }`; an unknown CONVEYOR_AUTH is an error', () => {
    expect(authRequired({}, {})).toBe(false)
    expect(authRequired({}, { CONVEYOR_AUTH: 'required' })).toBe(true)
    expect(authRequired({}, { CONVEYOR_AUTH: 'REQUIRED' })).toBe(true)
    expect(authRequired({ auth: { required: true } }, {})).toBe(true)
    // `off` cannot override a config that requires auth.
    expect(authRequired({ auth: { required: true } }, { CONVEYOR_AUTH: 'off' })).toBe(true)
    expect(() => authRequired({}, { CONVEYOR_AUTH: 'yes' })).toThrow(/CONVEYOR_AUTH must be "required" or "off"/)
  })

  it('`conveyor serve --host 0.0.0.0` (and CONVEYOR_HOST=::) without auth exits non-zero, naming the fix, without opening the database', async () => {
    const dir = tempDir()
    for (const [args, env] of [
      [['serve', '--host', '0.0.0.0', '--port', '0', '--db', join(dir, 'a.db')], {}],
      [['serve', '--port', '0', '--db', join(dir, 'b.db')], { CONVEYOR_HOST: '::' }],
      [['serve', '--host', '0.0.0.0', '--port', '0', '--db', join(dir, 'c.db')], { CONVEYOR_AUTH: 'maybe' }],
    ] as [string[], Record<string, string>][]) {
      const p = cli(args, env)
      procs.push(p)
      const exit = await p.closed
      expect(exit.code, p.stderr).toBe(1)
      expect(p.stdout).not.toContain('conveyor listening')
      if (env.CONVEYOR_AUTH) expect(p.stderr).toContain('CONVEYOR_AUTH must be "required" or "off"')
      else {
        expect(p.stderr).toMatch(/refusing to listen on (0\.0\.0\.0|::) without authentication/)
        expect(p.stderr).toContain('CONVEYOR_AUTH=required')
      }
    }
    for (const f of ['a.db', 'b.db', 'c.db']) expect(existsSync(join(dir, f)), f).toBe(false)
  }, SLOW)
})

// ---------------------------------------------------------------------------------------- CSRF

describe('CSRF prevention', () => {
  const crossSite = (url: string, contentType: string | undefined, body: string, extra: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { ...(contentType ? { 'content-type': contentType } : {}), origin: 'https://evil.example', ...extra },
      body,
    })

  it('refuses simple (form-like) cross-site requests: text/plain, urlencoded, multipart; nothing runs', async () => {
    const server = await serve()
    const attempts: [string, string, string][] = [
      ['text/plain', JSON.stringify({ query: CREATE, variables: { name: 'csrf_text' } }), 'csrf_text'],
      ['text/plain;charset=UTF-8', JSON.stringify({ query: CREATE, variables: { name: 'csrf_text2' } }), 'csrf_text2'],
      ['application/x-www-form-urlencoded', new URLSearchParams({ query: CREATE, variables: JSON.stringify({ name: 'csrf_form' }) }).toString(), 'csrf_form'],
      ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: CREATE, variables: { name: 'csrf_multi' } })}\r\n--x--\r\n`, 'csrf_multi'],
    ]
    for (const [type, body, name] of attempts) {
      const res = await crossSite(server.url, type, body)
      expect(res.status, type).toBe(403)
      expect(JSON.stringify(await res.json()), type).toContain('CSRF')
      expect(workflowsNamed(server, name).n, type).toBe(0)
      // No CORS header either: the page could not read the answer.
      expect(res.headers.get('access-control-allow-origin'), type).toBeNull()
    }
    // The same urlencoded request with the header (which a browser cannot add cross-site without a
    // preflight) is parsed and runs: it was the CSRF check that stopped the one above.
    const allowed = await crossSite(server.url, attempts[2]![0], attempts[2]![1], { [CSRF_HEADER]: '1' })
    expect(allowed.status).toBe(200)
    expect(workflowsNamed(server, 'csrf_form').n).toBe(1)
  })

  it('a GET query needs the CSRF header; JSON POSTs (GraphiQL, clients) and the GraphiQL page work as before', async () => {
    const server = await serve()
    const get = `${server.url}?query=${encodeURIComponent('{ __typename }')}`
    expect((await fetch(get)).status).toBe(403)
    const withHeader = await fetch(get, { headers: { [CSRF_HEADER]: '1' } })
    expect(withHeader.status).toBe(200)
    expect(await withHeader.json()).toEqual({ data: { __typename: 'Query' } })
    expect((await overHttp(server.url, undefined, '{ __typename }')).body).toEqual({ data: { __typename: 'Query' } })
    const page = await fetch(server.url, { headers: { accept: 'text/html' } })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toContain('<title>Conveyor</title>')
  })

  it('no CORS for other origins (yoga would reflect any); listed origins get it', async () => {
    const preflight = (url: string, origin: string) =>
      fetch(url, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
      })
    const closed = await serve()
    const denied = await preflight(closed.url, 'https://evil.example')
    expect(denied.headers.get('access-control-allow-origin')).toBeNull()
    expect(denied.headers.get('access-control-allow-headers')).toBeNull()
    const post = await overHttp(closed.url, undefined, '{ __typename }', undefined, { origin: 'https://evil.example' })
    expect(post.headers.get('access-control-allow-origin')).toBeNull()

    const listed = await serve({ server: { corsOrigins: ['https://dash.example', 'https://ops.example'] } })
    expect((await preflight(listed.url, 'https://dash.example')).headers.get('access-control-allow-origin')).toBe('https://dash.example')
    expect((await preflight(listed.url, 'https://evil.example')).headers.get('access-control-allow-origin')).not.toBe('https://evil.example')
  })

  it('a WebSocket handshake from another origin is refused (403); same-origin, listed or no Origin is accepted', async () => {
    const server = await serve({ server: { corsOrigins: ['https://dash.example'] } })
    const handshake = (origin?: string) => wsHandshake(server.url, origin ? { origin } : {})
    expect(await handshake('https://evil.example')).toBe(403)
    expect(await handshake('http://localhost.evil.example')).toBe(403)
    expect(await handshake(new URL(server.url).origin)).toBe(101)
    expect(await handshake('https://dash.example')).toBe(101)
    expect(await handshake()).toBe(101)
  })
})

// ------------------------------------------------------------------------ DNS rebinding

/** One HTTP request with a Host header of our choosing (fetch does not let a caller set Host). */
function withHost(url: string, host: string, init: { method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
  const target = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname, method: init.method ?? 'GET', headers: { host, 'content-type': 'application/json' } },
      (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString('utf8')))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.once('error', reject)
    req.end(init.body)
  })
}

/** The HTTP status of a WebSocket handshake (101 when accepted). */
function wsHandshake(url: string, options: { origin?: string; host?: string }): Promise<number> {
  return new Promise<number>((resolve) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws', {
      ...(options.origin ? { origin: options.origin } : {}),
      ...(options.host ? { headers: { host: options.host } } : {}),
    })
    socket.once('open', () => {
      socket.close()
      resolve(101)
    })
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      socket.terminate()
    })
    socket.once('error', () => resolve(-1))
  })
}

describe('DNS rebinding: with auth off, only loopback Host names are answered', () => {
  it('a request whose Host is another name is refused (403) on every route and over WebSocket; nothing runs', async () => {
    const server = await serve()
    const port = new URL(server.url).port
    const body = JSON.stringify({ query: CREATE, variables: { name: 'rebound' } })
    for (const host of [`evil.example:${port}`, `127.0.0.1.evil.example:${port}`, 'evil.example']) {
      const r = await withHost(server.url, host, { method: 'POST', body })
      expect(r.status, host).toBe(403)
      expect(JSON.parse(r.body).errors[0].message, host).toMatch(/^Host ".*" is not allowed: with auth off the server answers only to loopback names/)
      expect((await withHost(server.url.replace('/graphql', '/healthz'), host)).status, host).toBe(403)
      expect((await withHost(server.url.replace('/graphql', '/metrics'), host)).status, host).toBe(403)
      expect(await wsHandshake(server.url, { host }), host).toBe(403)
    }
    expect(workflowsNamed(server, 'rebound').n).toBe(0)
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `127.1.2.3:${port}`]) {
      expect((await withHost(server.url, host, { method: 'POST', body })).status, host).toBe(200)
      expect(await wsHandshake(server.url, { host }), host).toBe(101)
    }
    expect(workflowsNamed(server, 'rebound').n).toBe(4)
  })

  it('server.allowedHosts adds names (any port, or name:port); with auth on any Host passes (the token protects)', async () => {
    const listed = await serve({ server: { allowedHosts: ['conveyor.internal', 'ops.internal:8080'] } })
    const port = new URL(listed.url).port
    expect((await withHost(listed.url.replace('/graphql', '/healthz'), `conveyor.internal:${port}`)).status).toBe(200)
    expect((await withHost(listed.url.replace('/graphql', '/healthz'), 'ops.internal:8080')).status).toBe(200)
    expect((await withHost(listed.url.replace('/graphql', '/healthz'), 'ops.internal:9090')).status).toBe(403)
    expect(await wsHandshake(listed.url, { host: `conveyor.internal:${port}` })).toBe(101)

    const authed = await serve({ auth: { required: true } })
    expect((await withHost(authed.url.replace('/graphql', '/healthz'), 'evil.example')).status).toBe(200)
    const refused = await withHost(authed.url, 'evil.example', { method: 'POST', body: JSON.stringify({ query: '{ __typename }' }) })
    expect(refused.status).toBe(401)
  })
})

// ------------------------------------------------------------------------ introspection, GraphiQL

describe('introspection and GraphiQL can be turned off by config', () => {
  const INTROSPECTION = ['{ __schema { queryType { name } } }', '{ __type(name: "Run") { name } }', 'query { run(id: "x") { id } __schema { types { name } } }']

  it('on by default', async () => {
    const server = await serve()
    const r = await overHttp(server.url, undefined, INTROSPECTION[0]!)
    expect(r.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } })
    expect((await fetch(server.url, { headers: { accept: 'text/html' } })).headers.get('content-type')).toMatch(/^text\/html/)
  })

  it('graphql.introspection = false: __schema and __type are rejected over HTTP and graphql-ws; other queries work', async () => {
    const server = await serve({ graphql: { introspection: false } })
    for (const query of INTROSPECTION) {
      const r = await overHttp(server.url, undefined, query)
      expect(r.status, `${query}: ${JSON.stringify(r.body)}`).toBe(400)
      expect(r.body.data, query).toBeUndefined()
      expect(r.body.errors![0]!.message, query).toMatch(/introspection/i)
      const ws = await overWs(server.url, undefined, query)
      expect(ws.results[0]?.errors?.[0]?.message, query).toMatch(/introspection/i)
      expect(ws.results[0]?.data, query).toBeUndefined()
    }
    expect((await overHttp(server.url, undefined, '{ __typename factories { name } }')).body.data).toMatchObject({ __typename: 'Query', factories: expect.any(Array) })
    // GraphiQL still there (it was not turned off), though it cannot load the schema.
    expect((await fetch(server.url, { headers: { accept: 'text/html' } })).headers.get('content-type')).toMatch(/^text\/html/)
  })

  it('graphql.graphiql = false: a browser gets no GraphiQL page', async () => {
    const server = await serve({ graphql: { graphiql: false } })
    const res = await fetch(server.url, { headers: { accept: 'text/html' } })
    expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/html/)
    expect((await res.text()).toLowerCase()).not.toContain('graphiql')
    expect((await overHttp(server.url, undefined, '{ __typename }')).body).toEqual({ data: { __typename: 'Query' } })
  })

  it('with auth on, the GraphiQL page loads without a token, offers the Authorization header and sends subscriptions over SSE', async () => {
    const server = await serve({ auth: { required: true } })
    const html = await (await fetch(server.url, { headers: { accept: 'text/html' } })).text()
    expect(html).toContain('<title>Conveyor</title>')
    expect(html).toContain('Bearer <a token from `conveyor token create`>')
    expect(html).toContain('"subscriptionsProtocol":"SSE"')
  })

  it('a production-like config file through `conveyor serve`: auth on, introspection and GraphiQL off', async () => {
    const dir = tempDir()
    const db = join(dir, 'prod.db')
    const config = join(dir, 'prod.config.ts')
    writeFileSync(
      config,
      `import { defineConfig } from ${JSON.stringify(join(ROOT, 'src/index.ts'))}
export default defineConfig({ auth: { required: true }, graphql: { introspection: false, graphiql: false } })
`,
    )
    const created = cli(['token', 'create', '--scopes', 'read', '--db', db])
    procs.push(created)
    expect((await created.closed).code, created.stderr).toBe(0)
    const token = created.stdout.trim()
    const server = cli(['serve', '--port', '0', '--db', db, '--config', config])
    procs.push(server)
    const url = await server.url()
    expect(new URL(url).hostname).toBe('127.0.0.1')
    const anonymous = await overHttp(url, undefined, '{ __typename }')
    expect(anonymous.status).toBe(401)
    expect(anonymous.body.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED' })
    expect((await overHttp(url, `Bearer ${token}`, '{ __typename }')).body).toEqual({ data: { __typename: 'Query' } })
    const introspection = await overHttp(url, `Bearer ${token}`, INTROSPECTION[0]!)
    expect(introspection.status).toBe(400)
    expect(introspection.body.errors![0]!.message).toMatch(/introspection/i)
    const page = await fetch(url, { headers: { accept: 'text/html' } })
    expect(page.headers.get('content-type') ?? '').not.toMatch(/text\/html/)
    await server.kill()
  }, SLOW)
})
