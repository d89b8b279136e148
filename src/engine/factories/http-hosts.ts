// Where the `http` factory may connect. Two checks, both needed: the URL's host against the
// allow-list before anything is sent, and every address DNS gives for that host at connect time
// (the resolver below is the socket's own `lookup`, so the address checked is the address used: a
// name cannot be re-pointed between the check and the connection). Loopback, unspecified,
// link-local, cloud-metadata and this machine's own addresses are "sensitive": a wildcard never
// reaches them, and a name that resolves to one is refused unless the allow-list names the address
// itself (or the name is itself such a host, like `localhost`, listed exactly).
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

/** IPv4-mapped and -compatible forms, as the URL parser writes them (::ffff:7f00:1 is 127.0.0.1). */
function mappedIPv4(v6: string): number[] | undefined {
  const m = /^::(?:ffff:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6)
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

export interface HostPolicyOptions {
  /** The resolver behind `lookupFor` (default `dns.lookup`): custom DNS, or a fixed map in tests. */
  lookup?: typeof dns.lookup
}

/** The allow-list's two checks (see the top of this file). */
export function hostPolicy(allowedHosts: readonly string[], options: HostPolicyOptions = {}): HostPolicy {
  const rules = allowedHosts.map(parseRule)
  const resolve = options.lookup ?? dns.lookup
  const exactly = (host: string, port: string) => rules.some((r) => !r.wildcard && r.host === host && (r.port === undefined || r.port === port))

  const check = (url: URL): string | undefined => {
    const host = url.hostname.toLowerCase().replace(/\.$/, '')
    const port = defaultPort(url)
    if (exactly(host, port)) return undefined
    const where = `${host}${url.port ? `:${url.port}` : ''}`
    const byWildcard = rules.some((r) => r.wildcard && (r.port === undefined || r.port === port) && (r.host === '*' || host.endsWith(r.host.slice(1))))
    if (byWildcard) {
      const sensitive = sensitiveAddress(host, ownAddresses())
      if (!sensitive) return undefined
      return `host ${where} is not allowed: loopback, link-local, metadata and this machine's own addresses must be listed exactly in the http factory's allowedHosts (${where} is ${sensitive})`
    }
    return rules.length === 0
      ? `host ${where} is not allowed: the http factory's allowedHosts is empty (configure http.allowedHosts)`
      : `host ${where} is not allowed by the http factory's allowedHosts`
  }

  const lookupFor = (url: URL): LookupFunction => {
    const port = defaultPort(url)
    const host = url.hostname.toLowerCase().replace(/\.$/, '')
    // A sensitive name listed exactly (`localhost`, `metadata.google.internal`) may resolve to what it names.
    const trustedName = sensitiveByName(host) !== undefined && exactly(host, port)
    return (hostname, lookupOptions, callback) => {
      resolve(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
        if (error) return callback(error, '')
        const own = ownAddresses()
        for (const { address } of addresses) {
          const name = asHostname(address)
          const sensitive = sensitiveAddress(name, own)
          if (!sensitive || trustedName || exactly(name, port)) continue
          const entry = `${name}:${port}`
          const refused = new Error(
            `host ${hostname} resolves to ${address} (${sensitive}), which is not allowed: list "${entry}" in the http factory's allowedHosts to allow it`,
          )
          return callback(Object.assign(refused, { code: ADDRESS_REFUSED }), '')
        }
        if (lookupOptions.all) callback(null, addresses)
        else callback(null, addresses[0]!.address, addresses[0]!.family)
      })
    }
  }

  return { check, lookupFor }
}
