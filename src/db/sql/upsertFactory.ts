import type { Connection } from '../connection.ts'

export interface FactoryRecord {
  name: string
  description: string
  actions: Map<string, { name: string; definition: { description?: string }; inputJsonSchema: unknown; outputJsonSchema: unknown }>
}

/** Records a registered factory and its actions (with their JSON Schemas) for the API and workers. */
export function upsertFactory(conn: Connection, f: FactoryRecord, kind = 'local'): void {
  conn.transaction(() => {
    conn
      .statement(
        `INSERT INTO factories (name, description, kind, registered_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description, kind = excluded.kind, registered_at = excluded.registered_at`,
      )
      .run(f.name, f.description, kind, Date.now())
    conn.statement('DELETE FROM factory_actions WHERE factory = ?').run(f.name)
    for (const a of f.actions.values()) {
      conn
        .statement('INSERT INTO factory_actions (factory, name, description, input_schema, output_schema) VALUES (?, ?, ?, ?, ?)')
        .run(f.name, a.name, a.definition.description ?? '', JSON.stringify(a.inputJsonSchema), JSON.stringify(a.outputJsonSchema))
    }
  })
}
