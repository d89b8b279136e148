import { builder } from './builder.ts'
import { RunRef, StepRef } from './refs.ts'
import type { ArtifactRecord, StepRecord } from '../engine/catalog.ts'

export const ArtifactType = builder.objectRef<ArtifactRecord>('Artifact').implement({
  description: 'A file a step produced. Download it at `url` (relative to the server; with auth on, a signed link valid for an hour).',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    mimeType: t.exposeString('mimeType'),
    size: t.exposeInt('size', { description: 'Bytes.' }),
    url: t.string({ resolve: (a, _, ctx) => (ctx.signArtifactUrl ? ctx.signArtifactUrl(artifactUrl(a), a.id) : artifactUrl(a)) }),
    stepId: t.exposeString('stepId', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (a) => a.createdAt }),
  }),
})

export function artifactUrl(a: { id: string; name: string }): string {
  return `/artifacts/${a.id}/${encodeURIComponent(a.name)}`
}

// One statement loads the artifacts of every run on the page; steps pick theirs out of the group.
builder.objectField(RunRef, 'artifacts', (t) =>
  t.loadableGroup({
    type: ArtifactType,
    load: async (runIds: string[], ctx) => ctx.orchestrator.catalog.artifactsByRunIds(runIds),
    group: (a) => (a as ArtifactRecord).runId,
    resolve: (r) => r.id,
  }),
)

builder.objectField(StepRef, 'artifacts', (t) =>
  t.loadableGroup({
    type: ArtifactType,
    load: async (keys: string[], ctx) => ctx.orchestrator.catalog.artifactsByRunIds([...new Set(keys.map((k) => k.split('\u0000')[0]!))]),
    group: (a) => `${(a as ArtifactRecord).runId}\u0000${(a as ArtifactRecord).stepId}`,
    resolve: (s: StepRecord) => `${s.runId}\u0000${s.stepId}`,
  }),
)
