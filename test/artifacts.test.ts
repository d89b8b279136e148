// Artifacts: files an action stores through ctx.artifact, listed on runs and steps, downloadable.
import { afterEach, describe, expect, it } from 'vitest'
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
