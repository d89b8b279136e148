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

/** JSON-safe copy of an action's output (undefined → null; functions and cycles rejected by the caller). */
export function toJson(value: unknown): unknown {
  if (value === undefined) return null
  return JSON.parse(JSON.stringify(value))
}
