// What a test opens (orchestrators and anything else with close(), temp dirs), closed after every
// test: in the order opened, then the file's own clean-up (`after`: servers, crash kits), then the dirs
// removed. `before` runs first (real timers back before anything waits on one).
import { afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProjectOrchestrator, type OrchestratorConfig } from '../../src/index.ts'

export function openedPerTest(hooks: { before?: () => unknown; after?: () => unknown } = {}) {
  const open: { close(): unknown }[] = []
  const dirs: string[] = []
  afterEach(async () => {
    await hooks.before?.()
    for (const o of open.splice(0)) await o.close()
    await hooks.after?.()
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const track = <T extends { close(): unknown }>(x: T): T => {
    open.push(x)
    return x
  }
  return {
    /** A new orchestrator, closed after the test. */
    orchestrator: (config: OrchestratorConfig = {}): ProjectOrchestrator => track(new ProjectOrchestrator(config)),
    /** `x`, closed after the test. */
    track,
    /** A new empty directory, removed after the test. */
    tempDir: (prefix = 'conveyor-test-'): string => {
      const dir = mkdtempSync(join(tmpdir(), prefix))
      dirs.push(dir)
      return dir
    },
    /** How many things the current test has opened so far. */
    count: (): number => open.length,
  }
}
