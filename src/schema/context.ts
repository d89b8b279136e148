import type { ProjectOrchestrator } from '../engine/project-orchestrator.ts'

export interface GraphQLContext {
  orchestrator: ProjectOrchestrator
}
