import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { HttpError } from './errors.js'

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Compares in constant time, whatever the lengths. */
export function tokenMatches (presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected))
}

function bearer (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/**
 * What a caller may do. `admin` (ADMIN_TOKEN): everything. `ingest` (INGEST_TOKENS): what carriers
 * and devices send: orders, events, loading and positions; not /fake, /reports, webhooks or
 * vehicles' registration.
 */
export type Right = 'admin' | 'ingest'

export interface Caller {
  /** `local`: no token is configured and the client is on loopback (development). */
  role: 'admin' | 'ingest' | 'local'
  /** A stable, non-secret identity (for idempotency keys): a hash of the token, or 'loopback'. */
  id: string
}

export interface AccessOptions {
  adminToken?: string
  ingestTokens?: readonly string[]
}

/**
 * Whether the client, as the API sees it after TRUST_PROXY (request.ip), is on this machine:
 * 127.0.0.0/8, ::1, or an IPv4 loopback address mapped into IPv6.
 */
export function isLoopback (ip: string | undefined): boolean {
  if (ip === undefined) return false
  const address = ip.toLowerCase()
  if (address === '::1' || address === '0:0:0:0:0:0:0:1') return true
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return isIP(v4) === 4 && v4.startsWith('127.')
}

const callers = new WeakMap<FastifyRequest, Caller>()

/** The caller a guard let through (undefined on routes without a guard). */
export function callerOf (request: FastifyRequest): Caller | undefined {
  return callers.get(request)
}

/**
 * The access rules of the contract. With a token configured, a request needs
 * `Authorization: Bearer <token>`: 401 (WWW-Authenticate: Bearer) without one or with one that is
 * not known, 403 for a known token without the right. With no token configured at all
 * (development), only clients on loopback are let through; others get 403 TOKEN_NOT_CONFIGURED.
 */
export class Access {
  private readonly admin: string | undefined
  private readonly ingest: readonly string[]

  constructor (options: AccessOptions) {
    this.admin = options.adminToken
    this.ingest = options.ingestTokens ?? []
  }

  /** Whether any token is configured (otherwise guarded endpoints answer loopback only). */
  get configured (): boolean {
    return this.admin !== undefined || this.ingest.length > 0
  }

  /** Who is calling, if the request may do what `right` allows; throws the 401/403 otherwise. */
  authorize (request: FastifyRequest, right: Right): Caller {
    if (!this.configured) {
      if (isLoopback(request.ip)) return { role: 'local', id: 'loopback' }
      throw new HttpError(403, 'TOKEN_NOT_CONFIGURED',
        'This endpoint answers only clients on the server itself until ADMIN_TOKEN or INGEST_TOKENS is configured')
    }
    const presented = bearer(request)
    if (presented === undefined) {
      throw new HttpError(401, 'UNAUTHORIZED', 'Send a token as Authorization: Bearer <token>', { 'www-authenticate': 'Bearer' })
    }
    const role = this.roleOf(presented)
    if (role === undefined) {
      throw new HttpError(401, 'TOKEN_INVALID', 'The token is not valid', { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    if (right === 'admin' && role !== 'admin') {
      throw new HttpError(403, 'FORBIDDEN', 'This token may not use this endpoint; it needs the admin token')
    }
    return { role, id: createHash('sha256').update(`caller:${presented}`).digest('hex') }
  }

  /** A hook (onRequest or preHandler) that lets through only callers with `right`. */
  guard (right: Right): (request: FastifyRequest) => Promise<void> {
    return async (request) => {
      callers.set(request, this.authorize(request, right))
    }
  }

  /** Compares with every configured token, without stopping at the first match. */
  private roleOf (presented: string): Caller['role'] | undefined {
    let ingest = false
    for (const token of this.ingest) ingest = tokenMatches(presented, token) || ingest
    const admin = this.admin !== undefined && tokenMatches(presented, this.admin)
    return admin ? 'admin' : ingest ? 'ingest' : undefined
  }
}

/**
 * The guard of the admin-only endpoints (/fake, /reports, webhooks). Takes the app's Access, or,
 * for older callers, the admin token alone.
 */
export function adminOnly (access: Access | string | undefined): (request: FastifyRequest) => Promise<void> {
  const rules = access instanceof Access ? access : new Access({ adminToken: access })
  return rules.guard('admin')
}
