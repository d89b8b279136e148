import type { ProjectOrchestrator } from '../engine/project-orchestrator.ts'

export interface GraphQLContext {
  orchestrator: ProjectOrchestrator
  /** With auth on, the server signs artifact download links (artifact-links.ts); else they are plain paths. */
  signArtifactUrl?: (path: string, id: string) => string
}
