import type { Connection } from '../connection.ts'

export interface NewArtifact {
  id: string
  runId: string
  stepId: string | null
  name: string
  mimeType: string
  size: number
  path: string
  createdAt: number
}

export function insertArtifact(conn: Connection, a: NewArtifact): void {
  conn
    .statement('INSERT INTO artifacts (id, run_id, step_id, name, mime_type, size, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(a.id, a.runId, a.stepId, a.name, a.mimeType, a.size, a.path, a.createdAt)
}
