// One node:http server: GraphQL over HTTP and SSE (yoga), GraphQL over WebSocket (graphql-ws, same
// port and path), GraphiQL, /healthz and /metrics. Secure defaults: loopback only unless auth is on
// (bearer tokens, scopes: access.ts), CSRF prevention, no CORS, same-origin WebSockets.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createYoga, maskError, type YogaServerInstance } from 'graphql-yoga'
import { renderGraphiQL } from '@graphql-yoga/render-graphiql'
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention'
import { WebSocketServer } from 'ws'
import { useServer } from 'graphql-ws/use/ws'
import type { Logger } from 'pino'
import { schema, type GraphQLContext } from './schema/index.ts'
import type { ProjectOrchestrator } from './engine/project-orchestrator.ts'
import { GRAPHIQL_EXAMPLES } from './graphiql-examples.ts'
import { metricsText, watchEventLoopLag } from './metrics.ts'
import { serveArtifact } from './artifact-route.ts'
import { DEFAULT_MAX_UNREAD_BYTES, flowControl } from './ws-flow-control.ts'
import { DEFAULT_MAX_STALL_MS, limitStalledStreams } from './sse-flow-control.ts'
import { useDocumentLimits } from './graphql-limits.ts'
import { sharedNextFrames, useSharedSubscriptionResults } from './shared-subscriptions.ts'
import { createRequire } from 'node:module'
import type { DocumentNode, GraphQLError } from 'graphql'
import { TokenStore } from './engine/tokens.ts'
import {
  assertSafeBind, authenticate, connectionAuthorization, hostAllowed, originAllowed, revokedResult, useAccessControl,
  useNoIntrospection,
} from './access.ts'
import { RevocationWatch } from './revocation.ts'
import { ArtifactLinks } from './artifact-links.ts'
import { guardRequest, guardUpgrade } from './route-guard.ts'

export interface ServerOptions {
  orchestrator: ProjectOrchestrator
  host?: string
  port?: number
  logger?: Logger
  /** Largest accepted request body, in bytes. */
  maxBodyBytes?: number
  /**
   * Bytes a WebSocket client may be sent without showing it read them (ws-flow-control.ts); a client
   * further behind is closed with 1013. Default 1 MiB.
   */
  maxBufferedBytes?: number
  /** An SSE subscriber whose response has waited this long for the client to read is closed (sse-flow-control.ts). Default 10 s. */
  maxStallMs?: number
  /**
   * Bearer-token authentication and scopes (access.ts). Off by default, and then the server only
   * listens on a loopback address. `tokens` defaults to the orchestrator's database.
   */
  auth?: {
    required?: boolean
    tokens?: TokenStore
    /** How often running subscriptions' tokens are checked again for revocation (ms). Default 1000. */
    recheckMs?: number
  }
  /** Both on by default. Introspection off rejects `__schema` / `__type` queries. */
  graphql?: { introspection?: boolean; graphiql?: boolean }
  /** Browser origins, besides the server's own, allowed to call the API (CORS and WebSocket). Default: none. */
  corsOrigins?: string[]
  /**
   * With auth off, requests are answered only when their Host is a loopback name (DNS-rebinding
   * defence, access.ts `hostAllowed`) or one of these (`name` or `name:port`). Default: none.
   */
  allowedHosts?: string[]
}

/** Browsers must send this header (or a non-simple content-type such as application/json) on GraphQL requests. */
export const CSRF_HEADER = 'x-graphql-yoga-csrf'

export interface RunningServer {
  url: string
  server: Server
  yoga: YogaServerInstance<Record<string, never>, GraphQLContext>
  close(): Promise<void>
}

const PATH = '/graphql'

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { orchestrator } = options
  const logger = options.logger ?? orchestrator.context.logger
  const host = options.host ?? '127.0.0.1'
  const authRequired = options.auth?.required ?? false
  assertSafeBind(host, authRequired)
  const tokens = options.auth?.tokens ?? new TokenStore(orchestrator.context.conn)
  const corsOrigins = options.corsOrigins ?? []
  const allowedHosts = options.allowedHosts ?? []
  const revocations = authRequired ? new RevocationWatch(tokens, revokedResult, options.auth?.recheckMs) : undefined
  const links = authRequired ? new ArtifactLinks() : undefined
  const signArtifactUrl = links ? (path: string, id: string) => links.sign(path, id) : undefined
  const yoga = createYoga<Record<string, never>, GraphQLContext>({
    schema,
    graphqlEndpoint: PATH,
    context: () => ({ orchestrator, signArtifactUrl }),
    logging: logger,
    // The node handler below enforces maxBodyBytes before yoga sees a request (declared length, or a
    // chunked body read under the limit); yoga's own check pipes every body through a web stream.
    maxRequestBodySize: false,
    plugins: [
      // Token, alias and directive limits on the document (graphql-limits.ts).
      useDocumentLimits(),
      // A browser can send a "simple" cross-site request (a form: text/plain, urlencoded, multipart)
      // without asking first; those are refused unless they carry CSRF_HEADER.
      useCSRFPrevention({ requestHeaders: [CSRF_HEADER] }),
      ...(authRequired ? [useAccessControl(tokens, revocations)] : []),
      // One execution per event for all subscribers with the same operation (shared-subscriptions.ts).
      useSharedSubscriptionResults({ authRequired }),
      ...(options.graphql?.introspection === false ? [useNoIntrospection()] : []),
    ],
    // Yoga's default CORS reflects any origin, which would let any web page call a loopback server
    // with JSON (preflighted) requests. Only listed origins get CORS headers.
    cors: corsOrigins.length ? { origin: corsOrigins, credentials: false } : false,
    // Errors the API raises on purpose (GraphQLErrors with a code) reach the client; anything else
    // is masked. Checked by name as well as class: the WebSocket path can carry another copy of it.
    maskedErrors: { maskError: (error, message, isDev) => (isIntended(error) ? (error as Error) : maskError(error, message, isDev)) },
    // GraphiQL bundled in the package, so the page works without reaching any CDN.
    renderGraphiQL,
    graphiql:
      options.graphql?.graphiql === false
        ? false
        : {
            title: 'Conveyor',
            // GraphiQL sends its Headers pane over HTTP and SSE, not as graphql-ws connectionParams:
            // with auth on, subscriptions go over SSE so the token applies to them too.
            subscriptionsProtocol: authRequired ? 'SSE' : 'WS',
            defaultQuery: GRAPHIQL_EXAMPLES,
            ...(authRequired ? { headers: JSON.stringify({ authorization: 'Bearer <a token from `conveyor token create`>' }, null, 2) } : {}),
          },
  })

  // Sampled from now on, so the first scrape of /metrics already has a lag to show.
  watchEventLoopLag()
  const maxBody = options.maxBodyBytes ?? 1024 * 1024
  // Plain routes (metrics, artifact downloads) under auth: any valid token, since every scope includes read.
  const routeAllowed = (req: IncomingMessage, res: ServerResponse): boolean => {
    const auth = authenticate(tokens, req.headers.authorization)
    if (!auth.ok) refuse(res, 401, auth.reason, { 'www-authenticate': 'Bearer' })
    return auth.ok
  }
  // Every route inside guardRequest: whatever one throws (sync or async) is a 500 and a log line,
  // never an exception that ends the process (route-guard.ts).
  const server = createServer(guardRequest(logger, (req, res) => {
    if (!authRequired && !hostAllowed(req, allowedHosts)) {
      refuse(res, 403, `Host "${req.headers.host}" is not allowed: with auth off the server answers only to loopback names (add it to server.allowedHosts, or turn auth on)`)
      return
    }
    if (req.headers.host !== undefined && !hostParses(req.headers.host)) {
      // Yoga (and forward's URL below) would fail on it; with auth off hostAllowed has refused it already.
      refuse(res, 400, 'invalid Host header')
      return
    }
    const [path = '/', search = ''] = (req.url ?? '/').split('?', 2)
    if (path === '/healthz') {
      // The body first: if it fails, nothing is sent yet and the guard can still answer 500.
      const body = JSON.stringify({ status: 'ok', activeRuns: orchestrator.coordinator.activeRuns, durability: orchestrator.context.conn.durability })
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
      return
    }
    if (path === '/metrics') {
      if (authRequired && !routeAllowed(req, res)) return
      const body = metricsText(orchestrator, { wsClients: wss.clients.size })
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body)
      return
    }
    if (path.startsWith('/artifacts/') && (req.method === 'GET' || req.method === 'HEAD')) {
      // A signed link from the API (artifact-links.ts) or a bearer token.
      if (links && !links.verify(path.split('/')[2] ?? '', new URLSearchParams(search)) && !routeAllowed(req, res)) return
      return serveArtifact(orchestrator, path, req.method, res)
    }
    const tooLarge = () => refuse(res, 413, `request body exceeds ${maxBody} bytes`, { connection: 'close' })
    if (Number(req.headers['content-length'] ?? 0) > maxBody) {
      tooLarge()
      return
    }
    if (req.headers['transfer-encoding'] === undefined) return yoga(req, res)
    // A chunked body has no declared length: read it under the limit, then hand it to yoga.
    return readLimited(req, maxBody).then(
      async (body) => {
        if (body) await forward(yoga, req, res, body)
        else tooLarge()
      },
      () => {
        res.destroy()
      },
    )
  }))

  // noServer: the upgrade listener is ours, so that it runs inside guardUpgrade like the routes.
  const wss = new WebSocketServer({
    noServer: true,
    path: PATH,
    maxPayload: maxBody,
    verifyClient: (info, done) => {
      if (!authRequired && !hostAllowed(info.req, allowedHosts)) return done(false, 403, 'Forbidden host')
      return originAllowed(info.req, corsOrigins) ? done(true) : done(false, 403, 'Forbidden origin')
    },
  })
  server.on('upgrade', guardUpgrade(logger, (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (client) => {
      // The handshake is answered: a failure from here on can only close the WebSocket.
      try {
        wss.emit('connection', client, req)
      } catch (error) {
        client.terminate()
        throw error
      }
    })
  }))
  flowControl(wss, { maxUnreadBytes: options.maxBufferedBytes ?? DEFAULT_MAX_UNREAD_BYTES, logger })
  awaitConnectionInit(wss, CONNECTION_INIT_WAIT_MS)
  const stalls = limitStalledStreams(server, options.maxStallMs ?? DEFAULT_MAX_STALL_MS, logger)
  // Last, so the frames the other wrappers see are the real ones.
  const frames = sharedNextFrames()
  frames.attach(wss)
  const ws = useServer(
    {
      // With auth on, the connection is refused without a valid token (close 4401); each operation
      // is then checked again (revocation, scopes) by useAccessControl.
      // Its own timer can fire before a connection_init already received is read: awaitConnectionInit.
      connectionInitWaitTimeout: 0,
      onConnect: (ctx) => {
        if (!authRequired) return true
        const authorization = connectionAuthorization(ctx.connectionParams, ctx.extra.request)
        if (authenticate(tokens, authorization, true).ok) return true
        ctx.extra.socket.close(4401, authorization ? 'Unauthorized: invalid or revoked token' : 'Unauthorized: send connectionParams.authorization')
        return false
      },
      // Each shared result is serialised once for all its subscribers (shared-subscriptions.ts).
      onNext: frames.onNext,
      jsonMessageReplacer: frames.jsonMessageReplacer,
      onOperation: frames.onOperation,
      // Build execute/subscribe from yoga's envelop so its plugins and context apply here too.
      execute: ((args: { rootValue: { execute: (a: unknown) => unknown } }) => args.rootValue.execute(args)) as never,
      subscribe: ((args: { rootValue: { subscribe: (a: unknown) => unknown } }) => args.rootValue.subscribe(args)) as never,
      onSubscribe: async (ctx, _id, params) => {
        const { schema: s, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          ...(authRequired ? { connectionAuthorization: connectionAuthorization(ctx.connectionParams, ctx.extra.request) } : {}),
        })
        // A document that does not parse (or is over the token limit) is an error message for this
        // operation, not a thrown error that would close the whole connection (4500).
        let document: DocumentNode
        try {
          document = parse(params.query)
        } catch (error) {
          if ((error as Error)?.name === 'GraphQLError') return asWsErrors([error as GraphQLError])
          throw error
        }
        const args = {
          schema: s,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        }
        const errors = validate(args.schema, args.document)
        if (errors.length) return asWsErrors(errors)
        return args as never
      },
    },
    wss,
    15_000, // keep-alive ping interval
  )

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 4000, host, () => resolve())
  })
  const address = server.address() as AddressInfo
  const listening = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${listening}:${address.port}${PATH}`
  logger.info({ url, auth: authRequired ? 'required' : 'off' }, 'conveyor listening')

  let closed = false
  return {
    url,
    server,
    yoga,
    async close() {
      if (closed) return
      closed = true
      revocations?.close()
      stalls.close()
      // Clients get a close frame (1001); one that does not answer (it stopped reading) would hold the
      // shutdown for ws's 30 s close timeout: its socket is destroyed after a second instead.
      const stragglers = setTimeout(() => wss.clients.forEach((c) => c.terminate()), 1000)
      await ws.dispose()
      clearTimeout(stragglers)
      await new Promise<void>((resolve) => wss.close(() => resolve()))
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Whether a Host header value is a host (and port) a URL can be made of. */
function hostParses(host: string): boolean {
  try {
    return new URL(`http://${host}/`).host !== ''
  } catch {
    return false
  }
}

function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ errors: [{ message }] }))
}

/**
 * graphql-ws accepts only instances of the GraphQLError class it imports itself, and a bundler or test
 * runner can hand us another copy of graphql (ESM beside CJS): rebuild the errors with its class.
 */
const WsGraphQLError = (createRequire(import.meta.url)('graphql') as typeof import('graphql')).GraphQLError
function asWsErrors(errors: readonly GraphQLError[]): GraphQLError[] {
  return errors.map((e: GraphQLError) => {
    if ((e as unknown) instanceof WsGraphQLError) return e
    return new WsGraphQLError(e.message, { nodes: e.nodes, extensions: e.extensions }) as GraphQLError
  })
}

function isIntended(error: unknown): boolean {
  for (let e = error as { name?: string; originalError?: unknown } | undefined; e; e = e.originalError as typeof e) {
    if (e.name !== 'GraphQLError') return false
    if (!e.originalError) return true
  }
  return false
}

async function readLimited(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > max) {
      req.resume()
      return undefined
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

async function forward(yoga: RunningServer['yoga'], req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'transfer-encoding') continue
    headers.set(name, Array.isArray(value) ? value.join(', ') : value)
  }
  const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`)
  const response = await yoga.fetch(url, { method: req.method, headers, body: new Uint8Array(body) })
  res.writeHead(response.status, Object.fromEntries(response.headers))
  if (response.body) for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk)
  res.end()
}

/** How long a new WebSocket may stay silent before it is closed for not sending connection_init. */
const CONNECTION_INIT_WAIT_MS = 3_000

/**
 * Closes a WebSocket that sent nothing within `ms` (4408, as graphql-ws does). graphql-ws's own
 * wait is a bare timer, and Node runs due timers before it reads the sockets: when the event loop
 * was held up past the wait right after a client connected (a start-up recovering runs on a loaded
 * machine), the timer closed the connection although the client's connection_init had arrived long
 * before and only waited to be read. Here the check runs after the next poll phase (setImmediate),
 * once whatever arrived meanwhile has been read.
 */
function awaitConnectionInit(wss: WebSocketServer, ms: number): void {
  wss.on('connection', (socket) => {
    let heard = false
    socket.once('message', () => (heard = true))
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (!heard && socket.readyState === socket.OPEN) socket.close(4408, 'Connection initialisation timeout')
      })
    }, ms)
    socket.once('close', () => clearTimeout(timer))
  })
}
