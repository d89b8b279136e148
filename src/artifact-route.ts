// GET /artifacts/<id>/<name>: streams an artifact's bytes. The id is looked up in the database, so
// no path from the request ever reaches the file system.
import { createReadStream, existsSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import type { ProjectOrchestrator } from './engine/project-orchestrator.ts'

export function serveArtifact(orchestrator: ProjectOrchestrator, path: string, method: string, res: ServerResponse): void {
  const id = path.split('/')[2] ?? ''
  const artifact = /^art_[0-9a-z]+$/.test(id) ? orchestrator.catalog.artifact(id) : undefined
  if (!artifact || !existsSync(artifact.path)) {
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'artifact not found' }))
    return
  }
  res.writeHead(200, {
    'content-type': artifact.mimeType,
    'content-length': artifact.size,
    'content-disposition': `inline; filename="${artifact.name.replace(/"/g, '')}"`,
    'x-content-type-options': 'nosniff',
    // Files come from factories: never let one run script on the API's origin.
    'content-security-policy': "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
    'cache-control': 'private, max-age=31536000, immutable',
  })
  if (method === 'HEAD') {
    res.end()
    return
  }
  createReadStream(artifact.path).pipe(res)
}
