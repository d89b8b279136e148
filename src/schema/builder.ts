// The one configured Pothos builder. Plugins: relay (Node, global ids, connections), dataloader
// (batched relations per request), complexity (depth / breadth / cost limits).
import SchemaBuilder from '@pothos/core'
import RelayPlugin from '@pothos/plugin-relay'
import DataloaderPlugin from '@pothos/plugin-dataloader'
import ComplexityPlugin from '@pothos/plugin-complexity'
import { GraphQLError, Kind, type ValueNode } from 'graphql'
import type { GraphQLContext } from './context.ts'
import { decodeId, encodeId } from './ids.ts'
import { MAX_JSON_DEPTH, pathDeeperThan } from '../engine/depth.ts'
import { formatPath } from '../engine/definition.ts'

// JSON values (variables) nested deeper than MAX_JSON_DEPTH are refused: copying them would overflow the stack.
export { MAX_JSON_DEPTH }

export const LIMITS = { depth: 12, breadth: 300, complexity: 20_000 }

export const builder = new SchemaBuilder<{
  Context: GraphQLContext
  DefaultInputFieldRequiredness: true
  DefaultFieldNullability: false
  DefaultEdgesNullability: false
  DefaultNodeNullability: false
  Scalars: {
    JSON: { Input: unknown; Output: unknown }
    DateTime: { Input: Date; Output: Date | number }
    ID: { Input: string; Output: string | number }
  }
}>({
  plugins: [RelayPlugin, DataloaderPlugin, ComplexityPlugin],
  defaultInputFieldRequiredness: true,
  defaultFieldNullability: false,
  relay: {
    // The connection field's own cost multiplies by `first`; its edges list adds nothing more.
    edgesFieldOptions: { nullable: false, complexity: { field: 0, multiplier: 1 } },
    nodeFieldOptions: { nullable: false },
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesQueryOptions: false,
    encodeGlobalID: encodeId,
    decodeGlobalID: decodeId,
  },
  complexity: {
    defaultComplexity: 1,
    defaultListMultiplier: 10,
    limit: LIMITS,
    complexityError: (kind, result) => {
      const key = kind.toLowerCase() as 'complexity' | 'depth' | 'breadth'
      const limit = LIMITS[key]
      const word = { depth: 'deep', breadth: 'broad', complexity: 'complex' }[key]
      return new GraphQLError(`query is too ${word}: ${key} ${result[key]} exceeds the limit of ${limit}`, {
        extensions: { code: 'QUERY_TOO_COMPLEX', kind: key, value: result[key], limit },
      })
    },
  },
})

builder.queryType({})
builder.mutationType({})
builder.subscriptionType({})

/** Any JSON value. Objects come back as plain objects (the database layer rejects null prototypes). */
builder.scalarType('JSON', {
  description: `Any JSON value, nested at most ${MAX_JSON_DEPTH} levels deep.`,
  serialize: (value) => value,
  parseValue: (value) => {
    const deep = pathDeeperThan(value, MAX_JSON_DEPTH)
    if (deep) throw new GraphQLError(`JSON nested more than ${MAX_JSON_DEPTH} levels deep (at ${formatPath(deep)})`)
    return structuredClone(value)
  },
  parseLiteral: (ast, variables) => literal(ast, variables ?? undefined),
})

builder.scalarType('DateTime', {
  description: 'An ISO-8601 timestamp.',
  serialize: (value) => new Date(value as number | Date).toISOString(),
  parseValue: (value) => {
    const date = new Date(value as string)
    if (typeof value !== 'string' || Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string')
    return date
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be an ISO-8601 string')
    const date = new Date(ast.value)
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string')
    return date
  },
})

function literal(ast: ValueNode, variables: Record<string, unknown> | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value)
    case Kind.NULL:
      return null
    case Kind.LIST:
      return ast.values.map((v) => literal(v, variables))
    case Kind.OBJECT: {
      const out: Record<string, unknown> = {}
      // defineProperty: `out.__proto__ = v` would set the prototype and lose the key before validation can name it.
      for (const field of ast.fields) Object.defineProperty(out, field.name.value, { value: literal(field.value, variables), enumerable: true, writable: true, configurable: true })
      return out
    }
    case Kind.VARIABLE:
      return structuredClone(variables?.[ast.name.value])
    default:
      throw new GraphQLError('not a JSON value')
  }
}
