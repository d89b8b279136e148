// Media types an artifact may be stored and served with. The type reaches a `Content-Type` header,
// where a CR/LF would split the response and a character past Latin-1 makes node:http throw
// (ERR_INVALID_CHAR): only the grammar of RFC 9110 §8.3.1 (type/subtype with RFC 6838's restricted
// names, then `; name=value` parameters, the value a token or a quoted string) in ASCII passes.

/** What an artifact is stored and served as when the type it was given is not a valid media type. */
export const FALLBACK_MEDIA_TYPE = 'application/octet-stream'

/** Longest accepted type, parameters included. */
export const MAX_MEDIA_TYPE_LENGTH = 255

// RFC 6838 §4.2: restricted-name = first char alphanumeric, then up to 126 of ALPHA DIGIT ! # $ & - ^ _ . +
const NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
// RFC 9110 §5.6.2 token, §5.6.4 quoted-string (without obs-text: ASCII only).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const QUOTED = '"(?:[\\t !#-\\[\\]-~]|\\\\[\\t -~])*"'
// `*( OWS ";" OWS [ parameter ] )`: an empty parameter (`text/plain;`) is allowed.
const PARAMETER = `[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?`
const MEDIA_TYPE = new RegExp(`^${NAME}/${NAME}(?:${PARAMETER})*$`)

/** Whether `value` is a media type that is safe to send as a Content-Type header. */
export function isMediaType(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_MEDIA_TYPE_LENGTH && MEDIA_TYPE.test(value)
}

/** Why `value` is not a valid media type (for the step's log), shortened and with control characters escaped. */
export function describeRejectedMediaType(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value)
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)
  return `mimeType ${shown} is not a valid media type (type/subtype[; name=value], ASCII, at most ${MAX_MEDIA_TYPE_LENGTH} characters): stored as ${FALLBACK_MEDIA_TYPE}`
}
