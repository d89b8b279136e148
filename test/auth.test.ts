// API tokens and scopes (issue 7, item 7). A real server on a loopback port with auth required; every
// mutation and subscription (and queries) is walked with no token, a malformed, a forged and a
// revoked token, and a read, execute and admin token: over HTTP and graphql-ws for operations, over
// graphql-ws and SSE for subscriptions. An allowed mutation must really act (its success type, the
// state it changes); a refused one must act on nothing (the same state before and after).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { OperationTypeNode } from 'graphql'
import { orchestratorFromConfig, serverOptionsFromConfig, startServer, type ProjectOrchestrator, type RunningServer } from '../src/index.ts'
import { SCOPES, TokenStore, effectiveScopes, type Scope } from '../src/engine/tokens.ts'
import { MUTATION_SCOPES, requiredScope } from '../src/access.ts'
import { schema } from '../src/schema/index.ts'
import { until } from './support/barrier.ts'
import { cli, overHttp, overSse, overWs, type CliProcess, type Json, type WsResult } from './helpers/access.ts'

const SLOW = 120_000
const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-auth-'))
  dirs.push(dir)
  return dir
}

let o: ProjectOrchestrator
let server: RunningServer
let tokens: TokenStore
let db: string
const caller: Record<string, string | undefined> = {}

/** What the server should decide for each caller, given the operation's scope. */
const CALLERS = ['no token', 'not a token', 'forged', 'revoked', 'bare token', 'read', 'execute', 'admin'] as const
type Caller = (typeof CALLERS)[number]
type Verdict = 'OK' | 'UNAUTHENTICATED' | 'FORBIDDEN'

function expected(who: Caller, required: Scope): Verdict {
  if (who !== 'read' && who !== 'execute' && who !== 'admin') return 'UNAUTHENTICATED'
  return SCOPES.indexOf(who) >= SCOPES.indexOf(required) ? 'OK' : 'FORBIDDEN'
}

beforeAll(async () => {
  db = join(tempDir(), 'auth.db')
  o = orchestratorFromConfig({ database: db })
  // The config path: `auth: { required: true }` turns it on (CONVEYOR_AUTH left out on purpose).
  server = await startServer({ orchestrator: o, host: '127.0.0.1', port: 0, ...serverOptionsFromConfig({ auth: { required: true } }, {}) })
  tokens = new TokenStore(o.context.conn)
  o.workflows.registerTemplate('auth_noop', NOOP)
  for (const scope of SCOPES) caller[scope] = `Bearer ${tokens.create({ name: scope, scopes: [scope] }).token}`
  const revoked = tokens.create({ name: 'revoked', scopes: 'admin' })
  tokens.revoke(revoked.id)
  caller.revoked = `Bearer ${revoked.token}`
  const admin = caller.admin!.slice('Bearer '.length)
  // The admin token's id with another secret of the right shape.
  caller.forged = `Bearer ${admin.slice(0, admin.lastIndexOf('_') + 1)}${'A'.repeat(43)}`
  caller['not a token'] = 'Bearer hello'
  caller['bare token'] = admin // HTTP needs the Bearer scheme
  caller['no token'] = undefined
})

afterAll(async () => {
  await server?.close()
  await o?.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

// ------------------------------------------------------------------------------------- fixtures

const sql = <T>(query: string, ...params: unknown[]): T => o.context.conn.sqlite.prepare(query).get(...params) as T
const runState = (runId: string) => ({
  run: sql<{ status: string }>('select status from runs where id = ?', runId).status,
  steps: o.context.conn.sqlite.prepare('select step_id, status from steps where run_id = ? order by id').all(runId),
})

let unique = 0
const name = (prefix: string) => `${prefix}_${++unique}`

const APPROVAL = { steps: [{ id: 'approve', factory: 'control', action: 'approval' }] }
const NOOP = { steps: [{ id: 'hello', factory: 'control', action: 'noop', params: { hi: 1 } }] }
const FAIL = { steps: [{ id: 'boom', factory: 'control', action: 'fail', params: { retryable: false } }] }

async function waitingRun(): Promise<string> {
  const { runId } = await o.startWorkflow(await o.createWorkflow(name('approval'), APPROVAL))
  await until(() => o.coordinator.readResult(runId).steps.approve?.status === 'WAITING')
  return runId
}

async function finishedRun(definition: unknown): Promise<string> {
  return (await o.executeWorkflow(await o.createWorkflow(name('finished'), definition))).runId
}

interface MutationCase {
  query: string
  /** The union member an allowed call returns. */
  success: string
  /** Makes what the mutation acts on: its variables and a probe of the state it changes. */
  setup(): Promise<{ variables: Record<string, unknown>; state(): unknown }>
}

const RESULT = '{ __typename ... on Error { message } }'

const MUTATIONS: Record<string, MutationCase> = {
  createWorkflow: {
    query: `mutation ($name: String!, $definition: JSON!) { createWorkflow(input: { name: $name, definition: $definition }) ${RESULT} }`,
    success: 'CreateWorkflowSuccess',
    async setup() {
      const n = name('created')
      return { variables: { name: n, definition: NOOP }, state: () => sql('select count(*) as n from workflows where name = ?', n) }
    },
  },
  updateWorkflow: {
    query: `mutation ($id: ID!, $definition: JSON!) { updateWorkflow(input: { id: $id, definition: $definition }) ${RESULT} }`,
    success: 'CreateWorkflowSuccess',
    async setup() {
      const id = await o.createWorkflow(name('update'), NOOP)
      return { variables: { id, definition: APPROVAL }, state: () => sql('select current_version from workflows where id = ?', id) }
    },
  },
  rollbackWorkflow: {
    query: `mutation ($id: ID!) { rollbackWorkflow(input: { id: $id, version: 1 }) ${RESULT} }`,
    success: 'CreateWorkflowSuccess',
    async setup() {
      const id = await o.createWorkflow(name('rollback'), NOOP)
      await o.updateWorkflow(id, APPROVAL)
      return { variables: { id }, state: () => sql('select current_version from workflows where id = ?', id) }
    },
  },
  registerTemplate: {
    query: `mutation ($name: String!, $definition: JSON!) { registerTemplate(input: { name: $name, definition: $definition }) ${RESULT} }`,
    success: 'RegisterTemplateSuccess',
    async setup() {
      const n = name('template')
      return { variables: { name: n, definition: NOOP }, state: () => sql('select count(*) as n from templates where name = ?', n) }
    },
  },
  createWorkflowFromTemplate: {
    query: `mutation ($name: String!) { createWorkflowFromTemplate(input: { template: "auth_noop", name: $name }) ${RESULT} }`,
    success: 'CreateWorkflowSuccess',
    async setup() {
      const n = name('from_template')
      return { variables: { name: n }, state: () => sql('select count(*) as n from workflows where name = ?', n) }
    },
  },
  executeWorkflow: {
    query: `mutation ($id: ID!) { executeWorkflow(input: { workflowId: $id }) ${RESULT} }`,
    success: 'ExecuteWorkflowSuccess',
    async setup() {
      const id = await o.createWorkflow(name('execute'), NOOP)
      return { variables: { id }, state: () => sql('select count(*) as n from runs where workflow_id = ?', id) }
    },
  },
  cancelRun: {
    query: `mutation ($id: ID!) { cancelRun(input: { runId: $id }) ${RESULT} }`,
    success: 'RunSuccess',
    async setup() {
      const id = await waitingRun()
      return { variables: { id }, state: () => runState(id) }
    },
  },
  pauseRun: {
    query: `mutation ($id: ID!) { pauseRun(input: { runId: $id }) ${RESULT} }`,
    success: 'RunSuccess',
    async setup() {
      const id = await waitingRun()
      return { variables: { id }, state: () => runState(id) }
    },
  },
  resumeRun: {
    query: `mutation ($id: ID!) { resumeRun(input: { runId: $id }) ${RESULT} }`,
    success: 'RunSuccess',
    async setup() {
      const id = await waitingRun()
      await o.pauseRun(id)
      return { variables: { id }, state: () => runState(id) }
    },
  },
  signalRun: {
    query: `mutation ($id: ID!) { signalRun(input: { runId: $id, stepId: "approve", payload: { ok: true } }) ${RESULT} }`,
    success: 'RunSuccess',
    async setup() {
      const id = await waitingRun()
      return { variables: { id }, state: () => runState(id) }
    },
  },
  retryRun: {
    query: `mutation ($id: ID!) { retryRun(input: { runId: $id }) ${RESULT} }`,
    success: 'RunSuccess',
    async setup() {
      const id = await finishedRun(FAIL)
      return { variables: { id }, state: () => sql('select count(*) as n from runs where retry_of = ?', id) }
    },
  },
  rollbackRun: {
    query: `mutation ($id: ID!) { rollbackRun(input: { runId: $id }) ${RESULT} }`,
    success: 'RunSuccess',
    async setup() {
      const id = await finishedRun(NOOP)
      return { variables: { id }, state: () => runState(id) }
    },
  },
}

/** The scopes issue 7 asks for, written out independently of src/access.ts. */
const EXPECTED_SCOPES: Record<string, Scope> = {
  executeWorkflow: 'execute', cancelRun: 'execute', pauseRun: 'execute', resumeRun: 'execute',
  retryRun: 'execute', rollbackRun: 'execute', signalRun: 'execute',
  createWorkflow: 'admin', updateWorkflow: 'admin', rollbackWorkflow: 'admin', registerTemplate: 'admin', createWorkflowFromTemplate: 'admin',
}

const rootFields = (type: 'Mutation' | 'Subscription' | 'Query') => Object.keys((schema.getType(type) as { getFields(): object }).getFields()).sort()

/** Reduces an HTTP answer to the verdict, checking status and shape on the way. */
function httpVerdict(r: Awaited<ReturnType<typeof overHttp>>, label: string): Verdict {
  const code = r.body.errors?.[0]?.extensions?.code as string | undefined
  if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN') {
    expect(r.status, label).toBe(code === 'UNAUTHENTICATED' ? 401 : 403)
    if (code === 'UNAUTHENTICATED') expect(r.headers.get('www-authenticate'), label).toBe('Bearer')
    expect(r.body.data, `${label}: a refused operation returns no data`).toBeUndefined()
    expect(r.body.errors, label).toHaveLength(1)
    return code
  }
  expect(r.body.errors, `${label}: ${JSON.stringify(r.body.errors)}`).toBeUndefined()
  expect(r.status, label).toBe(200)
  return 'OK'
}

function wsVerdict(r: WsResult, label: string): Verdict {
  if (r.closeCode !== undefined) {
    expect(r.closeCode, `${label}: closed with ${r.closeCode} ${r.closeReason}`).toBe(4401)
    expect(r.results, label).toEqual([])
    return 'UNAUTHENTICATED'
  }
  const code = r.results[0]?.errors?.[0]?.extensions?.code as string | undefined
  if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN') {
    expect(r.results, label).toHaveLength(1)
    expect(r.results[0]!.data, label).toBeUndefined()
    return code
  }
  expect(r.results[0]?.errors, `${label}: ${JSON.stringify(r.results[0]?.errors)}`).toBeUndefined()
  return 'OK'
}

// ------------------------------------------------------------------------------------ the tables

describe('the scope table', () => {
  it('names every mutation of the schema, with the scope issue 7 gives it', () => {
    expect(Object.keys(MUTATION_SCOPES).sort()).toEqual(rootFields('Mutation'))
    expect(MUTATION_SCOPES).toEqual(EXPECTED_SCOPES)
    expect(Object.keys(MUTATIONS).sort()).toEqual(rootFields('Mutation'))
  })

  it('queries and subscriptions need read; an unlisted mutation needs admin (closed by default)', () => {
    for (const f of rootFields('Query')) expect(requiredScope(OperationTypeNode.QUERY, f)).toBe('read')
    for (const f of rootFields('Subscription')) expect(requiredScope(OperationTypeNode.SUBSCRIPTION, f)).toBe('read')
    expect(requiredScope(OperationTypeNode.MUTATION, 'someFutureMutation')).toBe('admin')
    expect(requiredScope(OperationTypeNode.MUTATION, '__typename')).toBe('read')
  })

  it('admin implies execute implies read', () => {
    expect(effectiveScopes(['admin'])).toEqual(['read', 'execute', 'admin'])
    expect(effectiveScopes(['execute'])).toEqual(['read', 'execute'])
    expect(effectiveScopes(['read'])).toEqual(['read'])
    expect(effectiveScopes([])).toEqual([])
  })
})

// ------------------------------------------------------------------------------------ mutations

describe.each(['HTTP', 'graphql-ws'] as const)('every mutation over %s, with every kind of caller', (transport) => {
  for (const field of Object.keys(MUTATIONS)) {
    it(`${field} needs ${EXPECTED_SCOPES[field]}`, async () => {
      const c = MUTATIONS[field]!
      for (const who of CALLERS) {
        // A bare token is accepted in connectionParams (not in the HTTP header): over ws it is an admin.
        const verdictFor: Verdict = transport === 'graphql-ws' && who === 'bare token' ? expected('admin', EXPECTED_SCOPES[field]!) : expected(who, EXPECTED_SCOPES[field]!)
        const label = `${transport} ${field} as ${who}`
        const { variables, state } = await c.setup()
        const before = JSON.stringify(state())
        let verdict: Verdict
        let data: Json | undefined
        if (transport === 'HTTP') {
          const r = await overHttp(server.url, caller[who], c.query, variables)
          verdict = httpVerdict(r, label)
          data = r.body.data ?? undefined
        } else {
          const r = await overWs(server.url, caller[who], c.query, variables)
          verdict = wsVerdict(r, label)
          data = r.results[0]?.data as Json | undefined
          if (verdict === 'OK') expect(r.completed, label).toBe(true)
        }
        expect(verdict, label).toBe(verdictFor)
        if (verdict === 'OK') {
          expect(data?.[field]?.__typename, `${label}: ${JSON.stringify(data)}`).toBe(c.success)
          // It really acted (give the engine the commit the mutation queued).
          await until(() => JSON.stringify(state()) !== before)
        } else {
          await new Promise((r) => setTimeout(r, 5))
          expect(JSON.stringify(state()), `${label}: a refused mutation changes nothing`).toBe(before)
        }
      }
    }, SLOW)
  }
})

describe('the scope is that of the strongest root field', () => {
  it('a mutation hidden in a fragment, or beside a weaker one, needs the stronger scope; nothing runs', async () => {
    const id = await o.createWorkflow(name('mixed'), NOOP)
    const runs = () => sql<{ n: number }>('select count(*) as n from runs where workflow_id = ?', id).n
    const n = name('sneaky')
    const sneaky = `mutation ($id: ID!, $n: String!, $d: JSON!) {
      executeWorkflow(input: { workflowId: $id }) { __typename }
      ...Sneaky
    }
    fragment Sneaky on Mutation { ... on Mutation { createWorkflow(input: { name: $n, definition: $d }) { __typename } } }`
    const r = await overHttp(server.url, caller.execute, sneaky, { id, n, d: NOOP })
    expect(httpVerdict(r, 'execute token')).toBe('FORBIDDEN')
    expect(r.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', requiredScope: 'admin' })
    expect(runs()).toBe(0)
    expect(sql<{ n: number }>('select count(*) as n from workflows where name = ?', n).n).toBe(0)
    const ok = await overHttp(server.url, caller.admin, sneaky, { id, n, d: NOOP })
    expect(httpVerdict(ok, 'admin token')).toBe('OK')
    expect(ok.body.data).toEqual({ executeWorkflow: { __typename: 'ExecuteWorkflowSuccess' }, createWorkflow: { __typename: 'CreateWorkflowSuccess' } })
  })

  it('the Bearer scheme is case-insensitive; a token without it, or a second scheme, is refused', async () => {
    const token = caller.read!.slice('Bearer '.length)
    expect(httpVerdict(await overHttp(server.url, `bearer ${token}`, '{ __typename }'), 'lowercase')).toBe('OK')
    expect(httpVerdict(await overHttp(server.url, token, '{ __typename }'), 'bare')).toBe('UNAUTHENTICATED')
    expect(httpVerdict(await overHttp(server.url, `Basic ${token}`, '{ __typename }'), 'basic')).toBe('UNAUTHENTICATED')
  })
})

// -------------------------------------------------------------------------------------- queries

describe('queries need read', () => {
  const QUERIES = {
    workflows: '{ workflows(first: 1) { edges { node { id } } } }',
    introspection: '{ __schema { queryType { name } } }',
    typename: '{ __typename }',
  }
  for (const [label, query] of Object.entries(QUERIES)) {
    it(`${label}, over HTTP and graphql-ws`, async () => {
      for (const who of CALLERS) {
        const http = await overHttp(server.url, caller[who], query)
        expect(httpVerdict(http, `HTTP ${who}`), `HTTP ${who}`).toBe(expected(who, 'read'))
        if (expected(who, 'read') === 'OK') expect(http.body.data).toBeTruthy()
        const ws = await overWs(server.url, caller[who], query)
        expect(wsVerdict(ws, `ws ${who}`), `ws ${who}`).toBe(expected(who === 'bare token' ? 'admin' : who, 'read'))
      }
    })
  }
})

// -------------------------------------------------------------------------------- subscriptions

interface SubscriptionCase {
  query: string
  /** Variables, and something to do while waiting for the first event (for live-only streams). */
  setup(): Promise<{ variables: Record<string, unknown>; poke?: () => Promise<void>; done?: () => Promise<void> }>
  /** When an allowed subscription has shown it works. */
  enough(results: { data?: Json | null }[]): boolean
}

const SUBSCRIPTIONS: Record<string, SubscriptionCase> = {
  runEvents: {
    query: 'subscription ($id: ID!) { runEvents(runId: $id) { seq type } }',
    async setup() {
      return { variables: { id: await finishedRun(NOOP) } }
    },
    // Replays the finished run's events, ending with RUN_SUCCEEDED (then the stream completes).
    enough: (r) => r.some((x) => x.data?.runEvents?.type === 'RUN_SUCCEEDED'),
  },
  runEventBatches: {
    query: 'subscription ($id: ID!) { runEventBatches(runId: $id) { cursor events { seq type } } }',
    async setup() {
      return { variables: { id: await finishedRun(NOOP) } }
    },
    enough: (r) => r.some((x) => x.data?.runEventBatches?.events?.some((e: { type: string }) => e.type === 'RUN_SUCCEEDED')),
  },
  events: {
    query: 'subscription { events(after: "0") { seq type } }',
    async setup() {
      await finishedRun(NOOP)
      return { variables: {} }
    },
    enough: (r) => r.length > 0 && r.every((x) => typeof x.data?.events?.seq === 'number'),
  },
  runUpdated: {
    query: 'subscription ($id: ID!) { runUpdated(runId: $id) { id status } }',
    async setup() {
      const id = await waitingRun()
      // Only live changes are sent: pause and resume until the first one arrives.
      let paused = false
      return {
        variables: { id },
        poke: async () => {
          await (paused ? o.resumeRun(id) : o.pauseRun(id))
          paused = !paused
        },
        done: async () => void (await o.cancelRun(id)),
      }
    },
    enough: (r) => r.length > 0 && r.every((x) => typeof x.data?.runUpdated?.status === 'string'),
  },
}

/** Runs `poke` every 20 ms until `stopped` resolves. */
function keepPoking(poke: (() => Promise<void>) | undefined, stopped: Promise<unknown>): Promise<void> {
  if (!poke) return Promise.resolve()
  let stop = false
  void stopped.finally(() => (stop = true))
  return (async () => {
    while (!stop) {
      await poke()
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
}

describe('every subscription needs read, over graphql-ws and SSE', () => {
  it('lists every subscription of the schema', () => {
    expect(Object.keys(SUBSCRIPTIONS).sort()).toEqual(rootFields('Subscription'))
  })

  for (const [field, c] of Object.entries(SUBSCRIPTIONS)) {
    it(`${field} over graphql-ws (connectionParams.authorization)`, async () => {
      for (const who of CALLERS) {
        const label = `ws ${field} as ${who}`
        const { variables, poke, done } = await c.setup()
        const answer = overWs(server.url, caller[who], c.query, variables, (r) => c.enough(r as never) || r.some((x) => x.errors))
        await keepPoking(poke, answer)
        const r = await answer
        await done?.()
        const verdict = wsVerdict(r, label)
        expect(verdict, label).toBe(expected(who === 'bare token' ? 'admin' : who, 'read'))
        if (verdict === 'OK') expect(c.enough(r.results as never), `${label}: ${JSON.stringify(r.results)}`).toBe(true)
      }
    }, SLOW)

    it(`${field} over SSE (Authorization header)`, async () => {
      for (const who of CALLERS) {
        const label = `SSE ${field} as ${who}`
        const { variables, poke, done } = await c.setup()
        // A refused subscription is read to its end (one error, then complete).
        const answer = overSse(server.url, caller[who], c.query, variables, (r) => c.enough(r as never))
        await keepPoking(poke, answer)
        const r = await answer
        await done?.()
        if (expected(who, 'read') === 'OK') {
          expect(r.status, label).toBe(200)
          expect(r.results.every((x) => !x.errors), `${label}: ${JSON.stringify(r.results)}`).toBe(true)
          expect(c.enough(r.results as never), label).toBe(true)
        } else {
          expect(r.status, label).toBe(401)
          expect(r.results, label).toHaveLength(1)
          expect(r.results[0]!.errors![0]!.extensions, label).toMatchObject({ code: 'UNAUTHENTICATED' })
          expect(r.results[0]!.data, label).toBeUndefined()
          expect(r.completed, label).toBe(true)
        }
      }
    }, SLOW)
  }

  it('subscribers of the same operation share its results, not its access check', async () => {
    // Same document text and variables on several connections: the server executes each event once
    // for such subscribers (shared-subscriptions.ts); each operation must still be checked on its own.
    const runId = await waitingRun()
    const query = 'subscription ($id: ID!) { runEvents(runId: $id) { seq type } }'
    const finished = (r: WsResult['results']) => r.some((x) => x.data?.runEvents?.type === 'RUN_SUCCEEDED') || r.some((x) => x.errors)
    const first = overWs(server.url, caller.read, query, { id: runId }, finished)
    // A connection whose token is revoked after it connected: its subscription to the same
    // operation is refused, while the others stream.
    const later = tokens.create({ name: 'shared-revoked', scopes: 'read' })
    const results: WsResult['results'] = []
    const client = (await import('graphql-ws')).createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: (await import('ws')).default,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${later.token}` },
      lazy: false,
    })
    try {
      await new Promise<void>((resolve) => client.on('connected', () => resolve()))
      tokens.revoke(later.id)
      await new Promise<void>((resolve, reject) =>
        client.subscribe({ query, variables: { id: runId } }, { next: (v) => void results.push(v as never), error: reject, complete: resolve }),
      )
    } finally {
      await client.dispose()
    }
    expect(results).toHaveLength(1)
    expect(results[0]!.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED' })
    expect(results[0]!.data).toBeUndefined()
    const second = overWs(server.url, caller.execute, query, { id: runId }, finished)
    await o.signalRun(runId, 'approve', { ok: true })
    await o.waitForRun(runId)
    const history = (await o.getHistory(runId)).map((e) => e.seq)
    for (const r of [await first, await second]) {
      expect(r.results.every((x) => !x.errors), JSON.stringify(r.results)).toBe(true)
      expect(r.results.map((x) => (x.data as { runEvents: { seq: number } }).runEvents.seq)).toEqual(history)
    }
  })

  it('a graphql-ws connection is checked again per operation: after revoking its token, it is refused', async () => {
    const made = tokens.create({ name: 'short-lived', scopes: 'read' })
    const results: WsResult['results'] = []
    const client = (await import('graphql-ws')).createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: (await import('ws')).default,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${made.token}` },
      lazy: false, // one connection throughout (a lazy client would reconnect per operation)
    })
    const connected = new Promise<void>((resolve) => client.on('connected', () => resolve()))
    const once = (query: string) =>
      new Promise<void>((resolve, reject) =>
        client.subscribe({ query }, { next: (v) => void results.push(v as never), error: reject, complete: resolve }),
      )
    try {
      await connected
      await once('{ __typename }')
      expect(results[0]).toEqual({ data: { __typename: 'Query' } })
      tokens.revoke(made.id)
      await once('{ __typename }')
      expect(results[1]!.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED' })
      expect(results[1]!.data).toBeUndefined()
    } finally {
      await client.dispose()
    }
  })
})

// ------------------------------------------------------------------------------------- storage

describe('TokenStore', () => {
  it('create returns the token once; the table keeps only the SHA-256 of its secret', () => {
    const made = tokens.create({ name: 'storage check', scopes: 'read,execute' })
    expect(made.token).toMatch(/^cvy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
    expect(made.token.startsWith(`cvy_${made.id}_`)).toBe(true)
    expect(made.scopes).toEqual(['read', 'execute'])
    const secret = made.token.slice(`cvy_${made.id}_`.length)

    // Read the table from outside, as anyone with a copy of the database file would.
    const sqlite = new Database(db, { readonly: true, fileMustExist: true })
    try {
      const columns = (sqlite.prepare("select name from pragma_table_info('api_tokens')").all() as { name: string }[]).map((c) => c.name)
      expect(columns.sort()).toEqual(['created_at', 'hash', 'id', 'last_used_at', 'name', 'revoked_at', 'scopes'])
      const row = sqlite.prepare('select * from api_tokens where id = ?').get(made.id) as Record<string, unknown>
      expect(row).toMatchObject({ name: 'storage check', scopes: '["read","execute"]', last_used_at: null, revoked_at: null })
      expect(row.hash).toBe(createHash('sha256').update(secret).digest('hex'))
      // Nowhere in the table (any row, any column) is the secret or the token.
      const everything = JSON.stringify(sqlite.prepare('select * from api_tokens').all())
      expect(everything).not.toContain(secret)
      expect(everything).not.toContain(made.token)
    } finally {
      sqlite.close()
    }

    // list and get never give the hash or the secret back.
    const listed = tokens.list().find((t) => t.id === made.id)!
    expect(Object.keys(listed).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'revokedAt', 'scopes'])
    expect(JSON.stringify(tokens.list())).not.toContain(secret)
    expect(tokens.get(made.id)).toEqual(listed)
  })

  it('verify: the effective scopes of a good token, undefined for a wrong secret, id, shape or a revoked token', () => {
    const made = tokens.create({ name: 'verify', scopes: ['execute'] })
    expect(tokens.verify(made.token)).toEqual(['read', 'execute'])
    expect(tokens.get(made.id)!.lastUsedAt).toEqual(expect.any(Number))
    const flipped = made.token.slice(0, -1) + (made.token.endsWith('A') ? 'B' : 'A')
    expect(tokens.verify(flipped)).toBeUndefined()
    expect(tokens.verify(made.token.replace(made.id, '0123456789abcdef'))).toBeUndefined()
    expect(tokens.verify(made.token + 'x')).toBeUndefined()
    expect(tokens.verify(made.token.replace('cvy_', 'xyz_'))).toBeUndefined()
    expect(tokens.verify('')).toBeUndefined()
    expect(tokens.verify(undefined)).toBeUndefined()
    expect(tokens.revoke(made.id)).toBe(true)
    expect(tokens.revoke(made.id)).toBe(false)
    expect(tokens.revoke('0123456789abcdef')).toBe(false)
    expect(tokens.verify(made.token)).toBeUndefined()
    expect(tokens.get(made.id)!.revokedAt).toEqual(expect.any(Number))
  })

  it('scopes must be known and at least one', () => {
    expect(() => tokens.create({ scopes: 'read,superuser' })).toThrow(/unknown scope "superuser"/)
    expect(() => tokens.create({ scopes: '' })).toThrow(/no scopes/)
    expect(tokens.create({ scopes: ' admin , read ' }).scopes).toEqual(['read', 'admin'])
  })
})

// ------------------------------------------------------------------------------------------ CLI

describe('conveyor token (CLI, child processes)', () => {
  const procs: CliProcess[] = []
  afterAll(async () => {
    for (const p of procs.splice(0)) await p.kill()
  })

  const run = async (args: string[], env: Record<string, string> = {}) => {
    const p = cli(args, env)
    procs.push(p)
    const exit = await p.closed
    return { ...exit, stdout: p.stdout, stderr: p.stderr }
  }

  it('token create prints a token once; it works against `serve` on the same database until revoked', async () => {
    const file = join(tempDir(), 'cli.db')
    const created = await run(['token', 'create', '--scopes', 'read', '--name', 'ci', '--db', file])
    expect(created.code, created.stderr).toBe(0)
    // stdout is the token alone, so TOKEN=$(conveyor token create ...) works; the note is on stderr.
    expect(created.stdout).toMatch(/^cvy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/)
    const token = created.stdout.trim()
    expect(created.stderr).toMatch(/not shown again/)
    expect(created.stderr).not.toContain(token)

    const listed = await run(['token', 'list', '--json'], { CONVEYOR_DB: file })
    expect(listed.code, listed.stderr).toBe(0)
    const list = JSON.parse(listed.stdout) as { id: string; name: string; scopes: string[] }[]
    expect(list).toEqual([expect.objectContaining({ name: 'ci', scopes: ['read'], revokedAt: null })])
    expect(listed.stdout).not.toContain(token.slice(-43))
    const table = await run(['token', 'list', '--db', file])
    expect(table.stdout).toMatch(/^ID\s+NAME\s+SCOPES\s+CREATED\s+LAST USED\s+REVOKED\n/)
    expect(table.stdout).toContain(list[0]!.id)

    const serve = cli(['serve', '--port', '0', '--db', file], { CONVEYOR_AUTH: 'required' })
    procs.push(serve)
    const url = await serve.url()
    expect(new URL(url).hostname).toBe('127.0.0.1')
    expect(httpVerdict(await overHttp(url, `Bearer ${token}`, '{ workflows(first: 1) { edges { node { id } } } }'), 'the token')).toBe('OK')
    expect(httpVerdict(await overHttp(url, undefined, '{ __typename }'), 'no token')).toBe('UNAUTHENTICATED')
    const execute = 'mutation { executeWorkflow(input: { workflowId: "wf_nope" }) { __typename } }'
    expect(httpVerdict(await overHttp(url, `Bearer ${token}`, execute), 'read token, execute')).toBe('FORBIDDEN')

    // Revoked from another process while the server runs: refused at the next request.
    const revoked = await run(['token', 'revoke', list[0]!.id, '--db', file])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.stdout).toContain(`token ${list[0]!.id} revoked`)
    expect(httpVerdict(await overHttp(url, `Bearer ${token}`, '{ __typename }'), 'revoked')).toBe('UNAUTHENTICATED')
    expect((await run(['token', 'revoke', 'ffffffffffffffff', '--db', file])).code).toBe(1)
    await serve.kill()
  }, SLOW)

  it('token create without --scopes, or with an unknown scope, exits non-zero and stores nothing', async () => {
    const file = join(tempDir(), 'bad.db')
    const missing = await run(['token', 'create', '--db', file])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--scopes')
    const unknown = await run(['token', 'create', '--scopes', 'read,root', '--db', file])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('unknown scope "root"')
    expect(unknown.stdout).toBe('')
    const listed = await run(['token', 'list', '--json', '--db', file])
    expect(JSON.parse(listed.stdout)).toEqual([])
  }, SLOW)
})
