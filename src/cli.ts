#!/usr/bin/env node
// `conveyor <command>`: the command-line face of the library.
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { Connection } from './db/connection.ts'
import { authRequired, loadConfig, orchestratorFromConfig, serverOptionsFromConfig } from './config.ts'
import { startServer } from './server.ts'
import type { OrchestratorConfig } from './engine/project-orchestrator.ts'
import { assertSafeBind } from './access.ts'
import { SCOPES, TokenStore } from './engine/tokens.ts'

const EXAMPLE_CONFIG = fileURLToPath(new URL('../examples/conveyor.config.ts', import.meta.url))

const USAGE = `Usage: conveyor <command> [options]

Commands:
  serve     start the GraphQL server
              --port <n>       (CONVEYOR_PORT, default 4000)
              --host <addr>    (CONVEYOR_HOST, default 127.0.0.1; another address needs auth on)
              --db <path>      (CONVEYOR_DB, default ./data/conveyor.db)
              --config <file>  (CONVEYOR_CONFIG, default: the example config)
              --durability <process|machine>  (CONVEYOR_DURABILITY, default process)
              auth: CONVEYOR_AUTH=required or \`auth: { required: true }\` in the config
  token create --scopes <${SCOPES.join(',')}> [--name <name>]
            print a new API token (shown once; only its hash is stored)
  token list                 the tokens, without secrets
  token revoke <id>          revoke a token at once
            token commands take --db <path> (CONVEYOR_DB) or --config <file> (its database)
  migrate   create or upgrade the database (--db <path>)
  help      show this text
`

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string' }, host: { type: 'string' }, db: { type: 'string' }, config: { type: 'string' }, durability: { type: 'string' } },
  })
  const logger = pino({ name: 'conveyor', level: process.env.CONVEYOR_LOG_LEVEL ?? 'info' })
  const configPath = values.config ?? process.env.CONVEYOR_CONFIG ?? EXAMPLE_CONFIG
  const config = await loadConfig(configPath)
  const database = values.db ?? process.env.CONVEYOR_DB ?? config.database ?? './data/conveyor.db'
  const port = Number(values.port ?? process.env.CONVEYOR_PORT ?? config.server?.port ?? 4000)
  const host = values.host ?? process.env.CONVEYOR_HOST ?? config.server?.host ?? '127.0.0.1'
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port "${values.port ?? process.env.CONVEYOR_PORT}"`)
  // Before the database is opened: a refused start changes nothing.
  assertSafeBind(host, authRequired(config))
  const durability = (values.durability ?? process.env.CONVEYOR_DURABILITY ?? config.durability) as OrchestratorConfig['durability']
  const orchestrator = orchestratorFromConfig(config, { database, logger, durability })
  const server = await startServer({ orchestrator, host, port, logger, ...serverOptionsFromConfig(config) })
  logger.info({ config: configPath, database, durability: orchestrator.context.conn.durability }, `GraphiQL at ${server.url}`)

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down')
    await server.close()
    await orchestrator.close({ drainMs: Number(process.env.CONVEYOR_DRAIN_MS ?? 5000) })
    logger.info('stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

async function token(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { db: { type: 'string' }, config: { type: 'string' }, scopes: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' } },
  })
  // The database `serve` would use: --db, CONVEYOR_DB, the config's (when one is named), the default.
  const configPath = values.config ?? process.env.CONVEYOR_CONFIG
  const config = configPath ? await loadConfig(configPath) : {}
  const database = values.db ?? process.env.CONVEYOR_DB ?? config.database ?? './data/conveyor.db'
  const usage = (message: string) => {
    console.error(`${message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (sub === 'create' && values.scopes === undefined) usage('token create needs --scopes (e.g. --scopes read,execute)')
  if (sub === 'revoke' && positionals.length !== 1) usage('token revoke needs the token id')
  if (sub !== 'create' && sub !== 'list' && sub !== 'revoke') usage(`unknown token command "${sub ?? ''}"`)
  const conn = new Connection(database)
  try {
    const tokens = new TokenStore(conn)
    if (sub === 'create') {
      const made = tokens.create({ name: values.name, scopes: values.scopes! })
      // stdout carries the token alone (TOKEN=$(conveyor token create ...)); the note goes to stderr.
      console.log(made.token)
      console.error(`token ${made.id} (scopes: ${made.scopes.join(', ')}) created in ${database}: store it now, it is not shown again`)
    } else if (sub === 'list') {
      const list = tokens.list()
      if (values.json) console.log(JSON.stringify(list))
      else {
        const time = (t: number | null) => (t === null ? '-' : new Date(t).toISOString())
        const rows = [['ID', 'NAME', 'SCOPES', 'CREATED', 'LAST USED', 'REVOKED'], ...list.map((t) => [t.id, t.name, t.scopes.join(','), time(t.createdAt), time(t.lastUsedAt), time(t.revokedAt)])]
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
        for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd())
      }
    } else {
      const id = positionals[0]!
      const found = tokens.get(id)
      if (!found) {
        console.error(`no token ${id} in ${database}`)
        process.exitCode = 1
      } else if (tokens.revoke(id)) console.log(`token ${id} revoked`)
      else console.log(`token ${id} was already revoked`)
    }
  } finally {
    conn.close()
  }
}

async function main(): Promise<void> {
  const [command = 'help', ...rest] = process.argv.slice(2)
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'token':
      return token(rest)
    case 'migrate': {
      const { values } = parseArgs({ args: rest, options: { db: { type: 'string' } } })
      const path = values.db ?? process.env.CONVEYOR_DB ?? './data/conveyor.db'
      new Connection(path).close()
      console.log(`database ${path} is up to date`)
      return
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE)
      return
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`)
      process.exit(2)
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
