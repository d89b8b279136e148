// WorkflowManager (the seed's class): workflow definitions, templates and validation. Every
// definition is validated before anything is stored; workflows and templates are versioned.
import { isDeepStrictEqual } from 'node:util'
import type { ValidationResult, WorkflowDefinition } from './interfaces.ts'
import { openContext, closeContext, type ContextOptions, type EngineContext } from './context.ts'
import { validateDefinition, type ValidateOptions } from './validation.ts'
import { compileGraph, type Graph } from './graph.ts'
import { NotFoundError, ValidationError } from './errors.ts'
import { newId } from './ids.ts'
import {
  getLatestTemplate, getTemplateVersion, getWorkflow, getWorkflowHead, getWorkflowVersion, insertTemplate, insertWorkflow,
} from '../db/sql/workflows.ts'
import { IDENTIFIER } from './definition.ts'
import { insertWorkflowVersion } from '../db/sql/insertWorkflowVersion.ts'

export interface CompiledWorkflow {
  workflowId: string
  name: string
  version: number
  definition: WorkflowDefinition
  graph: Graph
  boundParams: Record<string, unknown> | undefined
}

export interface TemplateInfo {
  name: string
  version: number
  definition: WorkflowDefinition
  createdAt: number
}

export class WorkflowManager {
  readonly context: EngineContext
  private readonly owned: boolean
  private readonly compiled = new Map<string, CompiledWorkflow>()

  constructor(options: ContextOptions | EngineContext = {}) {
    this.owned = !('journal' in options)
    this.context = 'journal' in options ? options : openContext(options)
  }

  /** Checks a definition without storing anything. */
  validate(definition: unknown, options: Omit<ValidateOptions, 'registry'> = {}): ValidationResult {
    return validateDefinition(definition, { ...this.checks(), ...options, registry: this.registryForChecks() }).result
  }

  private checks() {
    return { templateExists: (name: string) => !!this.getTemplate(name), poolNames: Object.keys(this.context.namedPools) }
  }

  /** A stand-alone manager with no factories registered cannot know them: it skips those checks. */
  private registryForChecks() {
    const registry = this.context.registry
    return this.owned && registry.names().length === 0 ? undefined : registry
  }

  private validated(definition: unknown, options: Omit<ValidateOptions, 'registry'>, what: string): WorkflowDefinition {
    const v = validateDefinition(definition, { ...this.checks(), ...options, registry: this.registryForChecks() })
    if (!v.definition) throw new ValidationError(`${what} is invalid: ${v.result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, v.result.issues)
    return v.definition
  }

  /** Validates and stores a new workflow (version 1); returns its id. */
  async create(name: string, definition: unknown): Promise<string> {
    checkName(name, 'workflow')
    const def = this.validated(definition, {}, `workflow "${name}"`)
    const id = newId('wf')
    insertWorkflow(this.context.conn, { id, name, definition: def, at: Date.now() })
    return id
  }

  /**
   * Stores `definition` under a caller-chosen id (the seed's `coordinate('wf_123', ...)`): creates
   * the workflow, or adds a version when the definition changed. Returns the current version.
   */
  define(workflowId: string, definition: unknown, name = workflowId): number {
    checkName(workflowId, 'workflow id')
    const def = this.validated(definition, {}, `workflow "${workflowId}"`)
    const conn = this.context.conn
    if (!getWorkflow(conn, workflowId)) {
      insertWorkflow(conn, { id: workflowId, name, definition: def, at: Date.now() })
      return 1
    }
    const current = this.load(workflowId)
    if (isDeepStrictEqual(current.definition, def)) return current.version
    insertWorkflowVersion(conn, workflowId, current.version + 1, def, Date.now())
    return current.version + 1
  }

  /** Validates `definition` and makes it the workflow's next version. Returns that version. */
  update(workflowId: string, definition: unknown): number {
    const current = this.load(workflowId)
    const def = this.validated(definition, { boundParams: current.boundParams }, `workflow "${current.name}"`)
    const version = current.version + 1
    insertWorkflowVersion(this.context.conn, workflowId, version, def, Date.now())
    return version
  }

  /** Makes version `version`'s definition current again, as a new version. Returns that version. */
  restoreVersion(workflowId: string, version: number): number {
    const current = this.load(workflowId)
    const old = this.load(workflowId, version)
    const next = current.version + 1
    insertWorkflowVersion(this.context.conn, workflowId, next, old.definition, Date.now())
    return next
  }

  /** Registers a reusable template; a changed definition becomes the next version. */
  registerTemplate(name: string, definition: unknown): TemplateInfo {
    checkName(name, 'template')
    const def = this.validated(definition, { paramsBoundLater: true }, `template "${name}"`)
    const conn = this.context.conn
    const latest = getLatestTemplate(conn, name)
    if (latest && isDeepStrictEqual(latest.definition, def)) return toTemplate(latest)
    const version = (latest?.version ?? 0) + 1
    const at = Date.now()
    insertTemplate(conn, { name, version, definition: def, at })
    return { name, version, definition: def, createdAt: at }
  }

  getTemplate(name: string, version?: number): TemplateInfo | undefined {
    const row = version === undefined ? getLatestTemplate(this.context.conn, name) : getTemplateVersion(this.context.conn, name, version)
    return row ? toTemplate(row) : undefined
  }

  /** Makes a workflow from a template with bound params (steps without params receive them). */
  async createFromTemplate(
    templateName: string,
    options: { params?: Record<string, unknown>; name?: string; version?: number } = {},
  ): Promise<string> {
    const template = this.getTemplate(templateName, options.version)
    if (!template) {
      throw new NotFoundError(`template "${templateName}"${options.version ? ` version ${options.version}` : ''} not found`)
    }
    const name = options.name ?? templateName
    checkName(name, 'workflow')
    const params = options.params
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
      throw new ValidationError('params must be an object', [{ path: 'params', message: 'must be an object' }])
    }
    const def = this.validated(template.definition, { boundParams: params ?? {} }, `workflow from template "${templateName}"`)
    const id = newId('wf')
    insertWorkflow(this.context.conn, {
      id, name, definition: def, templateName, templateVersion: template.version, params: params ?? null, at: Date.now(),
    })
    return id
  }

  /** The definition a run of `workflowId` uses (the current version unless one is named), compiled. */
  load(workflowId: string, version?: number): CompiledWorkflow {
    const conn = this.context.conn
    const workflow = getWorkflowHead(conn, workflowId)
    if (!workflow) throw new NotFoundError(`workflow ${workflowId} not found`)
    const v = version ?? workflow.currentVersion
    const key = `${workflowId}@${v}`
    const hit = this.compiled.get(key)
    if (hit) return hit
    const row = getWorkflowVersion(conn, workflowId, v)
    if (!row) throw new NotFoundError(`workflow ${workflowId} has no version ${v}`)
    const definition = row.definition as WorkflowDefinition
    const { graph } = compileGraph(definition)
    const compiled: CompiledWorkflow = {
      workflowId, name: workflow.name, version: v, definition, graph,
      boundParams: (workflow.params as Record<string, unknown> | null) ?? undefined,
    }
    if (this.compiled.size > 500) this.compiled.clear()
    this.compiled.set(key, compiled)
    return compiled
  }

  get(workflowId: string) {
    return getWorkflow(this.context.conn, workflowId)
  }

  close(): void {
    if (this.owned) closeContext(this.context)
  }
}

function checkName(name: unknown, what: string): void {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || name.length > 200) {
    throw new ValidationError(`${what} name must be an identifier`, [
      { path: 'name', message: 'must start with a letter or _ and hold only letters, digits, _ and - (at most 200)' },
    ])
  }
}

function toTemplate(row: { name: string; version: number; definition: unknown; createdAt: number }): TemplateInfo {
  return { name: row.name, version: row.version, definition: row.definition as WorkflowDefinition, createdAt: row.createdAt }
}
