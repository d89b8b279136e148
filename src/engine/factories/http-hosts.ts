// Where the `http` factory may connect. Two checks, both needed: the URL's host against the
// allow-list before anything is sent, and every address DNS gives for that host at connect time
// (the resolver below is the socket's own `lookup`, so the address checked is the address used: a
// name cannot be re-pointed between the check and the connection). Loopback, unspecified,
// link-local, cloud-metadata and this machine's own addresses are "sensitive": a wildcard never
// reaches them, and a name that resolves to one is refused unless the allow-list names the address
// itself (or the name is itself such a host, like `localhost`, listed exactly). Private addresses
// (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, in IPv4-mapped forms too) are a second class: a
// wildcard never reaches them either, but a range entry (`10.0.0.0/8`) does, as do an exact address
// entry and a name listed exactly (an internal service named on purpose may resolve to one).
import dns from 'node:dns'
import type { LookupFunction } from 'node:net'
import { networkInterfaces } from 'node:os'

/** `code` of the error a refused address gives (the cause of fetch's "fetch failed"). */
export const ADDRESS_REFUSED = 'ERR_CONVEYOR_ADDRESS_REFUSED'

export interface HostPolicy {
  /** `undefined` when a request to the URL's host may be attempted, else why not. */
  check(url: URL): string | undefined
  /** The socket `lookup` for a request to `url`: resolves the name and refuses sensitive addresses the list does not name. */
  lookupFor(url: URL): LookupFunction
}

interface HostRule {
  /** Lowercased host without port; `*.suffix` or `*`. IPv6 in brackets, as URL.hostname has it. */
  host: string
  port: string | undefined
  wildcard: boolean
}

/** A range entry such as `10.0.0.0/8` or `fd00::/8`: any port of any address in it, sensitive ones excepted. */
interface RangeRule {
  bits: bigint
  prefix: number
  v6: boolean
}

function parseRange(entry: string, text: string): RangeRule {
  const m = /^\[?([0-9a-f:.]+)\]?\/(\d{1,3})$/.exec(text)
  const address = m ? addressBits(asHostname(m[1]!)) : undefined
  const prefix = Number(m?.[2])
  if (!m || !address || prefix > (address.v6 ? 128 : 32)) {
    throw new TypeError(`http factory: allowedHosts entry "${entry}" is not an address range such as "10.0.0.0/8" or "fd00::/8"`)
  }
  if (m[1]!.includes(':') && !address.v6) {
    throw new TypeError(`http factory: allowedHosts entry "${entry}": write an IPv4 range in IPv4 form ("10.0.0.0/8")`)
  }
  return { ...address, prefix }
}

function inRange(range: RangeRule, address: { bits: bigint; v6: boolean }): boolean {
  if (range.v6 !== address.v6) return false
  const width = range.v6 ? 128 : 32
  const shift = BigInt(width - range.prefix)
  return range.bits >> shift === address.bits >> shift
}

/**
 * An address (as URL.hostname writes it) as a number; IPv4-mapped, -compatible and NAT64 (64:ff9b::/96)
 * IPv6 forms as the IPv4 address they carry.
 */
function addressBits(hostname: string): { bits: bigint; v6: boolean } | undefined {
  const v4 = parseIPv4(hostname)
  if (v4) return { bits: v4.reduce((n, o) => (n << 8n) | BigInt(o), 0n), v6: false }
  if (!hostname.startsWith('[')) return undefined
  const v6 = hostname.slice(1, -1)
  const mapped = mappedIPv4(v6)
  if (mapped) return { bits: mapped.reduce((n, o) => (n << 8n) | BigInt(o), 0n), v6: false }
  const [head = '', tail] = v6.split('::')
  const groups = (part: string | undefined) => (part ? part.split(':') : [])
  const missing = 8 - groups(head).length - groups(tail).length
  const all = tail === undefined ? groups(head) : [...groups(head), ...Array<string>(missing).fill('0'), ...groups(tail)]
  if (all.length !== 8) return undefined
  return { bits: all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n), v6: true }
}

function parseRule(entry: string): HostRule {
  const text = entry.trim().toLowerCase()
  if (!text) throw new TypeError('http factory: an allowedHosts entry is empty')
  if (/[/?#@]/.test(text) || text.includes('://')) {
    throw new TypeError(`http factory: allowedHosts entry "${entry}" must be a host or host:port, not a URL`)
  }
  const match = /^(\[[0-9a-f:.]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(text)
  if (!match) throw new TypeError(`http factory: allowedHosts entry "${entry}" is not host or host:port`)
  const host = match[1]!
  if (host !== '*' && host.includes('*') && !/^\*\.[^*]+$/.test(host)) {
    throw new TypeError(`http factory: allowedHosts entry "${entry}": a wildcard is only allowed as "*" or a leading "*."`)
  }
  // Normalise as the URL parser does (IDN to punycode, IPv4 forms, IPv6 compression) so that an
  // entry matches exactly what a request URL's hostname will be.
  let normalised = host
  if (host !== '*') {
    try {
      normalised = host.startsWith('*.') ? `*.${new URL(`http://${host.slice(2)}/`).hostname}` : new URL(`http://${host}/`).hostname
    } catch {
      throw new TypeError(`http factory: allowedHosts entry "${entry}" is not a valid host`)
    }
  }
  return { host: normalised, port: match[2], wildcard: host.startsWith('*') }
}

function parseIPv4(host: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  return m ? m.slice(1).map(Number) : undefined
}

function specialIPv4(octets: number[]): string | undefined {
  const [a, b, c, d] = octets as [number, number, number, number]
  if (a === 127) return 'loopback'
  if (a === 0) return 'unspecified'
  if (a === 169 && b === 254) return 'link-local'
  if (a === 100 && b === 100 && c === 100 && d === 200) return 'metadata' // Alibaba Cloud
  return undefined
}

/**
 * What kind of sensitive host `hostname` (as URL.hostname gives it: lowercase, IPv6 in brackets) is
 * by its name alone, if any: loopback, unspecified, link-local or cloud metadata.
 */
function sensitiveByName(hostname: string): string | undefined {
  const host = hostname.replace(/\.$/, '')
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback'
  if (host === 'metadata.google.internal') return 'metadata'
  const v4 = parseIPv4(host)
  if (v4) return specialIPv4(v4)
  if (host.startsWith('[')) {
    const v6 = host.slice(1, -1)
    if (v6 === '::1') return 'loopback'
    if (v6 === '::') return 'unspecified'
    if (/^fe[89ab][0-9a-f]:/.test(v6)) return 'link-local' // fe80::/10
    if (v6 === 'fd00:ec2::254') return 'metadata' // AWS over IPv6
    const mapped = mappedIPv4(v6)
    if (mapped) return specialIPv4(mapped)
  }
  return undefined
}

/** Why an address (as a hostname) is in a private range, or undefined. */
function privateAddress(hostname: string): string | undefined {
  const address = addressBits(hostname)
  if (!address) return undefined
  return PRIVATE_RANGES.find((r) => inRange(r, address)) ? 'private' : undefined
}

/** IPv4-mapped, -compatible and NAT64 forms, as the URL parser writes them (::ffff:7f00:1 is 127.0.0.1). */
function mappedIPv4(v6: string): number[] | undefined {
  const m = /^(?:::(?:ffff:)?|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6)
  if (!m) return undefined
  const hi = parseInt(m[1]!, 16)
  const lo = parseInt(m[2]!, 16)
  return [hi >> 8, hi & 255, lo >> 8, lo & 255]
}

/** An address as URL.hostname writes it: IPv6 in brackets and compressed, IPv4 dotted. */
function asHostname(address: string): string {
  try {
    return new URL(`http://${address.includes(':') ? `[${address}]` : address}/`).hostname
  } catch {
    return address
  }
}

/** This machine's interface addresses (as hostnames), read when asked: a request to one reaches this server. */
function ownAddresses(): Set<string> {
  const own = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) own.add(asHostname(i.address))
  return own
}

/** Why an address (as a hostname) is sensitive, or undefined. */
function sensitiveAddress(hostname: string, own: Set<string>): string | undefined {
  const byName = sensitiveByName(hostname)
  if (byName) return byName
  if (own.has(hostname)) return "this machine's own address"
  const mapped = hostname.startsWith('[') ? mappedIPv4(hostname.slice(1, -1)) : undefined
  if (mapped && own.has(mapped.join('.'))) return "this machine's own address"
  return undefined
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80')
}

/** Private networks: a wildcard never reaches them (RFC 1918, RFC 6598 shared address space, RFC 4193 unique local). */
export const PRIVATE_RANGES_TEXT = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'] as const
const PRIVATE_RANGES: RangeRule[] = PRIVATE_RANGES_TEXT.map((r) => parseRange(r, r))

export interface HostPolicyOptions {
  /** The resolver behind `lookupFor` (default `dns.lookup`): custom DNS, or a fixed map in tests. */
  lookup?: typeof dns.lookup
}

/** The allow-list's two checks (see the top of this file). */
export function hostPolicy(allowedHosts: readonly string[], options: HostPolicyOptions = {}): HostPolicy {
  const isRange = (entry: string) => entry.includes('/') && !entry.includes('://')
  const rules = allowedHosts.filter((e) => !isRange(e)).map(parseRule)
  const ranges = allowedHosts.filter(isRange).map((e) => parseRange(e, e.trim().toLowerCase()))
  const resolve = options.lookup ?? dns.lookup
  const exactly = (host: string, port: string) => rules.some((r) => !r.wildcard && r.host === host && (r.port === undefined || r.port === port))
  const inListedRange = (hostname: string) => {
    const address = addressBits(hostname)
    return address !== undefined && ranges.some((r) => inRange(r, address))
  }
  const privateHint = (name: string, port: string) => {
    const address = addressBits(name)!
    const range = PRIVATE_RANGES_TEXT[PRIVATE_RANGES.findIndex((r) => inRange(r, address))]
    return `list "${name}:${port}" or its range ("${range}") in the http factory's allowedHosts to allow it`
  }

  const check = (url: URL): string | undefined => {
    const host = url.hostname.toLowerCase().replace(/\.$/, '')
    const port = defaultPort(url)
    if (exactly(host, port)) return undefined
    const where = `${host}${url.port ? `:${url.port}` : ''}`
    const sensitive = () => sensitiveAddress(host, ownAddresses())
    const sensitiveRefused = (why: string) =>
      `host ${where} is not allowed: loopback, link-local, metadata and this machine's own addresses must be listed exactly in the http factory's allowedHosts (${where} is ${why})`
    // A range entry allows the addresses in it, but never a sensitive one.
    if (inListedRange(host)) {
      const why = sensitive()
      return why ? sensitiveRefused(why) : undefined
    }
    const byWildcard = rules.some((r) => r.wildcard && (r.port === undefined || r.port === port) && (r.host === '*' || host.endsWith(r.host.slice(1))))
    if (byWildcard) {
      const why = sensitive()
      if (why) return sensitiveRefused(why)
      if (privateAddress(host)) return `host ${where} is not allowed: a wildcard does not reach private addresses (${PRIVATE_RANGES_TEXT.join(', ')}): ${privateHint(host, port)}`
      return undefined
    }
    return allowedHosts.length === 0
      ? `host ${where} is not allowed: the http factory's allowedHosts is empty (configure http.allowedHosts)`
      : `host ${where} is not allowed by the http factory's allowedHosts`
  }

  const lookupFor = (url: URL): LookupFunction => {
    const port = defaultPort(url)
    const host = url.hostname.toLowerCase().replace(/\.$/, '')
    // A sensitive name listed exactly (`localhost`, `metadata.google.internal`) may resolve to what it names.
    const trustedName = sensitiveByName(host) !== undefined && exactly(host, port)
    // Any name listed exactly (not through a wildcard) may resolve to a private address.
    const namedExactly = exactly(host, port)
    return (hostname, lookupOptions, callback) => {
      resolve(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
        if (error) return callback(error, '')
        const own = ownAddresses()
        for (const { address } of addresses) {
          const name = asHostname(address)
          if (exactly(name, port)) continue
          const sensitive = sensitiveAddress(name, own)
          let refused: Error | undefined
          if (sensitive && !trustedName) {
            refused = new Error(`host ${hostname} resolves to ${address} (${sensitive}), which is not allowed: list "${name}:${port}" in the http factory's allowedHosts to allow it`)
          } else if (!sensitive && privateAddress(name) && !namedExactly && !inListedRange(name)) {
            refused = new Error(`host ${hostname} resolves to ${address} (private), which is not allowed: ${privateHint(name, port)}`)
          }
          if (refused) return callback(Object.assign(refused, { code: ADDRESS_REFUSED }), '')
        }
        if (lookupOptions.all) callback(null, addresses)
        else callback(null, addresses[0]!.address, addresses[0]!.family)
      })
    }
  }

  return { check, lookupFor }
}
