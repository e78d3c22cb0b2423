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
  return proxyAddr.compile(setting.split(',').map((entry) => entry.trim()))
}

/** The client's address as Fastify's request.ip gives it: the nearest hop that is not trusted. */
export function clientAddress (req: IncomingMessage, trust: TrustProxy | false): string {
  // Without X-Forwarded-For the peer is the client, trusted or not (as proxy-addr would find).
  return trust === false || req.headers['x-forwarded-for'] === undefined ? req.socket.remoteAddress ?? '' : proxyAddr(req, trust)
}
