// Global ids are the library's own ids where they already say their type (`wf_…`, `run_…`), so an
// id from the library works in GraphQL and back. Other types are `Type:key`.
import { GraphQLError } from 'graphql'

const PREFIXES: Record<string, string> = { wf_: 'Workflow', run_: 'Run' }

export function encodeId(typename: string, id: string | number | bigint): string {
  const raw = String(id)
  for (const [prefix, type] of Object.entries(PREFIXES)) if (type === typename && raw.startsWith(prefix)) return raw
  return `${typename}:${raw}`
}

export function decodeId(globalId: string): { typename: string; id: string } {
  for (const [prefix, typename] of Object.entries(PREFIXES)) if (globalId.startsWith(prefix)) return { typename, id: globalId }
  const colon = globalId.indexOf(':')
  if (colon <= 0) throw new GraphQLError(`"${globalId}" is not a valid id`, { extensions: { code: 'BAD_USER_INPUT' } })
  return { typename: globalId.slice(0, colon), id: globalId.slice(colon + 1) }
}

/** The raw id of a given type, from either form. */
export function rawId(globalId: string, typename: string): string | undefined {
  try {
    const decoded = decodeId(globalId)
    return decoded.typename === typename ? decoded.id : undefined
  } catch {
    return undefined
  }
}
