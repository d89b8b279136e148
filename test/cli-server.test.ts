// `conveyor serve` as a real child process, started the way the README says: flags, env vars,
// `npm start`, a config file, structured logs, GraphiQL, health and metrics, GraphQL over HTTP,
// graceful SIGTERM (also in the middle of a run, which finishes after a restart) and `migrate`.
// Everything listens on 127.0.0.1 with a port the OS picks.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { GRAPHIQL_EXAMPLES } from '../src/graphiql-examples.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const INDEX = join(ROOT, 'src/index.ts')
const EXAMPLE_CONFIG = join(ROOT, 'examples/conveyor.config.ts')
const SLOW = 120_000

// ------------------------------------------------------------------------------------ processes

interface LogLine {
  level: number
  time: number
  pid: number
  name: string
  msg: string
  [key: string]: unknown
}

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

class Proc {
  readonly lines: string[] = []
  stderr = ''
  readonly closed: Promise<Exit>
  private waiters: (() => void)[] = []
  private done = false

  constructor(readonly child: ChildProcess, readonly group: boolean) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line)
      this.notify()
    })
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()))
    // 'close': the process exited and every stdio stream (also a grandchild's, under npm) is done.
    this.closed = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.done = true
        this.notify()
        resolve({ code, signal })
      }),
    )
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  /** The stdout lines that are JSON objects (npm adds a plain-text banner before them). */
  logs(): LogLine[] {
    return this.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine)
  }

  /** Resolves with the first log line with this msg; rejects if the process ends without one. */
  async waitForLog(msg: string): Promise<LogLine> {
    for (;;) {
      const found = this.logs().find((l) => l.msg === msg)
      if (found) return found
      if (this.done) {
        throw new Error(`process ended without logging "${msg}"\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`)
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
  }

  /** The URL from the 'conveyor listening' line: the real port, since we ask for port 0. */
  async url(): Promise<string> {
    const line = await this.waitForLog('conveyor listening')
    return line.url as string
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    if (this.group) process.kill(-this.child.pid!, signal)
    else this.child.kill(signal)
  }

  async stop(): Promise<Exit> {
    this.signal('SIGTERM')
    return this.closed
  }
}

const procs: Proc[] = []
const dirs: string[] = []

/** The parent's environment without any CONVEYOR_* variable, plus `extra`. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONVEYOR_')))
  return { ...clean, npm_config_update_notifier: 'false', npm_config_fund: 'false', ...extra }
}

function run(command: string, args: string[], options: { env?: Record<string, string>; detached?: boolean } = {}): Proc {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: env(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  })
  const proc = new Proc(child, options.detached ?? false)
  procs.push(proc)
  return proc
}

/** `node --import tsx src/cli.ts <args>`, as the README runs the CLI. */
function cli(args: string[], extraEnv: Record<string, string> = {}): Proc {
  return run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: extraEnv })
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-cli-'))
  dirs.push(dir)
  return dir
}

/** A port that was free a moment ago (to prove CONVEYOR_PORT is honoured, 0 would not). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function killAll(): Promise<void> {
  for (const p of procs.splice(0)) {
    p.signal('SIGKILL')
    await p.closed
  }
}

afterAll(async () => {
  await killAll()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

// ------------------------------------------------------------------------------------- GraphQL

type Json = Record<string, any>

async function gql(url: string, query: string, variables?: Record<string, unknown>): Promise<Json> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  })
  const body = (await res.json()) as { data?: Json; errors?: unknown[] }
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined()
  expect(res.status).toBe(200)
  return body.data!
}

const FROM_TEMPLATE = /* GraphQL */ `
  mutation ($template: String!, $params: JSON) {
    createWorkflowFromTemplate(input: { template: $template, params: $params }) {
      __typename
      ... on CreateWorkflowSuccess { workflow { id name templateName } }
      ... on Error { message }
    }
  }`

const CREATE = /* GraphQL */ `
  mutation ($name: String!, $definition: JSON!) {
    createWorkflow(input: { name: $name, definition: $definition }) {
      __typename
      ... on CreateWorkflowSuccess { workflow { id } }
      ... on Error { message }
    }
  }`

const EXECUTE = /* GraphQL */ `
  mutation ($workflowId: ID!) {
    executeWorkflow(input: { workflowId: $workflowId }) {
      __typename
      ... on ExecuteWorkflowSuccess { run { id status } }
      ... on Error { message }
    }
  }`

const RUN = /* GraphQL */ `
  query ($id: ID!) {
    run(id: $id) {
      id status output error
      steps { stepId status attempts attemptHistory { attempt status } }
    }
  }`

async function fromTemplate(url: string, template: string, params?: unknown): Promise<string> {
  const data = await gql(url, FROM_TEMPLATE, { template, params })
  const result = data.createWorkflowFromTemplate
  expect(result.__typename, JSON.stringify(result)).toBe('CreateWorkflowSuccess')
  return result.workflow.id
}

async function createWorkflow(url: string, name: string, definition: unknown): Promise<string> {
  const result = (await gql(url, CREATE, { name, definition })).createWorkflow
  expect(result.__typename, JSON.stringify(result)).toBe('CreateWorkflowSuccess')
  return result.workflow.id
}

async function execute(url: string, workflowId: string): Promise<string> {
  const result = (await gql(url, EXECUTE, { workflowId })).executeWorkflow
  expect(result.__typename, JSON.stringify(result)).toBe('ExecuteWorkflowSuccess')
  return result.run.id
}

const UNFINISHED = new Set(['PENDING', 'RUNNING', 'PAUSED', 'ROLLING_BACK'])

/** Polls run(id) until `until` holds (default: the run has finished). The test timeout bounds it. */
async function pollRun(url: string, id: string, until: (run: Json) => boolean = (r) => !UNFINISHED.has(r.status)): Promise<Json> {
  for (;;) {
    const run = (await gql(url, RUN, { id })).run
    expect(run, `run ${id} exists`).not.toBeNull()
    if (until(run)) return run
    await new Promise((r) => setTimeout(r, 25))
  }
}

function integrity(db: string): string {
  const sqlite = new Database(db, { readonly: true, fileMustExist: true })
  try {
    return sqlite.pragma('integrity_check', { simple: true }) as string
  } finally {
    sqlite.close()
  }
}

// --------------------------------------------------------------------------------- config files

/** A config outside the repository: imports the library by absolute path, no zod (no node_modules there). */
function writeGreeterConfig(dir: string): string {
  const file = join(dir, 'greeter.config.ts')
  writeFileSync(
    file,
    `import { defineConfig, defineFactory } from ${JSON.stringify(INDEX)}

const greeter = defineFactory({
  name: 'greeter',
  description: 'Says hello (a test factory from a config file).',
  actions: {
    greet: {
      description: 'A greeting for params.who',
      run: async (params: { who?: string }) => ({ greeting: 'hello ' + (params.who ?? 'nobody') }),
    },
  },
})

export default defineConfig({
  factories: { greeter },
  templates: {
    greeting_pipeline: {
      description: 'Greets twice.',
      steps: [
        { id: 'first', factory: 'greeter', action: 'greet' },
        { id: 'second', factory: 'greeter', action: 'greet', params: { who: '{{ steps.first.output.greeting }}' } },
      ],
      factories: ['greeter'],
    },
  },
})
`,
  )
  return file
}

/** A factory whose action sleeps ~300 ms (and honours ctx.signal, as actions should). */
function writeSlowConfig(dir: string): string {
  const file = join(dir, 'slow.config.ts')
  writeFileSync(
    file,
    `import { setTimeout as sleep } from 'node:timers/promises'
import { defineConfig, defineFactory } from ${JSON.stringify(INDEX)}

const slow = defineFactory({
  name: 'slow',
  actions: {
    nap: {
      run: async (params: { n: number }, ctx: { signal: AbortSignal; attempt: number }) => {
        await sleep(Number(process.env.NAP_MS ?? 300), undefined, { signal: ctx.signal })
        return { n: params.n, attempt: ctx.attempt }
      },
    },
  },
})

export default defineConfig({ factories: { slow } })
`,
  )
  return file
}

const FIVE_NAPS = {
  parallel: false,
  steps: [1, 2, 3, 4, 5].map((n) => ({ id: `s${n}`, factory: 'slow', action: 'nap', params: { n } })),
}

const FACTORIES = '{ factories { name actions { name } } }'
const TEMPLATES = '{ templates(first: 50) { edges { node { name } } } }'

async function factoryNames(url: string): Promise<string[]> {
  return ((await gql(url, FACTORIES)).factories as { name: string }[]).map((f) => f.name).sort()
}

async function templateNames(url: string): Promise<string[]> {
  return ((await gql(url, TEMPLATES)).templates.edges as { node: { name: string } }[]).map((e) => e.node.name).sort()
}

/** The greeter config is in effect: its factory and template exist, the example's do not, and it runs. */
async function expectGreeterConfig(url: string): Promise<void> {
  expect(await factoryNames(url)).toEqual(['control', 'greeter', 'http', 'transform'])
  expect(await templateNames(url)).toEqual(['greeting_pipeline'])
  const runId = await execute(url, await fromTemplate(url, 'greeting_pipeline', { who: 'config' }))
  const run = await pollRun(url, runId)
  expect(run.status, run.error).toBe('SUCCEEDED')
  expect(run.output).toEqual({ second: { greeting: 'hello hello config' } })
}

// ---------------------------------------------------------------------------------------- tests

describe('conveyor serve, started the README way (node --import tsx src/cli.ts serve --port 0 --db <file>)', () => {
  let proc: Proc
  let url: string
  let origin: string
  let db: string

  beforeAll(async () => {
    db = join(tempDir(), 'conveyor.db')
    proc = cli(['serve', '--port', '0', '--db', db])
    url = await proc.url()
    origin = new URL(url).origin
  }, SLOW)

  it('listens on 127.0.0.1 on the port the OS picked, and reports the URL, config and database it uses', async () => {
    const { hostname, port, pathname } = new URL(url)
    expect(hostname).toBe('127.0.0.1')
    expect(Number(port)).toBeGreaterThan(0)
    expect(pathname).toBe('/graphql')
    const graphiql = await proc.waitForLog(`GraphiQL at ${url}`)
    expect(graphiql).toMatchObject({ config: EXAMPLE_CONFIG, database: db })
    expect(existsSync(db)).toBe(true)
  })

  it('(a) serves GraphiQL for a browser, preloaded with the example operations', async () => {
    const res = await fetch(url, { headers: { accept: 'text/html' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await res.text()
    expect(html.toLowerCase()).toContain('graphiql')
    expect(html).toContain('<title>Conveyor</title>')
    // The examples are the editor's default query, embedded as a JSON string in the page's config.
    expect(html).toContain(JSON.stringify(GRAPHIQL_EXAMPLES))
    const operations = [...GRAPHIQL_EXAMPLES.matchAll(/^(query|mutation|subscription) (\w+)/gm)].map((m) => `${m[1]} ${m[2]}`)
    expect(operations).toEqual([
      'mutation ContentPipeline', 'mutation Execute', 'subscription Watch', 'query Artifacts',
      'mutation MediaBundle', 'query Factories', 'mutation CreateWorkflow', 'query Runs',
    ])
    for (const operation of operations) expect(html, operation).toContain(operation)
    // Subscriptions from GraphiQL go over graphql-ws on the same path.
    expect(html).toContain('"subscriptionsProtocol":"WS"')
  })

  it('(b) /healthz is 200 JSON {status: ok}; /metrics is Prometheus text with conveyor_runs', async () => {
    const health = await fetch(`${origin}/healthz`)
    expect(health.status).toBe(200)
    expect(health.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await health.json()).toMatchObject({ status: 'ok' })

    const metrics = await fetch(`${origin}/metrics`)
    expect(metrics.status).toBe(200)
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await metrics.text()
    expect(text).toContain('# TYPE conveyor_runs gauge')
    expect(text).toContain('# HELP conveyor_runs ')
    // Every non-comment line is a sample: name{labels} value.
    for (const line of text.trim().split('\n').filter((l) => !l.startsWith('#'))) {
      expect(line).toMatch(/^conveyor_[a-z_]+(\{[^}]*\})? -?\d+(\.\d+)?$/)
    }
  })

  it('(d) answers a GraphQL query over HTTP: the example config registers control, media and research', async () => {
    expect(await factoryNames(url)).toEqual(expect.arrayContaining(['control', 'media', 'research']))
    expect(await templateNames(url)).toEqual(['content_pipeline', 'market_research_pipeline', 'media_bundle'])
  })

  let researchRun: string
  it('(d) runs the market_research_pipeline template through GraphQL mutations to SUCCEEDED', async () => {
    const workflowId = await fromTemplate(url, 'market_research_pipeline', { symbol: 'ETH' })
    researchRun = await execute(url, workflowId)
    const run = await pollRun(url, researchRun)
    expect(run.status, run.error).toBe('SUCCEEDED')
    expect(run.steps.map((s: Json) => [s.stepId, s.status])).toEqual([
      ['analyze_market', 'SUCCEEDED'],
      ['initiate_research', 'SUCCEEDED'],
    ])
    expect(run.output.initiate_research).toMatchObject({ subject: 'ETH', basedOn: { symbol: 'ETH', source: 'sample' } })
    // The metrics count it.
    const text = await (await fetch(`${origin}/metrics`)).text()
    expect(text).toMatch(/^conveyor_runs\{status="SUCCEEDED"\} 1$/m)
  })

  it('(c) logs are pino JSON lines', () => {
    expect(proc.lines.length).toBeGreaterThan(0)
    for (const line of proc.lines) {
      const parsed = JSON.parse(line) as LogLine
      expect(parsed).toMatchObject({ name: 'conveyor', pid: proc.child.pid })
      expect(typeof parsed.level).toBe('number')
      expect(typeof parsed.time).toBe('number')
      expect(typeof parsed.msg).toBe('string')
    }
  })

  it('(e) SIGTERM: exits 0 after logging "stopped"; the database is consistent and keeps the run', async () => {
    const exit = await proc.stop()
    expect(exit).toEqual({ code: 0, signal: null })
    const messages = proc.logs().map((l) => l.msg)
    expect(messages).toContain('shutting down')
    expect(messages.at(-1)).toBe('stopped')
    expect(proc.logs().find((l) => l.msg === 'shutting down')).toMatchObject({ signal: 'SIGTERM' })
    expect(integrity(db)).toBe('ok')
    const sqlite = new Database(db, { readonly: true, fileMustExist: true })
    try {
      expect(sqlite.prepare('select status from runs where id = ?').get(researchRun)).toEqual({ status: 'SUCCEEDED' })
    } finally {
      sqlite.close()
    }
  })
})

describe('configuration', () => {
  afterEach(killAll)

  it('--config <file.ts> registers that file\'s factories and templates', async () => {
    const dir = tempDir()
    const config = writeGreeterConfig(dir)
    const db = join(dir, 'flags.db')
    const proc = cli(['serve', '--port', '0', '--db', db, '--config', config])
    const url = await proc.url()
    expect(await proc.waitForLog(`GraphiQL at ${url}`)).toMatchObject({ config, database: db })
    await expectGreeterConfig(url)
    expect(await proc.stop()).toEqual({ code: 0, signal: null })
    expect(integrity(db)).toBe('ok')
  }, SLOW)

  it('CONVEYOR_PORT, CONVEYOR_HOST, CONVEYOR_DB and CONVEYOR_CONFIG do what the flags do', async () => {
    const dir = tempDir()
    const config = writeGreeterConfig(dir)
    const db = join(dir, 'env.db')
    const port = await freePort()
    const proc = cli(['serve'], {
      CONVEYOR_PORT: String(port),
      CONVEYOR_HOST: '127.0.0.1',
      CONVEYOR_DB: db,
      CONVEYOR_CONFIG: config,
    })
    const url = await proc.url()
    expect(url).toBe(`http://127.0.0.1:${port}/graphql`)
    expect(await proc.waitForLog(`GraphiQL at ${url}`)).toMatchObject({ config, database: db })
    expect(existsSync(db)).toBe(true)
    await expectGreeterConfig(url)
    expect(await proc.stop()).toEqual({ code: 0, signal: null })
    expect(integrity(db)).toBe('ok')
  }, SLOW)

  it('flags win over the env vars', async () => {
    const dir = tempDir()
    const config = writeGreeterConfig(dir)
    const flagDb = join(dir, 'flag.db')
    const envDb = join(dir, 'env.db')
    const proc = cli(['serve', '--port', '0', '--db', flagDb, '--config', EXAMPLE_CONFIG], {
      CONVEYOR_PORT: 'not-a-port',
      CONVEYOR_DB: envDb,
      CONVEYOR_CONFIG: config,
    })
    const url = await proc.url()
    expect(await proc.waitForLog(`GraphiQL at ${url}`)).toMatchObject({ config: EXAMPLE_CONFIG, database: flagDb })
    expect(await factoryNames(url)).toEqual(expect.arrayContaining(['control', 'media', 'research']))
    expect(await proc.stop()).toEqual({ code: 0, signal: null })
    expect(existsSync(flagDb)).toBe(true)
    expect(existsSync(envDb)).toBe(false)
  }, SLOW)

  it('npm start -- --port 0 --db <file> passes the options through', async () => {
    const dir = tempDir()
    const db = join(dir, 'npm.db')
    // npm → sh → tsx → node: a process group of its own, so SIGTERM reaches every one of them.
    const proc = run('npm', ['start', '--', '--port', '0', '--db', db], { detached: true })
    const url = await proc.url()
    expect(new URL(url).hostname).toBe('127.0.0.1')
    expect(await proc.waitForLog(`GraphiQL at ${url}`)).toMatchObject({ config: EXAMPLE_CONFIG, database: db })
    expect(await factoryNames(url)).toEqual(expect.arrayContaining(['control', 'media', 'research']))
    const health = await fetch(`${new URL(url).origin}/healthz`)
    expect(await health.json()).toMatchObject({ status: 'ok' })
    // npm itself re-raises the signal (exit by SIGTERM); the server inside shuts down cleanly.
    await proc.stop()
    expect(proc.logs().map((l) => l.msg)).toContain('stopped')
    expect(integrity(db)).toBe('ok')
  }, SLOW)

  it('an invalid --port exits non-zero with a message, before listening', async () => {
    const dir = tempDir()
    const proc = cli(['serve', '--port', 'abc', '--db', join(dir, 'bad.db')])
    const exit = await proc.closed
    expect(exit.code).not.toBe(0)
    expect(exit.code).not.toBeNull()
    expect(proc.stderr).toContain('invalid port "abc"')
    expect(proc.logs().some((l) => l.msg === 'conveyor listening')).toBe(false)
  }, SLOW)
})

describe('conveyor migrate', () => {
  it('creates the database (and its directory) with every table and migration; a second run is a no-op', async () => {
    const dir = tempDir()
    const db = join(dir, 'nested', 'dir', 'migrated.db')
    const first = cli(['migrate', '--db', db])
    expect(await first.closed).toEqual({ code: 0, signal: null })
    expect(first.lines.join('\n')).toContain(`database ${db} is up to date`)
    expect(existsSync(db)).toBe(true)

    const journal = JSON.parse(readFileSync(join(ROOT, 'drizzle/meta/_journal.json'), 'utf8')) as { entries: unknown[] }
    const check = () => {
      const sqlite = new Database(db, { readonly: true, fileMustExist: true })
      try {
        const tables = (sqlite.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[]).map((t) => t.name)
        expect(tables).toEqual(expect.arrayContaining(['factories', 'templates', 'workflows', 'runs', 'steps', 'step_attempts', 'events']))
        expect((sqlite.prepare('select count(*) as n from __drizzle_migrations').get() as { n: number }).n).toBe(journal.entries.length)
        expect(sqlite.pragma('integrity_check', { simple: true })).toBe('ok')
      } finally {
        sqlite.close()
      }
    }
    check()
    const second = cli(['migrate', '--db', db])
    expect(await second.closed).toEqual({ code: 0, signal: null })
    check()
  }, SLOW)
})

describe('SIGTERM during a busy run', () => {
  afterEach(killAll)

  function runRow(db: string, runId: string): { status: string; succeeded: number } {
    const sqlite = new Database(db, { readonly: true, fileMustExist: true })
    try {
      const { status } = sqlite.prepare('select status from runs where id = ?').get(runId) as { status: string }
      const { succeeded } = sqlite
        .prepare("select count(*) as succeeded from steps where run_id = ? and status = 'SUCCEEDED'")
        .get(runId) as { succeeded: number }
      return { status, succeeded }
    } finally {
      sqlite.close()
    }
  }

  /** Starts the 5 × 300 ms run, SIGTERMs the server while step s1 is running; returns the run's id. */
  async function startAndInterrupt(dir: string, db: string, config: string, extraEnv: Record<string, string>) {
    const first = cli(['serve', '--port', '0', '--db', db, '--config', config], extraEnv)
    const url = await first.url()
    const runId = await execute(url, await createWorkflow(url, 'five_naps', FIVE_NAPS))
    await pollRun(url, runId, (r) => r.steps.some((s: Json) => s.status === 'RUNNING'))
    const exit = await first.stop()
    expect(exit, first.stderr).toEqual({ code: 0, signal: null })
    expect(first.logs().map((l) => l.msg).at(-1)).toBe('stopped')
    expect(integrity(db)).toBe('ok')
    return runId
  }

  async function restartAndFinish(db: string, config: string, runId: string): Promise<Json> {
    const second = cli(['serve', '--port', '0', '--db', db, '--config', config])
    const url = await second.url()
    const run = await pollRun(url, runId)
    expect(run.status, run.error).toBe('SUCCEEDED')
    expect(run.steps.map((s: Json) => [s.stepId, s.status])).toEqual([1, 2, 3, 4, 5].map((n) => [`s${n}`, 'SUCCEEDED']))
    expect(run.output).toEqual({ s5: expect.objectContaining({ n: 5 }) })
    expect(await second.stop()).toEqual({ code: 0, signal: null })
    expect(integrity(db)).toBe('ok')
    return run
  }

  it('with the default drain: exits 0, and after a restart on the same database the run is SUCCEEDED', async () => {
    const dir = tempDir()
    const db = join(dir, 'busy.db')
    const config = writeSlowConfig(dir)
    const runId = await startAndInterrupt(dir, db, config, {})
    // The drain waits until no action of the run is in flight, and meanwhile the run keeps
    // dispatching its next steps, so today this short run usually finishes before the exit (the
    // drain=0 test below is the one that proves resumption). Either way the restart must find it
    // SUCCEEDED.
    expect(['RUNNING', 'SUCCEEDED']).toContain(runRow(db, runId).status)
    await restartAndFinish(db, config, runId)
  }, SLOW)

  it('with CONVEYOR_DRAIN_MS=0: the run is left unfinished, resumes after a restart and is SUCCEEDED', async () => {
    const dir = tempDir()
    const db = join(dir, 'busy0.db')
    const config = writeSlowConfig(dir)
    // Naps of 120 s in the first process (300 ms after the restart): however slow the machine, no
    // step can finish before the SIGTERM.
    const runId = await startAndInterrupt(dir, db, config, { CONVEYOR_DRAIN_MS: '0', NAP_MS: '120000' })
    // No drain: the process stopped with steps still to do, so the restart really resumes the run
    // rather than finding it done.
    const atExit = runRow(db, runId)
    expect(atExit.status).toBe('RUNNING')
    expect(atExit.succeeded).toBeLessThan(5)
    const run = await restartAndFinish(db, config, runId)
    // Every step succeeded exactly once; an interrupted attempt, if any, is recorded as such.
    for (const step of run.steps as Json[]) {
      const statuses = (step.attemptHistory as Json[]).map((a) => a.status)
      expect(statuses.filter((s) => s === 'SUCCEEDED'), step.stepId).toHaveLength(1)
      expect(statuses.every((s) => s === 'SUCCEEDED' || s === 'INTERRUPTED'), `${step.stepId}: ${statuses}`).toBe(true)
    }
  }, SLOW)
})
