// What checking one definition may cost. `validateWorkflow` needs only a read token, so a large or
// hostile definition must be refused or reported in time linear in its size: a step limit checked
// before parsing, a cap on listed issues, and a budget for did-you-mean suggestions (each one
// compares a name with many others).
import type { ValidationIssue } from './interfaces.ts'
import { didYouMean } from './factory.ts'

/** Steps of one definition, at most: every entry of a `steps` list, in groups and inline sub-workflows too. */
export const MAX_DEFINITION_STEPS = 100_000
/** Issues listed for one definition, at most; one more issue says how many others were found. */
export const MAX_ISSUES = 100
/** Issues given a did-you-mean, at most, per definition (each looks at up to SUGGEST_MAX_CANDIDATES names). */
export const MAX_SUGGESTIONS = 20

export type Suggest = (name: string, candidates: Iterable<string>) => string

/** didYouMean for the first `limit` calls, then ''. */
export function suggestionBudget(limit = MAX_SUGGESTIONS): Suggest {
  let left = limit
  return (name, candidates) => (left-- > 0 ? didYouMean(name, candidates) : '')
}

/** Whether `input` (not parsed yet, nested at most MAX_DEFINITION_DEPTH) holds more than MAX_DEFINITION_STEPS steps. */
export function hasTooManySteps(input: unknown): boolean {
  let count = 0
  const walk = (steps: unknown): boolean => {
    if (!Array.isArray(steps)) return false
    count += steps.length
    if (count > MAX_DEFINITION_STEPS) return true
    for (const step of steps) {
      if (!step || typeof step !== 'object') continue
      const { steps: nested, workflow } = step as { steps?: unknown; workflow?: unknown }
      if (walk(nested)) return true
      if (workflow && typeof workflow === 'object' && walk((workflow as { steps?: unknown }).steps)) return true
    }
    return false
  }
  return !!input && typeof input === 'object' && walk((input as { steps?: unknown }).steps)
}

export function tooManyStepsIssue(): ValidationIssue {
  return {
    path: 'steps',
    message: `a definition holds at most ${MAX_DEFINITION_STEPS.toLocaleString('en')} steps (members of groups and inline sub-workflows count too); this one holds more`,
  }
}

/** The first MAX_ISSUES issues, and one saying how many more there are. */
export function capIssues(issues: ValidationIssue[]): ValidationIssue[] {
  if (issues.length <= MAX_ISSUES) return issues
  const more = issues.length - MAX_ISSUES
  return [...issues.slice(0, MAX_ISSUES), { path: '(root)', message: `${more.toLocaleString('en')} more issues not listed (only the first ${MAX_ISSUES} are)` }]
}
