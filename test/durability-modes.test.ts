// Durability modes (DESIGN.md §3): `process` (WAL, synchronous=NORMAL, the default) survives a crash
// of the process; `machine` (synchronous=FULL) syncs the WAL at every commit and survives power loss.
// The mode is set in the config or the library API and shown in /healthz and /metrics.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { ProjectOrchestrator } from '../src/index.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'
import { openedPerTest } from './support/opened.ts'

let t: TestServer | undefined
const opened = openedPerTest({
  after: async () => {
    await t?.close()
    t = undefined
  },
})

/** PRAGMA synchronous: 1 is NORMAL, 2 is FULL. */
const synchronous = (o: ProjectOrchestrator) => o.context.conn.sqlite.pragma('synchronous', { simple: true })

describe('durability modes', () => {
  it('process by default: WAL with synchronous=NORMAL', () => {
    const o = opened.orchestrator({ database: join(opened.tempDir(), 'c.db') })
    expect(o.context.conn.durability).toBe('process')
    expect(o.context.conn.sqlite.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(synchronous(o)).toBe(1)
  })

  it('machine: synchronous=FULL, and runs work the same', async () => {
    const o = opened.orchestrator({ database: join(opened.tempDir(), 'c.db'), durability: 'machine' })
    expect(o.context.conn.durability).toBe('machine')
    expect(synchronous(o)).toBe(2)
    o.registerFactory('t', { echo: (params: Record<string, unknown>) => params })
    const id = await o.createWorkflow('m', { steps: [{ id: 'a', factory: 't', action: 'echo', params: { x: 1 } }, { id: 'b', factory: 't', action: 'echo', params: { y: 2 } }] })
    const result = await o.executeWorkflow(id)
    expect(result.status).toBe('SUCCEEDED')
    expect(result.steps.b!.output).toEqual({ y: 2 })
  })

  it('an unknown mode is refused before the database is opened', () => {
    const dir = opened.tempDir()
    expect(() => new ProjectOrchestrator({ database: join(dir, 'c.db'), durability: 'disk' as never })).toThrow(
      'durability must be one of "process", "machine", not "disk"',
    )
  })

  it('/healthz and /metrics show the mode', async () => {
    t = await startTestServer({ database: join(opened.tempDir(), 'c.db'), durability: 'machine' })
    const health = await (await fetch(new URL('/healthz', t.url))).json()
    expect(health).toMatchObject({ status: 'ok', durability: 'machine' })
    const metrics = await (await fetch(new URL('/metrics', t.url))).text()
    expect(metrics).toContain('conveyor_durability{mode="machine"} 1')
    expect(metrics).toContain('conveyor_durability{mode="process"} 0')
  })
})
