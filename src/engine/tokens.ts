// API tokens: `cvy_<id>_<secret>`. The secret is shown once, at creation; the database keeps only its
// SHA-256, so a copy of the database does not give access. Scopes nest: admin ⊃ execute ⊃ read.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Connection } from '../db/connection.ts'
import { insertApiToken } from '../db/sql/insertApiToken.ts'
import { getApiToken } from '../db/sql/getApiToken.ts'
import { listApiTokens } from '../db/sql/listApiTokens.ts'
import { revokeApiToken } from '../db/sql/revokeApiToken.ts'
import { touchApiToken } from '../db/sql/touchApiToken.ts'
import { ValidationError } from './errors.ts'

/** In increasing order of power: each scope includes the ones before it. */
export const SCOPES = ['read', 'execute', 'admin'] as const
export type Scope = (typeof SCOPES)[number]

export interface TokenInfo {
  id: string
  name: string
  /** The scopes it was created with. */
  scopes: Scope[]
  createdAt: number
  lastUsedAt: number | null
  revokedAt: number | null
}

const TOKEN = /^cvy_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/
/** last_used_at is written at most this often per token, so reads do not turn into a write each. */
const TOUCH_EVERY_MS = 60_000
/** Compared against when the id is unknown, so a miss costs the same hash and comparison as a hit. */
const NO_HASH = Buffer.alloc(32)

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value)
}

/** The scopes `granted` amounts to: admin gives execute and read, execute gives read. */
export function effectiveScopes(granted: readonly string[]): Scope[] {
  const top = Math.max(-1, ...granted.filter(isScope).map((s) => SCOPES.indexOf(s)))
  return SCOPES.slice(0, top + 1)
}

/** Parses `read,execute` (commas and/or spaces); throws a ValidationError on an unknown or missing scope. */
export function parseScopes(text: string | readonly string[]): Scope[] {
  const parts = (typeof text === 'string' ? text.split(/[\s,]+/) : [...text]).map((s) => s.trim()).filter(Boolean)
  const unknown = parts.filter((s) => !isScope(s))
  if (unknown.length || parts.length === 0) {
    const message = parts.length === 0 ? 'no scopes given' : `unknown scope${unknown.length > 1 ? 's' : ''} ${unknown.map((s) => `"${s}"`).join(', ')}`
    throw new ValidationError(`${message}: use ${SCOPES.join(', ')}`, [{ path: 'scopes', message }])
  }
  return SCOPES.filter((s) => parts.includes(s))
}

function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest()
}

export class TokenStore {
  private readonly touched = new Map<string, number>()

  constructor(private readonly conn: Connection) {}

  /** Makes a token. `token` is the only copy of the secret: show it once. */
  create(options: { name?: string; scopes: string | readonly string[] }): { id: string; token: string; scopes: Scope[] } {
    const scopes = parseScopes(options.scopes)
    const id = randomBytes(8).toString('hex')
    const secret = randomBytes(32).toString('base64url')
    insertApiToken(this.conn, {
      id,
      name: options.name?.trim() || 'unnamed',
      hash: sha256(secret).toString('hex'),
      scopes,
      createdAt: Date.now(),
    })
    return { id, token: `cvy_${id}_${secret}`, scopes }
  }

  /** The effective scopes of a valid, unrevoked token; undefined for anything else. */
  verify(token: string | null | undefined): Scope[] | undefined {
    const match = typeof token === 'string' ? TOKEN.exec(token) : null
    if (!match) return undefined
    const [, id, secret] = match as unknown as [string, string, string]
    const row = getApiToken(this.conn, id)
    const stored = row ? Buffer.from(row.hash, 'hex') : NO_HASH
    const equal = stored.length === 32 && timingSafeEqual(stored, sha256(secret))
    if (!row || !equal || row.revokedAt !== null) return undefined
    const now = Date.now()
    if (now - (this.touched.get(id) ?? row.lastUsedAt ?? 0) >= TOUCH_EVERY_MS) {
      this.touched.set(id, now)
      touchApiToken(this.conn, id, now)
    }
    return effectiveScopes(row.scopes)
  }

  list(): TokenInfo[] {
    return listApiTokens(this.conn).map((r) => ({ ...r, scopes: r.scopes.filter(isScope) }))
  }

  get(id: string): TokenInfo | undefined {
    const row = getApiToken(this.conn, id)
    if (!row) return undefined
    const { hash: _hash, ...info } = row
    return { ...info, scopes: info.scopes.filter(isScope) }
  }

  /** True when the token existed and was not revoked before. */
  revoke(id: string): boolean {
    return revokeApiToken(this.conn, id, Date.now())
  }
}
