// The GraphQL schema: every domain file adds its types, queries, mutations and subscriptions.
import { builder } from './builder.ts'
import './errors.ts'
import './enums.ts'
import './factory.ts'
import './step.ts'
import './run.ts'
import './workflow.ts'
import './template.ts'
import './event.ts'
import './artifact.ts'
import './pool.ts'

export const schema = builder.toSchema({ sortSchema: true })
export type { GraphQLContext } from './context.ts'
