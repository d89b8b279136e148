// Looks at the database from a second, read-only connection (as another process would see it after
// a crash) at the moment an action is called, and says what of the state the action acts on is not
// committed yet: its run, its own STARTED attempt with the params it got, the run's RUN_CREATED and
// every step output it can see (`ctx.steps`, `ctx.previous`).
import Database from 'better-sqlite3'
import type { ActionContext } from '../../src/index.ts'

export interface CommittedProbe {
  /** What is missing for this call; empty when everything it acts on is committed. */
  check(params: unknown, ctx: ActionContext): string[]
  close(): void
}

export function committedProbe(database: string): CommittedProbe {
  const reader = new Database(database, { readonly: true, fileMustExist: true })
  const run = reader.prepare('SELECT status FROM runs WHERE id = ?')
  const created = reader.prepare("SELECT count(*) FROM events WHERE run_id = ? AND type = 'RUN_CREATED'").pluck()
  const attempt = reader.prepare('SELECT status FROM step_attempts WHERE run_id = ? AND step_id = ? AND attempt = ?').pluck()
  const step = reader.prepare('SELECT status, params, output FROM steps WHERE run_id = ? AND step_id = ?')
  const startedEvent = reader.prepare("SELECT count(*) FROM events WHERE run_id = ? AND step_id = ? AND attempt = ? AND type = 'STEP_STARTED'").pluck()
  return {
    check(params, ctx) {
      const at = `${ctx.runId} ${ctx.stepId}#${ctx.attempt}`
      const missing: string[] = []
      // One read transaction: every answer is of the same committed state.
      reader.transaction(() => {
        if (!run.get(ctx.runId)) missing.push(`${at}: run row`)
        if (created.get(ctx.runId) !== 1) missing.push(`${at}: RUN_CREATED`)
        const own = step.get(ctx.runId, ctx.stepId) as { status: string; params: string | null; output: string | null } | undefined
        if (own?.status !== 'RUNNING') missing.push(`${at}: step row RUNNING (found ${own?.status ?? 'none'})`)
        else if (own.params !== JSON.stringify(params)) missing.push(`${at}: step params ${own.params} (called with ${JSON.stringify(params)})`)
        const a = attempt.get(ctx.runId, ctx.stepId, ctx.attempt)
        if (a !== 'RUNNING') missing.push(`${at}: attempt row RUNNING (found ${a ?? 'none'})`)
        if (startedEvent.get(ctx.runId, ctx.stepId, ctx.attempt) !== 1) missing.push(`${at}: STEP_STARTED`)
        for (const [id, output] of Object.entries(ctx.steps)) {
          const up = step.get(ctx.runId, id) as { status: string; output: string | null } | undefined
          if (up?.status !== 'SUCCEEDED') missing.push(`${at}: ${id} SUCCEEDED (found ${up?.status ?? 'none'})`)
          else if (up.output !== JSON.stringify(output ?? null)) missing.push(`${at}: ${id}'s output`)
        }
      })()
      return missing
    },
    close: () => reader.close(),
  }
}
