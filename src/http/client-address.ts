import type { IncomingMessage } from 'node:http'
import proxyAddr from '@fastify/proxy-addr'

/** Which hops may set X-Forwarded-For: a hop count, or addresses and CIDR ranges (TRUST_PROXY). */
export type TrustProxy = (address: string, hop: number) => boolean

/**
 * The TRUST_PROXY setting as one function, given to Fastify (request.ip) and used wherever the
 * client address is read before Fastify sees a request, so that both agree. `false`: none.
 */
export function trustProxyFunction (setting: string | number | boolean): TrustProxy | false {
  if (setting === false) return false
  if (setting === true) return () => true
  if (typeof setting === 'number') return (_address, hop) => hop < setting
  return remembered(proxyAddr.compile(setting.split(',').map((entry) => entry.trim())))
}

/** Addresses whose answer is kept; the memo starts afresh when it is full. */
export const TRUST_MEMO_SIZE = 4096
// The longest textual IP address (IPv6 with an IPv4 tail and a zone): longer strings are no
// address, and are checked without being kept.
const LONGEST_ADDRESS = 64

/**
 * An address list's trust function (which ignores the hop), with its answer kept per address.
 * The compiled check parses the address on every call, about 1 µs here, and the client address of a
 * request through nginx asks it twice (the peer, then the address nginx appended): 3 % of a cache
 * hit's CPU (docs/performance.md). An address's answer never changes, so it is kept, for at most
 * TRUST_MEMO_SIZE addresses at a time.
 */
function remembered (check: TrustProxy): TrustProxy {
  let known = new Map<string, boolean>()
  return (address, hop) => {
    // A closed socket has no remoteAddress: Fastify's request.host and proxy-addr pass it on as is.
    if (typeof address !== 'string') return check(address, hop)
    let trusted = known.get(address)
    if (trusted !== undefined) return trusted
    trusted = check(address, hop)
    if (address.length <= LONGEST_ADDRESS) {
      if (known.size >= TRUST_MEMO_SIZE) known = new Map()
      known.set(address, trusted)
    }
    return trusted
  }
}

/** The client's address as Fastify's request.ip gives it: the nearest hop that is not trusted. */
export function clientAddress (req: IncomingMessage, trust: TrustProxy | false): string {
  // Without X-Forwarded-For the peer is the client, trusted or not (as proxy-addr would find).
  return trust === false || req.headers['x-forwarded-for'] === undefined ? req.socket.remoteAddress ?? '' : proxyAddr(req, trust)
}
