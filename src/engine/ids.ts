import { randomBytes } from 'node:crypto'

/** Time-ordered, unguessable ids: `run_lz4k1x2a9f3c…`. Sorting them sorts by creation time. */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomBytes(8).toString('hex')}`
}
