// Artifacts: files an action stores through ctx.artifact, listed on runs and steps, downloadable.
import { afterEach, describe, expect, it } from 'vitest'
import { mkdirSync, rmSync } from 'node:fs'
import { files } from './fixtures/files-factory.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { CreateWorkflowDocument, ExecuteWorkflowDocument } from './generated/graphql.ts'

let t: TestServer
afterEach(async () => {
  await t?.close()
})


describe('artifacts', () => {
  it('are listed on the run and the step and download with their bytes and type', async () => {
    t = await startTestServer({ factories: { files } })
    const created = await t.request(CreateWorkflowDocument, {
      name: 'files',
      definition: {
        steps: [
          { id: 'one', factory: 'files', action: 'write', params: { name: 'a.txt', text: 'alpha' } },
          { id: 'two', factory: 'files', action: 'write', params: { name: 'b.txt', text: 'bravo!' } },
        ],
      },
    })
    const wf = created.data!.createWorkflow
    if (wf.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(wf))
    const started = await t.request(ExecuteWorkflowDocument, { workflowId: wf.workflow.id })
    const ex = started.data!.executeWorkflow
    if (ex.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(ex))
    const result = await t.orchestrator.waitForRun(ex.run.id)
    expect(result.status, JSON.stringify(result)).toBe('SUCCEEDED')
    expect(result.steps.one!.output).toMatchObject({ name: 'a.txt', mimeType: 'text/plain', size: 5 })

    const r = await t.request<{ run: { artifacts: { name: string; size: number; url: string; mimeType: string }[]; steps: { stepId: string; artifacts: { name: string }[] }[] } }, unknown>(
      `query ($id: ID!) { run(id: $id) { artifacts { name size url mimeType } steps { stepId artifacts { name } } } }`,
      { id: ex.run.id },
    )
    const run = r.data!.run
    expect(run.artifacts.map((a) => [a.name, a.size])).toEqual([['a.txt', 5], ['b.txt', 6]])
    expect(run.steps.map((s) => s.artifacts.map((a) => a.name))).toEqual([['a.txt'], ['b.txt']])
    const origin = new URL(t.url).origin
    const download = await fetch(origin + run.artifacts[1]!.url)
    expect(download.status).toBe(200)
    expect(download.headers.get('content-type')).toBe('text/plain')
    expect(await download.text()).toBe('bravo!')
    expect((await fetch(`${origin}/artifacts/art_nope/x`)).status).toBe(404)
    expect((await fetch(`${origin}/artifacts/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404)
  })

  it('refuses unsafe names without writing anything', async () => {
    t = await startTestServer({ factories: { files } })
    const id = await t.orchestrator.createWorkflow('bad', { steps: [{ factory: 'files', action: 'write', params: { name: '../escape.txt', text: 'x' } }] })
    const result = await t.orchestrator.executeWorkflow(id)
    expect(result.status).toBe('FAILED')
    expect(result.steps.write!.error).toMatch(/not allowed/)
    expect(t.orchestrator.catalog.artifactsByRunIds([result.runId])).toEqual([])
  })
})

describe('artifact types', () => {
  const write = (id: string, name: string, mimeType: string) => ({ id, factory: 'files', action: 'write', params: { name, text: id, mimeType } })

  it('a type that could not be a header is stored as application/octet-stream; its download and the server are fine', async () => {
    t = await startTestServer({ factories: { files } })
    const id = await t.orchestrator.createWorkflow('types', {
      steps: [
        write('crlf', 'a.txt', 'text/plain\r\nX-Evil: 1'),
        write('unicode', 'b.txt', 'text/plain; charset=✓'),
        write('empty', 'c.txt', ''),
        write('params', 'd.csv', 'text/csv; charset=utf-8; header="present"'),
      ],
    })
    const result = await t.orchestrator.executeWorkflow(id)
    expect(result.status, JSON.stringify(result)).toBe('SUCCEEDED')
    const types = Object.fromEntries(Object.entries(result.steps).map(([step, s]) => [step, (s.output as { mimeType: string }).mimeType]))
    expect(types).toEqual({
      crlf: 'application/octet-stream', unicode: 'application/octet-stream', empty: 'application/octet-stream',
      params: 'text/csv; charset=utf-8; header="present"',
    })
    const origin = new URL(t.url).origin
    for (const artifact of t.orchestrator.catalog.artifactsByRunIds([result.runId])) {
      const download = await fetch(`${origin}/artifacts/${artifact.id}/${artifact.name}`)
      expect(download.status).toBe(200)
      expect(download.headers.get('content-type')).toBe(types[artifact.stepId!])
      expect(download.headers.get('x-evil')).toBeNull()
      expect(await download.text()).toBe(artifact.stepId)
    }
    expect((await fetch(`${origin}/healthz`)).status).toBe(200)
    // The step's log says why its type was replaced.
    const logs = (await t.orchestrator.getHistory(result.runId)).filter((e) => e.type === 'STEP_LOG')
    const said = (step: string) => (logs.find((e) => e.stepId === step)!.payload as { message: string }).message
    expect(said('crlf')).toMatch(/^artifact a\.txt: mimeType .+ is not a valid media type/)
    expect(said('params')).toBe('artifact d.csv')
  })

  it('a row stored before types were checked is served as application/octet-stream', async () => {
    t = await startTestServer({ factories: { files } })
    const result = await t.orchestrator.executeWorkflow(await t.orchestrator.createWorkflow('old', { steps: [write('one', 'a.txt', 'text/plain')] }))
    const [artifact] = t.orchestrator.catalog.artifactsByRunIds([result.runId])
    const origin = new URL(t.url).origin
    // What an earlier version stored as given (the download then threw ERR_INVALID_CHAR and ended the process).
    for (const stored of ['text/html\r\nX-Evil: 1', 'text/plain; name=✓']) {
      t.orchestrator.context.conn.sqlite.prepare('update artifacts set mime_type = ? where id = ?').run(stored, artifact!.id)
      const download = await fetch(`${origin}/artifacts/${artifact!.id}/a.txt`)
      expect(download.status).toBe(200)
      expect(download.headers.get('content-type')).toBe('application/octet-stream')
      expect(download.headers.get('x-evil')).toBeNull()
      expect(await download.text()).toBe('one')
    }
    expect((await fetch(`${origin}/healthz`)).status).toBe(200)
  })

  it('a stored file that became something else than a file is a 404, not a read error', async () => {
    t = await startTestServer({ factories: { files } })
    const result = await t.orchestrator.executeWorkflow(await t.orchestrator.createWorkflow('gone', { steps: [write('one', 'a.txt', 'text/plain')] }))
    const [artifact] = t.orchestrator.catalog.artifactsByRunIds([result.runId])
    rmSync(artifact!.path)
    mkdirSync(artifact!.path)
    const origin = new URL(t.url).origin
    expect((await fetch(`${origin}/artifacts/${artifact!.id}/a.txt`)).status).toBe(404)
    expect((await fetch(`${origin}/healthz`)).status).toBe(200)
  })
})
