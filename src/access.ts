// Access control for the GraphQL server, in one place: which scope each root field needs, who the
// caller is (a bearer token on HTTP and SSE, `connectionParams.authorization` on graphql-ws), and an
// envelop plugin that checks every operation before it executes or subscribes. The WebSocket path
// runs through yoga's envelop too (server.ts), so one check covers HTTP, SSE and graphql-ws.
import type { IncomingMessage } from 'node:http'
import { BlockList, isIP } from 'node:net'
import {
  Kind, OperationTypeNode, getOperationAST,
  type DocumentNode, type FragmentDefinitionNode, type GraphQLError, type SelectionSetNode, type ValidationRule,
} from 'graphql'
// Errors are made with yoga's own graphql copy: where two copies load (vitest resolves graphql's ESM
// build, yoga's Node import the CJS one), yoga would otherwise not recognise them as GraphQL errors.
import { createGraphQLError, type Plugin } from 'graphql-yoga'
import { SCOPES, type Scope, type TokenStore } from './engine/tokens.ts'
import type { RevocationWatch } from './revocation.ts'

/**
 * The scope each mutation needs. Queries and subscriptions need `read`. A mutation missing here
 * needs `admin` (closed by default); test/auth.test.ts fails until every mutation is listed.
 */
export const MUTATION_SCOPES: Readonly<Record<string, Scope>> = {
  // Running and controlling runs.
  executeWorkflow: 'execute',
  cancelRun: 'execute',
  pauseRun: 'execute',
  resumeRun: 'execute',
  retryRun: 'execute',
  rollbackRun: 'execute',
  signalRun: 'execute',
  // Workflows and templates.
  createWorkflow: 'admin',
  updateWorkflow: 'admin',
  rollbackWorkflow: 'admin',
  registerTemplate: 'admin',
  createWorkflowFromTemplate: 'admin',
}

export function requiredScope(operation: OperationTypeNode, field: string): Scope {
  if (operation === OperationTypeNode.MUTATION && !field.startsWith('__')) return MUTATION_SCOPES[field] ?? 'admin'
  return 'read'
}

/** The strongest scope the operation's root fields need (fragments on the root type included). */
export function operationScope(document: DocumentNode, operationName?: string | null): Scope | undefined {
  const operation = getOperationAST(document, operationName)
  if (!operation) return undefined // execution reports it and runs nothing
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d)
  let rank = 0
  const seen = new Set<string>()
  const walk = (set: SelectionSetNode) => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) rank = Math.max(rank, SCOPES.indexOf(requiredScope(operation.operation, s.name.value)))
      else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet)
      else if (!seen.has(s.name.value)) {
        seen.add(s.name.value)
        const fragment = fragments.get(s.name.value)
        if (fragment) walk(fragment.selectionSet)
      }
    }
  }
  walk(operation.selectionSet)
  return SCOPES[rank]
}

/** The token in `Bearer <token>`; on graphql-ws also a bare token. */
export function bearerToken(value: unknown, allowBare = false): string | undefined {
  if (typeof value !== 'string') return undefined
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(value)
  if (match) return match[1]
  return allowBare && /^\S+$/.test(value.trim()) ? value.trim() : undefined
}

/** What graphql-ws's connection_init carried: `authorization` (or `Authorization`). */
export function connectionAuthorization(params: Readonly<Record<string, unknown>> | undefined, request: IncomingMessage): string | undefined {
  const value = params?.authorization ?? params?.Authorization ?? request.headers.authorization
  return typeof value === 'string' ? value : undefined
}

export type Authentication = { ok: true; scopes: readonly Scope[] } | { ok: false; reason: string }

export function authenticate(tokens: TokenStore, authorization: string | undefined, allowBare = false): Authentication {
  if (authorization === undefined || authorization === '') {
    return { ok: false, reason: 'authentication required: send "Authorization: Bearer <token>" (create one with `conveyor token create`)' }
  }
  const scopes = tokens.verify(bearerToken(authorization, allowBare))
  return scopes ? { ok: true, scopes } : { ok: false, reason: 'invalid or revoked token' }
}

/** Context keys the plugin reads: yoga's `request` (HTTP, SSE) or the WebSocket connection's value. */
interface AccessContext {
  request?: Request
  /** Set by the graphql-ws path (server.ts): the connection's authorization, already checked at connect. */
  connectionAuthorization?: string
}

export function unauthenticated(reason: string, http: boolean): GraphQLError {
  return createGraphQLError(reason, {
    extensions: { code: 'UNAUTHENTICATED', ...(http ? { http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } } : {}) },
  })
}

function forbidden(required: Scope, granted: readonly Scope[], http: boolean): GraphQLError {
  const has = granted.at(-1) ?? 'none'
  return createGraphQLError(`this operation needs the "${required}" scope; the token has "${has}"`, {
    extensions: { code: 'FORBIDDEN', requiredScope: required, ...(http ? { http: { status: 403 } } : {}) },
  })
}

/**
 * Checks the caller's token and the operation's scope before every execute and subscribe, over
 * every transport. A denied operation runs nothing: its only result is the error. With `watch`, a
 * subscription ends when its token is revoked (revocation.ts).
 */
export function useAccessControl(tokens: TokenStore, watch?: RevocationWatch): Plugin<AccessContext> {
  const authorizationOf = (context: AccessContext) => {
    const ws = 'connectionAuthorization' in context
    return { ws, authorization: ws ? context.connectionAuthorization : context.request?.headers.get('authorization') ?? undefined }
  }
  const check = (args: { contextValue: unknown; document: DocumentNode; operationName?: string | null }): GraphQLError | undefined => {
    const { ws, authorization } = authorizationOf(args.contextValue as AccessContext)
    const auth = authenticate(tokens, authorization, ws)
    if (!auth.ok) return unauthenticated(auth.reason, !ws)
    const required = operationScope(args.document, args.operationName)
    if (required && !auth.scopes.includes(required)) return forbidden(required, auth.scopes, !ws)
    return undefined
  }
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const denied = check(args)
      if (denied) setResultAndStopExecution({ errors: [denied] })
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const denied = check(args)
      if (denied) {
        setResultAndStopExecution({ errors: [denied] })
        return undefined
      }
      const { ws, authorization } = authorizationOf(args.contextValue as AccessContext)
      const token = bearerToken(authorization, ws)
      if (!watch || !token) return undefined
      return {
        onSubscribeResult({ result, setResult }) {
          if (Symbol.asyncIterator in result) setResult(watch.guard(token, result))
        },
      }
    },
  }
}

/** The last result of a subscription whose token was revoked while it ran. */
export function revokedResult(): { errors: GraphQLError[] } {
  return { errors: [unauthenticated('the token of this subscription was revoked', false)] }
}

/**
 * Rejects `__schema` and `__type` during validation: the only ways into introspection (like graphql's
 * NoSchemaIntrospectionCustomRule). `__typename` stays allowed.
 */
const NoIntrospection: ValidationRule = (context) => ({
  Field(node) {
    const name = node.name.value
    if (name === '__schema' || name === '__type') {
      context.reportError(createGraphQLError(`introspection is disabled on this server (the query asks for "${name}")`, { nodes: [node] }))
    }
  },
})

export function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoIntrospection)
    },
  }
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. Anything else, including 0.0.0.0 and ::, is not. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost') return true
  const family = isIP(h)
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6')
}

/** Throws when the server would listen beyond this machine without authentication. */
export function assertSafeBind(host: string, authRequired: boolean): void {
  if (authRequired || isLoopback(host)) return
  throw new Error(
    `refusing to listen on ${host || 'every interface'} without authentication: a non-loopback address needs auth on. ` +
      'Create a token with `conveyor token create --scopes admin`, then start with CONVEYOR_AUTH=required ' +
      '(or `auth: { required: true }` in the config) — or listen on 127.0.0.1.',
  )
}

/**
 * Browsers send Origin with every WebSocket handshake and no CORS check applies to WebSockets, so a
 * page on another site could otherwise drive the API through the user's browser. Same-origin and
 * listed origins pass; a client without Origin (not a browser) passes.
 */
export function originAllowed(request: IncomingMessage, allowedOrigins: readonly string[]): boolean {
  const origin = request.headers.origin
  if (origin === undefined) return true
  if (allowedOrigins.includes(origin)) return true
  try {
    return new URL(origin).host === request.headers.host
  } catch {
    return false
  }
}

/**
 * With auth off, the API is protected only by listening on loopback, and a web page can reach it
 * anyway through DNS rebinding (its own name re-pointed to 127.0.0.1: same origin for the browser).
 * Its requests still carry that name in Host, so requests are answered only for loopback names and
 * the listed ones (`server.allowedHosts`). A request without Host (HTTP/1.0) passes.
 */
export function hostAllowed(request: IncomingMessage, allowedHosts: readonly string[]): boolean {
  const host = request.headers.host
  if (host === undefined) return true
  // Every request asks, with a handful of distinct Host values: remember the answers (bounded).
  let known = hostAnswers.get(allowedHosts)
  if (!known) hostAnswers.set(allowedHosts, (known = new Map()))
  let allowed = known.get(host)
  if (allowed === undefined) {
    allowed = hostNameAllowed(host, allowedHosts)
    if (known.size >= 256) known.clear()
    known.set(host, allowed)
  }
  return allowed
}

const hostAnswers = new WeakMap<readonly string[], Map<string, boolean>>()

function hostNameAllowed(host: string, allowedHosts: readonly string[]): boolean {
  let hostname: string
  try {
    hostname = new URL(`http://${host}/`).hostname
  } catch {
    return false
  }
  return isLoopback(hostname) || allowedHosts.some((h) => h.toLowerCase() === hostname || h.toLowerCase() === host.toLowerCase())
}
