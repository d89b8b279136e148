// `npx tsx bench/validate.ts [--scale F]`
//
// What one definition costs to check: `validate()` (the read-scope `validateWorkflow`), then
// `createWorkflow` and the compile a run's start does (`workflows.load`), for the inputs that once
// held the event loop for a minute (issue: hardening, point 3). Prints one line per input; the
// figures go to BENCHMARKS.md by hand. --scale shrinks the inputs (0.1 for a quick look).
import { ProjectOrchestrator } from '../src/index.ts'
import { now } from './stats.ts'

const scaleAt = process.argv.indexOf('--scale')
const scale = scaleAt >= 0 ? Number(process.argv[scaleAt + 1]) : 1
const n = (count: number) => Math.max(1, Math.round(count * scale))

interface Input {
  name: string
  definition: unknown
}

const inputs: Input[] = [
  {
    // Every step gets an id from its action: `work`, `work_2`, … `work_25000`.
    name: `${n(25_000)} unnamed steps (same action)`,
    definition: { steps: Array.from({ length: n(25_000) }, () => ({ factory: 'bench', action: 'work' })) },
  },
  {
    // Each unknown id is an issue that looks for a did-you-mean among every step.
    name: `${n(4_000)} unknown dependsOn`,
    definition: {
      parallel: true,
      steps: Array.from({ length: n(4_000) }, (_, i) => ({ id: `step_${i}`, factory: 'bench', action: 'work', dependsOn: [`missing_${i}`] })),
    },
  },
  {
    name: `${n(100_000)} steps (a chain, valid)`,
    definition: { steps: Array.from({ length: n(100_000) }, (_, i) => ({ id: `s${i}`, factory: 'bench', action: 'work' })) },
  },
  {
    name: `${n(100_000)} steps in groups of 100, valid`,
    definition: {
      steps: Array.from({ length: n(1_000) }, (_, g) => ({
        id: `g${g}`,
        parallel: true,
        steps: Array.from({ length: 99 }, () => ({ factory: 'bench', action: 'work', params: { x: '{{ input.x }}' } })),
      })),
    },
  },
]

const o = new ProjectOrchestrator()
o.registerFactory('bench', { async work() { return null } })

const ms = (t0: number) => `${(now() - t0).toFixed(0)} ms`
for (const input of inputs) {
  const bytes = Buffer.byteLength(JSON.stringify(input.definition))
  let t0 = now()
  const result = o.workflows.validate(input.definition)
  const validate = ms(t0)
  let create = '-'
  let load = '-'
  if (result.valid) {
    t0 = now()
    const id = await o.createWorkflow('bench', input.definition)
    create = ms(t0)
    t0 = now()
    o.workflows.load(id)
    load = ms(t0)
  }
  console.log(
    `${input.name.padEnd(40)} ${(bytes / 1024).toFixed(0).padStart(6)} KB  validate ${validate.padStart(8)}  ` +
      `createWorkflow ${create.padStart(8)}  compile ${load.padStart(8)}  (${result.valid ? 'valid' : `${result.issues.length} issues`})`,
  )
}
await o.close()
