// GraphQL Code Generator: prints schema.graphql from the Pothos schema and typed documents for the
// operations the tests and examples use. `npm run codegen` writes; `npm test` fails when stale.
import type { CodegenConfig } from '@graphql-codegen/cli'

const config: CodegenConfig = {
  schema: './src/schema/index.ts',
  documents: ['test/operations/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    'schema.graphql': { plugins: ['schema-ast'], config: { includeDirectives: false, sort: true } },
    'test/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: { emitLegacyCommonJSImports: false, useTypeImports: true, enumsAsTypes: true, scalars: { JSON: 'unknown', DateTime: 'string' } },
    },
  },
}

export default config
