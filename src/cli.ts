#!/usr/bin/env node
// `conveyor <command>`: the command-line face of the library.
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { Connection } from './db/connection.ts'
import { loadConfig, orchestratorFromConfig } from './config.ts'
import { startServer } from './server.ts'

const EXAMPLE_CONFIG = fileURLToPath(new URL('../examples/conveyor.config.ts', import.meta.url))

const USAGE = `Usage: conveyor <command> [options]

Commands:
  serve     start the GraphQL server
              --port <n>       (CONVEYOR_PORT, default 4000)
              --host <addr>    (CONVEYOR_HOST, default 127.0.0.1)
              --db <path>      (CONVEYOR_DB, default ./data/conveyor.db)
              --config <file>  (CONVEYOR_CONFIG, default: the example config)
  migrate   create or upgrade the database (--db <path>)
  help      show this text
`

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string' }, host: { type: 'string' }, db: { type: 'string' }, config: { type: 'string' } },
  })
  const logger = pino({ name: 'conveyor', level: process.env.CONVEYOR_LOG_LEVEL ?? 'info' })
  const configPath = values.config ?? process.env.CONVEYOR_CONFIG ?? EXAMPLE_CONFIG
  const config = await loadConfig(configPath)
  const database = values.db ?? process.env.CONVEYOR_DB ?? config.database ?? './data/conveyor.db'
  const port = Number(values.port ?? process.env.CONVEYOR_PORT ?? config.server?.port ?? 4000)
  const host = values.host ?? process.env.CONVEYOR_HOST ?? config.server?.host ?? '127.0.0.1'
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port "${values.port ?? process.env.CONVEYOR_PORT}"`)
  const orchestrator = orchestratorFromConfig(config, { database, logger })
  const server = await startServer({ orchestrator, host, port, logger })
  logger.info({ config: configPath, database }, `GraphiQL at ${server.url}`)

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

async function main(): Promise<void> {
  const [command = 'help', ...rest] = process.argv.slice(2)
  switch (command) {
    case 'serve':
      return serve(rest)
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
