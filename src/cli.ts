#!/usr/bin/env node
// `conveyor <command>`: the command-line face of the library.
import { parseArgs } from 'node:util'
import { Connection } from './db/connection.ts'

const USAGE = `Usage: conveyor <command> [options]

Commands:
  migrate --db <path>     create or upgrade the SQLite database at <path>
  serve                   start the GraphQL server (not available yet: use the library API, see README)
  help                    show this text
`

const [command = 'help', ...rest] = process.argv.slice(2)

switch (command) {
  case 'migrate': {
    const { values } = parseArgs({ args: rest, options: { db: { type: 'string' } } })
    const path = values.db ?? process.env.CONVEYOR_DB ?? './data/conveyor.db'
    new Connection(path).close()
    console.log(`database ${path} is up to date`)
    break
  }
  case 'serve':
    console.log('The GraphQL server is not part of this version yet. The engine is usable as a library:\n')
    console.log("  import { ProjectOrchestrator } from './src/index.ts'\n")
    console.log(USAGE)
    break
  case 'help':
  case '--help':
  case '-h':
    console.log(USAGE)
    break
  default:
    console.error(`unknown command "${command}"\n`)
    console.error(USAGE)
    process.exit(2)
}
