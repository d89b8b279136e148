// GET /artifacts/<id>/<name>: streams an artifact's bytes. The id is looked up in the database, so
// no path from the request ever reaches the file system.
import { open } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { pipeline } from 'node:stream'
import type { ProjectOrchestrator } from './engine/project-orchestrator.ts'
import { FALLBACK_MEDIA_TYPE, isMediaType } from './engine/media-type.ts'

export async function serveArtifact(orchestrator: ProjectOrchestrator, path: string, method: string, res: ServerResponse): Promise<void> {
  const id = path.split('/')[2] ?? ''
  const artifact = /^art_[0-9a-z]+$/.test(id) ? orchestrator.catalog.artifact(id) : undefined
  // Opened before the status is sent: a file removed (or replaced by something else) is a 404, not a 200 cut short.
  const file = artifact ? await open(artifact.path, 'r').catch(() => undefined) : undefined
  const stat = file ? await file.stat().catch(() => undefined) : undefined
  if (!artifact || !file || !stat?.isFile()) {
    await file?.close()
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'artifact not found' }))
    return
  }
  try {
    res.writeHead(200, {
      // Rows stored before types were checked (artifacts.ts) may hold one that cannot be a header.
      'content-type': isMediaType(artifact.mimeType) ? artifact.mimeType : FALLBACK_MEDIA_TYPE,
      'content-length': stat.size,
      'content-disposition': `inline; filename="${artifact.name.replace(/[^\w.\- ]/g, '_')}"`,
      'x-content-type-options': 'nosniff',
      // Files come from factories: never let one run script on the API's origin.
      'content-security-policy': "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
      'cache-control': 'private, max-age=31536000, immutable',
    })
  } catch (error) {
    await file.close()
    throw error
  }
  if (method === 'HEAD') {
    await file.close()
    res.end()
    return
  }
  // A read error after the status went out can only cut the response short (the client sees a
  // body shorter than content-length), and a client that leaves closes the file: pipeline handles
  // both (a bare pipe would leave a read error unhandled, which ends the process).
  pipeline(file.createReadStream(), res, () => {})
}
