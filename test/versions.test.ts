// Workflow versions (DESIGN.md §1 "Every change makes a new version; runs pin the version they
// started on"): updateWorkflow adds a version, a run in flight keeps its own, rollbackWorkflow makes
// an old definition current again as a new version, refused changes leave the version alone.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { NotFoundError, ValidationError, controlFactory, defineFactory, type RunEvent } from '../src/index.ts'
import { latch, until } from './support/barrier.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import {
  CreateWorkflowDocument, ExecuteWorkflowDocument, RollbackWorkflowDocument, RunLineageDocument, UpdateWorkflowDocument,
  WorkflowVersionsDocument,
} from './generated/graphql.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined

const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
  },
})

/** `gate.wait` blocks until the test opens the gate: keeps a run in flight across an update. */
function gated() {
  const gate = latch()
  let calls = 0
  const factory = defineFactory({
    name: 'gate',
    actions: { wait: { input: z.object({}), run: async () => (calls++, await gate.wait(), { waited: true }) } },
  })
  return { factory, gate, calls: () => calls }
}

const v1 = {
  steps: [
    { id: 'a', factory: 'gate', action: 'wait', params: {} },
    { id: 'b', factory: 'control', action: 'noop', params: { v: 1 } },
  ],
}
const v2 = {
  steps: [
    { id: 'a', factory: 'gate', action: 'wait', params: {} },
    { id: 'b', factory: 'control', action: 'noop', params: { v: 2 } },
    { id: 'c', factory: 'control', action: 'noop', params: { added: true } },
  ],
}
const invalid = { steps: [{ id: 'a', factory: 'control', action: 'nop' }] }

const versionOf = (history: RunEvent[]) => (history[0]!.payload as { workflowVersion: number }).workflowVersion

describe('workflow versions (library)', () => {
  it('a run started before updateWorkflow keeps version 1; a new run uses version 2; rollbackWorkflow makes version 3 from 1', async () => {
    const g = gated()
    const o = opened.orchestrator()
    o.registerFactory('control', controlFactory)
    o.registerFactory('gate', g.factory)
    const id = await o.createWorkflow('versioned', v1)
    const { runId: before } = await o.startWorkflow(id)
    await until(() => g.calls() === 1)

    expect(await o.updateWorkflow(id, v2)).toEqual({ version: 2 })
    expect(o.workflows.get(id)!.currentVersion).toBe(2)
    const { runId: after } = await o.startWorkflow(id)
    await until(() => g.calls() === 2)
    g.gate.open()

    const r1 = await o.waitForRun(before)
    const r2 = await o.waitForRun(after)
    expect(r1.status).toBe('SUCCEEDED')
    expect(Object.keys(r1.steps)).toEqual(['a', 'b'])
    expect(r1.steps.b!.output).toEqual({ v: 1 })
    expect(versionOf(await o.getHistory(before))).toBe(1)
    expect(r2.status).toBe('SUCCEEDED')
    expect(Object.keys(r2.steps)).toEqual(['a', 'b', 'c'])
    expect(r2.steps.b!.output).toEqual({ v: 2 })
    expect(versionOf(await o.getHistory(after))).toBe(2)

    // A retry of the version-1 run stays on version 1.
    const again = await o.waitForRun((await o.retryRun(before, { fromStep: 'b' })).runId)
    expect(Object.keys(again.steps)).toEqual(['a', 'b'])
    expect(again.steps.b!.output).toEqual({ v: 1 })
    expect(versionOf(await o.getHistory(again.runId))).toBe(1)

    expect(await o.rollbackWorkflow(id, 1)).toEqual({ version: 3 })
    expect(o.workflows.load(id).definition).toEqual(o.workflows.load(id, 1).definition)
    const r3 = await o.executeWorkflow(id)
    expect(Object.keys(r3.steps)).toEqual(['a', 'b'])
    expect(r3.steps.b!.output).toEqual({ v: 1 })
    expect(versionOf(await o.getHistory(r3.runId))).toBe(3)
    // Version 2 is still there, unchanged.
    expect(o.workflows.load(id, 2).definition.steps).toHaveLength(3)
  })

  it('an invalid update is a ValidationError and changes nothing; unknown ids and versions are NotFoundError', async () => {
    const o = opened.orchestrator()
    o.registerFactory('control', controlFactory)
    const id = await o.createWorkflow('versioned', { steps: [{ id: 'a', factory: 'control', action: 'noop', params: {} }] })
    const error = await o.updateWorkflow(id, invalid).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues).toEqual([{ path: 'steps[0].action', message: expect.stringMatching(/did you mean "noop"/) }])
    expect(o.workflows.get(id)!.currentVersion).toBe(1)
    expect(() => o.workflows.load(id, 2)).toThrow(NotFoundError)

    await expect(o.updateWorkflow('wf_doesnotexist', { steps: [{ factory: 'control', action: 'noop' }] })).rejects.toBeInstanceOf(NotFoundError)
    await expect(o.rollbackWorkflow('wf_doesnotexist', 1)).rejects.toBeInstanceOf(NotFoundError)
    await expect(o.rollbackWorkflow(id, 7)).rejects.toBeInstanceOf(NotFoundError)
    expect(o.workflows.get(id)!.currentVersion).toBe(1)
    expect((await o.executeWorkflow(id)).status).toBe('SUCCEEDED')
  })
})

describe('workflow versions (GraphQL)', () => {
  it('updateWorkflow, Workflow.versions, Run.workflowVersion, rollbackWorkflow and their typed errors', async () => {
    const g = gated()
    t = await startTestServer({ factories: { gate: g.factory } })
    const created = (await t.request(CreateWorkflowDocument, { name: 'versioned', definition: v1 })).data!.createWorkflow
    if (created.__typename !== 'CreateWorkflowSuccess') throw new Error(JSON.stringify(created))
    const id = created.workflow.id
    expect(created.workflow.version).toBe(1)
    const start = async () => {
      const r = (await t!.request(ExecuteWorkflowDocument, { workflowId: id })).data!.executeWorkflow
      if (r.__typename !== 'ExecuteWorkflowSuccess') throw new Error(JSON.stringify(r))
      return r.run.id
    }
    const before = await start()
    await until(() => g.calls() === 1)

    const updated = (await t.request(UpdateWorkflowDocument, { id, definition: v2 })).data!.updateWorkflow
    expect(updated).toMatchObject({ __typename: 'CreateWorkflowSuccess', workflow: { id, version: 2, definition: v2 } })
    const after = await start()
    await until(() => g.calls() === 2)
    g.gate.open()
    await t.orchestrator.waitForRun(before)
    await t.orchestrator.waitForRun(after)

    const r1 = (await t.request(RunLineageDocument, { id: before })).data!.run!
    expect(r1).toMatchObject({ status: 'SUCCEEDED', workflowVersion: 1 })
    expect(r1.steps.map((s) => [s.stepId, s.output])).toEqual([['a', { waited: true }], ['b', { v: 1 }]])
    const r2 = (await t.request(RunLineageDocument, { id: after })).data!.run!
    expect(r2).toMatchObject({ status: 'SUCCEEDED', workflowVersion: 2 })
    expect(r2.steps.map((s) => [s.stepId, s.output])).toEqual([['a', { waited: true }], ['b', { v: 2 }], ['c', { added: true }]])

    const listed = (await t.request(WorkflowVersionsDocument, { id })).data!.workflow!
    expect(listed.version).toBe(2)
    expect(listed.versions.map((v) => v.version)).toEqual([2, 1])
    expect(listed.versions[0]!.definition).toEqual(listed.definition)
    expect(listed.versions[1]!.definition).toMatchObject(v1)

    const rolled = (await t.request(RollbackWorkflowDocument, { id, version: 1 })).data!.rollbackWorkflow
    expect(rolled).toMatchObject({ __typename: 'CreateWorkflowSuccess', workflow: { id, version: 3 } })
    const three = (await t.request(WorkflowVersionsDocument, { id })).data!.workflow!
    expect(three.versions.map((v) => v.version)).toEqual([3, 2, 1])
    expect(three.versions[0]!.definition).toEqual(three.versions[2]!.definition)
    expect(three.definition).toEqual(three.versions[2]!.definition)

    const bad = (await t.request(UpdateWorkflowDocument, { id, definition: invalid })).data!.updateWorkflow
    expect(bad).toMatchObject({ __typename: 'ValidationError', issues: [{ path: 'steps[0].action' }] })
    const unchanged = (await t.request(WorkflowVersionsDocument, { id })).data!.workflow!
    expect(unchanged.version).toBe(3)
    expect(unchanged.versions).toHaveLength(3)

    const missing = (await t.request(UpdateWorkflowDocument, { id: 'wf_doesnotexist', definition: v1 })).data!.updateWorkflow
    expect(missing.__typename).toBe('NotFoundError')
    const missingRollback = (await t.request(RollbackWorkflowDocument, { id: 'wf_doesnotexist', version: 1 })).data!.rollbackWorkflow
    expect(missingRollback.__typename).toBe('NotFoundError')
    const missingVersion = (await t.request(RollbackWorkflowDocument, { id, version: 42 })).data!.rollbackWorkflow
    expect(missingVersion).toMatchObject({ __typename: 'NotFoundError', message: expect.stringMatching(/42/) })
    expect((await t.request(WorkflowVersionsDocument, { id })).data!.workflow!.versions).toHaveLength(3)
  })
})
