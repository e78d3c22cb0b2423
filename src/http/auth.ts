import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
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
 * A preHandler for the endpoints that write data or hand out reports: with ADMIN_TOKEN set
 * (always, in production: the configuration refuses to start without it) the request needs
 * `Authorization: Bearer <ADMIN_TOKEN>`; without one, as in development, it is open.
 */
export function adminOnly (token: string | undefined): preHandlerAsyncHookHandler {
  return async (request) => {
    if (token === undefined) return
    const presented = bearer(request)
    if (presented === undefined) {
      throw new HttpError(401, 'UNAUTHORIZED', 'Send the admin token as Authorization: Bearer <token>', { 'www-authenticate': 'Bearer' })
    }
    if (!tokenMatches(presented, token)) {
      throw new HttpError(403, 'FORBIDDEN', 'The admin token is not valid')
    }
  }
}
