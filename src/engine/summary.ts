// Event payloads carry outputs and params for live views; large values are summarised so the log
// stays small (the full value lives on the step row).
const LIMIT = 8 * 1024

export function summarize(value: unknown): unknown {
  if (value === undefined) return null
  let text: string
  try {
    text = JSON.stringify(value)
  } catch {
    return { unserializable: true }
  }
  if (text === undefined) return null
  return text.length <= LIMIT ? value : { truncated: true, bytes: Buffer.byteLength(text) }
}

/** `summarize` of a JSON-safe value whose JSON text is known (no second stringify). */
export function summarizeText(value: unknown, text: string): unknown {
  return text.length <= LIMIT ? value : { truncated: true, bytes: Buffer.byteLength(text) }
}

/** `toJson` and the copy's JSON text (the copy stringifies to the same text). */
export function toJsonText(value: unknown): { value: unknown; text: string } {
  if (value === undefined) return { value: null, text: 'null' }
  const text = JSON.stringify(value)
  return { value: JSON.parse(text), text }
}

/** JSON-safe copy of an action's output (undefined → null; functions and cycles rejected by the caller). */
export function toJson(value: unknown): unknown {
  if (value === undefined) return null
  return JSON.parse(JSON.stringify(value))
}
