// Access beyond GraphQL operations (issue 7, item 7): with auth on, /metrics and artifact downloads
// need a token (an artifact also opens with the signed link the API gives for it), /healthz stays
// open for probes; and a subscription that is already running ends when its token is revoked, over
// graphql-ws and SSE, while other tokens' subscriptions go on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { files } from './fixtures/files-factory.ts'
import { orchestratorFromConfig, startServer, type ProjectOrchestrator, type RunningServer } from '../src/index.ts'
import { TokenStore } from '../src/engine/tokens.ts'
import { ArtifactLinks } from '../src/artifact-links.ts'
import { until } from './support/barrier.ts'
import { overHttp, overSse, overWs, type Json } from './helpers/access.ts'


let dir: string
let o: ProjectOrchestrator
let server: RunningServer
let tokens: TokenStore
let origin: string
let read: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-auth-routes-'))
  o = orchestratorFromConfig({ database: join(dir, 'db.sqlite'), factories: { files } })
  server = await startServer({ orchestrator: o, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), auth: { required: true, recheckMs: 50 } })
  origin = new URL(server.url).origin
  tokens = new TokenStore(o.context.conn)
  read = `Bearer ${tokens.create({ name: 'reader', scopes: 'read' }).token}`
})

afterAll(async () => {
  await server.close()
  await o.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('plain HTTP routes with auth on', () => {
  it('/metrics needs a token (401 with WWW-Authenticate without one); /healthz answers probes without one', async () => {
    for (const authorization of [undefined, 'Bearer cvy_0000000000000000_' + 'A'.repeat(43), 'Bearer nonsense']) {
      const res = await fetch(`${origin}/metrics`, { headers: authorization ? { authorization } : {} })
      expect(res.status, authorization).toBe(401)
      expect(res.headers.get('www-authenticate')).toBe('Bearer')
      expect(await res.text()).not.toMatch(/conveyor_/)
    }
    const ok = await fetch(`${origin}/metrics`, { headers: { authorization: read } })
    expect(ok.status).toBe(200)
    expect(await ok.text()).toMatch(/^conveyor_active_runs \d+$/m)
    expect((await fetch(`${origin}/healthz`)).status).toBe(200)
  })

  it('an artifact downloads with a token or with its signed url; a bare, tampered, foreign or expired link is refused', async () => {
    const id = await o.createWorkflow('files', { steps: [{ id: 'w', factory: 'files', action: 'write', params: { name: 'secret.txt', text: 'classified' } }] })
    const run = await o.executeWorkflow(id)
    expect(run.status).toBe('SUCCEEDED')
    const r = await overHttp(server.url, read, 'query ($id: ID!) { run(id: $id) { artifacts { url } } }', { id: run.runId })
    const { url } = (r.body.data!.run as Json).artifacts[0] as { url: string }
    expect(url).toMatch(/^\/artifacts\/art_[0-9a-z]+\/secret\.txt\?expires=\d+&signature=[\w-]+$/)

    const signed = await fetch(origin + url)
    expect(signed.status).toBe(200)
    expect(await signed.text()).toBe('classified')
    const bare = url.split('?')[0]!
    expect((await fetch(origin + bare)).status).toBe(401)
    const withToken = await fetch(origin + bare, { headers: { authorization: read } })
    expect(withToken.status).toBe(200)
    expect(await withToken.text()).toBe('classified')

    const query = new URLSearchParams(url.split('?')[1])
    const tampered = `${bare}?expires=${Number(query.get('expires')) + 1}&signature=${query.get('signature')}`
    expect((await fetch(origin + tampered)).status).toBe(401)
    // A link signed by another server (another key) or already expired does not open it.
    const artifactId = bare.split('/')[2]!
    expect((await fetch(origin + new ArtifactLinks().sign(bare, artifactId))).status).toBe(401)
    expect((await fetch(origin + `${bare}?expires=${Date.now() - 1}&signature=${query.get('signature')}`)).status).toBe(401)
  })
})

describe('revoking a token ends its running subscriptions', () => {
  const RUN_EVENTS = 'subscription ($runId: ID!) { runEvents(runId: $runId) { seq type } }'
  const FIREHOSE = 'subscription { events { seq type } }'

  it('over graphql-ws and SSE: one last UNAUTHENTICATED error, then complete; another token\'s subscription goes on', async () => {
    const id = await o.createWorkflow('gate', { steps: [{ id: 'gate', factory: 'control', action: 'approval' }, { id: 'after', factory: 'control', action: 'noop', dependsOn: ['gate'] }] })
    const { runId } = await o.startWorkflow(id)
    const doomed = tokens.create({ name: 'doomed', scopes: 'read' })
    const bearer = `Bearer ${doomed.token}`
    const variables = { runId }

    const ws = overWs(server.url, bearer, RUN_EVENTS, variables)
    const sse = overSse(server.url, bearer, FIREHOSE, undefined)
    const survivor = overWs(server.url, read, RUN_EVENTS, variables, (results) => results.some((x) => (x.data as Json | undefined)?.runEvents.type === 'RUN_SUCCEEDED'))
    // All three are open and idle (the run waits on its gate).
    await until(() => o.context.bus.size >= 3)

    tokens.revoke(doomed.id)
    const [wsResult, sseResult] = await Promise.all([ws, sse])
    for (const [label, result] of [['graphql-ws', wsResult], ['SSE', sseResult]] as const) {
      const last = result.results.at(-1)!
      expect(last.errors?.[0], label).toMatchObject({ message: 'the token of this subscription was revoked', extensions: { code: 'UNAUTHENTICATED' } })
      expect(result.results.slice(0, -1).every((x) => !x.errors), label).toBe(true)
      expect(result.completed, label).toBe(true)
    }

    // The reader's subscription was not touched: it sees the rest of the run.
    await o.signalRun(runId, 'gate', { ok: true })
    const rest = await survivor
    expect(rest.results.every((x) => !x.errors)).toBe(true)
    expect(rest.results.map((x) => (x.data as Json).runEvents.type)).toContain('RUN_SUCCEEDED')

    // And the revoked token opens nothing new.
    const again = await overWs(server.url, bearer, RUN_EVENTS, variables)
    expect(again.closeCode).toBe(4401)
  })
})
