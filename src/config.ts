// `conveyor.config.ts`: factories, templates and limits, loaded with jiti (TypeScript, no build).
import { resolve } from 'node:path'
import { createJiti } from 'jiti'
import type { FactoryLike } from './engine/factory.ts'
import type { WorkflowDefinition } from './engine/interfaces.ts'
import { ProjectOrchestrator, type OrchestratorConfig } from './engine/project-orchestrator.ts'
import { controlFactory } from './engine/factories/control.ts'
import { httpFactory } from './engine/factories/http.ts'
import { transformFactory } from './engine/factories/transform.ts'
import { EXPRESSION_LIMITS } from './engine/expressions.ts'
import { ValidationError } from './engine/errors.ts'
import type { ServerOptions } from './server.ts'

export interface ConveyorConfig extends Omit<OrchestratorConfig, 'logger'> {
  factories?: Record<string, FactoryLike>
  templates?: Record<string, WorkflowDefinition>
  /**
   * `corsOrigins`: browser origins besides the server's own that may call the API (default: none).
   * `allowedHosts`: Host names besides loopback ones the server answers to while auth is off.
   * `maxBufferedBytes` (WebSocket) and `maxStallMs` (SSE): when a subscriber that stopped reading is closed.
   */
  server?: { host?: string; port?: number; corsOrigins?: string[]; maxBufferedBytes?: number; maxStallMs?: number; allowedHosts?: string[] }
  /**
   * Bearer tokens with scopes (`conveyor token create`). Off by default, which allows only a loopback
   * host; `CONVEYOR_AUTH=required` turns it on as well.
   */
  auth?: { required?: boolean }
  /** Both on by default. `introspection: false` rejects `__schema` / `__type` queries. */
  graphql?: { introspection?: boolean; graphiql?: boolean }
  /** The built-in `http` factory. `allowedHosts` is empty by default: every request is refused. */
  http?: { allowedHosts?: string[]; maxResponseBytes?: number }
  /**
   * `maxResultBytes`: the largest value a `{{ }}` expression or transform.map may build or return,
   * as JSON text (default 16 MiB). For the whole process.
   */
  expressions?: { maxResultBytes?: number }
}

/** Typed identity: gives a config file completion and checking. */
export function defineConfig(config: ConveyorConfig): ConveyorConfig {
  return config
}

export async function loadConfig(path: string): Promise<ConveyorConfig> {
  const jiti = createJiti(import.meta.url)
  const loaded = await jiti.import<ConveyorConfig | { default: ConveyorConfig }>(resolve(path))
  const config = (loaded && typeof loaded === 'object' && 'default' in loaded ? loaded.default : loaded) as ConveyorConfig
  if (!config || typeof config !== 'object') throw new Error(`${path} does not export a config (use \`export default defineConfig({...})\`)`)
  return config
}

/** An orchestrator with the built-in factories (control, http, transform), then the config's factories and templates. */
export function orchestratorFromConfig(config: ConveyorConfig, overrides: Partial<OrchestratorConfig> = {}): ProjectOrchestrator {
  const maxResultBytes = config.expressions?.maxResultBytes
  if (maxResultBytes !== undefined) {
    if (!Number.isSafeInteger(maxResultBytes) || maxResultBytes < 1) {
      throw new ValidationError('expressions.maxResultBytes must be a positive integer', [
        { path: 'expressions.maxResultBytes', message: 'must be a positive integer' },
      ])
    }
    EXPRESSION_LIMITS.maxResultBytes = maxResultBytes
  }
  const orchestrator = new ProjectOrchestrator({ ...config, ...overrides })
  orchestrator.registerFactory('control', controlFactory)
  orchestrator.registerFactory('http', httpFactory({ allowedHosts: config.http?.allowedHosts ?? [], maxResponseBytes: config.http?.maxResponseBytes }))
  orchestrator.registerFactory('transform', transformFactory)
  for (const [name, factory] of Object.entries(config.factories ?? {})) orchestrator.registerFactory(name, factory)
  for (const [name, definition] of Object.entries(config.templates ?? {})) orchestrator.workflows.registerTemplate(name, definition)
  return orchestrator
}

/** CONVEYOR_AUTH: `required` turns auth on; unset, empty or `off` leaves it to the config. */
export function authRequired(config: ConveyorConfig, env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.CONVEYOR_AUTH ?? '').trim().toLowerCase()
  if (value !== '' && value !== 'off' && value !== 'required') throw new Error(`CONVEYOR_AUTH must be "required" or "off", not "${env.CONVEYOR_AUTH}"`)
  return value === 'required' || config.auth?.required === true
}

/** The access and endpoint options of a config (and CONVEYOR_AUTH) for startServer. */
export function serverOptionsFromConfig(
  config: ConveyorConfig,
  env: NodeJS.ProcessEnv = process.env,
): Pick<ServerOptions, 'auth' | 'graphql' | 'corsOrigins' | 'maxBufferedBytes' | 'maxStallMs' | 'allowedHosts'> {
  return {
    auth: { required: authRequired(config, env) },
    graphql: config.graphql,
    corsOrigins: config.server?.corsOrigins,
    maxBufferedBytes: config.server?.maxBufferedBytes,
    maxStallMs: config.server?.maxStallMs,
    allowedHosts: config.server?.allowedHosts,
  }
}
