// The servers the durable peers need, each started by the bench on loopback and removed afterwards:
// a redis-server with an append-only file (fsync every second), a restate-server from its npm
// package, and a fresh database on the local PostgreSQL. Plus CPU time of server processes from
// /proc and the disk's fsync time. Every start either returns a handle or throws a SkipError whose
// message says why the peer cannot run here (printed, never silent).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { redisReachable } from '../peers/bullmq.ts'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A peer that cannot start on this machine: the bench prints it as skipped with this reason. */
export class SkipError extends Error {}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() || undefined : undefined
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill(signal)
  await Promise.race([exited, sleep(graceMs)])
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await Promise.race([exited, sleep(2000)])
  }
}

export interface ServerHandle {
  /** Process ids whose CPU is the server's (read from /proc at the window's ends). */
  pids(): number[]
  stop(): Promise<void>
}

// ---------------------------------------------------------------- redis-server with AOF

export interface RedisHandle extends ServerHandle {
  port: number
}

/** `redis-server` on a free loopback port, `--appendonly yes --appendfsync everysec --save ""`, in a temp dir. */
export async function startRedisAof(): Promise<RedisHandle> {
  const bin = which('redis-server')
  if (!bin) throw new SkipError('redis-server is not installed (apt-get install redis-server)')
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-redis-'))
  const port = await freePort()
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const stop = async () => {
    await stopChild(child)
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10_000
  while (!(await redisReachable(port, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new SkipError(`redis-server did not start on 127.0.0.1:${port}: ${stderr.trim() || `exit ${child.exitCode}`}`)
    }
    await sleep(50)
  }
  return { port, pids: () => [child.pid!], stop }
}

// ---------------------------------------------------------------- restate-server

export interface RestateHandle extends ServerHandle {
  ingress: string
  admin: string
}

export function restateBinary(): string {
  const require = createRequire(import.meta.url)
  try {
    return require.resolve(`@restatedev/restate-server-${process.platform}-${process.arch}/bin/restate-server`)
  } catch {
    throw new SkipError(`no restate-server binary for ${process.platform}-${process.arch} in node_modules (npm ci installs @restatedev/restate-server)`)
  }
}

/**
 * restate-server from its npm package: every port on 127.0.0.1, TCP only, a temp base dir, telemetry
 * and the web UI off. `fsync: false` sets `rocksdb-disable-wal-fsync` for the local loglet (bifrost)
 * and the log server, where an invocation's journal entries are made durable.
 */
export async function startRestate(o: { fsync: boolean }): Promise<RestateHandle> {
  const bin = restateBinary()
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-restate-'))
  const [node, admin, ingress] = [await freePort(), await freePort(), await freePort()]
  const config = [
    'cluster-name = "conveyor-bench"',
    'node-name = "bench"',
    'disable-telemetry = true',
    'listen-mode = "tcp"',
    `bind-address = "127.0.0.1:${node}"`,
    `advertised-address = "http://127.0.0.1:${node}/"`,
    'log-filter = "error"',
    '',
    '[admin]',
    `bind-address = "127.0.0.1:${admin}"`,
    'disable-web-ui = true',
    '',
    '[ingress]',
    `bind-address = "127.0.0.1:${ingress}"`,
    '',
    '[bifrost.local]',
    `rocksdb-disable-wal-fsync = ${!o.fsync}`,
    '',
    '[log-server]',
    `rocksdb-disable-wal-fsync = ${!o.fsync}`,
    '',
  ].join('\n')
  writeFileSync(join(dir, 'restate.toml'), config)
  const child = spawn(bin, ['--config-file', join(dir, 'restate.toml'), '--base-dir', join(dir, 'data'), '--no-logo'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DO_NOT_TRACK: '1' },
  })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
  const stop = async () => {
    await stopChild(child, 'SIGTERM', 15_000)
    rmSync(dir, { recursive: true, force: true })
  }
  const handle = { ingress: `http://127.0.0.1:${ingress}`, admin: `http://127.0.0.1:${admin}`, pids: () => [child.pid!], stop }
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) {
      await stop()
      throw new SkipError(`restate-server exited with ${child.exitCode}: ${stderr.trim().slice(-500)}`)
    }
    if (Date.now() > deadline) {
      await stop()
      throw new SkipError(`restate-server did not answer on ${handle.admin}/health and ${handle.ingress}/restate/health within 60 s`)
    }
    const ok = await Promise.all([fetchOk(`${handle.admin}/health`), fetchOk(`${handle.ingress}/restate/health`)])
    if (ok.every(Boolean)) return handle
    await sleep(200)
  }
}

async function fetchOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
    await res.arrayBuffer()
    return res.ok
  } catch {
    return false
  }
}

// ---------------------------------------------------------------- PostgreSQL

export const PG = { host: '127.0.0.1', port: 5432 }

/**
 * Connects to the local PostgreSQL as postgres, then root (trust auth). Returns a URL that works
 * for the `postgres` database, or throws a SkipError with what each attempt answered.
 */
export async function postgresUrl(): Promise<string> {
  const { default: pg } = await import('pg')
  const errors: string[] = []
  for (const user of ['postgres', 'root']) {
    const url = `postgres://${user}@${PG.host}:${PG.port}/postgres`
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
    try {
      await client.connect()
      await client.query('SELECT 1')
      return url
    } catch (error) {
      errors.push(`${user}: ${(error as Error).message}`)
    } finally {
      await client.end().catch(() => {})
    }
  }
  throw new SkipError(`PostgreSQL on ${PG.host}:${PG.port} cannot be reached (${errors.join('; ')}); start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)
}

export interface PgDatabase {
  url: string
  name: string
  drop(): Promise<void>
}

/** A fresh database (dropped by `drop()`), with `synchronous_commit` set on it. */
export async function createPgDatabase(o: { synchronousCommit: boolean }): Promise<PgDatabase> {
  const admin = await postgresUrl()
  const { default: pg } = await import('pg')
  const name = `conveyor_bench_${process.pid}_${Date.now().toString(36)}`
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: admin })
    await client.connect()
    try {
      await client.query(sql)
    } finally {
      await client.end()
    }
  }
  await run(`CREATE DATABASE ${name}`)
  await run(`ALTER DATABASE ${name} SET synchronous_commit = ${o.synchronousCommit ? 'on' : 'off'}`)
  return {
    url: admin.replace(/\/postgres$/, `/${name}`),
    name,
    drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  }
}

/** Every process named postgres (the server and its backends; other users' too on a shared machine). */
export function postgresPids(): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim()
      if (comm === 'postgres' || comm === 'postmaster') out.push(Number(entry))
    } catch {
      // gone
    }
  }
  return out
}

// ---------------------------------------------------------------- CPU from /proc

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** utime + stime (µs) of one process, 0 if it is gone. */
export function procCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces), from field 3 on.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return ((utime + stime) / CLK_TCK) * 1e6
  } catch {
    return 0
  }
}

/**
 * CPU of a set of processes over a window. Processes that start during the window (postgres
 * backends) count from 0; those that end during it lose what they used (rare: pools stay open).
 */
export function cpuWindow(pids: () => number[]): () => number {
  const start = new Map(pids().map((p) => [p, procCpuUs(p)]))
  return () => {
    let total = 0
    for (const p of pids()) total += procCpuUs(p) - (start.get(p) ?? 0)
    return total
  }
}

// ---------------------------------------------------------------- the disk's fsync time

export interface FsyncTime {
  ms: number
  how: string
}

/**
 * The time of one fdatasync of 8 kB on the temp dir's disk: `pg_test_fsync` when PostgreSQL ships it,
 * else a loop in node (write 8 kB at offset 0, fdatasync), median of the loop.
 */
export async function measureFsync(): Promise<FsyncTime> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-fsync-'))
  try {
    const pgBin = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/pg_test_fsync`).find(existsSync) : undefined
    if (pgBin) {
      const ms = await firstFdatasync(pgBin, join(dir, 'pg_test_fsync.out'))
      if (ms !== undefined) return { ms, how: `${pgBin} -s 1: one 8 kB write + fdatasync` }
    }
    const file = join(dir, 'probe')
    const fd = openSync(file, 'w')
    const buffer = Buffer.alloc(8192, 1)
    const times: number[] = []
    try {
      for (let i = 0; i < 200; i++) {
        const t = performance.now()
        writeSync(fd, buffer, 0, buffer.length, 0)
        fdatasyncSync(fd)
        times.push(performance.now() - t)
      }
    } finally {
      closeSync(fd)
    }
    times.sort((a, b) => a - b)
    return { ms: times[Math.floor(times.length / 2)]!, how: 'node: 200 × (8 kB write + fdatasync), median' }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Runs pg_test_fsync until it prints the fdatasync line of its first block (one 8 kB write), then stops it. */
function firstFdatasync(bin: string, file: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const child = spawn(bin, ['-s', '1', '-f', file], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.stdout!.on('data', (d) => {
      out += d
      // "        fdatasync                          253.171 ops/sec    3950 usecs/op"
      const m = /^\s+fdatasync\s+[\d.]+ ops\/sec\s+(\d+) usecs\/op/m.exec(out)
      if (m) {
        child.kill('SIGKILL')
        resolve(Number(m[1]) / 1000)
      }
    })
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(undefined)
    })
  })
}
