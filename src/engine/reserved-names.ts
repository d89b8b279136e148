// Names JavaScript objects treat specially. A step id is a key of the `steps` scope of expressions
// and of the run's outputs: `__proto__` there sets the prototype instead of adding the step, and
// `constructor` / `prototype` shadow or read what every object inherits. A `__proto__` key in params
// (or anywhere in a definition) is lost when the value is copied or its `{{ }}` resolved. Both are
// refused at validation, with their path, rather than vanishing at run time.
import type { ValidationIssue } from './interfaces.ts'
import { formatPath } from './definition.ts'

export const RESERVED_STEP_IDS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

export function reservedStepIdMessage(id: string): string {
  return `step id "${id}" is reserved (JavaScript objects treat it specially: it would not resolve in steps.${id}); choose another`
}

const PROTO_KEY_MESSAGE = '"__proto__" cannot be a key: JavaScript objects take it as their prototype, so its value would be lost'

/** An issue for every own `__proto__` key inside `input` (nested at most MAX_DEFINITION_DEPTH, so recursion is safe). */
export function protoKeyIssues(input: unknown): ValidationIssue[] {
  const issues: ValidationIssue[] = []
  const at: (string | number)[] = []
  const walk = (value: unknown): void => {
    if (!value || typeof value !== 'object') return
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i]
        if (!item || typeof item !== 'object') continue
        at.push(i)
        walk(item)
        at.pop()
      }
      return
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__') issues.push({ path: formatPath([...at, key]), message: PROTO_KEY_MESSAGE })
      const child: unknown = (value as Record<string, unknown>)[key]
      if (!child || typeof child !== 'object') continue
      at.push(key)
      walk(child)
      at.pop()
    }
  }
  walk(input)
  return issues
}
