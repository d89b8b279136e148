// Crash-test plumbing: spawn a fixture in a child process, read the JSON line it prints, SIGKILL it,
// and read its database from outside (read-only, as another process would).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import Database from 'better-sqlite3'

export interface CrashKit {
  tempDb(): string
  /** Starts `script` with `args` and resolves with the first JSON line it prints. */
  start(script: string, args: string[]): Promise<{ child: ChildProcess; line: Record<string, unknown> }>
  kill(child: ChildProcess): Promise<void>
  /** Polls the database read-only until `read` returns something other than undefined. */
  waitFor<T>(db: string, read: (sqlite: Database.Database) => T | undefined): Promise<T>
  cleanup(): void
}

export function crashKit(): CrashKit {
  const dirs: string[] = []
  const children: ChildProcess[] = []
  return {
    tempDb() {
      const dir = mkdtempSync(join(tmpdir(), 'conveyor-crash-'))
      dirs.push(dir)
      return join(dir, 'conveyor.db')
    },
    start(script, args) {
      const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
      children.push(child)
      return new Promise((resolve, reject) => {
        const lines = createInterface({ input: child.stdout! })
        lines.once('line', (line) => resolve({ child, line: JSON.parse(line) }))
        child.once('exit', (code) => reject(new Error(`worker exited early with ${code}`)))
      })
    },
    kill(child) {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGKILL')
      })
    },
    async waitFor(db, read) {
      for (;;) {
        const sqlite = new Database(db, { readonly: true, fileMustExist: true })
        try {
          const value = read(sqlite)
          if (value !== undefined) return value
        } finally {
          sqlite.close()
        }
        await new Promise((r) => setTimeout(r, 10))
      }
    },
    cleanup() {
      for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
    },
  }
}
