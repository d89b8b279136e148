// Write-ahead under SIGKILL: actions leave side effects outside the database (an fsynced file) and
// the process is killed over and over while they run. Afterwards every side effect belongs to a run
// and an attempt the database holds, every call saw its state committed, and all the side effects of
// one step share one idempotency key: a factory can deduplicate on it, even across crashes.
import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { ProjectOrchestrator } from '../src/index.ts'
import { crashKit } from './helpers/child.ts'
import { sideEffectFactory, sideEffectTemplates, type SideEffect } from './fixtures/side-effects.ts'

const WORKER = new URL('./fixtures/side-effect-worker.ts', import.meta.url).pathname
const KILLS = Number(process.env.CRASH_KILLS ?? 22)
const kit = crashKit()

const readEffects = (file: string): SideEffect[] =>
  readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as SideEffect)

const lineCount = (file: string): number => {
  try {
    return readFileSync(file, 'utf8').split('\n').length - 1
  } catch {
    return 0
  }
}

describe('side effects across SIGKILLs', () => {
  it(`${KILLS} kills mid-action: every side effect has its run and attempt stored, one key per step`, async () => {
    const db = kit.tempDb()
    const effects = join(dirname(db), 'effects.jsonl')
    let killedWithWork = 0
    try {
      for (let k = 0; k < KILLS; k++) {
        const before = lineCount(effects)
        const { child } = await kit.start(WORKER, [db, effects, '2'])
        // Kill right after the k-th new side effect: while an action is between acting and returning.
        const wait = 1 + Math.floor(Math.random() * 12)
        for (;;) {
          if (lineCount(effects) >= before + wait) break
          if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}`)
          await new Promise((r) => setTimeout(r, 2))
        }
        await kit.kill(child)
        killedWithWork++
      }

      // The last start is here: recover everything and let it finish.
      const fx = sideEffectFactory(db, effects)
      const o = new ProjectOrchestrator({ database: db })
      try {
        o.registerFactory('fx', fx.factory)
        for (const [name, definition] of Object.entries(sideEffectTemplates)) o.workflows.registerTemplate(name, definition)
        const runIds = (o.context.conn.sqlite.prepare('SELECT id FROM runs').pluck().all() as string[])
        const results = await Promise.all(runIds.map((id) => o.waitForRun(id)))
        expect(results.filter((r) => r.status !== 'SUCCEEDED').map((r) => `${r.runId} ${r.status} ${r.error ?? ''}`)).toEqual([])
      } finally {
        await o.close()
        fx.close()
      }

      const sqlite = new Database(db, { readonly: true })
      const run = sqlite.prepare('SELECT 1 FROM runs WHERE id = ?').pluck()
      const attempt = sqlite.prepare('SELECT status FROM step_attempts WHERE run_id = ? AND step_id = ? AND attempt = ?').pluck()
      const all = readEffects(effects)
      const orphans: string[] = []
      const notCommitted: string[] = []
      const keys = new Map<string, Set<string>>()
      for (const e of all) {
        const at = `${e.runId} ${e.stepId}#${e.attempt}`
        if (!run.get(e.runId)) orphans.push(`${at}: no run`)
        else if (!attempt.get(e.runId, e.stepId, e.attempt)) orphans.push(`${at}: no attempt`)
        notCommitted.push(...e.missing)
        const step = `${e.runId}:${e.stepId}`
        if (!keys.has(step)) keys.set(step, new Set())
        keys.get(step)!.add(e.key)
      }
      const runs = sqlite.prepare('SELECT count(*) FROM runs').pluck().get() as number
      const repeated = [...keys.values()].filter((k) => k.size === 1).length
      const interrupted = sqlite.prepare("SELECT count(*) FROM step_attempts WHERE status = 'INTERRUPTED'").pluck().get() as number
      sqlite.close()
      console.log(`[side-effects] ${killedWithWork} kills, ${runs} runs, ${all.length} side effects over ${keys.size} steps, ${interrupted} attempts interrupted`)
      expect(killedWithWork).toBeGreaterThanOrEqual(KILLS)
      expect(all.length).toBeGreaterThan(KILLS)
      expect(orphans).toEqual([])
      expect(notCommitted).toEqual([])
      // One key per step, the same for every attempt of it: `<runId>:<stepId>`.
      expect(repeated).toBe(keys.size)
      for (const [step, k] of keys) expect([...k]).toEqual([step])
    } finally {
      kit.cleanup()
    }
  }, 600_000)
})
