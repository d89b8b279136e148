import { eq } from 'drizzle-orm'
import type { Connection } from '../connection.ts'
import { workflows, workflowVersions } from '../schema.ts'

/** A new version becomes the workflow's current one; older runs keep the version they pinned. */
export function insertWorkflowVersion(conn: Connection, workflowId: string, version: number, definition: unknown, at: number): void {
  conn.transaction(() => {
    conn.db.insert(workflowVersions).values({ workflowId, version, definition, createdAt: at }).run()
    conn.db.update(workflows).set({ currentVersion: version, updatedAt: at }).where(eq(workflows.id, workflowId)).run()
  })
}
