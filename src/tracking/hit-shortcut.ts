import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { HttpError } from '../http/errors.js'
import { clientAddress, type TrustProxy } from '../http/client-address.js'
import { clientKey, type NotFoundLimiter, type RequestLimiter } from '../http/rate-limit.js'
import { sendJsonAnswer } from '../http/json-answer.js'
import { newRequestId, requestIdOf } from '../http/response-headers.js'
import type { TrackingService } from './service.js'

export interface HitShortcutParts {
  tracking: TrackingService
  limiter: RequestLimiter
  notFound: NotFoundLimiter
  /** Whether load is being shed now (counts nothing), given performance.now(). */
  overloaded: (now: number) => boolean
  trust: TrustProxy | false
  /** Counts one answer (its seconds) as GET /query 200 in the request histogram. */
  observe: (seconds: number) => void
}

/**
 * What the shortcut decided about a request's rate limit before handing it on to Fastify: the
 * onRequest hook then uses this rather than counting the request a second time.
 */
export const CHARGED = Symbol('rate limit charged')
export type ChargedRequest = IncomingMessage & { [CHARGED]?: { refusal: HttpError | undefined } }

const PREFIX = '/query?sno='

/**
 * Whether the request names none of the headers a hit must read (content-length,
 * transfer-encoding, x-request-id, x-forwarded-for), looked for in `rawHeaders` by length, then
 * name. Most requests that are not proxied (curl, a browser, a load generator) send none of the
 * four, and a scan of their few raw names costs less than four lookups in `req.headers`, whose
 * shape differs from request to request (an A/B on one pinned core: 0.86-0.87 of the ceiling
 * against 0.82-0.85 with the lookups).
 */
function namesNoneOfOurs (raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const length = raw[i].length
    if (length !== 14 && length !== 17 && length !== 12 && length !== 15) continue
    const name = raw[i].toLowerCase()
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'x-request-id' || name === 'x-forwarded-for') return false
  }
  return true
}
/**
 * The order number of a URL that is exactly `/query?sno=` and an order number in its plain form
 * (no leading zero, at most 16 digits: parseSno's range), else -1. One pass over the characters:
 * the regular expression, the slice and Number() it replaces each cost more per request in the
 * serving process than in a loop. Up to 2^53 the sum is exact; above it, it rounds as Number()
 * does, so the range check after it gives the same answer.
 */
export function plainSno (url: string): number {
  const length = url.length
  if (length <= PREFIX.length || length > PREFIX.length + 16 || !url.startsWith(PREFIX)) return -1
  let sno = 0
  for (let i = PREFIX.length; i < length; i++) {
    const digit = url.charCodeAt(i) - 48
    if (digit < 0 || digit > 9 || (digit === 0 && i === PREFIX.length)) return -1
    sno = sno * 10 + digit
  }
  return sno
}

const CLIENT_KEY = Symbol('client key')
type KeyedSocket = Socket & { [CLIENT_KEY]?: string }

/** The rate limit's key of the connection's peer, worked out once per connection. */
function peerKey (socket: KeyedSocket): string {
  let key = socket[CLIENT_KEY]
  if (key === undefined) {
    const address = socket.remoteAddress
    // A closed socket has no address: counted under '' as before, and not kept.
    if (address === undefined) return clientKey('')
    key = socket[CLIENT_KEY] = clientKey(address)
  }
  return key
}

/**
 * `GET /query?sno=N` answered from this process's near cache before the request reaches
 * Fastify: the same bytes, status and headers as the route would send (security headers, the
 * request id, the rate limit, load shedding, the unknown-sno budget, the latency histogram),
 * without building a Fastify request and reply, running the hook chain, or listening for the
 * response's end. Measured under wrk, they cost a cache hit a fifth of its throughput.
 *
 * Anything else (another path or method, a body, an sno in any other form, an answer not held
 * here, a refusal of any kind, the API closing) is handed on untouched and answered by the
 * routes, which stay the reference: test/tracking/hit-shortcut.test.ts checks that both give the
 * same answer.
 */
export class QueryHitShortcut {
  private parts: HitShortcutParts | undefined
  /** Answers sent here since start (for tests and diagnostics). */
  answered = 0

  /** Starts answering (once the app is ready). */
  attach (parts: HitShortcutParts): void {
    this.parts = parts
  }

  /** Stops answering: every request goes to Fastify (while closing, so that it drains them). */
  detach (): void {
    this.parts = undefined
  }

  /** True when the request was answered here; false to hand it on. */
  handle (req: IncomingMessage, res: ServerResponse): boolean {
    const parts = this.parts
    if (parts === undefined || req.method !== 'GET') return false
    // The histogram's time: from here to the answer handed to the socket (Fastify's runs to 'finish').
    const started = performance.now()
    const url = req.url
    if (url === undefined) return false
    const sno = plainSno(url)
    if (sno < 0 || sno > Number.MAX_SAFE_INTEGER) return false
    const plain = namesNoneOfOurs(req.rawHeaders)
    if (!plain && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)) return false
    // One reading of the wall clock for the copy's expiry and the rate limit's window.
    const now = Date.now()
    const body = parts.tracking.held(sno, now)
    if (body === undefined) return false

    // In the route's order: the rate limit (onRequest), load shedding, then the unknown-sno budget.
    const key = plain ? peerKey(req.socket) : clientKey(clientAddress(req, parts.trust))
    const refusal = parts.limiter.chargeClient(key, 1, now)
    if (refusal !== undefined || parts.overloaded(started) || parts.notFound.overBudget(key, now)) {
      (req as ChargedRequest)[CHARGED] = { refusal }
      return false
    }
    sendJsonAnswer(res, plain ? newRequestId() : requestIdOf(req), body, now)
    parts.tracking.stats.near++
    this.answered++
    parts.observe((performance.now() - started) / 1000)
    return true
  }
}
