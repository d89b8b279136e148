// `http`: one HTTP request per step, with the global `fetch`. Secure by default: a request goes
// only to hosts on the factory's allow-list (empty unless configured), and loopback, link-local,
// cloud-metadata and this machine's own addresses need an exact entry even when a wildcard would
// match them, and private networks an exact entry or a range entry, whether a URL names them or DNS
// answers with them (http-hosts.ts). Redirects are
// followed by hand so that every hop is checked against the list before it is connected to.
import type dns from 'node:dns'
import { Agent } from 'undici'
import { z } from 'zod'
import { defineFactory } from '../factory.ts'
import { NonRetryableError } from '../errors.ts'
import type { ActionContext } from '../interfaces.ts'
import { ADDRESS_REFUSED, hostPolicy, type HostPolicy } from './http-hosts.ts'

export interface HttpFactoryOptions {
  /**
   * Hosts requests may go to: `api.example.com` (any port), `api.example.com:8443` (that port only),
   * `*.example.com` (any subdomain, not example.com itself), `*` (any host), `[::1]:8080` for IPv6.
   * Default: empty, so every request is refused. Loopback, link-local and metadata addresses
   * (127.0.0.0/8, ::1, 0.0.0.0, 169.254.0.0/16, fe80::/10, localhost, metadata.google.internal) and
   * this machine's own addresses are only allowed by an entry naming that exact host; a name that
   * resolves to one of them needs an entry naming the address. Private addresses (10.0.0.0/8,
   * 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7) are not reached through a wildcard
   * either: a range entry (`10.0.0.0/8`, `fd00::/8`), an exact address, or (for what DNS gives) a
   * name listed exactly allows them.
   */
  allowedHosts?: readonly string[]
  /** The DNS resolver (default `dns.lookup`); its answers are checked before connecting. */
  lookup?: typeof dns.lookup
  /** Largest response body read, in bytes; a bigger one fails the step. Default 10 MiB. */
  maxResponseBytes?: number
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
const MAX_REDIRECTS = 5
const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
/** Headers not carried to another origin on a redirect. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization']

const scalar = z.union([z.string(), z.number(), z.boolean()])

/** The input schema; `check` refuses literal URLs to hosts off the list when a workflow is validated. */
function requestInput(check: (url: URL) => string | undefined) {
  return z
    .strictObject({
      method: z.enum(METHODS).default('GET').describe('HTTP method'),
      url: z
        .string()
        .min(1)
        .superRefine((url, ctx) => {
          if (url.includes('{{')) return
          const problem = urlProblem(url) ?? check(new URL(url))
          if (problem) ctx.addIssue({ code: 'custom', message: problem })
        })
        .describe('http or https URL; its host must be on the allow-list'),
      headers: z.record(z.string(), z.string()).optional().describe('request headers'),
      query: z
        .record(z.string(), z.union([scalar, z.array(scalar)]))
        .optional()
        .describe("appended to the URL's query string (an array repeats the name)"),
      json: z.unknown().optional().describe('request body, sent as JSON (content-type application/json unless set)'),
      body: z.string().optional().describe('request body as text'),
      timeoutMs: z.int().positive().max(600_000).default(30_000).describe('aborts the request after this long (default 30000)'),
    })
    .superRefine((v, ctx) => {
      if (v.json !== undefined && v.body !== undefined) ctx.addIssue({ code: 'custom', path: ['body'], message: 'give json or body, not both' })
      if ((v.method === 'GET' || v.method === 'HEAD') && (v.json !== undefined || v.body !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['method'], message: `a ${v.method} request cannot have a body` })
      }
    })
}

type RequestInput = z.output<ReturnType<typeof requestInput>>

const responseOutput = z.object({
  status: z.int(),
  headers: z.record(z.string(), z.string()),
  body: z.unknown(),
})

function urlProblem(url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `"${url}" is not an absolute URL`
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `only http and https URLs are supported, not ${parsed.protocol}`
  return undefined
}

// ------------------------------------------------------------------------------ the request

/** Retry-After: seconds or an HTTP date, as milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

function isJson(contentType: string | null): boolean {
  if (!contentType) return false
  const type = contentType.split(';')[0]!.trim().toLowerCase()
  return type === 'application/json' || /^[a-z]+\/[\w.!#$&^-]+\+json$/.test(type)
}

/** The URL without query, fragment or credentials: what error messages may show. */
function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`
}

async function readBody(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => {})
    throw new NonRetryableError(`response body of ${declared} bytes is larger than the limit of ${limit} bytes`)
  }
  if (!response.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength
    if (size > limit) throw new NonRetryableError(`response body is larger than the limit of ${limit} bytes`)
    chunks.push(chunk)
  }
  return new TextDecoder().decode(Buffer.concat(chunks))
}

interface RequestState {
  url: URL
  method: string
  headers: Headers
  body: string | undefined
}

/** The request for the hop after a redirect (fetch's rules: 303, and 301/302 after POST, become GET). */
function redirected(state: RequestState, status: number, location: URL): RequestState {
  let { method, body } = state
  const headers = new Headers(state.headers)
  if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
    method = 'GET'
    body = undefined
    for (const name of ['content-type', 'content-length', 'content-encoding', 'content-language']) headers.delete(name)
  }
  if (location.origin !== state.url.origin) for (const name of CREDENTIAL_HEADERS) headers.delete(name)
  return { url: location, method, headers, body }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

function failure(status: number, statusText: string, method: string, url: URL, text: string, retryAfterMs: number | undefined): Error {
  const snippet = text.trim().slice(0, 300)
  const message = `HTTP ${status}${statusText ? ` ${statusText}` : ''} from ${method} ${displayUrl(url)}${snippet ? `: ${snippet}` : ''}`
  if (status >= 500 || status === 429) {
    return Object.assign(new Error(message), { status, retryable: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) })
  }
  return Object.assign(new NonRetryableError(message), { status })
}

async function request(input: RequestInput, ctx: ActionContext, policy: HostPolicy, maxBytes: number) {
  const problem = urlProblem(input.url)
  if (problem) throw new NonRetryableError(problem)
  const url = new URL(input.url)
  for (const [name, value] of Object.entries(input.query ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(item))
  }
  const headers = new Headers(input.headers ?? {})
  let body = input.body
  if (input.json !== undefined) {
    body = JSON.stringify(input.json)
    if (!headers.has('content-type')) headers.set('content-type', 'application/json')
  }
  const timeout = AbortSignal.timeout(input.timeoutMs)
  const signal = AbortSignal.any([ctx.signal, timeout])
  let state: RequestState = { url, method: input.method, headers, body }

  for (let hop = 0; ; hop++) {
    const denied = policy.check(state.url)
    if (denied) throw new NonRetryableError(hop === 0 ? denied : `redirect refused: ${denied}`)
    // One connection pool per hop, whose sockets resolve names through the policy's lookup.
    const dispatcher = new Agent({ connect: { lookup: policy.lookupFor(state.url) } })
    try {
      const response = await send(state, dispatcher, signal, ctx, input.timeoutMs, hop)
      const location = response.headers.get('location')
      if (REDIRECT_STATUSES.has(response.status) && location !== null) {
        await response.body?.cancel().catch(() => {})
        if (hop >= MAX_REDIRECTS) throw new NonRetryableError(`more than ${MAX_REDIRECTS} redirects from ${input.method} ${displayUrl(url)}`)
        let next: URL
        try {
          next = new URL(location, state.url)
        } catch {
          throw new NonRetryableError(`redirect to an invalid location "${location}"`)
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new NonRetryableError(`redirect refused: ${next.protocol} URLs are not supported`)
        state = redirected(state, response.status, next)
        continue
      }
      return await settle(response, state, input.timeoutMs, timeout, ctx, maxBytes)
    } finally {
      void dispatcher.destroy().catch(() => {})
    }
  }
}

async function send(state: RequestState, dispatcher: Agent, signal: AbortSignal, ctx: ActionContext, timeoutMs: number, hop: number): Promise<Response> {
  try {
    // `dispatcher` is undici's option, which Node's fetch (undici inside) honours.
    const init = { method: state.method, headers: state.headers, body: state.body, redirect: 'manual', signal, dispatcher } as RequestInit
    return await fetch(state.url, init)
  } catch (error) {
    if (ctx.signal.aborted) throw ctx.signal.reason
    if (signal.aborted) throw new Error(`request timed out after ${timeoutMs} ms: ${state.method} ${displayUrl(state.url)}`)
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    if (cause?.code === ADDRESS_REFUSED) throw new NonRetryableError(hop === 0 ? cause.message! : `redirect refused: ${cause.message}`)
    throw new Error(`request failed: ${state.method} ${displayUrl(state.url)}: ${cause?.code ?? cause?.message ?? (error as Error).message}`)
  }
}

/** The final response: its body read under the limit, a failure for non-2xx, JSON parsed. */
async function settle(response: Response, state: RequestState, timeoutMs: number, timeout: AbortSignal, ctx: ActionContext, maxBytes: number) {
  let text: string
  try {
    text = state.method === 'HEAD' ? '' : await readBody(response, maxBytes)
  } catch (error) {
    if (ctx.signal.aborted) throw ctx.signal.reason
    if (timeout.aborted) throw new Error(`request timed out after ${timeoutMs} ms reading the response: ${state.method} ${displayUrl(state.url)}`)
    throw error
  }
  // 304 answers a conditional request (If-None-Match and the like): not a failure.
  if ((response.status < 200 || response.status > 299) && response.status !== 304) {
    throw failure(response.status, response.statusText, state.method, state.url, text, parseRetryAfter(response.headers.get('retry-after')))
  }
  const responseHeaders: Record<string, string> = {}
  response.headers.forEach((value, name) => (responseHeaders[name] = value))
  let parsed: unknown = text
  if (isJson(response.headers.get('content-type'))) {
    try {
      parsed = text.trim() === '' ? null : JSON.parse(text)
    } catch (error) {
      throw new NonRetryableError(`response of ${state.method} ${displayUrl(state.url)} says JSON but does not parse: ${(error as Error).message}`)
    }
  }
  return { status: response.status, headers: responseHeaders, body: parsed }
}

/** The `http` factory with its own allow-list of hosts (empty by default: every request refused). */
export function httpFactory(options: HttpFactoryOptions = {}) {
  const policy = hostPolicy(options.allowedHosts ?? [], { lookup: options.lookup })
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
  return defineFactory({
    name: 'http',
    description: 'Built-in: HTTP requests to the hosts on the allow-list (configure http.allowedHosts; empty by default).',
    actions: {
      request: {
        description:
          'One HTTP request. Output { status, headers, body } (body parsed when the response is JSON). ' +
          '2xx succeeds; 5xx, 429 and network errors are retried (Retry-After honoured); other statuses fail at once.',
        input: requestInput(policy.check),
        output: responseOutput,
        retry: { maxAttempts: 3, backoff: 'exponential', initialMs: 500 },
        run: (input, ctx) => request(input, ctx, policy, maxBytes),
      },
    },
  })
}
