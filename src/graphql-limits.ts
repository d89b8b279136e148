// Limits on the GraphQL document itself, before anything runs: its token count (checked while
// parsing, so a 1 MiB document of `a a a …` or `{{{{…` is cut off early instead of costing a second
// of parsing and validation, or overflowing the parser's stack), and how many aliases and directives
// it holds. Depth, breadth and cost are the complexity plugin's (schema/builder.ts LIMITS); the body
// size is server.ts's; batched requests are off (yoga's default: a JSON array is a 400).
import { createRequire } from 'node:module'
import type { ASTVisitor, ValidationContext } from 'graphql'
import type { Plugin } from 'graphql-yoga'

// The copy of graphql that yoga and graphql-ws load (Node's resolution): errors must be instances of
// its GraphQLError to be reported as such, also where a test runner or bundler picks graphql's ESM build.
const { GraphQLError, Lexer, Source, TokenKind, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql')

export const DOCUMENT_LIMITS = { maxTokens: 5_000, maxNesting: 64, maxAliases: 50, maxDirectives: 50 }

export function useDocumentLimits(limits: typeof DOCUMENT_LIMITS = DOCUMENT_LIMITS): Plugin {
  return {
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        checkTokens(typeof source === 'string' ? new Source(source) : source, limits)
        return parse(source, { ...options, maxTokens: limits.maxTokens })
      })
    },
    onValidate({ addValidationRule }) {
      addValidationRule((context: ValidationContext) => countingRule(context, limits))
    },
  }
}

/**
 * One pass of the lexer, before the parser: the token count, and how deeply braces, brackets and
 * parentheses nest (the parser recurses per level, so 5,000 tokens of `a { a { …` would still
 * overflow its stack). Lexical errors are left for the parser to report.
 */
function checkTokens(source: InstanceType<typeof Source>, limits: typeof DOCUMENT_LIMITS): void {
  const lexer = new Lexer(source)
  let tokens = 0
  let depth = 0
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > limits.maxTokens) {
        throw new GraphQLError(`Syntax Error: Document contains more than ${limits.maxTokens} tokens. Parsing aborted.`, {
          extensions: { code: 'QUERY_TOO_COMPLEX', kind: 'tokens', limit: limits.maxTokens },
        })
      }
      if (token.kind === TokenKind.BRACE_L || token.kind === TokenKind.BRACKET_L || token.kind === TokenKind.PAREN_L) {
        if (++depth > limits.maxNesting) {
          throw new GraphQLError(`Syntax Error: Document nests deeper than ${limits.maxNesting} levels. Parsing aborted.`, {
            extensions: { code: 'QUERY_TOO_COMPLEX', kind: 'nesting', limit: limits.maxNesting },
          })
        }
      } else if (token.kind === TokenKind.BRACE_R || token.kind === TokenKind.BRACKET_R || token.kind === TokenKind.PAREN_R) depth--
    }
  } catch (error) {
    if ((error as { extensions?: { code?: string } }).extensions?.code === 'QUERY_TOO_COMPLEX') throw error
    // A lexical error: the parser reports it with its location.
  }
}

function countingRule(context: ValidationContext, limits: typeof DOCUMENT_LIMITS): ASTVisitor {
  let aliases = 0
  let directives = 0
  return {
    Field(node) {
      if (node.alias) aliases++
    },
    Directive() {
      directives++
    },
    Document: {
      leave() {
        const report = (kind: 'aliases' | 'directives', value: number, limit: number) =>
          context.reportError(new GraphQLError(`query has ${value} ${kind}, more than the limit of ${limit}`, {
            extensions: { code: 'QUERY_TOO_COMPLEX', kind, value, limit },
          }))
        if (aliases > limits.maxAliases) report('aliases', aliases, limits.maxAliases)
        if (directives > limits.maxDirectives) report('directives', directives, limits.maxDirectives)
      },
    },
  }
}
