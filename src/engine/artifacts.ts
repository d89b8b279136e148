// Files that actions produce: written under the artifacts directory, described by a row in SQLite,
// listed on runs and steps and downloadable over HTTP.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import type { Connection } from '../db/connection.ts'
import { insertArtifact } from '../db/sql/insertArtifact.ts'
import { newId } from './ids.ts'
import { ValidationError } from './errors.ts'
import { DEFAULT_VALUE_LIMITS, sizeMessage } from './value-limits.ts'
import { describeRejectedMediaType, FALLBACK_MEDIA_TYPE, isMediaType } from './media-type.ts'

export interface ArtifactInput {
  name: string
  mimeType: string
  data: Uint8Array | string
}

export interface ArtifactInfo {
  id: string
  name: string
  mimeType: string
  size: number
  path: string
  /** Set when the given mimeType was not a valid media type: why, and that FALLBACK_MEDIA_TYPE was stored instead. */
  mimeTypeReplaced?: string
}

const SAFE_NAME = /^[\w.\- ]{1,200}$/

export class ArtifactStore {
  readonly dir: string

  /** `maxBytes`: the largest artifact taken (limits.maxArtifactBytes). */
  constructor(private readonly conn: Connection, dir?: string, private readonly maxBytes = DEFAULT_VALUE_LIMITS.maxArtifactBytes) {
    // Beside a database file by default; a temporary folder for in-memory databases.
    this.dir = resolve(dir ?? (conn.path === ':memory:' ? join(tmpdir(), `conveyor-artifacts-${process.pid}`) : join(dirname(conn.path), 'artifacts')))
  }

  /** Writes the file now; `record` receives the row to insert, so it commits in order with the run's changes. */
  save(runId: string, stepId: string | null, input: ArtifactInput, record: (insert: () => void, info: ArtifactInfo) => void): ArtifactInfo {
    if (!SAFE_NAME.test(input.name) || input.name.startsWith('.')) {
      throw new ValidationError(`artifact name "${input.name}" is not allowed`, [
        { path: 'name', message: 'letters, digits, spaces, ".", "_" and "-" only, not starting with "."' },
      ])
    }
    // A bad type is not worth failing the action for (the bytes are fine), but it must never reach
    // a Content-Type header (media-type.ts): stored as application/octet-stream, and the info says why.
    const valid = isMediaType(input.mimeType)
    const mimeType = valid ? input.mimeType : FALLBACK_MEDIA_TYPE
    const id = newId('art')
    const data = typeof input.data === 'string' ? Buffer.from(input.data, 'utf8') : input.data
    if (data.byteLength > this.maxBytes) {
      const message = sizeMessage(`artifact "${input.name}"`, data.byteLength, this.maxBytes, 'limits.maxArtifactBytes')
      throw new ValidationError(message, [{ path: 'data', message }])
    }
    const path = join(this.dir, runId, `${id}-${input.name}`)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, data)
    const row = { id, runId, stepId, name: input.name, mimeType, size: data.byteLength, path, createdAt: Date.now() }
    const info: ArtifactInfo = { id, name: input.name, mimeType, size: data.byteLength, path }
    if (!valid) info.mimeTypeReplaced = describeRejectedMediaType(input.mimeType)
    record(() => insertArtifact(this.conn, row), info)
    return info
  }
}
