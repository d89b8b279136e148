// The public library API of Conveyor.
export { ProjectOrchestrator, type OrchestratorConfig, type WorkflowStatusReport } from './engine/project-orchestrator.ts'
export { WorkflowManager, type TemplateInfo } from './engine/workflow-manager.ts'
export { FactoryCoordinator, type CoordinatorConfig, type StartOptions } from './engine/factory-coordinator.ts'
export { defineFactory, checkFactoryHealth, type FactoryLike, type FactoryHealthReport } from './engine/factory.ts'
export { defineConfig, loadConfig, orchestratorFromConfig, authRequired, serverOptionsFromConfig, type ConveyorConfig } from './config.ts'
export { startServer, type ServerOptions, type RunningServer } from './server.ts'
export { TokenStore, SCOPES, type Scope, type TokenInfo } from './engine/tokens.ts'
export { controlFactory } from './engine/factories/control.ts'
export { httpFactory, type HttpFactoryOptions } from './engine/factories/http.ts'
export { transformFactory } from './engine/factories/transform.ts'
export { EventStream } from './engine/events.ts'
export {
  ConveyorError, ValidationError, NotFoundError, ConflictError, NonRetryableError, TimeoutError, CancelledError, StorageError,
} from './engine/errors.ts'
export * from './engine/interfaces.ts'
export type { Durability } from './db/connection.ts'
// The budget of `{{ }}` expressions and transform.map; `maxResultBytes` (16 MiB) can be changed.
export { DEFAULT_MAX_RESULT_BYTES, EXPRESSION_LIMITS, ExpressionError, ExpressionSizeError } from './engine/expressions.ts'
