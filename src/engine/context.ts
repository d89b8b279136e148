// What the three library classes share when they work on one database: the connection, the
// factory registry, the journal (group commit) and the event bus it publishes to.
import pino, { type Logger } from 'pino'
import { Connection, type Durability } from '../db/connection.ts'
import { EventBus } from './events.ts'
import { FactoryRegistry } from './factory.ts'
import { Journal } from './journal.ts'
import { ArtifactStore } from './artifacts.ts'
import type { PoolLimits } from './pools.ts'
import { valueLimits, type ValueLimits } from './value-limits.ts'

export interface EngineContext {
  conn: Connection
  registry: FactoryRegistry
  bus: EventBus
  journal: Journal
  logger: Logger
  artifacts: ArtifactStore
  /** The config's named pools: limits shared by every action or step that names them. */
  namedPools: Record<string, PoolLimits>
  /** How large a value (output, input, payload) or message may be. */
  limits: ValueLimits
}

export interface ContextOptions {
  /** SQLite file; ':memory:' (the default) keeps nothing after close. */
  database?: string
  /** Where artifacts are written; default `artifacts/` beside the database file. */
  artifactsDir?: string
  logger?: Logger
  pools?: Record<string, PoolLimits>
  /** What a commit survives: `process` (default) or `machine` (synced at every commit). */
  durability?: Durability
  limits?: Partial<ValueLimits>
}

export function openContext(options: ContextOptions = {}): EngineContext {
  // Checked before the database is opened: a bad config changes nothing.
  const limits = valueLimits(options.limits)
  const logger = options.logger ?? pino({ name: 'conveyor', level: process.env.CONVEYOR_LOG_LEVEL ?? 'warn' })
  const conn = new Connection(options.database ?? ':memory:', { durability: options.durability })
  const bus = new EventBus()
  const journal = new Journal(
    conn,
    (events) => bus.publish(events),
    (error) => logger.error({ err: error }, 'commit failed'),
  )
  return { conn, registry: new FactoryRegistry(), bus, journal, logger, artifacts: new ArtifactStore(conn, options.artifactsDir, limits.maxArtifactBytes), namedPools: options.pools ?? {}, limits }
}

export function closeContext(context: EngineContext): void {
  context.journal.close()
  context.conn.close()
}
