// Fails when a generated file checked into the repository is stale: the drizzle migrations must
// match src/db/schema.ts, and schema.graphql and the typed documents must match the Pothos schema.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'

function drizzleIsCurrent(): void {
  // Generate into a copy of drizzle/: a new migration appears there only if the schema changed.
  // drizzle-kit only takes an output folder relative to the working directory.
  mkdirSync('node_modules/.cache', { recursive: true })
  const dir = relative(process.cwd(), mkdtempSync(join('node_modules/.cache', 'drizzle-check-')))
  try {
    cpSync('drizzle', dir, { recursive: true })
    const before = readdirSync(dir).length
    const out = execFileSync('npx', ['drizzle-kit', 'generate', '--dialect', 'sqlite', '--schema', './src/db/schema.ts', '--out', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    if (!/No schema changes|migration file/.test(out)) throw new Error(`drizzle-kit gave no verdict:\n${out}`)
    if (readdirSync(dir).length !== before) {
      console.error('drizzle/ is stale: src/db/schema.ts changed without a migration.')
      console.error('Run `npm run db:generate -- --name <change>` and commit the result.')
      process.exit(1)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** schema.graphql and test/generated/ must be what codegen.ts prints from the Pothos schema. */
function codegenIsCurrent(): void {
  try {
    execFileSync('npx', ['graphql-codegen', '--config', 'codegen.ts', '--check'], {
      env: { ...process.env, NODE_OPTIONS: '--import tsx' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer }
    console.error(`${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`)
    console.error('schema.graphql or test/generated/ is stale: run `npm run codegen` and commit the result.')
    process.exit(1)
  }
}

drizzleIsCurrent()
codegenIsCurrent()
console.log('generated files are current')
