// Signed artifact links. With auth on, a download needs a bearer token, which an <img src> or a
// plain link cannot send; the `url` the API gives for an artifact then carries an expiry and an
// HMAC of the artifact's id instead (the id, not the path, so that re-encoding the file name in the
// path cannot break a link) (like an S3 presigned URL). The key is made at start-up and never
// leaves the process, so links stop working at the expiry or at a restart, whichever comes first.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export const DEFAULT_LINK_TTL_MS = 60 * 60 * 1000

export class ArtifactLinks {
  private readonly key = randomBytes(32)

  constructor(private readonly ttlMs = DEFAULT_LINK_TTL_MS) {}

  /** `path?expires=<ms>&signature=<hmac>`: `path` is the artifact `id`'s download path. */
  sign(path: string, id: string, now = Date.now()): string {
    const expires = now + this.ttlMs
    return `${path}?expires=${expires}&signature=${this.mac(id, expires)}`
  }

  /** True when `search` (the download's query string) holds an unexpired signature for artifact `id`. */
  verify(id: string, search: URLSearchParams, now = Date.now()): boolean {
    const expires = Number(search.get('expires'))
    const given = Buffer.from(search.get('signature') ?? '', 'base64url')
    if (!Number.isSafeInteger(expires) || expires < now) return false
    const wanted = Buffer.from(this.mac(id, expires), 'base64url')
    return given.length === wanted.length && timingSafeEqual(given, wanted)
  }

  private mac(id: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${id}\n${expires}`).digest('base64url')
  }
}
